"""The hand-off page: one channel's QR code / pairing code and live status, without a login.

The link (`/connect/<token>/`) sets the token in a short-lived cookie and redirects to `/connect/`,
so the token appears in one request line only, not in every poll of the page (access logs).

Whoever holds the phone gets a link (made on the channel page); `handoff.get_channel_for_handoff`
decides whether it still works. A tampered, stale, revoked or superseded link gets the same
"this link has expired" page (410), so the answer tells a guesser nothing; a link that stopped because
its number is linked says so instead (only a genuine link can tell). Every use is counted on the link
and written to the audit log.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from branding.brand import brand_for
from channels_app import actions, handoff
from channels_app.actions import ActionError
from channels_app.forms import PairingCodeForm
from channels_app.models import AuditLog, Channel, HandoffLink
from channels_app.throttle import client_ip
from channels_app.views.channel_status import can_connect, channel_status_for, qr_response, status_payload
from channels_app.views.common import no_store, point_to_form_error

COOKIE = "portal_handoff"


# The pages show a QR code that links a phone: no cache keeps them (no_store). Django's Referrer-Policy
# "same-origin" keeps URLs from other sites; "no-referrer" would make browsers send `Origin: null` and
# fail the CSRF check.


def _expired(request: HttpRequest, token: str) -> HttpResponse:
    context = {"connected": handoff.handoff_done_for_token(token)}
    return no_store(render(request, "portal/handoff/expired.html", context, status=410))


def _from_cookie(request: HttpRequest) -> tuple[Channel, HandoffLink] | None:
    return handoff.get_channel_for_handoff(request.COOKIES.get(COOKIE, ""))


def _render(request: HttpRequest, channel: Channel, link: HandoffLink, **context) -> HttpResponse:
    defaults = {
        "channel": channel,
        "link": link,
        "status": channel_status_for(channel, may_connect=True),
        "pairing_form": PairingCodeForm(),
        "status_url": reverse("channels_app:handoff_status"),
        "qr_url": reverse("channels_app:handoff_qr"),
        "pairing_url": reverse("channels_app:handoff_pairing_code"),
        # The link belongs to a channel, so its customer's own name and logo apply.
        "brand": brand_for(channel.customer),
    }
    return no_store(render(request, "portal/handoff/page.html", {**defaults, **context}))


@require_GET
def handoff_open(request: HttpRequest, token: str) -> HttpResponse:
    """The link itself: a valid token goes into a cookie for /connect/ until the link expires."""
    found = handoff.get_channel_for_handoff(token)
    if found is None:
        return _expired(request, token)
    _channel, link = found
    handoff.handoff_used(link, what="open", ip=client_ip(request))
    response = no_store(redirect("channels_app:handoff_page"))
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(1, int((link.expires_at - timezone.now()).total_seconds())),
        path=reverse("channels_app:handoff_page"),
        secure=not settings.DEBUG,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_GET
def handoff_page(request: HttpRequest) -> HttpResponse:
    found = _from_cookie(request)
    if found is None:
        return _expired(request, request.COOKIES.get(COOKIE, ""))
    channel, link = found
    return _render(request, channel, link)


@require_GET
def handoff_status_json(request: HttpRequest) -> HttpResponse:
    found = _from_cookie(request)
    if found is None:
        return no_store(JsonResponse({"expired": True}, status=410))
    channel, _link = found
    return no_store(JsonResponse(status_payload(request, channel, may_connect=True, handoff=True)))


@require_GET
def handoff_qr_png(request: HttpRequest) -> HttpResponse:
    found = _from_cookie(request)
    if found is None:
        return no_store(HttpResponse(_("This link has expired."), status=410, content_type="text/plain; charset=utf-8"))
    channel, _link = found
    return no_store(qr_response(channel))


@require_POST
def handoff_pairing_code_post(request: HttpRequest) -> HttpResponse:
    found = _from_cookie(request)
    if found is None:
        return _expired(request, request.COOKIES.get(COOKIE, ""))
    channel, link = found
    form = PairingCodeForm(request.POST)
    code = ""
    if not can_connect(channel):
        form.add_error(None, _("This channel cannot be linked right now; wait until the page offers a QR code."))
    elif form.is_valid():
        handoff.handoff_used(link, what="pairing_code", ip=client_ip(request))
        try:
            code = actions.channel_pairing_code(
                channel, phone=form.cleaned_data["phone"], actor=None, source=AuditLog.Source.HANDOFF
            )
        except ActionError as exc:
            form.add_error("phone", str(exc))
    if form.errors:
        point_to_form_error(request, form, section=_("Link with a pairing code"))
    return _render(request, channel, link, pairing_form=form, pairing_code=code)
