"""When a channel's state change is worth telling, and the sweep that tells it once it has lasted.

A connected channel that moves to disconnected is not told at once: phones drop and come back, and one
restart of Whapi's can report a channel down and up again within seconds. The move sets the channel's
`disconnect_alert_due_at` to the end of ALERT_GRACE_SECONDS, and its health check to the same moment,
so Whapi is asked then. The sweep (`disconnect_alerts_due`) tells the disconnect when the grace is
over and Whapi has confirmed it since (a report or an answer after the grace that left the channel
disconnected); a reconnect before that clears the due time and nothing is told. If Whapi cannot be
asked, the sweep asks again every RECHECK and tells the disconnect UNCONFIRMED_AFTER past the grace
anyway, saying it is unconfirmed. A channel that was told disconnected and connects again is told
back online.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from alerts.models import Event, Notification
from alerts.notify import Message, notify, words
from channels_app.models import Channel, ChannelEvent
from events.emit import event_emit, iso
from events.models import EventType

State = Channel.State

# The health check asked at the end of the grace has answered by then, as a rule (the sweep picks it
# up within seconds, and a gate call is bounded by WHAPI_TIMEOUT).
ANSWER_TIME = timedelta(seconds=10)
# Without an answer from Whapi at the end of the grace, ask again this often...
RECHECK = timedelta(seconds=30)
# ...and tell the disconnect anyway this long after the grace ended.
UNCONFIRMED_AFTER = timedelta(minutes=5)
# Channels one sweep round looks at.
BATCH = 100
# A channel's disconnects are told at most once in this window; the rest together at its end.
FLAP_WINDOW = timedelta(hours=1)


def grace() -> timedelta:
    return timedelta(seconds=settings.ALERT_GRACE_SECONDS)


def alert_fields(channel: Channel, previous: str, state: str, now: datetime) -> dict:
    """The alert columns a state move from `previous` to `state` sets (status.channel_update calls this
    for every move, in the same UPDATE); tells "back online" when a told disconnect is over."""
    if state == State.DISCONNECTED and previous == State.CONNECTED:
        ask_at = now + grace()
        return {"disconnect_alert_due_at": ask_at + ANSWER_TIME, "health_check_due_at": ask_at}
    if state in (State.EXPIRED, State.STOPPED):
        _tell_ended(channel, state)
    if state == State.ERROR:
        _tell_error(channel, now)
    # A move away from disconnected within the grace needs nothing here: the sweep finds the channel
    # no longer disconnected when its due time comes, and tells nothing.
    if channel.disconnect_alerted_at is not None and state in (State.CONNECTED, State.DELETED):
        if state == State.CONNECTED:
            _tell_back_online(channel, now)
        return {"disconnect_alerted_at": None}
    return {}


# The messages are written for each recipient in their language (notify.words): every text below is
# a function of the recipient's language, called when the rows are made.


def _number(channel: Channel, number: str = "") -> str:
    number = number or channel.connected_number
    return f"+{number}" if number else _("its number")


def _customer(channel: Channel) -> str:
    customer = channel.project.customer if channel.project_id else None
    return _(" (customer %(name)s)") % {"name": customer.name} if customer else ""


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}"


def _tell_back_online(channel: Channel, now: datetime) -> None:
    since = channel.disconnect_alerted_at
    notify(
        Event.BACK_ONLINE,
        channel,
        key=f"back-online:{channel.pk}:{since.isoformat()}",
        message=Message(
            subject=words(lambda: _("%(name)s: back online") % {"name": channel.name}),
            text=words(
                lambda: (
                    _(
                        "The channel “%(name)s”%(customer)s is connected again with %(number)s at %(when)s UTC, "
                        "after the disconnect we told you about at %(since)s UTC."
                    )
                    % {
                        "name": channel.name,
                        "customer": _customer(channel),
                        "number": _number(channel),
                        "when": _when(now),
                        "since": f"{since:%H:%M}",
                    }
                )
            ),
            fix=gettext_lazy("The channel"),
        ),
    )


ERROR_CAUSES = {
    Channel.ErrorSource.CREATE: gettext_lazy("Whapi could not create the channel."),
    Channel.ErrorSource.CONFIGURE: gettext_lazy("The channel exists, but its webhook settings could not be set."),
    Channel.ErrorSource.HEALTH: gettext_lazy("Whapi reports the channel in error; restarting it usually helps."),
    Channel.ErrorSource.ACTION: gettext_lazy("An action on the channel failed in Whapi."),
}


def _tell_error(channel: Channel, now: datetime) -> None:
    cause = ERROR_CAUSES.get(channel.error_source, gettext_lazy("Something went wrong with the channel."))
    notify(
        Event.ERROR,
        channel,
        key=f"error:{channel.pk}:{now.isoformat()}",
        message=Message(
            subject=words(lambda: _("%(name)s: in error") % {"name": channel.name}),
            text=words(
                lambda: (
                    _("The channel “%(name)s”%(customer)s is in error since %(when)s UTC. %(cause)s")
                    % {"name": channel.name, "customer": _customer(channel), "when": _when(now), "cause": cause}
                )
            ),
            fix=gettext_lazy("The channel (restart it there, or contact support)"),
        ),
    )


def tell_settings_drift(channel: Channel, problems: list[str]) -> None:
    """The channel's webhook settings were changed outside the portal (configure.py re-applies them):
    told once a day per channel, since someone keeps changing them."""
    today = timezone.now().date().isoformat()
    notify(
        Event.ERROR,
        channel,
        key=f"settings-drift:{channel.pk}:{today}",
        message=Message(
            subject=words(lambda: _("%(name)s: its webhook settings were changed") % {"name": channel.name}),
            text=words(
                lambda: (
                    _(
                        "The webhook settings of “%(name)s”%(customer)s in Whapi no longer were the portal's (someone "
                        "changed them in Whapi's panel or through the API); the portal has set them again. Until then "
                        "the portal may have missed status changes. What differed: %(problems)s"
                    )
                    % {"name": channel.name, "customer": _customer(channel), "problems": "; ".join(problems)[:1000]}
                )
            ),
            fix=gettext_lazy("The channel"),
        ),
    )


def _tell_still_down(channel: Channel, now: datetime) -> None:
    since = channel.state_changed_at
    minutes = int((now - since).total_seconds() // 60)
    notify(
        Event.STILL_DOWN,
        channel,
        key=f"still-down:{channel.pk}:{since.isoformat()}",
        message=Message(
            subject=words(
                lambda: (
                    _("%(name)s: still disconnected after %(minutes)d minutes")
                    % {"name": channel.name, "minutes": minutes}
                )
            ),
            text=words(
                lambda: (
                    _(
                        "The channel “%(name)s”%(customer)s has been disconnected since %(since)s UTC; its customer "
                        "was told, and it has not been linked again."
                    )
                    % {"name": channel.name, "customer": _customer(channel), "since": _when(since)}
                )
            ),
            fix=gettext_lazy("The channel (make a hand-off link there for the customer)"),
        ),
    )


def each_locked(due: QuerySet, order_by: str, tell: Callable[[Channel], int]) -> int:
    """`tell(channel)` for each of the first BATCH channels of `due` (by `order_by`), each in a
    transaction of its own with its row locked and `due`'s filter checked again; one that another
    sweep holds, or that left `due` meanwhile, is passed over. Returns the sum of what `tell` said.
    The sweeps' rule for what must be told once (docs/architecture.md, "Once")."""
    told = 0
    for channel_id in due.order_by(order_by).values_list("pk", flat=True)[:BATCH]:
        with transaction.atomic():
            channel = (
                due.select_for_update(skip_locked=True, of=("self",))
                .select_related("project__customer")
                .filter(pk=channel_id)
                .first()
            )
            if channel is not None:
                told += tell(channel)
    return told


def scan_reminders_due(now: datetime | None = None) -> int:
    """Remind customers of channels ready for their scan for SCAN_REMINDER_HOURS, once per wait (each
    under its row's lock, so two sweeps at once make one reminder and one hand-off link)."""
    now = now or timezone.now()
    waiting = Channel.objects.filter(
        state=State.WAITING_SCAN, state_changed_at__lte=now - timedelta(hours=settings.SCAN_REMINDER_HOURS)
    ).exclude(scan_reminded_for=F("state_changed_at"))
    return each_locked(waiting, "state_changed_at", _tell_not_scanned)


def _tell_not_scanned(channel: Channel) -> int:
    """The scan reminder of `channel` (locked), and its record; returns 1."""
    since = channel.state_changed_at
    notify(
        Event.NOT_SCANNED,
        channel,
        key=f"not-scanned:{channel.pk}:{since.isoformat()}",
        message=Message(
            subject=words(
                lambda channel=channel: _("%(name)s: waiting for its QR code to be scanned") % {"name": channel.name}
            ),
            text=words(
                lambda channel=channel, since=since: (
                    _(
                        "The channel “%(name)s”%(customer)s has been ready since %(since)s UTC, but no phone has "
                        "been linked to it: it cannot send or receive messages until someone scans its QR code "
                        "with WhatsApp (Linked devices → Link a device). If someone else holds the phone, send "
                        "them the link below: it shows only this channel's QR code, without a login."
                    )
                    % {"name": channel.name, "customer": _customer(channel), "since": _when(since)}
                )
            ),
            fix=gettext_lazy("Scan it here"),
            handoff=True,
        ),
    )
    Channel.objects.filter(pk=channel.pk).update(scan_reminded_for=since)
    return 1


def _tell_disconnected(channel: Channel, *, confirmed: bool) -> None:
    since = channel.state_changed_at
    confirmation = (
        gettext_lazy("Whapi confirms the channel is waiting for a new scan.")
        if confirmed
        else gettext_lazy("Whapi could not be asked to confirm it; the channel may be back by the time you look.")
    )
    notify(
        Event.DISCONNECTED,
        channel,
        key=f"disconnected:{channel.pk}:{since.isoformat()}",
        message=Message(
            subject=words(lambda: _("%(name)s: the WhatsApp number disconnected") % {"name": channel.name}),
            text=words(
                lambda: (
                    _(
                        "The channel “%(name)s”%(customer)s has been disconnected since %(since)s UTC: its WhatsApp "
                        "number is no longer linked, so it sends and receives nothing. %(confirmation)s\n\n"
                        "Likely cause: the number was logged out on the phone (WhatsApp → Linked devices), the phone "
                        "was offline for a long time, or WhatsApp ended the session."
                    )
                    % {
                        "name": channel.name,
                        "customer": _customer(channel),
                        "since": _when(since),
                        "confirmation": confirmation,
                    }
                )
            ),
            fix=gettext_lazy("To connect it again, scan the QR code on the channel page"),
        ),
    )


def _period(channel: Channel) -> str:
    return channel.active_till.isoformat() if channel.active_till else "none"


def _trial(channel: Channel) -> bool:
    return channel.mode == Channel.Mode.TRIAL


def _tell_ended(channel: Channel, state: str) -> None:
    expired = state == State.EXPIRED

    def subject() -> str:
        said = _("%(name)s: expired") if expired else _("%(name)s: stopped")
        return said % {"name": channel.name}

    def text() -> str:
        if not expired:
            said = _(
                "The channel “%(name)s”%(customer)s no longer sends or receives messages: it was stopped in "
                "Whapi. It has to be started again."
            )
        elif _trial(channel):
            said = _(
                "The channel “%(name)s”%(customer)s no longer sends or receives messages: its trial ran out. "
                "Extending it with days brings it back."
            )
        else:
            said = _(
                "The channel “%(name)s”%(customer)s no longer sends or receives messages: its paid time ran "
                "out. Extending it with days brings it back."
            )
        return said % {"name": channel.name, "customer": _customer(channel)}

    notify(
        Event.EXPIRED,
        channel,
        key=f"{state}:{channel.pk}:{_period(channel)}",
        message=Message(subject=words(subject), text=words(text), fix=gettext_lazy("The channel")),
    )


def expiry_reminders_due(now: datetime | None = None) -> int:
    """Remind of channels whose paid time ends within an EXPIRY_REMINDER_DAYS threshold not yet told
    for this period: the smallest threshold reached, once. Returns how many channels were told.

    Each threshold's query takes only the channels whose smallest threshold reached is that one, so a
    paid time that Whapi moves nearer while the sweep is between two queries is told by the next sweep
    at its own threshold, never at a larger one first. Each channel is told under its row's lock, with
    its columns rechecked, so two sweeps at once tell it once."""
    now = now or timezone.now()
    told = 0
    after = now
    for threshold in sorted(settings.EXPIRY_REMINDER_DAYS):
        until = now + timedelta(days=threshold)
        due = (
            Channel.objects.filter(active_till__gt=after, active_till__lte=until)
            .filter(state__in=Channel.PRESENT_IN_WHAPI)
            .exclude(state__in=(State.EXPIRED, State.STOPPED))
            .filter(
                Q(expiry_reminded_for__isnull=True)
                | ~Q(expiry_reminded_for=F("active_till"))
                | Q(expiry_reminded_days__gt=threshold)
            )
        )
        told += each_locked(due, "active_till", partial(_tell_expiring, threshold=threshold, now=now))
        after = until
    return told


def _tell_expiring(channel: Channel, threshold: int, now: datetime) -> int:
    """The reminder of `channel` (locked) for `threshold`, and its record; returns 1."""
    days = channel.days_left(now)
    event_emit(
        channel=channel, type=EventType.EXPIRING, data={"days_left": days, "active_till": iso(channel.active_till)}
    )
    notify(
        Event.EXPIRING,
        channel,
        key=f"expiring:{channel.pk}:{_period(channel)}:{threshold}",
        message=Message(
            subject=words(
                lambda: (
                    ngettext("%(name)s: %(days)d day left", "%(name)s: %(days)d days left", days)
                    % {"name": channel.name, "days": days}
                )
            ),
            text=words(lambda: _expiring_text(channel, days)),
            fix=gettext_lazy("The channel"),
        ),
    )
    Channel.objects.filter(pk=channel.pk).update(
        expiry_reminded_for=channel.active_till, expiry_reminded_days=threshold
    )
    return 1


def disconnect_alerts_due(now: datetime | None = None) -> int:
    """Tell the disconnects whose grace is over and that Whapi confirmed, and escalate to staff those
    told that still last ALERT_ESCALATE_MINUTES after they began; returns how many were told."""
    now = now or timezone.now()
    return each_locked(
        Channel.objects.filter(disconnect_alert_due_at__lte=now), "pk", lambda channel: _decide(channel, now)
    )


def _last_disconnect_told(channel: Channel) -> datetime | None:
    return (
        Notification.objects.filter(channel=channel, event=Event.DISCONNECTED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def _disconnects_since(channel: Channel, since: datetime) -> int:
    """Moves from connected to disconnected after `since` (the timeline's rows)."""
    return ChannelEvent.objects.filter(
        channel=channel, from_state=State.CONNECTED, to_state=State.DISCONNECTED, at__gt=since
    ).count()


def _decide(channel: Channel, now: datetime) -> int:
    from channels_app.status import channel_update

    # At most one disconnect message per channel per FLAP_WINDOW: disconnects after the last one told
    # wait for the window's end and are told together there, with the state the channel is in by then.
    last_told = _last_disconnect_told(channel)
    window_end = last_told + FLAP_WINDOW if last_told else None
    repeats = _disconnects_since(channel, last_told) if last_told else 0
    if repeats and now < window_end:
        channel_update(channel, {"disconnect_alert_due_at": window_end})
        return 0
    if channel.state != State.DISCONNECTED:
        if repeats:
            _tell_flaps(channel, repeats, last_told, now)
        channel_update(channel, {"disconnect_alert_due_at": None})
        return 1 if repeats else 0
    if channel.disconnect_alerted_at is not None:  # told already: this is the escalation's time
        _tell_still_down(channel, now)
        channel_update(channel, {"disconnect_alert_due_at": None})
        return 1
    grace_over = channel.state_changed_at + grace()
    confirmed = channel.last_confirmed_at is not None and channel.last_confirmed_at >= grace_over
    if confirmed or now >= grace_over + UNCONFIRMED_AFTER:
        if repeats > 1:
            _tell_flaps(channel, repeats, last_told, now)
        else:
            _tell_disconnected(channel, confirmed=confirmed)
        event_emit(
            channel=channel,
            type=EventType.DISCONNECTED,
            data={"confirmed": confirmed, "disconnected_at": iso(channel.state_changed_at)},
        )
        escalate_at = channel.state_changed_at + timedelta(minutes=settings.ALERT_ESCALATE_MINUTES)
        channel_update(channel, {"disconnect_alert_due_at": max(escalate_at, now), "disconnect_alerted_at": now})
        return 1
    channel_update(channel, {"disconnect_alert_due_at": now + RECHECK, "health_check_due_at": now})
    return 0


def _tell_flaps(channel: Channel, times: int, since: datetime, now: datetime) -> None:
    """One message for the disconnects after the last one told: how many, and the state now."""
    still = channel.state == State.DISCONNECTED
    notify(
        Event.DISCONNECTED,
        channel,
        key=f"flaps:{channel.pk}:{since.isoformat()}",
        message=Message(
            subject=words(
                lambda: (
                    ngettext(
                        "%(name)s: disconnected %(times)d more time in the last hour",
                        "%(name)s: disconnected %(times)d more times in the last hour",
                        times,
                    )
                    % {"name": channel.name, "times": times}
                )
            ),
            text=words(lambda: _flaps_text(channel, times, since, now, still)),
            fix=gettext_lazy("The channel"),
        ),
    )


def _flaps_text(channel: Channel, times: int, since: datetime, now: datetime, still: bool) -> str:
    said = ngettext(
        "The channel “%(name)s”%(customer)s lost its WhatsApp number %(times)d more time between %(since)s "
        "and %(now)s UTC, after the disconnect we told you about.",
        "The channel “%(name)s”%(customer)s lost its WhatsApp number %(times)d more times between %(since)s "
        "and %(now)s UTC, after the disconnect we told you about.",
        times,
    ) % {
        "name": channel.name,
        "customer": _customer(channel),
        "times": times,
        "since": f"{since:%H:%M}",
        "now": f"{now:%H:%M}",
    }
    if still:
        state = _("It is disconnected now.")
    else:
        state = _("It is %(state)s now.") % {"state": channel.get_state_display().lower()}
    advice = _(
        "A number that keeps dropping usually means the phone loses its connection or its battery saver stops "
        "WhatsApp; keep the phone online, with WhatsApp allowed to run in the background."
    )
    return f"{said} {state}\n\n{advice}"


def _expiring_text(channel: Channel, days: int) -> str:
    if _trial(channel):
        said = ngettext(
            "The trial of the channel “%(name)s”%(customer)s ends on %(when)s UTC, in %(days)d day. Then it "
            "stops sending and receiving messages until it is extended.",
            "The trial of the channel “%(name)s”%(customer)s ends on %(when)s UTC, in %(days)d days. Then it "
            "stops sending and receiving messages until it is extended.",
            days,
        )
    else:
        said = ngettext(
            "The paid time of the channel “%(name)s”%(customer)s ends on %(when)s UTC, in %(days)d day. Then it "
            "stops sending and receiving messages until it is extended.",
            "The paid time of the channel “%(name)s”%(customer)s ends on %(when)s UTC, in %(days)d days. Then it "
            "stops sending and receiving messages until it is extended.",
            days,
        )
    when = _when(channel.active_till)
    return said % {"name": channel.name, "customer": _customer(channel), "when": when, "days": days}
