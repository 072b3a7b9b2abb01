"""The staff console's big lists (channels, webhook ledger, timeline, audit log) at any size: no
count or DISTINCT over the whole table, counts that say "more than" past what they counted, exact
searches by Whapi id, user name and day, and the retention line on top."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.admin import paging
from channels_app.models import AuditLog, Channel, ChannelEvent, Project, WebhookEvent
from tests.admin_support import url
from tests.conftest import make_channel

pytest_plugins = ["tests.admin_fixtures"]

LISTS = ["channel_changelist", "webhookevent_changelist", "channelevent_changelist", "auditlog_changelist"]
TABLES = {
    "channel_changelist": "channels_app_channel",
    "webhookevent_changelist": "channels_app_webhookevent",
    "channelevent_changelist": "channels_app_channelevent",
    "auditlog_changelist": "channels_app_auditlog",
}


def load(client, path: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return response, [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("page", LISTS)
def test_an_unfiltered_list_counts_no_whole_table_and_runs_no_distinct(staff_client, channel, page):
    WebhookEvent.objects.create(channel=channel, whapi_channel_id=channel.whapi_id, body="{}")
    ChannelEvent.objects.create(channel=channel, to_state="connected", source="poll")
    AuditLog.objects.create(source="staff", action="channel.extend")
    response, statements = load(staff_client, url(page))
    table = TABLES[page]
    counts = [sql for sql in statements if "COUNT(" in sql.upper() and f'"{table}"' in sql]
    # Every count over the table is of a LIMITed subquery or restricted by a WHERE (the attention bar).
    for sql in counts:
        assert "LIMIT" in sql.upper() or "WHERE" in sql.upper(), sql
    assert not [sql for sql in statements if "DISTINCT" in sql.upper()]
    assert response.context["cl"].result_count == 1


def test_past_what_it_counted_the_list_says_more_than(staff_client, channel, monkeypatch):
    monkeypatch.setattr(paging, "PAGES_AHEAD", 2)
    monkeypatch.setattr("channels_app.admin.ledger.WebhookEventAdmin.list_per_page", 2)
    WebhookEvent.objects.bulk_create(
        [WebhookEvent(channel=channel, whapi_channel_id=channel.whapi_id, body="{}") for _ in range(7)]
    )
    text = staff_client.get(url("webhookevent_changelist")).content.decode()
    assert re.search(r"more than 4\s+webhook events", text)
    assert "Select all more than 4 webhook events" in text
    # The last page it links leads on: from page 2 it counts as far as page 3.
    response = staff_client.get(url("webhookevent_changelist") + "?p=2")
    assert re.search(r"more than 6\s+webhook events", response.content.decode())
    # Near the end the count is exact again.
    response = staff_client.get(url("webhookevent_changelist") + "?p=4")
    assert re.search(r"\b7\s+webhook events", response.content.decode())
    assert len(response.context["cl"].result_list) == 1


def test_a_short_list_says_its_exact_count(staff_client, channel):
    WebhookEvent.objects.create(channel=channel, whapi_channel_id=channel.whapi_id, body="{}")
    text = staff_client.get(url("webhookevent_changelist")).content.decode()
    assert re.search(r"\b1\s+webhook event\b", text) and "more than" not in text


def test_the_filters_offer_their_vocabulary_without_a_query(staff_client, channel):
    response, statements = load(staff_client, url("webhookevent_changelist"))
    text = response.content.decode()
    for choice in ("?event=channel.post", "?event=users.delete", "?event=other", "?outcome__exact=failed"):
        assert choice in text
    response, statements = load(staff_client, url("auditlog_changelist"))
    text = response.content.decode()
    for choice in ("?target_type=channel", "?target_type=customer", "?source__exact=handoff"):
        assert choice in text
    assert not [sql for sql in statements if "DISTINCT" in sql.upper()]


def test_the_event_filter_lists_one_event_or_all_unhandled_ones(staff_client, channel):
    for kind, method in (("channel", "post"), ("users", "post"), ("statuses", "post")):
        WebhookEvent.objects.create(channel=channel, event_type=kind, event_method=method, body="{}")

    def listed(query: str) -> list[str]:
        response = staff_client.get(url("webhookevent_changelist") + query)
        return sorted(f"{e.event_type}.{e.event_method}" for e in response.context["cl"].result_list)

    assert listed("?event=users.post") == ["users.post"]
    assert listed("?event=other") == ["statuses.post"]
    assert staff_client.get(url("webhookevent_changelist") + "?event=nope.x").status_code == 302  # ?e=1


def at_noon(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def test_the_ledger_search_matches_ids_days_and_name_starts_exactly(staff_client, project):
    shop = make_channel(project)
    other = make_channel(project, name="Other shop", whapi_id="OTHERO-00001")
    rows = {
        "shop-1": WebhookEvent.objects.create(
            channel=shop, whapi_channel_id="MANTIS-M72HC", body="{}", received_at=at_noon("2026-03-01")
        ),
        "shop-2": WebhookEvent.objects.create(
            channel=shop, whapi_channel_id="MANTIS-M72HC", body="{}", received_at=at_noon("2026-03-02")
        ),
        "other-1": WebhookEvent.objects.create(
            channel=other, whapi_channel_id="OTHERO-00001", body="{}", received_at=at_noon("2026-03-01")
        ),
        "mantis-like": WebhookEvent.objects.create(whapi_channel_id="MANTIS-M72HCX", body="{}"),
    }
    names = {row.pk: name for name, row in rows.items()}

    def found(term: str) -> list[str]:
        response = staff_client.get(url("webhookevent_changelist"), {"q": term})
        return sorted(names[e.pk] for e in response.context["cl"].result_list)

    assert found("MANTIS-M72HC") == ["shop-1", "shop-2"]  # not the longer id that contains it
    assert found("mantis-m72hc") == ["shop-1", "shop-2"]
    assert found("2026-03-01") == ["other-1", "shop-1"]
    assert found("MANTIS-M72HC 2026-03-02") == ["shop-2"]
    assert found("shop b") == ["shop-1", "shop-2"]  # the start of "Shop bot"
    assert found("bot") == []  # not a substring
    assert found("2026-02-30") == []  # not a day: a name that no channel starts with


def test_the_audit_search_matches_targets_users_and_days_exactly(staff_client, channel, superuser, alice):
    AuditLog.objects.create(
        actor=superuser,
        actor_label="root",
        source="staff",
        action="channel.extend",
        target_type="channel",
        target_id="MANTIS-M72HC",
        at=at_noon("2026-03-01"),
        detail="30 days",
    )
    AuditLog.objects.create(
        actor=alice,
        actor_label="alice",
        source="customer",
        action="channel.rename",
        target_type="channel",
        target_id="OTHERO-00001",
        at=at_noon("2026-03-02"),
        detail="MANTIS-M72HC",
    )

    def found(term: str) -> list[str]:
        response = staff_client.get(url("auditlog_changelist"), {"q": term})
        return sorted(entry.action for entry in response.context["cl"].result_list)

    assert found("MANTIS-M72HC") == ["channel.extend"]  # the detail is not searched
    assert found("alice") == ["channel.rename"]
    assert found("ali") == []
    assert found("2026-03-01") == ["channel.extend"]
    assert found("root 2026-03-02") == []
    assert found("channel") == []  # kinds of action are a filter, not a search
    response = staff_client.get(url("auditlog_changelist") + "?action=channel")
    assert sorted(e.action for e in response.context["cl"].result_list) == ["channel.extend", "channel.rename"]


def test_each_record_list_says_how_long_it_keeps_its_rows(staff_client, settings):
    settings.RETENTION_LEDGER_DAYS, settings.RETENTION_AUDIT_DAYS = 30, 0
    ledger = staff_client.get(url("webhookevent_changelist")).content.decode()
    assert "Kept for 30 days (RETENTION_LEDGER_DAYS); older rows are deleted every hour." in ledger
    audit = staff_client.get(url("auditlog_changelist")).content.decode()
    assert "Kept forever (RETENTION_AUDIT_DAYS=0)." in audit
    assert "RETENTION_TIMELINE_DAYS" in staff_client.get(url("channelevent_changelist")).content.decode()


def test_the_channel_page_shows_the_newest_rows_and_links_to_all(staff_client, channel, monkeypatch):
    monkeypatch.setattr("channels_app.admin.channels.TIMELINE_SHOWN", 2)
    now = timezone.now()
    for minutes in (3, 2, 1):
        ChannelEvent.objects.create(
            channel=channel,
            to_state="connected",
            source="poll",
            detail=f"{minutes} min ago",
            at=now - timedelta(minutes=minutes),
        )
    other = make_channel(channel.project, name="Other", whapi_id="OTHERO-00001")
    ChannelEvent.objects.create(channel=other, to_state="error", source="poll", detail="other channel")
    text = staff_client.get(url("channel_change", channel.pk)).content.decode()
    assert "1 min ago" in text and "2 min ago" in text and "3 min ago" not in text
    all_of_it = url("channelevent_changelist") + f"?channel={channel.pk}"
    assert f'href="{all_of_it}"' in text
    assert f'href="{url("webhookevent_changelist")}?channel={channel.pk}"' in text
    response = staff_client.get(all_of_it)
    assert sorted(e.detail for e in response.context["cl"].result_list) == ["1 min ago", "2 min ago", "3 min ago"]
    assert "Shop bot (MANTIS-M72HC)" in response.content.decode()  # the filter names the channel


def test_the_attention_bar_counts_what_needs_a_look(staff_client, project):
    now = timezone.now()
    make_channel(project, name="broken", whapi_id="BROKEN-00001", state=Channel.State.ERROR)
    make_channel(project, name="ending", whapi_id="ENDING-00001", active_till=now + timedelta(days=2))
    make_channel(project, name="stale", whapi_id="STALEE-00001", status_stale=True, active_till=None)
    make_channel(project, name="gone", whapi_id="GONEGO-00001", state=Channel.State.DELETED, status_stale=True)
    imported = Project.objects.create(whapi_id="IMPORTED", name="imported", customer=None)
    make_channel(imported, name="imported", whapi_id="IMPORT-00001", active_till=None)
    attention = staff_client.get(url("channel_changelist")).context["attention"]
    # "broken" ends within 5 days too (make_channel's default); deleted channels need no look.
    assert (attention.errors, attention.expiring_soon, attention.stale, attention.unassigned) == (1, 2, 1, 1)


def test_the_channel_list_says_how_late_the_oldest_due_check_is(staff_client, project):
    now = timezone.now()
    make_channel(project, name="late", whapi_id="LATELA-00001", health_check_due_at=now - timedelta(minutes=12))
    make_channel(project, name="due", whapi_id="DUEDUE-00001", health_check_due_at=now - timedelta(seconds=20))
    make_channel(project, name="fine", whapi_id="FINEFI-00001", settings_check_due_at=now + timedelta(hours=1))
    text = staff_client.get(url("channel_changelist")).content.decode()
    bar = re.search(r'<p class="checks-bar" id="status-checks">(.*?)</p>', text, re.S).group(1)
    assert "oldest overdue health check: 12 min (2 due; each channel is asked after 15 quiet minutes)" in bar
    assert "oldest overdue settings read-back: none due (0 due; every 6 h)" in bar
