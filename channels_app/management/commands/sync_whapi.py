"""Mirror the partner's Whapi projects and channels into the portal."""

from django.core.management.base import BaseCommand, CommandError

from channels_app.actions import ActionError, whapi_sync
from channels_app.models import AuditLog


class Command(BaseCommand):
    help = "Mirror projects and channels from Whapi (all pages); recorded in the audit log."

    def handle(self, *args, **options):
        try:
            summary = whapi_sync(actor=None, source=AuditLog.Source.SYSTEM)
        except ActionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Synced with Whapi: channels {summary}.")
