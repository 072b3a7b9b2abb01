"""The members page of a customer: who has which role; owners add, re-role, remove and invite.

Every view starts with `access.get_customer_for_user` (owner=True for changes); the changes
themselves are made in channels_app.members, audited.
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from channels_app import access, members
from channels_app.audit import audit
from channels_app.forms import MemberAddForm, MemberRoleForm
from channels_app.models import AuditLog, Membership
from channels_app.views.common import page


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
def members_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code)
    return _members_page(request, acc)


def _invite(request: HttpRequest, acc: access.Access, user) -> None:
    if members.member_invite(request, user=user, customer=acc.customer, inviter=request.user):
        messages.success(request, f"An invitation is on its way to {user.email}; it works for three days.")
    else:
        messages.warning(request, f"The invitation to {user.email} could not be sent; try “Resend invitation” later.")


@login_required
@require_POST
def member_add_post(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership, created = members.member_add(
                customer=acc.customer,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except members.MemberError as exc:
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
def member_role_post(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, operator or viewer.")
    else:
        try:
            members.member_set_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except members.MemberError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{username} is now {membership.get_role_display().lower()}.")
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def member_remove_post(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    try:
        members.member_remove(membership=membership, actor=request.user)
    except members.MemberError as exc:
        messages.error(request, str(exc))
        return redirect("channels_app:members", acc.customer.code)
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {acc.customer.name}.")
        return redirect("channels_app:home")
    messages.success(request, f"{username} is no longer a member.")
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def member_invite_post(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
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
