"""Records in the staff console, read-only: the webhook ledger (with replay through the handlers),
the channels' timeline, the audit log and the create attempts the budget counts.

These tables grow to millions of rows, so their lists count no further than the pages they link
(`paging.BoundedListAdmin`), their filters have fixed vocabularies, and their search matches exact
ids, user names and days through an index, never a substring of a text column. Each list says on
top how long its rows are kept (`channels_app.retention`).
"""

import json
import re
from datetime import UTC, date, datetime, time, timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db.models import F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.text import Truncator

from channels_app import retention, webhooks
from channels_app.admin.common import (
    admin_url,
    channel_url,
    has_channel_perm,
    require_channel_perm,
)
from channels_app.admin.filters import (
    AUDIT_TARGET_TYPES,
    AuditActionFilter,
    BudgetWindowFilter,
    ChannelIdFilter,
    CustomerFilter,
    EventFilter,
    ReceivedWithinFilter,
    TargetTypeFilter,
)
from channels_app.admin.paging import BoundedListAdmin
from channels_app.audit import audit
from channels_app.models import AuditLog, Channel, ChannelEvent, CreateAttempt, WebhookEvent

STAFF = AuditLog.Source.STAFF
MAX_REPLAY = 500
# A Whapi channel id: two groups of letters and digits joined by a hyphen (e.g. MANTIS-M72HC).
WHAPI_CHANNEL_ID = re.compile(r"[A-Za-z0-9]{2,16}-[A-Za-z0-9]{2,16}")
# A channel-name search looks at this many channels whose name starts with the term.
NAME_MATCHES = 50


def search_day(term: str) -> tuple[datetime, datetime] | None:
    """The UTC day a YYYY-MM-DD term names, as [start, end); None for any other term."""
    try:
        day = date.fromisoformat(term) if len(term) == 10 else None
    except ValueError:
        return None
    if day is None:
        return None
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def search_terms(queryset: QuerySet, search_term: str, term_filter) -> QuerySet:
    """Every whitespace-separated term must match: `term_filter(term)` gives its Q."""
    for term in search_term.split():
        queryset = queryset.filter(term_filter(term))
    return queryset


class ReadOnlyAdmin(BoundedListAdmin):
    """Records are evidence: nobody adds, edits or deletes them in the admin."""

    def changelist_view(self, request, extra_context=None):
        policy = retention.POLICIES[self.retention_policy]
        context = {"retention_note": policy.describe(), **(extra_context or {})}
        return super().changelist_view(request, context)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ResultFilter(admin.SimpleListFilter):
    title = "result"
    parameter_name = "result"

    def lookups(self, request, model_admin):
        return [("done", "Done"), ("failed", "Failed")]

    def queryset(self, request, queryset):
        if self.value() in ("done", "failed"):
            return queryset.filter(ok=self.value() == "done")
        return queryset


class WhenFilter(admin.DateFieldListFilter):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.title = "when"


def replay_events(request: HttpRequest, events) -> dict[str, int]:
    """Replay stored callbacks (audited one by one); returns how many ended with each outcome."""
    outcomes: dict[str, int] = {}
    for event in events:
        outcome = webhooks.replay(event)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        audit(
            actor=request.user,
            source=STAFF,
            action="webhook.replay",
            target=event.channel,
            ok=outcome != WebhookEvent.Outcome.FAILED,
            detail=f"ledger #{event.pk} {event.event_type}.{event.event_method}: {event.detail}",
        )
    return outcomes


def _outcome_summary(outcomes: dict[str, int]) -> str:
    labels = dict(WebhookEvent.Outcome.choices)
    return ", ".join(f"{count} {labels.get(outcome, outcome).lower()}" for outcome, count in sorted(outcomes.items()))


@admin.action(description="Replay through the handlers", permissions=["replay"])
def replay_selected(modeladmin: "WebhookEventAdmin", request: HttpRequest, queryset):
    ids = list(queryset.values_list("pk", flat=True)[: MAX_REPLAY + 1])
    if len(ids) > MAX_REPLAY:
        modeladmin.message_user(request, f"Select at most {MAX_REPLAY} callbacks to replay at once.", messages.ERROR)
        return
    events = WebhookEvent.objects.filter(pk__in=ids).select_related("channel").order_by("received_at", "id")
    outcomes = replay_events(request, events)
    modeladmin.message_user(request, f"Replayed {len(ids)} callbacks: {_outcome_summary(outcomes)}.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "whapi_channel_id", "channel_link", "event", "outcome", "short_detail"]
    # `outcome` has choices, so Django's filter lists them without a query.
    list_filter = ["outcome", EventFilter, ChannelIdFilter, ReceivedWithinFilter, ("received_at", WhenFilter)]
    search_fields = ["whapi_channel_id"]  # shows the box; get_search_results decides what matches
    search_help_text = (
        "A Whapi channel id (exactly, e.g. MANTIS-M72HC), a day (YYYY-MM-DD, UTC) or the start of a channel's name;"
        " several terms must all match."
    )
    retention_policy = "ledger"
    sortable_by = ["received_at"]  # what an index orders; any other column would sort the whole table
    actions = [replay_selected]
    fields = [
        "received_at",
        "channel_link",
        "whapi_channel_id",
        "event",
        "outcome",
        "detail",
        "pretty_body",
    ]
    readonly_fields = fields

    def has_replay_permission(self, request):
        return has_channel_perm(request, "operate_channel")

    def get_search_results(self, request, queryset, search_term):
        """Days and Whapi channel ids each restrict the list; the other words, together, are the
        start of a channel's name (the channels table is small; the ledger is then read through its
        (channel, received_at) index). A Whapi id also matches a channel whose name starts with it."""
        words = []
        for term in search_term.split():
            day = search_day(term)
            if day:
                queryset = queryset.filter(received_at__gte=day[0], received_at__lt=day[1])
            elif WHAPI_CHANNEL_ID.fullmatch(term):
                queryset = queryset.filter(Q(whapi_channel_id=term.upper()) | self._channel_named(term))
            else:
                words.append(term)
        if words:
            queryset = queryset.filter(self._channel_named(" ".join(words)))
        return queryset, False

    @staticmethod
    def _channel_named(start: str) -> Q:
        names = Channel.objects.filter(name__istartswith=start).order_by().values_list("pk", flat=True)
        return Q(channel_id__in=list(names[:NAME_MATCHES]))

    def get_queryset(self, request):
        # The channel's name without loading (and decrypting) the channel row; the body only on its page.
        return super().get_queryset(request).annotate(channel_name=F("channel__name")).defer("body")

    @admin.display(description="channel")
    def channel_link(self, obj: WebhookEvent):
        if obj.channel_id is None:
            return "–"
        return format_html('<a href="{}">{}</a>', channel_url(obj.channel_id), obj.channel_name or obj.channel_id)

    @admin.display(description="event")
    def event(self, obj: WebhookEvent) -> str:
        return f"{obj.event_type}.{obj.event_method}"

    @admin.display(description="detail")
    def short_detail(self, obj: WebhookEvent) -> str:
        return Truncator(obj.detail).chars(80)

    @admin.display(description="body")
    def pretty_body(self, obj: WebhookEvent):
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html('<pre class="callback-body">{}</pre>', text)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {"can_replay": self.has_replay_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/replay/",
                self.admin_site.admin_view(self.replay_view),
                name="channels_app_webhookevent_replay",
            ),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        event = WebhookEvent.objects.select_related("channel").filter(pk=unquote(object_id)).first()
        if event is None or not self.has_view_permission(request, event):
            raise Http404("No such callback.")
        if request.method == "POST":
            require_channel_perm(request, "operate_channel")
            outcomes = replay_events(request, [event])
            messages.success(request, f"Replayed: {_outcome_summary(outcomes)}. {event.detail}")
        return redirect(admin_url(event))


@admin.register(ChannelEvent)
class ChannelEventAdmin(ReadOnlyAdmin):
    """The timeline of all channels, or of one (`?channel=<id>`, linked from the channel page)."""

    list_display = ["at", "channel_link", "from_state", "to_state", "source", "short_detail"]
    list_filter = [ChannelIdFilter, "source", ("at", WhenFilter)]
    search_fields = ["to_state"]  # shows the box; get_search_results decides what matches
    search_help_text = "A day (YYYY-MM-DD, UTC)."
    retention_policy = "timeline"
    sortable_by = ["at"]
    fields = ["at", "channel_link", "from_state", "to_state", "source", "detail"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(channel_name=F("channel__name"))

    def get_search_results(self, request, queryset, search_term):
        def term_filter(term: str) -> Q:
            day = search_day(term)
            return Q(at__gte=day[0], at__lt=day[1]) if day else Q(pk__in=[])

        return search_terms(queryset, search_term, term_filter), False

    @admin.display(description="channel")
    def channel_link(self, obj: ChannelEvent):
        return format_html('<a href="{}">{}</a>', channel_url(obj.channel_id), obj.channel_name)

    @admin.display(description="detail")
    def short_detail(self, obj: ChannelEvent) -> str:
        return Truncator(obj.detail).chars(80)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "who", "source", "action", "target", "customer", "ok", "short_detail"]
    # `source` has choices, so Django's filter lists them without a query.
    list_filter = [ResultFilter, "source", AuditActionFilter, TargetTypeFilter, CustomerFilter, ("at", WhenFilter)]
    list_select_related = ["customer"]
    search_fields = ["target_id"]  # shows the box; get_search_results decides what matches
    search_help_text = (
        "A target's Whapi id or number (exactly, e.g. MANTIS-M72HC), a user name (exactly) or a day"
        " (YYYY-MM-DD, UTC); several terms must all match. The detail is not searched: filter by action instead."
    )
    retention_policy = "audit"
    sortable_by = ["at"]
    fields = [
        "at",
        "actor",
        "actor_label",
        "source",
        "customer",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "ok",
        "detail",
    ]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        users = get_user_model().objects

        def term_filter(term: str) -> Q:
            day = search_day(term)
            if day:
                return Q(at__gte=day[0], at__lt=day[1])
            # target_type first, so the (target_type, target_id) index serves it; users by their key.
            targets = Q(target_type__in=list(AUDIT_TARGET_TYPES), target_id__in={term, term.upper()})
            actors = list(users.filter(**{users.model.USERNAME_FIELD: term}).values_list("pk", flat=True))
            return targets | Q(actor_id__in=actors)

        return search_terms(queryset, search_term, term_filter), False

    @admin.display(description="who")
    def who(self, obj: AuditLog) -> str:
        return obj.actor_label or "system"

    @admin.display(description="target")
    def target(self, obj: AuditLog) -> str:
        return f"{obj.target_type}: {obj.target_label}" if obj.target_type else "–"

    @admin.display(description="detail")
    def short_detail(self, obj: AuditLog) -> str:
        return Truncator(obj.detail).chars(80)


@admin.register(CreateAttempt)
class CreateAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "channel_link", "outcome"]
    # A plain field filter runs SELECT DISTINCT, which is fine here: retention keeps this table at
    # about a hundred rows plus the budget's window.
    list_filter = [BudgetWindowFilter, "outcome", ("at", WhenFilter)]
    retention_policy = "create_attempts"
    fields = ["at", "channel", "outcome"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(channel_name=F("channel__name"))

    @admin.display(description="channel")
    def channel_link(self, obj: CreateAttempt):
        if obj.channel_id is None:
            return "–"
        return format_html('<a href="{}">{}</a>', channel_url(obj.channel_id), obj.channel_name)
