"""The provisioning pipeline with Whapi mocked at the HTTP seam: request, budget, create (never
twice), reconcile, adopt. (Configuring: test_configure.py; health: test_status.py; sync: test_mirror.py.)"""

import json
from datetime import timedelta

import pytest
import requests
import responses
import time_machine
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from channels_app import budget, pipeline, tasks
from channels_app.models import Channel, CreateAttempt, CreateBudget
from channels_app.pipeline import RequestRefused, channel_queue, create_queue_pump
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel, remote_channel

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


def echo_create(counter: list | None = None):
    """A PUT /channels callback answering with a channel named as requested, new id each time."""
    counter = counter if counter is not None else []

    def callback(request):
        body = json.loads(request.body)
        counter.append(body)
        channel_id = f"SHAZAM-{len(counter):05d}"
        return 200, {}, json.dumps(remote_channel(body["name"], channel_id))

    return callback


def creates(whapi) -> list:
    return [call for call in whapi.calls if call.request.method == "PUT" and call.request.url.endswith("/channels")]


def listing(*channels) -> str:
    return json.dumps({"channels": list(channels), "count": len(channels), "total": len(channels), "offset": 0})


# ------------------------------------------------------------------------------------------------
# Requesting
# ------------------------------------------------------------------------------------------------
def test_a_request_is_recorded_queued_and_returns_at_once(
    project, alice, whapi, django_capture_on_commit_callbacks, enqueued
):
    with django_capture_on_commit_callbacks(execute=True):
        channel = channel_queue(project=project, name="Shop bot", requested_by=alice, source="customer")[0]
    assert channel.state == "queued"
    assert len(whapi.calls) == 0
    assert enqueued == [("create_queue_pump", ())]
    change = channel.timeline.get()
    assert (change.to_state, change.source) == ("queued", "customer")


def test_a_double_submitted_request_creates_one_channel(project):
    first = channel_queue(project=project, name="Shop bot", request_key="form-123")[0]
    second = channel_queue(project=project, name="Shop bot", request_key="form-123")[0]
    assert first.pk == second.pk
    assert Channel.objects.count() == 1


def test_a_second_submission_finds_the_first_channel_even_when_it_filled_the_quota(project, customer):
    customer.channel_quota = 1
    customer.save()
    first, recorded = channel_queue(project=project, name="Shop bot", request_key="form-123")
    second, again = channel_queue(project=project, name="Shop bot", request_key="form-123")
    assert (second.pk, recorded, again) == (first.pk, True, False)


def test_over_quota_nothing_is_recorded(project, customer):
    customer.channel_quota = 1
    customer.save()
    channel_queue(project=project, name="one")[0]
    with pytest.raises(RequestRefused, match="1 of its 1 channel:"):
        channel_queue(project=project, name="two")[0]
    assert Channel.objects.count() == 1


def test_deleted_channels_do_not_count_against_the_quota(project, customer):
    customer.channel_quota = 1
    customer.save()
    make_channel(project, state=Channel.State.DELETED)
    assert channel_queue(project=project, name="two")[0].state == "queued"


@pytest.mark.parametrize("name", ["", "   ", "x" * 151])
def test_a_bad_name_is_refused(project, name):
    with pytest.raises(RequestRefused):
        channel_queue(project=project, name=name)[0]
    assert not Channel.objects.exists()


def test_request_channel_command_prints_public_id_state_and_position(project, capsys):
    call_command("request_channel", "--project", project.whapi_id, "--name", "From CLI")
    channel = Channel.objects.get()
    out = capsys.readouterr().out
    assert str(channel.code) in out
    assert "queued position 1" in out


def test_request_channel_command_names_an_unknown_project(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="sync_whapi"):
        call_command("request_channel", "--project", "nope", "--name", "x")


# ------------------------------------------------------------------------------------------------
# Creating
# ------------------------------------------------------------------------------------------------
def test_the_pump_creates_the_channel_and_schedules_configuration_after_init(project, whapi, settings):
    settings.WHAPI_INIT_DELAY = 90
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    channel = channel_queue(project=project, name="Shop bot")[0]

    assert create_queue_pump() == 1

    body = json.loads(creates(whapi)[0].request.body)
    assert body["projectId"] == project.whapi_id
    assert body["name"] == f"Shop bot [{channel.creation_marker}]"
    assert creates(whapi)[0].request.headers["Authorization"] == "Bearer test-partner-token"
    channel.refresh_from_db()
    assert channel.state == "initializing"
    assert (channel.whapi_id, channel.token, channel.mode) == ("SHAZAM-00001", CHANNEL_TOKEN, "trial")
    assert channel.active_till > timezone.now() + timedelta(days=5)
    expected = channel.whapi_created_at + timedelta(seconds=90)
    assert abs((channel.init_until - expected).total_seconds()) < 1
    schedule = Schedule.objects.get(name=f"channel_configure-{channel.pk}")
    assert schedule.func == "channels_app.tasks.channel_configure"
    assert schedule.next_run == channel.init_until
    assert schedule.args == repr((channel.pk,))  # ids only: no token in task arguments
    assert CreateAttempt.objects.get().outcome == "created"


def test_running_the_pump_twice_buys_one_channel(project, whapi):
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    channel_queue(project=project, name="Shop bot")[0]
    tasks.create_queue_pump()
    tasks.create_queue_pump()
    assert len(creates(whapi)) == 1


def test_the_budget_holds_back_requests_in_order_until_a_slot_frees(project, whapi, settings):
    settings.WHAPI_CREATE_BUDGET, settings.WHAPI_CREATE_WINDOW = 2, 600
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        channels = [channel_queue(project=project, name=f"c{i}")[0] for i in range(3)]
        assert create_queue_pump() == 2
        assert budget.queue_position(Channel.objects.get(pk=channels[2].pk)) == 1
        wakeup = Schedule.objects.get(name="create-queue-wakeup")
        assert wakeup.next_run == start + timedelta(seconds=600)
        assert budget.queue_eta(1) == start + timedelta(seconds=600)
        assert budget.status().used == 2
    with time_machine.travel(start + timedelta(seconds=599), tick=False):
        assert create_queue_pump() == 0
    with time_machine.travel(start + timedelta(seconds=601), tick=False):
        assert create_queue_pump() == 1
    names = [json.loads(call.request.body)["name"].split(" [")[0] for call in creates(whapi)]
    assert names == ["c0", "c1", "c2"]


def test_queue_eta_counts_windows_ahead(project, settings):
    settings.WHAPI_CREATE_BUDGET, settings.WHAPI_CREATE_WINDOW = 2, 100
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        CreateAttempt.objects.create(at=now - timedelta(seconds=30))
        CreateAttempt.objects.create(at=now - timedelta(seconds=10))
        assert budget.queue_eta(1) == now + timedelta(seconds=70)
        assert budget.queue_eta(2) == now + timedelta(seconds=90)
        assert budget.queue_eta(3) == now + timedelta(seconds=170)


def test_a_whapi_429_requeues_and_honours_retry_after(project, whapi):
    whapi.add(
        responses.PUT,
        f"{PARTNER}/channels",
        json={"error": {"code": 429, "message": "Too many requests"}},
        status=429,
        headers={"Retry-After": "120"},
    )
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        channel = channel_queue(project=project, name="Shop bot")[0]
        create_queue_pump()
        channel.refresh_from_db()
        assert channel.state == "queued"
        assert "creation limit" in channel.last_error
        assert CreateBudget.objects.get().blocked_until == start + timedelta(seconds=120)
        assert Schedule.objects.get(name="create-queue-wakeup").next_run == start + timedelta(seconds=120)
        assert create_queue_pump() == 0  # still blocked: no second 429 from our own traffic
    assert len(creates(whapi)) == 1
    whapi.replace(
        responses.PUT, f"{PARTNER}/channels", body=json.dumps(remote_channel(f"Shop bot [{channel.creation_marker}]"))
    )
    with time_machine.travel(start + timedelta(seconds=121), tick=False):
        assert create_queue_pump() == 1
    channel.refresh_from_db()
    assert channel.state == "initializing"
    assert [e.to_state for e in channel.timeline.order_by("at", "id")] == [
        "queued",
        "creating",
        "queued",
        "creating",
        "initializing",
    ]


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"error": {"code": 500, "message": "Internal"}}},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        {"body": requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected")},
    ],
    ids=["500", "read-timeout", "reset"],
)
def test_a_lost_create_answer_adopts_the_channel_whapi_made(project, whapi, failure):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(responses.PUT, f"{PARTNER}/channels", **failure)
    mine = remote_channel(f"Shop bot [{channel.creation_marker}]", "MANTIS-PF298")
    other = remote_channel("Someone else [pp-0000000000]", "MANTIS-XXXXX")
    whapi.add(responses.GET, f"{PARTNER}/channels/list/{project.whapi_id}", body=listing(other, mine))

    create_queue_pump()

    channel.refresh_from_db()
    assert (channel.state, channel.whapi_id) == ("initializing", "MANTIS-PF298")
    assert len(creates(whapi)) == 1


def test_a_create_shown_not_to_have_happened_is_tried_again(project, whapi):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(responses.PUT, f"{PARTNER}/channels", body=requests.exceptions.ReadTimeout("timed out"))
    whapi.add(responses.GET, f"{PARTNER}/channels/list/{project.whapi_id}", body=listing())
    create_queue_pump()
    channel.refresh_from_db()
    assert channel.state == "queued"
    assert "did not create" in channel.last_error

    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    with time_machine.travel(timezone.now() + timedelta(seconds=20), tick=False):
        create_queue_pump()
    channel.refresh_from_db()
    assert channel.state == "initializing"
    assert len(creates(whapi)) == 2


def test_while_whapi_cannot_confirm_the_channel_is_never_created_again(project, whapi):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(responses.PUT, f"{PARTNER}/channels", status=502, body="Bad gateway")
    whapi.add(responses.GET, f"{PARTNER}/channels/list/{project.whapi_id}", status=503, body="busy")
    create_queue_pump()
    channel.refresh_from_db()
    assert channel.state == "creating"
    assert Schedule.objects.filter(name=f"channel_reconcile-{channel.pk}").exists()

    for _ in range(pipeline.MAX_RECONCILE_ATTEMPTS):
        tasks.channel_reconcile(channel.pk)
        create_queue_pump()
    channel.refresh_from_db()
    assert channel.state == "error"
    assert "check Whapi's panel" in channel.last_error
    assert len(creates(whapi)) == 1


def test_a_refused_create_ends_in_error_with_whapis_reason(project, whapi):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(
        responses.PUT, f"{PARTNER}/channels", status=404, json={"error": {"code": 404, "message": "Project not found"}}
    )
    create_queue_pump()
    channel.refresh_from_db()
    assert channel.state == "error"
    assert "Project not found" in channel.last_error


def test_an_unreachable_whapi_is_retried_a_bounded_number_of_times(project, whapi):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(responses.PUT, f"{PARTNER}/channels", body=requests.exceptions.ConnectTimeout("connect timeout"))
    moment = timezone.now()
    for _ in range(pipeline.MAX_CREATE_ATTEMPTS + 2):
        with time_machine.travel(moment, tick=False):
            create_queue_pump()
        moment += timedelta(minutes=11)
    channel.refresh_from_db()
    assert channel.state == "error"
    assert "gave up after 5 attempts" in channel.last_error
    assert len(creates(whapi)) == pipeline.MAX_CREATE_ATTEMPTS


def test_a_worker_killed_after_sending_the_create_leads_to_one_channel(project, whapi, monkeypatch):
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(pipeline, "channel_adopt", killed)
    with pytest.raises(SystemExit):
        create_queue_pump()
    monkeypatch.undo()
    channel.refresh_from_db()
    assert channel.state == "creating"

    made = json.loads(creates(whapi)[0].request.body)["name"]
    whapi.add(
        responses.GET, f"{PARTNER}/channels/list/{project.whapi_id}", body=listing(remote_channel(made, "SHAZAM-00001"))
    )
    create_queue_pump()  # redelivered at once: the claim is fresh, so nothing happens
    assert Channel.objects.get(pk=channel.pk).state == "creating"
    with time_machine.travel(timezone.now() + pipeline.STALE_CREATING + timedelta(seconds=1), tick=False):
        create_queue_pump()
    channel.refresh_from_db()
    assert (channel.state, channel.whapi_id) == ("initializing", "SHAZAM-00001")
    assert len(creates(whapi)) == 1


# ------------------------------------------------------------------------------------------------
# Configuring
# ------------------------------------------------------------------------------------------------
def test_a_long_pump_run_hands_over_to_a_fresh_task(project, whapi, enqueued):
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    for index in range(3):
        channel_queue(project=project, name=f"c{index}")[0]
    assert create_queue_pump(limit=2) == 2
    assert enqueued == [("create_queue_pump", ())]
    assert Channel.objects.filter(state="queued").count() == 1


def test_a_channel_that_appears_late_is_adopted_before_a_second_create(project, whapi):
    """Whapi finished a create whose answer was lost only after our first look: no second channel."""
    channel = channel_queue(project=project, name="Shop bot")[0]
    whapi.add(responses.PUT, f"{PARTNER}/channels", body=requests.exceptions.ReadTimeout("timed out"))
    listings = [listing(), listing(remote_channel(f"Shop bot [{channel.creation_marker}]", "LATELA-00001"))]
    whapi.add_callback(
        responses.GET,
        f"{PARTNER}/channels/list/{project.whapi_id}",
        callback=lambda request: (200, {}, listings.pop(0)),
    )
    create_queue_pump()
    assert Channel.objects.get(pk=channel.pk).state == "queued"
    with time_machine.travel(timezone.now() + timedelta(seconds=20), tick=False):
        create_queue_pump()
    channel.refresh_from_db()
    assert (channel.state, channel.whapi_id) == ("initializing", "LATELA-00001")
    assert len(creates(whapi)) == 1


def test_a_channel_created_for_a_request_deleted_meanwhile_is_deleted_in_whapi(project, whapi):
    channel = Channel.objects.create(project=project, name="withdrawn", state=Channel.State.DELETED)
    whapi.add(responses.DELETE, f"{PARTNER}/channels/SHAZAM-3HDYQ", json={"success": True})
    pipeline.channel_adopt(channel, pipeline.WhapiChannel.from_payload(remote_channel("withdrawn")), detail="late")
    channel.refresh_from_db()
    assert (channel.state, channel.whapi_id) == ("deleted", "SHAZAM-3HDYQ")
    assert [call.request.method for call in whapi.calls] == ["DELETE"]
    assert not Schedule.objects.filter(name=f"channel_configure-{channel.pk}").exists()


def test_a_pump_that_dies_mid_creation_holds_the_queue_up_for_its_lease_only(project, whapi):
    whapi.add_callback(responses.PUT, f"{PARTNER}/channels", callback=echo_create())
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        first, second = (channel_queue(project=project, name=name)[0] for name in ("first", "second"))
        # A pump takes the lease and dies during its creation: it never lets go, nothing runs its `finally`.
        dead = budget.pump_lease()
        assert dead.__enter__() is not None
        # The next request's pump finds the lease taken and plans to look again when it ends.
        assert create_queue_pump() == 0
        wakeup = Schedule.objects.get(name="create-queue-lease-ended")
        assert wakeup.next_run == start + budget.PUMP_LEASE + timedelta(seconds=1)
        assert wakeup.next_run - start <= timedelta(seconds=30)
    with time_machine.travel(wakeup.next_run, tick=False):
        assert create_queue_pump() == 2
    assert [Channel.objects.get(pk=c.pk).state for c in (first, second)] == ["initializing", "initializing"]
    # A pump that lets go of its lease leaves no wake-up behind it.
    assert not Schedule.objects.filter(name="create-queue-lease-ended").exists()
