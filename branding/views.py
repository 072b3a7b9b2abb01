"""The brand's stylesheet and logos. Their URLs carry the brand's version (`?v=`), so browsers keep
them for a day and fetch them anew when staff change the brand.

The colours come as a stylesheet of CSS custom properties rather than an inline `<style>`, which keeps
the Content-Security-Policy's `style-src 'self'` (portal/csp.py).
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from branding.brand import brand_for
from branding.models import Brand, CustomerBrand, Logo

MAX_AGE = 86400
# A logo is only ever shown in an <img>; opened by itself, an SVG may run nothing and load nothing.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _mix(color: str, other: str, share: float) -> str:
    """`color` with `share` of `other` mixed in (for the accent's hover and soft shades)."""
    channels = [round(int(color[i : i + 2], 16) * (1 - share) + int(other[i : i + 2], 16) * share) for i in (1, 3, 5)]
    return "#" + "".join(f"{channel:02x}" for channel in channels)


@require_GET
def brand_css(request: HttpRequest) -> HttpResponse:
    brand = brand_for()
    css = (
        ":root {\n"
        f"  --primary: {brand.primary_color};\n"
        f"  --accent: {brand.accent_color};\n"
        f"  --accent-dark: {_mix(brand.accent_color, '#000000', 0.25)};\n"
        f"  --accent-soft: {_mix(brand.accent_color, '#ffffff', 0.9)};\n"
        "}\n"
    )
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response


def _logo_response(owner: Logo) -> HttpResponse:
    if not owner.has_logo:
        raise Http404("no logo")
    response = HttpResponse(bytes(owner.logo), content_type=owner.logo_type)
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response["Content-Security-Policy"] = LOGO_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def logo(request: HttpRequest) -> HttpResponse:
    brand = Brand.objects.order_by("pk").first()
    if brand is None:
        raise Http404("no brand")
    return _logo_response(brand)


@require_GET
def customer_logo(request: HttpRequest, code) -> HttpResponse:
    return _logo_response(get_object_or_404(CustomerBrand, code=code))
