"""Renewal rules: a customer's channels extended automatically once few days are left, each paid
period once whatever Whapi answers, within a monthly cap; every extension audited; a refusal, a lost
answer or the cap tells staff. Whapi's partner API is mocked with `responses`."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
import time_machine
from django.core import mail

from alerts.models import Event, Recipient, Renewal, RenewalRule
from alerts.sweep import alerts_sweep
from channels_app.models import AuditLog, Channel
from tests.conftest import make_channel, remote_channel

pytest_plugins = ["tests.admin_fixtures"]

PARTNER = "https://manager.whapi.test"
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def staff(db):
    return Recipient.objects.create(name="Billing", email="billing@partner.example", events=[Event.RENEWAL_PROBLEM])


@pytest.fixture
def rule(customer):
    return RenewalRule.objects.create(customer=customer, extend_days=30, when_days_left=3, monthly_cap_days=60)


def channel_ending(project, days: float, whapi_id: str = "MANTIS-M72HC") -> Channel:
    return make_channel(
        project, whapi_id=whapi_id, state=Channel.State.CONNECTED, active_till=NOW + timedelta(days=days)
    )


def whapi_extends(whapi, channel: Channel, *, status: int = 200, body=None) -> None:
    whapi.add(
        responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/extend", status=status, json=body or {"success": True}
    )
    extended = channel.active_till + timedelta(days=30)
    whapi.add(
        responses.GET,
        f"{PARTNER}/channels/{channel.whapi_id}",
        json=remote_channel(channel.name, channel.whapi_id, activeTill=int(extended.timestamp() * 1000)),
    )


def extend_calls(whapi) -> list:
    return [call for call in whapi.calls if call.request.url.endswith("/extend")]


@time_machine.travel(NOW, tick=False)
def test_a_channel_within_the_rule_is_extended_once_and_audited(project, rule, staff, whapi):
    channel = channel_ending(project, 2.5)
    later = channel_ending(project, 10, whapi_id="LATERB-00001")
    whapi_extends(whapi, channel)
    alerts_sweep()
    alerts_sweep()
    assert len(extend_calls(whapi)) == 1
    assert b'"days": 30' in extend_calls(whapi)[0].request.body
    channel.refresh_from_db()
    assert channel.active_till == NOW + timedelta(days=32, hours=12)
    renewal = Renewal.objects.get()
    assert (renewal.channel, renewal.status, renewal.days) == (channel, Renewal.Status.DONE, 30)
    audit = AuditLog.objects.get(action="channel.extend")
    assert audit.ok and "automatic renewal" in audit.detail and audit.source == AuditLog.Source.SYSTEM
    assert not Renewal.objects.filter(channel=later).exists()
    assert mail.outbox == []


@time_machine.travel(NOW, tick=False)
def test_a_period_is_never_paid_twice_even_when_the_new_end_is_not_read_back(project, rule, staff, whapi):
    channel = channel_ending(project, 1)
    whapi.add(responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/extend", json={"success": True})
    whapi.add(responses.GET, f"{PARTNER}/channels/{channel.whapi_id}", status=503, json={"error": "busy"})
    for _ in range(3):
        alerts_sweep()
    assert len(extend_calls(whapi)) == 1


@time_machine.travel(NOW, tick=False)
def test_a_lost_answer_is_not_retried_and_staff_are_told_to_check(project, rule, staff, whapi):
    channel = channel_ending(project, 1)
    whapi.add(
        responses.POST,
        f"{PARTNER}/channels/{channel.whapi_id}/extend",
        body=requests.exceptions.ReadTimeout("read timed out"),
    )
    alerts_sweep()
    alerts_sweep()
    assert len(extend_calls(whapi)) == 1
    assert Renewal.objects.get().status == Renewal.Status.UNKNOWN
    assert [message.subject for message in mail.outbox] == ["Shop bot: the automatic renewal may not have happened"]
    assert "never paid twice" in mail.outbox[0].body


@time_machine.travel(NOW, tick=False)
def test_a_channel_extended_by_staff_while_the_round_runs_is_not_renewed_too(project, rule, staff, whapi):
    """The round lists two due channels; while Whapi extends the first, staff extend the second by
    hand. The round finds the second no longer due instead of paying its days a second time."""
    first = channel_ending(project, 1)
    second = channel_ending(project, 2, whapi_id="SECOND-00002")
    whapi_extends(whapi, second)

    def staff_extend_the_second_meanwhile(request):
        Channel.objects.filter(pk=second.pk).update(active_till=second.active_till + timedelta(days=30))
        return 200, {}, '{"success": true}'

    whapi.add_callback(
        responses.POST, f"{PARTNER}/channels/{first.whapi_id}/extend", callback=staff_extend_the_second_meanwhile
    )
    whapi.add(
        responses.GET,
        f"{PARTNER}/channels/{first.whapi_id}",
        json=remote_channel(first.name, first.whapi_id, activeTill=int((NOW + timedelta(days=31)).timestamp() * 1000)),
    )
    alerts_sweep()
    alerts_sweep()
    assert [call.request.url.split("/")[-2] for call in extend_calls(whapi)] == [first.whapi_id]
    assert list(Renewal.objects.values_list("channel", flat=True)) == [first.pk]


@time_machine.travel(NOW, tick=False)
def test_a_refusal_is_recorded_and_told(project, rule, staff, whapi):
    channel = channel_ending(project, 1)
    whapi.add(
        responses.POST, f"{PARTNER}/channels/{channel.whapi_id}/extend", status=400, json={"error": "wrong request"}
    )
    alerts_sweep()
    assert Renewal.objects.get().status == Renewal.Status.FAILED
    assert mail.outbox[0].subject == "Shop bot: the automatic renewal was refused"


def test_the_monthly_cap_stops_renewals_and_tells_staff_once(project, customer, staff, whapi):
    RenewalRule.objects.create(customer=customer, extend_days=30, when_days_left=3, monthly_cap_days=60)
    with time_machine.travel(NOW, tick=False):
        channels = [channel_ending(project, 1 + n / 10, whapi_id=f"CHANNL-0000{n}") for n in range(3)]
        for channel in channels:
            whapi_extends(whapi, channel)
        alerts_sweep()
        alerts_sweep()
    assert len(extend_calls(whapi)) == 2  # two renewals of 30 days fit the cap of 60
    assert not Renewal.objects.filter(channel=channels[2]).exists()
    assert [message.subject for message in mail.outbox] == [
        "Acme Corp: automatic renewals stopped for November (cap reached)"
    ]
    with time_machine.travel(datetime(2026, 12, 1, 0, 5, tzinfo=UTC), tick=False):
        alerts_sweep()  # a new month: room again
    assert Renewal.objects.filter(channel=channels[2], status=Renewal.Status.DONE).exists()


@time_machine.travel(NOW, tick=False)
def test_a_rule_for_one_project_leaves_the_customers_other_projects_alone(project, customer, whapi):
    from channels_app.models import Project

    other = Project.objects.create(whapi_id="otherProject00000001", name="Other", customer=customer)
    RenewalRule.objects.create(customer=customer, project=other, extend_days=30, when_days_left=3, monthly_cap_days=90)
    channel_ending(project, 1)
    alerts_sweep()
    assert not extend_calls(whapi) and not Renewal.objects.exists()


def test_a_rule_is_refused_when_its_project_is_another_customers(customer, charlie):
    from django.core.exceptions import ValidationError

    from channels_app.models import Customer, Project

    other = Project.objects.create(
        whapi_id="otherProject00000002", name="Other", customer=Customer.objects.get(name="Other Inc")
    )
    rule = RenewalRule(customer=customer, project=other, extend_days=30, when_days_left=3, monthly_cap_days=90)
    with pytest.raises(ValidationError, match="another customer"):
        rule.full_clean()


# ------------------------------------------------------------------------------------------------
# The monthly billing CSV
# ------------------------------------------------------------------------------------------------
def test_the_billing_csv_counts_days_by_hand_and_automatically_in_the_month(project, customer, whapi, staff_client):
    import csv
    import io

    from django.core.management import call_command
    from django.urls import reverse

    from channels_app import actions

    with time_machine.travel(NOW, tick=False):
        renewed = channel_ending(project, 1)
        by_hand = channel_ending(project, 40, whapi_id="BYHAND-00001")
        RenewalRule.objects.create(customer=customer, extend_days=30, when_days_left=3, monthly_cap_days=60)
        whapi_extends(whapi, renewed)
        alerts_sweep()
        whapi_extends(whapi, by_hand)
        actions.channel_extend(by_hand, days=7, comment="goodwill", actor=None, source=AuditLog.Source.STAFF)
    with time_machine.travel(datetime(2026, 12, 2, tzinfo=UTC), tick=False):
        actions.channel_extend(by_hand, days=5, comment="next month", actor=None, source=AuditLog.Source.STAFF)

    out = io.StringIO()
    call_command("billing_csv", month="2026-11", customer=str(customer.code), stdout=out)
    rows = {row["whapi_id"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert (rows["MANTIS-M72HC"]["days_extended_automatically"], rows["MANTIS-M72HC"]["days_extended_by_hand"]) == (
        "30",
        "0",
    )
    assert (rows["BYHAND-00001"]["days_extended_automatically"], rows["BYHAND-00001"]["days_extended_by_hand"]) == (
        "0",
        "7",
    )
    assert rows["MANTIS-M72HC"]["customer"] == "Acme Corp" and rows["MANTIS-M72HC"]["active_till_utc"]

    response = staff_client.get(reverse("admin:alerts_billing_csv") + "?month=2026-12")
    assert response["Content-Disposition"] == 'attachment; filename="billing-2026-12.csv"'
    december = {row["whapi_id"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert december["BYHAND-00001"]["days_extended_by_hand"] == "5"
    assert staff_client.get(reverse("admin:alerts_billing_csv") + "?month=soon").status_code == 400
    changelist = staff_client.get(reverse("admin:alerts_renewal_changelist")).content.decode()
    assert "Billing CSV," in changelist


@time_machine.travel(NOW, tick=False)
def test_staff_see_which_channels_end_soon_and_which_a_rule_renews(project, customer, staff_client):
    from django.urls import reverse

    RenewalRule.objects.create(customer=customer, extend_days=30, when_days_left=3, monthly_cap_days=90)
    channel_ending(project, 5)
    other_customer = make_channel(
        project.__class__.objects.create(whapi_id="otherProject00000003", name="Unruled"),
        name="Loose bot",
        whapi_id="LOOSEB-00001",
        state=Channel.State.CONNECTED,
        active_till=NOW + timedelta(days=6),
    )
    channel_ending(project, 20, whapi_id="LATERB-00001")
    page = staff_client.get(reverse("admin:alerts_renewal_changelist")).content.decode()
    assert "Coming up: paid time ending within 7 days" in page
    assert "+30 days from 2026-11-12 12:00" in page  # 5 days left, renewed at 3
    assert other_customer.name in page and "no rule: extend by hand" in page
    assert "LATERB" not in page
