"""`manage.py seed_demo --channels N --customers M`: a fleet at scale for demos and benchmarks."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from channels_app import crypto
from channels_app.management.commands.seed_demo import STATE_MIX, channel_counts
from channels_app.models import Channel, ChannelEvent, Customer, Membership, Project, WebhookEvent
from tests.admin_support import url

pytest_plugins = ["tests.admin_fixtures"]

State = Channel.State


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def fleet(db, settings):
    """30 channels over 4 customers, the first with 12, one owner login each, 200 ledger rows."""
    settings.DEBUG = True
    seed(
        "--channels", "30", "--customers", "4", "--largest", "12", "--members", "--callbacks", "200", "--tag", "FLEETA"
    )
    return Customer.objects.exclude(name="Acme Corp").order_by("projects__whapi_id")  # the largest first


def test_it_creates_what_it_says(fleet):
    channels = Channel.objects.filter(project__customer__in=fleet)
    assert fleet.count() == 4 and Project.objects.filter(customer__in=fleet).count() == 4
    assert channels.count() == 30
    counts = sorted((c.projects.get().channels.count() for c in fleet), reverse=True)
    assert counts[0] == 12 and sum(counts) == 30
    for customer in fleet:
        assert customer.projects.get().channels.exclude(state=State.DELETED).count() <= customer.channel_quota
    assert set(channels.values_list("state", flat=True)) <= set(STATE_MIX)
    assert channels.filter(state=State.CONNECTED).count() == round(30 * STATE_MIX[State.CONNECTED] / 100)
    # Every channel but the queued ones exists in Whapi, with a Whapi id in Whapi's format.
    created = channels.exclude(state=State.QUEUED)
    assert created.filter(whapi_id__regex=r"^FLEETA-[0-9A-Z]{5}$").count() == created.count()
    assert not channels.filter(state=State.QUEUED).exclude(whapi_id=None).exists()
    assert ChannelEvent.objects.filter(channel__in=channels).count() >= 2 * created.count()
    assert WebhookEvent.objects.filter(channel__in=channels).count() == 200
    assert Membership.objects.filter(customer__in=fleet, role="owner").count() == 4
    assert authenticate(username="fleeta-owner-0001", password="seed-demo-password") is not None


def test_secrets_are_distinct_encrypted_and_decrypt(fleet):
    channels = Channel.objects.filter(project__customer__in=fleet).exclude(state=State.QUEUED)
    secrets = list(channels.values_list("webhook_secret", flat=True))
    tokens = list(channels.values_list("token", flat=True))
    assert len(set(secrets)) == len(secrets) and len(set(tokens)) == len(tokens)
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret, token FROM channels_app_channel WHERE whapi_id LIKE 'FLEETA-%%'")
        stored = cursor.fetchall()
    assert {crypto.decrypt(secret) for secret, _ in stored} == set(secrets)
    assert {crypto.decrypt(token) for _, token in stored} == set(tokens)


def test_checks_are_due_as_in_a_running_fleet(fleet):
    now = timezone.now()
    channels = Channel.objects.filter(project__customer__in=fleet)
    for channel in channels.filter(state__in=Channel.PRESENT_IN_WHAPI):
        assert channel.health_check_due_at == channel.last_confirmed_at + timedelta(minutes=15)
        assert now - timedelta(minutes=1) < channel.health_check_due_at <= now + timedelta(minutes=15)
    for channel in channels.filter(state__in=Channel.LIVE):
        assert now - timedelta(minutes=1) < channel.settings_check_due_at <= now + timedelta(hours=6)
    idle = channels.filter(state__in=(State.QUEUED, State.DELETED))
    assert not idle.exclude(health_check_due_at=None, settings_check_due_at=None).exists()


def test_the_channels_show_on_the_admin_list_and_the_dashboard(fleet, staff_client, client):
    response = staff_client.get(url("channel_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 30
    assert "FLEETA-00000" in response.content.decode()

    largest = fleet.first()
    client.login(username="fleeta-owner-0001", password="seed-demo-password")
    page = client.get(reverse("channels_app:dashboard", args=[largest.code])).content.decode()
    for channel in largest.projects.get().channels.exclude(state=State.DELETED):
        assert channel.name in page


def test_a_second_run_adds_a_second_fleet(fleet):
    second = seed("--channels", "30", "--customers", "4")
    assert "30 channels" in second
    assert Channel.objects.filter(project__customer__in=Customer.objects.exclude(name="Acme Corp")).count() == 60
    with pytest.raises(CommandError, match="FLEETA exists already"):
        seed("--channels", "5", "--customers", "1", "--tag", "FLEETA")


def test_data_only_runs_with_debug_off_and_creates_no_usable_login(db, settings, tmp_path):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--data-only"):
        seed("--channels", "5", "--customers", "1")
    export = tmp_path / "channels.jsonl"
    seed("--data-only", "--channels", "5", "--customers", "1", "--members", "--api-url", "http://gate.test/")
    seed("--data-only", "--channels", "5", "--customers", "1", "--tag", "EXPORT", "--export", str(export))
    assert not Customer.objects.filter(name="Acme Corp").exists()
    owner = Membership.objects.get().user
    assert not owner.has_usable_password()
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(records) == 5
    stored = {c.whapi_id: c for c in Channel.objects.filter(whapi_id__startswith="EXPORT-")}
    assert {record["whapi_id"] for record in records} == set(stored)
    for record in records:
        channel = stored[record["whapi_id"]]
        assert (record["token"], record["api_url"], record["webhook_secret"]) == (
            channel.token,
            channel.api_url,
            channel.webhook_secret,
        )


def test_the_default_gate_is_the_sandboxs_never_whapis(db, settings):
    settings.DEBUG = True
    settings.WHAPI_PARTNER_URL = "http://127.0.0.1:4321"
    seed("--channels", "3", "--customers", "1", "--tag", "GATEAA")
    settings.WHAPI_PARTNER_URL = "https://manager.whapi.cloud"
    seed("--channels", "3", "--customers", "1", "--tag", "GATEBB")
    assert set(Channel.objects.filter(whapi_id__startswith="GATEAA").values_list("api_url", flat=True)) == {
        "http://127.0.0.1:4321/gate/"
    }
    assert set(Channel.objects.filter(whapi_id__startswith="GATEBB").values_list("api_url", flat=True)) == {
        "http://127.0.0.1:8765/gate/"
    }


@pytest.mark.parametrize(
    ("channels", "customers", "largest"), [(10_000, 1000, 5000), (10_000, 1000, 0), (30, 4, 12), (3, 10, 0)]
)
def test_channel_counts_are_skewed_and_add_up(channels, customers, largest):
    counts = channel_counts(channels, customers, largest)
    assert len(counts) == customers and sum(counts) == channels
    assert counts == [counts[0], *sorted(counts[1:], reverse=True)]
    if largest:
        assert counts[0] == largest
