"""Calendar months as 'YYYY-MM' strings: parsing, arithmetic and ranges."""

from __future__ import annotations

import re
from datetime import date, datetime

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str) -> tuple[int, int]:
    """Return (year, month) for 'YYYY-MM'; raise ValueError naming the bad value."""
    match = _MONTH_RE.match(str(value).strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month must look like YYYY-MM (e.g. 2024-03), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def month_str(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def month_index(value: str) -> int:
    """Months since year 0: consecutive months differ by one."""
    year, month = parse_month(value)
    return year * 12 + month - 1


def month_from_index(index: int) -> str:
    return month_str(index // 12, index % 12 + 1)


def add_months(value: str, n: int) -> str:
    return month_from_index(month_index(value) + n)


def month_range(first: str, last: str) -> list[str]:
    """Inclusive list of months from first to last."""
    start, end = month_index(first), month_index(last)
    if end < start:
        raise ValueError(f"month range is empty: {first} is after {last}")
    return [month_from_index(i) for i in range(start, end + 1)]


def window(as_of: str, months: int) -> list[str]:
    """The trailing window of `months` months ending at (and including) as_of."""
    return month_range(add_months(as_of, -(months - 1)), as_of)


def month_of(moment: date | datetime) -> str:
    return month_str(moment.year, moment.month)
