"""The stages of a month, one module each, and the table that the command line, `pipeline.run_month` and the
benchmarks dispatch through. The DAG runs the same functions as its tasks.

ingest -> validate -> features -> decide -> train | reuse -> score -> publish -> recommend, report
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """A stage's function, ``segmentation.stages.<module>.<function>(settings, month, **inputs)``."""

    name: str
    module: str
    function: str
    inputs: tuple[str, ...] = ()  # keyword inputs beyond (settings, month): source, force_retrain, run_id

    def resolve(self) -> Callable[..., dict]:
        """The stage's function (importing its module, and so its libraries, only now)."""
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.function)

    def bind(self, settings, month: str, **inputs) -> Callable[[], dict]:
        """The stage for `month` as a call without arguments, its module imported now; of `inputs` it takes
        the ones it uses."""
        function = self.resolve()
        taken = {k: v for k, v in inputs.items() if k in self.inputs}
        return lambda: function(settings, month, **taken)

    def run(self, settings, month: str, **inputs) -> dict:
        """Run the stage for `month` (see `bind`)."""
        return self.bind(settings, month, **inputs)()


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("ingest", "ingest", "ingest", ("source",)),
        Stage("validate", "validate", "validate", ("run_id",)),
        Stage("features", "features", "build_features"),
        Stage("decide", "decide", "decide", ("force_retrain",)),
        Stage("train", "train", "train"),
        Stage("reuse", "train", "reuse"),
        Stage("score", "score", "score"),
        Stage("publish", "publish", "publish", ("run_id",)),
        Stage("recommend", "recommend", "recommend", ("run_id",)),
        Stage("report", "report", "report"),
    )
}


def run_stage(name: str, settings, month: str, **inputs) -> dict:
    """Run the stage called `name` (a key of STAGES) for `month`."""
    return STAGES[name].run(settings, month, **inputs)
