"""Bulk jobs in the staff console: one staff action over many channels, run in the background, with
an outcome per channel and "retry the failed ones"."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path

from channels_app import bulk_jobs
from channels_app.actions import ActionError
from channels_app.admin.common import (
    CHANNEL_ACTIONS,
    admin_url,
    has_channel_perm,
    may_run_any_channel_action,
    require_channel_perm,
)
from channels_app.models import BulkJob, BulkJobItem

Item = BulkJobItem.Status


def describe_job(job: BulkJob) -> str:
    """'Extend (30 days: invoice 42)' — what the job does, in words."""
    spec = CHANNEL_ACTIONS.get(job.action)
    label = spec.label if spec else job.action
    params = job.params or {}
    if job.action == "extend" and params:
        return f"{label} ({params.get('days')} days: {params.get('comment')})"
    if job.action == "mode" and params:
        return f"{label} to {params.get('mode')}"
    return label


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "what",
        "created_by",
        "created_at",
        "status",
        "done_count",
        "failed_count",
        "pending_count",
    ]
    list_display_links = ["number", "what"]
    list_filter = ["status", "action"]
    list_select_related = ["created_by"]
    show_facets = admin.ShowFacets.NEVER
    fields = ["what", "created_by", "created_at", "status", "finished_at", "retry_of"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        # Whoever may run channel actions sees how their jobs went.
        return super().has_view_permission(request, obj) or may_run_any_channel_action(request)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or may_run_any_channel_action(request)

    def has_add_permission(self, request):
        return False  # jobs start from the channel list's actions

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                done=Count("items", filter=Q(items__status=Item.OK)),
                failed=Count("items", filter=Q(items__status=Item.FAILED)),
                pending=Count("items", filter=Q(items__status__in=(Item.PENDING, Item.RUNNING))),
                unknown=Count("items", filter=Q(items__status=Item.UNKNOWN)),
            )
        )

    @admin.display(description="job", ordering="pk")
    def number(self, obj: BulkJob) -> str:
        return f"#{obj.pk}"

    @admin.display(description="action")
    def what(self, obj: BulkJob) -> str:
        return describe_job(obj)

    @admin.display(description="done", ordering="done")
    def done_count(self, obj: BulkJob) -> int:
        return obj.done

    @admin.display(description="failed", ordering="failed")
    def failed_count(self, obj: BulkJob) -> int:
        return obj.failed

    @admin.display(description="pending", ordering="pending")
    def pending_count(self, obj: BulkJob) -> int:
        return obj.pending

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))
        context = {}
        if job is not None:
            spec = CHANNEL_ACTIONS.get(job.action)
            items = (
                job.items.select_related("channel")
                .only("status", "message", "finished_at", "channel__name", "channel__whapi_id", "channel__state")
                .order_by("status", "id")  # failed first, then ok, then pending
            )
            context = {
                "job": job,
                "subtitle": f"Job #{job.pk}: {describe_job(job)}",
                "items": items,
                "can_retry": job.failed > 0
                and job.status == BulkJob.Status.DONE
                and spec is not None
                and has_channel_perm(request, spec.permission),
                "auto_refresh": 3 if job.status != BulkJob.Status.DONE else None,
            }
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def get_urls(self):
        return [
            path(
                "<path:object_id>/retry-failed/",
                self.admin_site.admin_view(self.retry_failed_view),
                name="channels_app_bulkjob_retry",
            ),
            *super().get_urls(),
        ]

    def retry_failed_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = BulkJob.objects.filter(pk=unquote(object_id)).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404("No such job.")
        if request.method != "POST":
            return redirect(admin_url(job))
        spec = CHANNEL_ACTIONS.get(job.action)
        require_channel_perm(request, spec.permission if spec else "operate_channel")
        try:
            retry = bulk_jobs.bulk_job_retry_failed(job, actor=request.user)
        except ActionError as exc:
            messages.error(request, str(exc))
            return redirect(admin_url(job))
        count = retry.items.count()
        messages.success(request, f"Retrying the {count} failed channel{'s' if count != 1 else ''} as job #{retry.pk}.")
        return redirect(admin_url(retry))
