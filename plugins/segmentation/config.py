"""Settings from the environment, with defaults that run on a laptop.

Every setting has one environment variable (SEGMENTATION_*). All local state lives under
SEGMENTATION_HOME (default: `.local/` in the repository).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_SCORE_SHARDS = 256


def _env(name: str, default: str, env=None) -> str:
    value = (os.environ if env is None else env).get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int, env=None) -> int:
    raw = _env(name, str(default), env)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Where things live and how the method is tuned."""

    home: Path
    lake_root: str
    warehouse_path: Path
    sql_dir: Path
    window_months: int = 24
    min_history_months: int = 12
    customer_min_history_months: int = 6
    seed: int = 42
    latent_dim: int = 6
    epochs: int = 60
    train_sample: int = 50_000
    score_batch: int = 100_000
    feature_workers: int = 0  # 0 = the cores available (at most 8)
    score_shards: int = 2
    max_model_age_months: int = 12
    drift_feature_psi: float = 0.25
    drift_mix_psi: float = 0.20
    drift_noise_jump: float = 0.10
    retrain_cooldown_months: int = 2  # months without a drift retrain after one
    review_months: int = 3  # a shop model trained on most of the window is reviewed this often (0: never)
    rfm: str = "auto"
    recommend_method: str = "itemcf"  # see segmentation/stages/recommend.py METHODS
    recommend_top_n: int = 10
    warehouse_backend: str = "duckdb"
    warehouse_dsn: str | None = field(default=None, repr=False)
    warehouse_conn_id: str = "segmentation_warehouse"
    warehouse_wait_seconds: float = 120.0  # how long a DuckDB writer waits for another process's session
    gcp_conn_id: str = "google_cloud_default"
    bq_project: str | None = None
    bq_dataset: str | None = None
    landing: str = ""  # load_settings: $SEGMENTATION_HOME/landing
    notify: str = "log"
    # experiment tracking (segmentation/model/tracking.py): off unless a tracking URI is set; may hold credentials
    mlflow_tracking_uri: str | None = field(default=None, repr=False)
    mlflow_experiment: str = "segmentation"
    # gates: of the model's shops (lifecycle rules take the thin histories before the model sees them)
    gate_max_noise_share: float = 0.10
    gate_min_segments: int = 3
    gate_max_largest_share: float = 0.60
    gate_min_stability: float = 0.75  # mean per-segment bootstrap Jaccard: Hennig's "stable"
    gate_max_noise_increase_vs_champion: float = 0.05
    gate_max_stability_drop_vs_champion: float = 0.10
    gate_min_ari_when_losing_segments: float = 0.90
    gate_min_score_gain_on_review: float = 0.03  # a review's challenger must score this much above the champion

    @property
    def gates(self) -> dict:
        """The gate thresholds by the names evaluate.apply_gates reads (max_noise_share, ...)."""
        return {name.removeprefix("gate_"): getattr(self, name) for name in GATE_FIELDS}

    @property
    def notify_targets(self) -> list[str]:
        """SEGMENTATION_NOTIFY as a list of targets (log, email:a@x;b@y, slack:<connection id>)."""
        return [target.strip() for target in self.notify.split(",") if target.strip()]


GATE_FIELDS = tuple(f.name for f in fields(Settings) if f.name.startswith("gate_"))
DEFAULT_GATES = {name.removeprefix("gate_"): Settings.__dataclass_fields__[name].default for name in GATE_FIELDS}
NOTIFY_KINDS = ("log", "email", "slack")


def _env_float(name: str, default: float, env=None) -> float:
    raw = _env(name, str(default), env)
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None


WAREHOUSE_BACKENDS = ("duckdb", "postgres", "bigquery")
RECOMMEND_METHODS = ("itemcf", "segment_itemcf", "popular", "segment_popular")  # recommend.METHODS


def _env_gates(env) -> dict:
    """SEGMENTATION_GATE_<NAME> for each gate field, over its default."""
    gates = {}
    for name in GATE_FIELDS:
        default = Settings.__dataclass_fields__[name].default
        read = _env_int if isinstance(default, int) else _env_float
        gates[name] = read(f"SEGMENTATION_{name.upper()}", default, env)
    return gates


def load_settings(overrides: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (over `overrides`, e.g. an Airflow Variable) and check them."""
    unknown = sorted(k for k in (overrides or {}) if not k.startswith("SEGMENTATION_"))
    if unknown:
        raise ValueError(f"settings must be named SEGMENTATION_*, got {', '.join(unknown)}")
    env = {**(overrides or {}), **os.environ}
    home = Path(_env("SEGMENTATION_HOME", str(REPO_ROOT / ".local"), env)).expanduser().resolve()
    settings = Settings(
        home=home,
        lake_root=_env("SEGMENTATION_LAKE_ROOT", str(home / "lake"), env),
        warehouse_path=Path(_env("SEGMENTATION_WAREHOUSE_PATH", str(home / "warehouse" / "segmentation.duckdb"), env)),
        sql_dir=Path(_env("SEGMENTATION_SQL_DIR", str(REPO_ROOT / "include" / "sql"), env)),
        window_months=_env_int("SEGMENTATION_WINDOW_MONTHS", 24, env),
        min_history_months=_env_int("SEGMENTATION_MIN_HISTORY_MONTHS", 12, env),
        customer_min_history_months=_env_int("SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS", 6, env),
        seed=_env_int("SEGMENTATION_SEED", 42, env),
        latent_dim=_env_int("SEGMENTATION_LATENT_DIM", 6, env),
        epochs=_env_int("SEGMENTATION_EPOCHS", 60, env),
        train_sample=_env_int("SEGMENTATION_TRAIN_SAMPLE", 50_000, env),
        feature_workers=_env_int("SEGMENTATION_FEATURE_WORKERS", 0, env),
        score_shards=_env_int("SEGMENTATION_SCORE_SHARDS", 2, env),
        max_model_age_months=_env_int("SEGMENTATION_MODEL_MAX_AGE_MONTHS", 12, env),
        drift_feature_psi=_env_float("SEGMENTATION_DRIFT_FEATURE_PSI", 0.25, env),
        drift_mix_psi=_env_float("SEGMENTATION_DRIFT_MIX_PSI", 0.20, env),
        drift_noise_jump=_env_float("SEGMENTATION_DRIFT_NOISE_JUMP", 0.10, env),
        retrain_cooldown_months=_env_int("SEGMENTATION_RETRAIN_COOLDOWN_MONTHS", 2, env),
        review_months=_env_int("SEGMENTATION_REVIEW_MONTHS", 3, env),
        rfm=_env("SEGMENTATION_RFM", "auto", env),
        recommend_method=_env("SEGMENTATION_RECOMMEND_METHOD", "itemcf", env),
        recommend_top_n=_env_int("SEGMENTATION_RECOMMEND_TOP_N", 10, env),
        warehouse_backend=_env("SEGMENTATION_WAREHOUSE_BACKEND", "duckdb", env),
        warehouse_dsn=env.get("SEGMENTATION_WAREHOUSE_DSN") or None,
        warehouse_conn_id=_env("SEGMENTATION_WAREHOUSE_CONN_ID", "segmentation_warehouse", env),
        warehouse_wait_seconds=_env_float("SEGMENTATION_WAREHOUSE_WAIT_SECONDS", 120.0, env),
        gcp_conn_id=_env("SEGMENTATION_GCP_CONN_ID", "google_cloud_default", env),
        bq_project=env.get("SEGMENTATION_BQ_PROJECT") or None,
        bq_dataset=env.get("SEGMENTATION_BQ_DATASET") or None,
        landing=_env("SEGMENTATION_LANDING", str(home / "landing"), env),
        notify=_env("SEGMENTATION_NOTIFY", "log", env),
        mlflow_tracking_uri=env.get("SEGMENTATION_MLFLOW_TRACKING_URI") or None,
        mlflow_experiment=_env("SEGMENTATION_MLFLOW_EXPERIMENT", "segmentation", env),
        **_env_gates(env),
    )
    validate_settings(settings)
    return settings


def validate_settings(settings: Settings) -> None:
    problems = []
    if not 1 <= settings.customer_min_history_months <= settings.window_months:
        problems.append(
            "SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS must be between 1 and the window "
            f"({settings.window_months}), got {settings.customer_min_history_months}"
        )
    if settings.window_months < 1:
        problems.append(f"SEGMENTATION_WINDOW_MONTHS must be >= 1, got {settings.window_months}")
    if not 1 <= settings.min_history_months <= settings.window_months:
        problems.append(
            "SEGMENTATION_MIN_HISTORY_MONTHS must be between 1 and the window "
            f"({settings.window_months}), got {settings.min_history_months}"
        )
    if not 2 <= settings.latent_dim <= 20:
        problems.append(f"SEGMENTATION_LATENT_DIM must be between 2 and 20, got {settings.latent_dim}")
    if not 1 <= settings.score_shards <= MAX_SCORE_SHARDS:
        problems.append(
            f"SEGMENTATION_SCORE_SHARDS must be between 1 and {MAX_SCORE_SHARDS}, got {settings.score_shards}"
        )
    if settings.warehouse_backend not in WAREHOUSE_BACKENDS:
        problems.append(
            f"SEGMENTATION_WAREHOUSE_BACKEND must be one of {', '.join(WAREHOUSE_BACKENDS)}, "
            f"got {settings.warehouse_backend!r}"
        )
    if settings.warehouse_backend == "bigquery" and not (settings.bq_project and settings.bq_dataset):
        problems.append(
            "SEGMENTATION_WAREHOUSE_BACKEND=bigquery needs SEGMENTATION_BQ_PROJECT and SEGMENTATION_BQ_DATASET"
        )
    for name, url in (("SEGMENTATION_LAKE_ROOT", settings.lake_root), ("SEGMENTATION_LANDING", settings.landing)):
        if not url.startswith(("gs://", "gcs://", "/", "file://")) and "://" in url:
            problems.append(f"{name} must be a local path or gs://bucket/prefix, got {url!r}")
    problems += _notify_problems(settings.notify_targets) + _gate_problems(settings)
    problems += _mlflow_problems(settings)
    if settings.recommend_method not in RECOMMEND_METHODS:
        problems.append(
            f"SEGMENTATION_RECOMMEND_METHOD must be one of {', '.join(RECOMMEND_METHODS)}, "
            f"got {settings.recommend_method!r}"
        )
    if not 1 <= settings.recommend_top_n <= 100:
        problems.append(f"SEGMENTATION_RECOMMEND_TOP_N must be between 1 and 100, got {settings.recommend_top_n}")
    if settings.rfm not in ("auto", "on", "off"):
        problems.append(f"SEGMENTATION_RFM must be auto, on or off, got {settings.rfm!r}")
    if not 0 <= settings.feature_workers <= 64:
        problems.append(
            f"SEGMENTATION_FEATURE_WORKERS must be between 0 (all cores) and 64, got {settings.feature_workers}"
        )
    if settings.max_model_age_months < 1:
        problems.append(f"SEGMENTATION_MODEL_MAX_AGE_MONTHS must be >= 1, got {settings.max_model_age_months}")
    if settings.review_months < 0:
        problems.append(f"SEGMENTATION_REVIEW_MONTHS must be >= 0 (0: no reviews), got {settings.review_months}")
    if settings.retrain_cooldown_months < 0:
        problems.append(f"SEGMENTATION_RETRAIN_COOLDOWN_MONTHS must be >= 0, got {settings.retrain_cooldown_months}")
    for name in ("drift_feature_psi", "drift_mix_psi", "drift_noise_jump"):
        if getattr(settings, name) <= 0:
            problems.append(f"SEGMENTATION_{name.upper()} must be > 0, got {getattr(settings, name)}")
    if settings.warehouse_wait_seconds < 0:
        problems.append(f"SEGMENTATION_WAREHOUSE_WAIT_SECONDS must be >= 0, got {settings.warehouse_wait_seconds}")
    if not settings.sql_dir.is_dir():
        problems.append(f"SQL directory not found: {settings.sql_dir} (set SEGMENTATION_SQL_DIR)")
    if problems:
        raise ValueError("invalid segmentation settings:\n  " + "\n  ".join(problems))


MLFLOW_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "databricks")


def _mlflow_problems(settings: Settings) -> list[str]:
    uri = settings.mlflow_tracking_uri
    problems = []
    if uri is not None and uri.partition(":")[0] not in MLFLOW_SCHEMES:
        # the value itself is not repeated: it may carry credentials
        problems.append(
            "SEGMENTATION_MLFLOW_TRACKING_URI must be an MLflow tracking URI starting with one of "
            f"{', '.join(s + ':' for s in MLFLOW_SCHEMES)}"
        )
    if not settings.mlflow_experiment.strip():
        problems.append("SEGMENTATION_MLFLOW_EXPERIMENT must not be empty")
    return problems


def _notify_problems(targets: list[str]) -> list[str]:
    problems = []
    for target in targets:
        kind, _, value = target.partition(":")
        addresses = [address for address in value.split(";") if address.strip()]
        if kind not in NOTIFY_KINDS:
            problems.append(
                f"SEGMENTATION_NOTIFY: unknown target {target!r}; use log, email:a@x.org;b@y.org or "
                "slack:<connection id>"
            )
        elif kind == "email" and not (addresses and all("@" in address for address in addresses)):
            problems.append(f"SEGMENTATION_NOTIFY: {target!r} must name e-mail addresses (email:a@x.org;b@y.org)")
    return problems


def _gate_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.gate_min_segments < 1:
        problems.append(f"SEGMENTATION_GATE_MIN_SEGMENTS must be >= 1, got {settings.gate_min_segments}")
    for name in GATE_FIELDS:
        value = getattr(settings, name)
        if name != "gate_min_segments" and not 0 <= value <= 1:
            problems.append(f"SEGMENTATION_{name.upper()} must be between 0 and 1, got {value}")
    return problems
