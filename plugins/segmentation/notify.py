"""Failure notifications: an on-failure callback naming the month, the stage and the reason.

Targets come from the setting SEGMENTATION_NOTIFY (environment over the `segmentation_settings` Variable),
a comma-separated list (default `log`):
- `log`: an ERROR line in the task log (always written);
- `email:a@x.org;b@y.org`: Airflow's SmtpNotifier through the `smtp_default` connection;
- `slack:<connection id>`: Airflow's SlackNotifier, when the Slack provider is installed.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def failure_summary(context) -> dict:
    """Month, stage and reason of a failed task, from an Airflow task context."""
    ti = context.get("task_instance") or context.get("ti")
    params = context.get("params") or {}
    month = (params.get("month") or "").strip()
    if not month and context.get("data_interval_start") is not None:
        month = context["data_interval_start"].strftime("%Y-%m")
    exception = context.get("exception")
    reason = str(exception).strip().splitlines()[0] if exception else "unknown (no exception in context)"
    return {
        "dag_id": getattr(ti, "dag_id", None) or context.get("dag_id", "?"),
        "run_id": context.get("run_id") or getattr(ti, "run_id", "?"),
        "month": month or "?",
        "stage": getattr(ti, "task_id", "?"),
        "reason": reason[:500],
        "log_url": getattr(ti, "log_url", None),
    }


def failure_message(summary: dict) -> str:
    text = (
        f"{summary['dag_id']} failed for month {summary['month']} at stage {summary['stage']}: "
        f"{summary['reason']} (run {summary['run_id']})"
    )
    return text + (f"; log: {summary['log_url']}" if summary.get("log_url") else "")


def targets() -> list[str]:
    """The configured targets; only `log` when the settings do not load (the failure being reported may be that)."""
    from .airflow_settings import variable_overrides
    from .config import load_settings

    try:
        return load_settings(variable_overrides()).notify_targets
    except Exception as exc:  # a notifier must not fail on the problem it reports
        log.warning("settings unusable, notifying the task log only: %s", " ".join(str(exc).split()))
        return ["log"]


def notify_failure(context) -> None:
    """on_failure_callback: log the failure and send it to every configured target; never raises."""
    summary = failure_summary(context)
    message = failure_message(summary)
    log.error("FAILURE %s", message)
    for target in targets():
        kind, _, value = target.partition(":")
        try:
            if kind == "email":
                _email(value, summary, message, context)
            elif kind == "slack":
                _slack(value, message, context)
        except Exception as exc:  # a broken notifier must not hide the failure it reports
            log.warning("could not notify %s: %s", kind, exc)


def _email(recipients: str, summary: dict, message: str, context) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    notifier = SmtpNotifier(
        to=[r for r in recipients.split(";") if r],
        subject=f"[segmentation] {summary['dag_id']} {summary['month']} failed at {summary['stage']}",
        html_content=f"<p>{message}</p>",
    )
    notifier.notify(context)


def _slack(connection_id: str, message: str, context) -> None:
    try:
        from airflow.providers.slack.notifications.slack import SlackNotifier
    except ImportError:
        log.warning("SEGMENTATION_NOTIFY names slack but apache-airflow-providers-slack is not installed")
        return
    SlackNotifier(slack_conn_id=connection_id or "slack_api_default", text=message).notify(context)
