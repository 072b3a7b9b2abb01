"""Indexes for the admin's lists of the ledger and the timeline at millions of rows, newest first:
all of them, one channel's, one Whapi channel id's, one outcome's. The composite indexes on the
channel serve its foreign key too, so the single-column ones go (after the new ones exist). Two
small ones on channels serve the channel list's "needs a look" counts (ending soon, stale).

On PostgreSQL each CREATE INDEX holds back writes to its table while it is built (a few seconds per
million ledger rows): run it when few callbacks arrive, or prune first (docs/operations.md)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0011_checks_due_columns"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["received_at", "id"], name="ledger_received"),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["channel", "received_at"], name="ledger_channel_received"),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["whapi_channel_id", "received_at"], name="ledger_whapi_id_received"),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["outcome", "received_at"], name="ledger_outcome_received"),
        ),
        migrations.AddIndex(
            model_name="channelevent",
            index=models.Index(fields=["channel", "at"], name="timeline_channel_at"),
        ),
        migrations.AddIndex(
            model_name="channel",
            index=models.Index(fields=["active_till"], name="channel_active_till"),
        ),
        migrations.AddIndex(
            model_name="channel",
            index=models.Index(condition=models.Q(("status_stale", True)), fields=["state"], name="channel_stale"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="received_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="channel",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="webhook_events",
                to="channels_app.channel",
            ),
        ),
        migrations.AlterField(
            model_name="channelevent",
            name="channel",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="timeline",
                to="channels_app.channel",
            ),
        ),
    ]
