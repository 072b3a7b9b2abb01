"""Events to customers' systems in the staff console: endpoints (their secret never shown), and the
deliveries, read-only, newest first, with their attempts and a "send again" action."""

import uuid

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html

from alerts.admin import RecordAdmin
from channels_app.admin.filters import CustomerFilter, InputFilter
from channels_app.admin.paging import BoundedListAdmin
from channels_app.models import AuditLog
from events import endpoints
from events.models import Attempt, Delivery, Endpoint

STAFF = AuditLog.Source.STAFF


class EndpointFilter(InputFilter):
    """The deliveries of one endpoint, by its public code (the endpoints list links them)."""

    title = "endpoint"
    parameter_name = "endpoint"
    placeholder = "Endpoint's public id"

    def queryset(self, request, queryset):
        value = self.cleaned_value()
        if not value:
            return queryset
        try:
            return queryset.filter(endpoint__code=uuid.UUID(value))
        except ValueError:
            return queryset.none()


@admin.register(Endpoint)
class EndpointAdmin(BoundedListAdmin):
    list_display = [
        "url", "customer", "description", "active", "disabled_until", "consecutive_failures", "created_at", "log",
    ]  # fmt: skip
    list_filter = ["active", CustomerFilter]
    list_select_related = ["customer"]
    search_fields = ["url", "description", "customer__name"]
    # The secret is not a field of any form here (editable=False): staff never see it.
    fields = ["customer", "url", "event_types", "description", "active", "disabled_until", "consecutive_failures"]
    # The URL and types are the customer's choice (the URL rules are checked on their page).
    readonly_fields = ["customer", "url", "event_types", "consecutive_failures"]
    actions = ["switch_on"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # customers register their endpoints (and see the secret once)

    @admin.display(description="deliveries")
    def log(self, obj: Endpoint) -> str:
        url = reverse("admin:events_delivery_changelist") + f"?endpoint={obj.code}"
        return format_html('<a href="{}">Delivery log</a>', url)

    @admin.action(description="Switch on (ending a pause after failures)")
    def switch_on(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        for endpoint in queryset.select_related("customer"):
            endpoints.endpoint_switch(endpoint=endpoint, on=True, actor=request.user, source=STAFF)
        messages.success(request, "Switched on.")


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["at", "status_code", "latency_ms", "succeeded", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "pk"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(RecordAdmin):
    list_display = ["created_at", "event_type", "endpoint", "status", "attempts", "last_status_code", "last_latency_ms"]
    # A time range and an endpoint, then "select all" and "Send again": a range replayed by staff.
    list_filter = ["status", ("created_at", admin.DateFieldListFilter), EndpointFilter]
    list_select_related = ["event", "endpoint"]
    raw_id_fields = ["endpoint"]
    readonly_fields = [
        "event", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code", "last_latency_ms",
        "last_error", "replay_of", "created_at", "delivered_at", "webhook_id", "payload",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["send_again"]

    @admin.display(description="event")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.display(description="webhook-id")
    def webhook_id(self, obj: Delivery) -> str:
        return obj.event.webhook_id

    @admin.display(description="body")
    def payload(self, obj: Delivery) -> dict:
        return obj.event.payload

    @admin.action(description="Send again (same webhook-id)", permissions=["view"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = 0
        for delivery in queryset.select_related("event", "endpoint__customer")[: endpoints.REPLAY_LIMIT]:
            endpoints.delivery_replay(delivery=delivery, actor=request.user, source=STAFF)
            count += 1
        messages.success(request, f"Sent again: {count} deliver{pluralize(count, 'y,ies')}, with their webhook-ids.")
