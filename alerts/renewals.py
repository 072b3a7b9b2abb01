"""Renewal rules: channels extended automatically before their paid time ends, within a monthly cap.

Each round (the alerts sweep) looks, per active rule, for the rule's channels that exist in Whapi
and have `when_days_left` or fewer days left, with no renewal yet for their current period (their
`active_till`). Before Whapi is asked, a Renewal row is written for that channel and period; its
uniqueness is the guarantee that a period is paid for once: a lost answer from Whapi is recorded as
unknown and never retried into a second payment (staff are told to check), a refusal as failed.
Staff are told of both, and once a month when a customer's cap stops its renewals. Each extension
goes through `actions.channel_extend`, audited like a staff one.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from alerts.billing import month_bounds
from alerts.models import Event, Renewal, RenewalRule
from alerts.notify import Message, channel_link, notify
from channels_app import actions
from channels_app.actions import ActionError
from channels_app.models import AuditLog, Channel, Customer

State = Channel.State
# States a renewal applies to: present in Whapi, including expired (days bring it back); not stopped
# by hand and not deleted.
RENEWABLE = tuple(state for state in Channel.PRESENT_IN_WHAPI if state != State.STOPPED)
# Channels one rule renews per round.
BATCH = 20


def days_used(customer_id: int, now: datetime) -> int:
    """Days renewed automatically for the customer this calendar month (refusals do not count)."""
    renewals = Renewal.objects.filter(customer_id=customer_id, created_at__gte=month_bounds(now.date())[0])
    return renewals.exclude(status=Renewal.Status.FAILED).aggregate(days=Sum("days"))["days"] or 0


def renewals_due(now: datetime | None = None) -> int:
    """Renew what the active rules say is due; returns how many extensions Whapi confirmed."""
    now = now or timezone.now()
    done = 0
    for rule in RenewalRule.objects.filter(active=True).select_related("customer", "project"):
        due = Channel.objects.filter(
            project__customer=rule.customer,
            state__in=RENEWABLE,
            whapi_id__isnull=False,
            active_till__isnull=False,
            active_till__lte=now + timedelta(days=rule.when_days_left),
        ).exclude(renewals__period_end=F("active_till"))
        if rule.project_id:
            due = due.filter(project=rule.project)
        for channel_id in due.order_by("active_till").values_list("pk", flat=True)[:BATCH]:
            renewed = _renew(rule, due, channel_id, now)
            if renewed is None:
                break  # the cap is reached: the rule's other channels wait for next month too
            done += renewed
    return done


def _renew(rule: RenewalRule, due, channel_id: int, now: datetime) -> int | None:
    """Renew one channel of `rule`'s `due` ones if it still is (1 once Whapi confirmed, else 0); None
    when the customer's monthly cap stops it.

    The decision is made under the customer's row lock, from the channel as it is now: the cap read
    and the renewal written together, so sweeps running at once neither pass the cap nor pay one
    period twice; and a channel extended since the round listed it (by staff, by another sweep, or
    read again from Whapi) is no longer due. Whapi is asked after that transaction."""
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=rule.customer_id)
        channel = due.select_related("project__customer").filter(pk=channel_id).first()
        if channel is None:
            return 0
        if days_used(rule.customer_id, now) + rule.extend_days > rule.monthly_cap_days:
            _tell_cap_reached(rule, channel, now)
            return None
        try:
            with transaction.atomic():
                renewal = Renewal.objects.create(
                    rule=rule,
                    channel=channel,
                    customer=rule.customer,
                    period_end=channel.active_till,
                    days=rule.extend_days,
                )
        except IntegrityError:
            return 0  # another round decided this period already
    try:
        actions.channel_extend(
            channel,
            days=rule.extend_days,
            comment=f"automatic renewal ({rule.when_days_left} or fewer days left)",
            actor=None,
            source=AuditLog.Source.SYSTEM,
        )
    except ActionError as exc:
        renewal.status = Renewal.Status.UNKNOWN if exc.outcome_unknown else Renewal.Status.FAILED
        renewal.detail = str(exc)[:2000]
        renewal.save(update_fields=["status", "detail"])
        _tell_problem(renewal)
        return 0
    renewal.status = Renewal.Status.DONE
    renewal.save(update_fields=["status"])
    return 1


def _tell_problem(renewal: Renewal) -> None:
    channel = renewal.channel
    unknown = renewal.status == Renewal.Status.UNKNOWN
    notify(
        Event.RENEWAL_PROBLEM,
        None,
        key=f"renewal:{renewal.pk}",
        message=Message(
            subject=f"{channel.name}: the automatic renewal {'may not have happened' if unknown else 'was refused'}",
            text=(
                f"The automatic renewal of “{channel.name}” (customer {renewal.customer.name}) by {renewal.days} days "
                + (
                    "got no clear answer from Whapi: it may or may not have been made. It is not tried again, so "
                    "that the days are never paid twice: check the channel's days in Whapi and extend it by hand "
                    "if they were not added."
                    if unknown
                    else "was refused by Whapi. It is not tried again for this period: extend it by hand."
                )
                + f"\n\nWhapi said: {renewal.detail}"
            ),
            fix="The channel",
        ),
        link=channel_link(channel, staff=True),
    )


def _tell_cap_reached(rule: RenewalRule, channel: Channel, now: datetime) -> None:
    notify(
        Event.RENEWAL_PROBLEM,
        None,
        key=f"renewal-cap:{rule.customer_id}:{now:%Y-%m}",
        message=Message(
            subject=f"{rule.customer.name}: automatic renewals stopped for {now:%B} (cap reached)",
            text=(
                f"Renewing “{channel.name}” by {rule.extend_days} days would pass {rule.customer.name}'s cap of "
                f"{rule.monthly_cap_days} days this month ({days_used(rule.customer_id, now)} used). Its channels "
                "are not renewed automatically until next month: extend them by hand, or raise the cap."
            ),
            fix="The channel",
        ),
        link=channel_link(channel, staff=True),
    )


def upcoming(now: datetime | None = None, *, days: int = 7, limit: int = 20) -> list[dict]:
    """The channels whose paid time ends soonest within `days`, each with the renewal a rule will make
    (when, by how much), or None: what staff see coming on the renewals list."""
    now = now or timezone.now()
    channels = list(
        Channel.objects.filter(state__in=RENEWABLE, active_till__gt=now, active_till__lte=now + timedelta(days=days))
        .select_related("project__customer")
        .order_by("active_till")[:limit]
    )
    customer_ids = {channel.project.customer_id for channel in channels if channel.project_id}
    rules: dict[int, list[RenewalRule]] = {}
    for rule in RenewalRule.objects.filter(active=True, customer_id__in=customer_ids):
        rules.setdefault(rule.customer_id, []).append(rule)
    rows = []
    for channel in channels:
        customer_id = channel.project.customer_id if channel.project_id else None
        applying = [rule for rule in rules.get(customer_id, []) if rule.project_id in (None, channel.project_id)]
        rule = min(applying, key=lambda r: (r.project_id is None, r.pk), default=None)  # a project's rule first
        rows.append(
            {
                "channel": channel,
                "customer": channel.project.customer if customer_id else None,
                "ends": channel.active_till,
                "rule": rule,
                "renews_at": max(now, channel.active_till - timedelta(days=rule.when_days_left)) if rule else None,
            }
        )
    return rows
