"""The API's routes, one by one, with Whapi mocked at the HTTP seam (`responses`): each does what
the pages do, through the same actions, audited under the key that made the request."""

import base64
import json
from datetime import timedelta

import pytest
import responses
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import ApiKey
from channels_app import pipeline
from channels_app.models import AuditLog, Channel, ChannelEvent, CreateAttempt, HandoffLink, Project
from tests.api_support import ApiClient, make_key, problem
from tests.conftest import CHANNEL_TOKEN, GATE_URL, make_channel, remote_channel, whapi_fixture

pytestmark = pytest.mark.django_db

PARTNER = "https://manager.whapi.test"
GATE = GATE_URL.rstrip("/")


@pytest.fixture(autouse=True)
def _whapi_mocked(whapi):
    return whapi


@pytest.fixture
def key(customer) -> tuple[ApiKey, str]:
    return make_key(customer=customer)


@pytest.fixture
def api(key) -> ApiClient:
    return ApiClient(key[1])


def audited(action: str, key: ApiKey) -> AuditLog:
    entry = AuditLog.objects.get(action=action)
    assert (entry.source, entry.api_key, entry.actor) == ("api", key.prefix, None)
    assert entry.actor_label == key.audit_label
    return entry


def create(api: ApiClient, customer, body=None, **headers):
    return api.post(f"/api/v1/customers/{customer.code}/channels", body or {"name": "Support line"}, headers=headers)


# ------------------------------------------------------------------------------------------------
# Customers and projects
# ------------------------------------------------------------------------------------------------
def test_a_customer_key_sees_its_customer(api, customer, project, channel):
    listed = api.get("/api/v1/customers").json()
    assert listed == {
        "items": [{"code": str(customer.code), "name": "Acme Corp", "channel_quota": 5}],
        "next": None,
    }
    detail = api.get(f"/api/v1/customers/{customer.code}").json()
    assert detail["channels_in_use"] == 1
    projects = api.get(f"/api/v1/customers/{customer.code}/projects").json()
    assert projects == [{"id": project.whapi_id, "name": "Acme channels"}]


def test_a_partner_key_sees_every_customer_a_page_at_a_time(customer, charlie):
    from channels_app.models import Customer

    for index in range(3):
        Customer.objects.create(name=f"Zeta {index}")
    api = ApiClient(make_key()[1])
    first = api.get("/api/v1/customers", limit=3).json()
    assert [item["name"] for item in first["items"]] == ["Acme Corp", "Other Inc", "Zeta 0"]
    second = api.client.get(first["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
    assert [item["name"] for item in second["items"]] == ["Zeta 1", "Zeta 2"]
    assert second["next"] is None


# ------------------------------------------------------------------------------------------------
# The channel list
# ------------------------------------------------------------------------------------------------
def test_the_list_pages_filters_and_searches(api, customer, project):
    now = timezone.now()
    for index in range(5):
        make_channel(
            project,
            name=f"Line {index}",
            whapi_id=f"LINE{index}-00000",
            requested_at=now - timedelta(minutes=10 - index),
            state=Channel.State.CONNECTED if index % 2 else Channel.State.WAITING_SCAN,
            connected_number=f"4915112345{index}" if index % 2 else "",
        )
    make_channel(project, name="Gone", whapi_id="GONE0-00000", state=Channel.State.DELETED)
    path = f"/api/v1/customers/{customer.code}/channels"
    page = api.get(path, limit=2).json()
    assert [item["name"] for item in page["items"]] == ["Line 0", "Line 1"]
    names = [item["name"] for item in page["items"]]
    while page["next"]:
        page = api.client.get(page["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
        names += [item["name"] for item in page["items"]]
    assert names == [f"Line {index}" for index in range(5)]  # the deleted one is not listed

    connected = api.get(path, state="connected").json()["items"]
    assert [item["name"] for item in connected] == ["Line 1", "Line 3"]
    assert connected[0]["number"] == "+49151123451"
    both = api.client.get(
        f"{path}?state=connected&state=waiting_scan&limit=100", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert len(both.json()["items"]) == 5
    assert [item["name"] for item in api.get(path, q="+49 151 1234 53").json()["items"]] == ["Line 3"]
    assert [item["name"] for item in api.get(path, q="line 4").json()["items"]] == ["Line 4"]
    problem(api.get(path, state="nonsense"), 422, "invalid")
    problem(api.get(path, cursor="garbage"), 422, "invalid")
    assert [item["name"] for item in api.get(path, project=project.whapi_id, limit=1).json()["items"]] == ["Line 0"]
    problem(api.get(path, project="NOPE"), 422, "invalid")


def test_a_list_row_never_carries_a_secret(api, customer, channel):
    body = api.get(f"/api/v1/customers/{customer.code}/channels").content.decode()
    assert CHANNEL_TOKEN not in body
    assert channel.webhook_secret not in body


def test_the_lists_cost_does_not_grow_with_the_channels(api, customer, project):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"/api/v1/customers/{customer.code}/channels", limit=10).status_code == 200
        return len(captured)

    # Within one rate window (they start on the clock's minutes): a new window costs two queries more.
    with time_machine.travel(timezone.now().replace(second=20) + timedelta(minutes=1), tick=False):
        make_channel(project, whapi_id="FIRST-00000")
        queries()  # the key's first request of the window also writes "last used" and starts its count
        few = queries()
        for index in range(30):
            make_channel(project, name=f"More {index}", whapi_id=f"MORE{index:02d}-0000")
        assert queries() == few


# ------------------------------------------------------------------------------------------------
# Requesting a channel
# ------------------------------------------------------------------------------------------------
def test_a_request_is_queued_with_its_place_and_eta(api, key, customer, project, settings):
    settings.WHAPI_CREATE_BUDGET = 1
    CreateAttempt.objects.create(at=timezone.now() - timedelta(seconds=60))  # the budget is spent
    make_channel(project, name="Ahead", whapi_id=None, state=Channel.State.QUEUED)
    response = create(api, customer)
    assert response.status_code == 202
    body = response.json()
    channel = Channel.objects.get(code=body["code"])
    assert response["Location"] == f"https://portal.test/api/v1/channels/{channel.code}"  # PORTAL_BASE_URL
    assert (body["state"], body["name"], body["project"]["id"]) == ("queued", "Support line", project.whapi_id)
    assert body["queue"]["position"] == 2
    assert body["queue"]["eta_seconds"] > 0
    assert channel.timeline.get().source == ChannelEvent.Source.API
    entry = audited("channel.request", key[0])
    assert entry.customer == customer


def test_the_same_idempotency_key_gives_one_channel_and_one_whapi_create(api, customer, project, whapi):
    whapi.add(responses.PUT, f"{PARTNER}/channels", json=remote_channel("Support line"))
    first = create(api, customer, **{"Idempotency-Key": "order-42"})
    again = create(api, customer, **{"Idempotency-Key": "order-42"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["code"] == again.json()["code"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Channel.objects.count() == 1
    assert AuditLog.objects.filter(action="channel.request").count() == 1
    pipeline.create_queue_pump()
    pipeline.create_queue_pump()
    assert [call.request.method for call in whapi.calls] == ["PUT"]


def test_different_idempotency_keys_give_two_channels(api, customer, project):
    create(api, customer, **{"Idempotency-Key": "a"})
    create(api, customer, **{"Idempotency-Key": "b"})
    create(api, customer)
    assert Channel.objects.count() == 3


def test_an_idempotency_key_is_the_keys_own(api, customer, project):
    """Another API key sending the same Idempotency-Key makes its own channel."""
    other = ApiClient(make_key(customer=customer, name="other")[1])
    create(api, customer, **{"Idempotency-Key": "same"})
    create(other, customer, **{"Idempotency-Key": "same"})
    assert Channel.objects.count() == 2


def test_a_partner_key_reusing_an_idempotency_key_for_another_customer_is_refused(customer, project, charlie):
    from channels_app.models import Customer

    other = Customer.objects.get(name="Other Inc")
    Project.objects.create(whapi_id="OTHERPROJ", name="Theirs", customer=other)
    api = ApiClient(make_key()[1])
    assert create(api, customer, **{"Idempotency-Key": "k"}).status_code == 202
    problem(create(api, other, **{"Idempotency-Key": "k"}), 409, "idempotency-conflict")
    assert Channel.objects.count() == 1


def test_over_quota_it_is_409_and_nothing_is_queued(api, key, customer, project, enqueued):
    customer.channel_quota = 1
    customer.save()
    make_channel(project)
    body = problem(create(api, customer), 409, "quota-exceeded")
    assert "1 of its 1 channel" in body["detail"]
    assert Channel.objects.count() == 1
    assert not audited("channel.request", key[0]).ok


def test_the_project_is_needed_when_there_are_several(api, customer, project):
    Project.objects.create(whapi_id="SECONDPROJ", name="Second", customer=customer)
    body = problem(create(api, customer), 422, "invalid")
    assert body["errors"][0]["field"] == "project"
    ok = create(api, customer, {"name": "Two", "project": "SECONDPROJ"})
    assert ok.json()["project"]["id"] == "SECONDPROJ"
    problem(create(api, customer, {"name": "Two", "project": "OTHERPROJ"}), 422, "invalid")


def test_a_customer_without_a_project_is_told(api, customer):
    body = problem(create(api, customer), 422, "invalid")
    assert body["errors"] == [{"field": "project", "message": "This customer has no project yet."}]


def test_a_blank_name_is_a_field_error(api, customer, project):
    body = problem(create(api, customer, {"name": "   "}), 422, "invalid")
    assert body["errors"][0]["field"] == "name"


# ------------------------------------------------------------------------------------------------
# One channel
# ------------------------------------------------------------------------------------------------
def test_a_channel_reads_as_its_page_shows_it(api, customer, channel):
    body = api.get(f"/api/v1/channels/{channel.code}").json()
    assert body["code"] == str(channel.code)
    assert (body["state"], body["can_connect"], body["in_progress"]) == ("waiting_scan", True, True)
    assert body["customer"] == str(customer.code)
    assert (body["whapi_id"], body["api_url"], body["days_left"]) == ("MANTIS-M72HC", GATE_URL, 5)
    assert CHANNEL_TOKEN not in json.dumps(body)


def test_rename(api, key, channel, whapi):
    whapi.add(responses.PATCH, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    response = api.patch(f"/api/v1/channels/{channel.code}", {"name": "Sales"})
    assert response.json()["name"] == "Sales"
    assert Channel.objects.get(pk=channel.pk).name == "Sales"
    assert json.loads(whapi.calls[0].request.body)["name"] == "Sales"
    audited("channel.rename", key[0])
    problem(api.patch(f"/api/v1/channels/{channel.code}", {"name": ""}), 422, "invalid")


def test_delete(api, key, channel, whapi):
    channel.connected_number = "14155550123"
    channel.state = Channel.State.CONNECTED
    channel.save()
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    whapi.add(responses.DELETE, f"{PARTNER}/channels/{channel.whapi_id}", json={"success": True})
    response = api.delete(f"/api/v1/channels/{channel.code}")
    assert response.status_code == 204
    assert Channel.objects.get(pk=channel.pk).state == Channel.State.DELETED
    audited("channel.delete", key[0])
    problem(api.get(f"/api/v1/channels/{channel.code}"), 404, "not-found")


def test_a_queued_channel_is_withdrawn(api, project):
    queued = make_channel(project, whapi_id=None, state=Channel.State.QUEUED)
    assert api.delete(f"/api/v1/channels/{queued.code}").status_code == 204
    assert Channel.objects.get(pk=queued.pk).state == Channel.State.DELETED


def test_logout(api, key, channel, whapi):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_number="14155550123")
    whapi.add(responses.POST, f"{GATE}/users/logout", json={"success": True})
    body = api.post(f"/api/v1/channels/{channel.code}/logout").json()
    assert (body["state"], body["number"]) == ("disconnected", None)
    audited("channel.logout", key[0])


def test_restart_only_in_error(api, key, channel, whapi, enqueued, django_capture_on_commit_callbacks):
    problem(api.post(f"/api/v1/channels/{channel.code}/restart"), 409, "conflict")
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.ERROR, error_source="health")
    whapi.add(responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/restart", json={"success": True})
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/channels/{channel.code}/restart")
    assert response.status_code == 202
    assert ("channel_health_check", (channel.pk,)) in enqueued
    audited("channel.restart", key[0])


# ------------------------------------------------------------------------------------------------
# Connecting a phone
# ------------------------------------------------------------------------------------------------
def test_the_qr_as_png_or_base64(api, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_data_uri.json"))
    png = api.get(f"/api/v1/channels/{channel.code}/qr", headers={"Accept": "image/png"})
    assert (png.status_code, png["Content-Type"]) == (200, "image/png")
    assert png.content.startswith(b"\x89PNG")
    assert png["Cache-Control"] == "no-store"
    assert int(png["X-QR-Expires-In"]) > 0
    as_json = api.get(f"/api/v1/channels/{channel.code}/qr")
    body = as_json.json()
    assert base64.b64decode(body["base64"]) == png.content
    assert body["expires_in"] == int(png["X-QR-Expires-In"])
    assert as_json["Cache-Control"] == "no-store"


def test_no_qr_when_the_channel_cannot_be_linked(api, channel, whapi):
    Channel.objects.filter(pk=channel.pk).update(init_until=timezone.now() + timedelta(seconds=30))
    problem(api.get(f"/api/v1/channels/{channel.code}/qr"), 409, "conflict")
    assert not whapi.calls


def test_no_qr_once_a_number_is_linked(api, channel, whapi, enqueued, django_capture_on_commit_callbacks):
    whapi.add(responses.GET, f"{GATE}/users/login", status=409, json=whapi_fixture("error_409_authenticated.json"))
    with django_capture_on_commit_callbacks(execute=True):
        problem(api.get(f"/api/v1/channels/{channel.code}/qr"), 409, "conflict")
    assert ("channel_health_check", (channel.pk,)) in enqueued


def test_a_qr_being_prepared_asks_to_retry(api, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", json=whapi_fixture("gate_qr_waiting.json"))
    response = api.get(f"/api/v1/channels/{channel.code}/qr")
    problem(response, 503, "not-ready")
    assert response["Retry-After"] == "2"


def test_a_whapi_failure_on_the_qr_is_502(api, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login", status=500, json=whapi_fixture("error_500.json"))
    response = api.get(f"/api/v1/channels/{channel.code}/qr")
    problem(response, 502, "whapi-error")
    assert CHANNEL_TOKEN not in response.content.decode()


def test_pairing_code(api, key, channel, whapi):
    whapi.add(responses.GET, f"{GATE}/users/login/14155550123", json=whapi_fixture("gate_login_code.json"))
    response = api.post(f"/api/v1/channels/{channel.code}/pairing-code", {"phone": "+1 (415) 555-0123"})
    assert response.json() == {"code": "ABC-123"}
    audited("channel.pairing_code", key[0])
    body = problem(api.post(f"/api/v1/channels/{channel.code}/pairing-code", {"phone": "123"}), 422, "invalid")
    assert body["errors"][0]["field"] == "phone"
    assert len(whapi.calls) == 1


def test_handoff_create_and_revoke(api, key, channel):
    made = api.post(f"/api/v1/channels/{channel.code}/handoff", {"minutes": 120})
    assert made.status_code == 201
    body = made.json()
    assert body["url"].startswith("https://portal.test/connect/")
    assert body["replaced"] is False
    link = HandoffLink.objects.get()
    assert timedelta(minutes=119) < link.expires_at - link.created_at <= timedelta(minutes=120)
    assert audited("handoff.create", key[0]).customer == channel.customer
    assert api.post(f"/api/v1/channels/{channel.code}/handoff").json()["replaced"] is True
    problem(api.post(f"/api/v1/channels/{channel.code}/handoff", {"minutes": 7}), 422, "invalid")
    assert api.delete(f"/api/v1/channels/{channel.code}/handoff").json() == {"revoked": 1}
    assert AuditLog.objects.filter(action="handoff.revoke", api_key=key[0].prefix).exists()
    assert api.delete(f"/api/v1/channels/{channel.code}/handoff").json() == {"revoked": 0}


def test_no_handoff_for_a_connected_number(api, channel):
    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED)
    problem(api.post(f"/api/v1/channels/{channel.code}/handoff"), 409, "conflict")


# ------------------------------------------------------------------------------------------------
# The customer's webhook, the timeline, the token
# ------------------------------------------------------------------------------------------------
def test_webhook_get_and_put(api, key, channel, whapi):
    patched = []

    def patch(request):
        patched.append(json.loads(request.body))
        return (200, {}, json.dumps({}))

    def readback(request):
        from channels_app.configure import desired_settings

        return (200, {}, json.dumps(desired_settings(Channel.objects.get(pk=channel.pk))))

    whapi.add_callback(responses.PATCH, f"{GATE}/settings", callback=patch)
    whapi.add_callback(responses.GET, f"{GATE}/settings", callback=readback)
    whapi.add(responses.GET, f"{GATE}/health", json=whapi_fixture("gate_health_qr.json"))
    assert api.get(f"/api/v1/channels/{channel.code}/webhook").json()["url"] == ""
    body = {"url": "https://crm.example.com/hook", "events": [{"type": "messages"}, {"type": "statuses"}]}
    response = api.put(f"/api/v1/channels/{channel.code}/webhook", body)
    assert response.status_code == 200, response.content
    assert response.json()["applied"] is True
    assert response.json()["events"] == [{"type": "messages", "method": "post"}, {"type": "statuses", "method": "post"}]
    assert patched, "the settings were not applied"
    audited("channel.customer_webhook", key[0])
    assert api.get(f"/api/v1/channels/{channel.code}/webhook").json()["url"] == "https://crm.example.com/hook"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://127.0.0.1/hook", "events": [{"type": "messages"}]}, "url"),
        ({"url": "http://crm.example.com/hook", "events": [{"type": "messages"}]}, "url"),
        ({"url": "not a url", "events": [{"type": "messages"}]}, "url"),
        ({"url": "https://crm.example.com/hook", "events": []}, "events"),
        ({"url": "https://crm.example.com/hook", "events": [{"type": "bogus"}]}, "events.0.type"),
    ],
)
def test_webhook_urls_follow_the_pages_rules(api, channel, whapi, body, field):
    response = problem(api.put(f"/api/v1/channels/{channel.code}/webhook", body), 422, "invalid")
    assert response["errors"][0]["field"] == field
    assert Channel.objects.get(pk=channel.pk).customer_webhook_url == ""
    assert not whapi.calls


def test_webhook_saved_before_the_channel_is_set_up(api, project):
    queued = make_channel(project, whapi_id=None, state=Channel.State.QUEUED, webhooks_verified_at=None)
    body = {"url": "https://crm.example.com/hook", "events": [{"type": "messages"}]}
    response = api.put(f"/api/v1/channels/{queued.code}/webhook", body).json()
    assert response["applied"] is False
    assert Channel.objects.get(pk=queued.pk).customer_webhook_url == "https://crm.example.com/hook"


def test_the_timeline_newest_first(api, channel):
    now = timezone.now()
    for minutes, state in ((3, "queued"), (2, "creating"), (1, "waiting_scan")):
        ChannelEvent.objects.create(
            channel=channel, to_state=state, source="system", at=now - timedelta(minutes=minutes), detail="for staff"
        )
    page = api.get(f"/api/v1/channels/{channel.code}/timeline", limit=2).json()
    assert [item["to_state"] for item in page["items"]] == ["waiting_scan", "creating"]
    assert all(item["detail"] is None for item in page["items"])  # the notes are for staff
    rest = api.client.get(page["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
    assert [item["to_state"] for item in rest["items"]] == ["queued"]
    partner = ApiClient(make_key()[1]).get(f"/api/v1/channels/{channel.code}/timeline").json()
    assert partner["items"][0]["detail"] == "for staff"


def test_the_token_is_revealed_and_audited(api, key, channel):
    response = api.post(f"/api/v1/channels/{channel.code}/token")
    assert response.json() == {"token": CHANNEL_TOKEN}
    assert response["Cache-Control"] == "no-store"
    audited("channel.reveal_token", key[0])


def test_a_nul_character_is_a_field_error(api, customer, project, channel):
    # PostgreSQL cannot store or search a NUL: the pages' forms refuse it, and so does the API (not a 500).
    body = problem(create(api, customer, {"name": "Support\x00line"}), 422, "invalid")
    assert [error["field"] for error in body["errors"]] == ["name"]
    body = problem(api.patch(f"/api/v1/channels/{channel.code}", {"name": "a\x00"}), 422, "invalid")
    assert [error["field"] for error in body["errors"]] == ["name"]
    body = problem(api.get(f"/api/v1/customers/{customer.code}/channels", q="a\x00"), 422, "invalid")
    assert [error["field"] for error in body["errors"]] == ["q"]
    assert Channel.objects.get(pk=channel.pk).name == channel.name
    assert list(project.channels.all()) == [channel]
