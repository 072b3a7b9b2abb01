from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from branding.brand import brand_for


def brand(request: HttpRequest) -> dict:
    """`brand` for every template: the partner's, read only when a template uses it. The pages of a
    customer (views.common.layout_context) and the hand-off page put that customer's brand instead."""
    return {"brand": SimpleLazyObject(brand_for)}
