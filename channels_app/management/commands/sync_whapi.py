"""Mirror the partner's Whapi projects and channels into the portal."""

from django.core.management.base import BaseCommand, CommandError

from channels_app.services import channels_sync, projects_sync
from channels_app.whapi import WhapiError


class Command(BaseCommand):
    help = "Mirror projects and channels from Whapi (all pages)."

    def handle(self, *args, **options):
        try:
            projects = projects_sync()
            channels = channels_sync()
        except WhapiError as exc:
            raise CommandError(f"Whapi sync failed: {exc}") from exc
        self.stdout.write(f"projects: {projects['created']} new, {projects['updated']} updated")
        self.stdout.write(
            f"channels: {channels['updated']} updated, {channels['adopted']} adopted, "
            f"{channels['imported']} imported, {channels['gone']} gone from Whapi"
        )
