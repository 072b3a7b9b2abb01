"""Customer pages of one channel: the live pipeline, connecting a phone (QR or pairing code), the
hand-off link, API access, the customer's own webhook, rename and disconnect.

Every view starts with `access.get_channel_for_user` (404 for another customer's channel, 403 for a
viewer writing). Whapi is only called through `channels_app.actions`, whose ActionError messages are
fit to show; a refusal leaves the channel as it was.
"""

import math
from datetime import datetime, timedelta
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_app import access, actions, budget, jobs
from channels_app.actions import ActionError
from channels_app.forms import HandoffForm, PairingCodeForm, RenameForm, WebhookForm
from channels_app.models import AuditLog, Channel
from channels_app.views import page

State = Channel.State
CUSTOMER = AuditLog.Source.CUSTOMER

PIPELINE = (
    (State.QUEUED, "Queued"),
    (State.CREATING, "Creating"),
    (State.INITIALIZING, "Initializing"),
    (State.CONFIGURING, "Configuring"),
    (State.WAITING_SCAN, "Waiting for scan"),
    (State.CONNECTED, "Connected"),
)
SETTING_UP = (State.QUEUED, State.CREATING, State.INITIALIZING, State.CONFIGURING)
# States in which a phone can be linked: the QR and the pairing code are offered.
AWAITING_SCAN = (State.WAITING_SCAN, State.DISCONNECTED)
# Whapi's QR lives about 20 s (whapi-api.md §2 QR); used when it does not say.
DEFAULT_QR_SECONDS = 20


# ------------------------------------------------------------------------------------------------
# What the pages show about a channel's state (shared with the hand-off page and the dashboard)
# ------------------------------------------------------------------------------------------------
def days_left(channel: Channel, now: datetime | None = None) -> int | None:
    """Whole days until the channel stops (rounded up); None when unknown."""
    if channel.active_till is None:
        return None
    seconds = (channel.active_till - (now or timezone.now())).total_seconds()
    return max(0, math.ceil(seconds / 86400))


def in_progress(channel: Channel) -> bool:
    """Whether the channel's state is about to change by itself (pages keep polling)."""
    return channel.state in (*SETTING_UP, State.WAITING_SCAN)


def can_connect(channel: Channel, now: datetime | None = None) -> bool:
    """Whether a QR code or pairing code may be asked for (never before the init delay is over)."""
    now = now or timezone.now()
    return (
        channel.state in AWAITING_SCAN
        and bool(channel.whapi_id)
        and not (channel.init_until and now < channel.init_until)
    )


def _problem(channel: Channel) -> str:
    """A plain explanation of why a channel is in ERROR (the details are for staff, in the admin)."""
    if channel.error_source == Channel.ErrorSource.CREATE:
        return "Whapi could not create this channel. Contact support; they can see why and try again."
    if channel.error_source == Channel.ErrorSource.CONFIGURE:
        return "The channel exists, but its setup could not be finished. Contact support if this does not clear up."
    if channel.error_source == Channel.ErrorSource.HEALTH:
        return (
            f"Whapi reports a problem with this channel ({channel.health_status or 'ERROR'}). "
            "Disconnecting the number and linking it again usually helps."
        )
    return "Something went wrong with this channel. Contact support if it does not clear up."


def channel_status(channel: Channel, *, now: datetime | None = None) -> dict:
    """Everything the status fragment shows, computed once for the page and for every poll."""
    now = now or timezone.now()
    states = [state for state, _ in PIPELINE]
    current = states.index(channel.state) if channel.state in states else None
    status = {
        "state": channel.state,
        "label": channel.get_state_display(),
        "steps": [
            {
                # Connected is the last step: reached means done.
                "label": label,
                "done": current is not None and (index < current or channel.state == State.CONNECTED),
                "current": index == current,
            }
            for index, (_, label) in enumerate(PIPELINE)
        ],
        "on_track": current is not None,
        "in_progress": in_progress(channel),
        "connect": can_connect(channel, now),
        "days_left": days_left(channel, now),
        "problem": _problem(channel) if channel.state == State.ERROR else "",
    }
    if channel.state == State.QUEUED:
        position = budget.queue_position(channel) or 1
        eta = budget.queue_eta(position)
        if channel.next_attempt_at and channel.next_attempt_at > eta:
            eta = channel.next_attempt_at  # waiting to retry after Whapi could not be reached
        status.update(position=position, eta=eta, eta_seconds=max(0, int((eta - now).total_seconds())))
        status["retrying"] = bool(channel.create_attempts)
    if channel.state == State.INITIALIZING and channel.init_until:
        start = channel.whapi_created_at or channel.state_changed_at
        end = channel.init_until
        total = max(1.0, (end - start).total_seconds())
        elapsed = min(total, max(0.0, (now - start).total_seconds()))
        status["init"] = {
            "start_ms": int(start.timestamp() * 1000),
            "end_ms": int(end.timestamp() * 1000),
            "now_ms": int(now.timestamp() * 1000),
            "percent": int(elapsed * 100 / total),
            "seconds_left": max(0, math.ceil((end - now).total_seconds())),
        }
    return status


def channel_status_for(channel: Channel, *, may_connect: bool) -> dict:
    """`channel_status` for a visitor who may (or may not) link a phone."""
    status = channel_status(channel)
    status["connect"] = status["connect"] and may_connect
    return status


def status_payload(request: HttpRequest, channel: Channel, *, may_connect: bool, handoff: bool = False) -> dict:
    """The JSON a page polls: the status fragment's HTML, whether to keep polling and to offer a scan."""
    status = channel_status_for(channel, may_connect=may_connect)
    html = render_to_string(
        "portal/channel/_status.html", {"channel": channel, "status": status, "handoff": handoff}, request
    )
    connect = status["connect"]
    # Keep polling while a scan is awaited (also after a logout): the success must show at once.
    poll = status["in_progress"] or connect
    return {"state": channel.state, "html": html, "poll": poll, "connect": connect}


def qr_response(channel: Channel) -> HttpResponse:
    """The channel's current login QR as a PNG (shared with the hand-off page).

    204 when the number is connected already, 409 when the channel cannot be linked in its state,
    503 (Retry-After) while Whapi prepares the code, 502 with a plain reason when Whapi refuses.
    The `X-QR-Expires-In` header says when to fetch the next one.
    """
    if not can_connect(channel):
        return _text("This channel cannot be linked right now.", 409)
    try:
        qr = actions.channel_qr(channel)
    except ActionError as exc:
        return _text(str(exc), 502)
    if qr is None:
        # Whapi says a number is linked: let a health check bring the page's state up to date.
        jobs.enqueue_on_commit("check_channel_health", channel.pk)
        return HttpResponse(status=204)
    image = qr.png
    if image is None:
        response = _text("The QR code is being prepared; one moment.", 503)
        response["Retry-After"] = "2"
        return response
    response = HttpResponse(image, content_type="image/png")
    response["Cache-Control"] = "no-store"
    response["X-QR-Expires-In"] = str(qr.expire if qr.expire and qr.expire > 0 else DEFAULT_QR_SECONDS)
    return response


def _text(message: str, status: int) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------------
# The channel page
# ------------------------------------------------------------------------------------------------
def _render(request: HttpRequest, channel: Channel, acc: access.Access, **context) -> HttpResponse:
    link = access.active_handoff_link(channel) if acc.can_write else None
    defaults = {
        "channel": channel,
        "status": channel_status_for(channel, may_connect=acc.can_write),
        "rename_form": RenameForm(initial={"name": channel.name}),
        "webhook_form": WebhookForm.for_channel(channel),
        "pairing_form": PairingCodeForm(),
        "handoff_form": HandoffForm(),
        "handoff_link": link,
        "handoff_url": (
            request.build_absolute_uri(reverse("channels_app:handoff", args=[access.handoff_token(link)]))
            if link
            else ""
        ),
        "event_labels": dict(WebhookForm.base_fields["events"].choices),
    }
    response = page(request, "portal/channel/detail.html", acc, {**defaults, **context})
    # The page may hold a pairing code or the revealed token: never keep it in a cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def channel_detail(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code)
    return _render(request, channel, acc)


@login_required
@require_GET
def channel_status_json(request: HttpRequest, channel_code: UUID) -> JsonResponse:
    channel, acc = access.get_channel_for_user(request, channel_code)
    payload = status_payload(request, channel, may_connect=acc.can_write)
    # What else on the page depends on the state (shown anew when the state changes).
    context = {"channel": channel, "status": channel_status(channel), "access": acc}
    payload["parts"] = {
        "channel-meta": render_to_string("portal/channel/_meta.html", context, request),
        "api-access": render_to_string("portal/channel/_api.html", context, request),
    }
    return JsonResponse(payload, headers={"Cache-Control": "no-store"})


@login_required
@require_GET
def channel_qr(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, _ = access.get_channel_for_user(request, channel_code, rw=True)
    return qr_response(channel)


@login_required
@require_POST
def channel_pairing_code(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    if not can_connect(channel):
        messages.info(request, "This channel cannot be linked right now.")
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
    return _render(request, channel, acc, pairing_form=form, pairing_code=code)


@login_required
@require_POST
def channel_reveal_token(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    try:
        token = actions.channel_reveal_token(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
        return redirect("channels_app:channel", channel.code)
    return _render(request, channel, acc, revealed_token=token)


@login_required
@require_POST
def channel_webhook(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    form = WebhookForm(request.POST)
    if not form.is_valid():
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
            messages.success(request, "Your webhook was removed.")
        elif applied:
            messages.success(request, "Your webhook is set and Whapi confirmed it.")
        else:
            messages.success(request, "Your webhook is saved; it is applied as soon as the channel is set up.")
    return redirect("channels_app:channel", channel.code)


@login_required
@require_POST
def channel_rename(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            actions.channel_rename(channel, name=form.cleaned_data["name"], actor=request.user, source=CUSTOMER)
        except ActionError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"The channel is now called “{channel.name}”.")
            return redirect("channels_app:channel", channel.code)
    return _render(request, channel, acc, rename_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def channel_disconnect(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    if request.method == "GET":
        return page(request, "portal/channel/disconnect.html", acc, {"channel": channel})
    try:
        actions.channel_logout(channel, actor=request.user, source=CUSTOMER)
    except ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The number was logged out. Scan the QR code again to connect a phone.")
    return redirect("channels_app:channel", channel.code)


@login_required
@require_POST
def handoff_create(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, acc = access.get_channel_for_user(request, channel_code, rw=True)
    form = HandoffForm(request.POST)
    if not form.is_valid():
        return _render(request, channel, acc, handoff_form=form)
    replaced = access.active_handoff_link(channel) is not None
    access.handoff_create(channel=channel, lifetime=timedelta(minutes=form.cleaned_data["minutes"]), actor=request.user)
    messages.success(
        request,
        "A new hand-off link is ready below." + (" The previous link no longer works." if replaced else ""),
    )
    return redirect(reverse("channels_app:channel", args=[channel.code]) + "#handoff")


@login_required
@require_POST
def handoff_revoke(request: HttpRequest, channel_code: UUID) -> HttpResponse:
    channel, _ = access.get_channel_for_user(request, channel_code, rw=True)
    count = access.handoff_revoke(channel=channel, actor=request.user)
    messages.success(request, "The hand-off link no longer works." if count else "There was no active hand-off link.")
    return redirect(reverse("channels_app:channel", args=[channel.code]) + "#handoff")
