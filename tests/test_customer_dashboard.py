"""The dashboard: projects and channels with state, number, mode and days left, polled while in progress."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from channels_app.models import Channel, Project
from tests.conftest import make_channel


def dashboard_url(customer) -> str:
    return reverse("channels_app:dashboard", args=[customer.code])


def status_url(customer) -> str:
    return reverse("channels_app:dashboard_status", args=[customer.code])


def test_it_works(client, alice, customer, project):
    make_channel(
        project,
        name="Sales line",
        state=Channel.State.CONNECTED,
        connected_number="4915112345678",
        mode=Channel.Mode.LIVE,
        active_till=timezone.now() + timedelta(days=26, hours=3),
    )
    make_channel(project, name="Support line", whapi_id=None, state=Channel.State.QUEUED, active_till=None)
    Project.objects.create(whapi_id="emptyProjectAAAAAAAA", name="Marketing", customer=customer)
    client.force_login(alice)
    page = client.get(dashboard_url(customer)).content.decode()
    assert "Acme channels" in page and "Marketing" in page
    assert "Sales line" in page and "Support line" in page
    assert "+4915112345678" in page
    assert "Live" in page
    assert ">27<" in page  # days left, rounded up
    assert "Queued" in page and "Connected" in page
    assert "2 of 5 channels in use" in page
    assert 'data-poll-active="1"' in page
    assert "New channel" in page


def test_it_checks_membership(client, charlie, customer):
    client.force_login(charlie)
    assert client.get(dashboard_url(customer)).status_code == 404
    assert client.get(status_url(customer)).status_code == 404


def test_it_hides_deleted_channels_and_other_customers_channels(client, alice, customer, project, charlie):
    make_channel(project, name="Gone", state=Channel.State.DELETED)
    other_project = Project.objects.create(
        whapi_id="otherProjectAAAAAAAAA", name="Other", customer=charlie.memberships.get().customer
    )
    make_channel(other_project, name="Charlie's bot", whapi_id="OTHERS-CH4NL")
    client.force_login(alice)
    page = client.get(dashboard_url(customer)).content.decode()
    assert "Gone" not in page and "Charlie" not in page
    assert "0 of 5 channels in use" in page


def test_it_polls_only_while_a_channel_is_in_progress(client, alice, customer, project):
    channel = make_channel(project, state=Channel.State.INITIALIZING)
    client.force_login(alice)
    data = client.get(status_url(customer)).json()
    assert data["poll"] is True
    assert "Initializing" in data["html"]

    Channel.objects.filter(pk=channel.pk).update(state=Channel.State.CONNECTED, connected_number="14155550123")
    data = client.get(status_url(customer)).json()
    assert data["poll"] is False
    assert "+14155550123" in data["html"]
    assert 'data-poll-active="0"' in client.get(dashboard_url(customer)).content.decode()


def test_a_viewer_sees_channels_but_no_new_channel_button(client, customer, project, django_user_model):
    from channels_app.models import Membership

    viewer = django_user_model.objects.create_user("vera", password="x")
    Membership.objects.create(customer=customer, user=viewer, role=Membership.Role.VIEWER)
    make_channel(project)
    client.force_login(viewer)
    page = client.get(dashboard_url(customer)).content.decode()
    assert "Shop bot" in page
    assert "New channel" not in page


def test_it_says_when_no_project_is_assigned(client, alice, customer):
    client.force_login(alice)
    assert b"No project is set up" in client.get(dashboard_url(customer)).content
