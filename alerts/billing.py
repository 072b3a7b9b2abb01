"""The monthly billing CSV of a customer: each channel, the days it was extended by hand and
automatically in the month, and its current paid time end (`activeTill`), for invoicing."""

import csv
import io
import re
from datetime import UTC, date, datetime

from django.db.models import Sum

from alerts.models import Renewal
from channels_app.models import AuditLog, Channel, Customer

COLUMNS = [
    "customer",
    "channel",
    "whapi_id",
    "project",
    "state",
    "mode",
    "days_extended_by_hand",
    "days_extended_automatically",
    "active_till_utc",
]
# actions.channel_extend records its days first in the audit detail: "30 days: <comment>".
DAYS_IN_DETAIL = re.compile(r"^(\d+) days")


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def parse_month(text: str) -> date:
    """A YYYY-MM month; raises ValueError for anything else."""
    if not re.fullmatch(r"\d{4}-\d{2}", text or ""):
        raise ValueError(f"{text!r} is not a month like 2026-11")
    return date(int(text[:4]), int(text[5:]), 1)


def billing_rows(customer: Customer, month: date) -> list[dict]:
    start, end = month_bounds(month)
    channels = (
        Channel.objects.filter(project__customer=customer)
        .exclude(whapi_id__isnull=True)
        .select_related("project")
        .order_by("name", "pk")
    )
    by_hand: dict[str, int] = {}
    extensions = AuditLog.objects.filter(
        customer=customer, action="channel.extend", ok=True, at__gte=start, at__lt=end
    ).exclude(source=AuditLog.Source.SYSTEM)
    for target_id, detail in extensions.values_list("target_id", "detail"):
        if match := DAYS_IN_DETAIL.match(detail):
            by_hand[target_id] = by_hand.get(target_id, 0) + int(match.group(1))
    automatic = dict(
        Renewal.objects.filter(customer=customer, status=Renewal.Status.DONE, created_at__gte=start, created_at__lt=end)
        .values("channel_id")
        .annotate(days=Sum("days"))
        .values_list("channel_id", "days")
    )
    return [
        {
            "customer": customer.name,
            "channel": channel.name,
            "whapi_id": channel.whapi_id,
            "project": channel.project.name if channel.project else "",
            "state": channel.state,
            "mode": channel.mode,
            "days_extended_by_hand": by_hand.get(channel.whapi_id, 0),
            "days_extended_automatically": automatic.get(channel.pk, 0),
            "active_till_utc": channel.active_till.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            if channel.active_till
            else "",
        }
        for channel in channels
    ]


def billing_csv(customers, month: date) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for customer in customers:
        writer.writerows(billing_rows(customer, month))
    return out.getvalue()
