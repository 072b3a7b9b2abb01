"""Adding a channel from the staff console: it goes through the pipeline (audited, once per form),
and the channel page says where it stands."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import AuditLog, Channel, ChannelEvent, Project
from tests.admin_support import login_as, messages_of, url
from tests.conftest import make_channel

pytest_plugins = ["tests.admin_fixtures"]

State = Channel.State


def post_request(client, project, name="Support line", key="form-key-1", **extra):
    data = {"project": project.pk, "name": name, "request_key": key, **extra}
    return client.post(url("channel_add"), data)


def test_the_form_carries_a_fresh_idempotency_key(staff_client, project):
    first = staff_client.get(url("channel_add"))
    second = staff_client.get(url("channel_add"))
    assert first.status_code == 200
    keys = [response.context["form"].initial["request_key"] for response in (first, second)]
    assert keys[0] != keys[1] and len(keys[0]) == 32
    assert "Channel creation budget" in first.content.decode()


def test_it_queues_the_channel_through_the_pipeline(
    staff_client, superuser, project, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_request(staff_client, project)
    channel = Channel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("channel_change", channel.pk)
    assert (channel.name, channel.project, channel.state, channel.request_key) == (
        "Support line",
        project,
        State.QUEUED,
        "form-key-1",
    )
    assert channel.requested_by == superuser
    assert ("create_queue_pump", ()) in enqueued
    assert channel.timeline.get().source == ChannelEvent.Source.STAFF
    entry = AuditLog.objects.get(action="channel.request")
    assert (entry.actor, entry.source, entry.customer, entry.target_id, entry.ok) == (
        superuser,
        "staff",
        project.customer,
        str(channel.pk),
        True,
    )
    assert "requests take turns. Number 1 in the queue, expected to be created now." in messages_of(response)[0]


def test_a_double_submit_creates_one_channel(staff_client, project):
    post_request(staff_client, project)
    response = post_request(staff_client, project)
    channel = Channel.objects.get()
    assert response["Location"] == url("channel_change", channel.pk)
    assert AuditLog.objects.filter(action="channel.request").count() == 1


def test_the_quota_is_enforced_unless_staff_say_otherwise(staff_client, project, customer):
    customer.channel_quota = 1
    customer.save()
    make_channel(project)
    response = post_request(staff_client, project)
    assert response.status_code == 200
    assert "already has 1 of its 1 channel: a higher quota is needed" in response.content.decode()
    assert Channel.objects.count() == 1
    assert AuditLog.objects.get(action="channel.request").ok is False

    response = post_request(staff_client, project, key="form-key-2", ignore_quota="on")
    assert response.status_code == 302
    assert Channel.objects.count() == 2
    assert "quota not enforced" in AuditLog.objects.filter(ok=True).get(action="channel.request").detail


def test_a_project_without_customer_is_refused(staff_client, db):
    orphan = Project.objects.create(whapi_id="O" * 20, name="Nobody's")
    response = post_request(staff_client, orphan)
    assert response.status_code == 200
    assert "belongs to no customer" in response.content.decode()
    assert not Channel.objects.exists()


def test_the_project_preselected_from_the_customer_page(staff_client, project):
    response = staff_client.get(url("channel_add") + f"?project={project.pk}")
    assert response.context["form"].initial["project"] == project


def test_the_project_picker_offers_only_customers_projects(staff_client, project):
    Project.objects.create(whapi_id="O" * 20, name="Acme spare (unassigned)")
    response = staff_client.get(
        "/admin/autocomplete/",
        {"term": "Acme", "app_label": "channels_app", "model_name": "channel", "field_name": "project"},
    )
    assert [item["id"] for item in response.json()["results"]] == [str(project.pk)]


def test_it_needs_the_add_permission(client, django_user_model, project):
    login_as(client, django_user_model, "viewer", "view_channel")
    assert client.get(url("channel_add")).status_code == 403
    assert post_request(client, project).status_code == 403
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"state": State.CREATING, "whapi_id": None, "create_attempts": 2}, "Being created in Whapi. Attempt 2."),
        (
            {"state": State.INITIALIZING, "init_until": "soon"},
            "The gate API is not used until {init_until:%H:%M:%S} UTC.",
        ),
        ({"state": State.CONFIGURING}, "Setting and verifying the webhooks of the channel (its notifications)."),
        ({"state": State.WAITING_SCAN}, "Ready to connect: no WhatsApp number is linked yet"),
        (
            {"state": State.CONNECTED, "connected_number": "14155550123"},
            "messages. Number +14155550123",
        ),
        (
            {"state": State.ERROR, "last_error": "Whapi refused: bad project"},
            "attention. Whapi refused: bad project",
        ),
        ({"state": State.EXPIRED}, "Expired: its paid time ran out; extending it brings it back."),
    ],
)
def test_the_channel_page_says_where_it_stands(staff_client, project, fields, says):
    if fields.get("init_until") == "soon":
        fields["init_until"] = timezone.now() + timedelta(seconds=70)
    channel = make_channel(project, **fields)
    response = staff_client.get(url("channel_change", channel.pk))
    text = response.content.decode()
    assert response.status_code == 200
    assert channel.get_state_display() in text
    assert says.format(**fields) in text
    # The page follows a channel that is about to change (or waits for a scan) without reloading.
    follows = channel.state in (State.QUEUED, State.CREATING, State.INITIALIZING, State.CONFIGURING, State.WAITING_SCAN)
    assert ('data-poll-active="1"' in text) == follows
    assert 'http-equiv="refresh"' not in text


def test_a_queued_channel_shows_its_place_and_the_budget(staff_client, project, settings):
    settings.WHAPI_CREATE_BUDGET = 2
    for name in ("first", "second", "third"):
        Channel.objects.create(project=project, name=name)
    third = Channel.objects.get(name="third")
    text = staff_client.get(url("channel_change", third.pk)).content.decode()
    assert "Number 3 in the queue" in text
    assert "Channel creation budget" in text
