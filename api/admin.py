"""API keys in the staff console: every key (partner, customer and channel keys; never a key nor its
hash), making one (shown once, on the page that answers the save), renaming, and revoking one or
many. A key's scope and access are fixed when it is made: another scope is another key."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from api.forms import ApiKeyAddForm
from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey
from channels_app.admin.filters import LIST_DEFERRED, CustomerFilter
from channels_app.admin.paging import BoundedListAdmin
from channels_app.audit import audit
from channels_app.models import AuditLog

STAFF = AuditLog.Source.STAFF
SCOPE_LABELS = {"partner": "Partner (any customer)", "customer": "Whole customer", "channel": "One channel"}
# Shown on the change page, never edited there (the name is the only field staff may change).
FIXED_FIELDS = ["prefix_shown", "scope_shown", "customer", "channel", "can_write", "created_at", "created_by"]
USE_FIELDS = ["last_used_at", "revoked_at"]


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return list(SCOPE_LABELS.items())

    def queryset(self, request, queryset):
        if self.value() == "partner":
            return queryset.filter(customer__isnull=True)
        if self.value() == "customer":
            return queryset.filter(customer__isnull=False, channel__isnull=True)
        if self.value() == "channel":
            return queryset.filter(channel__isnull=False)
        return queryset


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", "Active"), ("yes", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(BoundedListAdmin):
    list_display = [
        "name", "prefix_shown", "scope_shown", "customer", "channel", "can_write", "last_used_at", "revoked_at",
        "created_at",
    ]  # fmt: skip
    list_filter = [ScopeFilter, RevokedFilter, "can_write", CustomerFilter]
    list_select_related = ["customer", "channel"]
    search_fields = ["name", "=prefix"]
    search_help_text = "A key's name, or its prefix (the 10 characters after wpk_)."
    autocomplete_fields = ["customer"]
    raw_id_fields = ["channel"]  # there can be tens of thousands: a box and a lookup, not a select
    actions = ["revoke_selected"]
    change_form_template = "admin/api/apikey/change_form.html"

    def get_queryset(self, request):
        # Not the channels' secrets: decrypting them for every row of the list costs time, and is not needed.
        return super().get_queryset(request).defer(*(f"channel__{name}" for name in LIST_DEFERRED))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "customer", "channel", "can_write"] if obj is None else ["name", *FIXED_FIELDS, *USE_FIELDS]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [*FIXED_FIELDS, *USE_FIELDS]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit log names keys by their prefix: revoke instead, and the row stays

    @admin.display(description="key", ordering="prefix")
    def prefix_shown(self, obj: ApiKey) -> str:
        return f"wpk_{obj.prefix}_…"

    @admin.display(description="scope")
    def scope_shown(self, obj: ApiKey) -> str:
        return SCOPE_LABELS[obj.scope]

    # ---- making and renaming ----------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        if change:
            if "name" in form.changed_data:
                # Only the name: a whole-row save would write back a "last used" or a revoke read earlier.
                ApiKey.objects.filter(pk=obj.pk).update(name=obj.name)
                audit(
                    actor=request.user,
                    source=STAFF,
                    action="api_key.rename",
                    target=obj.customer,
                    detail=f"{form.initial.get('name')} → {obj.name} ({obj.prefix}…)",
                )
            return
        row, key = api_key_create(
            name=obj.name,
            customer=obj.customer,
            channel=obj.channel,
            can_write=obj.can_write,
            actor=request.user,
            source=STAFF,
        )
        obj.pk, obj.prefix, obj.customer = row.pk, row.prefix, row.customer
        request.api_key_made = key  # for response_add, this one response only

    def save_related(self, request, form, formsets, change):
        pass  # no relations of its own; everything was saved by api_key_create

    def response_add(self, request, obj, post_url_continue=None):
        """The key, shown once: on the page that answers the save, never in a message or a URL."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "The new API key",
            "original": obj,
            "key": request.api_key_made,
        }
        response = TemplateResponse(request, "admin/api/apikey/made.html", context)
        response["Cache-Control"] = "no-store"
        return response

    # ---- revoking ---------------------------------------------------------------------------------
    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = sum(api_key_revoke(row, actor=request.user, source=STAFF) for row in queryset)
        messages.success(request, f"{revoked} key{'s' if revoked != 1 else ''} revoked; they no longer work.")

    def get_urls(self):
        revoke = path(
            "<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="api_apikey_revoke"
        )
        return [revoke, *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: ask; POST: revoke the key at once."""
        row = self.get_object(request, unquote(object_id))
        if row is None:
            raise Http404("No such key.")
        if not self.has_change_permission(request, row):
            raise PermissionDenied
        change_url = reverse("admin:api_apikey_change", args=[row.pk])
        if request.method == "POST":
            if api_key_revoke(row, actor=request.user, source=STAFF):
                messages.success(request, f"The key {row} no longer works.")
            else:
                messages.info(request, f"The key {row} was revoked already.")
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Revoke the key",
            "original": row,
            "form": None,
            "submit_label": "Revoke the key",
            "danger": True,
        }
        return TemplateResponse(request, "admin/api/apikey/revoke.html", context)
