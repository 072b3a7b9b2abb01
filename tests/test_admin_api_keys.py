"""API keys in the staff console: the list (no key nor hash, filters, no count of the whole table),
making partner, customer and channel keys (the key shown once, on the page that answers), renaming
only, revoking one or many, all audited."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from api.keys import api_key_authenticate, api_key_create
from api.models import ApiKey
from channels_app.models import AuditLog, Customer
from tests.admin_support import login_as, messages_of

pytest_plugins = ["tests.admin_fixtures"]

LIST = reverse("admin:api_apikey_changelist")
ADD = reverse("admin:api_apikey_add")


def change_url(row) -> str:
    return reverse("admin:api_apikey_change", args=[row.pk])


def make(customer=None, **fields):
    fields = {"name": "CRM sync", "can_write": False, "actor": None, "source": "staff", **fields}
    return api_key_create(customer=customer, **fields)


def test_staff_make_a_partner_key_shown_once(staff_client, superuser):
    form = staff_client.get(ADD).content.decode()
    assert 'name="channel"' in form and "vForeignKeyRawIdAdminField" in form and "admin-autocomplete" in form
    response = staff_client.post(ADD, {"name": "Billing system", "customer": "", "channel": "", "can_write": "on"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = response.context["key"]
    row = api_key_authenticate(key)
    assert (row.scope, row.can_write, row.created_by, row.name) == ("partner", True, superuser, "Billing system")
    assert key in response.content.decode()
    assert not messages_of(response)
    for url in (LIST, change_url(row)):
        page = staff_client.get(url).content.decode()
        assert f"wpk_{row.prefix}_…" in page and key not in page and row.key_hash not in page
    assert AuditLog.objects.filter(action="api_key.create", actor=superuser, source="staff").count() == 1


def test_staff_make_a_customer_key_and_a_channel_key(staff_client, customer, channel):
    staff_client.post(ADD, {"name": "Whole", "customer": customer.pk, "channel": ""})
    staff_client.post(ADD, {"name": "One", "customer": "", "channel": channel.pk})
    whole, one = ApiKey.objects.get(name="Whole"), ApiKey.objects.get(name="One")
    assert (whole.scope, whole.customer, whole.can_write) == ("customer", customer, False)
    assert (one.scope, one.customer, one.channel) == ("channel", customer, channel)


def test_a_channel_of_another_customer_is_refused_next_to_the_field(staff_client, customer, channel):
    other = Customer.objects.create(name="Other Inc")
    response = staff_client.post(ADD, {"name": "Mixed", "customer": other.pk, "channel": channel.pk})
    assert "The channel belongs to Acme Corp" in " ".join(response.context["adminform"].form.errors["customer"])
    assert not ApiKey.objects.exists()


def test_the_list_shows_the_scope_and_filters(staff_client, customer, channel):
    partner, _ = make(name="Partner")
    make(customer, name="Whole")
    make(channel=channel, name="One")
    revoked, _ = make(customer, name="Gone")
    revoked.revoked_at = revoked.created_at
    revoked.save()
    page = staff_client.get(LIST).content.decode()
    for label in ("Partner (any customer)", "Whole customer", "One channel"):
        assert label in page

    def names(query: str) -> set[str]:
        return {row.name for row in staff_client.get(f"{LIST}?{query}").context["cl"].result_list}

    assert names("scope=partner") == {"Partner"}
    assert names("scope=channel") == {"One"}
    assert names("revoked=yes") == {"Gone"}
    assert names(f"customer={customer.code}") == {"Whole", "One", "Gone"}
    assert names(f"q={partner.prefix}") == {"Partner"}


def test_the_list_never_counts_the_whole_table(staff_client, customer):
    for n in range(3):
        make(customer, name=f"Key {n}")
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(LIST).status_code == 200
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper() and "api_apikey" in query["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


def test_only_the_name_changes_and_it_is_audited(staff_client, superuser, customer):
    row, _ = make(customer)
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=row.created_at)  # revoked while the page was open
    response = staff_client.post(change_url(row), {"name": "CRM (old)", "can_write": "on", "customer": ""})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.name, row.can_write, row.customer, row.revoked_at) == ("CRM (old)", False, customer, row.created_at)
    record = AuditLog.objects.get(action="api_key.rename")
    assert record.actor == superuser and record.detail == f"CRM sync → CRM (old) ({row.prefix}…)"


def test_staff_revoke_one_key_after_a_confirmation(staff_client, customer):
    row, key = make(customer)
    revoke = reverse("admin:api_apikey_revoke", args=[row.pk])
    assert revoke in staff_client.get(change_url(row)).content.decode()
    asked = staff_client.get(revoke)
    assert "Every system using it is refused at once" in asked.content.decode()
    assert api_key_authenticate(key) is not None
    response = staff_client.post(revoke, follow=True)
    assert f"The key {row} no longer works." in messages_of(response)
    assert api_key_authenticate(key) is None
    assert revoke not in response.content.decode()


def test_staff_revoke_many_keys(staff_client, customer):
    rows = [make(customer, name=f"Key {n}")[0] for n in range(3)]
    api_key_create(name="Kept", customer=customer, can_write=False, actor=None, source="staff")
    response = staff_client.post(
        LIST, {"action": "revoke_selected", "_selected_action": [row.pk for row in rows]}, follow=True
    )
    assert "3 keys revoked; they no longer work." in messages_of(response)
    assert set(ApiKey.objects.filter(revoked_at__isnull=True).values_list("name", flat=True)) == {"Kept"}
    assert AuditLog.objects.filter(action="api_key.revoke").count() == 3


def test_keys_cannot_be_deleted(staff_client, customer):
    row, _ = make(customer)
    assert staff_client.post(reverse("admin:api_apikey_delete", args=[row.pk])).status_code == 403
    assert "delete_selected" not in staff_client.get(LIST).content.decode()


def test_staff_who_may_only_view_keys_cannot_make_or_revoke(client, django_user_model, customer):
    from django.contrib.auth.models import Permission

    viewer = login_as(client, django_user_model, "viewer")
    viewer.user_permissions.set(Permission.objects.filter(codename="view_apikey"))
    row, key = make(customer)
    assert client.get(LIST).status_code == 200
    assert client.post(ADD, {"name": "Mine"}).status_code == 403
    assert client.post(reverse("admin:api_apikey_revoke", args=[row.pk])).status_code == 403
    assert api_key_authenticate(key) is not None


def test_the_customer_page_leads_to_its_keys(staff_client, customer):
    page = staff_client.get(reverse("admin:channels_app_customer_change", args=[customer.pk])).content.decode()
    assert f"{LIST}?customer={customer.code}" in page


def test_the_list_reads_no_channel_secret(staff_client, customer, channel):
    make(channel=channel, name="One")
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(LIST).content.decode()
    assert "Shop bot" in page
    read = " ".join(query["sql"] for query in queries if "api_apikey" in query["sql"])
    assert '"channels_app_channel"."name"' in read and '"channels_app_channel"."token"' not in read
