"""Sharded scoring: any shard count publishes the same scores; parts are checked, combined and removed."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import segmentation
from segmentation.config import load_settings
from segmentation.lake.storage import Lake, as_of_ref, month_ref
from segmentation.model.registry import Registry
from segmentation.pipeline import run_months
from segmentation.sources.base import Source
from segmentation.stages.score import PARTS_ZONE, combine_scores, score, score_shard, shard_of, shard_ref

MONTH = "2023-03"  # the first month with a model: 2023-01 and 2023-02 warm up


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_sales_file):
    """A lake with features for three months and a model for MONTH (600 shops, few epochs), trained once."""
    home = tmp_path_factory.mktemp("score-shards") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGMENTATION_HOME", str(home))
        for name in ("SEGMENTATION_LAKE_ROOT", "SEGMENTATION_WAREHOUSE_PATH", "SEGMENTATION_SCORE_SHARDS"):
            patch.delenv(name, raising=False)
        patch.setenv("SEGMENTATION_MIN_HISTORY_MONTHS", "3")
        patch.setenv("SEGMENTATION_EPOCHS", "15")
        for name, high in (("FEATURE_PSI", "50"), ("MIX_PSI", "50"), ("NOISE_JUMP", "1")):
            patch.setenv(f"SEGMENTATION_DRIFT_{name}", high)
        settings = load_settings()
        results = run_months(settings, "2023-01", MONTH, Source(kind="file", path=str(small_sales_file)))
    assert results[-1]["decide"]["decision"] == "train"
    return settings


@pytest.fixture
def lake(trained) -> Lake:
    return Lake(trained.lake_root)


def with_shards(settings, n_shards: int):
    return dataclasses.replace(settings, score_shards=n_shards)


def published(lake: Lake) -> tuple[dict, bytes]:
    ref = month_ref("scores", MONTH)
    return lake.manifest(ref), lake.read_file(ref, "data.parquet")


def copy_with_month(trained, sales_file: Path, tmp_path: Path, month: str):
    """Settings of a copy of the trained home (under tmp_path) that has also run `month`."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained.home, home)
    settings = dataclasses.replace(
        trained, home=home, lake_root=str(home / "lake"), warehouse_path=home / "warehouse" / "segmentation.duckdb"
    )
    run_months(settings, month, month, Source(kind="file", path=str(sales_file)))
    return settings


def parts_left(lake: Lake) -> list[str]:
    return lake.list_dir(f"{PARTS_ZONE}/month={MONTH}")


@pytest.mark.slow
def test_any_shard_count_publishes_identical_scores(trained, lake):
    features = lake.read_table(as_of_ref("features", MONTH)).to_pandas()
    results = {}
    for n_shards in (1, 3, 7, 256):  # 256 shards over 600 shops: some shards are empty
        lake.remove_partition(month_ref("scores", MONTH))  # publish anew each time: compare the files, not a no-op
        summary = score(with_shards(trained, n_shards), MONTH)
        manifest, data = published(lake)
        results[n_shards] = (manifest["metadata"]["content_sha"], data, lake.read_table(month_ref("scores", MONTH)))
        assert summary["shards"] == n_shards and summary["shops"] == len(features)
        assert {"month", "model_version", "shops", "segments", "noise_share", "path", "seconds"} <= set(summary)
        assert parts_left(lake) == []  # the lake keeps one copy of the month's scores
    one_sha, one_bytes, one_table = results[1]
    for n_shards, (sha, data, table) in results.items():
        assert sha == one_sha, n_shards
        assert data == one_bytes, n_shards
        assert table.equals(one_table), n_shards
    # rows in the features' order; the model's shops get the segments the model gives them in one go, the rest
    # their lifecycle segment
    assert one_table["shop_id"].to_pylist() == features["shop_id"].astype(str).tolist()
    bundle = Registry(lake).load(one_table["model_version"][0].as_py())
    modelled = features["lifecycle_segment"].isna().to_numpy()
    segment, strength = bundle.model.predict(features[modelled])
    np.testing.assert_array_equal(one_table["segment_id"].to_numpy()[modelled], segment)
    np.testing.assert_array_equal(one_table["membership_strength"].to_numpy()[modelled], strength)
    np.testing.assert_array_equal(
        one_table["segment_id"].to_numpy()[~modelled], features.loc[~modelled, "lifecycle_segment"].to_numpy()
    )


def test_each_shop_is_scored_in_exactly_one_shard(trained, lake):
    n_shards = 5
    shop_ids = lake.read_table(as_of_ref("features", MONTH))["shop_id"].to_pylist()
    seen = []
    for shard in range(n_shards):
        summary = score_shard(trained, MONTH, shard, n_shards)
        part = lake.read_table(shard_ref(MONTH, shard, n_shards))
        ids = part["shop_id"].to_pylist()
        assert summary["shops"] == len(ids) > 0
        assert (shard_of(ids, n_shards) == shard).all()
        seen += ids
    assert sorted(seen) == sorted(shop_ids) and len(set(seen)) == len(seen)
    before, _ = published(lake)
    combine_scores(trained, MONTH, n_shards)
    assert published(lake)[0] == before  # same content as already published: left untouched
    assert parts_left(lake) == []


@pytest.mark.slow
def test_shard_of_is_stable_across_processes_and_spreads_shops():
    ids = [f"S{i:07d}" for i in range(20_000)] + ["12346", "C-00017", "shop ü", ""]
    mine = {n: shard_of(ids, n) for n in (1, 2, 3, 7, 16, 256)}
    probe = (
        "import json, sys; from segmentation.stages.score import shard_of; ids = json.load(sys.stdin); "
        "print(json.dumps({n: shard_of(ids, n).tolist() for n in (1, 2, 3, 7, 16, 256)}))"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    plugins = str(Path(segmentation.__file__).resolve().parents[1])  # the same library as this process
    env = {
        **os.environ,
        "PYTHONHASHSEED": seed,  # another interpreter with another str-hash salt
        "PYTHONPATH": os.pathsep.join(filter(None, [plugins, os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], input=json.dumps(ids), capture_output=True, text=True, check=True, env=env
    ).stdout
    theirs = json.loads(out)
    for n, shards in mine.items():
        assert theirs[str(n)] == shards.tolist(), n
    for n, shards in mine.items():
        assert np.issubdtype(shards.dtype, np.integer) and len(shards) == len(ids)
        assert shards.min() >= 0 and shards.max() < n
        counts = np.bincount(shards, minlength=n)
        expected = len(ids) / n
        assert counts.min() > 0.8 * expected and counts.max() < 1.2 * expected, (n, counts.min(), counts.max())
    assert (mine[1] == 0).all()
    # a shop's shard depends on its id only: not on the other ids, their order or the container
    order = np.random.default_rng(0).permutation(len(ids))
    assert (shard_of([ids[i] for i in order], 7) == mine[7][order]).all()
    assert (shard_of(pa.array(ids[:50]).to_pandas(), 7) == mine[7][:50]).all()


def test_a_missing_shard_is_named(trained, lake):
    lake.remove_partition(month_ref("scores", MONTH))  # nothing combined yet from these features
    for shard in (0, 2):
        score_shard(trained, MONTH, shard, 3)
    with pytest.raises(RuntimeError, match=r"scores for 2023-03: shard\(s\) 1 of 3 .*run score_shard") as error:
        combine_scores(trained, MONTH, 3)
    assert lake.manifest(month_ref("scores", MONTH)) is None
    score_shard(trained, MONTH, 1, 3)
    summary = combine_scores(trained, MONTH, 3)
    assert summary["shards"] == 3 and summary["shops"] > 0 and parts_left(lake) == []
    assert "1 of 3" in str(error.value)


def test_parts_of_another_model_or_shard_count_are_refused(trained, lake):
    for shard in range(2):
        score_shard(trained, MONTH, shard, 2)

    def tamper(shard, **metadata):
        ref = shard_ref(MONTH, shard, 2)
        manifest = lake.manifest(ref)
        lake.write_table(ref, lake.read_table(ref), {**manifest["metadata"], **metadata})

    tamper(1, model_version="9999")
    with pytest.raises(RuntimeError, match=r"part 1 of 2 for 2023-03 .*scored with model v9999, but v0001 applies"):
        combine_scores(trained, MONTH, 2)
    score_shard(trained, MONTH, 1, 2)  # a re-run repairs the part
    tamper(0, n_shards=4)
    with pytest.raises(RuntimeError, match=r"part 0 of 2 for 2023-03 .*written as shard 0 of 4"):
        combine_scores(trained, MONTH, 2)
    score_shard(trained, MONTH, 0, 2)
    combine_scores(trained, MONTH, 2)
    assert parts_left(lake) == []


@pytest.mark.parametrize(("shard", "n_shards"), [(3, 3), (-1, 3), (0, 0), (0, 257), (True, 2), (1.0, 2)])
def test_bad_shard_arguments_are_refused(trained, lake, shard, n_shards):
    with pytest.raises(ValueError, match="shard"):
        score_shard(trained, MONTH, shard, n_shards)
    assert parts_left(lake) == []


def test_recombining_identical_parts_leaves_the_published_scores_untouched(trained, lake):
    settings = with_shards(trained, 3)
    score(settings, MONTH)
    before, data = published(lake)
    for shard in range(3):  # a retried or re-run fan-out
        assert score_shard(trained, MONTH, shard, 3)["unchanged"] is False  # the parts were removed after combining
        assert score_shard(trained, MONTH, shard, 3)["unchanged"] is True  # a retry leaves its own part as it is
    combined = combine_scores(trained, MONTH, 3)
    assert published(lake) == (before, data)
    # a combine retried after it removed the parts: the scores from these features and this model stand
    again = combine_scores(trained, MONTH, 3)
    assert published(lake) == (before, data)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in combined.items() if k != "seconds"}


def test_same_scores_from_rebuilt_features_update_the_manifest_not_the_scores(trained, lake):
    """The scores manifest names the features they came from, so a later combine-only retry still finds them."""
    score(with_shards(trained, 2), MONTH)
    before, data = published(lake)
    stale = {**before["metadata"], "features_sha": "features-before-a-rebuild"}
    lake.write_table(month_ref("scores", MONTH), lake.read_table(month_ref("scores", MONTH)), stale)
    score(with_shards(trained, 2), MONTH)
    after, after_data = published(lake)
    assert after["metadata"]["features_sha"] == before["metadata"]["features_sha"]
    assert after["metadata"]["scored_at"] == before["metadata"]["scored_at"]  # the warehouse keeps its rows
    assert after_data == data
    assert combine_scores(trained, MONTH, 2)["shops"] == len(lake.read_table(month_ref("scores", MONTH)))


def test_score_shards_setting(home, monkeypatch):
    assert load_settings().score_shards == 2
    monkeypatch.setenv("SEGMENTATION_SCORE_SHARDS", "16")
    assert load_settings().score_shards == 16
    for bad in ("0", "257"):
        monkeypatch.setenv("SEGMENTATION_SCORE_SHARDS", bad)
        with pytest.raises(ValueError, match=f"SEGMENTATION_SCORE_SHARDS must be between 1 and 256, got {bad}"):
            load_settings()
    monkeypatch.setenv("SEGMENTATION_SCORE_SHARDS", "four")
    with pytest.raises(ValueError, match="SEGMENTATION_SCORE_SHARDS must be an integer"):
        load_settings()


def test_the_month_after_keeps_shops_in_last_months_segment_while_they_stay_close(trained, lake, small_sales_file):
    from segmentation.stages.score import content_sha

    last, following = "2023-04", "2023-05"  # MONTH's model segments nobody; 2023-04 trains one, 2023-05 reuses it
    run_months(trained, last, following, Source(kind="file", path=str(small_sales_file)))
    last_ref, next_ref = month_ref("scores", last), month_ref("scores", following)
    assert lake.manifest(next_ref)["metadata"]["model_version"] == lake.manifest(last_ref)["metadata"]["model_version"]
    assert lake.manifest(next_ref)["metadata"]["previous_scores_sha"] == content_sha(lake.read_table(last_ref))
    # what the model gives the month's modelled shops on their own features alone
    model = Registry(lake).load(lake.manifest(next_ref)["metadata"]["model_version"]).model
    features = lake.read_table(as_of_ref("features", following)).to_pandas()
    modelled = features["lifecycle_segment"].isna().to_numpy()
    fresh, _ = model.predict(features[modelled])
    # last month rewritten as if every shop had been in one segment: the parts scored before no longer fit it
    for shard in range(2):
        score_shard(trained, following, shard, 2)
    original = lake.read_table(last_ref)
    target = int(np.bincount(fresh[fresh >= 0]).argmax())
    rewritten = original.set_column(
        original.schema.get_field_index("segment_id"),
        "segment_id",
        pa.array(np.where(original["eligible"].to_numpy(), target, original["segment_id"].to_numpy())),
    )
    lake.write_table(
        last_ref, rewritten, {**lake.manifest(last_ref)["metadata"], "content_sha": content_sha(rewritten)}
    )
    with pytest.raises(RuntimeError, match=r"scored against other scores of 2023-04 than are published now"):
        combine_scores(trained, following, 2)
    score(with_shards(trained, 2), following)
    assert lake.manifest(next_ref)["metadata"]["previous_scores_sha"] == content_sha(rewritten)
    scored = lake.read_table(next_ref).to_pandas()["segment_id"].to_numpy()[modelled]
    moved = scored != fresh
    assert moved.any() and (scored[moved] == target).all()  # shops close enough to it stayed; nobody else moved
    assert (scored == target).sum() < len(scored)  # those far from it took their own segment
    lake.write_table(last_ref, original, {**lake.manifest(last_ref)["metadata"], "content_sha": content_sha(original)})


def test_names_the_months_profiles_no_longer_earn_are_published_as_the_profiles_name_them(
    trained, small_sales_file, tmp_path
):
    """A model whose names no longer fit (all of one base none of its segments earns): the month's scores,
    segments and profiles carry names the profiles earn, and model_runs records each change."""
    import duckdb

    from segmentation.model.profiles import base_name
    from segmentation.stages.publish import publish

    month = "2023-04"  # trains a model with segments
    settings = copy_with_month(trained, small_sales_file, tmp_path, month)
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    version = lake.manifest(month_ref("scores", month))["metadata"]["model_version"]
    fitting = registry.metadata(version)["segment_names"]
    unused = next(b for b in ("Summer peak", "Erratic", "Intermittent") if b not in map(base_name, fitting.values()))
    wrong = {sid: f"{unused}, {'large' if i % 2 else 'small'} {i}" for i, sid in enumerate(fitting)}
    loaded = registry.load(version)
    copy = registry.register(loaded.model, {**loaded.metadata, "segment_names": wrong})
    registry.promote(copy, "test: names that no longer fit")

    score(settings, month)
    manifest = lake.manifest(month_ref("scores", month))
    scores = lake.read_table(month_ref("scores", month)).to_pandas()
    renamed = manifest["metadata"]["renamed"]
    modelled = scores[scores["segment_id"].astype(str).isin(list(wrong))]
    assert manifest["metadata"]["model_version"] == copy and not modelled.empty
    assert set(renamed) == {str(s) for s in modelled["segment_id"].unique()}
    published_names = modelled.groupby("segment_id")["segment_name"].first()
    assert all(base_name(name) != unused for name in published_names)
    assert published_names.is_unique
    for sid, name in published_names.items():
        assert renamed[str(sid)].startswith(f"'{wrong[str(sid)]}' published as '{name}'")

    publish(settings, month)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT DISTINCT segment_id, segment_name FROM segments WHERE month = ? AND segment_id < 900", [month]
        ).fetchall()
        profile_names = dict(
            con.execute("SELECT segment_id, name FROM segment_profiles WHERE month = ?", [month]).fetchall()
        )
        metrics = json.loads(con.execute("SELECT metrics FROM model_runs WHERE month = ?", [month]).fetchone()[0])
    assert dict(rows) == published_names.to_dict()
    assert all(profile_names[sid] == name for sid, name in published_names.items())
    assert metrics["name_check"] == renamed


def test_young_shops_are_read_against_the_months_mature_shops_whatever_the_shard_count(
    trained, small_sales_file, tmp_path, monkeypatch
):
    """Eight months of data hold no shop with 24 months: with "mature" at 4 months and "young" at 3, the combine
    reads the young shops, the same way at any shard count, and records how many in the manifest."""
    from segmentation.model import young_shops
    from segmentation.model.young_shops import read_young_shops

    month = "2023-04"  # trains a model with segments
    settings = copy_with_month(trained, small_sales_file, tmp_path, month)
    lake = Lake(settings.lake_root)
    ref = month_ref("scores", month)
    as_modelled = lake.read_table(ref).to_pandas()
    assert lake.manifest(ref)["metadata"]["young_shops_read"] == 0  # four months of data: nobody has 6 yet

    monkeypatch.setattr(young_shops, "MATURE_TENURE", 4)
    monkeypatch.setattr(young_shops, "YOUNG_TENURES", range(3, 4))
    monkeypatch.setattr(young_shops, "MIN_TEACHERS", 50)
    features = lake.read_table(as_of_ref("features", month)).to_pandas()
    rows, segment, strength = read_young_shops(
        features, as_modelled["segment_id"].to_numpy(), as_modelled["eligible"].to_numpy(dtype=bool)
    )
    assert len(rows) > 0 and (as_modelled["segment_id"].to_numpy()[rows] != segment).any()
    published = {}
    for n_shards in (1, 3):
        lake.remove_partition(ref)
        score(with_shards(settings, n_shards), month)
        published[n_shards] = lake.read_file(ref, "data.parquet")
        assert lake.manifest(ref)["metadata"]["young_shops_read"] == len(rows)
    assert published[1] == published[3]
    scores = lake.read_table(ref).to_pandas()
    np.testing.assert_array_equal(scores["segment_id"].to_numpy()[rows], segment)
    np.testing.assert_array_equal(scores["membership_strength"].to_numpy()[rows], strength)
    others = np.setdiff1d(np.arange(len(scores)), rows)  # everyone else keeps what the model gave
    np.testing.assert_array_equal(scores["segment_id"].to_numpy()[others], as_modelled["segment_id"].to_numpy()[others])
    names = Registry(lake).metadata(scores["model_version"][0])["segment_names"]
    assert set(scores["segment_id"].to_numpy()[rows].astype(str)) <= set(names)
    assert (scores.groupby("segment_id")["segment_name"].nunique() == 1).all()  # a read shop has its segment's name
