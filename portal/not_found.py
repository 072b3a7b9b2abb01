"""The portal's own 404 page also with DJANGO_DEBUG on (`make run`).

With DEBUG on, Django answers a missing page with its technical 404 page (the URL patterns tried,
the settings' names) instead of `handler404`. Customers trying the portal locally would see it for
every mistyped address or channel of another customer, so this middleware answers with
`handler404` (the portal's page) in both cases: a view that raised Http404, and an address that no
URL pattern matched. With DEBUG off, Django calls `handler404` itself and this does nothing.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import get_resolver


def _not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return get_resolver().resolve_error_handler(404)(request, exception)


class NotFoundPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No URL pattern matched (a view that answered 404 itself has its resolver_match): the
        # response is Django's 404 page.
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            return _not_found(request, Http404())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return _not_found(request, exception)
        return None
