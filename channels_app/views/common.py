"""Probes, the site root, the error pages and the layout helper shared by the customer pages."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from branding.brand import brand_for
from channels_app import access
from channels_app.models import Customer


@require_GET
def livez(request):
    """Liveness probe: the process answers (no database access)."""
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def healthz(request):
    """Readiness probe: answers 200 when the portal can read its database (500 otherwise)."""
    Customer.objects.exists()
    return JsonResponse({"ok": True})


@require_GET
def root(request: HttpRequest) -> HttpResponse:
    """`/`: the customer pages (which send a visitor without a session to the login page)."""
    return redirect("channels_app:home")


# The session key of the customer whose pages the user saw last.
SESSION_CUSTOMER = "portal_customer"


def remembered_customer(request: HttpRequest) -> Customer | None:
    """The customer whose pages the user saw last (or their first one); None when they have none."""
    customers = access.customers_for_user(request.user)
    remembered = request.session.get(SESSION_CUSTOMER)
    customer = customers.filter(code=remembered).first() if remembered else None
    return customer or customers.first()


def layout_context(request: HttpRequest, acc: access.Access | None) -> dict:
    """What the layout needs: the current customer (on a page of no customer, such as the password
    page, the one used last, so that its navigation stays), the role, the customer switcher, and the
    brand (that customer's own name and logo, when it has them)."""
    customer = acc.customer if acc else remembered_customer(request)
    return {
        "access": acc,
        "customer": customer,
        "my_customers": list(access.customers_for_user(request.user)),
        "brand": SimpleLazyObject(lambda: brand_for(customer)),
    }


def page(
    request: HttpRequest, template: str, acc: access.Access | None, context: dict, status: int = 200
) -> HttpResponse:
    """Render a customer page with the layout's context (`layout_context`)."""
    return render(request, template, {**layout_context(request, acc), **context}, status=status)


def no_store(response: HttpResponse) -> HttpResponse:
    """`response`, kept by no cache: for pages and answers that show a secret or a QR code."""
    response["Cache-Control"] = "no-store"
    return response


def point_to_form_error(request: HttpRequest, form: forms.Form, *, section: str) -> None:
    """After a full-page post whose `form` has an error, before rendering the page again.

    A long page would open at its top with the error far below (on a phone, screens below), so the
    first field in error (the first field, for an error of the whole form) gets the focus, which
    scrolls the browser to it, and a message at the top says where the error is.
    """
    messages.error(
        request,
        _("There is an error below, in “%(section)s”: see the message next to the field.") % {"section": section},
    )
    name = next((name for name in form.errors if name in form.fields), next(iter(form.fields), None))
    if name is not None:
        form.fields[name].widget.attrs["autofocus"] = True


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for the whole site: says as little as Django's, in the portal's layout."""
    return render(request, "portal/404.html", {}, status=404)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: the page exists for this customer, but the user's role does not allow the request."""
    return render(request, "portal/403.html", {}, status=403)
