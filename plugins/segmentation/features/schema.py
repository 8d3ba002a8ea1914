"""The feature schema: which columns the model reads, in which units (include/sql/features_schema.yaml and
customer_features.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

MIN_TENURE = 6


@lru_cache(maxsize=4)
def feature_schema(sql_dir: Path) -> dict:
    return yaml.safe_load((Path(sql_dir) / "features_schema.yaml").read_text())


def _model_columns(sql_dir: Path) -> list[dict]:
    schema = feature_schema(Path(sql_dir))
    return [c for c in schema["columns"] + schema.get("derived", []) if c["model"]]


def model_feature_names(sql_dir: Path) -> list[str]:
    return [c["name"] for c in _model_columns(sql_dir)]


def model_feature_units(sql_dir: Path) -> list[float | None]:
    """Each model feature's unit (schema `unit`; None: scale by the quantile range), in model_feature_names order."""
    return [c.get("unit") for c in _model_columns(sql_dir)]


def rfm_feature_names(sql_dir: Path) -> list[str]:
    return list(feature_schema(Path(sql_dir)).get("rfm", []))


def model_inputs(sql_dir: Path, with_rfm: bool) -> tuple[list[str], list[float | None]]:
    """The model's feature names and units, with the RFM features (quantile-scaled) appended when asked."""
    names, units = model_feature_names(sql_dir), model_feature_units(sql_dir)
    if with_rfm:
        extra = [n for n in rfm_feature_names(sql_dir) if n not in names]
        names, units = names + extra, units + [None] * len(extra)
    return names, units


@lru_cache(maxsize=4)
def customer_schema(sql_dir: Path) -> dict:
    return yaml.safe_load((Path(sql_dir) / "customer_features.yaml").read_text())


def customer_model_inputs(sql_dir: Path) -> tuple[list[str], list[float | None], list[str]]:
    """The model's inputs for customer (invoice) data: names, units (none: quantile-scaled) and the drift subset."""
    schema = customer_schema(Path(sql_dir))
    return list(schema["model"]), [None] * len(schema["model"]), list(schema["drift"])
