"""When a channel's health and its webhook settings are next checked become columns of the channel,
swept by one periodic task (`checks_sweep`), instead of one django-q2 schedule per follow-up and
two periodic polls. Pending follow-up schedules become due columns, so none is lost on upgrade."""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

PREFIX = "channels_app.tasks."
PRESENT_IN_WHAPI = (
    "initializing",
    "configuring",
    "waiting_scan",
    "connected",
    "disconnected",
    "error",
    "stopped",
    "expired",
)
LIVE = ("waiting_scan", "connected", "disconnected")
QUIET_TOO_LONG = timedelta(minutes=15)
SETTINGS_RECHECK = timedelta(hours=6)


def forwards(apps, schema_editor):
    channel_model = apps.get_model("channels_app", "Channel")
    schedule = apps.get_model("django_q", "Schedule")
    now = timezone.now()
    present = channel_model.objects.filter(state__in=PRESENT_IN_WHAPI, whapi_id__isnull=False)
    for pk, confirmed, init_until in present.values_list("pk", "last_confirmed_at", "init_until").iterator():
        due = max(confirmed + QUIET_TOO_LONG if confirmed else now, init_until or now)
        channel_model.objects.filter(pk=pk).update(health_check_due_at=due)
    live = present.filter(state__in=LIVE)
    for pk, verified in live.values_list("pk", "webhooks_verified_at").iterator():
        channel_model.objects.filter(pk=pk).update(
            settings_check_due_at=verified + SETTINGS_RECHECK if verified else now
        )
    for task, column in (
        ("channel_health_check", "health_check_due_at"),
        ("channel_settings_verify", "settings_check_due_at"),
    ):
        pending = schedule.objects.filter(name__regex=rf"^{task}-[0-9]+$")
        ids = [int(name.rsplit("-", 1)[1]) for name in pending.values_list("name", flat=True)]
        present.filter(pk__in=ids).update(**{column: now})
        pending.delete()
    schedule.objects.filter(name="settings-drift").delete()
    schedule.objects.filter(name="health-poll").update(name="checks", func=PREFIX + "checks_sweep")


def backwards(apps, schema_editor):
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.filter(name="checks").update(name="health-poll", func=PREFIX + "health_poll")


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0010_previous_webhook_secret"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="health_check_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="channel",
            name="settings_check_due_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="channel",
            index=models.Index(fields=["health_check_due_at"], name="channel_health_check_due"),
        ),
        migrations.AddIndex(
            model_name="channel",
            index=models.Index(fields=["settings_check_due_at"], name="channel_settings_check_due"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
