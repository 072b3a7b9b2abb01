"""Requesting a channel: within the quota, once per form, queued for the pipeline."""

import uuid

import pytest
from django.urls import reverse

from channels_app.models import AuditLog, Channel, ChannelEvent, Membership, Project
from tests.conftest import make_channel


def create_url(customer) -> str:
    return reverse("channels_app:channel_create", args=[customer.code])


def form(project, name="Support line", key=None) -> dict:
    return {"name": name, "project": project.whapi_id, "request_key": key or uuid.uuid4().hex}


def test_it_shows_the_form_with_a_fresh_key(client, bob, customer, project):
    client.force_login(bob)
    first = client.get(create_url(customer))
    second = client.get(create_url(customer))
    assert first.status_code == 200
    assert b"Acme channels" in first.content
    assert first.context["form"]["request_key"].value() != second.context["form"]["request_key"].value()


def test_it_works(client, bob, customer, project, enqueued, django_capture_on_commit_callbacks):
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(create_url(customer), form(project))
    channel = Channel.objects.get()
    assert response["Location"] == reverse("channels_app:channel", args=[channel.code])
    assert (channel.name, channel.project, channel.state, channel.requested_by) == (
        "Support line",
        project,
        Channel.State.QUEUED,
        bob,
    )
    assert channel.timeline.get().source == ChannelEvent.Source.CUSTOMER
    assert ("create_queue_pump", ()) in enqueued
    entry = AuditLog.objects.get(action="channel.request")
    assert (entry.actor, entry.source, entry.customer) == (bob, "customer", customer)


def test_a_double_submit_creates_one_channel(client, bob, customer, project):
    client.force_login(bob)
    data = form(project)
    first = client.post(create_url(customer), data)
    second = client.post(create_url(customer), data)
    assert Channel.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert AuditLog.objects.filter(action="channel.request").count() == 1


def test_the_same_key_from_another_user_makes_another_channel(client, alice, bob, customer, project):
    data = form(project)
    client.force_login(bob)
    client.post(create_url(customer), data)
    client.force_login(alice)
    client.post(create_url(customer), data)
    assert Channel.objects.count() == 2


def test_over_quota_it_says_so_and_sends_nothing(client, bob, customer, project, django_capture_on_commit_callbacks):
    customer.channel_quota = 1
    customer.save()
    make_channel(project)
    client.force_login(bob)
    page = client.get(create_url(customer)).content.decode()
    # The page says what the customer can do, and the button is off.
    assert "The channel quota of Acme Corp is used up: 1 of 1 channel. Ask support for a higher quota" in page
    assert 'data-once disabled aria-describedby="quota-full">Create channel' in page
    assert "delete a channel" not in page.lower()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(create_url(customer), form(project))
    assert response.status_code == 200
    assert "Acme Corp already has 1 of its 1 channel: a higher quota is needed" in response.content.decode()
    assert Channel.objects.count() == 1
    assert callbacks == []  # nothing queued, so nothing goes to Whapi
    assert AuditLog.objects.get(action="channel.request").ok is False


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "This field is required."), ("   ", "This field is required."), ("x" * 151, "at most 150 characters")],
)
def test_it_validates_the_name(client, bob, customer, project, name, message):
    client.force_login(bob)
    response = client.post(create_url(customer), form(project, name=name))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["form"].errors["name"]
    assert not Channel.objects.exists()


def test_it_refuses_another_customers_project(client, bob, customer, project, charlie):
    theirs = Project.objects.create(
        whapi_id="otherProjectAAAAAAAAA", name="Other", customer=charlie.memberships.get().customer
    )
    client.force_login(bob)
    response = client.post(create_url(customer), form(theirs))
    assert "Select a valid choice" in response.content.decode()
    assert response.context["form"].errors["project"]
    assert not Channel.objects.exists()


def test_it_refuses_a_tampered_form_key(client, bob, customer, project):
    client.force_login(bob)
    response = client.post(create_url(customer), form(project, key="not-a-key"))
    assert "The form is out of date" in response.content.decode()
    assert not Channel.objects.exists()


def test_it_says_when_there_is_no_project(client, bob, customer):
    client.force_login(bob)
    assert b"No project is set up" in client.get(create_url(customer)).content


def test_it_requires_rw_access(client, customer, project, django_user_model):
    viewer = django_user_model.objects.create_user("vera", password="x")
    Membership.objects.create(customer=customer, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert client.get(create_url(customer)).status_code == 403
    assert client.post(create_url(customer), form(project)).status_code == 403
    assert not Channel.objects.exists()


def test_it_checks_membership(client, charlie, customer, project):
    client.force_login(charlie)
    assert client.post(create_url(customer), form(project)).status_code == 404
    assert not Channel.objects.exists()
