"""Segment profiles (size, share, feature medians, mean strength) and human-readable names."""

from __future__ import annotations

import math

import pandas as pd

PROFILE_FEATURES = [
    "log_mean_qty", "active_share", "cv", "log_slope", "resid_std", "seasonal_strength",
    "season_cos", "season_sin", "yoy_growth", "log_breadth", "recency_months",
]
SEASONS = {12: "Winter", 1: "Winter", 2: "Winter", 3: "Spring", 4: "Spring", 5: "Spring",
           6: "Summer", 7: "Summer", 8: "Summer", 9: "Autumn", 10: "Autumn", 11: "Autumn"}


def peak_month(season_cos: float, season_sin: float) -> int:
    """Calendar month (1-12) where the annual harmonic peaks."""
    angle = math.atan2(season_sin, season_cos) % (2 * math.pi)
    return int(round(angle / (2 * math.pi) * 12)) % 12 or 12


def segment_name(profile: dict, overall_log_qty: float) -> str:
    """A name from a segment's median behavior, e.g. 'Winter-peak seasonal' or 'High-volume steady'."""
    # seasonal swings also widen the residual spread, so seasonality is recognised before irregularity
    if profile["seasonal_strength"] > 0.5:
        return f"{SEASONS[peak_month(profile['season_cos'], profile['season_sin'])]}-peak seasonal"
    if profile["active_share"] < 0.85 or profile["resid_std"] > 0.6:
        return "Erratic"
    if profile["log_slope"] > 0.015:
        return "Growing"
    if profile["log_slope"] < -0.015:
        return "Declining"
    if profile["log_mean_qty"] > overall_log_qty + 0.5:
        return "High-volume steady"
    if profile["log_mean_qty"] < overall_log_qty - 0.5:
        return "Low-volume steady"
    return "Steady"


def build_profiles(month: str, scores: pd.DataFrame, features: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """One row per segment (noise included as -1) for the month."""
    frame = scores.merge(features[["shop_id", *PROFILE_FEATURES]], on="shop_id", how="left")
    medians = frame.groupby("segment_id")[PROFILE_FEATURES].median()
    grouped = frame.groupby("segment_id")
    profiles = pd.DataFrame({
        "month": month,
        "segment_id": medians.index.astype("int64"),
        "shops": grouped.size().reindex(medians.index).to_numpy(),
        "mean_strength": grouped["membership_strength"].mean().reindex(medians.index).to_numpy(),
    })
    profiles["share"] = profiles["shops"] / profiles["shops"].sum()
    profiles["name"] = [names.get(int(s), "Noise" if s == -1 else f"Segment {s}") for s in profiles["segment_id"]]
    for feature in PROFILE_FEATURES:
        profiles[f"median_{feature}"] = medians[feature].to_numpy()
    return profiles


def _base(name: str) -> str:
    """'Steady 2' -> 'Steady': the profile-derived part of a name made unique with a number."""
    head, _, tail = name.rpartition(" ")
    return head if head and tail.isdigit() else name


def name_segments(centroid_profiles: dict[int, dict], inherited: dict[int, str], overall_log_qty: float) -> dict[int, str]:
    """Names for segment ids. An id keeps its inherited name while its profile still earns it; otherwise
    (new id, or a profile that changed character) it gets the name its profile derives, made unique."""
    derived = {sid: segment_name(profile, overall_log_qty) for sid, profile in centroid_profiles.items()}
    names = {sid: inherited[sid] for sid in sorted(derived) if sid in inherited and _base(inherited[sid]) == derived[sid]}
    for segment_id in sorted(derived):
        if segment_id in names:
            continue
        name, n = derived[segment_id], 2
        while name in names.values():
            name, n = f"{derived[segment_id]} {n}", n + 1
        names[segment_id] = name
    return names
