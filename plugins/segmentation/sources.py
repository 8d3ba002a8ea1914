"""Where a month's rows come from: a monthly-contract file (parquet or CSV) or the synthetic generator.

A source returns the month's rows as they were delivered; checking and typing them is validate's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from .generate import GeneratorSpec, generate_month
from .months import month_index, parse_month

SOURCE_KINDS = ("file", "synthetic")


class SourceError(ValueError):
    """The source cannot deliver the month: missing file, unreadable format, no year/month columns."""


@dataclass(frozen=True)
class Source:
    kind: str = "file"
    path: str | None = None
    n_shops: int = 2_000
    seed: int = 7
    first_month: str = "2023-01"

    @classmethod
    def from_params(cls, params: dict) -> Source:
        kind = params.get("source", "file")
        if kind not in SOURCE_KINDS:
            raise SourceError(f"unknown source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
        return cls(
            kind=kind,
            path=params.get("source_path") or None,
            n_shops=int(params.get("n_shops", 2_000)),
            seed=int(params.get("seed", 7)),
            first_month=params.get("first_month", "2023-01"),
        )

    def describe(self) -> str:
        if self.kind == "file":
            return f"file {self.path}"
        return f"synthetic generator (n_shops={self.n_shops}, seed={self.seed}, from {self.first_month})"


def read_month(source: Source, month: str) -> pd.DataFrame:
    """The rows the source holds for one month, untyped beyond what the file format gives."""
    if source.kind == "synthetic":
        return _synthetic_month(source, month)
    return _file_month(source, month)


def _synthetic_month(source: Source, month: str) -> pd.DataFrame:
    if month_index(month) < month_index(source.first_month):
        return pd.DataFrame(columns=["shop_id", "product_id", "year", "month", "sales_qty", "sales_value"])
    spec = GeneratorSpec(n_shops=source.n_shops, seed=source.seed, first_month=source.first_month, last_month=month)
    return generate_month(spec, month)


def _file_month(source: Source, month: str) -> pd.DataFrame:
    if not source.path:
        raise SourceError("source 'file' needs source_path (a monthly-contract parquet or CSV file)")
    path = Path(source.path)
    if not path.exists():
        raise SourceError(f"source file not found: {path}")
    year, cal = parse_month(month)
    if path.suffix.lower() in (".parquet", ".pq") or path.is_dir():
        try:
            dataset = ds.dataset(str(path), format="parquet")
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise SourceError(f"cannot read parquet {path}: {exc}") from exc
        _require_period_columns(dataset.schema.names, path)
        table = dataset.to_table(filter=(ds.field("year") == year) & (ds.field("month") == cal))
        return table.to_pandas()
    if path.suffix.lower() in (".csv", ".txt", ".gz"):
        try:
            frame = pd.read_csv(path, dtype={"shop_id": "string", "product_id": "string"})
        except Exception as exc:
            raise SourceError(f"cannot read CSV {path}: {exc}") from exc
        _require_period_columns(list(frame.columns), path)
        years = pd.to_numeric(frame["year"], errors="coerce")
        months = pd.to_numeric(frame["month"], errors="coerce")
        return frame[(years == year) & (months == cal)].reset_index(drop=True)
    raise SourceError(f"unsupported file type {path.suffix!r} for {path}: use .parquet or .csv")


def _require_period_columns(columns: list[str], path: Path) -> None:
    missing = [c for c in ("year", "month") if c not in columns]
    if missing:
        raise SourceError(f"{path} has no {', '.join(missing)} column(s); found {', '.join(columns)}")
