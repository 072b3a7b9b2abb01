"""Bulk jobs: one staff action over many channels in the background, an outcome per channel."""

import pytest
import responses

from channels_app import bulk_jobs, tasks
from channels_app.actions import ActionError
from channels_app.models import BulkJob
from tests.conftest import make_channel

PARTNER = "https://manager.whapi.test"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", is_staff=True)


def test_a_bulk_job_finishes_the_rest_when_some_fail(
    project, whapi, staff, enqueued, django_capture_on_commit_callbacks
):
    good = make_channel(project, whapi_id="GOODGO-00001")
    bad = make_channel(project, whapi_id="BADBAD-00001")
    whapi.add(responses.POST, f"{PARTNER}/channels/GOODGO-00001/restart", json={"success": True})
    whapi.add(
        responses.POST,
        f"{PARTNER}/channels/BADBAD-00001/restart",
        status=404,
        json={"error": {"message": "Channel not found"}},
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_jobs.bulk_job_start(action="restart", channel_ids=[bad.pk, good.pk], actor=staff)
    assert ("bulk_job_run", (job.pk,)) in enqueued
    tasks.bulk_job_run(job.pk)  # what the worker runs for the enqueued task
    outcomes = dict(job.items.values_list("channel_id", "status"))
    assert outcomes == {bad.pk: "failed", good.pk: "ok"}
    assert "Channel not found" in job.items.get(channel=bad).message
    assert BulkJob.objects.get(pk=job.pk).status == "done"

    retry = bulk_jobs.bulk_job_retry_failed(job, actor=staff)
    assert list(retry.items.values_list("channel_id", flat=True)) == [bad.pk]


def test_a_bulk_extension_whose_answer_was_lost_is_not_retried(project, whapi, staff):
    import requests

    channel = make_channel(project, whapi_id="LOSTAN-00001")
    whapi.add(
        responses.POST,
        f"{PARTNER}/channels/LOSTAN-00001/extend",
        body=requests.exceptions.ReadTimeout("read timed out"),
    )
    job = bulk_jobs.bulk_job_start(
        action="extend", channel_ids=[channel.pk], params={"days": 30, "comment": "x"}, actor=staff
    )
    bulk_jobs.bulk_job_run(job.pk)
    item = job.items.get()
    assert item.status == "unknown"
    with pytest.raises(ActionError, match="Nothing failed"):
        bulk_jobs.bulk_job_retry_failed(job, actor=staff)


def test_a_redelivered_bulk_job_never_repeats_an_item(project, whapi, staff):
    done = make_channel(project, whapi_id="DONEDO-00001")
    interrupted = make_channel(project, whapi_id="HALFWA-00001")
    waiting = make_channel(project, whapi_id="WAITIN-00001")
    job = bulk_jobs.bulk_job_start(
        action="extend",
        channel_ids=[done.pk, interrupted.pk, waiting.pk],
        params={"days": 30, "comment": "x"},
        actor=staff,
    )
    # A first run finished one item and was stopped in the middle of the next.
    job.items.filter(channel=done).update(status="ok")
    job.items.filter(channel=interrupted).update(status="running")
    whapi.add(responses.POST, f"{PARTNER}/channels/WAITIN-00001/extend", json={"success": True})
    whapi.add(responses.GET, f"{PARTNER}/channels/WAITIN-00001", status=500, body="down")
    bulk_jobs.bulk_job_run(job.pk)
    outcomes = dict(job.items.values_list("channel__whapi_id", "status"))
    assert outcomes == {"DONEDO-00001": "ok", "HALFWA-00001": "unknown", "WAITIN-00001": "ok"}
    assert [call.request.url.split("/")[-2] for call in whapi.calls if call.request.method == "POST"] == [
        "WAITIN-00001"
    ]
