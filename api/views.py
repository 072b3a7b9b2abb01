"""A customer's API keys page (owners only): the keys, making one (shown once, on the page the POST
answers, never in a URL nor in the session) and revoking one. The keys themselves are made and
revoked in api.keys, audited."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from api.forms import CustomerApiKeyForm
from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey
from channels_app import access
from channels_app.models import AuditLog
from channels_app.views.common import no_store, page, point_to_form_error

CUSTOMER = AuditLog.Source.CUSTOMER
PAGE_SIZE = 50


def _api_keys_page(
    request: HttpRequest,
    acc: access.Access,
    form: CustomerApiKeyForm | None = None,
    new_key: str = "",
    new_row: ApiKey | None = None,
) -> HttpResponse:
    customer = acc.customer
    keys = ApiKey.objects.filter(customer=customer).select_related("channel", "created_by")
    # The channel's name and code only: loading the whole row would decrypt its token and secret.
    keys = keys.only(
        *(field.name for field in ApiKey._meta.concrete_fields if field.name != "key_hash"),
        "channel__name",
        "channel__code",
        "channel__state",
        "created_by__username",
        "created_by__is_staff",
    )
    current = Paginator(keys, PAGE_SIZE).get_page(request.GET.get("page"))
    if form is None:
        initial = {"channel": request.GET.get("channel", "")}
        form = CustomerApiKeyForm(initial=initial, customer=customer)
    # The page may hold a new key: never keep it in a cache.
    return no_store(
        page(
            request,
            "portal/api_keys.html",
            acc,
            {"keys": current.object_list, "page_obj": current, "form": form, "new_key": new_key, "new_row": new_row},
        )
    )


@login_required
@require_GET
def api_keys_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    return _api_keys_page(request, access.get_customer_for_user(request, customer_code, owner=True))


@login_required
@require_POST
def api_key_create_post(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = CustomerApiKeyForm(request.POST, customer=acc.customer)
    if not form.is_valid():
        point_to_form_error(request, form, section=_("New key"))
        return _api_keys_page(request, acc, form)
    row, key = api_key_create(
        name=form.cleaned_data["name"],
        customer=acc.customer,
        channel=form.cleaned_data["channel"],
        can_write=form.can_write,
        actor=request.user,
        source=CUSTOMER,
    )
    # Answered here, not after a redirect: the key is in this one page and nowhere else.
    return _api_keys_page(request, acc, new_key=key, new_row=row)


@login_required
@require_POST
def api_key_revoke_post(request: HttpRequest, customer_code: UUID, key_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    row = ApiKey.objects.filter(customer=acc.customer, code=key_code).first()
    if row is None:
        raise Http404("No such key.")
    if api_key_revoke(row, actor=request.user, source=CUSTOMER):
        said = _("The key “%(name)s” (%(prefix)s…) no longer works.")
        messages.success(request, said % {"name": row.name, "prefix": row.prefix})
    else:
        messages.info(request, _("The key “%(name)s” was revoked already.") % {"name": row.name})
    return redirect("channels_app:api_keys", acc.customer.code)
