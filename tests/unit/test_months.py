import pytest

from segmentation.months import add_months, month_index, month_range, parse_month, window


def test_month_arithmetic_crosses_years():
    assert add_months("2023-11", 3) == "2024-02"
    assert add_months("2024-01", -1) == "2023-12"
    assert month_index("2024-01") - month_index("2023-12") == 1


def test_ranges_and_windows_are_inclusive():
    assert month_range("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert window("2024-03", 3) == ["2024-01", "2024-02", "2024-03"]
    assert len(window("2024-12", 24)) == 24


@pytest.mark.parametrize("bad", ["2024-13", "2024-1", "24-01", "", "2024/01"])
def test_bad_months_are_rejected_with_the_value(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)


def test_empty_range_is_an_error():
    with pytest.raises(ValueError, match="after"):
        month_range("2024-05", "2024-01")
