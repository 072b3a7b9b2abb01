"""The dashboard: one page of the customer's channels (state, number, mode, days left), searched and
filtered through the query string; the rows on the page are polled while one of them is in progress."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Channel, Project
from channels_app.views.customer import PAGE_SIZE
from tests.conftest import make_channel

State = Channel.State


def dashboard_url(customer) -> str:
    return reverse("channels_app:dashboard", args=[customer.code])


def status_url(customer) -> str:
    return reverse("channels_app:dashboard_status", args=[customer.code])


def many(project, count: int, *, start: int = 0, **fields) -> list[Channel]:
    """`count` channels named "Channel 0000"…, requested one minute apart (oldest first)."""
    now = timezone.now()
    fields = {"state": State.CONNECTED, **fields}
    return Channel.objects.bulk_create(
        [
            Channel(
                project=project,
                name=f"Channel {index:04d}",
                whapi_id=f"MANY{project.pk:02d}-{index:05d}",
                connected_number=f"1415555{index:04d}",
                requested_at=now - timedelta(days=1) + timedelta(minutes=index),
                **fields,
            )
            for index in range(start, start + count)
        ]
    )


def codes_shown(page: str) -> list[str]:
    return re.findall(r'data-channel="([0-9a-f-]+)"', page)


def poll_url(page: str, *, versions: bool = True) -> str:
    """The URL the page's script polls: its data-poll with the rows shown (code.version each)."""
    base = html.unescape(re.search(r'data-poll="([^"]+)"', page).group(1))
    rows = re.findall(r'data-channel="([0-9a-f-]+)" data-v="([0-9a-f]+)"', page)
    return base + "?" + "&".join(f"c={code}.{version}" if versions else f"c={code}" for code, version in rows)


def get_page(client, customer, query: str = "") -> str:
    response = client.get(dashboard_url(customer) + query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def other_project(charlie):
    return Project.objects.create(
        whapi_id="otherProjectAAAAAAAAA", name="Other", customer=charlie.memberships.get().customer
    )


def test_it_works(client, alice, customer, project):
    make_channel(
        project,
        name="Sales line",
        state=State.CONNECTED,
        connected_number="4915112345678",
        mode=Channel.Mode.LIVE,
        active_till=timezone.now() + timedelta(days=26, hours=3),
    )
    make_channel(project, name="Support line", whapi_id=None, state=State.QUEUED, active_till=None)
    client.force_login(alice)
    page = get_page(client, customer)
    assert "Sales line" in page and "Support line" in page
    assert "+4915112345678" in page
    assert "Live" in page
    assert ">27<" in page  # days left, rounded up
    assert "Queued" in page and "Connected" in page
    assert "2 of 5 channels in use" in page
    assert 'data-poll-active="1"' in page
    assert "New channel" in page
    assert 'data-label="Project"' not in page  # one project: no column for it, no filter
    assert 'name="project"' not in page
    assert '<label for="id_q">Search</label>' in page and '<label for="id_state">State</label>' in page
    assert "Page 1 of" not in page  # one page: no pager


def test_it_checks_membership(client, charlie, customer):
    client.force_login(charlie)
    assert client.get(dashboard_url(customer)).status_code == 404
    assert client.get(status_url(customer)).status_code == 404


def test_it_hides_deleted_channels_and_other_customers_channels(client, alice, customer, project, other_project):
    make_channel(project, name="Gone", state=State.DELETED)
    make_channel(other_project, name="Charlie's bot", whapi_id="OTHERS-CH4NL")
    client.force_login(alice)
    page = get_page(client, customer)
    assert "Gone" not in page and "Charlie" not in page
    assert "0 of 5 channels in use" in page
    assert "No channels yet" in page and "Request the first one" in page
    assert "Charlie" not in get_page(client, customer, "?q=bot")


def test_a_viewer_sees_channels_but_no_new_channel_button(client, customer, project, vera):
    make_channel(project)
    client.force_login(vera)
    page = get_page(client, customer)
    assert "Shop bot" in page
    assert "New channel" not in page and "Request the first one" not in page


def test_a_full_quota_disables_new_channel_and_says_what_to_do(client, alice, customer, project):
    customer.channel_quota = 2
    customer.save()
    make_channel(project)
    client.force_login(alice)
    page = get_page(client, customer)
    create = reverse("channels_app:channel_create", args=[customer.code])
    assert f'<a class="button primary" href="{create}">New channel</a>' in page
    assert "quota-full" not in page
    make_channel(project, name="Second", whapi_id="SECOND-BOT00")
    page = get_page(client, customer)
    assert '<button type="button" class="button primary" disabled aria-describedby="quota-full">New channel' in page
    assert create not in page
    assert "used up: 2 of 2 channels. Ask support for a higher quota to add another channel, or delete one" in page
    assert "delete a channel" not in page.lower()


def test_it_says_when_no_project_is_assigned(client, alice, customer):
    client.force_login(alice)
    page = get_page(client, customer)
    assert "No project is set up" in page
    assert 'name="q"' not in page


# ------------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------------
def test_it_shows_one_page_at_a_time_oldest_first(client, alice, customer, project):
    total = 2 * PAGE_SIZE + 5
    channels = many(project, total)
    customer.channel_quota = 500
    customer.save()
    client.force_login(alice)
    page = get_page(client, customer)
    assert codes_shown(page) == [str(c.code) for c in channels[:PAGE_SIZE]]
    assert f"{total} of 500 channels in use" in page
    assert f"1–{PAGE_SIZE} of {total} channels" in page
    assert "Page 1 of 3" in page
    assert f'href="{dashboard_url(customer)}?page=2" rel="next"' in page
    assert 'rel="prev"' not in page

    page = get_page(client, customer, "?page=3")
    assert codes_shown(page) == [str(c.code) for c in channels[2 * PAGE_SIZE :]]
    assert f"{2 * PAGE_SIZE + 1}–{total} of {total} channels" in page
    assert f'href="{dashboard_url(customer)}?page=2" rel="prev"' in page
    assert f'href="{dashboard_url(customer)}">« First' in page  # page 1 without ?page=1
    assert 'rel="next"' not in page


@pytest.mark.parametrize(
    ("query", "to"),
    [
        ("?page=abc", ""),
        ("?page=0", ""),
        ("?page=-3", ""),
        ("?page=2.5", ""),
        ("?page=99", "?page=3"),
        ("?q=Channel&state=connected&page=99", "?q=Channel&state=connected&page=3"),
        ("?state=nonsense&page=99", "?page=3"),
    ],
)
def test_a_page_that_does_not_exist_leads_to_the_nearest_one(client, alice, customer, project, query, to):
    many(project, 2 * PAGE_SIZE + 1)
    client.force_login(alice)
    response = client.get(dashboard_url(customer) + query)
    assert response.status_code == 302
    assert response["Location"] == dashboard_url(customer) + to


def test_page_2_of_nothing_leads_to_the_only_page(client, alice, customer, project):
    client.force_login(alice)
    response = client.get(dashboard_url(customer) + "?q=nothing&page=2")
    assert response["Location"] == dashboard_url(customer) + "?q=nothing"


# ------------------------------------------------------------------------------------------------
# Search and filters
# ------------------------------------------------------------------------------------------------
def test_it_searches_by_name_and_by_number(client, alice, customer, project):
    connected = {"state": State.CONNECTED}
    sales = make_channel(project, name="Sales line", whapi_id="SALES-1", connected_number="4915112345678", **connected)
    support = make_channel(project, name="Support line", whapi_id="SUPP-1", connected_number="14155550123", **connected)
    make_channel(project, name="Front desk", whapi_id="FRONT-1")
    client.force_login(alice)
    assert codes_shown(get_page(client, customer, "?q=LINE")) == [str(sales.code), str(support.code)]
    assert codes_shown(get_page(client, customer, "?q=sales")) == [str(sales.code)]
    assert codes_shown(get_page(client, customer, "?q=%2B49+151+1234")) == [str(sales.code)]
    assert codes_shown(get_page(client, customer, "?q=(415)+555-0123")) == [str(support.code)]
    page = get_page(client, customer, "?q=%2B49+151+1234")
    assert 'value="+49 151 1234"' in page  # the search stays in its field
    assert "1 channel matching" in page


def test_nothing_matching_says_so_with_a_way_back(client, alice, customer, project):
    make_channel(project)
    client.force_login(alice)
    page = get_page(client, customer, "?q=nobody&state=attention")
    assert codes_shown(page) == []
    assert "No channel matches these filters" in page
    assert f'<a href="{dashboard_url(customer)}">Clear the filters</a>' in page
    assert "1 of 5 channels in use" in page  # the quota counts every channel, not the matching ones


def test_it_filters_by_state(client, alice, customer, project):
    made = {
        state: make_channel(project, name=f"Bot {state}", whapi_id=f"BOT-{state}"[:32], state=state)
        for state in (
            *(State.QUEUED, State.CONFIGURING, State.WAITING_SCAN, State.CONNECTED, State.DISCONNECTED),
            *(State.ERROR, State.EXPIRED, State.STOPPED),
        )
    }
    client.force_login(alice)

    def shown(value):
        return set(codes_shown(get_page(client, customer, f"?state={value}")))

    assert shown("setup") == {str(made[State.QUEUED].code), str(made[State.CONFIGURING].code)}
    assert shown("waiting_scan") == {str(made[State.WAITING_SCAN].code)}
    assert shown("connected") == {str(made[State.CONNECTED].code)}
    assert shown("disconnected") == {str(made[State.DISCONNECTED].code)}
    assert shown("attention") == {str(made[s].code) for s in (State.ERROR, State.EXPIRED, State.STOPPED)}
    page = get_page(client, customer, "?state=attention")
    assert '<option value="attention" selected>' in page


def test_an_unknown_state_is_said_and_ignored(client, alice, customer, project):
    make_channel(project)
    client.force_login(alice)
    page = get_page(client, customer, "?state=%3Cb%3Ewhat")
    assert "There is no state “&lt;b&gt;what”; showing every state." in page
    assert len(codes_shown(page)) == 1
    assert "Clear the filters" in page


def test_the_pager_keeps_the_filters(client, alice, customer, project):
    many(project, PAGE_SIZE + 5)
    many(project, 3, start=500, state=State.ERROR)
    client.force_login(alice)
    page = get_page(client, customer, "?q=channel&state=connected")
    assert f"1–{PAGE_SIZE} of {PAGE_SIZE + 5} channels matching" in page
    assert f'href="{dashboard_url(customer)}?q=channel&amp;state=connected&amp;page=2" rel="next"' in page
    page = get_page(client, customer, "?q=channel&state=connected&page=2")
    assert len(codes_shown(page)) == 5


def test_several_projects_get_a_column_and_a_filter(client, alice, customer, project):
    marketing = Project.objects.create(whapi_id="marketingAAAAAAAAAAA", name="Marketing", customer=customer)
    in_acme = make_channel(project, name="Acme bot", whapi_id="ACME-1")
    in_marketing = make_channel(marketing, name="Ads bot", whapi_id="ADS-1")
    client.force_login(alice)
    page = get_page(client, customer)
    assert '<td data-label="Project">Marketing</td>' in page
    assert '<label for="id_project">Project</label>' in page
    assert codes_shown(get_page(client, customer, f"?project={marketing.whapi_id}")) == [str(in_marketing.code)]
    assert codes_shown(get_page(client, customer, f"?project={project.whapi_id}")) == [str(in_acme.code)]
    page = get_page(client, customer, "?project=otherProjectAAAAAAAAA")
    assert "No such project; showing every project." in page
    assert len(codes_shown(page)) == 2


def test_another_customers_project_is_no_filter(client, alice, customer, project, other_project):
    Project.objects.create(whapi_id="marketingAAAAAAAAAAA", name="Marketing", customer=customer)
    make_channel(project)
    make_channel(other_project, name="Charlie's bot", whapi_id="OTHERS-CH4NL")
    client.force_login(alice)
    page = get_page(client, customer, f"?project={other_project.whapi_id}")
    assert "No such project" in page and "Charlie" not in page
    assert len(codes_shown(page)) == 1


# ------------------------------------------------------------------------------------------------
# Polling the page's rows
# ------------------------------------------------------------------------------------------------
def test_it_polls_only_while_a_channel_on_the_page_is_in_progress(client, alice, customer, project):
    channel = make_channel(project, state=State.INITIALIZING)
    client.force_login(alice)
    page = get_page(client, customer)
    assert 'data-poll-active="1"' in page
    response = client.get(poll_url(page))
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"html": "", "gone": [], "poll": True}  # nothing changed yet

    Channel.objects.filter(pk=channel.pk).update(state=State.CONNECTED, connected_number="14155550123")
    data = client.get(poll_url(page)).json()
    assert data["poll"] is False
    assert codes_shown(data["html"]) == [str(channel.code)]
    assert "+14155550123" in data["html"] and "Connected" in data["html"]
    assert 'data-poll-active="0"' in get_page(client, customer)


def test_a_connected_channel_being_checked_keeps_polling(client, alice, customer, project):
    make_channel(project, state=State.CONNECTED, disconnect_reported_at=timezone.now())
    client.force_login(alice)
    page = get_page(client, customer)
    assert 'data-poll-active="1"' in page
    assert client.get(poll_url(page)).json()["poll"] is True


def test_the_poll_answers_only_about_the_rows_of_the_page(client, alice, customer, project):
    channels = many(project, PAGE_SIZE + 10)
    client.force_login(alice)
    page_1, page_2 = get_page(client, customer), get_page(client, customer, "?page=2")
    # Without versions every row named is sent; with them, only those that changed.
    assert codes_shown(client.get(poll_url(page_1, versions=False)).json()["html"]) == codes_shown(page_1)
    assert codes_shown(client.get(poll_url(page_2, versions=False)).json()["html"]) == codes_shown(page_2)
    assert client.get(poll_url(page_1)).json()["html"] == ""

    on_1, on_2 = channels[3], channels[PAGE_SIZE + 3]
    Channel.objects.filter(pk__in=[on_1.pk, on_2.pk]).update(state=State.DISCONNECTED)
    assert codes_shown(client.get(poll_url(page_1)).json()["html"]) == [str(on_1.code)]
    assert codes_shown(client.get(poll_url(page_2)).json()["html"]) == [str(on_2.code)]


def test_the_poll_stops_when_the_page_is_settled_whatever_other_pages_do(client, alice, customer, project):
    channels = many(project, PAGE_SIZE + 1)
    setting_up = channels[-1]  # alone on page 2
    Channel.objects.filter(pk=setting_up.pk).update(state=State.CONFIGURING)
    client.force_login(alice)
    page_1 = get_page(client, customer)
    assert 'data-poll-active="0"' in page_1
    assert client.get(poll_url(page_1)).json()["poll"] is False

    page_2 = get_page(client, customer, "?page=2")
    assert 'data-poll-active="1"' in page_2
    assert client.get(poll_url(page_2)).json()["poll"] is True
    Channel.objects.filter(pk=setting_up.pk).update(state=State.WAITING_SCAN)
    data = client.get(poll_url(page_2)).json()
    assert data["poll"] is True and "Waiting for scan" in data["html"]  # a scan comes by itself
    Channel.objects.filter(pk=setting_up.pk).update(state=State.CONNECTED)
    data = client.get(poll_url(page_2)).json()
    assert data["poll"] is False and "Connected" in data["html"]


def test_the_poll_never_shows_another_customers_or_a_deleted_channel(client, alice, customer, project, other_project):
    mine = make_channel(project, state=State.INITIALIZING)
    gone = make_channel(project, name="Gone", whapi_id="GONE-1", state=State.DELETED)
    theirs = make_channel(other_project, name="Charlie's bot", whapi_id="OTHERS-CH4NL", state=State.INITIALIZING)
    client.force_login(alice)
    query = f"?c={mine.code}&c={theirs.code}.0000&c={gone.code}&c=not-a-code&c="
    response = client.get(status_url(customer) + query)
    assert response.status_code == 200
    data = response.json()
    assert codes_shown(data["html"]) == [str(mine.code)]
    assert "Charlie" not in data["html"]
    assert data["gone"] == [str(theirs.code), str(gone.code)]  # the page drops them

    only_theirs = client.get(f"{status_url(customer)}?c={theirs.code}").json()
    assert only_theirs == {"html": "", "gone": [str(theirs.code)], "poll": False}


def test_a_poll_without_codes_answers_nothing_to_follow(client, alice, customer, project):
    make_channel(project, state=State.INITIALIZING)
    client.force_login(alice)
    assert client.get(status_url(customer)).json() == {"html": "", "gone": [], "poll": False}


def test_the_polled_rows_have_the_page_columns(client, alice, customer, project):
    marketing = Project.objects.create(whapi_id="marketingAAAAAAAAAAA", name="Marketing", customer=customer)
    make_channel(marketing, state=State.INITIALIZING)
    client.force_login(alice)
    page = get_page(client, customer)
    data = client.get(poll_url(page, versions=False)).json()
    assert '<td data-label="Project">Marketing</td>' in data["html"]


# ------------------------------------------------------------------------------------------------
# Cost
# ------------------------------------------------------------------------------------------------
def count_queries(client, url: str) -> int:
    client.get(url)  # the session is saved on the first visit
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["", "?q=channel&state=connected", "?page=2"])
def test_the_queries_do_not_grow_with_the_channels(client, alice, customer, project, query):
    Project.objects.create(whapi_id="marketingAAAAAAAAAAA", name="Marketing", customer=customer)
    client.force_login(alice)
    many(project, 3)
    small_page = count_queries(client, dashboard_url(customer) + ("" if query == "?page=2" else query))
    small_poll = count_queries(client, poll_url(get_page(client, customer), versions=False))
    many(project, 2 * PAGE_SIZE + 57, start=3)
    large_page = count_queries(client, dashboard_url(customer) + query)
    large_poll = count_queries(client, poll_url(get_page(client, customer, query), versions=False))
    assert large_page == small_page
    assert large_poll == small_poll
    assert small_poll <= 6


def test_the_page_at_1000_channels_is_at_most_one_and_a_half_times_the_page_at_10(client, alice, customer, project):
    client.force_login(alice)
    many(project, 10)
    small = get_page(client, customer)
    many(project, 1000, start=10)
    large = get_page(client, customer)
    assert len(codes_shown(large)) == PAGE_SIZE
    assert len(large) <= 1.5 * len(small)
    assert len(client.get(poll_url(large)).content) == len(client.get(poll_url(small)).content)
