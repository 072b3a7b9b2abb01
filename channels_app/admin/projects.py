"""Whapi projects in the staff console: mirrored from Whapi ("Sync from Whapi"), created in Whapi
from here, and assigned to customers (audited)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from channels_app import actions
from channels_app.actions import ActionError
from channels_app.admin.common import admin_url, form_page
from channels_app.admin.customers import channels_in_use
from channels_app.admin.filters import CustomerFilter
from channels_app.admin.forms import ProjectAssignForm, ProjectCreateForm
from channels_app.models import AuditLog, Project

STAFF = AuditLog.Source.STAFF


class ProjectAssignedFilter(admin.SimpleListFilter):
    title = "assigned to a customer"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(customer__isnull=self.value() == "no")
        return queryset


@admin.action(description="Assign to a customer…", permissions=["change"])
def assign_selected(modeladmin: "ProjectAdmin", request: HttpRequest, queryset):
    confirmed = "confirm" in request.POST
    form = ProjectAssignForm(request.POST if confirmed else None, admin_site=modeladmin.admin_site)
    if confirmed and form.is_valid():
        customer = form.cleaned_data["customer"]
        projects = list(queryset.select_related("customer"))
        for project in projects:
            actions.project_assign(project, customer=customer, actor=request.user, source=STAFF)
        modeladmin.message_user(
            request,
            f"{len(projects)} project{'s' if len(projects) != 1 else ''} assigned to {customer or 'no customer'}.",
            messages.SUCCESS,
        )
        return None
    count = queryset.count()
    return form_page(
        request,
        modeladmin,
        title=f"Assign {count} project{'s' if count != 1 else ''} to a customer",
        form=form,
        template="admin/channels_app/project/assign_form.html",
        projects=queryset[:20],
        project_count=count,
        action_name=request.POST.get("action", ""),
        selected=request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        select_across=request.POST.get("select_across", "0"),
        submit_label="Assign",
    )


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "whapi_id", "customer_link", "channel_count", "is_default", "last_synced_at"]
    list_filter = [ProjectAssignedFilter, CustomerFilter, "is_default"]
    list_select_related = ["customer"]
    search_fields = ["name", "whapi_id", "customer__name"]
    autocomplete_fields = ["customer"]
    fields = ["name", "whapi_id", "customer", "is_default", "whapi_created_at", "last_synced_at", "created_at"]
    readonly_fields = ["name", "whapi_id", "is_default", "whapi_created_at", "last_synced_at", "created_at"]
    actions = [assign_selected]
    show_facets = admin.ShowFacets.NEVER

    def has_delete_permission(self, request, obj=None):
        return False  # a mirror of Whapi: projects are not deleted from the portal

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(channels_used_count=channels_in_use("project"))

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.path == reverse("admin:autocomplete") and request.GET.get("model_name") == "channel":
            # Choosing the project of a new channel: only projects of a customer.
            queryset = queryset.filter(customer__isnull=False)
        return queryset, may_have_duplicates

    @admin.display(description="customer", ordering="customer__name")
    def customer_link(self, obj: Project):
        if obj.customer_id is None:
            return format_html('<span class="unassigned">{}</span>', "unassigned")
        return format_html('<a href="{}">{}</a>', admin_url(obj.customer), obj.customer.name)

    @admin.display(description="channels", ordering="channels_used_count")
    def channel_count(self, obj: Project):
        url = reverse("admin:channels_app_channel_changelist")
        return format_html('<a href="{}?project={}">{}</a>', url, obj.whapi_id, obj.channels_used_count)

    def changelist_view(self, request, extra_context=None):
        context = {"can_sync": self.has_change_permission(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_urls(self):
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="channels_app_project_sync"),
            *super().get_urls(),
        ]

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """Mirror every Whapi project (all pages of GET /projects)."""
        changelist = reverse("admin:channels_app_project_changelist")
        if request.method != "POST":
            return redirect(changelist)
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        try:
            detail = actions.whapi_sync(actor=request.user, source=STAFF, projects_only=True)
        except ActionError as exc:
            messages.error(request, str(exc))
            return redirect(changelist)
        messages.success(request, f"Projects synced from Whapi: {detail}.")
        return redirect(changelist)

    def add_view(self, request, form_url="", extra_context=None):
        """Create the project in Whapi (PUT /projects), then mirror it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ProjectCreateForm(request.POST or None, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            try:
                project = actions.project_create(
                    name=form.cleaned_data["name"],
                    customer=form.cleaned_data["customer"],
                    actor=request.user,
                    source=STAFF,
                )
            except ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Project “{project.name}” created in Whapi ({project.whapi_id}).")
                return redirect(admin_url(project))
        return form_page(request, self, title="Create a project in Whapi", form=form, submit_label="Create in Whapi")

    def save_model(self, request, obj, form, change):
        # Only the customer can be changed here; the rest mirrors Whapi.
        if change and "customer" in form.changed_data:
            current = Project.objects.select_related("customer").get(pk=obj.pk)
            actions.project_assign(current, customer=obj.customer, actor=request.user, source=STAFF)
