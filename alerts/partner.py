"""The partner's `days` webhook: Whapi posts it when the partner's day balance falls to `days_limit`
(docs/whapi.md §1.4). The portal sets it up (`manage.py partner_webhook`), receives it on a URL of its
own that only Whapi knows, keeps it in the webhook ledger and tells staff.

The webhook's payload is not documented, so the receiver takes any JSON object, reads a balance from
the first number it finds under a likely name, and quotes the rest to staff.
"""

import hmac
import json
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alerts.models import Event
from alerts.notify import Message, notify
from channels_app.models import WebhookEvent
from channels_app.webhooks import MAX_BODY, body_text, read_body
from channels_app.whapi import partner_client

logger = logging.getLogger(__name__)

DAYS_EVENTS = [{"type": "days", "method": "post"}]
BALANCE_KEYS = ("balance", "days", "left", "remaining", "liveDays")


def partner_webhook_token() -> str:
    """The secret part of the webhook's URL, derived from DJANGO_SECRET_KEY (a new key means setting
    the webhook up again)."""
    return salted_hmac("alerts.partner_webhook", "days", algorithm="sha256").hexdigest()[:40]


def partner_webhook_url() -> str:
    return settings.PORTAL_BASE_URL + reverse("channels_app:partner_webhook", args=[partner_webhook_token()])


def partner_webhook_configure(*, days_limit: int | None = None) -> dict:
    """Point the partner's `days` webhook at this portal (other webhooks of the partner are kept) and
    read the settings back; returns them. Raises WhapiError, and RuntimeError when the read-back
    does not show the webhook."""
    client, name, url = partner_client(), settings.WHAPI_PARTNER_NAME, partner_webhook_url()
    ours = settings.PORTAL_BASE_URL + "/whapi/partner/"
    current = client.get_partner_settings(name)
    hooks = [hook for hook in current.get("webhooks") or [] if not str(hook.get("url", "")).startswith(ours)]
    hooks.append({"url": url, "events": DAYS_EVENTS, "mode": "body"})
    changes: dict = {"webhooks": hooks}
    if days_limit is not None:
        changes["days_limit"] = days_limit
    client.patch_partner_settings(name, changes)
    stored = client.get_partner_settings(name)
    if not any(hook.get("url") == url for hook in stored.get("webhooks") or []):
        raise RuntimeError("Whapi's partner settings do not show the webhook after setting it")
    return stored


def _balance(payload) -> int | None:
    """The first whole number under a likely name, searched through nested objects."""
    if isinstance(payload, dict):
        for key in BALANCE_KEYS:
            value = payload.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
        for value in payload.values():
            if (found := _balance(value)) is not None:
                return found
    return None


@csrf_exempt
@require_POST
def partner_webhook(request: HttpRequest, token: str) -> JsonResponse:
    if not hmac.compare_digest(token.encode(), partner_webhook_token().encode()):
        raise Http404("No such page.")  # the same answer as any unknown URL
    raw = read_body(request)
    if raw is None:
        return JsonResponse({"error": f"Body larger than {MAX_BODY} bytes."}, status=413)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return JsonResponse({"error": "Body is not JSON."}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "Body must be a JSON object."}, status=400)
    ledger = WebhookEvent.objects.create(
        event_type="days",
        event_method="post",
        body=body_text(raw, []),
        outcome=WebhookEvent.Outcome.APPLIED,
        detail="the partner's days webhook: staff told",
    )
    balance = _balance(payload)
    today = timezone.now().date().isoformat()
    notify(
        Event.PARTNER_DAYS_LOW,
        None,
        key=f"partner-days:{today}:{balance if balance is not None else ledger.pk}",
        message=Message(
            subject="Whapi: the partner day balance is low"
            + (f" ({balance} day{pluralize(balance)} left)" if balance is not None else ""),
            text=(
                "Whapi says the partner's day balance has fallen to its limit"
                + (f": {balance} day{pluralize(balance)} left." if balance is not None else ".")
                + " Channels cannot be extended, and new live channels cannot be paid for, once it is used up: "
                "top it up in Whapi's partner panel.\n\nWhat Whapi sent: " + json.dumps(payload)[:1000]
            ),
            fix="The webhook ledger",
        ),
        link=settings.PORTAL_BASE_URL + reverse("admin:channels_app_webhookevent_change", args=[ledger.pk]),
    )
    return JsonResponse({"ok": True})
