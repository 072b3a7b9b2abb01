"""Create or update the periodic django-q2 schedules (idempotent; `make run` and deployments call it)."""

from django.core.management.base import BaseCommand

from channels_app.background import PERIODIC, setup_periodic_schedules


class Command(BaseCommand):
    help = "Create or update the portal's periodic background schedules."

    def handle(self, *args, **options):
        for name in setup_periodic_schedules():
            task, minutes = PERIODIC[name]
            self.stdout.write(f"schedule {name}: {task} every {minutes} min")
