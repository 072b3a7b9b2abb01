"""A customer's events pages: the endpoints their systems get events at (`/app/c/<code>/events/`)
and each endpoint's delivery log (`…/events/<endpoint>/`). Every member reads them; owners register,
rotate secrets, switch off and on, delete and replay. A signing secret is shown once, on the answer
to the post that made it (not stored in the session, not cached)."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from channels_app import access
from channels_app.models import AuditLog
from channels_app.views.common import no_store, page, point_to_form_error
from events import endpoints
from events.forms import EndpointForm, ReplayRangeForm
from events.models import Attempt, Delivery, Endpoint

CUSTOMER = AuditLog.Source.CUSTOMER
# Deliveries one page of the log shows, newest first; older ones page on by id (no count, no offset).
LOG_PAGE = 25


def _events_page(
    request: HttpRequest, acc: access.Access, *, form: EndpointForm | None = None, created: Endpoint | None = None
) -> HttpResponse:
    context = {
        "endpoints": Endpoint.objects.filter(customer=acc.customer).order_by("pk"),
        "form": form or EndpointForm(),
        "created": created,
    }
    return no_store(page(request, "portal/events.html", acc, context))


def _endpoint_for(acc: access.Access, endpoint_code: UUID) -> Endpoint:
    """The endpoint with this code of the customer `acc` is for; 404 for another customer's."""
    return get_object_or_404(Endpoint.objects.select_related("customer"), code=endpoint_code, customer=acc.customer)


def _endpoint_page(
    request: HttpRequest,
    acc: access.Access,
    endpoint: Endpoint,
    *,
    new_secret: str = "",
    replay_form: ReplayRangeForm | None = None,
) -> HttpResponse:
    log = Delivery.objects.filter(endpoint=endpoint).select_related("event", "event__channel").order_by("-pk")
    before = request.GET.get("before", "")
    if before.isdigit():
        log = log.filter(pk__lt=int(before))
    rows = list(
        log.prefetch_related(Prefetch("attempt_log", queryset=Attempt.objects.order_by("at", "pk")))[: LOG_PAGE + 1]
    )
    context = {
        "endpoint": endpoint,
        "log": rows[:LOG_PAGE],
        "older": rows[LOG_PAGE - 1].pk if len(rows) > LOG_PAGE else None,
        "paged": before.isdigit(),
        "new_secret": new_secret,
        "replay_form": replay_form or ReplayRangeForm.last_day(),
        "paused": endpoint.is_paused(),
    }
    return no_store(page(request, "portal/events_endpoint.html", acc, context))


@login_required
@require_GET
def events_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    return _events_page(request, access.get_customer_for_user(request, customer_code))


@login_required
@require_POST
def events_endpoint_add_post(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = EndpointForm(request.POST)
    if not form.is_valid():
        point_to_form_error(request, form, section="Add an endpoint")
        return _events_page(request, acc, form=form)
    try:
        endpoint = endpoints.endpoint_create(
            customer=acc.customer,
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            description=form.cleaned_data["description"],
            actor=request.user,
            source=CUSTOMER,
        )
    except endpoints.EndpointError as exc:
        form.add_error("url", str(exc))
        return _events_page(request, acc, form=form)
    return _events_page(request, acc, created=endpoint)


@login_required
@require_GET
def events_endpoint_page(request: HttpRequest, customer_code: UUID, endpoint_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code)
    return _endpoint_page(request, acc, _endpoint_for(acc, endpoint_code))


@login_required
@require_POST
def events_secret_rotate_post(request: HttpRequest, customer_code: UUID, endpoint_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    endpoint = _endpoint_for(acc, endpoint_code)
    secret = endpoints.endpoint_rotate_secret(endpoint=endpoint, actor=request.user, source=CUSTOMER)
    messages.success(request, _("The endpoint has a new signing secret; the old one no longer signs."))
    return _endpoint_page(request, acc, endpoint, new_secret=secret)


@login_required
@require_POST
def events_endpoint_switch_post(request: HttpRequest, customer_code: UUID, endpoint_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    endpoint = _endpoint_for(acc, endpoint_code)
    on = request.POST.get("on") == "1"
    endpoints.endpoint_switch(endpoint=endpoint, on=on, actor=request.user, source=CUSTOMER)
    if on:
        messages.success(request, _("The endpoint is on: waiting events are sent now."))
    else:
        messages.success(request, _("The endpoint is off: no events are sent to it until it is switched on."))
    return redirect("channels_app:events_endpoint", acc.customer.code, endpoint.code)


@login_required
@require_POST
def events_endpoint_delete_post(request: HttpRequest, customer_code: UUID, endpoint_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    endpoint = _endpoint_for(acc, endpoint_code)
    url = endpoint.url
    endpoints.endpoint_delete(endpoint=endpoint, actor=request.user, source=CUSTOMER)
    messages.success(request, _("%(url)s gets no more events; its delivery log is deleted.") % {"url": url})
    return redirect("channels_app:events", acc.customer.code)


@login_required
@require_POST
def events_replay_post(request: HttpRequest, customer_code: UUID, endpoint_code: UUID, webhook_id: str) -> HttpResponse:
    """Send one event to the endpoint again (its latest delivery's event, by the event's webhook id)."""
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    endpoint = _endpoint_for(acc, endpoint_code)
    delivery = (
        Delivery.objects.filter(endpoint=endpoint, event__webhook_id=webhook_id)
        .select_related("event", "endpoint__customer")
        .order_by("-pk")
        .first()
    )
    if delivery is None:
        raise Http404("No such event.")
    endpoints.delivery_replay(delivery=delivery, actor=request.user, source=CUSTOMER)
    said = _("The event %(webhook_id)s is sent again, with the same webhook-id.")
    messages.success(request, said % {"webhook_id": webhook_id})
    return redirect("channels_app:events_endpoint", acc.customer.code, endpoint.code)


@login_required
@require_POST
def events_replay_range_post(request: HttpRequest, customer_code: UUID, endpoint_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    endpoint = _endpoint_for(acc, endpoint_code)
    form = ReplayRangeForm(request.POST)
    if not form.is_valid():
        point_to_form_error(request, form, section=_("Send again"))
        return _endpoint_page(request, acc, endpoint, replay_form=form)
    count = endpoints.deliveries_replay(
        endpoint=endpoint,
        since=form.cleaned_data["since"],
        until=form.cleaned_data["until"],
        failed_only=form.cleaned_data["failed_only"],
        actor=request.user,
        source=CUSTOMER,
    )
    if count >= endpoints.REPLAY_LIMIT:
        said = _("%(count)d events are sent again, the most one replay sends: replay the rest after.")
        messages.warning(request, said % {"count": count})
    else:
        said = ngettext(
            "%(count)d event of the range is sent again.", "%(count)d events of the range are sent again.", count
        )
        messages.success(request, said % {"count": count})
    return redirect("channels_app:events_endpoint", acc.customer.code, endpoint.code)
