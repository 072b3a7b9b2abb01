"""A customer's API keys page: owners make keys (the key shown once, on the page that answers the
POST), read the list (never a key nor its hash) and revoke keys; operators get a 403 and no link;
outsiders a 404. alice owns the customer, bob operates it, charlie is an outsider."""

import pytest
from django.urls import reverse

from api import forms as api_forms
from api.keys import api_key_authenticate, api_key_create
from api.models import ApiKey
from channels_app.models import AuditLog, Channel, Customer, Project
from tests.conftest import make_channel


def page_url(customer) -> str:
    return reverse("channels_app:api_keys", args=[customer.code])


def create(client, customer, **data):
    data = {"name": "CRM sync", "channel": "", "access": "read", **data}
    return client.post(reverse("channels_app:api_key_create", args=[customer.code]), data)


def revoke_url(customer, key) -> str:
    return reverse("channels_app:api_key_revoke", args=[customer.code, key.code])


def test_an_owner_makes_a_key_shown_once(client, alice, customer):
    client.force_login(alice)
    response = create(client, customer, access="write")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    row = api_key_authenticate(key)
    assert (row.customer, row.channel, row.can_write, row.created_by) == (customer, None, True, alice)
    assert key in response.content.decode() and 'data-copy="#new-api-key"' in response.content.decode()
    assert key not in str(dict(client.session))
    page = client.get(page_url(customer)).content.decode()
    assert "CRM sync" in page and f"wpk_{row.prefix}_…" in page and "Read and write" in page
    assert key not in page and row.key_hash not in page and "Your new key" not in page
    assert AuditLog.objects.filter(action="api_key.create", actor=alice, customer=customer).count() == 1


def test_a_key_for_one_channel(client, alice, customer, channel):
    client.force_login(alice)
    page = client.get(page_url(customer)).content.decode()
    assert f'<option value="{channel.code}">Only the channel Shop bot (MANTIS-M72HC)</option>' in page
    response = create(client, customer, channel=str(channel.code))
    row = ApiKey.objects.get()
    assert (row.channel, row.customer, row.can_write) == (channel, customer, False)
    listed = response.content.decode()
    assert f'href="{reverse("channels_app:channel", args=[channel.code])}">Shop bot</a>' in listed
    assert "Read-only" in listed


def test_a_channel_of_another_customer_is_refused(client, alice, customer):
    other = Customer.objects.create(name="Other Inc")
    theirs = make_channel(Project.objects.create(whapi_id="other-project", name="Theirs", customer=other))
    client.force_login(alice)
    response = create(client, customer, channel=str(theirs.code))
    assert response.context["form"].errors["channel"] == ["Acme Corp has no such channel."]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"access": "admin"}, "access", "Select a valid choice"),
    ],
)
def test_errors_are_shown_next_to_the_fields(client, alice, customer, data, field, message):
    client.force_login(alice)
    response = create(client, customer, **data)
    assert message in " ".join(response.context["form"].errors[field])
    content = response.content.decode()
    assert f'id="id_{field}_error"' in content and "There is an error below, in “New key”" in content
    assert "new_key" not in response.context or not response.context["new_key"]
    assert not ApiKey.objects.exists()


def test_thousands_of_channels_are_a_box_not_a_select(client, alice, customer, project, monkeypatch):
    monkeypatch.setattr(api_forms, "CHANNEL_CHOICES_MAX", 2)
    channels = [make_channel(project, name=f"Bot {n}", whapi_id=f"BOT-{n:05}") for n in range(3)]
    client.force_login(alice)
    page = client.get(page_url(customer)).content.decode()
    assert "Only the channel" not in page and "more than 2 channels" in page
    create(client, customer, channel="BOT-00001")
    assert ApiKey.objects.get().channel == channels[1]
    response = create(client, customer, channel="NOPE-00000")
    assert "Acme Corp has no such channel." in response.context["form"].errors["channel"]
    deleted = make_channel(project, name="Gone", whapi_id="GONE-00001", state=Channel.State.DELETED)
    response = create(client, customer, channel=deleted.whapi_id)
    assert "channel" in response.context["form"].errors
    assert ApiKey.objects.count() == 1


def test_an_owner_revokes_a_key(client, alice, customer):
    row, key = api_key_create(name="Old", customer=customer, can_write=False, actor=alice, source="customer")
    client.force_login(alice)
    response = client.post(revoke_url(customer, row), follow=True)
    assert f"The key “Old” ({row.prefix}…) no longer works." in response.content.decode()
    assert "Revoked " in response.content.decode()
    assert api_key_authenticate(key) is None
    assert AuditLog.objects.filter(action="api_key.revoke", actor=alice).count() == 1
    assert client.get(revoke_url(customer, row)).status_code == 405


def test_a_key_of_another_customer_cannot_be_revoked(client, alice, customer):
    other = Customer.objects.create(name="Other Inc")
    theirs, key = api_key_create(name="Theirs", customer=other, can_write=False, actor=None, source="staff")
    client.force_login(alice)
    assert client.post(revoke_url(customer, theirs)).status_code == 404
    assert api_key_authenticate(key) == theirs


def test_the_list_is_paged(client, alice, customer, monkeypatch):
    from api import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(3):
        api_key_create(name=f"Key {n}", customer=customer, can_write=False, actor=alice, source="customer")
    client.force_login(alice)
    first = client.get(page_url(customer)).content.decode()
    assert "Key 2" in first and "Key 0" not in first and "Page 1 of 2" in first
    assert "Key 0" in client.get(page_url(customer) + "?page=2").content.decode()


def test_only_owners_see_the_page_and_the_link(client, alice, bob, charlie, customer):
    row, _ = api_key_create(name="CRM", customer=customer, can_write=False, actor=alice, source="customer")
    dashboard = reverse("channels_app:dashboard", args=[customer.code])
    client.force_login(alice)
    assert page_url(customer) in client.get(dashboard).content.decode()
    client.force_login(bob)
    assert page_url(customer) not in client.get(dashboard).content.decode()
    assert client.get(page_url(customer)).status_code == 403
    assert create(client, customer).status_code == 403
    assert client.post(revoke_url(customer, row)).status_code == 403
    client.force_login(charlie)
    assert client.get(page_url(customer)).status_code == 404
    assert create(client, customer).status_code == 404
    assert client.post(revoke_url(customer, row)).status_code == 404
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_visitor_is_sent_to_the_login_page(client, customer):
    response = client.get(page_url(customer))
    assert response.status_code == 302 and "/app/login/" in response["Location"]


def test_the_channel_page_leads_owners_to_a_key_for_the_channel(client, alice, bob, customer, channel):
    link = f"{page_url(customer)}?channel={channel.code}"
    client.force_login(bob)
    assert link not in client.get(reverse("channels_app:channel", args=[channel.code])).content.decode()
    client.force_login(alice)
    assert link in client.get(reverse("channels_app:channel", args=[channel.code])).content.decode()
    page = client.get(link).content.decode()
    assert f'<option value="{channel.code}" selected>Only the channel Shop bot (MANTIS-M72HC)</option>' in page


def test_a_key_staff_made_says_by_staff(client, alice, customer, admin_user):
    api_key_create(name="From staff", customer=customer, can_write=False, actor=admin_user, source="staff")
    client.force_login(alice)
    page = client.get(page_url(customer)).content.decode()
    assert "UTC</time> by staff" in page and admin_user.get_username() not in page


def test_the_list_reads_no_channel_secret(client, alice, customer, channel):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api_key_create(name="One", customer=customer, channel=channel, can_write=False, actor=alice, source="customer")
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        client.get(page_url(customer))
    read = " ".join(query["sql"] for query in queries if "api_apikey" in query["sql"])
    assert '"channels_app_channel"."name"' in read and '"channels_app_channel"."token"' not in read
    assert '"api_apikey"."key_hash"' not in read
