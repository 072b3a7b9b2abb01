"""Point the partner's `days` webhook (the day balance is low) at this portal."""

from django.core.management.base import BaseCommand, CommandError

from alerts.partner import partner_webhook_configure
from channels_app.audit import audit
from channels_app.models import AuditLog
from channels_app.whapi import WhapiError


class Command(BaseCommand):
    help = (
        "Set Whapi's partner `days` webhook to this portal's URL (PORTAL_BASE_URL), keeping the partner's "
        "other webhooks, and read it back; staff are told when it fires (alerts: the partner's day balance)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days-limit", type=int, help="also set the balance, in days, at which Whapi posts the webhook"
        )

    def handle(self, *args, days_limit=None, **options):
        if days_limit is not None and days_limit < 1:
            raise CommandError("--days-limit must be 1 or more.")
        try:
            stored = partner_webhook_configure(days_limit=days_limit)
        except (WhapiError, RuntimeError) as exc:
            audit(actor=None, source=AuditLog.Source.SYSTEM, action="partner.days_webhook", ok=False, detail=str(exc))
            raise CommandError(f"The webhook was not set: {exc}") from exc
        audit(actor=None, source=AuditLog.Source.SYSTEM, action="partner.days_webhook", detail="set and read back")
        # The URL holds the secret that authenticates Whapi's calls: it is not printed.
        self.stdout.write(
            f"The partner's days webhook points at this portal (verified); Whapi posts it when the balance "
            f"reaches {stored.get('days_limit', '?')} days."
        )
