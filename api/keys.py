"""Making, revoking and checking API keys (the model's docstring says how they are kept)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from api.models import ApiKey
from channels_app.audit import acting_user, audit
from channels_app.models import Channel, Customer

# Every key starts with this, so a leaked one is easy to recognise (secret scanners, logs).
KEY_MARK = "wpk_"
PREFIX_LENGTH = 10
# "Last used" is written at most this often per key: one UPDATE per request would make every read a write.
LAST_USED_EVERY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(
    *, name: str, customer: Customer | None, channel: Channel | None = None, can_write: bool, actor, source: str
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the key itself, which is never stored nor shown again.

    A channel-scoped key belongs to the channel's customer; `customer=None` and no channel is a partner key.
    """
    if channel is not None:
        customer = channel.customer
        if customer is None:
            raise ValueError("A channel key needs a channel that belongs to a customer.")
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    key = f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        name=name.strip()[:100],
        prefix=prefix,
        key_hash=_hash(key),
        customer=customer,
        channel=channel,
        can_write=can_write,
        created_by=acting_user(actor),
    )
    audit(actor=actor, source=source, action="api_key.create", target=customer, detail=str(row))
    return row, key


def api_key_revoke(api_key: ApiKey, *, actor, source: str) -> bool:
    """Revoke a key at once; False when it was revoked already."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        api_key.refresh_from_db(fields=["revoked_at"])
        audit(actor=actor, source=source, action="api_key.revoke", target=api_key.customer, detail=str(api_key))
    return bool(revoked)


def api_key_authenticate(key: str) -> ApiKey | None:
    """The active key this secret is, or None (unknown, malformed, wrong or revoked: callers answer 401)."""
    if not key.startswith(KEY_MARK):
        return None
    prefix, _, rest = key[len(KEY_MARK) :].partition("_")
    if len(prefix) != PREFIX_LENGTH or not rest:
        return None
    row = ApiKey.objects.select_related("customer", "channel").filter(prefix=prefix).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(key)):
        return None
    now = timezone.now()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row
