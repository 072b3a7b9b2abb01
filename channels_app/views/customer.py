"""Pages of one customer: the dashboard (projects and their channels) and requesting a channel.

Every view starts with `access.get_customer_for_user` (404 for a customer the user is not in, 403
when the role does not allow the request).
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from channels_app import access, actions
from channels_app.actions import ActionError
from channels_app.forms import ChannelCreateForm
from channels_app.models import AuditLog
from channels_app.views.common import page

SESSION_CUSTOMER = "portal_customer"


# ------------------------------------------------------------------------------------------------
# Home and dashboard
# ------------------------------------------------------------------------------------------------
@login_required
@require_GET
def home_page(request: HttpRequest) -> HttpResponse:
    """The dashboard of the customer used last (or the first one); a notice when the user has none."""
    customers = access.customers_for_user(request.user)
    remembered = request.session.get(SESSION_CUSTOMER)
    customer = customers.filter(code=remembered).first() if remembered else None
    customer = customer or customers.first()
    if customer is None:
        return page(request, "portal/no_customer.html", None, {})
    return redirect("channels_app:dashboard", customer.code)


def _dashboard_rows(acc: access.Access) -> tuple[list[dict], int, bool]:
    """Projects with their channels; the number of channels counted against the quota; any in progress."""
    channels = list(access.channels_for(acc.customer))
    groups = []
    for project in access.projects_for(acc.customer):
        rows = [
            {
                "channel": channel,
                "days_left": channel.days_left(),
                "in_progress": channel.changing,
            }
            for channel in channels
            if channel.project_id == project.pk
        ]
        groups.append({"project": project, "rows": rows})
    polling = any(channel.changing for channel in channels)
    return groups, len(channels), polling


@login_required
@require_GET
def dashboard_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code)
    if request.session.get(SESSION_CUSTOMER) != str(acc.customer.code):
        request.session[SESSION_CUSTOMER] = str(acc.customer.code)  # where `home` leads next time
    groups, used, polling = _dashboard_rows(acc)
    return page(
        request,
        "portal/dashboard.html",
        acc,
        {"groups": groups, "used": used, "polling": polling, "quota_left": max(0, acc.customer.channel_quota - used)},
    )


@login_required
@require_GET
def dashboard_status_json(request: HttpRequest, customer_code: UUID) -> JsonResponse:
    """What the dashboard polls while a channel is in progress: the channel tables, re-rendered."""
    acc = access.get_customer_for_user(request, customer_code)
    groups, _, polling = _dashboard_rows(acc)
    html = render_to_string("portal/_dashboard_channels.html", {"groups": groups, "access": acc}, request)
    return JsonResponse({"html": html, "poll": polling}, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------------------------
# Requesting a channel
# ------------------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def channel_request_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, rw=True)
    customer = acc.customer
    projects = access.projects_for(customer)
    form = ChannelCreateForm(request.POST or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        # The form's key, scoped to the user: a key copied from elsewhere finds nothing of another's.
        key = f"web-{request.user.pk}-{form.cleaned_data['request_key']}"
        try:
            channel, recorded = actions.channel_request(
                project=form.cleaned_data["project"],
                name=form.cleaned_data["name"],
                actor=request.user,
                source=AuditLog.Source.CUSTOMER,
                request_key=key,
            )
        except ActionError as exc:
            form.add_error(None, str(exc))
        else:
            if channel.project is None or channel.project.customer_id != customer.pk:
                form.add_error(None, "This form was sent before; reload the page to request another channel.")
            else:
                if recorded:
                    messages.success(request, f"“{channel.name}” is requested. This page follows its setup.")
                return redirect("channels_app:channel", channel.code)
    used = access.channels_for(customer).count()
    return page(
        request,
        "portal/channel/create.html",
        acc,
        {"form": form, "used": used, "full": used >= customer.channel_quota, "has_projects": projects.exists()},
    )
