"""Retention: what `retention_prune` deletes (older than each setting, nothing newer, in batches,
nothing with 0), the create attempts it keeps, failed tasks, and `manage.py prune_history`."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Failure, Success

from channels_app import retention, tasks
from channels_app.models import AuditLog, Channel, ChannelEvent, CreateAttempt, WebhookEvent
from tests.conftest import make_channel

DAY = timedelta(days=1)


def callbacks(channel, *ages: timedelta) -> list[int]:
    now = timezone.now()
    rows = WebhookEvent.objects.bulk_create(
        [
            WebhookEvent(channel=channel, whapi_channel_id=channel.whapi_id, body="{}", received_at=now - age)
            for age in ages
        ]
    )
    return [row.pk for row in rows]


def left(model, field: str) -> list[int]:
    """Ages in whole days of the rows left, oldest first."""
    now = timezone.now()
    return sorted(((now - getattr(row, field)) // DAY for row in model.objects.all()), reverse=True)


def test_it_deletes_ledger_rows_older_than_the_setting_and_nothing_newer(channel, settings):
    settings.RETENTION_LEDGER_DAYS = 90
    callbacks(channel, 200 * DAY, 91 * DAY, 89 * DAY, DAY, timedelta(0))
    result = retention.retention_prune()
    assert result.deleted["ledger"] == 2 and result.more_left == []
    assert left(WebhookEvent, "received_at") == [89, 1, 0]


def test_a_small_batch_leaves_the_rest_for_the_next_run(channel, settings):
    settings.RETENTION_LEDGER_DAYS = 30
    callbacks(channel, *[(100 + i) * DAY for i in range(7)], DAY)
    first = retention.retention_prune(batch_size=2, max_batches=2)
    assert first.deleted["ledger"] == 4 and first.more_left == ["ledger"]
    # The oldest went first.
    assert left(WebhookEvent, "received_at") == [102, 101, 100, 1]
    second = retention.retention_prune(batch_size=2, max_batches=2)
    assert second.deleted["ledger"] == 3 and second.more_left == []
    assert left(WebhookEvent, "received_at") == [1]


def test_zero_keeps_everything_forever(channel, settings):
    settings.RETENTION_LEDGER_DAYS = settings.RETENTION_TIMELINE_DAYS = settings.RETENTION_AUDIT_DAYS = 0
    settings.RETENTION_FAILED_TASK_DAYS = 0
    callbacks(channel, 5000 * DAY)
    ChannelEvent.objects.create(channel=channel, to_state="connected", source="poll", at=timezone.now() - 5000 * DAY)
    AuditLog.objects.create(source="staff", action="channel.extend", at=timezone.now() - 5000 * DAY)
    failure(5000 * DAY)
    result = retention.retention_prune()
    assert "ledger" not in result.deleted and "audit" not in result.deleted
    assert (WebhookEvent.objects.count(), ChannelEvent.objects.count(), AuditLog.objects.count()) == (1, 1, 1)
    assert Failure.objects.count() == 1


def test_timeline_and_audit_log_follow_their_own_settings(channel, settings):
    settings.RETENTION_TIMELINE_DAYS, settings.RETENTION_AUDIT_DAYS = 30, 365
    now = timezone.now()
    for days in (400, 40, 10):
        ChannelEvent.objects.create(channel=channel, to_state="connected", source="poll", at=now - days * DAY)
        AuditLog.objects.create(source="staff", action="channel.extend", at=now - days * DAY)
    result = retention.retention_prune()
    assert (result.deleted["timeline"], result.deleted["audit"]) == (2, 1)
    assert left(ChannelEvent, "at") == [10]
    assert left(AuditLog, "at") == [40, 10]


def attempt(channel, age: timedelta) -> CreateAttempt:
    return CreateAttempt.objects.create(channel=channel, at=timezone.now() - age, outcome="created")


def test_create_attempts_are_kept_while_counted_pending_or_among_the_newest(project, settings, monkeypatch):
    settings.WHAPI_CREATE_WINDOW = 1800
    monkeypatch.setattr(retention, "CREATE_ATTEMPTS_SHOWN", 2)
    done = make_channel(project, name="done", whapi_id="DONEDO-00001", state=Channel.State.CONNECTED)
    creating = make_channel(project, name="creating", whapi_id=None, state=Channel.State.CREATING)
    old_done = attempt(done, 3 * DAY)
    old_creating = attempt(creating, 2 * DAY)  # its outcome may still be reconciled
    older_done = attempt(done, 4 * DAY)
    shown = [attempt(done, 2 * timedelta(hours=1)), attempt(done, timedelta(hours=1))]  # the newest two
    in_window = attempt(done, timedelta(minutes=10))  # counted by the budget (and the newest)
    retention.retention_prune()
    kept = set(CreateAttempt.objects.values_list("pk", flat=True))
    assert kept == {old_creating.pk, shown[1].pk, in_window.pk}
    assert old_done.pk not in kept and older_done.pk not in kept


def failure(age: timedelta) -> Failure:
    stopped = timezone.now() - age
    return Failure.objects.create(
        id=f"failure-{age.days}",
        name="task",
        func="channels_app.tasks.whapi_sync",
        started=stopped,
        stopped=stopped,
        success=False,
    )


def test_failed_tasks_are_pruned_after_their_days(db, settings):
    settings.RETENTION_FAILED_TASK_DAYS = 30
    failure(31 * DAY)
    kept = failure(29 * DAY)
    stopped = timezone.now() - 100 * DAY
    Success.objects.create(id="success", name="ok", func="x", started=stopped, stopped=stopped, success=True)
    assert retention.retention_prune().deleted["failed_tasks"] == 1
    assert list(Failure.objects.values_list("pk", flat=True)) == [kept.pk]
    assert Success.objects.count() == 1  # django-q2's save_limit bounds those


def test_the_task_says_what_it_deleted(channel, settings):
    settings.RETENTION_LEDGER_DAYS = 90
    callbacks(channel, 100 * DAY, 100 * DAY)
    assert tasks.retention_prune().startswith("webhook ledger: 2, ")


def run(*args) -> str:
    out = io.StringIO()
    call_command("prune_history", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_counts_with_dry_run_and_deletes_without(channel, settings):
    settings.RETENTION_LEDGER_DAYS = 90
    callbacks(channel, 100 * DAY, 100 * DAY, 100 * DAY, DAY)
    output = run("--dry-run")
    assert "Kept for 90 days (RETENTION_LEDGER_DAYS)" in output and "Would delete: webhook ledger: 3," in output
    assert WebhookEvent.objects.count() == 4
    output = run("--batch-size", "2", "--max-batches", "1")
    assert "Deleted: webhook ledger: 2," in output and "more left in: webhook ledger" in output
    run()
    assert WebhookEvent.objects.count() == 1


def test_the_command_refuses_a_batch_of_nothing(db):
    with pytest.raises(CommandError, match="at least 1"):
        run("--batch-size", "0")
