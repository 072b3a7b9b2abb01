"""Probes, the site root, the error pages and the layout helper shared by the customer pages."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

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


def page(
    request: HttpRequest, template: str, acc: access.Access | None, context: dict, status: int = 200
) -> HttpResponse:
    """Render a customer page with what the layout needs: current customer, role, customer switcher."""
    base = {
        "access": acc,
        "customer": acc.customer if acc else None,
        "my_customers": list(access.customers_for_user(request.user)),
    }
    return render(request, template, {**base, **context}, status=status)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for the whole site: says as little as Django's, in the portal's layout."""
    return render(request, "portal/404.html", {}, status=404)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403: the page exists for this customer, but the user's role does not allow the request."""
    return render(request, "portal/403.html", {}, status=403)
