"""Background tasks now carry the names of the operations they run (channels_app.tasks): schedules
written before, periodic or one-off (a configuration after init, a follow-up check), are moved to
the new names so that none of them is lost on upgrade."""

from django.db import migrations

RENAMED = {
    "pump_create_queue": "create_queue_pump",
    "configure_channel": "channel_configure",
    "reconcile_channel": "channel_reconcile",
    "check_channel_health": "channel_health_check",
    "verify_channel_settings": "channel_settings_verify",
    "poll_health": "health_poll",
    "verify_settings": "settings_drift_check",
    "run_bulk_job": "bulk_job_run",
    "sync_whapi": "whapi_sync",
}
# One-off schedules of a channel were named "configure-12", "reconcile-12" or, for follow-ups,
# after their task ("check_channel_health-12"); now always "<task>-<channel id>".
NAME_PREFIXES = {**RENAMED, "configure": "channel_configure", "reconcile": "channel_reconcile"}
PREFIX = "channels_app.tasks."


def rename(apps, schema_editor, funcs, prefixes):
    schedule = apps.get_model("django_q", "Schedule")
    for old, new in funcs.items():
        schedule.objects.filter(func=PREFIX + old).update(func=PREFIX + new)
    for old, new in prefixes.items():
        for row in schedule.objects.filter(name__regex=rf"^{old}-[0-9]+$"):
            schedule.objects.filter(pk=row.pk).update(name=new + row.name[len(old) :])


def forwards(apps, schema_editor):
    rename(apps, schema_editor, RENAMED, NAME_PREFIXES)


def backwards(apps, schema_editor):
    old_names = {"channel_configure": "configure", "channel_reconcile": "reconcile"}
    old_names |= {new: old for old, new in RENAMED.items() if new not in old_names}
    rename(apps, schema_editor, {new: old for old, new in RENAMED.items()}, old_names)


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0005_ledger_whapi_channel_id_not_indexed"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
