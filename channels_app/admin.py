"""Staff console (Django admin). Secrets are never listed; the channel page shows the token masked."""

from django.contrib import admin

from channels_app.crypto import mask
from channels_app.models import Channel, ChannelEvent, CreateAttempt, Customer, Membership, Project, WebhookEvent


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "channel_quota", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "whapi_id", "customer", "is_default", "last_synced_at"]
    list_filter = ["is_default"]
    list_select_related = ["customer"]
    search_fields = ["name", "whapi_id", "customer__name"]
    autocomplete_fields = ["customer"]


class ChannelEventInline(admin.TabularInline):
    model = ChannelEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_state", "to_state", "source", "detail"]
    readonly_fields = fields
    ordering = ["-at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "whapi_id",
        "project",
        "state",
        "health_status",
        "connected_number",
        "mode",
        "active_till",
        "last_confirmed_at",
    ]
    list_filter = ["state", "health_status", "mode", "status_stale"]
    list_select_related = ["project", "project__customer"]
    search_fields = ["name", "whapi_id", "connected_number", "project__customer__name"]
    exclude = ["token", "webhook_secret"]
    readonly_fields = ["code", "masked_token", "creation_marker", "state_changed_at", "created_at", "updated_at"]
    inlines = [ChannelEventInline]

    @admin.display(description="token")
    def masked_token(self, obj: Channel) -> str:
        return mask(obj.token) or "–"


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "whapi_channel_id", "event_type", "event_method", "outcome"]
    list_filter = ["outcome", "event_type"]
    search_fields = ["whapi_channel_id"]
    readonly_fields = [field.name for field in WebhookEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CreateAttempt)
class CreateAttemptAdmin(admin.ModelAdmin):
    list_display = ["at", "channel", "outcome"]
    readonly_fields = ["at", "channel", "outcome"]

    def has_add_permission(self, request):
        return False
