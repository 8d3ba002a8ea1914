"""Kaggle as a source: download a dataset with the official `kaggle` client and read it as the monthly contract.

The download lands in a temporary folder next to the destination and is moved into place only when it is
complete, with a `_complete.json` marker (file names, sizes, sha256) that makes a repeated call a no-op.
Credentials come from the arguments, else KAGGLE_USERNAME / KAGGLE_KEY, else whatever the official client
finds itself (kaggle.json in KAGGLE_CONFIG_DIR, an access token). The key never appears in logs or errors.

The `kaggle` package is imported lazily: importing it authenticates and may touch the config folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from ..contract import KEY_COLUMNS
from .base import SourceDataError, SourceError

MARKER_NAME = "_complete.json"
DATA_SUFFIXES = (".csv", ".parquet", ".pq")

log = logging.getLogger(__name__)

# Header spellings (after lower-casing and joining words with "_") mapped to contract columns.
_ALIASES = {
    "shop": "shop_id",
    "shopid": "shop_id",
    "store_id": "shop_id",
    "product": "product_id",
    "productid": "product_id",
    "item_id": "product_id",
    "qty": "sales_qty",
    "quantity": "sales_qty",
    "salesqty": "sales_qty",
    "sales_quantity": "sales_qty",
    "value": "sales_value",
    "salesvalue": "sales_value",
    "sales_amount": "sales_value",
}


class KaggleSourceError(SourceError):
    """The Kaggle dataset could not be delivered this time (network, Kaggle's own errors): may succeed on retry."""


class KaggleDataError(KaggleSourceError, SourceDataError):
    """The Kaggle dataset cannot be used as asked: no or refused credentials, unknown dataset, no data file, no
    monthly-contract columns. Retrying won't help."""


def credentials_from_env() -> tuple[str | None, str | None]:
    """(KAGGLE_USERNAME, KAGGLE_KEY) from the environment; None for what is unset or empty."""
    return os.environ.get("KAGGLE_USERNAME") or None, os.environ.get("KAGGLE_KEY") or None


def download_dataset(dataset: str, dest_dir: Path, username: str | None = None, key: str | None = None) -> Path:
    """Download and unzip all files of `dataset` into `dest_dir` (atomically; skipped if already complete)."""
    dest_dir = Path(dest_dir)
    if _completed(dest_dir, dataset):
        log.info("Kaggle dataset %s already downloaded in %s; skipping", dataset, dest_dir)
        return dest_dir
    if username is None and key is None:
        username, key = credentials_from_env()
    if bool(username) != bool(key):
        raise KaggleDataError(f"incomplete Kaggle credentials for dataset {dataset!r}: give both a username and a key")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.partial-", dir=dest_dir.parent))
    try:
        _download_into(dataset, tmp, username, key)
        files = _data_files(tmp)
        if not files:
            raise KaggleDataError(f"Kaggle dataset {dataset!r} holds no CSV or parquet file")
        _write_marker(tmp, dataset, files)
        _install(tmp, dest_dir, dataset)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Downloaded Kaggle dataset %s into %s", dataset, dest_dir)
    return dest_dir


def read_monthly_contract(dest_dir: Path) -> pd.DataFrame:
    """The downloaded CSV/parquet file(s) as the monthly contract (ids as strings, one row per key)."""
    dest_dir = Path(dest_dir)
    files = _data_files(dest_dir)
    if not files:
        raise KaggleDataError(f"no CSV or parquet file in {dest_dir}")
    frames = [_normalise(_read(dest_dir / name), name) for name in files]
    frame = pd.concat(frames, ignore_index=True)
    value_cols = ["sales_qty"] + (["sales_value"] if "sales_value" in frame else [])
    if frame.duplicated(KEY_COLUMNS).any():  # e.g. daily rows from a date column: sum into months
        frame = frame.groupby(KEY_COLUMNS, as_index=False, sort=False)[value_cols].sum(min_count=1)
    return frame[KEY_COLUMNS + value_cols].reset_index(drop=True)


# --- download -------------------------------------------------------------------------------------------


def _mask(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _make_api(username: str | None, key: str | None):
    """An official KaggleApi whose HTTP client honours KAGGLE_API_ENVIRONMENT (e.g. TEST) and KAGGLE_CONFIG_DIR.

    kaggle 2.x builds its client for PROD unless the CLI was started with --local/--staging/--admin, so the
    environment variable alone does not reach kagglesdk; this subclass passes kagglesdk's own `get_env()`.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # importing kaggle authenticates and may print help
        from kaggle.api.kaggle_api_extended import KaggleApi
        from kagglesdk import KaggleClient
        from kagglesdk.kaggle_env import get_env

    class _EnvAwareKaggleApi(KaggleApi):
        def build_kaggle_client(self):
            return KaggleClient(
                env=get_env(),
                verbose=False,  # verbose mode prints the Authorization header
                username=self.config_values.get(self.CONFIG_NAME_USER),
                password=self.config_values.get(self.CONFIG_NAME_KEY),
                api_token=self.config_values.get(self.CONFIG_NAME_TOKEN),
                response_processor=self.get_response_processor(),
            )

    api = _EnvAwareKaggleApi()
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    if config_dir:  # the class reads it once at import; honour the value at call time
        api.config_dir = config_dir
        api.config = os.path.join(config_dir, api.config_file)
    if username and key:
        api.config_values = {api.CONFIG_NAME_USER: username, api.CONFIG_NAME_KEY: key}
        api._authenticated = True
    return api


def _download_into(dataset: str, target: Path, username: str | None, key: str | None) -> None:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            api = _make_api(username, key)
            if not (username and key):
                try:
                    api.authenticate()
                except SystemExit:
                    raise KaggleDataError(
                        f"no Kaggle credentials to download dataset {dataset!r}: pass username and key, "
                        "or set KAGGLE_USERNAME and KAGGLE_KEY, or provide kaggle.json in KAGGLE_CONFIG_DIR"
                    ) from None
                key = api.config_values.get(api.CONFIG_NAME_KEY) or api.config_values.get(api.CONFIG_NAME_TOKEN)
            api.dataset_download_files(dataset, path=str(target), force=True, quiet=True, unzip=True)
    except KaggleSourceError:
        raise
    except Exception as exc:
        raise _translate(exc, dataset, key) from None
    finally:
        if out.getvalue().strip():
            log.debug("kaggle client output: %s", _mask(out.getvalue().strip(), key))


def _translate(exc: Exception, dataset: str, key: str | None) -> KaggleSourceError:
    """A KaggleSourceError naming the dataset, with the key masked out of the original message: a KaggleDataError
    (no retry) when Kaggle refused the credentials or does not know the dataset."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    detail = _mask(f"{type(exc).__name__}: {exc}", key)
    if status in (401, 403):
        return KaggleDataError(f"Kaggle refused the credentials (HTTP {status}) for dataset {dataset!r} ({detail})")
    if status == 404:
        return KaggleDataError(
            f"Kaggle dataset not found (HTTP 404; or not visible to this account) for dataset {dataset!r} ({detail})"
        )
    reason = f"Kaggle answered HTTP {status}" if status is not None else "download failed"
    return KaggleSourceError(f"{reason} for dataset {dataset!r} ({detail})")


# --- completed-download marker ----------------------------------------------------------------------------


def _data_files(folder: Path) -> list[str]:
    """Relative posix names of the data files under folder (marker's list if present), sorted."""
    marker = folder / MARKER_NAME
    if marker.is_file():
        with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
            return sorted(json.loads(marker.read_text())["files"])
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not p.name.startswith(".")
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_marker(folder: Path, dataset: str, files: list[str]) -> None:
    entries = {name: {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size} for name in files}
    (folder / MARKER_NAME).write_text(json.dumps({"dataset": dataset, "files": entries}, indent=2))


def _completed(folder: Path, dataset: str) -> bool:
    """Whether folder holds a complete download of dataset whose files still match the marker."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text())
        if marker.get("dataset") != dataset or not marker.get("files"):
            return False
        for name, entry in marker["files"].items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _install(tmp: Path, dest: Path, dataset: str) -> None:
    """Move the finished download into place; an older folder is moved aside first, then removed."""
    if dest.exists():
        if _completed(dest, dataset):  # another run finished first
            return
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


# --- reading --------------------------------------------------------------------------------------------


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, skipinitialspace=True)  # ids keep leading zeros; numbers parsed below


def _column_name(raw: object) -> str:
    name = "_".join(str(raw).strip().lower().replace("-", " ").split())
    return _ALIASES.get(name, name)


def _normalise(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.rename(columns=_column_name)
    if ("year" not in frame or "month" not in frame) and "date" in frame:
        dates = pd.to_datetime(frame["date"], errors="coerce")
        frame = frame.assign(year=dates.dt.year, month=dates.dt.month)
    missing = [c for c in KEY_COLUMNS + ["sales_qty"] if c not in frame]
    if missing:
        raise KaggleDataError(f"{name}: missing monthly-contract column(s) {', '.join(missing)}")
    try:
        out = pd.DataFrame(
            {
                "shop_id": frame["shop_id"].astype(str).str.strip(),
                "product_id": frame["product_id"].astype(str).str.strip(),
                "year": pd.to_numeric(frame["year"], errors="raise").astype("int64"),
                "month": pd.to_numeric(frame["month"], errors="raise").astype("int64"),
                "sales_qty": pd.to_numeric(frame["sales_qty"], errors="coerce").astype("float64"),
            }
        )
    except (ValueError, TypeError) as exc:
        raise KaggleDataError(f"{name}: year/month must be whole numbers ({exc})") from exc
    if "sales_value" in frame:
        out["sales_value"] = pd.to_numeric(frame["sales_value"], errors="coerce").astype("float64")
    return out
