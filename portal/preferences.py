"""A signed-in user's profile choices (time zone and language, `UserProfile`) as the pages use them.

The profile's row is read once per session and both choices kept in it (the session is read on every
request anyway), so a page or a poll costs no query for them; the profile page writes them there when
they change. Another browser signed in before a change keeps what it had until its next sign-in.
The staff console keeps neither: it stays English and in UTC.
"""

import functools

from django.http import HttpRequest
from django.urls import reverse

from channels_app.models import UserProfile

# The session's copy of the profile: [user id, zone name or "", language code or ""].
SESSION_KEY = "portal_profile_choices"


@functools.cache
def _staff_console_prefix() -> str:
    return reverse("admin:index")  # the same for the process's life: computed once, not per request


def in_staff_console(request: HttpRequest) -> bool:
    """Whether the request is for the staff console (/admin/), which stays English and in UTC."""
    return request.path_info.startswith(_staff_console_prefix())


def remember_profile_choices(request: HttpRequest, *, time_zone: str, language: str) -> None:
    """Keep the profile's choices ("" for the browser's) in the session, for the next requests."""
    request.session[SESSION_KEY] = [request.user.pk, time_zone, language]


def profile_choices(request: HttpRequest) -> tuple[str, str]:
    """The signed-in user's (time zone, language) as their profile has them, "" each when not chosen
    (or nobody is signed in); unchecked: callers check them against what they support."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "", ""
    kept = request.session.get(SESSION_KEY)
    if not (isinstance(kept, list) and len(kept) == 3 and kept[0] == user.pk):
        zone, language = UserProfile.objects.filter(user=user).values_list("time_zone", "language").first() or ("", "")
        remember_profile_choices(request, time_zone=zone, language=language)
        kept = [user.pk, zone, language]
    return kept[1], kept[2]
