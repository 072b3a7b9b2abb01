"""Queue a new channel in a Whapi project, as the admin and the customer pages do."""

from django.core.management.base import BaseCommand, CommandError

from channels_app import actions, budget
from channels_app.models import AuditLog, Project


class Command(BaseCommand):
    help = "Queue a new channel; prints its public id and state. The worker creates it."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Whapi project id")
        parser.add_argument("--name", required=True, help="channel name")
        parser.add_argument("--request-key", help="idempotency key: the same key never queues a second channel")

    def handle(self, *args, project: str, name: str, request_key: str | None, **options):
        found = Project.objects.filter(whapi_id=project).first()
        if found is None:
            raise CommandError(f"No project with Whapi id {project!r}; run `manage.py sync_whapi` first.")
        try:
            channel, _ = actions.channel_request(
                project=found,
                name=name,
                actor=None,
                source=AuditLog.Source.SYSTEM,
                request_key=request_key,
                enforce_quota=False,
            )
        except actions.ActionError as exc:
            raise CommandError(str(exc)) from exc
        line = f"{channel.code} {channel.state}"
        position = budget.queue_position(channel)
        if position:
            line += f" position {position}, expected at {budget.queue_eta(position):%Y-%m-%d %H:%M:%S} UTC"
        self.stdout.write(line)
