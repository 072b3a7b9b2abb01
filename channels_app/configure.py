"""Configuring a channel's webhooks once Whapi has it: desired settings → apply (`PATCH /settings`)
→ read back and verify → re-verify live channels every SETTINGS_CHECK_EVERY (the checks sweep, via
`settings_check_due_at`) and re-apply on drift.

Whapi replaces the whole webhooks list on PATCH (docs/whapi.md §2), so we always send the complete
settings: our receiver with the channel's secret header, and the customer's own webhook if set.
Failures are retried with backoff (bounded) and left on the channel for staff.
"""

import logging
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts.rules import tell_settings_drift
from channels_app import background
from channels_app.models import WEBHOOK_SECRET_HEADER, Channel, ChannelEvent
from channels_app.status import (
    alone_in_batch,
    channel_health_check,
    channel_lock,
    channel_record_error,
    channel_retry_later,
    channel_update,
    each_alone,
)
from channels_app.whapi import WhapiError, gate_client
from channels_app.whapi.transport import in_lanes

logger = logging.getLogger(__name__)

State = Channel.State
CONFIGURE = Channel.ErrorSource.CONFIGURE

# The events our receiver handles (webhooks.EVENT_HANDLERS); the customer's own webhook gets its own.
OUR_EVENTS = [
    {"type": "channel", "method": "post"},
    {"type": "channel", "method": "patch"},
    {"type": "users", "method": "post"},
    {"type": "users", "method": "delete"},
]
DEFAULT_CUSTOMER_EVENTS = [{"type": "messages", "method": "post"}, {"type": "statuses", "method": "post"}]
# Whapi keeps undelivered callbacks and retries them with this backoff (docs/whapi.md §3).
CALLBACK_BACKOFF_MS = 5000
MAX_CALLBACK_BACKOFF_MS = 900000
MAX_CONFIGURE_ATTEMPTS = 6
# A read-back that failed is tried again this much later.
SETTINGS_RETRY = timedelta(minutes=10)


def settings_check_next(now: datetime) -> datetime:
    """When settings verified at `now` are read back again (SETTINGS_CHECK_EVERY)."""
    return now + timedelta(seconds=settings.SETTINGS_CHECK_EVERY)


def webhook_url() -> str:
    """The receiver's public URL, which Whapi posts every channel's callbacks to."""
    return settings.PORTAL_BASE_URL + reverse("channels_app:whapi_webhook")


def desired_settings(channel: Channel) -> dict:
    """The complete settings we want on the channel (Whapi replaces the whole webhooks list on PATCH)."""
    webhooks = [
        {
            "url": webhook_url(),
            "mode": "body",
            "events": OUR_EVENTS,
            "headers": {WEBHOOK_SECRET_HEADER: channel.webhook_secret},
        }
    ]
    if channel.customer_webhook_url:
        webhooks.append(
            {
                "url": channel.customer_webhook_url,
                "mode": "body",
                "events": channel.customer_webhook_events or DEFAULT_CUSTOMER_EVENTS,
            }
        )
    return {
        "webhooks": webhooks,
        "callback_persist": True,
        "callback_backoff_delay_ms": CALLBACK_BACKOFF_MS,
        "max_callback_backoff_delay_ms": MAX_CALLBACK_BACKOFF_MS,
    }


def settings_mismatches(desired: dict, actual: dict) -> list[str]:
    """What differs between the settings we asked for and what Whapi holds; [] when they agree."""
    problems = []
    for key in ("callback_persist", "callback_backoff_delay_ms", "max_callback_backoff_delay_ms"):
        if actual.get(key) != desired[key]:
            problems.append(f"{key} is {actual.get(key)!r}, expected {desired[key]!r}")
    actual_hooks = [hook for hook in actual.get("webhooks") or [] if isinstance(hook, dict)]
    by_url = {hook.get("url"): hook for hook in actual_hooks}
    for hook in desired["webhooks"]:
        found = by_url.get(hook["url"])
        if found is None:
            problems.append(f"webhook {hook['url']} is missing")
            continue
        if (found.get("mode") or "body") != hook["mode"]:
            problems.append(f"webhook {hook['url']} has mode {found.get('mode')!r}")
        have = {(e.get("type"), e.get("method")) for e in found.get("events") or [] if isinstance(e, dict)}
        missing = {(e["type"], e["method"]) for e in hook["events"]} - have
        if missing:
            problems.append(f"webhook {hook['url']} lacks events {sorted(f'{t}.{m}' for t, m in missing)}")
        headers = found.get("headers") or {}
        for name, value in hook.get("headers", {}).items():
            if headers.get(name) != value:
                problems.append(f"webhook {hook['url']} has a wrong {name} header")  # never show the value
    extra = set(by_url) - {hook["url"] for hook in desired["webhooks"]}
    if extra:
        problems.append(f"unexpected webhooks {sorted(str(url) for url in extra)}")
    return problems


def masked_settings(actual: dict) -> dict:
    """A copy of read-back settings safe to store and show: header values hidden."""
    copy = dict(actual)
    copy["webhooks"] = [
        {**hook, "headers": dict.fromkeys(hook.get("headers") or {}, "••••")} if isinstance(hook, dict) else hook
        for hook in actual.get("webhooks") or []
    ]
    return copy


def channel_configure(channel_id: int, *, source: str = ChannelEvent.Source.SYSTEM) -> bool:
    """Apply the desired settings with `PATCH /settings`, read them back and verify; True when verified.

    Does nothing before `init_until`. Failures are retried with backoff (bounded) and the reason is
    left on the channel; a channel that cannot be configured ends in ERROR.
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None or not channel.whapi_id or channel.state not in Channel.PRESENT_IN_WHAPI:
        return False
    now = timezone.now()
    if channel.init_until and now < channel.init_until:
        background.channel_task_schedule("channel_configure", channel.pk, channel.init_until)
        return False
    if channel.state == State.INITIALIZING:
        channel_update(channel, state=State.CONFIGURING, source=source, detail="init delay over")
    desired = desired_settings(channel)
    sent_secret = channel.webhook_secret
    gate = gate_client(channel.api_url, channel.token)
    try:
        gate.patch_settings(desired)
        actual = gate.get_settings()
    except WhapiError as exc:
        _configure_failed(channel, f"Setting the webhooks failed: {exc}", permanent=exc.status in (401, 403))
        return False
    problems = settings_mismatches(desired, actual)
    if problems:
        _configure_failed(channel, "Whapi did not keep the webhook settings: " + "; ".join(problems))
        return False
    now = timezone.now()
    with transaction.atomic():
        # Decided under the lock from the channel as it is now: a callback may have moved it, or a
        # rotation given it a new secret, while Whapi was asked.
        locked = channel_lock(channel.pk)
        fields = {
            "webhooks_applied_at": now,
            "webhooks_verified_at": now,
            "settings_check_due_at": settings_check_next(now),
            "webhooks_readback": masked_settings(actual),
            "configure_attempts": 0,
            "next_configure_at": None,
            **({"last_error": "", "error_source": ""} if locked.error_source == CONFIGURE else {}),
        }
        if locked.previous_webhook_secret and locked.webhook_secret == sent_secret:
            # Whapi holds the secret sent above (read back): the one before a rotation stops working.
            fields["previous_webhook_secret"] = ""
        channel_update(
            locked,
            fields,
            state=State.WAITING_SCAN if locked.state in (State.CONFIGURING, State.ERROR) else "",
            source=source,
            detail="webhooks set and verified",
        )
    channel_health_check(channel.pk, source=ChannelEvent.Source.SYSTEM)
    return True


def _configure_failed(channel: Channel, reason: str, *, permanent: bool = False) -> None:
    attempts = channel.configure_attempts + 1
    retry_at = channel_retry_later(
        channel,
        reason,
        source=CONFIGURE,
        attempts=attempts,
        limit=attempts if permanent else MAX_CONFIGURE_ATTEMPTS,
        retry_field="next_configure_at",
        configure_attempts=attempts,
    )
    if retry_at is not None:
        background.channel_task_schedule("channel_configure", channel.pk, retry_at)


def channel_settings_verify(channel_id: int, *, session: requests.Session | None = None) -> bool:
    """Re-read a live channel's settings (on `session`, when given) and re-apply them when someone
    changed them; True when they were fine. One channel of `channel_settings_verify_many`."""
    sessions = [session] if session is not None else []
    return channel_settings_verify_many([channel_id], sessions=sessions).get(channel_id, False)


def channel_settings_verify_many(
    channel_ids: list[int], *, sessions: list[requests.Session] | None = None
) -> dict[int, bool]:
    """Re-read each live channel's settings, len(`sessions`) gate calls at a time (transport.in_lanes:
    the calls in threads of their own, every database read and write here), and re-apply them where
    someone changed them; returns for each channel whether they were fine. Plans each next read-back
    (`settings_check_due_at`): none while the channel is not live (a configuration sets it),
    SETTINGS_RETRY after a failed read."""
    try:
        channels = list(Channel.objects.filter(pk__in=channel_ids))
    except Exception:
        if len(channel_ids) == 1:
            raise
        # One row cannot be read (a secret no key decrypts): each channel on its own, so only that one fails.
        logger.exception("reading %d channels to read back together failed; one by one", len(channel_ids))
        return each_alone(
            channel_settings_verify_many, channel_ids, "settings", sessions=sessions[:1] if sessions else None
        )
    verified: dict[int, bool] = {}
    to_read: list[Channel] = []
    for channel in channels:
        verified[channel.pk] = False
        if not channel.whapi_id or channel.state not in Channel.LIVE:
            if channel.settings_check_due_at is not None:  # not live: a configuration plans the next one
                alone_in_batch(len(channel_ids), channel, channel_update, channel, {"settings_check_due_at": None})
        else:
            to_read.append(channel)
    for channel, actual in zip(to_read, in_lanes(to_read, sessions or [], _settings_read), strict=True):
        verified[channel.pk] = bool(alone_in_batch(len(channel_ids), channel, _settings_record, channel, actual))
    return verified


def _settings_record(channel: Channel, actual: dict | Exception) -> bool:
    """What one read-back leaves: a failed read tried again after SETTINGS_RETRY, or the comparison
    (`_settings_compare`); raises what asking raised otherwise."""
    if isinstance(actual, WhapiError):
        channel_record_error(
            channel,
            f"Reading the webhook settings failed: {actual}",
            source=CONFIGURE,
            settings_check_due_at=timezone.now() + SETTINGS_RETRY,
        )
        return False
    if isinstance(actual, Exception):
        raise actual
    return _settings_compare(channel, actual)


def _settings_read(channel: Channel, session: requests.Session | None) -> dict:
    return gate_client(channel.api_url, channel.token, session=session).get_settings()


def _settings_compare(channel: Channel, actual: dict) -> bool:
    """Record a read-back that matches (verified, next read-back planned), or re-apply the settings."""
    problems = settings_mismatches(desired_settings(channel), actual)
    if not problems:
        now = timezone.now()
        channel_update(channel, {"webhooks_verified_at": now, "settings_check_due_at": settings_check_next(now)})
        return True
    ChannelEvent.objects.create(
        channel=channel,
        from_state=channel.state,
        to_state=channel.state,
        source=ChannelEvent.Source.SYSTEM,
        detail="webhook settings drifted, re-applying: " + "; ".join(problems),
    )
    tell_settings_drift(channel, problems)
    channel_configure(channel.pk)
    return False
