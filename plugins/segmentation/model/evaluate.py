"""Challenger evaluation: quality metrics, bootstrap stability, agreement with the champion, baselines, gates."""

from __future__ import annotations

import logging

import numpy as np

from ..config import DEFAULT_GATES  # noqa: F401  (the default thresholds, for callers of apply_gates; Settings.gates)

log = logging.getLogger(__name__)

EVAL_SAMPLE = 5_000


def size_metrics(labels: np.ndarray) -> dict:
    clustered = labels[labels >= 0]
    sizes = np.bincount(clustered) if len(clustered) else np.array([])
    sizes = sizes[sizes > 0]
    shares = sizes / len(labels) if len(labels) else sizes
    p = sizes / sizes.sum() if sizes.sum() else sizes
    entropy = float(-(p * np.log(p)).sum() / np.log(len(p))) if len(p) > 1 else 0.0
    return {
        "segments": int(len(sizes)),
        "noise_share": float((labels < 0).mean()) if len(labels) else 0.0,
        "largest_share": float(shares.max()) if len(shares) else 0.0,
        "size_entropy": entropy,
    }


HELD_SHARE = 0.01  # a segment holding less of the month's shops no longer separates anything worth keeping


def segments_held(labels: np.ndarray) -> int:
    """Segments holding at least HELD_SHARE of the labelled shops: what a model still separates on a month."""
    clustered = labels[labels >= 0]
    return int((np.bincount(clustered) >= max(HELD_SHARE * len(labels), 1)).sum()) if len(clustered) else 0


def subsample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted row indices of a deterministic sample of at most `size` rows."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def bootstrap_stability(latent: np.ndarray, labels: np.ndarray, fit, rounds: int = 5, seed: int = 0) -> dict:
    """Per-segment Jaccard between the clusters and the best-matching cluster refitted on 80% resamples."""
    rng = np.random.default_rng(seed)
    segments = sorted(int(s) for s in set(labels.tolist()) if s >= 0)
    scores = {s: [] for s in segments}
    for _ in range(rounds):
        picked = np.sort(rng.choice(len(latent), size=int(0.8 * len(latent)), replace=False))
        refit = fit(latent[picked])
        original = labels[picked]
        for s in segments:
            members = set(np.flatnonzero(original == s))
            best = 0.0
            for c in set(refit.tolist()) - {-1}:
                other = set(np.flatnonzero(refit == c))
                best = max(best, len(members & other) / len(members | other))
            scores[s].append(best)
    per_segment = {str(s): float(np.mean(v)) for s, v in scores.items()}
    return {"per_segment": per_segment, "mean": float(np.mean(list(per_segment.values()))) if per_segment else 0.0}


def behaviour_metrics(labels: np.ndarray, behaviours: np.ndarray) -> dict:
    """The segment count and largest share before size tiers split segments (`behaviours`: labels before the split),
    for the gates; empty when no segment was split."""
    if np.array_equal(labels, behaviours):
        return {}
    sizes = size_metrics(behaviours)
    return {"behaviours": sizes["segments"], "largest_behaviour_share": sizes["largest_share"]}


def _before_tiers(metrics: dict) -> str:
    return " before size tiers" if "behaviours" in metrics else ""


def apply_gates(metrics: dict, champion: dict | None, gates: dict) -> list[str]:
    """Reasons the challenger must not be promoted; empty when every gate passes."""
    failures = []
    if metrics["noise_share"] > gates["max_noise_share"]:
        failures.append(f"noise share {metrics['noise_share']:.1%} > {gates['max_noise_share']:.0%}")
    # a size tier is not a behaviour: a blob split by size alone is still a blob (counted before the tiers)
    behaviours = metrics.get("behaviours", metrics["segments"])
    if behaviours < gates["min_segments"]:
        failures.append(f"{behaviours} segments{_before_tiers(metrics)} < {gates['min_segments']}")
    largest = metrics.get("largest_behaviour_share", metrics["largest_share"])
    if largest > gates["max_largest_share"]:
        failures.append(f"largest segment{_before_tiers(metrics)} {largest:.1%} > {gates['max_largest_share']:.0%}")
    if metrics["stability"] < gates["min_stability"]:
        failures.append(f"bootstrap stability {metrics['stability']:.2f} < {gates['min_stability']:.2f}")
    if champion:
        if metrics["noise_share"] > champion["noise_share"] + gates["max_noise_increase_vs_champion"]:
            failures.append(
                f"noise share {metrics['noise_share']:.1%} worse than the champion's "
                f"{champion['noise_share']:.1%} on this month"
            )
        if (
            "stability" in champion
            and metrics["stability"] < champion["stability"] - gates["max_stability_drop_vs_champion"]
        ):
            failures.append(
                f"stability {metrics['stability']:.2f} worse than the champion's {champion['stability']:.2f}"
            )
        ari = metrics.get("ari_vs_champion", 1.0)
        # the champion's segments that still hold shops this month (records before `segments_held`: all of them)
        held = champion.get("segments_held", champion["segments"])
        if metrics["segments"] < held and ari < gates["min_ari_when_losing_segments"]:
            # fewer segments that also disagree with the champion: segments the champion separates were merged
            failures.append(
                f"merges segments the champion separates ({held} -> {metrics['segments']} "
                f"segments, ARI vs champion {ari:.2f} < {gates['min_ari_when_losing_segments']})"
            )
    return failures


def review_failures(metrics: dict, champion: dict | None, gates: dict) -> list[str]:
    """Why a review's challenger must not replace the champion: it must score (candidate_score) at least
    min_score_gain_on_review above the champion's segments on the same month's shops, in the same space. A refit of
    unchanged behaviours scores within about 1% of the champion; one that separates a behaviour the champion
    merges scores 4-13% above it (independent planted shops, 2024-03 and 2024-06 of the runs in the README)."""
    if not champion or "score" not in champion:
        return []
    gain = gates["min_score_gain_on_review"]
    if metrics["score"] >= champion["score"] * (1 + gain):
        return []
    return [
        f"a review: score {metrics['score']:,.0f} is not {gain:.0%} above the champion's {champion['score']:,.0f} "
        "on this month"
    ]
