"""Records in the staff console, read-only: the webhook ledger (with replay through the handlers),
the audit log and the create attempts the budget counts."""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.text import Truncator

from channels_app import webhooks
from channels_app.admin.common import (
    admin_url,
    channel_url,
    has_channel_perm,
    require_channel_perm,
)
from channels_app.admin.filters import CustomerFilter
from channels_app.audit import audit
from channels_app.models import AuditLog, CreateAttempt, WebhookEvent

STAFF = AuditLog.Source.STAFF
MAX_REPLAY = 500


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are evidence: nobody adds, edits or deletes them in the admin."""

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
    list_filter = ["outcome", "event_type", "event_method", ("received_at", WhenFilter)]
    search_fields = ["whapi_channel_id", "channel__name"]
    search_help_text = "Whapi channel id or channel name."
    show_facets = admin.ShowFacets.NEVER
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

    def get_queryset(self, request):
        # The channel's name without loading (and decrypting) the channel row; the body only on its page.
        return super().get_queryset(request).annotate(channel_name=F("channel__name")).defer("body")

    @admin.display(description="channel", ordering="channel__name")
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


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "who", "source", "action", "target", "customer", "ok", "short_detail"]
    list_filter = [ResultFilter, "source", "action", "target_type", CustomerFilter, ("at", WhenFilter)]
    list_select_related = ["customer"]
    search_fields = ["actor_label", "action", "target_id", "target_label", "detail"]
    search_help_text = "Who, action, target (name or Whapi id) or detail."
    show_facets = admin.ShowFacets.NEVER
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

    @admin.display(description="who", ordering="actor_label")
    def who(self, obj: AuditLog) -> str:
        return obj.actor_label or "system"

    @admin.display(description="target", ordering="target_label")
    def target(self, obj: AuditLog) -> str:
        return f"{obj.target_type}: {obj.target_label}" if obj.target_type else "–"

    @admin.display(description="detail")
    def short_detail(self, obj: AuditLog) -> str:
        return Truncator(obj.detail).chars(80)


@admin.register(CreateAttempt)
class CreateAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "channel_link", "outcome"]
    list_filter = ["outcome", ("at", WhenFilter)]
    show_facets = admin.ShowFacets.NEVER
    fields = ["at", "channel", "outcome"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(channel_name=F("channel__name"))

    @admin.display(description="channel")
    def channel_link(self, obj: CreateAttempt):
        if obj.channel_id is None:
            return "–"
        return format_html('<a href="{}">{}</a>', channel_url(obj.channel_id), obj.channel_name)
