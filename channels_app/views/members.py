"""The members page of a customer (who has which role; owners invite, re-role and remove) and the
page where an invited person accepts.

Every members view starts with `access.get_customer_for_user` (owner=True for changes); the
changes themselves are made in channels_app.members, audited. The invitation page needs no login:
its signed link decides, and the person accepts with the account they are signed in with or a new one.
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from branding.brand import brand_for
from channels_app import access, members
from channels_app.forms import InvitationSignupForm, MemberInviteForm, MemberRoleForm
from channels_app.models import Invitation, Membership
from channels_app.views.common import page


def _members_page(
    request: HttpRequest, acc: access.Access, invite_form: MemberInviteForm | None = None
) -> HttpResponse:
    memberships = (
        Membership.objects.filter(customer=acc.customer).select_related("user").order_by("user__username", "pk")
    )
    pending = (
        acc.customer.invitations.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        if acc.is_owner
        else Invitation.objects.none()
    )
    return page(
        request,
        "portal/members.html",
        acc,
        {
            "memberships": memberships,
            "invitations": pending.order_by("email", "pk"),
            "invite_form": invite_form or MemberInviteForm(),
            "role_choices": Membership.Role.choices,
        },
    )


@login_required
@require_GET
def members_page(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code)
    return _members_page(request, acc)


def _said_sent(request: HttpRequest, email: str, sent: bool) -> None:
    # The same words whether or not an account with that address exists.
    if sent:
        messages.success(
            request, _("An invitation is on its way to %(email)s; it works for three days.") % {"email": email}
        )
    else:
        messages.warning(
            request, _("The invitation to %(email)s could not be sent; try “Resend” later.") % {"email": email}
        )


@login_required
@require_POST
def member_invite_post(request: HttpRequest, customer_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    form = MemberInviteForm(request.POST)
    if not form.is_valid():
        return _members_page(request, acc, invite_form=form)
    email = form.cleaned_data["email"]
    sent = members.member_invite(
        request, customer=acc.customer, email=email, role=form.cleaned_data["role"], actor=request.user
    )
    _said_sent(request, email, sent)
    return redirect("channels_app:members", acc.customer.code)


def _pending_invitation(acc: access.Access, code: UUID) -> Invitation:
    invitation = acc.customer.invitations.filter(code=code).first()
    if invitation is None or not invitation.is_pending():
        raise Http404("No such invitation.")
    return invitation


@login_required
@require_POST
def invitation_resend_post(request: HttpRequest, customer_code: UUID, invitation_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    invitation = _pending_invitation(acc, invitation_code)
    _said_sent(request, invitation.email, members.invitation_resend(request, invitation=invitation, actor=request.user))
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def invitation_cancel_post(request: HttpRequest, customer_code: UUID, invitation_code: UUID) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    invitation = _pending_invitation(acc, invitation_code)
    members.invitation_cancel(invitation=invitation, actor=request.user)
    messages.success(request, _("The invitation to %(email)s no longer works.") % {"email": invitation.email})
    return redirect("channels_app:members", acc.customer.code)


@login_required
@require_POST
def member_role_post(request: HttpRequest, customer_code: UUID, username: str) -> HttpResponse:
    acc = access.get_customer_for_user(request, customer_code, owner=True)
    membership = access.get_member(acc, username)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose owner, operator or viewer."))
    else:
        try:
            members.member_set_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except members.MemberError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("%(username)s is now %(role)s.")
                % {"username": username, "role": membership.get_role_display().lower()},
            )
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
        messages.success(request, _("You left %(name)s.") % {"name": acc.customer.name})
        return redirect("channels_app:home")
    messages.success(request, _("%(username)s is no longer a member.") % {"username": username})
    return redirect("channels_app:members", acc.customer.code)


# ------------------------------------------------------------------------------------------------
# Accepting an invitation (no login needed: the signed link decides)
# ------------------------------------------------------------------------------------------------
def _invitation_gone(request: HttpRequest) -> HttpResponse:
    response = render(request, "portal/invitation_expired.html", {}, status=410)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    invitation = members.invitation_for_token(token)
    if invitation is None:
        return _invitation_gone(request)
    signup_form = None
    if request.method == "POST":
        user = request.user if request.user.is_authenticated else None
        if user is None:
            signup_form = InvitationSignupForm(request.POST, email=invitation.email)
            if signup_form.is_valid():
                user = signup_form.save()
                auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if user is not None:
            try:
                membership, created = members.invitation_accept(invitation=invitation, user=user)
            except members.MemberError:
                return _invitation_gone(request)
            customer = membership.customer
            messages.success(
                request,
                (_("Welcome to %(name)s.") if created else _("You are a member of %(name)s already."))
                % {"name": customer.name},
            )
            return redirect("channels_app:dashboard", customer.code)
    context = {
        "invitation": invitation,
        "signup_form": signup_form or InvitationSignupForm(email=invitation.email),
        "login_url": reverse("channels_app:login") + "?next=" + request.path,
        "brand": brand_for(invitation.customer),  # as in its mail
    }
    response = render(request, "portal/invitation.html", context)
    response["Cache-Control"] = "no-store"
    return response
