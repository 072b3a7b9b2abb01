"""The login throttle: sign-in attempts are rows in FailedLogin, so every web process sees the same
counts. It slows a guesser without letting anyone lock the real user out:

- failures are counted per username *and* address: 5 in 15 minutes make that address wait for that
  username, while the user signs in from anywhere else;
- and per address, across usernames: 20 in 15 minutes make the address wait (a password sprayer);
- an attempt is recorded before its password is checked, so attempts made at the same moment count
  each other: parallel guesses get no more checks than the limits allow.

Password-reset mails are throttled the same way, per address asked for and per client address; the
page answers the same whether a mail went out or not.
"""

import ipaddress
import math
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from channels_app.models import FailedLogin, PasswordResetRequest

# ------------------------------------------------------------------------------------------------
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
# Per address across usernames; higher than per username, as an office behind one NAT address shares it.
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
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One IPv6 client holds a whole /64: its addresses count as one.
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def login_wait(username: str, ip: str | None, *, besides: int | None = None) -> int:
    """Seconds until `username` may try again from `ip`; 0 when not throttled. The attempt `besides`
    (the one being made) does not count against itself."""
    now = timezone.now()
    limits = [({"username": username.lower(), "ip": ip}, MAX_FAILURES_PER_USERNAME)]
    if ip:
        limits.append(({"ip": ip}, MAX_FAILURES_PER_IP))
    waits = []
    for filters, limit in limits:
        recent = FailedLogin.objects.filter(at__gt=now - FAILURE_WINDOW, **filters).exclude(pk=besides)
        times = list(recent.order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            # The oldest of the last `limit` failures has to leave the window first.
            waits.append((times[-1] + FAILURE_WINDOW - now).total_seconds())
    return max(0, math.ceil(max(waits, default=0)))


def login_attempt_begin(username: str, ip: str | None) -> tuple[int, int | None]:
    """Record a sign-in attempt before its password is checked; returns (0, the attempt's id), or
    (seconds to wait, None) when throttled, the attempt then withdrawn (a refusal is not a failure).

    Recording first is what makes the count atomic: of attempts made at once, each one counts the
    others that were recorded before it looked.
    """
    attempt = FailedLogin.objects.create(username=username.lower()[:150], ip=ip)
    wait = login_wait(username, ip, besides=attempt.pk)
    if wait:
        FailedLogin.objects.filter(pk=attempt.pk).delete()
        return wait, None
    return 0, attempt.pk


def login_attempt_failed() -> None:
    """The attempt's password (or code) was wrong: its row stays, as a failure. Rows older than the
    window count for nothing and are dropped, so the table stays small."""
    FailedLogin.objects.filter(at__lt=timezone.now() - FAILURE_WINDOW).delete()


def login_attempt_succeeded(username: str, ip: str | None) -> None:
    """The user signed in: forget the failures of this username from this address (and this attempt)."""
    FailedLogin.objects.filter(username=username.lower(), ip=ip).delete()


def login_attempt_withdraw(attempt_id: int) -> None:
    """The attempt ended for another reason than a wrong password: it counts for nothing."""
    FailedLogin.objects.filter(pk=attempt_id).delete()


def throttle_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed attempts; try again in %(minutes)d minute.",
        "Too many failed attempts; try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


RESET_WINDOW = timedelta(hours=1)
MAX_RESETS_PER_EMAIL = 3
MAX_RESETS_PER_IP = 10


def password_reset_allowed(email: str, ip: str | None) -> bool:
    """Whether a reset mail may go to `email` now, asked from `ip`; the request is recorded first (so
    requests at the same moment count each other) and withdrawn when refused."""
    now = timezone.now()
    PasswordResetRequest.objects.filter(at__lt=now - RESET_WINDOW).delete()
    request = PasswordResetRequest.objects.create(email=email.lower()[:254], ip=ip)
    recent = PasswordResetRequest.objects.filter(at__gt=now - RESET_WINDOW).exclude(pk=request.pk)
    allowed = recent.filter(email=request.email).count() < MAX_RESETS_PER_EMAIL and (
        ip is None or recent.filter(ip=ip).count() < MAX_RESETS_PER_IP
    )
    if not allowed:
        request.delete()
    return allowed
