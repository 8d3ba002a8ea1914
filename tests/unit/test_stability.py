import numpy as np

from segmentation.model.stability import align_segments, kept_share


def _labels(*groups):
    return np.concatenate([np.full(n, label) for label, n in groups])


def test_permuted_clusters_keep_their_ids():
    old = _labels((3, 50), (7, 30), (-1, 5), (9, 20))
    new = _labels((0, 50), (2, 30), (-1, 5), (1, 20))  # same members, other labels
    result = align_segments(old, new, next_id=10)
    assert result.segment_map == {0: 3, 2: 7, 1: 9}
    assert result.retired == []
    mapped = np.array([result.segment_map.get(c, -1) for c in new])
    assert kept_share(old, mapped) == 1.0


def test_a_split_keeps_the_id_on_the_larger_part_and_the_other_is_new():
    old = _labels((0, 100), (1, 60))
    new = _labels((0, 70), (1, 30), (2, 60))  # segment 0 split into clusters 0 (70) and 1 (30)
    result = align_segments(old, new, next_id=5)
    assert result.segment_map[0] == 0 and result.segment_map[2] == 1
    assert result.segment_map[1] == 5 and result.matched_by[1] == "new"


def test_a_vanished_segment_is_retired_and_never_reused():
    old = _labels((0, 50), (1, 50), (2, 50))
    new = _labels((0, 50), (1, 100))  # segments 1 and 2 merged
    result = align_segments(old, new, next_id=3)
    assert sorted(result.segment_map.values()) in ([0, 1], [0, 2])
    assert len(result.retired) == 1
    later = align_segments(_labels((0, 50)), _labels((0, 20), (1, 30)), next_id=3)
    assert later.segment_map[0] == 3 or later.segment_map[1] == 3
    assert result.retired[0] not in later.segment_map.values()


def test_centroids_match_when_members_barely_overlap():
    old = _labels((4, 40), (-1, 60))
    new = _labels((-1, 40), (0, 60))  # the new cluster holds other shops
    close = align_segments(old, new, 10, {4: np.array([0.0, 1.0])}, {0: np.array([0.1, 1.0])})
    far = align_segments(old, new, 10, {4: np.array([0.0, 1.0])}, {0: np.array([5.0, 1.0])})
    assert close.segment_map == {0: 4} and close.matched_by[0] == "centroid"
    assert far.segment_map == {0: 10} and far.retired == [4]


def test_first_model_gets_fresh_ids():
    result = align_segments(np.array([], dtype=int), np.array([], dtype=int), next_id=0)
    assert result.segment_map == {}
    result = align_segments(np.full(3, -1), np.array([0, 1, 1]), next_id=0)
    assert result.segment_map == {0: 0, 1: 1}
