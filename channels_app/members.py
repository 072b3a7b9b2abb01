"""Members of a customer: invitations (by email; the invited person accepts by a signed link),
changing roles, removing, each audited. Owners only, but for accepting: the views check that with
`access.get_customer_for_user(..., owner=True)`. Every customer keeps at least one owner.

An owner learns nothing about other accounts: inviting says the same whether or not an account
with that address exists, and nobody is added to a customer without accepting."""

import logging
import smtplib
from datetime import timedelta

from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from branding.brand import brand_for
from channels_app.audit import audit
from channels_app.models import AuditLog, Customer, Invitation, Membership

logger = logging.getLogger(__name__)

Role = Membership.Role
INVITATION_LIFETIME = timedelta(days=3)
INVITATION_SALT = "channels_app.invitation"


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
        raise MemberError(_("Every customer needs an owner: make someone else an owner first."))


def member_invite(request: HttpRequest, *, customer: Customer, email: str, role: str, actor) -> bool:
    """Invite `email` to `customer` with `role`: an invitation mailed with its signed link, which
    replaces any earlier one to that address. Returns False when the mail server refused.

    Nobody is added here, and nothing says whether an account with that address exists: the invited
    person accepts by the link, with an account of theirs or a new one (`invitation_accept`).
    Raises MemberError for an unknown role.
    """
    if role not in Role.values:
        raise MemberError(f"Unknown role {role!r}.")
    email = email.strip()
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(customer=customer, email__iexact=email, accepted_at__isnull=True).filter(
            revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            customer=customer,
            email=email,
            role=role,
            invited_by=actor,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="member.invite",
            target=customer,
            detail=f"{email} as {role}",
        )
    return _invitation_mail(request, invitation)


def invitation_resend(request: HttpRequest, *, invitation: Invitation, actor) -> bool:
    """Send a pending invitation again, with a fresh three days; False when the mail server refused."""
    return member_invite(
        request, customer=invitation.customer, email=invitation.email, role=invitation.role, actor=actor
    )


def invitation_cancel(*, invitation: Invitation, actor) -> None:
    """Withdraw a pending invitation: its link stops working."""
    Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit(
        actor=actor,
        source=AuditLog.Source.CUSTOMER,
        action="member.invite_cancel",
        target=invitation.customer,
        detail=invitation.email,
    )


def invitation_token(invitation: Invitation) -> str:
    """The signed token of an invitation's link (its nonce, signed with SECRET_KEY)."""
    return signing.Signer(salt=INVITATION_SALT).sign(invitation.nonce)


def invitation_for_token(token: str) -> Invitation | None:
    """The pending invitation a token opens; None when tampered with, expired, used or withdrawn."""
    try:
        nonce = signing.Signer(salt=INVITATION_SALT).unsign(token)
    except signing.BadSignature:
        return None
    invitation = Invitation.objects.select_related("customer", "invited_by").filter(nonce=nonce).first()
    return invitation if invitation is not None and invitation.is_pending() else None


def invitation_accept(*, invitation: Invitation, user) -> tuple[Membership, bool]:
    """`user` accepts the invitation: a member with its role (or left as they are, when they are a
    member already). Returns (membership, whether it is new). Raises MemberError when the invitation
    is no longer pending (used meanwhile, withdrawn or expired)."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        if locked is None or not locked.is_pending():
            raise MemberError(_("This invitation has expired or was used already."))
        membership = Membership.objects.filter(customer=locked.customer, user=user).first()
        created = membership is None
        if created:
            membership = Membership.objects.create(customer=locked.customer, user=user, role=locked.role)
        Invitation.objects.filter(pk=locked.pk).update(accepted_at=timezone.now(), accepted_by=user)
        audit(
            actor=user,
            source=AuditLog.Source.CUSTOMER,
            action="member.join",
            target=locked.customer,
            detail=f"{user.get_username()} as {membership.role}" + ("" if created else " (a member already)"),
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


def _invitation_mail(request: HttpRequest, invitation: Invitation) -> bool:
    """Mail the invitation's link; False when the mail server refused. The link is a credential, so it
    is never logged."""
    link = request.build_absolute_uri(reverse("channels_app:invitation", args=[invitation_token(invitation)]))
    brand = brand_for(invitation.customer)
    context = {
        "invitation": invitation,
        "customer": invitation.customer,
        "inviter": invitation.invited_by,
        "link": link,
        "brand": brand,
    }
    subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
    body = render_to_string("portal/email/invitation.txt", context)
    try:
        send_mail(subject, body, brand.from_email, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        logger.error("invitation %s could not be sent: %s", invitation.pk, type(exc).__name__)
        return False
    return True
