"""Customers in the staff console: onboarding with members and roles, the channel quota, the
customer's projects and channels, and an audit entry for every change made here."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import AuditLog, Channel, Customer, Membership, Project
from tests.admin_support import login_as, url
from tests.conftest import make_channel

pytest_plugins = ["tests.admin_fixtures"]


def formset(rows: list[dict], initial: int = 0) -> dict:
    data = {
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        # The customer's own brand (branding.admin.CustomerBrandInline), left empty.
        "brand-TOTAL_FORMS": "0",
        "brand-INITIAL_FORMS": "0",
        "brand-MIN_NUM_FORMS": "0",
        "brand-MAX_NUM_FORMS": "1",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"memberships-{index}-{key}"] = value
    return data


def actions_recorded() -> list[tuple[str, str]]:
    return list(AuditLog.objects.order_by("id").values_list("action", "detail"))


def test_onboarding_a_customer_with_an_owner_is_audited(staff_client, django_user_model):
    dana = django_user_model.objects.create_user("dana", "dana@shop.example", "pw")
    response = staff_client.post(
        url("customer_add"),
        {"name": "Dana's Shop", "channel_quota": "3", **formset([{"user": dana.pk, "role": "owner"}])},
    )
    assert response.status_code == 302
    customer = Customer.objects.get(name="Dana's Shop")
    assert Membership.objects.get(customer=customer).role == "owner"
    assert actions_recorded() == [("customer.create", "quota 3"), ("membership.add", "dana as owner")]
    entry = AuditLog.objects.get(action="membership.add")
    assert (entry.customer, entry.source, entry.actor.username) == (customer, "staff", "root")


def test_quota_role_and_removal_changes_are_audited(staff_client, customer, alice, bob):
    alice_membership = Membership.objects.get(user=alice)
    bob_membership = Membership.objects.get(user=bob)
    data = {
        "name": "Acme Corp",
        "channel_quota": "12",
        **formset(
            [
                {"id": alice_membership.pk, "customer": customer.pk, "user": alice.pk, "role": "owner"},
                {"id": bob_membership.pk, "customer": customer.pk, "user": bob.pk, "role": "viewer"},
            ],
            initial=2,
        ),
    }
    response = staff_client.post(url("customer_change", customer.pk), data)
    assert response.status_code == 302
    assert actions_recorded() == [("customer.quota", "5 → 12"), ("membership.role", "bob: operator → viewer")]

    data["memberships-1-DELETE"] = "on"
    staff_client.post(url("customer_change", customer.pk), data)
    assert actions_recorded()[-1] == ("membership.remove", "bob (viewer)")
    assert not Membership.objects.filter(user=bob).exists()


def test_an_unchanged_save_records_nothing(staff_client, customer, alice):
    membership = Membership.objects.get(user=alice)
    staff_client.post(
        url("customer_change", customer.pk),
        {
            "name": "Acme Corp",
            "channel_quota": "5",
            **formset([{"id": membership.pk, "customer": customer.pk, "user": alice.pk, "role": "owner"}], initial=1),
        },
    )
    assert actions_recorded() == []


def test_deleting_a_customer_is_audited_and_leaves_its_projects_unassigned(staff_client, customer, alice, project):
    response = staff_client.post(url("customer_delete", customer.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert Project.objects.get(pk=project.pk).customer is None
    entry = AuditLog.objects.get(action="customer.delete")
    assert entry.target_label == "Acme Corp" and "1 projects left unassigned" in entry.detail


def test_the_customer_page_shows_projects_and_channels(staff_client, customer, project):
    make_channel(project, active_till=timezone.now() + timedelta(days=3))
    make_channel(project, name="gone", whapi_id="GONEGO-00001", state=Channel.State.DELETED)
    text = staff_client.get(url("customer_change", customer.pk)).content.decode()
    assert "Acme channels" in text and project.whapi_id in text
    assert "Shop bot" in text and "MANTIS-M72HC" in text
    assert f"?customer={customer.code}" in text  # to the filtered channel list
    assert f"{url('channel_add')}?project={project.pk}" in text
    # The deleted channel is listed but does not count against the quota, and has no days left.
    assert "(1 in use, quota 5;" in text
    assert "3 days left" in text and "5 days left" not in text


def test_the_customer_list_counts_without_a_query_per_row(staff_client, db):
    def seed(count: int, start: int) -> None:
        customers = Customer.objects.bulk_create([Customer(name=f"customer {start + i}") for i in range(count)])
        projects = Project.objects.bulk_create(
            [Project(whapi_id=f"P{start + i:019d}", name=f"p{i}", customer=c) for i, c in enumerate(customers)]
        )
        Channel.objects.bulk_create([Channel(project=p, name="c", whapi_id=f"BULKBU-{p.pk:05d}") for p in projects])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(url("customer_changelist"))
        assert response.status_code == 200
        return len(captured.captured_queries)

    seed(5, 0)
    small = queries()
    seed(200, 5)
    assert queries() == small
    listed = staff_client.get(url("customer_changelist") + "?q=customer+142").context["cl"].result_list
    assert [(c.name, c.channels_used_count, c.project_total) for c in listed] == [("customer 142", 1, 1)]


def test_customers_need_the_customer_permissions(client, django_user_model, customer):
    login_as(client, django_user_model, "sam", "view_channel")
    assert client.get(url("customer_change", customer.pk)).status_code == 403
    response = client.post(url("customer_change", customer.pk), {"name": "Taken over", "channel_quota": "99"})
    assert response.status_code == 403
    assert Customer.objects.get(pk=customer.pk).channel_quota == 5
    assert not get_user_model().objects.filter(username="sam", is_superuser=True).exists()
