"""Tenancy: who may see and change which customer's projects, channels and members.

This is the only place the rules live. Every customer view starts by calling one of the
`get_*_for_user` helpers, which load the object for the signed-in user:
- not a member of the object's customer (or no such object) → Http404, so nothing tells an
  outsider that the object exists;
- a member whose role does not allow the request → PermissionDenied (403);
- a superuser may look at every customer (as a viewer) but changes nothing through these pages.
Child objects (projects, channels, memberships) are always fetched through the customer.

Roles: owners may do everything, including deleting channels and managing members; operators create,
connect, disconnect, restart and rename channels and set their own webhooks; viewers only read.

Read-only: nothing here writes. Memberships are changed in members.py; hand-off links, the one way in
without a login, live in handoff.py.
"""

from dataclasses import dataclass
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from channels_app.models import Channel, Customer, Membership, Project

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


def get_channel_for_user(
    request: HttpRequest, code: UUID, *, rw: bool = False, owner: bool = False
) -> tuple[Channel, Access]:
    """The channel with this code and the user's access to its customer.

    Http404 unless the channel belongs (through its project) to a customer the user may see, or when it
    is deleted; PermissionDenied when `rw` and the user's role is read-only, or `owner` and the user is
    not an owner.
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
    return channel, _check(access, rw=rw, owner=owner)


def projects_for(customer: Customer) -> QuerySet[Project]:
    return Project.objects.filter(customer=customer).order_by("name", "pk")


def channels_for(customer: Customer, *, projects: list[Project] | None = None) -> QuerySet[Channel]:
    """The customer's channels that still exist, oldest request first.

    `projects`: the customer's projects (`projects_for`), when the caller has them loaded anyway.
    The query then names them (`project_id IN (…)`) instead of joining through the customer, which
    PostgreSQL estimates per project: a small customer's page no longer walks every channel.
    """
    if projects is not None:
        if any(project.customer_id != customer.pk for project in projects):
            raise ValueError("channels_for: a project of another customer")
        channels = Channel.objects.filter(project_id__in=[project.pk for project in projects])
    else:
        channels = Channel.objects.filter(project__customer=customer)
    return channels.in_use().select_related("project").order_by("requested_at", "pk")


def get_member(access: Access, username: str) -> Membership:
    """A membership of the customer, by the member's username; Http404 when not a member."""
    membership = (
        Membership.objects.select_related("user").filter(customer=access.customer, user__username=username).first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership
