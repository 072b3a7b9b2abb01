"""The login throttle: failed sign-ins are rows in FailedLogin, so every web process sees the same
counts. Too many failures for one username, or from one address, make it wait."""

import ipaddress
import math
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from channels_app.models import FailedLogin

# ------------------------------------------------------------------------------------------------
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
# Higher than per username: an office behind one NAT address shares it.
MAX_FAILURES_PER_IP = 20


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or the last X-Forwarded-For hop behind a trusted proxy."""
    if request is None:
        return None
    candidate = request.META.get("REMOTE_ADDR", "")
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The proxy appends the address it saw; earlier entries are whatever the client claimed.
            candidate = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def login_wait(username: str, ip: str | None) -> int:
    """Seconds until `username` (or `ip`) may try again; 0 when not throttled."""
    now = timezone.now()
    limits = [({"username": username.lower()}, MAX_FAILURES_PER_USERNAME)]
    if ip:
        limits.append(({"ip": ip}, MAX_FAILURES_PER_IP))
    waits = []
    for filters, limit in limits:
        recent = FailedLogin.objects.filter(at__gt=now - FAILURE_WINDOW, **filters).order_by("-at")
        times = list(recent.values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            # The oldest of the last `limit` failures has to leave the window first.
            waits.append((times[-1] + FAILURE_WINDOW - now).total_seconds())
    return max(0, math.ceil(max(waits, default=0)))


def failed_login_record(username: str, ip: str | None) -> None:
    FailedLogin.objects.create(username=username.lower()[:150], ip=ip)
    # Rows older than the window count for nothing; drop them so the table stays small.
    FailedLogin.objects.filter(at__lt=timezone.now() - FAILURE_WINDOW).delete()


def throttle_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed attempts; try again in {minutes} minute{'s' if minutes != 1 else ''}."


def failed_logins_clear(username: str) -> None:
    """Forget a username's failures (it signed in)."""
    FailedLogin.objects.filter(username=username.lower()).delete()
