"""Re-encrypt every stored secret with the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), deploy, run this
command, then remove the old key. Running it twice is harmless.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_app.crypto import DecryptionError, EncryptedTextField


def encrypted_fields():
    """Yield (model, [field names]) for every model that has encrypted fields."""
    for model in apps.get_models():
        names = [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if names:
            yield model, names


class Command(BaseCommand):
    help = "Re-encrypt all secrets at rest with the newest key in FIELD_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        for model, names in encrypted_fields():
            pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), batch_size):
                with transaction.atomic():
                    # Loading decrypts with whichever key fits; writing encrypts with the newest key.
                    # The rows are locked as they are read, in primary-key order like the other batch
                    # writers (the checks, the applier): a secret changed meanwhile is not overwritten
                    # with the value read, and the two cannot deadlock.
                    batch = (
                        model._default_manager.filter(pk__in=pks[start : start + batch_size])
                        .select_for_update(no_key=True)
                        .order_by("pk")
                    )
                    try:
                        rows = list(batch.only("pk", *names))
                    except DecryptionError as exc:
                        raise CommandError(f"{model._meta.label}: {exc}") from exc
                    model._default_manager.bulk_update(rows, names)
            self.stdout.write(f"{model._meta.label}: re-encrypted {', '.join(names)} in {len(pks)} rows")
        self.stdout.write(self.style.SUCCESS("All secrets are now encrypted with the newest key."))
