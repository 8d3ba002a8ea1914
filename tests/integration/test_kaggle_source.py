"""The Kaggle source against a loopback stand-in, through the official `kaggle` client (no network)."""

from __future__ import annotations

import logging
import secrets

import pandas as pd
import pytest

from segmentation.contract import DEFAULT_KAGGLE_DATASET
from segmentation.sources.base import SourceDataError
from segmentation.sources.kaggle import (
    KaggleDataError,
    KaggleSourceError,
    credentials_from_env,
    download_dataset,
    read_monthly_contract,
)
from segmentation.sources.synthetic import GeneratorSpec, generate

from . import kaggle_standin

USER = "segmentation-test"
KEY = "k" + secrets.token_hex(16)  # distinctive, so a leak is easy to spot
COLUMNS = ["shop_id", "product_id", "year", "month", "sales_qty"]
EMPTY_DATASET = "someone/no-tables"
CORRUPT_DATASET = "someone/corrupt"


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    spec = GeneratorSpec(n_shops=50, first_month="2023-01", last_month="2023-06")
    return generate(spec)[COLUMNS]


@pytest.fixture
def standin(sales):
    datasets = {
        DEFAULT_KAGGLE_DATASET: kaggle_standin.make_zip({"sales.csv": sales.to_csv(index=False).encode()}),
        EMPTY_DATASET: kaggle_standin.make_zip({"README.md": b"nothing tabular here\n"}),
        CORRUPT_DATASET: b"this is not a zip file",
    }
    with kaggle_standin.running(datasets, USER, KEY, lifetime=60) as server:
        yield server


@pytest.fixture(autouse=True)
def kaggle_env(tmp_path, monkeypatch):
    """Point the client at the stand-in and keep it away from this machine's ~/.kaggle and tokens."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "VERBOSE", "VERBOSE_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "kaggle-config").mkdir()


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_download_and_read_through_the_official_client(standin, sales, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    dest = tmp_path / "raw" / "kaggle"

    assert download_dataset(DEFAULT_KAGGLE_DATASET, dest) == dest

    assert (dest / "sales.csv").is_file() and (dest / "_complete.json").is_file()
    assert not list(dest.glob("*.zip")) and _leftovers(dest.parent) == []
    assert ("POST", kaggle_standin.DOWNLOAD_PATH) in standin.requests
    assert any(method == "GET" and path.startswith("/storage/") for method, path in standin.requests)

    frame = read_monthly_contract(dest)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(sales)
    assert all(isinstance(v, str) for v in frame["shop_id"]) and all(isinstance(v, str) for v in frame["product_id"])
    assert frame["year"].dtype == "int64" and frame["month"].dtype == "int64"
    assert frame["sales_qty"].dtype == "float64"
    expected = sales.astype({"shop_id": str, "product_id": str})
    pd.testing.assert_frame_equal(
        frame.sort_values(COLUMNS[:4]).reset_index(drop=True),
        expected.sort_values(COLUMNS[:4]).reset_index(drop=True),
        check_dtype=False,
    )
    assert sorted(frame["month"].unique()) == [1, 2, 3, 4, 5, 6]

    out = capsys.readouterr()
    assert KEY not in caplog.text and KEY not in out.out and KEY not in out.err


def test_second_call_does_not_hit_the_server(standin, tmp_path):
    dest = tmp_path / "kaggle"
    download_dataset(DEFAULT_KAGGLE_DATASET, dest)
    seen = len(standin.requests)
    assert seen >= 2

    download_dataset(DEFAULT_KAGGLE_DATASET, dest)
    assert len(standin.requests) == seen

    (dest / "sales.csv").write_text("tampered\n")  # a marker that no longer matches -> download again
    download_dataset(DEFAULT_KAGGLE_DATASET, dest)
    assert len(standin.requests) > seen
    assert len(read_monthly_contract(dest)) > 0


def test_explicit_credentials_win_over_environment(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    download_dataset(DEFAULT_KAGGLE_DATASET, tmp_path / "kaggle", username=USER, key=KEY)
    assert (tmp_path / "kaggle" / "sales.csv").is_file()


def test_wrong_key_is_refused_without_leaking_it(standin, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    wrong = "w" + secrets.token_hex(16)
    with pytest.raises(KaggleDataError) as info:  # unusable input: the DAG fails it without retries
        download_dataset(DEFAULT_KAGGLE_DATASET, tmp_path / "kaggle", username=USER, key=wrong)
    assert isinstance(info.value, SourceDataError)

    message = str(info.value)
    assert DEFAULT_KAGGLE_DATASET in message and "401" in message
    assert wrong not in message and KEY not in message
    out = capsys.readouterr()
    for text in (caplog.text, out.out, out.err):
        assert wrong not in text and KEY not in text
    assert not (tmp_path / "kaggle").exists() and _leftovers(tmp_path) == []


def test_unknown_dataset(standin, tmp_path):
    with pytest.raises(KaggleDataError, match="not found.*someone/missing"):
        download_dataset("someone/missing", tmp_path / "kaggle")
    assert not (tmp_path / "kaggle").exists()


def test_dataset_without_tables(standin, tmp_path):
    with pytest.raises(KaggleDataError, match=f"{EMPTY_DATASET}.*no CSV or parquet"):
        download_dataset(EMPTY_DATASET, tmp_path / "kaggle")
    assert not (tmp_path / "kaggle").exists() and _leftovers(tmp_path) == []


def test_half_download_is_never_visible(standin, tmp_path):
    with pytest.raises(KaggleSourceError, match=CORRUPT_DATASET) as info:
        download_dataset(CORRUPT_DATASET, tmp_path / "kaggle")
    assert not isinstance(info.value, SourceDataError)  # a broken transfer may come through on a retry
    assert not (tmp_path / "kaggle").exists() and _leftovers(tmp_path) == []


def test_missing_credentials(standin, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    assert credentials_from_env() == (None, None)
    with pytest.raises(KaggleDataError, match=f"no Kaggle credentials.*{DEFAULT_KAGGLE_DATASET}"):
        download_dataset(DEFAULT_KAGGLE_DATASET, tmp_path / "kaggle")
    assert standin.requests == []


def test_half_given_credentials(tmp_path):
    with pytest.raises(KaggleDataError, match="incomplete"):
        download_dataset(DEFAULT_KAGGLE_DATASET, tmp_path / "kaggle", username=USER, key="")


def test_credentials_from_env():
    assert credentials_from_env() == (USER, KEY)


def test_read_tolerates_header_spelling_and_dates(tmp_path):
    (tmp_path / "a.csv").write_text(
        " Shop_ID ,Product ID,Date,Sales Qty,SALES_VALUE\n"
        "007,P1,2023-01-03,2,4.0\n"
        "007,P1,2023-01-20,1,2.0\n"
        "8,P2,2023-02-01,5,10.0\n"
    )
    frame = read_monthly_contract(tmp_path)
    assert list(frame.columns) == COLUMNS + ["sales_value"]
    assert frame.to_dict("records") == [
        {"shop_id": "007", "product_id": "P1", "year": 2023, "month": 1, "sales_qty": 3.0, "sales_value": 6.0},
        {"shop_id": "8", "product_id": "P2", "year": 2023, "month": 2, "sales_qty": 5.0, "sales_value": 10.0},
    ]


def test_read_rejects_files_without_contract_columns(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    with pytest.raises(KaggleDataError, match="missing monthly-contract"):
        read_monthly_contract(tmp_path)


def test_kaggle_months_run_through_the_pipeline(standin, sales, home, monkeypatch):
    """The kaggle source as the DAG and the CLI use it: downloaded once, split into monthly raw partitions."""
    from segmentation.config import load_settings
    from segmentation.lake.storage import Lake, month_ref
    from segmentation.sources.base import Source
    from segmentation.stages.ingest import ingest
    from segmentation.stages.validate import validate

    settings = load_settings()
    source = Source(kind="kaggle", cache_dir=str(home / "cache" / "kaggle"), credentials=(USER, KEY))
    for month in ("2023-01", "2023-02", "2023-03"):
        ingest(settings, month, source)
        validate(settings, month)
    downloads = [r for r in standin.requests if r[0] == "POST"]
    assert len(downloads) == 1
    raw = Lake(settings.lake_root).read_table(month_ref("raw", "2023-02")).to_pandas()
    assert len(raw) == len(sales[sales["month"] == 2])
    assert KEY not in repr(source)


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (403, False), (404, False), (429, True), (503, True)])
def test_only_kaggle_trouble_of_its_own_is_retried(status, retryable):
    import requests

    from segmentation.sources.kaggle import _translate

    response = requests.Response()
    response.status_code = status
    error = _translate(requests.HTTPError(f"{status} for url", response=response), DEFAULT_KAGGLE_DATASET, KEY)
    assert isinstance(error, KaggleSourceError) and str(status) in str(error) and DEFAULT_KAGGLE_DATASET in str(error)
    assert isinstance(error, SourceDataError) is not retryable
