"""The fleet's figures: what the staff console's operations home (the admin's index) shows and
`/metrics` exports, each computed here and nowhere else, so a figure means the same in both places.

`fleet_figures` costs a fixed number of aggregate queries, each served by an index (the channel
indexes in `models.Channel.Meta`, the ledger's `ledger_received` and `ledger_to_apply`, the create
attempts' `at`), plus django-q2's small schedule and queue tables: it costs the same at ten
channels as at ten thousand with a million ledger rows.

Every count here is what a filter of the admin's lists selects (`channels_app.admin.filters`), so the
operations home links each number to the list of exactly what it counts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from channels_app import background, budget, checks
from channels_app.models import Channel, Project, WebhookEvent

State = Channel.State

# "Ending soon" in the channel list and on the operations home; the list marks these days in colour.
EXPIRING_SOON_DAYS = 7
# The upcoming expiries the operations home and /metrics count, in days (ExpiringFilter's choices).
EXPIRY_WINDOWS = (3, EXPIRING_SOON_DAYS, 30)
# A channel ready for its scan this long is likely forgotten by its customer while its paid days run.
UNSCANNED_HOURS = 24
UNSCANNED_FOR = timedelta(hours=UNSCANNED_HOURS)
# The callbacks "received lately" figure looks back this far.
CALLBACKS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Attention:
    """Channels that need a look, by reason (a channel may count under several)."""

    errors: int
    stale: int  # the last status check failed
    unscanned: int  # waiting for a scan for longer than UNSCANNED_FOR
    unassigned: int
    expiring: dict[int, int]  # days (EXPIRY_WINDOWS) → channels whose paid time ends within them

    @property
    def expiring_soon(self) -> int:
        return self.expiring[EXPIRING_SOON_DAYS]


def attention_counts(now: datetime | None = None) -> Attention:
    """The "needs a look" figures, exact, each counted through an index of its own (state,
    `channel_active_till`, the partial `channel_stale`, the project's foreign key), so no list or
    page reads every channel to show them. Unassigned: no project, or a project that no customer
    holds (the few such projects, then their channels). Deleted channels count for none of them."""
    now = now or timezone.now()
    live = Channel.objects.exclude(state=State.DELETED)
    longest = now + timedelta(days=max(EXPIRY_WINDOWS))
    # One pass over the index range of the longest window counts every window.
    ending = live.filter(active_till__gte=now, active_till__lt=longest).aggregate(
        **{
            f"within_{days}": Count("pk", filter=Q(active_till__lt=now + timedelta(days=days)))
            for days in EXPIRY_WINDOWS
        }
    )
    return Attention(
        errors=Channel.objects.filter(state=State.ERROR).count(),
        stale=live.filter(status_stale=True).count(),
        unscanned=Channel.objects.filter(state=State.WAITING_SCAN, state_changed_at__lt=now - UNSCANNED_FOR).count(),
        unassigned=live.filter(project__isnull=True).count()
        + live.filter(project__in=Project.objects.filter(customer__isnull=True)).count(),
        expiring={days: ending[f"within_{days}"] for days in EXPIRY_WINDOWS},
    )


@dataclass(frozen=True)
class CreateQueue:
    """The create budget (`budget.status`) and the queue it drains."""

    budget: budget.BudgetStatus
    oldest_requested_at: datetime | None  # the head of the queue's request
    drained_at: datetime | None  # when the last queued channel is expected to be created (`budget.queue_eta`)


def create_queue() -> CreateQueue:
    status = budget.status()
    head = Channel.objects.filter(state=State.QUEUED).aggregate(oldest=Min("requested_at"))["oldest"]
    return CreateQueue(
        budget=status,
        oldest_requested_at=head,
        drained_at=budget.queue_eta(status.queued) if status.queued else None,
    )


@dataclass(frozen=True)
class Worker:
    """The background worker's heartbeat, as the database shows it."""

    schedules_last_run: datetime | None  # the latest run of a periodic schedule; None: none ran yet
    tasks_waiting: int  # queued in django-q2's ORM broker, not yet taken by a worker process
    oldest_waiting_since: datetime | None
    tasks_taken: int  # taken by a worker process (running, or handed out again after `retry`)


def worker_heartbeat(now: datetime | None = None) -> Worker:
    """When the scheduler last ran the periodic schedules, and what waits in the task queue.

    django-q2 keeps no time of a schedule's last run, but it moves a periodic schedule's `next_run` on
    by its interval when it runs it (`catch_up` is off, settings.Q_CLUSTER), and the worker looks for
    due schedules every Q_SCHEDULER_SECONDS: so the last run is `next_run` minus the interval, to
    within one tick. A schedule that never ran has no `task` yet and does not count. The ORM broker
    sets a task's `lock` to the time it was queued and, once a worker process takes it, to when it
    may be handed out again (`django_q/brokers/orm.py`): a lock in the past means still waiting.
    """
    now = now or timezone.now()
    runs = [
        next_run - timedelta(minutes=minutes)
        for next_run, minutes in Schedule.objects.filter(
            name__in=list(background.PERIODIC),
            schedule_type=Schedule.MINUTES,
            task__isnull=False,
            next_run__isnull=False,
            minutes__isnull=False,
        ).values_list("next_run", "minutes")
    ]
    waiting = Q(lock__lte=now)
    queue = OrmQ.objects.aggregate(
        waiting=Count("pk", filter=waiting),
        oldest=Min("lock", filter=waiting),
        taken=Count("pk", filter=Q(lock__gt=now)),
    )
    return Worker(
        schedules_last_run=max(runs, default=None),
        tasks_waiting=queue["waiting"],
        oldest_waiting_since=queue["oldest"],
        tasks_taken=queue["taken"],
    )


@dataclass(frozen=True)
class Callbacks:
    """Whapi's callbacks as the webhook ledger has them."""

    lately: int  # received in the last CALLBACKS_WINDOW
    last_received_at: datetime | None
    to_apply: int  # stored by the receiver, not applied yet (the applier's backlog)


def callbacks_received(now: datetime | None = None) -> Callbacks:
    now = now or timezone.now()
    ledger = WebhookEvent.objects.order_by()
    return Callbacks(
        # A range of the (received_at, id) index; the newest row is that index's last entry.
        lately=ledger.filter(received_at__gte=now - CALLBACKS_WINDOW).count(),
        last_received_at=ledger.aggregate(last=Max("received_at"))["last"],
        # The partial index `ledger_to_apply` holds exactly these rows.
        to_apply=ledger.filter(outcome=WebhookEvent.Outcome.RECEIVED).count(),
    )


def channel_states() -> dict[str, int]:
    """How many channels are in each state (every state, zero included), from one GROUP BY."""
    counts = dict.fromkeys(State.values, 0)
    for row in Channel.objects.order_by().values("state").annotate(count=Count("pk")):
        counts[row["state"]] = row["count"]
    return counts


@dataclass(frozen=True)
class FleetFigures:
    at: datetime
    states: dict[str, int]
    attention: Attention
    create_queue: CreateQueue
    worker: Worker
    callbacks: Callbacks
    checks: checks.Coverage


def fleet_figures() -> FleetFigures:
    """Every figure of the operations home and /metrics, as of now (see the module docstring)."""
    now = timezone.now()
    return FleetFigures(
        at=now,
        states=channel_states(),
        attention=attention_counts(now),
        create_queue=create_queue(),
        worker=worker_heartbeat(now),
        callbacks=callbacks_received(now),
        checks=checks.checks_coverage(now),
    )


def next_expiries(limit: int = 10, now: datetime | None = None) -> list[Channel]:
    """The `limit` channels (not deleted) whose paid time ends next, soonest first, through the
    `channel_active_till` index; with their project and customer, without their secrets."""
    now = now or timezone.now()
    return list(
        Channel.objects.exclude(state=State.DELETED)
        .filter(active_till__gte=now)
        .select_related("project__customer")
        .only("name", "whapi_id", "state", "active_till", "project__name", "project__customer__name")
        .order_by("active_till", "id")[:limit]
    )
