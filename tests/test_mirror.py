"""Mirroring Whapi (`sync_whapi`), with Whapi mocked at the HTTP seam."""

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone

from channels_app.models import Channel, Project
from tests.conftest import make_channel, remote_channel
from tests.test_pipeline import listing

PARTNER = "https://manager.whapi.test"


def test_sync_mirrors_projects_and_channels(project, whapi, capsys):
    whapi.add(
        responses.GET,
        f"{PARTNER}/projects",
        json={
            "projects": [
                {
                    "id": project.whapi_id,
                    "name": "Renamed",
                    "creationTS": 1712598267389,
                    "ownerId": "o" * 28,
                    "users": [],
                },
                {
                    "id": "A" * 20,
                    "name": "Default",
                    "isDefault": True,
                    "creationTS": 1712598267389,
                    "ownerId": "o" * 28,
                    "users": [],
                },
            ],
            "count": 2,
            "total": 2,
            "offset": 0,
        },
    )
    known = make_channel(project)
    gone = make_channel(project, whapi_id="GONEGO-00001", name="gone")
    unlisted = make_channel(project, whapi_id="LATEAD-00001", name="adopted after the list was read")
    whapi.add(responses.GET, f"{PARTNER}/channels/GONEGO-00001", status=404, json={"error": {"message": "Not found"}})
    whapi.add(responses.GET, f"{PARTNER}/channels/LATEAD-00001", json=remote_channel("adopted", "LATEAD-00001"))
    waiting = Channel.objects.create(project=project, name="lost", state=Channel.State.CREATING)
    whapi.add(
        responses.GET,
        f"{PARTNER}/channels/list",
        body=listing(
            remote_channel("Shop bot", known.whapi_id, mode="live"),
            remote_channel(f"lost [{waiting.creation_marker}]", "LOSTLO-00001"),
            remote_channel("Made in the panel", "PANELP-00001"),
        ),
    )
    call_command("sync_whapi")

    assert Project.objects.get(pk=project.pk).name == "Renamed"
    assert Project.objects.get(whapi_id="A" * 20).is_default
    assert Channel.objects.get(pk=known.pk).mode == "live"
    assert Channel.objects.get(pk=waiting.pk).whapi_id == "LOSTLO-00001"
    imported = Channel.objects.get(whapi_id="PANELP-00001")
    assert imported.project == project  # its Whapi project is known; customer follows the project
    # Its health is asked by the next checks sweep; the channel adopted after a lost answer, after its init delay.
    assert imported.health_check_due_at <= timezone.now()
    assert Channel.objects.get(pk=waiting.pk).health_check_due_at == Channel.objects.get(pk=waiting.pk).init_until
    assert Channel.objects.get(pk=gone.pk).state == "deleted"
    assert Channel.objects.get(pk=unlisted.pk).state == "waiting_scan"  # Whapi still has it
    assert "1 imported, 1 gone" in capsys.readouterr().out


def test_sync_reports_whapi_failure(db, whapi):
    from django.core.management.base import CommandError

    whapi.add(responses.GET, f"{PARTNER}/projects", status=401, json={"error": {"code": 401, "message": "Bad token"}})
    with pytest.raises(CommandError, match="Bad token"):
        call_command("sync_whapi")


def test_a_channel_another_sync_found_gone_meanwhile_is_told_deleted_once(project, whapi):
    from channels_app.mirror import channels_sync
    from channels_app.status import channel_update

    gone = make_channel(project, whapi_id="GONEGO-00001", name="gone")

    def another_sync_marks_it_first(request):
        channel_update(Channel.objects.get(pk=gone.pk), state="deleted", detail="no longer exists in Whapi")
        return 404, {}, '{"error": {"message": "Not found"}}'

    whapi.add(responses.GET, f"{PARTNER}/channels/list", body=listing())
    whapi.add_callback(responses.GET, f"{PARTNER}/channels/GONEGO-00001", callback=another_sync_marks_it_first)
    assert channels_sync()["gone"] == 0
    assert list(gone.timeline.values_list("to_state", flat=True)) == ["deleted"]
