"""Stage 7, report: one self-contained HTML page per month (PNG plots embedded) in reports/month=M.

First, for the people who use the segments (segmentation/business.py): one card per segment in business terms,
the movements since last month and each segment's top products. Then, for engineers: segment sizes over time,
profiles, a 2-D projection of the latent space coloured by segment, the autoencoder's loss curve, gate metrics
against their thresholds, and the baselines side by side. No external resources: inline CSS, SVG and PNGs.
"""

from __future__ import annotations

import base64
import html
import io
import logging

import numpy as np
import pandas as pd

from ..config import Settings
from ..lake.storage import Lake, as_of_ref, month_ref
from ..model import tracking
from ..model.registry import Registry
from ..warehouse.base import warehouse_for
from .decide import SKIP, read_decision

log = logging.getLogger(__name__)
PROJECTION_SAMPLE = 3_000


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def plot_sizes(history: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    table = history.pivot_table(index="month", columns="label", values="share", fill_value=0)
    table.plot(ax=ax, marker="o")
    ax.set_ylabel("share of shops")
    ax.set_title("Segment sizes over time")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig


def plot_profiles(profiles: pd.DataFrame):
    import matplotlib.pyplot as plt

    # only the medians the data has (shop data has no customer behaviour)
    values = profiles[[c for c in profiles.columns if c.startswith("median_")]].astype(float).dropna(axis=1, how="all")
    columns = list(values.columns)
    standardized = (values - values.mean()) / values.std(ddof=0).replace(0, 1)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(profiles)))
    ax.imshow(standardized.to_numpy(), cmap="coolwarm", aspect="auto", vmin=-2, vmax=2)
    ax.set_xticks(
        range(len(columns)), [c.removeprefix("median_") for c in columns], rotation=45, ha="right", fontsize=7
    )
    ax.set_yticks(
        range(len(profiles)),
        [f"{i}: {n}" for i, n in zip(profiles["segment_id"], profiles["name"], strict=True)],
        fontsize=7,
    )
    ax.set_title("Segment profiles (feature medians, standardised across segments)")
    return fig


def plot_projection(latent: np.ndarray, segments: np.ndarray):
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    points = PCA(n_components=2, random_state=0).fit_transform(latent) if latent.shape[1] > 2 else latent
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for segment in sorted(set(segments.tolist())):
        mask = segments == segment
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=4,
            alpha=0.6,
            label="noise" if segment == -1 else str(segment),
            color="lightgrey" if segment == -1 else None,
        )
    ax.set_title("Latent space (PCA), coloured by segment")
    ax.legend(fontsize=7, markerscale=3)
    return fig


def plot_loss(losses: list[float]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("epoch")
    ax.set_ylabel("huber loss")
    ax.set_yscale("log")
    ax.set_title("Autoencoder training loss")
    return fig


def _img(name: str, data: bytes) -> str:
    return f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}"/></figure>'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t")


def gate_table(metadata: dict) -> pd.DataFrame:
    metrics, gates = metadata.get("metrics", {}), metadata.get("gate_thresholds", {})
    rows = [
        ("noise share", metrics.get("noise_share"), f"<= {gates.get('max_noise_share')}"),
        ("segments", metrics.get("segments"), f">= {gates.get('min_segments')}"),
        ("largest share", metrics.get("largest_share"), f"<= {gates.get('max_largest_share')}"),
        ("size entropy", metrics.get("size_entropy"), "(balance, 1 = equal sizes)"),
        ("bootstrap stability", metrics.get("stability"), f">= {gates.get('min_stability')}"),
        ("ARI vs champion", metrics.get("ari_vs_champion"), "(agreement with the previous model)"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value", "gate"])


CANDIDATE_LABELS = {
    "autoencoder_hdbscan": "autoencoder + HDBSCAN",
    "autoencoder_kmeans": "autoencoder + KMeans (largest stable k)",
    "hdbscan": "HDBSCAN on scaled features",
    "kmeans": "KMeans on scaled features (largest stable k)",
    "gmm": "Gaussian mixture on scaled features (k by BIC)",
}


def baseline_table(metadata: dict) -> pd.DataFrame:
    """Every candidate fitted with the model, the chosen one first, with the score the selection used."""
    metrics, baselines = metadata.get("metrics", {}), metadata.get("baselines", {})
    chosen = metadata.get("candidate", "autoencoder_hdbscan")
    rows = (
        []
        if metadata.get("lifecycle_only")
        else [
            {
                "method": CANDIDATE_LABELS.get(chosen, chosen) + " (this model)",
                "segments": metrics.get("segments"),
                "noise_share": metrics.get("noise_share"),
                "largest_share": metrics.get("largest_share"),
                "stability": metrics.get("stability"),
                "silhouette": metrics.get("silhouette"),
                "calinski_harabasz": metrics.get("calinski_harabasz"),
                "score": metrics.get("score"),
                "ari_vs_model": 1.0,
            }
        ]
    )
    for name, b in baselines.items():
        rows.append(
            {
                "method": CANDIDATE_LABELS.get(name, name),
                "segments": b.get("segments"),
                "noise_share": b.get("noise_share"),
                "largest_share": b.get("largest_share"),
                "stability": b.get("stability"),
                "silhouette": b.get("silhouette"),
                "calinski_harabasz": b.get("calinski_harabasz"),
                "score": b.get("score"),
                "ari_vs_model": b.get("ari_vs_challenger"),
            }
        )
    return pd.DataFrame(rows)


STYLE = """<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222;background:#f7f7f8}
table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd}
figure{margin:1em 0}img{max-width:100%}</style>"""


def render(settings: Settings, month: str) -> tuple[str, dict]:
    """The month's report as HTML plus the PNG plots it embeds: the business view first, then the engineering."""
    lake = Lake(settings.lake_root)
    decision = read_decision(settings, month)
    title = f"Customer segments {month}"
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{STYLE}</head><body><h1>{title}</h1>"
    ]
    engineering = [
        f"<p><b>Decision:</b> {html.escape(decision['decision'])} &mdash; {html.escape(decision['reason'])}</p>"
    ]
    training = decision.get("training")
    if training:
        engineering.append(
            f"<p><b>Challenger v{training['challenger_version']}:</b> "
            f"{'promoted' if training['promoted'] else 'not promoted'} &mdash; "
            f"{html.escape(training['verdict'])}</p>"
        )
    pngs: dict[str, bytes] = {}
    if decision["decision"] == SKIP:
        profiles = warehouse_for(settings).query(
            "SELECT segment_id, name, shops, share FROM segment_profiles WHERE month = ? ORDER BY segment_id", [month]
        )
        parts += [
            "<p>Not enough history for the model yet: every shop has its lifecycle segment, the rest are "
            "&ldquo;Active, not segmented&rdquo; until the first model.</p>",
            _table(profiles),
            *engineering,
            "</body></html>",
        ]
        return "\n".join(parts), pngs
    from ..serving.business import PROFILE_COLUMNS, SCORE_COLUMNS, business_view, render_business, rows_in

    warehouse = warehouse_for(settings)
    history = warehouse.query(
        "SELECT month, segment_id, segment_name, share FROM segment_sizes WHERE month <= ? ORDER BY month, segment_id",
        [month],
    )
    history["label"] = history["segment_id"].astype(str) + " " + history["segment_name"]
    profiles = warehouse.query("SELECT * FROM segment_profiles WHERE month = ? ORDER BY segment_id", [month])
    scores_meta = lake.manifest(month_ref("scores", month))["metadata"]
    registry = Registry(lake)
    loaded = registry.load(scores_meta["model_version"], for_views=True)  # the projection needs no TensorFlow
    wanted = ["shop_id", "eligible", *loaded.metadata.get("features", []), *PROFILE_COLUMNS]
    features = lake.read_table(as_of_ref("features", month), columns=wanted).to_pandas()
    scores = lake.read_table(month_ref("scores", month), columns=SCORE_COLUMNS).to_pandas()
    business = render_business(business_view(lake, month, scores, features))
    rows = rows_in(features["shop_id"], scores["shop_id"])  # an inner join in the features' order
    scored = np.flatnonzero(rows >= 0)
    if len(scored) > PROJECTION_SAMPLE:  # sample first: copying every scored row to keep 3,000 cost seconds
        scored = np.sort(np.random.default_rng(0).choice(scored, PROJECTION_SAMPLE, replace=False))
    sample = features.iloc[scored].assign(segment_id=scores["segment_id"].to_numpy()[rows[scored]])
    pngs["segment_sizes.png"] = _png(plot_sizes(history))
    pngs["profiles.png"] = _png(plot_profiles(profiles))
    modelled = sample[sample["eligible"]] if "eligible" in sample else sample
    model_parts = [f"<p>Lifecycle segments only: {html.escape(loaded.metadata.get('selection', ''))}.</p>"]
    if loaded.model.segments_shops and len(modelled):
        pngs["latent_projection.png"] = _png(
            plot_projection(loaded.model.transform(modelled), modelled["segment_id"].to_numpy())
        )
        pngs["loss_curve.png"] = _png(plot_loss(loaded.metadata.get("loss_history", [])))
        model_parts = [
            f"<p>{html.escape(loaded.metadata.get('selection', ''))}</p>",
            _img("latent projection", pngs["latent_projection.png"]),
            _img("loss curve", pngs["loss_curve.png"]),
        ]
    parts += [
        business,
        "<h2 id='engineering'>For engineers</h2>",
        *engineering,
        f"<p>Scored with model v{loaded.version} (trained for {loaded.metadata['trained_for']}).</p>",
        "<h2>Segments</h2>",
        _table(profiles[["segment_id", "name", "shops", "share", "mean_strength"]]),
        _img("segment sizes", pngs["segment_sizes.png"]),
        _img("profiles", pngs["profiles.png"]),
        "<h2>Model</h2>",
        *model_parts,
        "<h2>Gate metrics (at training)</h2>",
        _table(gate_table(loaded.metadata)),
        "<h2>Candidates on the same month</h2>",
        _table(baseline_table(loaded.metadata)),
        "</body></html>",
    ]
    return "\n".join(parts), pngs


def report(settings: Settings, month: str) -> dict:
    """Write reports/month=M (report.html with embedded plots, plus the PNGs) and name its path."""
    page, pngs = render(settings, month)
    lake = Lake(settings.lake_root)
    manifest = lake.publish_files(month_ref("reports", month), {"report.html": page.encode(), **pngs}, {"month": month})
    tracking.log_report(settings, month, read_decision(settings, month), page)  # optional; never raises
    stored = next(f["file"] for f in manifest["files"] if f["name"] == "report.html")
    path = lake.url(f"reports/month={month}/{stored}")
    log.info("report %s: %s (%d plots)", month, path, len(pngs))
    return {"month": month, "path": path, "plots": sorted(pngs)}
