"""The audit log: who changed what in Whapi or in tenancy, from where, and whether it worked."""

from django.contrib.auth.models import AbstractBaseUser

from channels_app.models import AuditLog, Channel, Customer, Project


def acting_user(actor):
    """The user behind `actor` for a user column (requested by, created by): None for the system, an
    anonymous visitor or an API key (whose actions the audit log names by the key)."""
    return actor if isinstance(actor, AbstractBaseUser) and actor.pk else None


def audit(
    *,
    actor,
    source: str,
    action: str,
    target: Channel | Project | Customer | None = None,
    customer: Customer | None = None,
    ok: bool = True,
    detail: str = "",
) -> AuditLog:
    """Record an action; `customer` defaults to the target's customer.

    The actor is a user, None (the system), or an API key (api.models.ApiKey): the record then names the
    key by its `audit_label` and keeps its prefix.
    """
    if customer is None and target is not None:
        customer = target if isinstance(target, Customer) else getattr(target, "customer", None)
    is_user = isinstance(actor, AbstractBaseUser)
    return AuditLog.objects.create(
        actor=acting_user(actor),
        actor_label=(actor.get_username() if is_user else getattr(actor, "audit_label", "")) if actor else "",
        api_key=getattr(actor, "prefix", "") if actor and not is_user else "",
        source=source,
        customer=customer,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "whapi_id", None) or getattr(target, "pk", "") or "") if target else "",
        target_label=str(target)[:255] if target is not None else "",
        ok=ok,
        detail=detail[:4000],
    )
