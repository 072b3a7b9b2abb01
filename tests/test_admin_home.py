"""The operations home (the admin's index) and the figures behind it (channels_app.fleet): what each
figure counts, that each number leads to the list of exactly what it counts, who sees what, and a
cost that does not grow with the fleet."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from channels_app import background, fleet
from channels_app.models import Channel, WebhookEvent
from tests.admin_support import login_as

pytest_plugins = ["tests.admin_fixtures", "tests.fleet_fixtures"]

State = Channel.State
HOME = "/admin/"


def home_figures(response) -> dict:
    return {figure.key: figure for section in response.context["fleet_sections"] for figure in section.figures}


def close_to(moment, expected, seconds: float = 5) -> bool:
    return moment is not None and abs((moment - expected).total_seconds()) < seconds


# ------------------------------------------------------------------------------------------------
# The figures
# ------------------------------------------------------------------------------------------------
def test_the_figures_count_what_they_say(fleet_data):
    figures = fleet.fleet_figures()

    assert figures.states == {**dict.fromkeys(State.values, 0), **fleet_data["states"]}
    attention = figures.attention
    assert (attention.errors, attention.stale, attention.unscanned, attention.unassigned) == (1, 1, 1, 1)
    assert attention.expiring == fleet_data["expiring"]
    assert attention.expiring_soon == 2

    queue = figures.create_queue
    assert (queue.budget.used, queue.budget.budget, queue.budget.queued) == (2, 18, 2)
    assert close_to(queue.oldest_requested_at, fleet_data["oldest_requested_at"])
    assert queue.drained_at is not None and queue.drained_at <= timezone.now() + timedelta(seconds=5)

    worker = figures.worker
    assert close_to(worker.schedules_last_run, fleet_data["schedules_last_run"])
    assert (worker.tasks_waiting, worker.tasks_taken) == (2, 1)
    assert close_to(worker.oldest_waiting_since, fleet_data["oldest_waiting_since"])

    callbacks = figures.callbacks
    assert (callbacks.lately, callbacks.to_apply) == (4, 1)
    assert close_to(callbacks.last_received_at, fleet_data["last_received_at"])

    assert (figures.checks.health_due, figures.checks.settings_due) == (1, 1)
    assert abs(figures.checks.health_overdue - timedelta(minutes=10)) < timedelta(seconds=5)


def test_a_channel_counts_as_unscanned_after_a_day_of_waiting(project, fleet_channel):
    now = timezone.now()
    fleet_channel(project, state=State.WAITING_SCAN, state_changed_at=now - timedelta(hours=23))
    fleet_channel(project, state=State.DISCONNECTED, state_changed_at=now - timedelta(days=3))
    assert fleet.attention_counts().unscanned == 0

    fleet_channel(project, state=State.WAITING_SCAN, state_changed_at=now - timedelta(hours=25))
    assert fleet.attention_counts().unscanned == 1


def test_a_schedule_that_never_ran_is_no_heartbeat(db):
    background.setup_periodic_schedules()  # next_run is now, and no task was made from them yet
    assert fleet.worker_heartbeat().schedules_last_run is None

    Schedule.objects.filter(name="checks").update(next_run=timezone.now() + timedelta(seconds=15), task="t1")
    assert close_to(fleet.worker_heartbeat().schedules_last_run, timezone.now() - timedelta(seconds=45))


def test_an_empty_portal_has_figures_too(db):
    figures = fleet.fleet_figures()
    assert sum(figures.states.values()) == 0
    assert figures.create_queue.drained_at is None and figures.create_queue.oldest_requested_at is None
    assert figures.worker.schedules_last_run is None and figures.worker.oldest_waiting_since is None
    assert figures.callbacks.last_received_at is None


def test_next_expiries_are_the_soonest_first_without_deleted_or_ended_channels(fleet_data):
    names = [channel.name for channel in fleet.next_expiries(limit=3)]
    assert names == ["Ends in two days", "Ends in five days", "Ends in twenty days"]


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------
def test_the_home_shows_the_figures(staff_client, fleet_data):
    response = staff_client.get(HOME)
    assert response.status_code == 200
    figures = home_figures(response)
    assert figures["state-connected"].count == 9
    assert figures["errors"].count == 1 and figures["errors"].alert
    assert figures["unscanned"].count == 1
    assert figures["expiring-soon"].count == 2
    assert figures["budget-used"].count == 2 and "of 18" in figures["budget-used"].note
    assert figures["tasks-waiting"].count == 2
    assert figures["callbacks-lately"].count == 4
    assert "ago" in figures["scheduler"].text and not figures["scheduler"].alert
    # The oldest task has waited 90 s: every worker process must be busy.
    assert figures["oldest-task"].alert

    page = response.content.decode()
    assert 'id="figure-errors" class="figure-alert"' in page
    assert "Ends in two days" in page
    assert response.context["title"] == "Operations"


def test_each_number_leads_to_the_list_of_what_it_counts(staff_client, fleet_data):
    figures = home_figures(staff_client.get(HOME))
    counted = [figure for figure in figures.values() if figure.count is not None]
    assert len(counted) > 20
    for figure in counted:
        assert figure.url, f"{figure.key} has no link"
        response = staff_client.get(figure.url)
        assert response.status_code == 200, figure.url
        assert response.context["cl"].result_count == figure.count, f"{figure.key}: {figure.url}"


def test_a_stopped_scheduler_stands_out(staff_client, fleet_data):
    Schedule.objects.update(next_run=timezone.now() - timedelta(minutes=10))
    figure = home_figures(staff_client.get(HOME))["scheduler"]
    assert figure.alert and "ago" in figure.text


def test_the_app_is_named_in_words(staff_client):
    response = staff_client.get(HOME)
    names = [app["name"] for app in response.context["app_list"]]
    assert "Channels" in names
    assert "Channels_App" not in response.content.decode()


def test_staff_who_may_not_view_channels_see_the_console_list_only(client, django_user_model, fleet_data):
    login_as(client, django_user_model, "helpdesk")
    response = client.get(HOME)
    assert response.status_code == 200
    assert "fleet_sections" not in response.context
    assert "Needs a look" not in response.content.decode()


def test_numbers_link_only_to_lists_the_user_may_open(client, django_user_model, fleet_data):
    login_as(client, django_user_model, "viewer", "view_channel")
    figures = home_figures(client.get(HOME))
    assert figures["errors"].url and figures["errors"].count == 1
    assert figures["callbacks-lately"].url is None  # no permission on the ledger
    assert figures["tasks-waiting"].url is None


def test_the_cost_of_the_home_does_not_grow_with_the_fleet(staff_client, fleet_data, project, fleet_channel):
    staff_client.get(HOME)  # the session and permissions caches are warm from here on
    with CaptureQueriesContext(connection) as small:
        staff_client.get(HOME)
    for number in range(60):
        fleet_channel(project, state=State.ERROR if number % 2 else State.WAITING_SCAN, status_stale=True)
        WebhookEvent.objects.create(whapi_channel_id="FLEET-00001", body="{}", outcome="received")
    with CaptureQueriesContext(connection) as large:
        response = staff_client.get(HOME)
    assert home_figures(response)["errors"].count == 31
    assert len(large.captured_queries) == len(small.captured_queries)


# ------------------------------------------------------------------------------------------------
# The filters the numbers link to
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/admin/channels_app/channel/?waiting_scan_over=soon",
        "/admin/channels_app/channel/?waiting_scan_over=0",
        "/admin/channels_app/channel/?due=everything",
        "/admin/channels_app/webhookevent/?received_within=-5",
    ],
)
def test_a_malformed_filter_value_is_refused(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_channel_list_links_the_forgotten_channels_too(staff_client, fleet_data):
    page = staff_client.get("/admin/channels_app/channel/").content.decode()
    assert '<a href="?waiting_scan_over=24">1 waiting for a scan for over 24 hours</a>' in page
    assert '<a href="?expiring_within=7">2 ending within 7 days</a>' in page
