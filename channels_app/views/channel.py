"""Customer pages of one channel: the live pipeline, connecting a phone (QR or pairing code), the
hand-off link, API access, the customer's own webhook, rename, disconnect, restart and delete.

Every view starts with `access.get_channel_for_user` (404 for another customer's channel, 403 for a
viewer writing). Whapi is only called through `channels_app.actions`, whose ActionError messages are
fit to show; a refusal leaves the channel as it was.
"""

from datetime import timedelta
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_app import access, actions, handoff
from channels_app.actions import ActionError
from channels_app.forms import HandoffForm, PairingCodeForm, RenameForm, WebhookForm
from channels_app.models import AuditLog, Channel
from channels_app.views.channel_status import (
    can_connect,
    can_restart,
    channel_status_for,
    qr_response,
    status_payload,
)
from channels_app.views.common import page, point_to_form_error

CUSTOMER = AuditLog.Source.CUSTOMER


# ------------------------------------------------------------------------------------------------
# The channel page
# ------------------------------------------------------------------------------------------------
def _parts_context(request: HttpRequest, channel: Channel, acc: access.Access) -> dict:
    """What the parts of the page that depend on the channel's state need (the page, and every poll)."""
    link = handoff.active_handoff_link(channel) if acc.can_write else None
    return {
        "channel": channel,
        "status": channel_status_for(channel, may_connect=acc.can_write, may_disconnect=acc.can_write),
        "access": acc,
        "handoff_form": HandoffForm(),
        "handoff_link": link,
        "can_restart": can_restart(channel),
        "handoff_url": (
            request.build_absolute_uri(reverse("channels_app:handoff", args=[handoff.handoff_token(link)]))
            if link
            else ""
        ),
    }


def _render(request: HttpRequest, channel: Channel, acc: access.Access, **context) -> HttpResponse:
    defaults = {
        **_parts_context(request, channel, acc),
        "rename_form": RenameForm(initial={"name": channel.name}),
        "webhook_form": WebhookForm.for_channel(channel),
        "pairing_form": PairingCodeForm(),
        "event_labels": dict(WebhookForm.base_fields["events"].choices),
    }
    response = page(request, "portal/channel/detail.html", acc, {**defaults, **context})
    # The page may hold a pairing code or the revealed token: never keep it in a cache.
    response["Cache-Control"] = "no-store"
    return response


# The parts of the channel page that depend on the channel's state (element id → template): the poll
# sends them, and the page shows them anew when the state changes, so the actions it offers always
# match the state. The parts with actions are only on the page of someone who may take them.
PARTS = {"channel-meta": "portal/channel/_meta.html", "api-access": "portal/channel/_api.html"}
WRITER_PARTS = {
    "handoff": "portal/channel/_handoff.html",
    "disconnect": "portal/channel/_disconnect.html",
    "manage": "portal/channel/_manage.html",
}


@login_required
@require_GET
def channel_page(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code)
    return _render(request, channel, acc)


@login_required
@require_GET
def channel_status_json(request: HttpRequest, channel_code: UUID) -> JsonResponse:
    channel, acc = access.get_channel_for_user(request, channel_code)
    payload = status_payload(request, channel, may_connect=acc.can_write, may_disconnect=acc.can_write)
    context = _parts_context(request, channel, acc)
    parts = {**PARTS, **WRITER_PARTS} if acc.can_write else PARTS
    payload["parts"] = {part: render_to_string(template, context, request) for part, template in parts.items()}
    return JsonResponse(payload, headers={"Cache-Control": "no-store"})


@login_required
@require_GET
def channel_qr_png(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, _acc = access.get_channel_for_user(request, channel_code, rw=True)
    return qr_response(channel)


@login_required
@require_POST
def channel_pairing_code_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    if not can_connect(channel):
        messages.info(request, _("This channel cannot be linked right now."))
        return redirect("channels_app:channel", channel.code)
    form = PairingCodeForm(request.POST)
    code = ""
    if form.is_valid():
        try:
            code = actions.channel_pairing_code(
                channel, phone=form.cleaned_data["phone"], actor=request.user, source=CUSTOMER
            )
        except ActionError as exc:
            form.add_error("phone", str(exc))
    if form.errors:
        point_to_form_error(request, form, section=_("Link with a pairing code"))
    return _render(request, channel, acc, pairing_form=form, pairing_code=code)


@login_required
@require_POST
def channel_reveal_token_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    try:
        token = actions.channel_reveal_token(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
        return redirect("channels_app:channel", channel.code)
    return _render(request, channel, acc, revealed_token=token)


@login_required
@require_POST
def channel_webhook_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        point_to_form_error(request, form, section=_("Your webhook"))
        return _render(request, channel, acc, webhook_form=form)
    url = form.cleaned_data["url"]
    try:
        applied = actions.channel_set_customer_webhook(
            channel, url=url, events=form.event_list(), actor=request.user, source=CUSTOMER
        )
    except ActionError as exc:
        # Saved, but Whapi did not take it yet (the portal retries): say so plainly.
        messages.warning(request, str(exc))
    else:
        if not url:
            messages.success(request, _("Your webhook was removed."))
        elif applied:
            messages.success(request, _("Your webhook is set and Whapi confirmed it."))
        else:
            messages.success(request, _("Your webhook is saved; it is applied as soon as the channel is set up."))
    return redirect("channels_app:channel", channel.code)


@login_required
@require_POST
def channel_rename_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            actions.channel_rename(channel, name=form.cleaned_data["name"], actor=request.user, source=CUSTOMER)
        except ActionError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, _("The channel is now called “%(name)s”.") % {"name": channel.name})
            return redirect("channels_app:channel", channel.code)
    point_to_form_error(request, form, section=_("Channel settings"))
    return _render(request, channel, acc, rename_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def channel_disconnect_page(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    if request.method == "GET":
        return page(request, "portal/channel/disconnect.html", acc, {"channel": channel})
    try:
        actions.channel_logout(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("The number was logged out. Scan the QR code again to connect a phone."),
            extra_tags="about-state",  # about the channel's progress: the page drops it once a phone is linked
        )
    return redirect("channels_app:channel", channel.code)


@login_required
@require_POST
def channel_restart_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    """Restart a channel Whapi reports in error (the remedy its error names); audited by the action."""
    channel, _acc = access.get_channel_for_user(request, channel_code, rw=True)
    if not can_restart(channel):
        messages.error(request, _("Only a channel in error can be restarted from here."))
        return redirect("channels_app:channel", channel.code)
    try:
        actions.channel_restart(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Whapi is restarting the channel. Its status below follows as it comes back."))
    return redirect("channels_app:channel", channel.code)


@login_required
@require_http_methods(["GET", "POST"])
def channel_delete_page(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    """Delete a channel (owners only), after a confirmation that says what is lost."""
    channel, acc = access.get_channel_for_user(request, channel_code, owner=True)
    if request.method == "GET":
        in_use = access.channels_for(acc.customer).count()
        return page(request, "portal/channel/delete.html", acc, {"channel": channel, "in_use": in_use})
    try:
        actions.channel_delete(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
        return redirect("channels_app:channel", channel.code)
    messages.success(request, _("“%(name)s” was deleted.") % {"name": channel.name})
    return redirect("channels_app:dashboard", acc.customer.code)


@login_required
@require_POST
def handoff_create_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    if channel.state == Channel.State.CONNECTED:
        # A link stops working once a number is linked (handoff.handoff_link_done): making one is moot.
        messages.info(request, _("The number is connected: a hand-off link is needed only to link a phone."))
        return redirect(reverse("channels_app:channel", args=[channel.code]) + "#handoff")
    form = HandoffForm(request.POST)
    if not form.is_valid():
        point_to_form_error(request, form, section=_("Hand-off link"))
        return _render(request, channel, acc, handoff_form=form)
    replaced = handoff.active_handoff_link(channel) is not None
    handoff.handoff_create(
        channel=channel, lifetime=timedelta(minutes=form.cleaned_data["minutes"]), actor=request.user
    )
    messages.success(
        request,
        _("A new hand-off link is ready below. The previous link no longer works.")
        if replaced
        else _("A new hand-off link is ready below."),
    )
    return redirect(reverse("channels_app:channel", args=[channel.code]) + "#handoff")


@login_required
@require_POST
def handoff_revoke_post(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, _acc = access.get_channel_for_user(request, channel_code, rw=True)
    count = handoff.handoff_revoke(channel=channel, actor=request.user)
    messages.success(
        request, _("The hand-off link no longer works.") if count else _("There was no active hand-off link.")
    )
    return redirect(reverse("channels_app:channel", args=[channel.code]) + "#handoff")
