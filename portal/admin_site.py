"""The staff console's site: Django's admin with the portal's sign-in and its operations home.

Staff sign in at /admin/login/ with the same failed-login throttle as customers at /app/login/ and,
whenever `STAFF_TWO_FACTOR` is on (DJANGO_DEBUG off), with a one-time code too: the 6 digits of
their authenticator app, or one of their recovery codes (django-otp's TOTP and static devices). A
session signed in without a code (a customer's login, say) does not open the admin then.

The index is the operations home: the fleet's figures (`channels_app.fleet`, the same ones /metrics
exports), each number a link to the admin list filtered to what it counts, above the usual list of
everything in the console. Staff who may not view channels see the list only.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin import AdminSite
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django_q.models import OrmQ, Schedule

from channels_app import fleet
from channels_app.forms import AdminLoginForm, StaffTwoFactorLoginForm
from channels_app.models import Channel, CreateAttempt, WebhookEvent

State = Channel.State
# The periodic schedules run every minute: no run for this long means the scheduler has stopped.
SCHEDULER_LATE = timedelta(minutes=3)
# A free worker process takes a task within a second or two (Q_CLUSTER "poll"): one waiting this
# long means every worker process is busy.
TASK_WAIT_LATE = timedelta(minutes=1)
# Checks come due all the time and the sweep takes them within seconds: one this late means the
# sweep falls behind.
CHECK_LATE = timedelta(minutes=5)
NEXT_EXPIRIES_SHOWN = 10


def duration_text(delta: timedelta) -> str:
    """A length of time as staff read it at a glance: "45 s", "12 min", "3 h 5 min", "4 days"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def moment_text(moment: datetime | None, now: datetime, *, none: str = "never") -> str:
    """When something happened or will, with how long ago or until: "16:40:12 UTC (35 s ago)"."""
    if moment is None:
        return none
    when = f"{moment:%H:%M:%S} UTC" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M} UTC"
    if abs(moment - now) < timedelta(seconds=1):
        return f"{when} (now)"
    if moment < now:
        return f"{when} ({duration_text(now - moment)} ago)"
    return f"{when} (in {duration_text(moment - now)})"


@dataclass(frozen=True)
class Figure:
    """One line of the operations home: a count (or a text, for times), and the list it links to."""

    key: str  # the line's id in the page, figure-<key>
    label: str
    count: int | None = None
    text: str = ""
    url: str | None = None
    alert: bool = False  # shown as needing attention
    note: str = ""

    @property
    def value(self) -> str:
        return f"{self.count:,}" if self.count is not None else self.text


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)


class PortalAdminSite(AdminSite):
    login_template = "admin/portal/login.html"
    index_template = "admin/portal/operations_home.html"
    index_title = "Operations"

    @property
    def login_form(self):  # read per request, so settings that change (tests) take effect
        return StaffTwoFactorLoginForm if settings.STAFF_TWO_FACTOR else AdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.STAFF_TWO_FACTOR or request.user.is_verified()

    def index(self, request, extra_context=None):
        context = self.operations_home(request) if request.user.has_perm("channels_app.view_channel") else {}
        return super().index(request, {**context, **(extra_context or {})})

    def list_url(self, request: HttpRequest, model: type[Model], **filters) -> str | None:
        """The admin list of `model` with `filters` in its query string; None when the user may not see it."""
        model_admin = self._registry.get(model)
        if model_admin is None or not model_admin.has_view_or_change_permission(request):
            return None
        opts = model._meta
        url = reverse(f"{self.name}:{opts.app_label}_{opts.model_name}_changelist", current_app=self.name)
        return f"{url}?{urlencode(filters)}" if filters else url

    def operations_home(self, request: HttpRequest) -> dict:
        """The index's figures: sections of lines, and the channels whose paid time ends next."""
        figures = fleet.fleet_figures()
        now = figures.at
        attention, queue, worker = figures.attention, figures.create_queue, figures.worker
        status, callbacks, coverage = queue.budget, figures.callbacks, figures.checks

        def channels(**filters) -> str | None:
            return self.list_url(request, Channel, **filters)

        def ledger(**filters) -> str | None:
            return self.list_url(request, WebhookEvent, **filters)

        states = Section(
            "states",
            "Channels by state",
            [
                Figure(f"state-{state}", label, count=figures.states[state], url=channels(state__exact=state))
                for state, label in State.choices
            ],
        )
        needs_a_look = Section(
            "attention",
            "Needs a look",
            [
                Figure(
                    "errors",
                    "In error",
                    count=attention.errors,
                    url=channels(state__exact=State.ERROR),
                    alert=attention.errors > 0,
                ),
                Figure(
                    "stale",
                    "Last status check failed",
                    count=attention.stale,
                    url=channels(stale="failed"),
                    alert=attention.stale > 0,
                ),
                Figure(
                    "unscanned",
                    f"Waiting for a scan for over {fleet.UNSCANNED_HOURS} hours",
                    count=attention.unscanned,
                    url=channels(waiting_scan_over=fleet.UNSCANNED_HOURS),
                    alert=attention.unscanned > 0,
                ),
                Figure(
                    "expiring-soon",
                    f"Paid time ends within {fleet.EXPIRING_SOON_DAYS} days",
                    count=attention.expiring_soon,
                    url=channels(expiring_within=fleet.EXPIRING_SOON_DAYS),
                    alert=attention.expiring_soon > 0,
                ),
                Figure(
                    "unassigned",
                    "Not assigned to a customer",
                    count=attention.unassigned,
                    url=channels(assigned="no"),
                    alert=attention.unassigned > 0,
                ),
            ],
        )
        window_minutes = round(status.window_seconds / 60)
        creating = Section(
            "create",
            "Channel creation",
            [
                Figure(
                    "budget-used",
                    f"Creations in the last {window_minutes} minutes",
                    count=status.used,
                    url=self.list_url(request, CreateAttempt, budget_window="current"),
                    alert=status.used >= status.budget,
                    note=f"of {status.budget} the budget allows",
                ),
                Figure(
                    "next-free-slot",
                    "Next free slot",
                    text=moment_text(status.next_free_slot, now),
                ),
                Figure(
                    "queued",
                    "Queued for creation",
                    count=status.queued,
                    url=channels(state__exact=State.QUEUED),
                ),
                Figure(
                    "queue-oldest",
                    "Head of the queue requested",
                    text=moment_text(queue.oldest_requested_at, now, none="queue empty"),
                ),
                Figure(
                    "queue-drained",
                    "Last queued channel expected to be created",
                    text=moment_text(queue.drained_at, now, none="queue empty"),
                ),
            ],
        )
        if status.blocked_until:
            creating.figures.append(
                Figure(
                    "blocked",
                    "Whapi refused a creation (429): held back until",
                    text=moment_text(status.blocked_until, now),
                    alert=True,
                )
            )
        last_run = worker.schedules_last_run
        worker_section = Section(
            "worker",
            "Background worker",
            [
                Figure(
                    "scheduler",
                    "Periodic schedules last ran",
                    text=moment_text(last_run, now),
                    url=self.list_url(request, Schedule),
                    alert=last_run is None or now - last_run > SCHEDULER_LATE,
                    note="each runs every minute",
                ),
                Figure(
                    "tasks-waiting",
                    "Tasks waiting for a worker",
                    count=worker.tasks_waiting,
                    url=self.list_url(request, OrmQ, taken="no"),
                ),
                Figure(
                    "oldest-task",
                    "Oldest waiting task queued",
                    text=moment_text(worker.oldest_waiting_since, now, none="none waiting"),
                    alert=bool(worker.oldest_waiting_since and now - worker.oldest_waiting_since > TASK_WAIT_LATE),
                ),
                Figure(
                    "tasks-taken",
                    "Tasks being run",
                    count=worker.tasks_taken,
                    url=self.list_url(request, OrmQ, taken="yes"),
                ),
            ],
        )
        callbacks_section = Section(
            "callbacks",
            "Callbacks from Whapi",
            [
                Figure(
                    "callbacks-lately",
                    "Received in the last hour",
                    count=callbacks.lately,
                    url=ledger(received_within=round(fleet.CALLBACKS_WINDOW.total_seconds() / 60)),
                ),
                Figure(
                    "callbacks-last",
                    "Last received",
                    text=moment_text(callbacks.last_received_at, now),
                    url=ledger(),
                ),
                Figure(
                    "callbacks-to-apply",
                    "Stored, not applied yet",
                    count=callbacks.to_apply,
                    url=ledger(outcome__exact=WebhookEvent.Outcome.RECEIVED),
                ),
            ],
        )
        health_every = round(settings.HEALTH_CHECK_EVERY / 60)
        settings_every = round(settings.SETTINGS_CHECK_EVERY / 3600, 1)
        checks_section = Section(
            "checks",
            "Status checks",
            [
                Figure(
                    "health-due",
                    "Health checks due",
                    count=coverage.health_due,
                    url=channels(due="health"),
                    note=f"each channel is asked after {health_every} quiet minutes",
                ),
                Figure(
                    "health-overdue",
                    "Oldest due health check late by",
                    text=duration_text(coverage.health_overdue) if coverage.health_overdue else "none due",
                    alert=bool(coverage.health_overdue and coverage.health_overdue > CHECK_LATE),
                ),
                Figure(
                    "settings-due",
                    "Settings read-backs due",
                    count=coverage.settings_due,
                    url=channels(due="settings"),
                    note=f"every {settings_every:g} h for each live channel",
                ),
                Figure(
                    "settings-overdue",
                    "Oldest due read-back late by",
                    text=duration_text(coverage.settings_overdue) if coverage.settings_overdue else "none due",
                    alert=bool(coverage.settings_overdue and coverage.settings_overdue > CHECK_LATE),
                ),
            ],
        )
        expiries = Section(
            "expiries",
            "Upcoming expiries",
            [
                Figure(
                    f"expiring-{days}",
                    f"Paid time ends within {days} days",
                    count=count,
                    url=channels(expiring_within=days),
                )
                for days, count in attention.expiring.items()
            ],
        )
        may_open_channels = channels() is not None
        return {
            "fleet_at": now,
            "fleet_sections": [
                needs_a_look,
                states,
                creating,
                worker_section,
                callbacks_section,
                checks_section,
                expiries,
            ],
            "next_expiries": [
                {
                    "channel": channel,
                    "days_left": channel.days_left(now),
                    "url": reverse(f"{self.name}:channels_app_channel_change", args=[channel.pk])
                    if may_open_channels
                    else None,
                }
                for channel in fleet.next_expiries(NEXT_EXPIRIES_SHOWN, now)
            ],
        }
