"""The audit log: who changed what in Whapi or in tenancy, from where, and whether it worked."""

from channels_app.models import AuditLog, Channel, Customer, Project


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
    """Record an action; `customer` defaults to the target's customer."""
    if customer is None and target is not None:
        customer = target if isinstance(target, Customer) else getattr(target, "customer", None)
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "get_username", lambda: "")() if actor else "",
        source=source,
        customer=customer,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "whapi_id", None) or getattr(target, "pk", "") or "") if target else "",
        target_label=str(target)[:255] if target is not None else "",
        ok=ok,
        detail=detail[:4000],
    )
