"""What the customer pages show about a channel: where it stands (the status fragment, and the JSON
the pages poll for it) and its login QR code. Shared by the channel page, the hand-off page, the
dashboard and the staff console's channel page (which follows a channel live the same way); the
states' labels and meanings come from the model.
"""

import math
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app import actions, background, budget
from channels_app.actions import ActionError
from channels_app.models import Channel

State = Channel.State
# Whapi's QR lives about 20 s (docs/whapi.md §2); used when it does not say.
DEFAULT_QR_SECONDS = 20


def can_connect(channel: Channel, now: datetime | None = None) -> bool:
    """Whether a QR code or pairing code may be asked for (never before the init delay is over)."""
    now = now or timezone.now()
    return (
        channel.state in Channel.CONNECTABLE
        and bool(channel.whapi_id)
        and not (channel.init_until and now < channel.init_until)
    )


def can_restart(channel: Channel) -> bool:
    """Whether the customer's pages offer a restart: a channel in error that exists in Whapi."""
    return channel.state == State.ERROR and bool(channel.whapi_id)


def _problem(channel: Channel) -> str:
    """A plain explanation of why a channel is in ERROR (the details are for staff, in the admin)."""
    if channel.error_source == Channel.ErrorSource.CREATE:
        return _("Whapi could not create this channel. Contact support; they can see why and try again.")
    if channel.error_source == Channel.ErrorSource.CONFIGURE:
        return _("The channel exists, but its setup could not be finished. Contact support if this does not clear up.")
    if channel.error_source == Channel.ErrorSource.HEALTH:
        problem = _("Whapi reports a problem with this channel (%(status)s).") % {
            "status": channel.health_status or "ERROR"
        }
        # With a number linked, the remedy (log it out, link again: `relink`) is said by the template,
        # which knows who may do it; without one there is nothing to log out.
        if channel.connected_number:
            return problem
        return f"{problem} {_('Contact support if it does not clear up.')}"
    return _("Something went wrong with this channel. Contact support if it does not clear up.")


def channel_status(channel: Channel, *, now: datetime | None = None) -> dict:
    """Everything the status fragment shows, computed once for the page and for every poll."""
    now = now or timezone.now()
    steps = Channel.PIPELINE_STEPS
    current = steps.index(channel.state) if channel.state in steps else None
    status = {
        "state": channel.state,
        "label": channel.get_state_display(),
        "meaning": channel.state_meaning,
        "steps": [
            {
                # Connected is the last step: reached means done.
                "label": State(state).label,
                "done": current is not None and (index < current or channel.state == State.CONNECTED),
                "current": index == current,
            }
            for index, state in enumerate(steps)
        ],
        "on_track": current is not None,
        "in_progress": channel.changing,
        "checking": channel.disconnect_checking,
        "connect": can_connect(channel, now),
        "days_left": channel.days_left(now),
        "problem": _problem(channel) if channel.state == State.ERROR else "",
        # Whapi's remedy for a channel in error (docs/whapi.md §2): log the number out, link it again.
        "relink": channel.state == State.ERROR
        and channel.error_source == Channel.ErrorSource.HEALTH
        and bool(channel.connected_number),
    }
    # Whether "Disconnect the number" applies: a number is linked (also in error, where it is the remedy).
    status["disconnect"] = channel.state == State.CONNECTED or bool(channel.connected_number)
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


def channel_status_for(channel: Channel, *, may_connect: bool, may_disconnect: bool = False) -> dict:
    """`channel_status` for a visitor who may (or may not) link a phone, and log its number out."""
    status = channel_status(channel)
    status["connect"] = status["connect"] and may_connect
    status["disconnect"] = status["disconnect"] and may_disconnect
    return status


def status_payload(
    request: HttpRequest, channel: Channel, *, may_connect: bool, may_disconnect: bool = False, handoff: bool = False
) -> dict:
    """The JSON a page polls: the status fragment's HTML, whether to keep polling and to offer a scan."""
    status = channel_status_for(channel, may_connect=may_connect, may_disconnect=may_disconnect)
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
        return _text(_("This channel cannot be linked right now."), 409)
    try:
        qr = actions.channel_qr(channel)
    except ActionError as exc:
        return _text(str(exc), 502)
    if qr is None:
        # Whapi says a number is linked: let a health check bring the page's state up to date.
        background.enqueue_on_commit("channel_health_check", channel.pk)
        return HttpResponse(status=204)
    image = qr.png
    if image is None:
        response = _text(_("The QR code is being prepared; one moment."), 503)
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
