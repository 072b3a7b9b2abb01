"""How long the records are kept, and pruning what is older, a bounded amount at a time.

| record | kept | setting (0 = forever) |
| --- | --- | --- |
| webhook ledger (`WebhookEvent`) | 90 days | `RETENTION_LEDGER_DAYS` |
| timeline (`ChannelEvent`) | 365 days | `RETENTION_TIMELINE_DAYS` |
| audit log (`AuditLog`) | forever | `RETENTION_AUDIT_DAYS` |
| create attempts (`CreateAttempt`) | the budget's window, see below | `WHAPI_CREATE_WINDOW` |
| failed background tasks (django-q2) | 30 days | `RETENTION_FAILED_TASK_DAYS` |
| events to customers' systems: attempts, deliveries, events (`events.models`) | 30 days | `RETENTION_EVENTS_DAYS` |

Create attempts are kept while the budget counts them (younger than `WHAPI_CREATE_WINDOW`), while
their channel is still queued or being created (`pipeline.channel_create` looks for an earlier
attempt whose outcome was unknown, and marks the latest one), and the newest
`CREATE_ATTEMPTS_SHOWN` for the admin's list. django-q2 keeps `Q_CLUSTER["save_limit"]`
successful tasks by itself, but every failure forever: those are pruned here. Events go in three
steps, the rows pointing at others first: attempts by when they were made, deliveries by when they
were made (a replay of an old event is a young delivery), then events no delivery is left of.

`retention_prune` (the hourly task of the same name, and `manage.py prune_history`) deletes in
batches of `BATCH_SIZE` rows, each one `DELETE … WHERE id IN (…)` of the oldest rows, in its own
transaction, and at most `MAX_BATCHES` batches per record and run: a backlog (after raising a
setting, or on the first run) is worked off over the following runs instead of in one long
statement that holds locks and bloats the write-ahead log.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django_q.models import Failure

from channels_app import background
from channels_app.models import AuditLog, Channel, ChannelEvent, CreateAttempt, WebhookEvent
from events.models import Attempt, Delivery, Event

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
MAX_BATCHES = 20  # per record and run: 100,000 rows, against about 4,000 new callbacks an hour at 10,000 channels
CREATE_ATTEMPTS_SHOWN = 100


def _older_than(model, field: str) -> Callable[[datetime, int | None], QuerySet]:
    """The rows of `model` whose `field` is more than the given days before now, oldest first."""

    def expired(now: datetime, days: int | None) -> QuerySet:
        return model.objects.filter(**{f"{field}__lt": now - timedelta(days=days)}).order_by(field)

    return expired


def _expired_events(now: datetime, days: int | None) -> QuerySet:
    """Events older than `days` that no delivery is left of (younger replays keep theirs)."""
    return _older_than(Event, "created_at")(now, days).filter(deliveries__isnull=True)


def _expired_create_attempts(now: datetime, _days: int | None) -> QuerySet:
    shown = CreateAttempt.objects.order_by("-at", "-id").values("pk")[:CREATE_ATTEMPTS_SHOWN]
    return (
        CreateAttempt.objects.filter(at__lt=now - timedelta(seconds=settings.WHAPI_CREATE_WINDOW))
        .exclude(channel__state__in=(Channel.State.QUEUED, Channel.State.CREATING))
        .exclude(pk__in=list(shown.values_list("pk", flat=True)))
        .order_by("at")
    )


@dataclass(frozen=True)
class Policy:
    """One kind of record: what it is called, the setting that says how long it is kept, and
    `rows_past(now, days)`, the rows that setting no longer keeps, oldest first."""

    name: str
    label: str
    setting: str
    rows_past: Callable[[datetime, int | None], QuerySet]
    by_days: bool = True  # the setting is a number of days (not so for create attempts)

    @property
    def days(self) -> int | None:
        """The days kept (0: forever); None for a record kept by another rule."""
        return getattr(settings, self.setting) if self.by_days else None

    def expired(self, now: datetime) -> QuerySet | None:
        """The rows past the setting, oldest first; None while it keeps them forever."""
        days = self.days
        return None if days == 0 else self.rows_past(now, days)

    def describe(self) -> str:
        """One line for the admin: how long the rows are kept and when older ones go."""
        if self.days == 0:
            return f"Kept forever ({self.setting}=0)."
        minutes = background.PERIODIC["retention"][1]
        every = "every hour" if minutes == 60 else f"every {minutes} minutes"
        if self.days is None:
            return (
                f"Kept while the create budget counts them ({self.setting}), while their channel is queued or"
                f" being created, and the newest {CREATE_ATTEMPTS_SHOWN}; older ones are deleted {every}."
            )
        return f"Kept for {self.days} days ({self.setting}); older rows are deleted {every}."


POLICIES = {
    policy.name: policy
    for policy in (
        Policy("ledger", "webhook ledger", "RETENTION_LEDGER_DAYS", _older_than(WebhookEvent, "received_at")),
        Policy("timeline", "timeline", "RETENTION_TIMELINE_DAYS", _older_than(ChannelEvent, "at")),
        Policy("audit", "audit log", "RETENTION_AUDIT_DAYS", _older_than(AuditLog, "at")),
        Policy("create_attempts", "create attempts", "WHAPI_CREATE_WINDOW", _expired_create_attempts, by_days=False),
        Policy(
            "failed_tasks", "failed background tasks", "RETENTION_FAILED_TASK_DAYS", _older_than(Failure, "stopped")
        ),
        Policy("event_attempts", "event delivery attempts", "RETENTION_EVENTS_DAYS", _older_than(Attempt, "at")),
        Policy("event_deliveries", "event deliveries", "RETENTION_EVENTS_DAYS", _older_than(Delivery, "created_at")),
        Policy("events", "events", "RETENTION_EVENTS_DAYS", _expired_events),
    )
}


@dataclass
class Pruned:
    """What one run deleted (or, dry, would delete) per record, and which records have more left."""

    deleted: dict[str, int]
    more_left: list[str]

    def __str__(self) -> str:
        parts = [f"{POLICIES[name].label}: {count}" for name, count in self.deleted.items()]
        more = f"; more left in: {', '.join(POLICIES[name].label for name in self.more_left)}" if self.more_left else ""
        return (", ".join(parts) or "nothing") + more


def retention_prune(*, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES, now=None) -> Pruned:
    """Delete the rows each policy no longer keeps, oldest first, in batches (see the module docstring).

    Returns the rows deleted per record; `more_left` names the records that still had expired rows
    when the run stopped after `max_batches` batches.
    """
    now = now or timezone.now()
    result = Pruned(deleted={}, more_left=[])
    for name, policy in POLICIES.items():
        expired = policy.expired(now)
        if expired is None:
            continue
        deleted = 0
        for _ in range(max_batches):
            ids = list(expired.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            # One statement per batch, autocommitted: no lock outlives it. None of these models has
            # delete signals, and the rows pointing at them are pruned before them (deliveries'
            # attempts, events' deliveries), so Django deletes without loading the rows.
            deleted += expired.model.objects.filter(pk__in=ids).delete()[0]
            if len(ids) < batch_size:
                break
        else:
            if expired.exists():
                result.more_left.append(name)
        result.deleted[name] = deleted
    logger.info("retention_prune deleted %s", result)
    return result


def retention_count(*, now=None) -> Pruned:
    """What `retention_prune` would delete without its per-run bound (a dry run; counts, deletes nothing)."""
    now = now or timezone.now()
    counted = {}
    for name, policy in POLICIES.items():
        expired = policy.expired(now)
        if expired is not None:
            counted[name] = expired.count()
    return Pruned(deleted=counted, more_left=[])
