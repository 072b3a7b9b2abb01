"""The Content-Security-Policy header on every response.

The policy is fixed and strict: scripts, styles, images, fonts and requests only from the portal
itself (images also as `data:` and `blob:` URIs), no plugins, no framing, forms posting only to the portal. Every
page's script is a file under static/; no page needs an inline script or style. A fixed header is
one line of middleware, so no library is needed for it.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",  # blob: the QR code, fetched by portal.js and shown from memory
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
