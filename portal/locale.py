"""Which language a page speaks, and a recipient's language for what is sent to them.

Django's LocaleMiddleware picks the visitor's language: the language cookie (set by the chooser,
Django's `set_language` view at /i18n/setlang/), else the browser's Accept-Language, else English.
For a signed-in user who chose a language in their profile, `ProfileLanguageMiddleware` (after the
authentication middleware) puts that one first. The language is never in the URL: the addresses
stay the same in every language.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation


def profile_language(user) -> str:
    """The language `user` chose in their profile: a code of settings.LANGUAGES, or "" (none chosen:
    the browser's). Anonymous users and users without a profile have none."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    profile = getattr(user, "profile", None)
    language = getattr(profile, "language", "") or ""
    return language if language in dict(settings.LANGUAGES) else ""


def recipient_language(user) -> str:
    """The language to write to `user` in when they are not there to ask (mails, alerts): their
    profile's, else the site's default (English)."""
    return profile_language(user) or settings.LANGUAGE_CODE


class ProfileLanguageMiddleware:
    """A signed-in user's profile language over the cookie and the browser's (LocaleMiddleware's)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = profile_language(getattr(request, "user", None))
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
