"""django-q2 entry points: ids in, one service call, idempotent. No token or secret is ever an argument."""

from channels_app import services


def pump_create_queue() -> int:
    return services.create_queue_pump()


def configure_channel(channel_id: int) -> bool:
    return services.channel_configure(channel_id)


def reconcile_channel(channel_id: int) -> None:
    from channels_app.models import Channel

    channel = Channel.objects.filter(pk=channel_id, state=Channel.State.CREATING, whapi_id__isnull=True).first()
    if channel is not None:
        services.channel_reconcile(channel)


def check_channel_health(channel_id: int) -> str | None:
    return services.channel_check_health(channel_id)


def verify_channel_settings(channel_id: int) -> bool:
    return services.channel_verify_settings(channel_id)


def poll_health() -> int:
    return services.health_poll()


def verify_settings() -> int:
    return services.settings_drift_check()


def run_bulk_job(job_id: int) -> None:
    from channels_app.actions import bulk_job_run

    bulk_job_run(job_id)


def sync_whapi(actor_id: int | None = None) -> str:
    """Mirror projects and channels from Whapi (started from the admin); the audit log has the result."""
    from django.contrib.auth import get_user_model

    from channels_app.actions import ActionError, whapi_sync

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        return whapi_sync(actor=actor)
    except ActionError as exc:
        return str(exc)
