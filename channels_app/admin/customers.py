"""Customers in the staff console: onboarding, members and their roles, the channel quota, and the
customer's projects and channels at a glance. Every change made here is recorded in the audit log."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from branding.admin import CustomerBrandInline
from branding.models import CustomerBrand
from channels_app.admin.channels import active_till_text
from channels_app.audit import audit
from channels_app.models import AuditLog, Channel, Customer, Membership, Project

STAFF = AuditLog.Source.STAFF
CHANNELS_SHOWN = 50


def count_of(queryset, group_by: str):
    """A correlated COUNT subquery (one query for the whole list, whatever its length)."""
    counted = queryset.order_by().values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def channels_in_use(customer_path: str):
    """How many channels count against the quota (`Channel.objects.in_use`), per row of the list."""
    channels = Channel.objects.in_use().filter(**{customer_path: OuterRef("pk")})
    return count_of(channels, customer_path)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name = "member"
    verbose_name_plural = "members (users who sign in to the customer portal)"


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "channels_used", "channel_quota", "member_count", "project_count", "created_at"]
    search_fields = ["name"]
    fields = ["name", "channel_quota", "code", "created_at"]
    readonly_fields = ["code", "created_at"]
    inlines = [MembershipInline, CustomerBrandInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                channels_used_count=channels_in_use("project__customer"),
                member_total=count_of(Membership.objects.filter(customer=OuterRef("pk")), "customer"),
                project_total=count_of(Project.objects.filter(customer=OuterRef("pk")), "customer"),
            )
        )

    @admin.display(description="channels", ordering="channels_used_count")
    def channels_used(self, obj: Customer) -> int:
        return obj.channels_used_count

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: Customer) -> int:
        return obj.member_total

    @admin.display(description="projects", ordering="project_total")
    def project_count(self, obj: Customer) -> int:
        return obj.project_total

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, unquote(object_id))
        context = {}
        if customer is not None:
            channels = (
                Channel.objects.filter(project__customer=customer)
                .select_related("project")
                .only(
                    "name",
                    "whapi_id",
                    "state",
                    "health_status",
                    "connected_number",
                    "active_till",
                    "project__name",
                    "requested_at",
                )
            )
            context = {
                "customer_projects": Project.objects.filter(customer=customer).annotate(
                    channels_used_count=channels_in_use("project")
                ),
                # Deleted channels stay listed (their history matters to staff) but do not count.
                "customer_channels": [(channel, *active_till_text(channel)) for channel in channels[:CHANNELS_SHOWN]],
                "channels_shown": CHANNELS_SHOWN,
                "channels_total": channels.count(),
                "channels_in_use": Channel.objects.in_use().filter(project__customer=customer).count(),
            }
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    # ---- audit ------------------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            audit(
                actor=request.user,
                source=STAFF,
                action="customer.create",
                target=obj,
                detail=f"quota {obj.channel_quota}",
            )
            return
        for field, action in (("name", "customer.rename"), ("channel_quota", "customer.quota")):
            if field in form.changed_data:
                audit(
                    actor=request.user,
                    source=STAFF,
                    action=action,
                    target=obj,
                    detail=f"{form.initial.get(field)} → {form.cleaned_data.get(field)}",
                )

    def save_formset(self, request, form, formset, change):
        if formset.model is CustomerBrand:
            changed = [f for f in formset.forms if f.has_changed()] or formset.deleted_forms
            super().save_formset(request, form, formset, change)
            if changed:
                audit(actor=request.user, source=STAFF, action="customer.brand", target=form.instance, detail="")
            return None
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        old_roles = {f.instance.pk: f.initial.get("role") for f in formset.initial_forms}
        memberships = formset.save(commit=False)
        customer = form.instance
        for membership in formset.deleted_objects:
            detail = f"{membership.user} ({membership.role})"
            membership.delete()
            audit(actor=request.user, source=STAFF, action="membership.remove", target=customer, detail=detail)
        for membership in memberships:
            added = membership.pk is None
            membership.save()
            if added:
                action, detail = "membership.add", f"{membership.user} as {membership.role}"
            else:
                action, detail = (
                    "membership.role",
                    f"{membership.user}: {old_roles.get(membership.pk)} → {membership.role}",
                )
            audit(actor=request.user, source=STAFF, action=action, target=customer, detail=detail)
        formset.save_m2m()
        return None

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            self._audit_delete(request, customer)
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request, customer: Customer) -> None:
        members = customer.memberships.count()
        projects = customer.projects.count()
        audit(
            actor=request.user,
            source=STAFF,
            action="customer.delete",
            target=customer,
            detail=f"{members} memberships removed, {projects} projects left unassigned",
        )
