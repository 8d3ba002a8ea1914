import numpy as np
import pytest

from segmentation.model.evaluate import DEFAULT_GATES, apply_gates, bootstrap_stability, size_metrics

GOOD = {"noise_share": 0.02, "segments": 5, "largest_share": 0.3, "stability": 0.9, "ari_vs_champion": 0.95}
CHAMPION = {"noise_share": 0.02, "segments": 5, "largest_share": 0.3, "stability": 0.9}


def test_a_good_challenger_passes():
    assert apply_gates(GOOD, CHAMPION, DEFAULT_GATES) == []
    assert apply_gates(GOOD, None, DEFAULT_GATES) == []


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"noise_share": 0.4}, "noise share 40.0% > 10%"),
        ({"segments": 2}, "2 segments < 3"),
        ({"largest_share": 0.7}, "largest segment 70.0% > 60%"),
        ({"stability": 0.7}, "bootstrap stability 0.70 < 0.75"),
        ({"noise_share": 0.09}, "worse than the champion's"),
        ({"stability": 0.78}, "stability 0.78 worse than the champion's 0.90"),
        ({"segments": 4, "ari_vs_champion": 0.76}, "merges segments the champion separates (5 -> 4"),
    ],
)
def test_each_gate_rejects(change, reason):
    failures = apply_gates({**GOOD, **change}, CHAMPION, DEFAULT_GATES)
    assert any(reason in f for f in failures), failures


def test_losing_a_segment_that_agrees_with_the_champion_is_allowed():
    assert apply_gates({**GOOD, "segments": 4, "ari_vs_champion": 0.97}, CHAMPION, DEFAULT_GATES) == []


def test_thresholds_come_from_the_settings(home, monkeypatch):
    from segmentation.config import load_settings

    assert load_settings().gates == DEFAULT_GATES
    monkeypatch.setenv("SEGMENTATION_GATE_MAX_NOISE_SHARE", "0.5")
    assert load_settings({"SEGMENTATION_GATE_MIN_SEGMENTS": "4"}).gates == {
        **DEFAULT_GATES,
        "max_noise_share": 0.5,
        "min_segments": 4,
    }


def test_size_metrics_and_stability():
    labels = np.array([0] * 60 + [1] * 30 + [-1] * 10)
    metrics = size_metrics(labels)
    assert metrics == pytest.approx(
        {
            "segments": 2,
            "noise_share": 0.1,
            "largest_share": 0.6,
            "size_entropy": -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)) / np.log(2),
        }
    )
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (100, 2)), rng.normal(5, 0.1, (100, 2))])
    truth = np.repeat([0, 1], 100)
    stable = bootstrap_stability(blobs, truth, lambda z: (z[:, 0] > 2.5).astype(int), rounds=3)
    random = bootstrap_stability(blobs, truth, lambda z: rng.integers(0, 2, len(z)), rounds=3)
    assert stable["mean"] == 1.0 and random["mean"] < 0.7


def test_size_tiers_do_not_rescue_a_blob_or_too_few_behaviours():
    from segmentation.model.evaluate import behaviour_metrics

    # a 65% segment split by size into 40% and 25%, beside two others: still one behaviour holding 65%
    behaviours = np.repeat([0, 1, 2], [65, 20, 15])
    labels = np.where(np.arange(100) < 25, 3, behaviours)
    metrics = {**GOOD, **size_metrics(labels), **behaviour_metrics(labels, behaviours)}
    assert metrics["largest_share"] == 0.4 and metrics["behaviours"] == 3
    assert any("largest segment before size tiers 65.0% > 60%" in f for f in apply_gates(metrics, None, DEFAULT_GATES))
    two = np.repeat([0, 1], [50, 50])  # two behaviours, one split into tiers: three segments, two behaviours
    tiered = np.where(np.arange(100) < 20, 2, two)
    metrics = {**GOOD, **size_metrics(tiered), **behaviour_metrics(tiered, two)}
    assert any("2 segments before size tiers < 3" in f for f in apply_gates(metrics, None, DEFAULT_GATES))
    assert behaviour_metrics(two, two) == {}  # nothing split: the gates read the segments themselves
