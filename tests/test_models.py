"""The state vocabulary on the model: every state has a label and a meaning, the groups agree with
each other, and days left is rounded the same way wherever it is shown."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Channel
from tests.conftest import make_channel

State = Channel.State


def test_every_state_has_a_label_and_a_one_line_meaning():
    assert set(Channel.STATE_MEANINGS) == set(State.values)
    for state in State:
        assert state.label and "\n" not in Channel.STATE_MEANINGS[state]


def test_the_groups_agree():
    assert not set(Channel.SETTING_UP) & set(Channel.LIVE)
    assert set(Channel.CONNECTABLE) <= set(Channel.LIVE) <= set(Channel.PRESENT_IN_WHAPI)
    assert State.QUEUED not in Channel.PRESENT_IN_WHAPI and State.DELETED not in Channel.PRESENT_IN_WHAPI
    assert Channel.PIPELINE_STEPS[-1] == State.CONNECTED


@pytest.mark.parametrize(
    ("left", "days"),
    [
        (timedelta(days=5, hours=12), 6),
        (timedelta(days=5), 5),
        (timedelta(hours=3), 1),
        (timedelta(seconds=-1), 0),
        (-timedelta(days=3), 0),
    ],
)
def test_days_left_are_rounded_up_and_never_negative(left, days):
    now = timezone.now()
    assert Channel(active_till=now + left).days_left(now) == days
    assert Channel(active_till=None).days_left(now) is None


def test_staff_and_customers_see_the_same_days_left(client, admin_client, alice, project):
    channel = make_channel(project, active_till=timezone.now() + timedelta(days=5, hours=12))
    admin_list = admin_client.get(reverse("admin:channels_app_channel_changelist")).content.decode()
    client.force_login(alice)
    customer_page = client.get(reverse("channels_app:channel", args=[channel.code])).content.decode()
    assert "6 days left" in admin_list
    assert "6 days left" in customer_page
