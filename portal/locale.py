"""Which language a page speaks, and a recipient's language for what is sent to them.

Django's LocaleMiddleware picks the visitor's language: the language cookie (set by the chooser,
Django's `set_language` view at /i18n/setlang/), else the browser's Accept-Language, else English.
For a signed-in user who chose a language in their profile (`UserProfile.language`; blank: the
browser's), `ProfileLanguageMiddleware` (after the authentication middleware) puts that one first.
As with the time zone (portal/timezones.py), the profile's choice is read once per session and kept
in it, so a page or a poll costs no query for it; the profile page writes it there when it changes.

The language is never in the URL: the addresses stay the same in every language.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from channels_app.models import UserProfile
from portal import timezones

# The session's copy of the profile's choice: [user id, language code or ""].
SESSION_KEY = "portal_language"


def _supported(language: str | None) -> str:
    return language if language and language in dict(settings.LANGUAGES) else ""


def profile_language(user) -> str:
    """The language `user` chose in their profile, or "" (none chosen, no profile, no user). Reads
    `user.profile` (one query, none when it was loaded with select_related)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return _supported(getattr(getattr(user, "profile", None), "language", ""))


def recipient_language(user) -> str:
    """The language to write to `user` in when they are not there to ask (alerts): their profile's,
    else the site's default (English)."""
    return profile_language(user) or settings.LANGUAGE_CODE


def remember_language(request: HttpRequest, language: str) -> None:
    """Keep the profile's language (or "" for the browser's) in the session, for the next requests."""
    request.session[SESSION_KEY] = [request.user.pk, language]


def chosen_language(request: HttpRequest) -> str:
    """The signed-in user's profile language ("" when none), from the session once it is there."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    kept = request.session.get(SESSION_KEY)
    if not (isinstance(kept, list) and len(kept) == 2 and kept[0] == user.pk):
        # The profile's row read once for both choices: the time zone's middleware finds its own kept.
        language, zone = UserProfile.objects.filter(user=user).values_list("language", "time_zone").first() or ("", "")
        remember_language(request, language)
        timezones.remember_choice(request, zone)
        kept = [user.pk, language]
    return _supported(kept[1])


class ProfileLanguageMiddleware:
    """A signed-in user's profile language over the cookie and the browser's (LocaleMiddleware's);
    the staff console stays English whatever the browser says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = settings.LANGUAGE_CODE if timezones.in_staff_console(request) else chosen_language(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
