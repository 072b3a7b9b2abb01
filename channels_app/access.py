"""Tenancy: who may see and change which customer's projects, channels and members.

This is the only place the rules live. Every customer view starts by calling one of the
`get_*_for_user` helpers, which load the object for the signed-in user:
- not a member of the object's customer (or no such object) → Http404, so nothing tells an
  outsider that the object exists;
- a member whose role does not allow the request → PermissionDenied (403);
- a superuser may look at every customer (as a viewer) but changes nothing through these pages.
Child objects (projects, channels, memberships) are always fetched through the customer.

Roles: owners may do everything including managing members; operators create, connect, disconnect,
rename channels and set their own webhooks; viewers only read.

Hand-off links are the one way in without a login: a signed token names one HandoffLink, which shows
one channel's connection page until it expires or is revoked (see `get_channel_for_handoff`).
"""

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from channels_app.actions import ActionError, audit
from channels_app.models import AuditLog, Channel, Customer, HandoffLink, Membership, Project

Role = Membership.Role


@dataclass(frozen=True)
class Access:
    """What the signed-in user may do in one customer."""

    customer: Customer
    role: str
    membership: Membership | None

    @property
    def can_write(self) -> bool:
        """Owners and operators: create, connect, disconnect, rename, webhooks, API token, hand-off links."""
        return self.role in (Role.OWNER, Role.OPERATOR)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


def customers_for_user(user) -> QuerySet[Customer]:
    """The customers `user` is a member of, by name (what the customer switcher lists)."""
    if not getattr(user, "is_authenticated", False):
        return Customer.objects.none()
    return Customer.objects.filter(memberships__user=user).order_by("name", "pk")


def _access(user, customer: Customer) -> Access | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    membership = Membership.objects.filter(customer=customer, user=user).first()
    if membership is not None:
        return Access(customer=customer, role=membership.role, membership=membership)
    if user.is_superuser:
        return Access(customer=customer, role=Role.VIEWER, membership=None)
    return None


def _check(access: Access, *, rw: bool, owner: bool) -> Access:
    if owner and not access.is_owner:
        raise PermissionDenied("Only an owner of this customer may do that.")
    if rw and not access.can_write:
        raise PermissionDenied("Your role in this customer is read-only.")
    return access


def get_customer_for_user(request: HttpRequest, code: UUID, *, rw: bool = False, owner: bool = False) -> Access:
    """The user's access to the customer with this code; Http404 for a non-member, 403 for a weak role."""
    customer = Customer.objects.filter(code=code).first()
    access = _access(request.user, customer) if customer is not None else None
    if access is None:
        raise Http404("No such customer.")
    return _check(access, rw=rw, owner=owner)


def get_channel_for_user(request: HttpRequest, code: UUID, *, rw: bool = False) -> tuple[Channel, Access]:
    """The channel with this code and the user's access to its customer.

    Http404 unless the channel belongs (through its project) to a customer the user may see, or when it
    is deleted; PermissionDenied when `rw` and the user's role is read-only.
    """
    channel = (
        Channel.objects.select_related("project__customer")
        .filter(code=code, project__customer__isnull=False)
        .exclude(state=Channel.State.DELETED)
        .first()
    )
    access = _access(request.user, channel.project.customer) if channel is not None else None
    if access is None:
        raise Http404("No such channel.")
    return channel, _check(access, rw=rw, owner=False)


def projects_for(customer: Customer) -> QuerySet[Project]:
    return Project.objects.filter(customer=customer).order_by("name", "pk")


def channels_for(customer: Customer) -> QuerySet[Channel]:
    """The customer's channels that still exist, oldest request first."""
    return (
        Channel.objects.filter(project__customer=customer)
        .exclude(state=Channel.State.DELETED)
        .select_related("project")
        .order_by("requested_at", "pk")
    )


def get_member(access: Access, username: str) -> Membership:
    """A membership of the customer, by the member's username; Http404 when not a member."""
    membership = (
        Membership.objects.select_related("user").filter(customer=access.customer, user__username=username).first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


# ------------------------------------------------------------------------------------------------
# Managing members (owners only; the views check that with owner=True)
# ------------------------------------------------------------------------------------------------
def _owners_locked(customer: Customer) -> list[int]:
    """Ids of the customer's owner memberships, locked until the transaction ends (last-owner rule)."""
    return list(
        Membership.objects.select_for_update().filter(customer=customer, role=Role.OWNER).values_list("pk", flat=True)
    )


def member_add(*, customer: Customer, username: str, email: str, role: str, actor) -> tuple[Membership, bool]:
    """Give `username` the `role` in `customer`; returns (membership, whether the user account is new).

    An unknown username gets a new account without a usable password (the caller sends the
    invitation to set one). An existing account is only added when `email` is its email address.
    Raises ActionError with a message fit to show.
    """
    if role not in Role.values:
        raise ActionError(f"Unknown role {role!r}.")
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
            raise ActionError(f"The user {username} exists with another email address; check both.")
        elif Membership.objects.filter(customer=customer, user=user).exists():
            raise ActionError(f"{user.get_username()} is a member already.")
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
    """Change a member's role; the last owner cannot stop being one. Raises ActionError."""
    if role not in Role.values:
        raise ActionError(f"Unknown role {role!r}.")
    with transaction.atomic():
        owners = _owners_locked(membership.customer)
        if membership.role == Role.OWNER and role != Role.OWNER and owners == [membership.pk]:
            raise ActionError("Every customer needs an owner: make someone else an owner first.")
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
    """Take a member out of the customer (the account stays); not the last owner. Raises ActionError."""
    with transaction.atomic():
        owners = _owners_locked(membership.customer)
        if owners == [membership.pk]:
            raise ActionError("Every customer needs an owner: make someone else an owner first.")
        Membership.objects.filter(pk=membership.pk).delete()
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="member.remove",
            target=membership.customer,
            detail=f"{membership.user.get_username()} ({membership.role})",
        )


# ------------------------------------------------------------------------------------------------
# Hand-off links: one channel's QR / pairing code and status for whoever holds the phone
# ------------------------------------------------------------------------------------------------
HANDOFF_SALT = "channels_app.handoff"
DEFAULT_HANDOFF_LIFETIME = timedelta(minutes=30)


def handoff_token(link: HandoffLink) -> str:
    """The URL token of a link: its nonce and expiry, signed with SECRET_KEY.

    The same link always gives the same token, so the page can show an active link again. The
    signature covers the expiry, so neither can be altered without the link failing.
    """
    payload = {"n": link.nonce, "e": int(link.expires_at.timestamp())}
    return signing.Signer(salt=HANDOFF_SALT).sign_object(payload)


def get_channel_for_handoff(token: str) -> tuple[Channel, HandoffLink] | None:
    """The channel a hand-off token opens, with its link; None when the token is tampered with,
    stale, revoked, superseded by a newer link, or its channel is deleted."""
    try:
        payload = signing.Signer(salt=HANDOFF_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str) or not isinstance(payload.get("e"), int):
        return None
    now = timezone.now()
    if payload["e"] <= now.timestamp():
        return None
    link = HandoffLink.objects.select_related("channel").filter(nonce=payload["n"]).first()
    if link is None or not link.is_active(now) or link.channel.state == Channel.State.DELETED:
        return None
    return link.channel, link


def active_handoff_link(channel: Channel) -> HandoffLink | None:
    now = timezone.now()
    return channel.handoff_links.filter(revoked_at__isnull=True, expires_at__gt=now).order_by("-created_at").first()


def handoff_create(*, channel: Channel, lifetime: timedelta = DEFAULT_HANDOFF_LIFETIME, actor) -> HandoffLink:
    """Make a new hand-off link for `channel`; every older link of the channel stops working."""
    now = timezone.now()
    with transaction.atomic():
        channel.handoff_links.filter(revoked_at__isnull=True).update(revoked_at=now)
        link = HandoffLink.objects.create(channel=channel, created_by=actor, created_at=now, expires_at=now + lifetime)
        audit(
            actor=actor,
            source=AuditLog.Source.CUSTOMER,
            action="handoff.create",
            target=channel,
            detail=f"link {link.pk}, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return link


def handoff_revoke(*, channel: Channel, actor) -> int:
    """Stop every hand-off link of `channel`; returns how many were still active."""
    now = timezone.now()
    unrevoked = channel.handoff_links.filter(revoked_at__isnull=True)
    count = unrevoked.filter(expires_at__gt=now).count()
    unrevoked.update(revoked_at=now)
    audit(
        actor=actor, source=AuditLog.Source.CUSTOMER, action="handoff.revoke", target=channel, detail=f"{count} active"
    )
    return count


def handoff_used(link: HandoffLink, *, what: str, ip: str | None) -> None:
    """Record one use of a link (opening the page, asking for a pairing code)."""
    now = timezone.now()
    HandoffLink.objects.filter(pk=link.pk).update(uses=F("uses") + 1, last_used_at=now)
    audit(
        actor=None,
        source=AuditLog.Source.HANDOFF,
        action=f"handoff.{what}",
        target=link.channel,
        detail=f"link {link.pk}" + (f" from {ip}" if ip else ""),
    )
