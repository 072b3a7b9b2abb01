"""The monthly billing CSV: channels, days extended by hand and automatically, current activeTill."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from alerts.billing import billing_csv, parse_month
from channels_app.models import Customer


class Command(BaseCommand):
    help = (
        "Print the billing CSV of a month (default: the current one, UTC): one row per channel of each "
        "customer (or of --customer), with the days extended by hand and automatically in the month."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: this month)")
        parser.add_argument("--customer", help="the customer's public id (default: every customer)")

    def handle(self, *args, month=None, customer=None, **options):
        try:
            month = parse_month(month) if month else timezone.now().date().replace(day=1)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        customers = Customer.objects.order_by("name", "pk")
        if customer:
            customers = customers.filter(code=customer) if _is_uuid(customer) else customers.none()
            if not customers:
                raise CommandError(f"No customer with the public id {customer!r}.")
        self.stdout.write(billing_csv(customers, month), ending="")


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
