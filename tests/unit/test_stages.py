"""The table of stages the command line, run_month and the benchmarks dispatch through."""

import inspect

import pytest

from segmentation.cli import build_parser
from segmentation.stages import STAGES

ORDER = ["ingest", "validate", "features", "decide", "train", "reuse", "score", "publish", "recommend", "report"]


def test_the_table_lists_every_stage_in_pipeline_order():
    assert list(STAGES) == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_each_stage_resolves_to_a_function_taking_settings_month_and_its_inputs(name):
    parameters = list(inspect.signature(STAGES[name].resolve()).parameters)
    assert parameters[:2] == ["settings", "month"]
    assert set(STAGES[name].inputs) <= set(parameters[2:])


def test_a_stage_gets_only_the_inputs_it_takes(monkeypatch):
    import segmentation.stages.decide as decide

    seen = []
    monkeypatch.setattr(decide, "decide", lambda settings, month, **kwargs: seen.append((settings, month, kwargs)))
    STAGES["decide"].run("settings", "2024-03", force_retrain=True, source="ignored", run_id="ignored")
    assert seen == [("settings", "2024-03", {"force_retrain": True})]


def test_the_command_line_offers_every_stage():
    stage = build_parser()._subparsers._group_actions[0].choices["stage"]
    (name,) = [a for a in stage._actions if a.dest == "name"]
    assert list(name.choices) == ORDER
