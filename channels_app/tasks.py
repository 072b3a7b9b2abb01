"""django-q2 entry points: ids in, one call, idempotent. No token or secret is ever an argument.

Each task has the name of the function it calls, so a schedule's `func` names the operation it runs.
"""

from django.contrib.auth import get_user_model

from alerts import sweep
from channels_app import actions, bulk_jobs, checks, configure, pipeline, retention, status, webhooks
from channels_app.models import Channel
from events import delivery as event_delivery


def create_queue_pump() -> int:
    return pipeline.create_queue_pump()


def channel_configure(channel_id: int) -> bool:
    return configure.channel_configure(channel_id)


def channel_reconcile(channel_id: int) -> None:
    channel = Channel.objects.filter(pk=channel_id, state=Channel.State.CREATING, whapi_id__isnull=True).first()
    if channel is not None:
        pipeline.channel_reconcile(channel)


def channel_health_check(channel_id: int) -> str | None:
    return status.channel_health_check(channel_id)


def channel_settings_verify(channel_id: int) -> bool:
    return configure.channel_settings_verify(channel_id)


def checks_sweep() -> int:
    return checks.checks_sweep_start()


def checks_sweep_part(part: int, ends_at: int) -> int:
    return checks.checks_sweep_part(part, ends_at)


def callbacks_apply() -> int:
    return webhooks.callbacks_apply()


def alerts_sweep() -> int:
    return sweep.alerts_sweep()


def events_send() -> int:
    return event_delivery.events_send()


def bulk_job_run(job_id: int) -> None:
    bulk_jobs.bulk_job_run(job_id)


def retention_prune() -> str:
    """Delete what the retention settings no longer keep, a bounded amount per run; says what went."""
    return str(retention.retention_prune())


def whapi_sync(actor_id: int | None = None) -> str:
    """Mirror projects and channels from Whapi (started from the admin); the audit log has the result."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        return actions.whapi_sync(actor=actor)
    except actions.ActionError as exc:
        return str(exc)


# The names these tasks had in earlier releases. django-q2 stores a task's dotted name with it, so a
# task queued by an earlier release (migrations 0006 and 0011 move the schedules, not the queue)
# still finds its function after an upgrade; the two periodic polls are the checks sweep now.
# Remove with the next release.
pump_create_queue = create_queue_pump
configure_channel = channel_configure
reconcile_channel = channel_reconcile
check_channel_health = channel_health_check
verify_channel_settings = channel_settings_verify
poll_health = health_poll = checks_sweep
verify_settings = settings_drift_check = checks_sweep
run_bulk_job = bulk_job_run
sync_whapi = whapi_sync
