"""/metrics: the fleet's figures in Prometheus's text format, behind METRICS_TOKEN."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from channels_app.models import Channel
from tests.test_settings import load

pytest_plugins = ["tests.fleet_fixtures"]

TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
URL = "/metrics"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token: str = TOKEN):
    return client.get(URL, headers={"Authorization": f"Bearer {token}"})


def samples(response) -> dict[tuple, float]:
    """{(metric name, (label, value), …): value} of a scrape."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_it_is_not_found_without_a_configured_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(URL).status_code == 404
    assert scrape(client, "").status_code == 404
    assert scrape(client, "anything").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x"],
)
def test_it_requires_the_token(client, db, metrics_token, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"portal_channels" not in response.content


def test_it_rejects_other_methods(client, db, metrics_token):
    response = client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
    assert client.post(URL).status_code == 401  # the token first: nothing is said without it


def test_it_exports_the_figures(client, fleet_data, metrics_token):
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-store" in response["Cache-Control"]
    figures = samples(response)

    assert figures[("portal_channels", ("state", "connected"))] == 9
    assert figures[("portal_channels", ("state", "deleted"))] == 2
    assert figures[("portal_channels", ("state", "creating"))] == 0
    assert figures[("portal_channels_attention", ("reason", "error"))] == 1
    assert figures[("portal_channels_attention", ("reason", "status_stale"))] == 1
    assert figures[("portal_channels_attention", ("reason", "unscanned"))] == 1
    assert figures[("portal_channels_attention", ("reason", "unassigned"))] == 1
    assert figures[("portal_channels_expiring", ("within_days", "3"))] == 1
    assert figures[("portal_channels_expiring", ("within_days", "7"))] == 2
    assert figures[("portal_channels_expiring", ("within_days", "30"))] == 3
    assert figures[("portal_create_budget_used",)] == 2
    assert figures[("portal_create_budget_limit",)] == 18
    assert figures[("portal_create_queue_channels",)] == 2
    assert figures[("portal_tasks_waiting",)] == 2
    assert figures[("portal_tasks_taken",)] == 1
    assert figures[("portal_callbacks_received_last_hour",)] == 4
    assert figures[("portal_callbacks_to_apply",)] == 1
    assert figures[("portal_checks_due", ("kind", "health"))] == 1
    assert figures[("portal_checks_due", ("kind", "settings"))] == 1
    assert 595 < figures[("portal_checks_overdue_seconds", ("kind", "health"))] < 610

    def near(name: str, moment) -> bool:
        return abs(figures[(name,)] - moment.timestamp()) < 5

    assert near("portal_scheduler_last_run_timestamp_seconds", fleet_data["schedules_last_run"])
    assert near("portal_tasks_oldest_waiting_timestamp_seconds", fleet_data["oldest_waiting_since"])
    assert near("portal_callbacks_last_received_timestamp_seconds", fleet_data["last_received_at"])
    assert near("portal_create_queue_oldest_request_timestamp_seconds", fleet_data["oldest_requested_at"])
    assert ("portal_create_blocked_until_timestamp_seconds",) not in figures  # not held back


def test_times_that_do_not_exist_yet_are_absent(client, db, metrics_token):
    figures = samples(scrape(client))
    assert figures[("portal_channels", ("state", "connected"))] == 0
    for name in (
        "portal_scheduler_last_run_timestamp_seconds",
        "portal_tasks_oldest_waiting_timestamp_seconds",
        "portal_callbacks_last_received_timestamp_seconds",
        "portal_create_queue_drained_timestamp_seconds",
    ):
        assert (name,) not in figures
    assert figures[("portal_checks_overdue_seconds", ("kind", "health"))] == 0


def test_the_cost_of_a_scrape_does_not_grow_with_the_fleet(client, fleet_data, metrics_token, project, fleet_channel):
    with CaptureQueriesContext(connection) as small:
        scrape(client)
    for _ in range(50):
        fleet_channel(project, state=Channel.State.QUEUED, whapi_id=None)
    with CaptureQueriesContext(connection) as large:
        response = scrape(client)
    assert samples(response)[("portal_create_queue_channels",)] == 52
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_short_token_stops_start_up(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="METRICS_TOKEN"):
        load(monkeypatch, METRICS_TOKEN="short-token")
    assert load(monkeypatch, METRICS_TOKEN=None)["METRICS_TOKEN"] == ""
    assert load(monkeypatch, METRICS_TOKEN=f" {TOKEN} ")["METRICS_TOKEN"] == TOKEN
