"""A customer's alerts page: who of theirs is told about which events (owners choose), and the record
of what was sent about their channels (every member may read it)."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from alerts.forms import CustomerRecipientForm
from alerts.models import Notification, Recipient
from channels_app import access
from channels_app.audit import audit
from channels_app.models import AuditLog
from channels_app.views.common import page

CUSTOMER = AuditLog.Source.CUSTOMER
# Notifications the page lists, newest first.
RECORD_SIZE = 25


def _alerts_page(request: HttpRequest, acc: access.Access, form: CustomerRecipientForm | None = None) -> HttpResponse:
    customer = acc.customer
    return page(
        request,
        "portal/alerts.html",
        acc,
        {
            "recipients": Recipient.objects.filter(customer=customer).select_related("user").order_by("pk"),
            "record": Notification.objects.filter(customer=customer).select_related("channel")[:RECORD_SIZE],
            "form": form or CustomerRecipientForm(customer=customer),
        },
    )


@login_required
@require_GET
def alerts_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    return _alerts_page(request, access.get_customer_for_user(request, customer_code))


@login_required
@require_POST
def alert_recipient_add_post(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = CustomerRecipientForm(request.POST, customer=acc.customer)
    if not form.is_valid():
        return _alerts_page(request, acc, form)
    recipient = form.save()
    audit(
        actor=request.user,
        source=CUSTOMER,
        action="alerts.recipient_add",
        target=acc.customer,
        detail=recipient.address,
    )
    messages.success(
        request,
        _("%(address)s is told about: %(events)s.")
        % {"address": recipient.address, "events": "; ".join(recipient.event_labels)},
    )
    return redirect("channels_app:alerts", acc.customer.code)


@login_required
@require_POST
def alert_recipient_remove_post(request: HttpRequest, customer_code: UUID, recipient_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    recipient = get_object_or_404(Recipient, code=recipient_code, customer=acc.customer)
    address = recipient.address
    recipient.delete()
    audit(actor=request.user, source=CUSTOMER, action="alerts.recipient_remove", target=acc.customer, detail=address)
    messages.success(request, _("%(address)s is no longer told anything.") % {"address": address})
    return redirect("channels_app:alerts", acc.customer.code)
