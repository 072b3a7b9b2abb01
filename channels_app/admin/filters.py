"""List filters of the staff console. Choices are fixed or typed into a box, so no filter runs a
query of its own (Django's filter on a plain field would run a `SELECT DISTINCT` over the table for
its links) and none grows with the number of customers, projects or rows."""

import uuid
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q
from django.utils import timezone

from channels_app import budget, webhooks
from channels_app.models import Channel, Customer, Project
from channels_app.status import CHECK_COLUMNS

State = Channel.State
QUIET_FOR = timedelta(hours=1)
# Read for neither the list nor its filters: secrets (decrypting them costs time, too) and big columns.
LIST_DEFERRED = ("token", "webhook_secret", "webhooks_readback", "customer_webhook_events")


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a box: a thousand customers do not fit in a sidebar of links."""

    template = "admin/portal/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        # One dummy choice, so that the admin shows the filter; the box replaces the links.
        return [("", "")]

    def choices(self, changelist):
        yield {
            "selected": bool(self.value()),
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
            # The other filters, the search and the ordering ride along with the box.
            "keep": [
                (name, value)
                for name, values in changelist.filter_params.items()
                if name != self.parameter_name
                for value in values
            ],
            "placeholder": self.placeholder,
        }

    def cleaned_value(self) -> str:
        return (self.value() or "").strip()


class CustomerFilter(InputFilter):
    """By customer: a name (contains) or a customer's public code (what links in the console carry)."""

    title = "customer"
    parameter_name = "customer"
    placeholder = "Customer name"
    customer_path = "customer"

    def queryset(self, request, queryset):
        value = self.cleaned_value()
        if not value:
            return queryset
        try:
            return queryset.filter(**{f"{self.customer_path}__code": uuid.UUID(value)})
        except ValueError:
            return queryset.filter(**{f"{self.customer_path}__name__icontains": value})


# ------------------------------------------------------------------------------------------------
# The channel list
# ------------------------------------------------------------------------------------------------
class HealthStatusFilter(admin.SimpleListFilter):
    title = "health status"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("AUTH", "AUTH (connected)"),
            ("QR", "QR (waiting for a scan)"),
            ("INIT", "INIT"),
            ("LAUNCH", "LAUNCH"),
            ("ERROR", "ERROR"),
            ("SYNC_ERROR", "SYNC_ERROR"),
            ("STOP", "STOP"),
            ("none", "Not known yet"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(health_status="")
        if self.value():
            return queryset.filter(health_status=self.value())
        return queryset


class ChannelCustomerFilter(CustomerFilter):
    customer_path = "project__customer"


class ProjectFilter(InputFilter):
    title = "project"
    parameter_name = "project"
    placeholder = "Project name or Whapi id"

    def queryset(self, request, queryset):
        value = self.cleaned_value()
        if not value:
            return queryset
        return queryset.filter(Q(project__whapi_id=value) | Q(project__name__icontains=value))


def _whole_number(filter_: admin.SimpleListFilter, value: str, highest: int) -> int:
    """The filter's value as a number from 1 to `highest`; the admin shows "Incorrect lookup" otherwise."""
    if not value.isdigit() or not 0 < int(value) <= highest:
        raise IncorrectLookupParameters(f"{filter_.parameter_name} must be a number from 1 to {highest}, not {value!r}")
    return int(value)


class ExpiringFilter(admin.SimpleListFilter):
    """Channels whose paid time ends within N days (any N works in the URL: ?expiring_within=10)."""

    title = "active till"
    parameter_name = "expiring_within"

    def lookups(self, request, model_admin):
        return [
            ("3", "Ends within 3 days"),
            ("7", "Ends within 7 days"),
            ("30", "Ends within 30 days"),
            ("expired", "Ended"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        now = timezone.now()
        live = queryset.exclude(state=State.DELETED)
        if value == "expired":
            return live.filter(active_till__lt=now)
        days = _whole_number(self, value, 3650)
        return live.filter(active_till__gte=now, active_till__lt=now + timedelta(days=days))


class StaleFilter(admin.SimpleListFilter):
    title = "status freshness"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("failed", "Last check failed"), ("quiet", "Not confirmed for an hour")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(status_stale=True).exclude(state=State.DELETED)
        if self.value() == "quiet":
            cutoff = timezone.now() - QUIET_FOR
            return (
                queryset.filter(whapi_id__isnull=False)
                .exclude(state__in=(*Channel.SETTING_UP, State.DELETED))
                .filter(Q(last_confirmed_at__isnull=True) | Q(last_confirmed_at__lt=cutoff))
            )
        return queryset


class WaitingScanFilter(admin.SimpleListFilter):
    """Channels ready for their scan for over N hours (any N works in the URL: ?waiting_scan_over=48)."""

    title = "waiting for a scan"
    parameter_name = "waiting_scan_over"

    def lookups(self, request, model_admin):
        return [("1", "For over an hour"), ("24", "For over a day"), ("168", "For over a week")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        hours = _whole_number(self, self.value(), 24 * 3650)
        return queryset.filter(state=State.WAITING_SCAN, state_changed_at__lt=timezone.now() - timedelta(hours=hours))


class CheckDueFilter(admin.SimpleListFilter):
    """Channels whose health check or settings read-back is due now (the checks sweep's backlog)."""

    title = "check due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("health", "Health check due"), ("settings", "Settings read-back due")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value not in CHECK_COLUMNS:
            raise IncorrectLookupParameters(f"due must be one of {', '.join(CHECK_COLUMNS)}, not {value!r}")
        return queryset.filter(**{f"{CHECK_COLUMNS[value]}__lte": timezone.now()})


class AssignedFilter(admin.SimpleListFilter):
    title = "assigned to a customer"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No (e.g. imported from Whapi)")]

    def queryset(self, request, queryset):
        unassigned = Q(project__isnull=True) | Q(project__customer__isnull=True)
        if self.value() == "no":
            # Channels still to assign: a deleted one needs no customer any more.
            return queryset.filter(unassigned).exclude(state=State.DELETED)
        if self.value() == "yes":
            return queryset.exclude(unassigned)
        return queryset


class ChannelChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer(*LIST_DEFERRED)


# ------------------------------------------------------------------------------------------------
# The records: ledger, timeline, audit log
# ------------------------------------------------------------------------------------------------
class ChannelIdFilter(admin.SimpleListFilter):
    """One channel's rows (`?channel=<id>`), the link "all of this channel" on the channel page.

    Shown only while it is set: a sidebar cannot list ten thousand channels."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        value = self.value()
        if not (value and value.isdigit()):
            return []
        channel = Channel.objects.filter(pk=value).only("name", "whapi_id").first()
        return [(value, str(channel) if channel else f"#{value}")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"channel must be a channel's id, not {value!r}")
        return queryset.filter(channel_id=int(value))


class EventFilter(admin.SimpleListFilter):
    """By Whapi event: the ones the receiver handles (`webhooks.EVENT_HANDLERS`), or any other."""

    title = "event"
    parameter_name = "event"
    OTHER = "other"

    def lookups(self, request, model_admin):
        handled = [(f"{kind}.{method}", f"{kind}.{method}") for kind, method in webhooks.EVENT_HANDLERS]
        return [*handled, (self.OTHER, "Any other (ignored)")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        handled = Q()
        for kind, method in webhooks.EVENT_HANDLERS:
            handled |= Q(event_type=kind, event_method=method)
        if value == self.OTHER:
            return queryset.exclude(handled)
        kind, _, method = value.partition(".")
        if (kind, method) not in webhooks.EVENT_HANDLERS:
            raise IncorrectLookupParameters(f"event must be one of the handled events or 'other', not {value!r}")
        return queryset.filter(event_type=kind, event_method=method)


class ReceivedWithinFilter(admin.SimpleListFilter):
    """Callbacks received in the last N minutes (any N up to a week works in the URL)."""

    title = "received lately"
    parameter_name = "received_within"

    def lookups(self, request, model_admin):
        return [("60", "In the last hour"), ("1440", "In the last day")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        minutes = _whole_number(self, self.value(), 7 * 1440)
        return queryset.filter(received_at__gte=timezone.now() - timedelta(minutes=minutes))


class BudgetWindowFilter(admin.SimpleListFilter):
    """The create attempts the budget counts now: those inside its sliding window (budget.py)."""

    title = "create budget"
    parameter_name = "budget_window"

    def lookups(self, request, model_admin):
        return [("current", "Counted by the budget now")]

    def queryset(self, request, queryset):
        if self.value() == "current":
            return queryset.filter(at__gt=timezone.now() - budget.window())
        return queryset


class TaskTakenFilter(admin.SimpleListFilter):
    """django-q2's queue: its ORM broker sets a task's `lock` to when it was queued and, once a worker
    takes it, to when it may be handed out again (django_q/brokers/orm.py)."""

    title = "taken by a worker"
    parameter_name = "taken"

    def lookups(self, request, model_admin):
        return [("no", "No: waiting"), ("yes", "Yes: being run")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(lock__lte=timezone.now())
        if self.value() == "yes":
            return queryset.filter(lock__gt=timezone.now())
        return queryset


# What `audit.audit` records as target_type: the lower-case name of the target's model.
AUDIT_TARGET_TYPES = {model.__name__.lower(): model._meta.verbose_name for model in (Channel, Project, Customer)}


class TargetTypeFilter(admin.SimpleListFilter):
    title = "target type"
    parameter_name = "target_type"

    def lookups(self, request, model_admin):
        return [*AUDIT_TARGET_TYPES.items(), ("none", "None")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(target_type="")
        if value:
            return queryset.filter(target_type=value)
        return queryset


class AuditActionFilter(InputFilter):
    """By action: exactly (`channel.extend`), or a whole kind by its first part (`channel`)."""

    title = "action"
    parameter_name = "action"
    placeholder = "channel.extend, or channel"

    def queryset(self, request, queryset):
        value = self.cleaned_value()
        if not value:
            return queryset
        if "." in value.rstrip("."):
            return queryset.filter(action=value)
        return queryset.filter(action__startswith=value.rstrip(".") + ".")
