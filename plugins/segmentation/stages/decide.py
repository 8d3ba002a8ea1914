"""Stage 4a, decide: train a challenger, reuse the applicable model, or wait for enough history.

Retrain when there is no model for the month, when forced, once when the feature window has filled since the
champion was trained on at most 3/4 of it, when the champion is older than the configured age, or when drift passes
its thresholds (PSI against the champion's training reference of each feature the model lists as stable, PSI of
the segment mix, a jump in the noise share). The window-filled and the age challengers are judged on the absolute
gates alone (train.champion_yardstick); drift challengers are also held against the champion. For shop data and a
champion trained on more than 3/4 of the window, a review every SEGMENTATION_REVIEW_MONTHS months of its age takes
the place of the age retrain when nothing else retrains: the review's challenger replaces the champion only when it
also scores clearly above it on the month (evaluate.review_failures).

Neither drift nor age retrains in a loop. After a drift- or age-triggered training (promoted or not), neither can
trigger another one for SEGMENTATION_RETRAIN_COOLDOWN_MONTHS months: a champion past its age whose challenger was
rejected is tried again after the cooldown, not every month. And when the latest drift-triggered
training of the last 3 x that many months had its challenger rejected and the same champion still
applies, drift retrains again only once a measure that counts has grown past 1.5x its value then (and
its threshold): the same signal would train the same rejected challenger. Both read the decisions of
earlier months only, so the decision depends only on the month and the lake before it and a re-run
reaches the same one. It is recorded in decisions/month=M, where train adds its verdict and publish
reads both.
"""

from __future__ import annotations

import logging

from ..config import Settings
from ..features.engine import is_customer_month, window_lines, window_partitions
from ..lake.storage import Lake, as_of_ref, month_ref
from ..model import drift
from ..model.registry import Registry
from ..months import add_months, month_index

log = logging.getLogger(__name__)
TRAIN, REUSE, SKIP = "train", "reuse", "skip"
MIX_SAMPLE = 100_000  # shops scored to measure the segment mix: shares to about +-0.3%, in seconds at any size
DRIFT_TRIGGER = "drift"  # the `trigger` of a decision to train because of drift
WINDOW_FILLED_TRIGGER = "window_filled"  # ... because the feature window has filled since the champion was trained
AGE_TRIGGER = "max_age"  # ... because the champion is older than SEGMENTATION_MODEL_MAX_AGE_MONTHS
REVIEW_TRIGGER = "review"  # ... because a shop champion is due its review (SEGMENTATION_REVIEW_MONTHS, is_reviewed)
AUTOMATIC_TRIGGERS = (DRIFT_TRIGGER, AGE_TRIGGER)  # the retrains a cooldown follows
# a champion trained on at most this share of the window's months retrains once when the window is full. Trend and
# season need about 18 of 24 months (independent planted shops: ARI 0.94 for shops with 18-23 months of history,
# 0.0-0.8 with 12-17); a model trained on more has seen what a full window tells apart (a 23-of-24-month model, a
# month old, was retrained for it on a two-year invoice set and its 9 segments replaced by 3)
WINDOW_FILLED_MAX_SHARE = 0.75
GROWTH = 1.5  # after a rejected drift challenger, drift retrains only once a measure grows past this factor
LOOKBACK_PER_COOLDOWN = 3  # months of earlier decisions searched for a rejected drift challenger, per cooldown month


def measure_drift(settings: Settings, lake: Lake, registry: Registry, version: str, month: str, frame=None) -> dict:
    """Drift of this month's features and segment mix against the champion's training reference.

    PSI is recorded for every model feature; `max_feature_psi` (what decides) is over the model's
    `drift_features` only, listed in the record as `drift_features`."""
    from ..model.evaluate import subsample

    champion = registry.load(version)
    reference = champion.metadata.get("reference")
    considered = drift.considered_features(champion.metadata)
    if frame is None:
        frame = lake.read_table(as_of_ref("features", month)).to_pandas()
    eligible = frame[frame["eligible"]]
    if reference is None or eligible.empty:
        return {
            "feature_psi": {},
            "drift_features": considered,
            "max_feature": None,
            "max_feature_psi": 0.0,
            "mix_psi": 0.0,
            "noise_jump": 0.0,
        }
    names = champion.metadata["features"]
    psi = drift.feature_psi(reference, eligible[names].to_numpy(dtype="float64"), names)
    psi = {name: round(value, 4) for name, value in psi.items()}
    worst, worst_psi = drift.worst_feature(psi, considered)
    picked = subsample(len(eligible), MIX_SAMPLE, settings.seed)
    segments, _ = champion.model.predict(eligible.iloc[picked])
    mix = drift.segment_mix(segments)
    trained_mix = champion.metadata.get("segment_shares", {})
    trained_noise = champion.metadata.get("metrics", {}).get("noise_share", 0.0)
    worst_bins = len(reference["cuts"][names.index(worst)]) + 1 if worst else 0
    # the reference is the training sample, so models saved before it recorded its size have it as `train_shops`
    reference_rows = reference.get("rows") or champion.metadata.get("train_shops")
    return {
        "feature_psi": psi,  # every model feature, for the record
        "drift_features": considered,  # the features whose drift counts
        "max_feature": worst,
        "max_feature_psi": worst_psi,
        "mix_psi": round(drift.mix_psi(trained_mix, mix), 4),
        "noise_jump": round(mix.get("-1", 0.0) - trained_noise, 4),
        # what sampling alone gives between the training rows and this month's (0: the size was not recorded)
        "chance_feature_psi": round(drift.chance_psi(worst_bins, reference_rows, len(eligible)), 4),
        "chance_mix_psi": round(
            drift.chance_psi(len(set(trained_mix) | set(mix)), champion.metadata.get("segment_rows"), len(picked)), 4
        ),
        "rows": len(eligible),
        "reference_rows": reference_rows,
        "mix_rows": len(picked),
        "mix_reference_rows": champion.metadata.get("segment_rows"),
    }


def _considered(measured: dict) -> list[str]:
    """Features whose drift counts in a measurement (every feature in records made before `drift_features`)."""
    return list(measured.get("drift_features", measured.get("feature_psi", {})))


def _worst(measured: dict) -> str | None:
    if "max_feature" in measured:
        return measured["max_feature"]
    return drift.worst_feature(measured.get("feature_psi", {}), _considered(measured))[0]


def _exceeded(measured: dict, settings: Settings) -> list[tuple[str, str]]:
    """Each measure past its threshold: (the reason naming the threshold, the brief signal)."""
    found = []
    limit, shown = _psi_limit(settings.drift_feature_psi, measured, "chance_feature_psi", "reference_rows", "rows")
    if measured["max_feature_psi"] > limit:
        psi = f"PSI {measured['max_feature_psi']:.2f} on {_worst(measured)}"
        found.append((f"feature drift: {psi} > {shown}", f"feature {psi}"))
    limit, shown = _psi_limit(settings.drift_mix_psi, measured, "chance_mix_psi", "mix_reference_rows", "mix_rows")
    if measured["mix_psi"] > limit:
        psi = f"PSI {measured['mix_psi']:.2f}"
        found.append((f"segment mix drift: {psi} > {shown}", f"segment mix {psi}"))
    if measured["noise_jump"] > settings.drift_noise_jump:
        jump = f"noise share up {measured['noise_jump']:.1%}"
        found.append((f"{jump} > {settings.drift_noise_jump:.0%}", jump))
    return found


def _psi_limit(threshold: float, measured: dict, chance: str, trained: str, now: str) -> tuple[float, str]:
    """The PSI a measure must pass and how to show it: the setting, or what sampling alone gives when that is
    higher (records made before the chance level was measured have none)."""
    level = measured.get(chance, 0.0)
    if level <= threshold:
        return threshold, f"{threshold}"
    return (
        level,
        f"{level:.2f}, the level chance reaches with {measured[trained]:,} rows at training and {measured[now]:,} now",
    )


def _within_chance(measured: dict, settings: Settings) -> str:
    """' (feature PSI 0.28 on x past the setting, within what chance gives at these sizes)' where only the chance
    level kept a measure from counting: the record says why a PSI above the setting did not retrain."""
    held = []
    if settings.drift_feature_psi < measured["max_feature_psi"] <= measured.get("chance_feature_psi", 0.0):
        held.append(f"feature PSI {measured['max_feature_psi']:.2f} on {_worst(measured)}")
    if settings.drift_mix_psi < measured["mix_psi"] <= measured.get("chance_mix_psi", 0.0):
        held.append(f"segment mix PSI {measured['mix_psi']:.2f}")
    if not held:
        return ""
    return f" ({', '.join(held)} past the setting, within what chance gives at these sizes)"


def drift_reasons(measured: dict, settings: Settings) -> list[str]:
    return [reason for reason, _ in _exceeded(measured, settings)]


def _signal(measured: dict, settings: Settings) -> str:
    """The measures past their thresholds, briefly: 'feature PSI 0.41 on log_aov, segment mix PSI 0.30'."""
    return ", ".join(signal for _, signal in _exceeded(measured, settings))


# drift without retrain loops ---------------------------------------------------------------------------------
def lookback_months(settings: Settings) -> int:
    """How many earlier months of decisions the cooldown and the hysteresis look at."""
    return settings.retrain_cooldown_months * LOOKBACK_PER_COOLDOWN


def previous_decisions(lake: Lake, month: str, months: int) -> list[dict]:
    """Recorded decisions of the `months` months strictly before `month`, most recent first."""
    found = []
    for back in range(1, months + 1):
        earlier = add_months(month, -back)
        manifest = lake.manifest(month_ref("decisions", earlier))
        if manifest is not None:
            found.append({**manifest["metadata"], "month": earlier})
    return found


def is_drift_training(record: dict) -> bool:
    """A decision to train because of drift whose training ran (its verdict is recorded)."""
    return _trained_on_trigger(record, (DRIFT_TRIGGER,))


def is_automatic_training(record: dict) -> bool:
    """A decision to train because of drift or the champion's age whose training ran: a cooldown follows it."""
    return _trained_on_trigger(record, AUTOMATIC_TRIGGERS)


def _trained_on_trigger(record: dict, triggers: tuple[str, ...]) -> bool:
    if record.get("decision") != TRAIN or not isinstance(record.get("training"), dict):
        return False
    if "trigger" in record:
        return record["trigger"] in triggers
    # records made before `trigger`: only drift trainings carried a measurement
    return DRIFT_TRIGGER in triggers and "drift" in record


def cooling_down(month: str, previous: list[dict], settings: Settings) -> dict | None:
    """The latest drift- or age-triggered training within the cooldown before `month`, or None."""
    recent = [
        r
        for r in previous
        if 0 < month_index(month) - month_index(r["month"]) <= settings.retrain_cooldown_months
        and is_automatic_training(r)
    ]
    return max(recent, key=lambda r: month_index(r["month"])) if recent else None


def _cooldown_note(record: dict, settings: Settings) -> str:
    training = record["training"]
    verdict = "promoted" if training.get("promoted") else "rejected"
    trigger = "drift" if is_drift_training(record) else "the champion's age"
    return (
        f"retrained on {trigger} in {record['month']} (challenger v{training.get('challenger_version')} {verdict}); "
        f"cooling down, no automatic retrain before {add_months(record['month'], settings.retrain_cooldown_months + 1)} "
        f"(SEGMENTATION_RETRAIN_COOLDOWN_MONTHS={settings.retrain_cooldown_months})"
    )


def grown_measures(measured: dict, then: dict, settings: Settings) -> list[str]:
    """Measures that count now and are past their threshold and GROWTH x their value `then`."""
    checks = [
        (
            f"feature PSI on {name}",
            measured["feature_psi"].get(name, 0.0),
            then.get("feature_psi", {}).get(name, 0.0),
            settings.drift_feature_psi,
        )
        for name in _considered(measured)
    ]
    checks += [
        ("segment mix PSI", measured["mix_psi"], then.get("mix_psi", 0.0), settings.drift_mix_psi),
        ("noise jump", measured["noise_jump"], then.get("noise_jump", 0.0), settings.drift_noise_jump),
    ]
    return [
        f"{label} {now:.2f} (was {was:.2f})"
        for label, now, was, threshold in checks
        if now > threshold and now > GROWTH * was
    ]


def drift_hold(
    month: str, previous: list[dict], measured: dict, settings: Settings, champion_version: str
) -> dict | None:
    """Whether the drift in `measured` (past a threshold) may retrain, given the earlier decisions.

    None: no drift or age training in the look-back, retrain. Otherwise {'hold': True|False, 'by': 'cooldown' or
    'hysteresis', 'since': month of that training, 'reason': ...}: hold=True means keep the champion with
    that reason; hold=False means retrain, the reason saying why the earlier rejection does not hold it."""
    signal = _signal(measured, settings)
    cooling = cooling_down(month, previous, settings)
    if cooling:
        return {
            "hold": True,
            "by": "cooldown",
            "since": cooling["month"],
            "reason": f"drift ({signal}) but {_cooldown_note(cooling, settings)}; keeping champion v{champion_version}",
        }
    window = lookback_months(settings)
    trainings = [
        r for r in previous if 0 < month_index(month) - month_index(r["month"]) <= window and is_drift_training(r)
    ]
    if not trainings:
        return None
    last = max(trainings, key=lambda r: month_index(r["month"]))
    since, training = last["month"], last["training"]
    challenger = training.get("challenger_version")
    if training.get("promoted") is not False or last.get("model_version") != champion_version:
        return None  # the challenger was promoted, or another champion applies since: a new situation
    grown = grown_measures(measured, last.get("drift", {}), settings)
    if grown:
        return {
            "hold": False,
            "by": "hysteresis",
            "since": since,
            "reason": f"grown past {GROWTH}x since the challenger v{challenger} trained on drift in {since} "
            f"was rejected: {', '.join(grown)}",
        }
    return {
        "hold": True,
        "by": "hysteresis",
        "since": since,
        "reason": f"drift persists ({signal}) but a challenger trained on this signal in {since} "
        f"(v{challenger}) was rejected; keeping champion v{champion_version} until drift grows "
        f"past {GROWTH}x",
    }


# the decision -------------------------------------------------------------------------------------------------
def missing_inputs(metadata: dict, columns) -> list[str]:
    """The model's input features that the month's features lack (e.g. a customer model on shop data)."""
    return [name for name in metadata.get("features", []) if name not in set(columns)]


def warm_up_months(settings: Settings, lake: Lake, month: str) -> tuple[int, str]:
    """Months of history needed before a first model, and for what: customer (invoice) data has what it needs
    sooner (SEGMENTATION_CUSTOMER_MIN_HISTORY_MONTHS) than shop-month data (SEGMENTATION_MIN_HISTORY_MONTHS)."""
    if is_customer_month(lake, month):
        return settings.customer_min_history_months, "customer"
    return settings.min_history_months, "shop"


def choose(settings: Settings, lake: Lake, registry: Registry, month: str, force_retrain: bool) -> dict:
    applicable = registry.model_for_month(month)
    needed, kind = warm_up_months(settings, lake, month)
    history = len(
        window_lines(lake, month, settings.window_months)
        if kind == "customer"
        else window_partitions(lake, month, settings.window_months)
    )
    if history < needed:
        return {
            "decision": SKIP,
            "model_version": None,
            "reason": f"warming up: {history} of {needed} months of {kind} history",
        }
    if force_retrain:
        return {"decision": TRAIN, "model_version": None, "reason": "retrain forced by the force_retrain param"}
    if applicable is None:
        return {"decision": TRAIN, "model_version": None, "reason": f"no champion model for {month}"}
    champion = registry.metadata(applicable)
    trained_for = champion["trained_for"]
    if trained_for == month:
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "reason": champion.get("reason", "trained for this month"),
            **_trigger_of_this_month(lake, month),
        }
    age = month_index(month) - month_index(trained_for)
    frame = lake.read_table(as_of_ref("features", month)).to_pandas()  # read once: inputs and drift
    missing = missing_inputs(champion, frame.columns)
    if missing:
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "reason": f"champion v{applicable} needs inputs this month's features do not have "
            f"({', '.join(missing[:4])}): the data changed kind; training on what it has",
        }
    if champion.get("lifecycle_only"):
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "reason": f"champion v{applicable} publishes lifecycle segments only (no candidate passed the gates "
            f"in {trained_for}); trying again on {month}'s data",
        }
    trained_on = trained_on_months(lake, trained_for)
    filled = window_filled_since(settings, lake, month, trained_for, trained_on)
    if filled:
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "reason": f"champion v{applicable} was trained on {filled} months of history; the "
            f"{settings.window_months}-month feature window is full now (judged on the gates alone)",
            "trigger": WINDOW_FILLED_TRIGGER,
        }
    reviewed = is_reviewed(settings, kind, trained_on)
    # a reviewed champion is replaced by a review that beats it, not for its age (it would be judged on the gates alone)
    too_old = age > settings.max_model_age_months and not reviewed
    # earlier decisions are read only when they can matter: an old champion or drift past a threshold
    previous = previous_decisions(lake, month, lookback_months(settings)) if too_old else None
    cooling = cooling_down(month, previous, settings) if too_old else None
    if too_old and not cooling:
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "reason": f"champion v{applicable} is {age} months old (max {settings.max_model_age_months}; "
            f"judged on the gates alone)",
            "trigger": AGE_TRIGGER,
        }
    measured = measure_drift(settings, lake, registry, applicable, month, frame)
    reasons = drift_reasons(measured, settings)
    if not reasons and reviewed and age % settings.review_months == 0:
        return {
            "decision": TRAIN,
            "model_version": applicable,
            "drift": measured,
            "reason": f"champion v{applicable} (trained for {trained_for}, {age} months old) is due its review "
            f"(every {settings.review_months} months; replaced only by a challenger that scores "
            f"{settings.gate_min_score_gain_on_review:.0%} above it on this month)",
            "trigger": REVIEW_TRIGGER,
        }
    if not reasons:
        aged = (
            f"; {age} months old (max {settings.max_model_age_months}) but {_cooldown_note(cooling, settings)}"
            if cooling
            else ""
        )
        return {
            "decision": REUSE,
            "model_version": applicable,
            "drift": measured,
            "reason": f"champion v{applicable} (trained for {trained_for}, {age} months old); drift within thresholds"
            + _within_chance(measured, settings)
            + aged,
            **({"held_by": "cooldown", "held_since": cooling["month"]} if cooling else {}),
        }
    if previous is None:
        previous = previous_decisions(lake, month, lookback_months(settings))
    held = drift_hold(month, previous, measured, settings, applicable)
    if held and held["hold"]:
        return {
            "decision": REUSE,
            "model_version": applicable,
            "drift": measured,
            "reason": held["reason"],
            "held_by": held["by"],
            "held_since": held["since"],
        }
    if held:
        reasons.append(held["reason"])
    return {
        "decision": TRAIN,
        "model_version": applicable,
        "reason": "; ".join(reasons),
        "drift": measured,
        "trigger": DRIFT_TRIGGER,
    }


def trained_on_months(lake: Lake, trained_for: str) -> int | None:
    """The months of history a champion trained for `trained_for` saw (its decision record), or None."""
    recorded = lake.manifest(month_ref("decisions", trained_for))
    return recorded["metadata"].get("history_months") if recorded else None


def _filling(settings: Settings, trained_on: int | None) -> bool:
    """Whether a champion trained on `trained_on` months saw at most 3/4 of the window (None: unknown, not)."""
    return trained_on is not None and trained_on <= WINDOW_FILLED_MAX_SHARE * settings.window_months


def window_filled_since(
    settings: Settings, lake: Lake, month: str, trained_for: str, trained_on: int | None
) -> int | None:
    """`trained_on`, the months of history the champion was trained on, when that was at most 3/4 of the feature
    window, the window is full now, and no training has run on a full window since: trend and season are measured
    over the window, so a model fitted while the window was filling (at the warm-up) has not seen what a full one
    tells apart."""
    if not _filling(settings, trained_on):
        return None
    if len(window_partitions(lake, month, settings.window_months)) < settings.window_months:
        return None
    since = previous_decisions(lake, month, month_index(month) - month_index(trained_for) - 1)
    tried = any(r.get("decision") == TRAIN and r.get("history_months", 0) >= settings.window_months for r in since)
    return None if tried else trained_on


def is_reviewed(settings: Settings, kind: str, trained_on: int | None) -> bool:
    """Whether the champion is reviewed every SEGMENTATION_REVIEW_MONTHS months of its age (instead of retrained at
    SEGMENTATION_MODEL_MAX_AGE_MONTHS): shop data (`kind` as warm_up_months gives it), and a champion trained on more
    than 3/4 of the window (one trained on less retrains once the window is full). Behaviour that begins after the
    training (a decline that starts late) sits inside a segment's spread, where no drift measure sees it; a review's
    challenger may separate it. Customer segments follow recency and spend by design, which drift watches."""
    return (
        settings.review_months > 0 and kind == "shop" and trained_on is not None and not _filling(settings, trained_on)
    )


def _trigger_of_this_month(lake: Lake, month: str) -> dict:
    """A re-run after this month's training keeps what triggered it (so the cooldown still counts it)."""
    manifest = lake.manifest(month_ref("decisions", month))
    recorded = manifest["metadata"] if manifest else {}
    if recorded.get("decision") != TRAIN:
        return {}
    return {key: recorded[key] for key in ("trigger", "drift") if key in recorded}


def decide(settings: Settings, month: str, force_retrain: bool = False) -> dict:
    """Return and record {'decision', 'reason', 'model_version', ...} for the month."""
    lake = Lake(settings.lake_root)
    registry = Registry(lake)
    decision = choose(settings, lake, registry, month, force_retrain)
    decision.update(
        {
            "month": month,
            "force_retrain": bool(force_retrain),
            "history_months": len(window_partitions(lake, month, settings.window_months)),
        }
    )
    lake.publish_files(month_ref("decisions", month), {}, decision)
    log.info("decide %s: %s (%s)", month, decision["decision"], decision["reason"])
    return decision


def record_outcome(settings: Settings, month: str, outcome: dict) -> None:
    """Add the training verdict (challenger, promoted, gate failures) to the month's decision record."""
    lake = Lake(settings.lake_root)
    lake.publish_files(month_ref("decisions", month), {}, {**read_decision(settings, month), "training": outcome})


def read_decision(settings: Settings, month: str) -> dict:
    manifest = Lake(settings.lake_root).manifest(month_ref("decisions", month))
    if manifest is None:
        raise RuntimeError(f"no decision recorded for {month}: run the decide stage first")
    return manifest["metadata"]
