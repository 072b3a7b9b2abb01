"""Which language a page speaks, and a recipient's language for what is sent to them.

Django's LocaleMiddleware picks the visitor's language: the language cookie (set by the chooser,
Django's `set_language` view at /i18n/setlang/), else the browser's Accept-Language, else English.
For a signed-in user who chose a language in their profile (`UserProfile.language`; blank: the
browser's), `ProfileLanguageMiddleware` (after the authentication middleware) puts that one first.
As with the time zone, the profile's choice comes from the session (portal/preferences.py: read once
per session).

The language is never in the URL: the addresses stay the same in every language.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from portal.preferences import in_staff_console, profile_choices


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


def chosen_language(request: HttpRequest) -> str:
    """The signed-in user's profile language ("" when none)."""
    return _supported(profile_choices(request)[1])


class ProfileLanguageMiddleware:
    """A signed-in user's profile language over the cookie and the browser's (LocaleMiddleware's);
    the staff console stays English whatever the browser says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = settings.LANGUAGE_CODE if in_staff_console(request) else chosen_language(request)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
