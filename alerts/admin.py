"""Alerts in the staff console: who is told about what (partner staff's recipients and each customer's),
the record of every notification, the renewal rules, and the record of automatic extensions (the
records read-only, newest first)."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone

from alerts.billing import billing_csv, parse_month
from alerts.forms import RecipientFormBase
from alerts.models import Event, Notification, Recipient, Renewal, RenewalRule, chat_url_problem
from alerts.partner import partner_webhook_configure
from alerts.renewals import days_used, upcoming
from channels_app.admin.paging import BoundedListAdmin
from channels_app.audit import audit
from channels_app.models import AuditLog, Customer
from channels_app.whapi import WhapiError

STAFF = AuditLog.Source.STAFF


class RecipientForm(RecipientFormBase):
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)
    chat_url = forms.CharField(
        label="Chat URL",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=Recipient._meta.get_field("chat_url").help_text + " Left empty when editing: kept as it is.",
    )

    class Meta:
        model = Recipient
        fields = ["customer", "name", "user", "email", "chat_url", "events", "active"]

    def clean_chat_url(self) -> str:
        url = self.cleaned_data["chat_url"].strip()
        if url and (problem := chat_url_problem(url)):
            raise forms.ValidationError(problem)
        # A stored URL is never shown again: an empty field on an existing recipient keeps it.
        return url or (self.instance.chat_url if self.instance.pk else "")


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    form = RecipientForm
    change_list_template = "admin/alerts/recipient/change_list.html"

    def get_urls(self):
        setup = path(
            "partner-webhook/",
            self.admin_site.admin_view(self.partner_webhook_view),
            name="alerts_partner_webhook_setup",
        )
        return [setup, *super().get_urls()]

    def partner_webhook_view(self, request: HttpRequest) -> HttpResponse:
        """POST: point Whapi's partner `days` webhook at this portal (as `manage.py partner_webhook`)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("alerts.change_recipient"):
            raise PermissionDenied
        try:
            stored = partner_webhook_configure()
        except (WhapiError, RuntimeError) as exc:
            audit(actor=request.user, source=STAFF, action="partner.days_webhook", ok=False, detail=str(exc))
            messages.error(request, f"The days webhook was not set: {exc}")
        else:
            audit(actor=request.user, source=STAFF, action="partner.days_webhook", detail="set and read back")
            messages.success(
                request,
                "Whapi's days webhook points at this portal (read back); Whapi posts it when the partner "
                f"balance reaches {stored.get('days_limit', '?')} days.",
            )
        return redirect("admin:alerts_recipient_changelist")

    raw_id_fields = ["user"]
    list_display = ["__str__", "told", "address", "event_list", "active"]
    list_filter = ["active"]
    list_select_related = ["customer"]

    @admin.display(description="Who")
    def told(self, obj: Recipient) -> str:
        return obj.customer.name if obj.customer else "Partner staff"

    @admin.display(description="Events")
    def event_list(self, obj: Recipient) -> str:
        return "; ".join(obj.event_labels)


class RecordAdmin(BoundedListAdmin):
    """A record is evidence: nobody adds, edits or deletes it in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    list_display = ["created_at", "event", "to", "channel", "customer", "status", "attempts", "sent_at"]
    list_filter = ["status", "event"]
    list_select_related = ["channel", "customer"]
    readonly_fields = [
        "event", "key", "to", "recipient", "customer", "channel", "subject", "body",
        "status", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at",
    ]  # fmt: skip


@admin.register(RenewalRule)
class RenewalRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "extend_days", "when_days_left", "monthly_cap_days", "used", "active"]
    list_filter = ["active"]
    list_select_related = ["customer", "project"]
    raw_id_fields = ["project"]

    @admin.display(description="Used this month (days)")
    def used(self, obj: RenewalRule) -> int:
        return days_used(obj.customer_id, timezone.now())


@admin.register(Renewal)
class RenewalAdmin(RecordAdmin):
    """The record of automatic extensions: evidence, read-only; and the monthly billing CSV."""

    change_list_template = "admin/alerts/renewal/change_list.html"

    def get_urls(self):
        billing = path("billing.csv", self.admin_site.admin_view(self.billing_csv_view), name="alerts_billing_csv")
        return [billing, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        this_month = timezone.now().date().replace(day=1)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        months = [(f"{month:%Y-%m}", f"{month:%B %Y}") for month in (this_month, last_month)]
        context = {"billing_months": months, "upcoming": upcoming(), **(extra_context or {})}
        return super().changelist_view(request, context)

    def billing_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The billing CSV of `?month=YYYY-MM` for every customer, or `&customer=<id>`."""
        if not request.user.has_perm("alerts.view_renewal"):
            raise PermissionDenied
        try:
            month = parse_month(request.GET.get("month", ""))
        except ValueError as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain")
        customers = Customer.objects.order_by("name", "pk")
        if request.GET.get("customer"):
            customers = customers.filter(pk=request.GET["customer"]) if request.GET["customer"].isdigit() else []
        response = HttpResponse(billing_csv(customers, month), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="billing-{month:%Y-%m}.csv"'
        return response

    list_display = ["created_at", "channel", "customer", "days", "period_end", "status"]
    list_filter = ["status"]
    list_select_related = ["channel", "customer"]
    readonly_fields = ["rule", "channel", "customer", "period_end", "days", "status", "detail", "created_at"]
