"""Upgrading keeps the background work that was scheduled before tasks were renamed."""

import importlib
from datetime import timedelta

from django.apps import apps
from django.utils import timezone
from django_q.models import Schedule

from channels_app import tasks

migration = importlib.import_module("channels_app.migrations.0006_schedules_name_their_operations")


def schedule(name: str, func: str, *args: int) -> Schedule:
    return Schedule.objects.create(
        name=name,
        func=f"channels_app.tasks.{func}",
        args=repr(args) if args else None,
        schedule_type=Schedule.ONCE,
        next_run=timezone.now(),
    )


def test_schedules_written_before_the_rename_run_the_renamed_tasks(db):
    schedule("configure-12", "configure_channel", 12)
    schedule("reconcile-12", "reconcile_channel", 12)
    schedule("check_channel_health-7", "check_channel_health", 7)
    schedule("create-queue", "pump_create_queue")
    schedule("health-poll", "poll_health")
    migration.forwards(apps, None)
    found = dict(Schedule.objects.values_list("name", "func"))
    assert found == {
        "channel_configure-12": "channels_app.tasks.channel_configure",
        "channel_reconcile-12": "channels_app.tasks.channel_reconcile",
        "channel_health_check-7": "channels_app.tasks.channel_health_check",
        "create-queue": "channels_app.tasks.create_queue_pump",
        "health-poll": "channels_app.tasks.health_poll",
    }
    for func in found.values():
        assert callable(getattr(tasks, func.rsplit(".", 1)[1]))


def test_the_rename_can_be_undone(db):
    schedule("configure-12", "configure_channel", 12)
    schedule("check_channel_health-7", "check_channel_health", 7)
    migration.forwards(apps, None)
    migration.backwards(apps, None)
    assert dict(Schedule.objects.values_list("name", "func")) == {
        "configure-12": "channels_app.tasks.configure_channel",
        "check_channel_health-7": "channels_app.tasks.check_channel_health",
    }


def test_follow_ups_and_polls_scheduled_before_the_sweep_become_due_checks(project):
    from tests.conftest import make_channel

    checks_migration = importlib.import_module("channels_app.migrations.0011_checks_due_columns")
    confirmed = timezone.now() - timedelta(minutes=5)
    followed = make_channel(project, whapi_id="FOLLOWED", state="connected", last_confirmed_at=confirmed)
    quiet = make_channel(project, whapi_id="QUIET", state="connected", last_confirmed_at=confirmed)
    schedule(f"channel_health_check-{followed.pk}", "channel_health_check", followed.pk)
    schedule(f"channel_settings_verify-{followed.pk}", "channel_settings_verify", followed.pk)
    schedule("health-poll", "health_poll")
    schedule("settings-drift", "settings_drift_check")
    checks_migration.forwards(apps, None)
    followed.refresh_from_db()
    quiet.refresh_from_db()
    # The pending follow-ups are due now; the quiet channel 15 minutes after it was last confirmed.
    assert followed.health_check_due_at <= timezone.now() and followed.settings_check_due_at <= timezone.now()
    assert quiet.health_check_due_at == confirmed + timedelta(minutes=15)
    assert dict(Schedule.objects.values_list("name", "func")) == {"checks": "channels_app.tasks.checks_sweep"}
