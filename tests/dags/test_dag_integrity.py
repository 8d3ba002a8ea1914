"""The DAG files load, parse fast, import nothing heavy, and follow the project's conventions."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = ("tensorflow", "keras", "great_expectations", "pandas", "duckdb", "hdbscan", "sklearn", "pyarrow")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "segmentation_monthly" in dagbag.dag_ids


@pytest.mark.slow
@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_fast_without_heavy_imports(dag_file):
    probe = textwrap.dedent(f"""
        import sys, time, importlib.util
        import airflow.sdk  # Airflow itself is loaded by the parser before any DAG file
        from airflow.dag_processing.dagbag import DagBag  # and so is the parser (with SQLAlchemy)
        from airflow.timetables.interval import CronDataIntervalTimetable
        sys.path.insert(0, {str(REPO / "plugins")!r})
        start = time.perf_counter()
        spec = importlib.util.spec_from_file_location("dag_under_test", {str(dag_file)!r})
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        elapsed = time.perf_counter() - start
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
        print(elapsed, ",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0, f"{dag_file.name} took {out[0]} s to parse"
    assert len(out) == 1, f"{dag_file.name} imports heavy modules at parse time: {out[1]}"


def test_monthly_schedule_catchup_retries_and_params(dagbag):
    dag = dagbag.dags["segmentation_monthly"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is True and dag.max_active_runs == 1
    assert dag.doc_md and "force_retrain" in dag.doc_md
    assert {"month", "force_retrain", "source", "source_path", "invoice_columns", "invoice_date_format"} <= set(
        dag.params.keys()
    )
    assert all(task.retries >= 1 for task in dag.tasks)
    assert dag.get_task("publish").pool == "warehouse"


def test_branches_lead_to_score_and_publish(dagbag):
    dag = dagbag.dags["segmentation_monthly"]
    assert dag.get_task("decide").downstream_task_ids == {"train", "reuse_model", "warm_up"}
    assert dag.get_task("plan_scoring").upstream_task_ids == {"train", "reuse_model"}
    assert dag.get_task("score_shard").upstream_task_ids == {"plan_scoring"}
    assert dag.get_task("combine_scores").upstream_task_ids == {"score_shard"}
    assert dag.get_task("publish").upstream_task_ids == {"combine_scores", "warm_up"}
    assert dag.get_task("report").upstream_task_ids == {"publish"}
    assert dag.get_task("recommend").upstream_task_ids == {"publish"}
    assert dag.get_task("recommend").pool == "warehouse"  # it writes the warehouse
    order = ["ingest", "validate", "build_features", "decide"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids


def test_month_param_is_validated(dagbag):
    from airflow.sdk.definitions.param import ParamValidationError

    month = dagbag.dags["segmentation_monthly"].params.get_param("month")
    assert month.resolve("2024-03") == "2024-03"
    assert month.resolve("") == ""
    assert month.resolve(None) is None  # an empty form field is allowed: the run's interval decides
    for bad in ("2024-13", "March", "2024-3"):
        with pytest.raises(ParamValidationError):
            month.resolve(bad)


def test_scoring_fans_out_over_shards(dagbag):
    dag = dagbag.dags["segmentation_monthly"]
    plan, shard, combine = (dag.get_task(t) for t in ("plan_scoring", "score_shard", "combine_scores"))
    assert plan.trigger_rule == "none_failed_min_one_success"  # one of train / reuse_model ran
    assert dag.get_task("publish").trigger_rule == "none_failed_min_one_success"  # combine_scores or warm_up
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(shard, MappedOperator) and not isinstance(combine, MappedOperator)
    # the label a user sees on the third of four mapped instances in the grid
    from types import SimpleNamespace

    import jinja2

    label = jinja2.Template(shard.map_index_template).render(
        task=SimpleNamespace(op_kwargs={"shard": 2, "n_shards": 4})
    )
    assert label == "shard 3 of 4"
    assert "score_shard" in dag.doc_md and "combine_scores" in dag.doc_md


def test_score_shards_param_is_validated(dagbag):
    from airflow.sdk.definitions.param import ParamValidationError

    shards = dagbag.dags["segmentation_monthly"].params.get_param("score_shards")
    assert shards.resolve(None) is None  # empty: SEGMENTATION_SCORE_SHARDS decides
    assert shards.resolve(1) == 1 and shards.resolve(256) == 256
    for bad in (0, 257, -3, "four", 2.5):
        with pytest.raises(ParamValidationError):
            shards.resolve(bad)


def test_publish_declares_an_asset_per_warehouse_table(dagbag):
    outlets = dagbag.dags["segmentation_monthly"].get_task("publish").outlets
    assert [(a.name, a.uri) for a in outlets] == [
        ("segmentation_segments", "x-segmentation://warehouse/segments"),
        ("segmentation_segment_profiles", "x-segmentation://warehouse/segment_profiles"),
        ("segmentation_model_runs", "x-segmentation://warehouse/model_runs"),
    ]


def test_recommend_declares_the_recommendations_asset(dagbag):
    outlets = dagbag.dags["segmentation_monthly"].get_task("recommend").outlets
    assert [(a.name, a.uri) for a in outlets] == [
        ("segmentation_recommendations", "x-segmentation://warehouse/recommendations")
    ]


def test_export_runs_on_the_segments_asset(dagbag):
    dag = dagbag.dags["segmentation_export"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["segmentation_segments"]
    assert dag.get_task("export").upstream_task_ids == {"months_to_export"}
    assert dag.get_task("export").pool == "warehouse"
    assert all(task.retries >= 1 for task in dag.tasks)
    assert dag.params.get_param("month").resolve(None) is None
