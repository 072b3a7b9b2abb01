"""The time zone pages are shown in: the user's choice in their profile, else the browser's (a cookie
static/portal/portal.js sets from Intl.DateTimeFormat().resolvedOptions().timeZone), else UTC.

The profile's choice comes from the session (portal/preferences.py: read once per session).

The staff console stays in UTC (its pages say so next to every time), so the middleware leaves
/admin/ alone. Templates show a time with its zone named through the `when` filter
(channels_app/templatetags/portal_time.py).
"""

import functools
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.preferences import in_staff_console, profile_choices

COOKIE = "portal_tz"


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str | None) -> str | None:
    """`name` when it is an IANA time zone this machine knows, else None (a cookie is untrusted)."""
    return name if name and name in _known_zones() else None


def zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(_known_zones())]


def zone_for(request: HttpRequest) -> tuple[str, str]:
    """(zone name, where it came from: "profile", "browser" or "default")."""
    chosen = known_zone(profile_choices(request)[0])
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
