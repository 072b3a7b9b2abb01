"""Customer pages of one customer: the dashboard, requesting a channel, and members.

Every view starts with `access.get_customer_for_user` (404 for a customer the user is not in, 403
when the role does not allow the request).
"""

import logging
import smtplib
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_app import access, actions
from channels_app.actions import ActionError, audit
from channels_app.forms import ChannelCreateForm, MemberAddForm, MemberRoleForm
from channels_app.models import AuditLog, Channel, Membership
from channels_app.views import page
from channels_app.views_channel import days_left, in_progress

logger = logging.getLogger(__name__)

SESSION_CUSTOMER = "portal_customer"


# ------------------------------------------------------------------------------------------------
# Home and dashboard
# ------------------------------------------------------------------------------------------------
@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
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
            {"channel": channel, "days_left": days_left(channel), "in_progress": in_progress(channel)}
            for channel in channels
            if channel.project_id == project.pk
        ]
        groups.append({"project": project, "rows": rows})
    return groups, len(channels), any(in_progress(channel) for channel in channels)


@login_required
@require_GET
def dashboard(request: HttpRequest, customer_code: UUID) -> HttpResponse:
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
def dashboard_status(request: HttpRequest, customer_code: UUID) -> JsonResponse:
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
def channel_create(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, rw=True)
    customer = acc.customer
    projects = access.projects_for(customer)
    form = ChannelCreateForm(request.POST or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        # The form's key, scoped to the user: a key copied from elsewhere finds nothing of another's.
        key = f"web-{request.user.pk}-{form.cleaned_data['request_key']}"
        repeated = Channel.objects.filter(request_key=key).exists()
        try:
            channel = actions.channel_request(
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
                if not repeated:
                    messages.success(request, f"“{channel.name}” is requested. This page follows its setup.")
                return redirect("channels_app:channel", channel.code)
    used = access.channels_for(customer).count()
    return page(
        request,
        "portal/channel/create.html",
        acc,
        {"form": form, "used": used, "full": used >= customer.channel_quota, "has_projects": projects.exists()},
    )


# ------------------------------------------------------------------------------------------------
# Members
# ------------------------------------------------------------------------------------------------
def _members_page(request: HttpRequest, acc: access.Access, add_form: MemberAddForm | None = None) -> HttpResponse:
    memberships = (
        Membership.objects.filter(customer=acc.customer).select_related("user").order_by("user__username", "pk")
    )
    return page(
        request,
        "portal/members.html",
        acc,
        {
            "memberships": memberships,
            "add_form": add_form or MemberAddForm(),
            "role_choices": Membership.Role.choices,
        },
    )


@login_required
@require_GET
def members(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code)
    return _members_page(request, acc)


def send_invitation(request: HttpRequest, *, user, customer, inviter) -> bool:
    """Email a new member the link to choose a password (the password-reset confirmation page).

    Returns False when the mail server refused; the link is a credential, so it is never logged.
    """
    link = request.build_absolute_uri(
        reverse(
            "channels_app:password_reset_confirm",
            args=[urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)],
        )
    )
    context = {"user": user, "customer": customer, "inviter": inviter, "link": link}
    subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
    body = render_to_string("portal/email/invitation.txt", context)
    try:
        send_mail(subject, body, None, [user.email])
    except (smtplib.SMTPException, OSError) as exc:
        logger.error("invitation to user %s could not be sent: %s", user.pk, type(exc).__name__)
        return False
    return True


def _invite(request: HttpRequest, acc: access.Access, user) -> None:
    if send_invitation(request, user=user, customer=acc.customer, inviter=request.user):
        messages.success(request, f"An invitation is on its way to {user.email}; it works for three days.")
    else:
        messages.warning(request, f"The invitation to {user.email} could not be sent; try “Resend invitation” later.")


@login_required
@require_POST
def member_add(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership, created = access.member_add(
                customer=acc.customer,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except ActionError as exc:
            form.add_error("username", str(exc))
        else:
            user = membership.user
            messages.success(request, f"{user.username} is now a member ({membership.get_role_display()}).")
            if created:
                _invite(request, acc, user)
            return redirect("channels_app:members", acc.customer.code)
    return _members_page(request, acc, add_form=form)


@login_required
@require_POST
def member_role(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, operator or viewer.")
    else:
        try:
            access.member_set_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except ActionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{username} is now {membership.get_role_display().lower()}.")
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def member_remove(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    try:
        access.member_remove(membership=membership, actor=request.user)
    except ActionError as exc:
        messages.error(request, str(exc))
        return redirect("channels_app:members", acc.customer.code)
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {acc.customer.name}.")
        return redirect("channels_app:home")
    messages.success(request, f"{username} is no longer a member.")
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def member_invite(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    """Send the invitation again to a member who has not chosen a password yet."""
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    user = membership.user
    if user.has_usable_password() or not user.email:
        messages.info(request, f"{username} has a password already; “Forgot your password?” helps if it is lost.")
    else:
        audit(
            actor=request.user,
            source=AuditLog.Source.CUSTOMER,
            action="member.invite",
            target=acc.customer,
            detail=username,
        )
        _invite(request, acc, user)
    return redirect("channels_app:members", acc.customer.code)
