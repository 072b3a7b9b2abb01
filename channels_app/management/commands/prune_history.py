"""Delete the records the retention settings no longer keep, as the hourly `retention_prune` task
does, by hand; `--dry-run` counts them instead (channels_app.retention)."""

from django.core.management.base import BaseCommand, CommandError

from channels_app import retention


class Command(BaseCommand):
    help = "Delete ledger, timeline, audit, create-attempt and failed-task rows older than their retention."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
        parser.add_argument(
            "--batch-size", type=int, default=retention.BATCH_SIZE, help=f"rows per DELETE ({retention.BATCH_SIZE})"
        )
        parser.add_argument(
            "--max-batches",
            type=int,
            default=retention.MAX_BATCHES,
            help=f"batches per record in this run ({retention.MAX_BATCHES}); run again for the rest",
        )

    def handle(self, *args, dry_run: bool, batch_size: int, max_batches: int, **options):
        if batch_size < 1 or max_batches < 1:
            raise CommandError("--batch-size and --max-batches must be at least 1.")
        for policy in retention.POLICIES.values():
            self.stdout.write(f"{policy.label}: {policy.describe()}")
        if dry_run:
            self.stdout.write(f"Would delete: {retention.retention_count()}")
        else:
            self.stdout.write(f"Deleted: {retention.retention_prune(batch_size=batch_size, max_batches=max_batches)}")
