"""Pages of one customer: the dashboard (its channels, a page at a time) and requesting a channel.

Every view starts with `access.get_customer_for_user` (404 for a customer the user is not in, 403
when the role does not allow the request).
"""

import hashlib
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from channels_app import access, actions
from channels_app.actions import ActionError
from channels_app.forms import ChannelCreateForm, DashboardFilterForm
from channels_app.models import AuditLog
from channels_app.views.common import SESSION_CUSTOMER, page, remembered_customer


# ------------------------------------------------------------------------------------------------
# Home and dashboard
# ------------------------------------------------------------------------------------------------
@login_required
@require_GET
def home_page(request: HttpRequest) -> HttpResponse:
    """The dashboard of the customer used last (or the first one); a notice when the user has none."""
    customer = remembered_customer(request)
    if customer is None:
        return page(request, "portal/no_customer.html", None, {})
    return redirect("channels_app:dashboard", customer.code)


# Rows on a page of the dashboard. At most 1.5 times 10: a full page of a large customer is then never
# more than 1.5 times the page of a customer with 10 channels, however long the rows are (the
# dashboard's target: 5,000 channels cost at most 1.5 times 10); search and the filters find the rest.
PAGE_SIZE = 15
# The most channel codes one poll asks about (a page shows PAGE_SIZE); codes beyond are ignored.
POLL_MAX_CODES = 100
# What a row shows (and the order needs): the rest of a channel, its encrypted token and secrets
# above all, is not read.
_ROW_FIELDS = (
    "code",
    "name",
    "state",
    "connected_number",
    "mode",
    "whapi_id",
    "active_till",
    "disconnect_reported_at",
    "requested_at",
    "project__name",
)


def _rows(channels) -> list[dict]:
    """The dashboard's rows, each with its version: a short hash of everything the row shows."""
    rows = []
    for channel in channels:
        row = {"channel": channel, "days_left": channel.days_left(), "in_progress": channel.changing}
        shown = (
            channel.name,
            channel.project.name if channel.project_id else "",
            channel.state,
            row["in_progress"],
            channel.connected_number,
            channel.mode,
            bool(channel.whapi_id),
            row["days_left"],
        )
        row["version"] = hashlib.blake2b(repr(shown).encode(), digest_size=4).hexdigest()
        rows.append(row)
    return rows


def _query(params: dict, **changes) -> str:
    """The query string of the dashboard with these parameters (empty ones left out)."""
    merged = {**params, **changes}
    return urlencode([(key, value) for key, value in merged.items() if value not in ("", None)])


@login_required
@require_GET
def dashboard_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    """One page of the customer's channels (PAGE_SIZE of them), searched and filtered by the query string.

    Its cost does not grow with the customer's channels: an indexed count (two when filtered: the
    quota line counts every channel) and one page of rows, whose encrypted fields are not even read.
    A page number that is not a number or out of range leads (302) to the nearest page that exists.
    """
    acc = access.get_customer_for_user(request, customer_code)
    customer = acc.customer
    if request.session.get(SESSION_CUSTOMER) != str(customer.code):
        request.session[SESSION_CUSTOMER] = str(customer.code)  # where `home` leads next time
    projects = list(access.projects_for(customer))
    form = DashboardFilterForm(request.GET, projects=projects)
    filters = form.filters()
    all_channels = access.channels_for(customer, projects=projects).only(*_ROW_FIELDS)
    channels = all_channels
    if filters["q"]:
        channels = channels.matching(filters["q"])
    if filters["states"]:
        channels = channels.filter(state__in=filters["states"])
    if filters["project"]:
        channels = channels.filter(project=filters["project"])
    filtered = channels is not all_channels
    # What the links of this page keep: the filters as given, when valid.
    params = {key: form.cleaned_data.get(key) or "" for key in ("q", "state", "project") if key in form.fields}

    paginator = Paginator(channels, PAGE_SIZE)
    asked = request.GET.get("page", "1")
    try:
        number = paginator.validate_number(asked)
    except PageNotAnInteger:
        return redirect(_here(request, params))
    except EmptyPage:  # below 1 or past the last page
        number = 1 if int(asked) < 1 else paginator.num_pages
        return redirect(_here(request, params, page=number if number > 1 else ""))
    current = paginator.page(number)

    def page_url(number: int) -> str:
        return _here(request, params, page=number if number > 1 else "")

    rows = _rows(current.object_list)
    used = paginator.count if not filtered else all_channels.count()
    polling = any(row["in_progress"] for row in rows)
    return page(
        request,
        "portal/dashboard.html",
        acc,
        {
            "form": form,
            "projects": projects,
            "several_projects": len(projects) > 1,
            "rows": rows,
            "page_obj": current,
            "paginator": paginator,
            "filtered": filtered,
            "used": used,
            "quota_left": max(0, customer.channel_quota - used),
            "full": used >= customer.channel_quota,
            "polling": polling,
            # The script adds the rows shown: ?c=<code>.<version>&… (dashboard_status_json).
            "poll_url": reverse("channels_app:dashboard_status", args=[customer.code]),
            "first_url": page_url(1),
            "previous_url": page_url(current.previous_page_number()) if current.has_previous() else "",
            "next_url": page_url(current.next_page_number()) if current.has_next() else "",
            "last_url": page_url(paginator.num_pages),
            "clear_url": request.path,
        },
    )


def _here(request: HttpRequest, params: dict, **changes) -> str:
    query = _query(params, **changes)
    return f"{request.path}?{query}" if query else request.path


@login_required
@require_GET
def dashboard_status_json(request: HttpRequest, customer_code: UUID) -> JsonResponse:
    """What the dashboard polls while a channel on it is in progress: the rows on the page that changed.

    `?c=<code>.<version>&c=…` names the rows on the page with the version each shows (at most
    POLL_MAX_CODES; a code that is not a UUID is ignored; without a version the row is sent anyway).
    The answer: `html`, the rows (<tr data-channel>) whose version is no longer the one shown;
    `gone`, the codes that are not (any more) a channel of this customer, deleted or never one;
    `poll`, whether one of the rows is still changing, so that the page asks again. Only the named
    rows are read, through the customer: another customer's channel is only ever "gone".
    """
    acc = access.get_customer_for_user(request, customer_code)
    shown: dict[str, str] = {}
    for value in request.GET.getlist("c")[:POLL_MAX_CODES]:
        code, _dot, version = value.partition(".")
        try:
            shown[str(UUID(code))] = version
        except ValueError:
            continue
    channels = list(access.channels_for(acc.customer).filter(code__in=list(shown)).only(*_ROW_FIELDS)) if shown else []
    rows = _rows(channels)
    changed = [row for row in rows if row["version"] != shown[str(row["channel"].code)]]
    html = ""
    if changed:
        several_projects = access.projects_for(acc.customer).count() > 1  # the page's columns
        context = {"rows": changed, "access": acc, "several_projects": several_projects}
        html = render_to_string("portal/_dashboard_rows.html", context, request).strip()
    found = {str(row["channel"].code) for row in rows}
    return JsonResponse(
        {
            "html": html,
            "gone": [code for code in shown if code not in found],
            "poll": any(row["in_progress"] for row in rows),
        },
        headers={"Cache-Control": "no-store"},
    )


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
                form.add_error(None, _("This form was sent before; reload the page to request another channel."))
            else:
                if recorded:
                    # About the channel's progress: the page drops it once the setup is over.
                    messages.success(
                        request,
                        _("“%(name)s” is requested. This page follows its setup.") % {"name": channel.name},
                        extra_tags="about-state",
                    )
                return redirect("channels_app:channel", channel.code)
    used = access.channels_for(customer).count()
    return page(
        request,
        "portal/channel/create.html",
        acc,
        {"form": form, "used": used, "full": used >= customer.channel_quota, "has_projects": projects.exists()},
    )
