"""The time zone pages are shown in: the user's choice in their profile, else the browser's (a cookie
static/portal/portal.js sets from Intl.DateTimeFormat().resolvedOptions().timeZone), else UTC.

The profile's choice is read once per session and kept in it (the session is read on every request
anyway), so a page or a poll costs no query for it; the profile page writes it there when it changes.
Another browser signed in before the change keeps the zone it had until its next sign-in.

The staff console stays in UTC (its pages say so next to every time), so the middleware leaves
/admin/ alone. Templates show a time with its zone named through the `when` filter
(channels_app/templatetags/portal_time.py).
"""

import functools
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from channels_app.models import UserProfile

COOKIE = "portal_tz"
# The session's copy of the profile's choice: [user id, zone name or ""].
SESSION_KEY = "portal_time_zone"


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str | None) -> str | None:
    """`name` when it is an IANA time zone this machine knows, else None (a cookie is untrusted)."""
    return name if name and name in _known_zones() else None


def zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(_known_zones())]


@functools.cache
def _staff_console_prefix() -> str:
    return reverse("admin:index")  # the same for the process's life: computed once, not per request


def in_staff_console(request: HttpRequest) -> bool:
    """Whether the request is for the staff console (/admin/), which stays English and in UTC."""
    return request.path_info.startswith(_staff_console_prefix())


def remember_choice(request: HttpRequest, zone: str) -> None:
    """Keep the profile's zone (or "" for the browser's) in the session, for the next requests."""
    request.session[SESSION_KEY] = [request.user.pk, zone]


def _chosen_zone(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    kept = request.session.get(SESSION_KEY)
    if not (isinstance(kept, list) and len(kept) == 2 and kept[0] == user.pk):
        chosen = UserProfile.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""
        remember_choice(request, chosen)
        kept = [user.pk, chosen]
    return known_zone(kept[1])


def zone_for(request: HttpRequest) -> tuple[str, str]:
    """(zone name, where it came from: "profile", "browser" or "default")."""
    chosen = _chosen_zone(request)
    if chosen:
        return chosen, "profile"
    browser = known_zone(request.COOKIES.get(COOKIE))
    if browser:
        return browser, "browser"
    return "UTC", "default"


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if in_staff_console(request):
            return self.get_response(request)
        name, source = zone_for(request)
        # The layout tells portal.js which zone it was drawn in (base.html, <body data-time-zone>).
        request.time_zone, request.time_zone_source = name, source
        timezone.activate(zoneinfo.ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
