"""Members of a customer: adding (with an invitation for a new account), changing roles, removing,
each audited. Owners only: the views check that with `access.get_customer_for_user(..., owner=True)`.
Every customer keeps at least one owner."""

import logging
import smtplib

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from channels_app.audit import audit
from channels_app.models import AuditLog, Customer, Membership

logger = logging.getLogger(__name__)

Role = Membership.Role


class MemberError(Exception):
    """A change to the members that is refused, with a message fit to show the owner who asked."""


def _keep_an_owner(membership: Membership) -> None:
    """Raise MemberError when `membership` is its customer's last owner, who may neither leave nor stop
    being an owner. The owners stay locked until the transaction ends, so two owners cannot both go."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(customer=membership.customer, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    if owners == [membership.pk]:
        raise MemberError("Every customer needs an owner: make someone else an owner first.")


def member_add(*, customer: Customer, username: str, email: str, role: str, actor) -> tuple[Membership, bool]:
    """Give `username` the `role` in `customer`; returns (membership, whether the user account is new).

    An unknown username gets a new account without a usable password (the caller sends the
    invitation to set one). An existing account is only added when `email` is its email address.
    Raises MemberError with a message fit to show.
    """
    if role not in Role.values:
        raise MemberError(f"Unknown role {role!r}.")
    username, email = username.strip(), email.strip()
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.filter(username__iexact=username).first()
        created = user is None
        if created:
            user = user_model(username=username, email=email)
            user.set_unusable_password()
            user.save()
        elif (user.email or "").lower() != email.lower():
            raise MemberError(f"The user {username} exists with another email address; check both.")
        elif Membership.objects.filter(customer=customer, user=user).exists():
            raise MemberError(f"{user.get_username()} is a member already.")
        membership = Membership.objects.create(customer=customer, user=user, role=role)
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="member.add",
            target=customer,
            detail=f"{user.get_username()} as {role}" + (" (new account, invited)" if created else ""),
        )
    return membership, created


def member_set_role(*, membership: Membership, role: str, actor) -> None:
    """Change a member's role; the last owner cannot stop being one. Raises MemberError."""
    if role not in Role.values:
        raise MemberError(f"Unknown role {role!r}.")
    with transaction.atomic():
        if role != Role.OWNER:
            _keep_an_owner(membership)
        previous = membership.role
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="member.role",
            target=membership.customer,
            detail=f"{membership.user.get_username()}: {previous} → {role}",
        )


def member_remove(*, membership: Membership, actor) -> None:
    """Take a member out of the customer (the account stays); not the last owner. Raises MemberError."""
    with transaction.atomic():
        _keep_an_owner(membership)
        Membership.objects.filter(pk=membership.pk).delete()
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="member.remove",
            target=membership.customer,
            detail=f"{membership.user.get_username()} ({membership.role})",
        )


def member_invite(request: HttpRequest, *, user, customer: Customer, inviter) -> bool:
    """Email a member the link to choose a password (the password-reset confirmation page).

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
