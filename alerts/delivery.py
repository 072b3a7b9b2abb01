"""Sending the queued notifications, on the worker: email through Django's mail (EMAIL_URL), chat
services through apprise. A send that fails is tried again later, at most SEND_ATTEMPTS times in all,
then recorded as failed with the reason; nothing here blocks a status write or a webhook answer.

Claiming is one short transaction (SKIP LOCKED, the attempt time pushed on by CLAIM), so two workers
never send one notification at once; the sending happens after the commit. A worker that dies
mid-send leaves the claim to run out and the notification is tried again.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts.models import HANDOFF_PLACEHOLDER, Notification
from alerts.notify import channel_link
from branding.brand import brand_for
from channels_app import handoff
from portal.locale import recipient_language

logger = logging.getLogger(__name__)

SEND_ATTEMPTS = 3
# Pauses after the 1st and 2nd failed attempt.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))
CLAIM = timedelta(minutes=2)
BATCH = 20

Status = Notification.Status


class SendFailed(Exception):
    """The message was not accepted; the text says why, with no address or token in it."""


def _send_chat(url: str, subject: str, body: str) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise SendFailed("the chat URL is not one apprise can send to")
    # apprise's plugins bound every request (4 s to connect and to read by default) and report a
    # refusal as False; their log lines can hold the URL, so they are not passed on (see LOGGING).
    if not notifier.notify(title=subject, body=body):
        raise SendFailed("the chat service did not accept the message")


def _with_handoff_link(notification: Notification) -> str:
    """The body with its hand-off link as a URL; the channel page when the link stopped meanwhile."""
    if HANDOFF_PLACEHOLDER not in notification.body:
        return notification.body
    link = notification.handoff_link
    if link is not None and link.is_active():
        with translation.override(recipient_language(notification.recipient.user if notification.recipient else None)):
            until = _("works until %(when)s UTC") % {"when": f"{link.expires_at:%Y-%m-%d %H:%M}"}
        url = f"{handoff.handoff_url(link)} ({until})"
    elif notification.channel is not None:
        url = channel_link(notification.channel, staff=False)
    else:
        url = settings.PORTAL_BASE_URL
    return notification.body.replace(HANDOFF_PLACEHOLDER, url)


def send(notification: Notification) -> None:
    """Send one notification; raises SendFailed (or what the mail backend raises) when it did not go."""
    recipient = notification.recipient
    if recipient is None or not recipient.active:
        raise SendFailed("the recipient was removed or switched off")
    # Under the brand of the recipient's customer (its own name, or the partner's; staff: the partner's).
    brand = brand_for(recipient.customer)
    body = _with_handoff_link(notification) + render_to_string("portal/email/_signature.txt", {"brand": brand})
    if recipient.chat_url:
        _send_chat(recipient.chat_url, notification.subject, body)
    elif recipient.email_address:
        # EMAIL_TIMEOUT bounds it
        send_mail(notification.subject, body, brand.from_email, [recipient.email_address])
    else:
        raise SendFailed("the member has no email address")


def _claim(limit: int) -> list[Notification]:
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")[:limit]
        )
        Notification.objects.filter(pk__in=[n.pk for n in due]).update(next_attempt_at=now + CLAIM)
    return due


def notifications_send_due(limit: int = BATCH) -> int:
    """Try up to `limit` due notifications; returns how many were tried (sent or not)."""
    tried = 0
    for notification in _claim(limit):
        tried += 1
        notification = Notification.objects.select_related("recipient__user", "handoff_link", "channel").get(
            pk=notification.pk
        )
        attempts = notification.attempts + 1
        try:
            send(notification)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, SendFailed) else f"{type(exc).__name__} while sending"
            logger.warning(
                "notification %s (%s) not sent, attempt %d: %s", notification.pk, notification.event, attempts, reason
            )
            done = attempts >= SEND_ATTEMPTS
            Notification.objects.filter(pk=notification.pk).update(
                attempts=attempts,
                last_error=reason,
                status=Status.FAILED if done else Status.PENDING,
                next_attempt_at=None if done else timezone.now() + RETRY_DELAYS[attempts - 1],
            )
            continue
        Notification.objects.filter(pk=notification.pk).update(
            attempts=attempts, status=Status.SENT, sent_at=timezone.now(), next_attempt_at=None, last_error=""
        )
    return tried
