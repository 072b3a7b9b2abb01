"""Actions on a selection of channels: each runs as a background bulk job with an outcome per
channel, asks for input or confirmation first where it needs it, finishes the rest when some
fail, and can retry the failed ones."""

import json

import pytest
import responses

from channels_app import bulk_jobs
from channels_app.models import AuditLog, BulkJob, Channel
from tests.admin_support import CHANNEL_PERMS, GATE, PARTNER, login_as, messages_of, url, whapi_error
from tests.conftest import make_channel

pytest_plugins = ["tests.admin_fixtures"]


@pytest.fixture
def two(project):
    return [
        make_channel(project, name="good", whapi_id="GOODGO-00001"),
        make_channel(project, name="bad", whapi_id="BADBAD-00001"),
    ]


def run_action(client, action: str, channels, **extra):
    data = {"action": action, "index": "0", "_selected_action": [c.pk for c in channels], **extra}
    return client.post(url("channel_changelist"), data)


def run_job(job: BulkJob) -> BulkJob:
    bulk_jobs.bulk_job_run(job.pk)
    return BulkJob.objects.get(pk=job.pk)


def outcomes(job: BulkJob) -> dict[str, str]:
    return dict(job.items.values_list("channel__name", "status"))


def test_a_bulk_restart_runs_in_the_background_and_finishes_the_rest(
    staff_client, two, whapi, enqueued, django_capture_on_commit_callbacks
):
    whapi.add(responses.POST, f"{PARTNER}/channels/GOODGO-00001/restart", json={"success": True})
    whapi.add(responses.POST, f"{PARTNER}/channels/BADBAD-00001/restart", **whapi_error(404, "Channel not found"))
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(staff_client, "bulk_restart", two, confirm="yes")
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("bulkjob_change", job.pk)
    assert "started in the background for 2 channels" in messages_of(response)[0]
    assert ("bulk_job_run", (job.pk,)) in enqueued
    assert not whapi.calls  # nothing ran in the request

    pending = staff_client.get(url("bulkjob_change", job.pk)).content.decode()
    assert "2 pending" in pending and 'http-equiv="refresh"' in pending

    job = run_job(job)
    assert outcomes(job) == {"good": "ok", "bad": "failed"}
    text = staff_client.get(url("bulkjob_change", job.pk)).content.decode()
    assert "1 done" in text and "1 failed" in text
    assert "bad (BADBAD-00001): Whapi could not restart the channel: Channel not found" in text
    assert "Retry the 1 failed" in text
    assert 'http-equiv="refresh"' not in text


def test_retrying_the_failed_ones_starts_a_job_for_them_only(staff_client, two, whapi):
    whapi.add(responses.POST, f"{PARTNER}/channels/GOODGO-00001/restart", json={"success": True})
    whapi.add(responses.POST, f"{PARTNER}/channels/BADBAD-00001/restart", **whapi_error(503, "Busy"))
    run_action(staff_client, "bulk_restart", two, confirm="yes")
    job = run_job(BulkJob.objects.get())
    response = staff_client.post(url("bulkjob_retry", job.pk))
    retry = BulkJob.objects.exclude(pk=job.pk).get()
    assert response["Location"] == url("bulkjob_change", retry.pk)
    assert retry.retry_of == job
    assert list(retry.items.values_list("channel__name", flat=True)) == ["bad"]
    assert messages_of(response)[-1] == f"Retrying the 1 failed channel as job #{retry.pk}."


def test_extend_asks_for_days_and_comment_before_starting(staff_client, two, whapi):
    first = run_action(staff_client, "bulk_extend", two)
    assert first.status_code == 200
    text = first.content.decode()
    assert "runs in the background for 2 channels" in text and "good (GOODGO-00001)" in text
    assert not BulkJob.objects.exists()

    invalid = run_action(staff_client, "bulk_extend", two, confirm="yes", days="abc", comment="")
    assert invalid.status_code == 200 and not BulkJob.objects.exists()

    response = run_action(staff_client, "bulk_extend", two, confirm="yes", days="30", comment="invoice 42")
    job = BulkJob.objects.get()
    assert response["Location"] == url("bulkjob_change", job.pk)
    assert (job.action, job.params) == ("extend", {"days": 30, "comment": "invoice 42"})
    for whapi_id in ("GOODGO-00001", "BADBAD-00001"):
        whapi.add(responses.POST, f"{PARTNER}/channels/{whapi_id}/extend", json={"success": True})
        whapi.add(responses.GET, f"{PARTNER}/channels/{whapi_id}", **whapi_error(500, "down"))
    job = run_job(job)
    assert set(outcomes(job).values()) == {"ok"}
    sent = [json.loads(call.request.body) for call in whapi.calls if call.request.method == "POST"]
    assert sent == [{"days": 30, "comment": "invoice 42"}] * 2
    assert AuditLog.objects.filter(action="channel.extend", ok=True).count() == 2
    assert "Extend (30 days: invoice 42)" in staff_client.get(url("bulkjob_changelist")).content.decode()


def test_select_across_keeps_the_filter(staff_client, project, whapi):
    make_channel(project, name="error one", whapi_id="ERRORE-00001", state=Channel.State.ERROR)
    make_channel(project, name="fine", whapi_id="FINEFI-00001")
    data = {"action": "bulk_mode", "index": "0", "select_across": "1", "_selected_action": ["0"]}
    first = staff_client.post(url("channel_changelist") + "?state__exact=error", data)
    assert first.context["channel_count"] == 1
    staff_client.post(url("channel_changelist") + "?state__exact=error", {**data, "confirm": "yes", "mode": "live"})
    job = BulkJob.objects.get()
    assert (job.action, job.params) == ("mode", {"mode": "live"})
    assert list(job.items.values_list("channel__name", flat=True)) == ["error one"]


def test_delete_confirmation_says_the_days_go_back(staff_client, two, whapi):
    text = run_action(staff_client, "bulk_delete", two).content.decode()
    assert "Unused days go back to the partner balance." in text
    assert not BulkJob.objects.exists()
    run_action(staff_client, "bulk_delete", two, confirm="yes")
    for whapi_id in ("GOODGO-00001", "BADBAD-00001"):
        whapi.add(responses.DELETE, f"{PARTNER}/channels/{whapi_id}", json={"success": True})
    job = run_job(BulkJob.objects.get())
    assert set(outcomes(job).values()) == {"ok"}
    assert set(Channel.objects.values_list("state", flat=True)) == {"deleted"}


def test_logout_needs_confirmation_and_each_number_is_logged_out(staff_client, project, whapi):
    channel = make_channel(project, state=Channel.State.CONNECTED, connected_number="14155550123")
    run_action(staff_client, "bulk_logout", [channel])
    assert not BulkJob.objects.exists()
    run_action(staff_client, "bulk_logout", [channel], confirm="yes")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    job = run_job(BulkJob.objects.get())
    assert outcomes(job) == {"Shop bot": "ok"}
    assert Channel.objects.get(pk=channel.pk).state == Channel.State.DISCONNECTED


@pytest.mark.parametrize("action", ["bulk_configure", "bulk_refresh"])
def test_operating_actions_start_at_once(staff_client, two, action):
    response = run_action(staff_client, action, two)
    assert response.status_code == 302
    assert BulkJob.objects.get().action == action.removeprefix("bulk_")


def test_a_bulk_restart_asks_first_and_says_what_a_restart_does(staff_client, two):
    response = run_action(staff_client, "bulk_restart", two)
    assert response.status_code == 200
    assert "Whapi restarts each channel" in response.content.decode()
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    ("action", "permission"),
    [
        ("bulk_configure", "operate_channel"),
        ("bulk_restart", "operate_channel"),
        ("bulk_extend", "extend_channel"),
        ("bulk_mode", "change_mode"),
        ("bulk_logout", "logout_number"),
        ("bulk_delete", "delete_in_whapi"),
    ],
)
def test_actions_are_hidden_and_refused_without_their_permission(client, django_user_model, two, action, permission):
    login_as(client, django_user_model, "sam", "view_channel", *[p for p in CHANNEL_PERMS if p != permission])
    offered = [
        name for name, _ in client.get(url("channel_changelist")).context["action_form"].fields["action"].choices
    ]
    assert action not in offered
    response = run_action(client, action, two, confirm="yes", days="1", comment="x", mode="live")
    assert response.status_code in (200, 302)
    assert not BulkJob.objects.exists()


def test_a_viewer_sees_no_actions_at_all(client, django_user_model, two):
    login_as(client, django_user_model, "viewer", "view_channel")
    response = client.get(url("channel_changelist"))
    assert response.context["action_form"] is None


def test_retry_needs_the_actions_permission(client, django_user_model, two, superuser):
    job = bulk_jobs.bulk_job_start(action="delete", channel_ids=[two[0].pk], actor=superuser)
    job.items.update(status="failed", message="x")
    BulkJob.objects.filter(pk=job.pk).update(status="done")
    login_as(client, django_user_model, "sam", "view_channel", "operate_channel")
    assert client.get(url("bulkjob_change", job.pk)).status_code == 200  # may see jobs
    assert "Retry the 1 failed" not in client.get(url("bulkjob_change", job.pk)).content.decode()
    assert client.post(url("bulkjob_retry", job.pk)).status_code == 403
    assert BulkJob.objects.count() == 1
