"""Hand-off links: a signed, expiring, revocable link that shows one channel's QR / pairing code and
status to whoever holds the phone, without a login. Only the newest link of a channel works; linking
a number, moving a project to another customer or deleting the channel stops its links.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from channels_app.audit import acting_user, audit
from channels_app.models import AuditLog, Channel, HandoffLink, Project

HANDOFF_SALT = "channels_app.handoff"
DEFAULT_HANDOFF_LIFETIME = timedelta(minutes=30)


def handoff_token(link: HandoffLink) -> str:
    """The URL token of a link: its nonce and expiry, signed with SECRET_KEY.

    The same link always gives the same token, so the page can show an active link again. The
    signature covers the expiry, so neither can be altered without the link failing.
    """
    payload = {"n": link.nonce, "e": int(link.expires_at.timestamp())}
    return signing.Signer(salt=HANDOFF_SALT).sign_object(payload)


def _link_for_token(token: str, now: datetime) -> HandoffLink | None:
    """The unrevoked, unexpired, newest link a token names; None when the token is tampered with,
    stale, revoked or superseded by a newer link, or its channel is deleted."""
    try:
        payload = signing.Signer(salt=HANDOFF_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str) or not isinstance(payload.get("e"), int):
        return None
    if payload["e"] <= now.timestamp():
        return None
    link = HandoffLink.objects.select_related("channel").filter(nonce=payload["n"]).first()
    if link is None or not link.is_active(now) or link.channel.state == Channel.State.DELETED:
        return None
    return link


def handoff_link_done(link: HandoffLink) -> bool:
    """Whether the link has done its job: a number is linked, or was linked since the link was made.

    Such a link stops working: whoever has it could otherwise link a phone of theirs after a later
    disconnect. The channel's `connected_at` is the time a number was last linked.
    """
    channel = link.channel
    return channel.state == Channel.State.CONNECTED or (
        channel.connected_at is not None and channel.connected_at >= link.created_at
    )


def get_channel_for_handoff(token: str) -> tuple[Channel, HandoffLink] | None:
    """The channel a hand-off token opens, with its link; None when the link does not work (see
    `_link_for_token`), or has done its job (`handoff_link_done`)."""
    link = _link_for_token(token, timezone.now())
    if link is None or handoff_link_done(link):
        return None
    return link.channel, link


def handoff_done_for_token(token: str) -> bool:
    """Whether a token is of a link that stopped because its number is linked (its page says so)."""
    link = _link_for_token(token, timezone.now())
    return link is not None and handoff_link_done(link)


def active_handoff_link(channel: Channel) -> HandoffLink | None:
    """The channel's working link (the newest, unexpired, unrevoked, not done), if any."""
    now = timezone.now()
    link = channel.handoff_links.filter(revoked_at__isnull=True, expires_at__gt=now).order_by("-created_at").first()
    if link is None or handoff_link_done(link):
        return None
    return link


def handoff_url(link: HandoffLink) -> str:
    """The link to send, under the portal's public URL (staff may reach the admin by another name)."""
    return settings.PORTAL_BASE_URL + reverse("channels_app:handoff", args=[handoff_token(link)])


def handoff_create(
    *,
    channel: Channel,
    lifetime: timedelta = DEFAULT_HANDOFF_LIFETIME,
    actor,
    source: str = AuditLog.Source.CUSTOMER,
) -> HandoffLink:
    """Make a new hand-off link for `channel`, audited as made by `actor` from `source` (the
    customer's channel page, or staff in the admin); every older link of the channel stops working."""
    now = timezone.now()
    with transaction.atomic():
        handoff_links_revoke(channel=channel)
        link = HandoffLink.objects.create(
            channel=channel, created_by=acting_user(actor), created_at=now, expires_at=now + lifetime
        )
        audit(
            actor=actor,
            source=source,
            action="handoff.create",
            target=channel,
            detail=f"link {link.pk}, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return link


def handoff_links_revoke(*, channel: Channel | None = None, project: Project | None = None) -> int:
    """Stop every hand-off link of `channel`, or of every channel in `project`; returns how many
    were still active."""
    now = timezone.now()
    unrevoked = HandoffLink.objects.filter(revoked_at__isnull=True)
    unrevoked = unrevoked.filter(channel=channel) if channel is not None else unrevoked.filter(channel__project=project)
    count = unrevoked.filter(expires_at__gt=now).count()
    unrevoked.update(revoked_at=now)
    return count


def handoff_revoke(*, channel: Channel, actor, source: str = AuditLog.Source.CUSTOMER) -> int:
    """ "Stop the link" (the customer's, or staff's): every hand-off link of `channel` stops, audited;
    returns how many were still active."""
    count = handoff_links_revoke(channel=channel)
    audit(actor=actor, source=source, action="handoff.revoke", target=channel, detail=f"{count} active")
    return count


def handoff_used(link: HandoffLink, *, what: str, ip: str | None) -> None:
    """Record one use of a link (opening the page, asking for a pairing code)."""
    now = timezone.now()
    HandoffLink.objects.filter(pk=link.pk).update(uses=F("uses") + 1, last_used_at=now)
    audit(
        actor=None,
        source=AuditLog.Source.HANDOFF,
        action=f"handoff.{what}",
        target=link.channel,
        detail=f"link {link.pk}" + (f" from {ip}" if ip else ""),
    )
