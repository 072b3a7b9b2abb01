"""Channels in the staff console: the list one person runs thousands of channels from, adding a
channel through the pipeline, the channel page (where it stands and why, followed live through the
setup and the scan with the customer pages' status, QR code, pairing code and hand-off link) and
the actions on one channel or a selection.

Every change goes through `channels_app.actions` (audited); the page itself edits nothing. Actions
on one channel run at once and report in a message; actions on a selection run as a bulk job.
Secrets are never read for the list (deferred, so not even decrypted).
"""

import json
import re
from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from channels_app import actions, background, budget, bulk_jobs, checks, configure, handoff
from channels_app.actions import ActionError
from channels_app.admin.common import (
    CHANNEL_ACTIONS,
    ChannelAction,
    admin_url,
    budget_context,
    form_page,
    has_channel_perm,
    require_channel_perm,
)
from channels_app.admin.filters import (
    LIST_DEFERRED,
    AssignedFilter,
    ChannelChangeList,
    ChannelCustomerFilter,
    CheckDueFilter,
    ExpiringFilter,
    HealthStatusFilter,
    ProjectFilter,
    StaleFilter,
    WaitingScanFilter,
)
from channels_app.admin.forms import ACTION_FORMS, ChannelRequestForm, new_request_key
from channels_app.admin.paging import BoundedListAdmin
from channels_app.crypto import mask
from channels_app.fleet import EXPIRING_SOON_DAYS, UNSCANNED_HOURS, attention_counts
from channels_app.forms import HandoffForm, PairingCodeForm
from channels_app.models import AuditLog, Channel, Project
from channels_app.views.channel_status import can_connect, channel_status_for, qr_response, status_payload

State = Channel.State
STAFF = AuditLog.Source.STAFF
# The channel page lists this many of the channel's newest timeline events, callbacks and audit
# entries, each with a link to all of them.
TIMELINE_SHOWN = 20
CALLBACKS_SHOWN = 20
AUDIT_SHOWN = 10
PHONE_LIKE = re.compile(r"\+?[0-9][0-9 ()\-]{5,}")
# A request that never reached Whapi (queued, or failed before creation) can still be withdrawn: the
# "delete" action does that for a channel without a Whapi id (actions.channel_delete).
WITHDRAWABLE = (State.QUEUED, State.ERROR)
# The channel page asks for its status this often (portal.js), as the customer's channel page does.
POLL_EVERY_MS = 2000
# The parts of the channel page that follow its state (element id → template `_<name>.html`): the
# status JSON carries them, and the page shows them anew when the state changes.
STATE_PARTS = {"channel-summary": "summary", "channel-actions": "actions", "channel-timeline": "timeline"}


# ------------------------------------------------------------------------------------------------
# Where a channel stands, in words
# ------------------------------------------------------------------------------------------------
def describe_status(channel: Channel) -> str:
    """For staff: what the channel's state means, with where it stands in it."""
    now = timezone.now()
    state, details = channel.state, ""
    if state == State.QUEUED:
        position = budget.queue_position(channel)
        eta = budget.queue_eta(position) if position else now
        if channel.next_attempt_at and channel.next_attempt_at > eta:
            eta = channel.next_attempt_at
        when = "now" if eta - now < timedelta(seconds=30) else f"around {eta:%H:%M} UTC"
        details = f"Number {position} in the queue, expected to be created {when}."
    elif state == State.CREATING:
        details = f"Attempt {channel.create_attempts}."
    elif state == State.INITIALIZING and channel.init_until:
        details = f"The gate API is not used until {channel.init_until:%H:%M:%S} UTC."
    elif state == State.CONFIGURING and channel.next_configure_at:
        details = f"Next attempt at {channel.next_configure_at:%H:%M:%S} UTC."
    elif state in Channel.CONNECTABLE:
        details = "The customer scans the QR code or asks for a pairing code."
    elif state == State.CONNECTED and channel.connected_number:
        since = f" since {channel.connected_at:%Y-%m-%d %H:%M} UTC" if channel.connected_at else ""
        details = f"Number {channel.display_number}{since}."
        if channel.disconnect_reported_at:
            details += (
                f" Whapi reported a logout at {channel.disconnect_reported_at:%H:%M:%S} UTC;"
                " a health check is confirming it."
            )
    elif state == State.ERROR:
        details = channel.last_error or "See the timeline."
    return f"{channel.state_meaning} {details}".strip()


def active_till_text(channel: Channel, now=None) -> tuple[str, str, str]:
    """('2026-12-01', '5 days left', css class) for a channel's active-till (`Channel.days_left`).

    A deleted channel keeps its date but has no days left (they went back to the partner balance)."""
    if channel.active_till is None:
        return "–", "", ""
    date = f"{channel.active_till:%Y-%m-%d}"
    days = channel.days_left(now)
    if days is None:
        return date, "", ""
    if days == 0:
        return date, "ended", "days-ended"
    text = f"{days} day{'s' if days != 1 else ''} left"
    return date, text, "days-soon" if days <= EXPIRING_SOON_DAYS else ""


def overdue_text(late: timedelta | None) -> str:
    """How late the oldest due check is, as staff read it."""
    if late is None:
        return "none due"
    minutes = int(late.total_seconds() // 60)
    return "under a minute" if minutes < 1 else f"{minutes} min"


def checks_context() -> dict:
    """The checks sweep's guarantees as the channel list shows them: how many checks are due and how
    late the oldest of each kind is (checks.checks_coverage), with the intervals they are due at."""
    coverage = checks.checks_coverage()
    return {
        "checks": coverage,
        "health_overdue": overdue_text(coverage.health_overdue),
        "settings_overdue": overdue_text(coverage.settings_overdue),
        "health_every_minutes": round(settings.HEALTH_CHECK_EVERY / 60),
        "settings_every_hours": round(settings.SETTINGS_CHECK_EVERY / 3600, 1),
    }


def offered_actions(channel: Channel) -> dict[str, str]:
    """The actions the channel page offers for `channel` (name → button label), before permissions.

    Whapi can act only on a channel that exists there: none while the request waits or is being
    created, and none once the channel is deleted. A request that never reached Whapi can only be
    withdrawn.
    """
    if channel.present_in_whapi:
        return {name: spec.label for name, spec in CHANNEL_ACTIONS.items()}
    if not channel.whapi_id and channel.state in WITHDRAWABLE:
        return {"delete": "Withdraw the request"}
    return {}


# ------------------------------------------------------------------------------------------------
# Bulk actions on a selection (each one a background job)
# ------------------------------------------------------------------------------------------------
def _bulk_action(name: str):
    spec = CHANNEL_ACTIONS[name]

    def run(modeladmin: "ChannelAdmin", request: HttpRequest, queryset):
        return modeladmin.start_bulk(request, queryset, spec)

    run.__name__ = f"bulk_{name}"
    suffix = "…" if name in ACTION_FORMS else ""
    return admin.action(description=f"{spec.label}{suffix} (background job)", permissions=[spec.permission])(run)


# ------------------------------------------------------------------------------------------------
# The admin
# ------------------------------------------------------------------------------------------------
@admin.register(Channel)
class ChannelAdmin(BoundedListAdmin):
    list_display = [
        "name",
        "customer_and_project",
        "whapi_id",
        "state_badge",
        "health",
        "number",
        "mode_label",
        "active_till_left",
        "last_confirmed",
    ]
    list_display_links = ["name"]
    list_filter = [
        "state",
        HealthStatusFilter,
        "mode",
        ChannelCustomerFilter,
        ProjectFilter,
        ExpiringFilter,
        StaleFilter,
        WaitingScanFilter,
        CheckDueFilter,
        AssignedFilter,
    ]
    list_select_related = ["project__customer"]
    search_fields = ["name", "whapi_id", "connected_number", "project__customer__name"]
    search_help_text = "Name, Whapi id, connected number or customer."
    actions = [_bulk_action(name) for name in CHANNEL_ACTIONS]
    fieldsets = [
        (None, {"fields": ["name", "customer_link", "project", "whapi_id", "state", "mode", "active_till_left"]}),
        (
            "Connection",
            {
                "fields": [
                    "health_status",
                    "stale_status",
                    "last_confirmed_at",
                    "number",
                    "connected_name",
                    "connected_since",
                ]
            },
        ),
        ("Problem", {"fields": ["last_error", "error_source", "last_error_at"]}),
        (
            "In Whapi",
            {
                "classes": ["collapse"],
                "fields": [
                    "whapi_name",
                    "whapi_project_id",
                    "whapi_status",
                    "stopped_in_whapi",
                    "trial_till",
                    "whapi_created_at",
                    "api_url",
                    "server",
                    "masked_token",
                ],
            },
        ),
        (
            "Provisioning",
            {
                "classes": ["collapse"],
                "fields": [
                    "requested_at",
                    "requested_by",
                    "request_key",
                    "creation_marker",
                    "create_attempts",
                    "next_attempt_at",
                    "init_until",
                    "configure_attempts",
                    "next_configure_at",
                    "webhooks_applied_at",
                    "webhooks_verified_at",
                    "customer_webhook_url",
                    "code",
                ],
            },
        ),
    ]
    readonly_fields = [
        "customer_link",
        "active_till_left",
        "stale_status",
        "number",
        "connected_since",
        "stopped_in_whapi",
        "masked_token",
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not obj.last_error:
            return [fieldset for fieldset in self.fieldsets if fieldset[0] != "Problem"]
        return self.fieldsets

    # ---- permissions: the page edits nothing; changes go through the audited actions ------------
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # removing a row would orphan the channel in Whapi: "Delete in Whapi" instead

    def has_operate_channel_permission(self, request):
        return has_channel_perm(request, "operate_channel")

    def has_extend_channel_permission(self, request):
        return has_channel_perm(request, "extend_channel")

    def has_change_mode_permission(self, request):
        return has_channel_perm(request, "change_mode")

    def has_logout_number_permission(self, request):
        return has_channel_perm(request, "logout_number")

    def has_delete_in_whapi_permission(self, request):
        return has_channel_perm(request, "delete_in_whapi")

    # ---- the list ---------------------------------------------------------------------------------
    def get_changelist(self, request, **kwargs):
        return ChannelChangeList

    def get_search_results(self, request, queryset, search_term):
        # "+1 415 555-0123" finds the number stored as digits.
        if PHONE_LIKE.fullmatch(search_term.strip()):
            search_term = "".join(ch for ch in search_term if ch.isdigit())
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="customer", ordering="project__customer__name")
    def customer_link(self, obj: Channel):
        customer = obj.project.customer if obj.project_id else None
        if customer is None:
            return format_html('<span class="unassigned">{}</span>', "unassigned")
        url = reverse("admin:channels_app_channel_changelist")
        return format_html('<a href="{}?customer={}">{}</a>', url, customer.code, customer.name)

    @admin.display(description="customer / project", ordering="project__customer__name")
    def customer_and_project(self, obj: Channel):
        project = format_html('<br><span class="quiet">{}</span>', obj.project.name) if obj.project_id else ""
        return format_html("{}{}", self.customer_link(obj), project)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Channel):
        problem = format_html(' <span class="problem" title="{}">⚠</span>', obj.last_error) if obj.last_error else ""
        return format_html('<span class="state state-{}">{}</span>{}', obj.state, obj.get_state_display(), problem)

    @admin.display(description="health", ordering="health_status")
    def health(self, obj: Channel):
        if obj.status_stale:
            return format_html(
                '{} <span class="stale" title="The last health check failed">stale</span>', obj.health_status or "–"
            )
        return obj.health_status or "–"

    @admin.display(description="number", ordering="connected_number")
    def number(self, obj: Channel) -> str:
        return obj.display_number or "–"

    # The admin draws a boolean as a green ✔ or a red ✖, so "not stale" and "not stopped" would look
    # like errors: these say it in words, and only the condition that needs a look stands out.
    @admin.display(description="status stale")
    def stale_status(self, obj: Channel):
        if obj.status_stale:
            return format_html(
                '<span class="stale-yes">{}</span>',
                "Yes: the last health check failed; the status shown is the last one Whapi confirmed.",
            )
        return "No"

    @admin.display(description="stopped")
    def stopped_in_whapi(self, obj: Channel):
        if obj.stopped:
            return format_html('<span class="stale-yes">{}</span>', "Yes: Whapi reports the channel stopped.")
        return "No"

    @admin.display(description="connected since")
    def connected_since(self, obj: Channel) -> str:
        """When the number was linked, while it is; after a logout only as the last connection."""
        if not obj.connected_at:
            return "–"
        when = f"{obj.connected_at:%Y-%m-%d %H:%M:%S} UTC"
        if obj.state == State.CONNECTED and obj.connected_number:
            return when
        return f"Not connected now (last connected {when})."

    @admin.display(description="mode", ordering="mode")
    def mode_label(self, obj: Channel) -> str:
        if not obj.whapi_id:
            return "–"
        return obj.get_mode_display() if obj.mode else "Live"  # Whapi: an empty mode means live

    @admin.display(description="active till", ordering="active_till")
    def active_till_left(self, obj: Channel):
        date, left, css = active_till_text(obj)
        if not left:
            return date
        return format_html('{}<br><span class="{}">{}</span>', date, css or "quiet", left)

    @admin.display(description="confirmed", ordering="last_confirmed_at")
    def last_confirmed(self, obj: Channel) -> str:
        if not obj.last_confirmed_at:
            return "never"
        return f"{timesince(obj.last_confirmed_at)} ago"

    @admin.display(description="token")
    def masked_token(self, obj: Channel) -> str:
        return mask(obj.token) or "–"

    def changelist_view(self, request, extra_context=None):
        context = {
            **budget_context(),
            **checks_context(),
            "attention": attention_counts(),
            "expiring_soon_days": EXPIRING_SOON_DAYS,
            "unscanned_hours": UNSCANNED_HOURS,
            "can_sync": has_channel_perm(request, "operate_channel"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    # ---- pages of our own --------------------------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("sync/", wrap(self.sync_view), name="channels_app_channel_sync"),
            path("<path:object_id>/do/<str:action>/", wrap(self.action_view), name="channels_app_channel_action"),
            path("<path:object_id>/reveal-token/", wrap(self.reveal_token_view), name="channels_app_channel_token"),
            path("<path:object_id>/status.json", wrap(self.status_view), name="channels_app_channel_status"),
            path("<path:object_id>/qr.png", wrap(self.qr_view), name="channels_app_channel_qr"),
            path("<path:object_id>/connect/", wrap(self.connect_view), name="channels_app_channel_connect"),
            path("<path:object_id>/handoff/", wrap(self.handoff_create_view), name="channels_app_channel_handoff"),
            path(
                "<path:object_id>/handoff/revoke/",
                wrap(self.handoff_revoke_view),
                name="channels_app_channel_handoff_revoke",
            ),
            *super().get_urls(),
        ]

    def _channel_or_404(self, request: HttpRequest, object_id: str) -> Channel:
        channel = self.get_object(request, unquote(object_id))
        if channel is None or not self.has_view_permission(request, channel):
            raise Http404("No such channel.")
        return channel

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ChannelRequestForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    channel, _ = actions.channel_request(
                        project=data["project"],
                        name=data["name"],
                        actor=request.user,
                        source=STAFF,
                        request_key=data["request_key"],
                        enforce_quota=not data["ignore_quota"],
                    )
                except ActionError as exc:
                    form.add_error(None, str(exc))
                else:
                    customer = data["project"].customer
                    messages.success(
                        request, f"Channel “{channel.name}” requested for {customer}. {describe_status(channel)}"
                    )
                    return redirect(admin_url(channel))
        else:
            initial = {"request_key": new_request_key()}
            project_id = request.GET.get("project", "")
            if project_id.isdigit():
                initial["project"] = Project.objects.filter(pk=project_id, customer__isnull=False).first()
            form = ChannelRequestForm(initial=initial, admin_site=self.admin_site)
        return form_page(
            request,
            self,
            title="Add channel",
            form=form,
            template="admin/channels_app/channel/add_form.html",
            submit_label="Request the channel",
            **budget_context(),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        channel = self.get_object(request, unquote(object_id))
        context = self.channel_page_context(request, channel) if channel is not None else {}
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def channel_page_context(self, request: HttpRequest, channel: Channel) -> dict:
        desired = readback = None
        mismatches: list[str] = []
        if channel.whapi_id:
            # Header values (our webhook secret) are masked the way the read-back is stored.
            desired = configure.masked_settings(configure.desired_settings(channel))
            readback = channel.webhooks_readback or None
            if readback:
                mismatches = configure.settings_mismatches(desired, readback)
        audit_ids = [value for value in (channel.whapi_id, str(channel.pk)) if value]
        return {
            **self.state_parts_context(request, channel),
            **self.live_context(request, channel),
            "desired_json": json.dumps(desired, indent=2, sort_keys=True, ensure_ascii=False) if desired else "",
            "readback_json": json.dumps(readback, indent=2, sort_keys=True, ensure_ascii=False) if readback else "",
            "mismatches": mismatches,
            "callbacks": channel.webhook_events.defer("body")[:CALLBACKS_SHOWN],
            "audit_entries": AuditLog.objects.filter(target_type="channel", target_id__in=audit_ids)[:AUDIT_SHOWN],
        }

    def state_parts_context(self, request: HttpRequest, channel: Channel) -> dict:
        """What the parts of the channel page that follow its state show (STATE_PARTS): where it
        stands, the actions it offers, its timeline."""
        offered = offered_actions(channel)
        return {
            "channel": channel,
            "status_text": describe_status(channel),
            # (action, its label here, whether it asks for input or confirmation on a page of its own)
            "channel_actions": [
                (spec, offered[spec.name], spec.name in ACTION_FORMS)
                for spec in CHANNEL_ACTIONS.values()
                if spec.name in offered and has_channel_perm(request, spec.permission)
            ],
            "can_reveal_token": channel.state != State.DELETED
            and bool(channel.token)
            and has_channel_perm(request, "reveal_token"),
            "timeline": channel.timeline.all()[:TIMELINE_SHOWN],
            **(budget_context() if channel.state == State.QUEUED else {}),
        }

    def may_connect(self, request: HttpRequest, channel: Channel) -> bool:
        """Whether this user may link a phone to the channel (QR code, pairing code, hand-off link)."""
        return channel.state != State.DELETED and has_channel_perm(request, "operate_channel")

    def live_context(self, request: HttpRequest, channel: Channel) -> dict:
        """The live part of the channel page, as the customer's channel page has it: the status that
        follows the setup and the scan (polled from `status_view`), the QR code and the pairing-code
        form while the channel can be linked, and the hand-off link."""
        may_connect = self.may_connect(request, channel)
        link = handoff.active_handoff_link(channel) if may_connect else None
        return {
            "status": channel_status_for(channel, may_connect=may_connect),
            "status_url": reverse("admin:channels_app_channel_status", args=[channel.pk]),
            "poll_every": POLL_EVERY_MS,
            "may_connect": may_connect,
            "qr_url": reverse("admin:channels_app_channel_qr", args=[channel.pk]),
            "pairing_url": reverse("admin:channels_app_channel_connect", args=[channel.pk]),
            "pairing_form": PairingCodeForm(),
            "handoff_form": HandoffForm(),
            "handoff_link": link,
            "handoff_url": handoff.handoff_url(link) if link else "",
        }

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """One action on one channel: a form or confirmation first where it needs one, then at once."""
        spec = CHANNEL_ACTIONS.get(action)
        if spec is None:
            raise Http404("No such action.")
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, spec.permission)
        label = offered_actions(channel).get(spec.name)
        if label is None:
            why = "it is deleted" if channel.state == State.DELETED else "it does not exist in Whapi yet"
            messages.error(request, f"{channel}: “{spec.label}” is not possible: {why}.")
            return redirect(admin_url(channel))
        form_class = ACTION_FORMS.get(action)
        if request.method == "POST":
            form = form_class(request.POST) if form_class else None
            if form is None or form.is_valid():
                self.run_one(request, channel, spec, form.params() if form else {})
                return redirect(admin_url(channel))
        elif form_class is None:
            return redirect(admin_url(channel))  # the buttons on the channel page post
        else:
            form = form_class(initial={"mode": channel.mode or Channel.Mode.LIVE} if action == "mode" else None)
        return form_page(
            request,
            self,
            title=f"{label}: {channel}",
            form=form,
            template="admin/channels_app/channel/action_form.html",
            action=spec,
            channels=[channel],
            channel_count=1,
            original=channel,
            submit_label=label,
            danger=spec.name in ("logout", "delete"),
        )

    def run_one(self, request: HttpRequest, channel: Channel, spec: ChannelAction, params: dict) -> bool:
        """Run an action now and say how it went; Whapi's refusals become an error message."""
        label = f"{channel.name} ({channel.whapi_id or 'not in Whapi yet'})"
        try:
            bulk_jobs.channel_run(spec.name, channel, params=params, actor=request.user)
        except ActionError as exc:
            messages.error(request, str(exc))
            return False
        outcome = spec.done
        if spec.name == "extend":
            till = f"; active till {channel.active_till:%Y-%m-%d}" if channel.active_till else ""
            outcome = f"extended by {params['days']} days{till}"
        elif spec.name == "mode":
            outcome = f"mode changed to {channel.get_mode_display()}; Whapi restarts the channel (about 30 s)"
        elif spec.name == "restart":
            outcome = "restart requested; the status here follows when Whapi reports it"
        elif spec.name == "refresh":
            outcome = f"status refreshed: {channel.health_status or 'not known'} ({channel.get_state_display()})"
        elif spec.name == "delete" and not channel.whapi_id:
            outcome = "request withdrawn; nothing was created in Whapi"
        elif spec.name == "delete":
            outcome = "deleted in Whapi; its unused days went back to the partner balance"
        messages.success(request, f"{label}: {outcome}.")
        return True

    def start_bulk(self, request: HttpRequest, queryset, spec: ChannelAction):
        """The changelist action: ask for input or confirmation where needed, then start a bulk job."""
        form_class = ACTION_FORMS.get(spec.name)
        params: dict = {}
        if form_class is not None:
            confirmed = "confirm" in request.POST
            form = form_class(request.POST) if confirmed else form_class()
            if not (confirmed and form.is_valid()):
                count = queryset.count()
                return form_page(
                    request,
                    self,
                    title=f"{spec.label}: {count} channel{'s' if count != 1 else ''}",
                    form=form,
                    template="admin/channels_app/channel/action_form.html",
                    action=spec,
                    channels=queryset.defer(*LIST_DEFERRED).select_related("project__customer")[:20],
                    channel_count=count,
                    bulk=True,
                    action_name=request.POST.get("action", ""),
                    selected=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                    select_across=request.POST.get("select_across", "0"),
                    submit_label=f"{spec.label}: start the job",
                    danger=spec.name in ("logout", "delete"),
                )
            params = form.params()
        ids = list(queryset.values_list("pk", flat=True))
        try:
            job = bulk_jobs.bulk_job_start(action=spec.name, channel_ids=ids, params=params, actor=request.user)
        except ActionError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(
            request,
            f"{spec.label}: started in the background for {len(ids)} channel{'s' if len(ids) != 1 else ''}. "
            "This page shows the outcome for each.",
            messages.SUCCESS,
        )
        return redirect(admin_url(job))

    def reveal_token_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show the API token after an explicit, audited request (never in a list or message)."""
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, "reveal_token")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": channel,
            "channel": channel,
            "title": f"API token of {channel}",
        }
        if request.method == "POST":
            try:
                context["token"] = actions.channel_reveal_token(channel, actor=request.user, source=STAFF)
            except ActionError as exc:
                messages.error(request, str(exc))
                return redirect(admin_url(channel))
        return TemplateResponse(request, "admin/channels_app/channel/reveal_token.html", context)

    # ---- the live channel page: status, QR code, pairing code, hand-off link ------------------------
    def status_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """What the channel page polls: the customer pages' status JSON (`status_payload`), with the
        staff's parts of the page that follow the state (shown anew when it changes)."""
        channel = self._channel_or_404(request, object_id)
        payload = status_payload(request, channel, may_connect=self.may_connect(request, channel))
        context = self.state_parts_context(request, channel)
        payload["parts"] = {
            part: render_to_string(f"admin/channels_app/channel/_{template}.html", context, request)
            for part, template in STATE_PARTS.items()
        }
        return JsonResponse(payload, headers={"Cache-Control": "no-store"})

    def qr_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The channel's login QR code, as the customer's page gets it (`qr_response`)."""
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, "operate_channel")
        return qr_response(channel)

    def connect_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A pairing code for a phone number (audited as the staff member's), shown with the live
        status and the QR code, so that whoever helps the customer sees the link succeed."""
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, "operate_channel")
        if not can_connect(channel):
            state = channel.get_state_display().lower()
            messages.info(request, f"{channel}: the channel cannot be linked right now (it is {state}).")
            return redirect(admin_url(channel))
        form, code = PairingCodeForm(), ""
        if request.method == "POST":
            form = PairingCodeForm(request.POST)
            if form.is_valid():
                try:
                    code = actions.channel_pairing_code(
                        channel, phone=form.cleaned_data["phone"], actor=request.user, source=STAFF
                    )
                except ActionError as exc:
                    form.add_error("phone", str(exc))
        context = {
            **self.admin_site.each_context(request),
            **self.live_context(request, channel),
            "opts": self.model._meta,
            "original": channel,
            "channel": channel,
            "title": f"Connect a phone: {channel}",
            "pairing_form": form,
            "pairing_code": code,
        }
        return TemplateResponse(request, "admin/channels_app/channel/connect.html", context)

    def handoff_create_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Make a hand-off link for staff to send to whoever holds the phone (audited)."""
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, "operate_channel")
        if request.method != "POST":
            return redirect(admin_url(channel))
        form = HandoffForm(request.POST)
        if channel.state == State.DELETED:
            messages.error(request, f"{channel}: the channel is deleted; a hand-off link would not open.")
        elif not form.is_valid():
            messages.error(request, "Choose how long the link works: " + "; ".join(form.errors.get("minutes", [])))
        else:
            replaced = handoff.active_handoff_link(channel) is not None
            handoff.handoff_create(
                channel=channel,
                lifetime=timedelta(minutes=form.cleaned_data["minutes"]),
                actor=request.user,
                source=STAFF,
            )
            messages.success(
                request,
                "A hand-off link is ready below: copy it and send it to whoever holds the phone."
                + (" The previous link no longer works." if replaced else ""),
            )
        return redirect(admin_url(channel) + "#handoff")

    def handoff_revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Stop the channel's hand-off link (audited)."""
        channel = self._channel_or_404(request, object_id)
        require_channel_perm(request, "operate_channel")
        if request.method != "POST":
            return redirect(admin_url(channel))
        count = handoff.handoff_revoke(channel=channel, actor=request.user, source=STAFF)
        messages.success(
            request, "The hand-off link no longer works." if count else "There was no active hand-off link."
        )
        return redirect(admin_url(channel) + "#handoff")

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """Start mirroring Whapi in the background (`tasks.sync_whapi`)."""
        changelist = reverse("admin:channels_app_channel_changelist")
        if request.method != "POST":
            return redirect(changelist)
        require_channel_perm(request, "operate_channel")
        # Thousands of channels take longer than a web request may: the worker does it.
        background.enqueue_on_commit("whapi_sync", request.user.pk)
        messages.success(
            request,
            "The sync with Whapi has started. Its result appears in the audit log in a moment; "
            "imported channels are unassigned: assign their projects to customers.",
        )
        return redirect(changelist)
