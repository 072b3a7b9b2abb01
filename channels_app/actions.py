"""Actions on channels and projects taken by staff (admin) and customers (self-service pages),
each recorded in the audit log with its result. Views and the admin call these; these call the
pipeline, the configuration, the mirror and Whapi. (bulk_jobs.py runs one of them over many channels.)

Every action raises `ActionError` with a message fit to show (it names the channel and Whapi's
reason) and leaves the channel as it was when Whapi refuses; it never lets a WhapiError through.
"""

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from channels_app import background, configure, handoff, mirror, pipeline, webhook_urls
from channels_app.audit import acting_user, audit
from channels_app.models import AuditLog, Channel, ChannelEvent, Customer, Project, new_webhook_secret
from channels_app.status import channel_health_check, channel_lock, channel_record_error, channel_update
from channels_app.whapi import CHANNEL_MODES, QrCode, WhapiError, gate_client, partner_client

logger = logging.getLogger(__name__)

State = Channel.State
Source = AuditLog.Source
# Event types a customer may subscribe their own webhook to (docs/whapi.md §3).
CUSTOMER_EVENT_TYPES = ("messages", "statuses", "chats", "contacts", "groups", "presences", "calls", "labels")
CUSTOMER_EVENT_METHODS = ("post", "put", "patch", "delete")


class ActionError(Exception):
    """An action that could not be carried out, with a message fit to show the person who asked.

    `outcome_unknown`: Whapi may have carried it out although we got no good answer (a timeout, a
    5xx), so repeating it blindly could, for example, pay an extension twice.
    `field`: the input the message is about, when it is about one ("name", "phone", "url", "events").
    `reason`: what kind of refusal, for callers that answer each kind differently (the API):
    "whapi" (Whapi refused or could not be reached), "quota" (the customer's quota is used up),
    "project" (not linked to Whapi), or "" (the channel's state does not allow it, or bad input).
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False, field: str = "", reason: str = ""):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown
        self.field = field
        self.reason = reason


def _timeline_source(source: str) -> str:
    return {
        Source.STAFF: ChannelEvent.Source.STAFF,
        Source.CUSTOMER: ChannelEvent.Source.CUSTOMER,
        Source.HANDOFF: ChannelEvent.Source.CUSTOMER,
        Source.API: ChannelEvent.Source.API,
    }.get(source, ChannelEvent.Source.SYSTEM)


def _run(channel: Channel, action: str, verb: str, call: Callable[[], object], *, actor, source: str, detail: str = ""):
    """Call Whapi for `channel`, audit the outcome, and turn a refusal into ActionError."""
    if not channel.whapi_id:
        raise ActionError(_("%(channel)s: the channel does not exist in Whapi yet.") % {"channel": channel})
    try:
        result = call()
    except WhapiError as exc:
        # The error kept for staff is in English; the person who asked reads it in their language
        # (`verb` is marked with gettext_noop by the callers; Whapi's own words stay as Whapi said them).
        message = f"{channel.name} ({channel.whapi_id}): Whapi could not {verb}: {exc.message}"
        audit(actor=actor, source=source, action=action, target=channel, ok=False, detail=f"{detail} {exc}".strip())
        channel_record_error(channel, message, source=Channel.ErrorSource.ACTION)
        shown = _("%(channel)s (%(id)s): Whapi could not %(action)s: %(reason)s") % {
            "channel": channel.name,
            "id": channel.whapi_id,
            "action": _(verb),
            "reason": exc.message,
        }
        raise ActionError(shown, outcome_unknown=exc.outcome_unknown, reason="whapi") from exc
    audit(actor=actor, source=source, action=action, target=channel, detail=detail)
    return result


def _gate(channel: Channel, *, interactive: bool = False):
    if not channel.token or not channel.api_url:
        raise ActionError(_("%(channel)s: the channel has no API access yet.") % {"channel": channel})
    return gate_client(channel.api_url, channel.token, interactive=interactive)


def _refresh_mirror(channel: Channel) -> None:
    """Re-read the channel from Whapi after an action that changed it; failures only leave it stale."""
    try:
        remote = partner_client().get_channel(channel.whapi_id)
    except WhapiError as exc:
        logger.warning("channel %s: could not re-read from Whapi: %s", channel.pk, exc)
        return
    channel_update(channel, pipeline.mirror_fields(remote))


# ------------------------------------------------------------------------------------------------
# One channel
# ------------------------------------------------------------------------------------------------
def channel_request(
    *,
    project: Project,
    name: str,
    actor,
    source: str,
    request_key: str | None = None,
    enforce_quota: bool = True,
) -> tuple[Channel, bool]:
    """Ask for a new channel in `project` through the pipeline (`pipeline.channel_queue`), audited;
    returns (the channel, whether this call recorded it).

    A repeated `request_key` (a double-submitted form) returns the first request's channel and False,
    and records nothing more. Raises ActionError with the reason when the request is refused.
    """
    try:
        channel, recorded = pipeline.channel_queue(
            project=project,
            name=name,
            requested_by=acting_user(actor),
            request_key=request_key,
            source=_timeline_source(source),
            enforce_quota=enforce_quota,
        )
    except pipeline.RequestRefused as exc:
        audit(
            actor=actor,
            source=source,
            action="channel.request",
            target=project,
            ok=False,
            detail=f"{(name or '').strip()[:150]}: {exc}",
        )
        field = "name" if exc.reason == "name" else ""
        raise ActionError(str(exc), field=field, reason="" if field else exc.reason) from exc
    if recorded:
        quota = "" if enforce_quota else " (quota not enforced)"
        audit(actor=actor, source=source, action="channel.request", target=channel, detail=f"in {project}{quota}")
    return channel, recorded


def _configure_now(channel: Channel, *, source: str) -> bool:
    """Apply and verify the channel's settings now, with a fresh count of attempts; `channel` is read
    again afterwards. True when Whapi holds them."""
    channel_update(channel, {"configure_attempts": 0})
    ok = configure.channel_configure(channel.pk, source=_timeline_source(source))
    channel.refresh_from_db()
    return ok


def channel_reconfigure(channel: Channel, *, actor, source: str) -> None:
    """Apply and verify the webhook settings now (staff's "configure webhooks now"), with a fresh
    count of attempts."""
    if not channel.whapi_id:
        raise ActionError(f"{channel}: the channel does not exist in Whapi yet.")
    if channel.init_until and timezone.now() < channel.init_until:
        raise ActionError(f"{channel}: still initializing until {channel.init_until:%H:%M:%S} UTC; try again then.")
    ok = _configure_now(channel, source=source)
    audit(actor=actor, source=source, action="channel.configure", target=channel, ok=ok, detail=channel.last_error)
    if not ok:
        raise ActionError(f"{channel.name} ({channel.whapi_id}): {channel.last_error or 'configuration failed'}")


def channel_rotate_secret(channel: Channel, *, actor, source: str) -> None:
    """Give the channel a new webhook secret and configure Whapi with it. Callbacks with the previous
    secret are accepted until Whapi's settings are read back with the new one; when configuring fails
    now, the pipeline keeps trying and both secrets keep working meanwhile."""
    if not channel.whapi_id or channel.state not in Channel.PRESENT_IN_WHAPI:
        raise ActionError(f"{channel}: the channel does not exist in Whapi yet.")
    with transaction.atomic():
        locked = channel_lock(channel.pk)
        # A rotation during a rotation keeps the secret Whapi may still hold, not the unconfirmed one.
        previous = locked.previous_webhook_secret or locked.webhook_secret
        channel_update(
            locked,
            {"previous_webhook_secret": previous, "webhook_secret": new_webhook_secret()},
        )
    ok = _configure_now(channel, source=source)
    audit(actor=actor, source=source, action="channel.rotate_secret", target=channel, ok=ok, detail=channel.last_error)
    if not ok:
        raise ActionError(
            f"{channel.name} ({channel.whapi_id}): the new secret is stored but Whapi does not have it yet "
            f"({channel.last_error or 'configuration failed'}); both secrets work until it does."
        )


def channel_refresh(channel: Channel, *, actor, source: str) -> str:
    """Re-read the channel's mirror and health from Whapi now; returns the health status text.
    Raises ActionError when Whapi could not be asked (the status is then marked stale)."""
    if not channel.whapi_id:
        raise ActionError(f"{channel}: the channel does not exist in Whapi yet.")
    _refresh_mirror(channel)
    outcome = channel_health_check(channel.pk, source=_timeline_source(source))
    channel.refresh_from_db()
    if outcome is None and channel.status_stale:
        raise ActionError(f"{channel.name} ({channel.whapi_id}): {channel.last_error}")
    return channel.health_status


def channel_restart(channel: Channel, *, actor, source: str) -> None:
    _run(
        channel,
        "channel.restart",
        gettext_noop("restart the channel"),
        lambda: partner_client().restart_channel(channel.whapi_id),
        actor=actor,
        source=source,
    )
    background.enqueue_on_commit("channel_health_check", channel.pk)


def channel_extend(channel: Channel, *, days: int, comment: str, actor, source: str) -> None:
    """Move `days` days from the partner balance to the channel (docs/whapi.md §1.3)."""
    if not isinstance(days, int) or days < 1 or days > 3650:
        raise ActionError("Days must be a whole number from 1 to 3650.")
    comment = (comment or "").strip()
    if not comment:
        raise ActionError("Whapi requires a comment for an extension.")
    _run(
        channel,
        "channel.extend",
        f"extend the channel by {days} days",
        lambda: partner_client().extend_channel(channel.whapi_id, days=days, comment=comment),
        actor=actor,
        source=source,
        detail=f"{days} days: {comment}",
    )
    _refresh_mirror(channel)


def channel_change_mode(channel: Channel, *, mode: str, actor, source: str) -> None:
    """Switch trial / sandbox (`dev`) / live; Whapi restarts the channel afterwards (~30 s)."""
    if mode not in CHANNEL_MODES:
        raise ActionError(f"Unknown mode {mode!r}.")
    _run(
        channel,
        "channel.mode",
        f"switch the channel to {mode}",
        lambda: partner_client().change_mode(channel.whapi_id, mode),
        actor=actor,
        source=source,
        detail=f"{channel.mode or 'live'} → {mode}",
    )
    channel_update(channel, {"mode": mode})


def channel_logout(channel: Channel, *, actor, source: str) -> None:
    """Log the WhatsApp number out (gate `POST /users/logout`)."""

    def call():
        try:
            _gate(channel).logout()
        except WhapiError as exc:
            if exc.status != 409:  # 409: no number is linked, which is what we want
                raise

    _run(
        channel,
        "channel.logout",
        gettext_noop("log the number out"),
        call,
        actor=actor,
        source=source,
        detail=channel.display_number,
    )
    fields = {"connected_number": "", "connected_name": "", "disconnect_reported_at": None}
    # Whapi's remedy for a channel in error is to log the number out and link again (docs/whapi.md
    # §2): once logged out, the channel waits for a phone like any disconnected one, and the next
    # health report says whether the problem is gone (an ERROR puts it back).
    relinking = (
        channel.state == State.ERROR
        and channel.error_source == Channel.ErrorSource.HEALTH
        and bool(channel.connected_number)
    )
    if relinking:
        fields.update(last_error="", error_source="", health_check_due_at=timezone.now())
    channel_update(
        channel,
        fields,
        state=State.DISCONNECTED if channel.state == State.CONNECTED or relinking else "",
        source=_timeline_source(source),
        detail="logged out from the portal",
    )


def channel_delete(channel: Channel, *, actor, source: str) -> None:
    """Log the number out, then delete the channel in Whapi (its unused days go back to the balance).

    A channel still queued is withdrawn from the queue instead; one being created cannot be deleted
    until it exists.
    """
    channel.refresh_from_db()  # the pump may have created it since this object was loaded
    if channel.state == State.DELETED:
        return
    if not channel.whapi_id:
        # Withdraw it from the queue only if the pump has not claimed it meanwhile (the pump claims
        # under the same lock).
        with transaction.atomic():
            locked = channel_lock(channel.pk)
            if locked.whapi_id or locked.state not in (State.QUEUED, State.ERROR):
                raise ActionError(
                    _("%(channel)s: its creation is under way; delete it once it exists in Whapi.")
                    % {"channel": channel}
                )
            channel_update(
                locked, state=State.DELETED, source=_timeline_source(source), detail="withdrawn before creation"
            )
        audit(actor=actor, source=source, action="channel.delete", target=channel, detail="deleted before creation")
        channel.state = State.DELETED
        return
    if channel.connected_number or channel.state == State.CONNECTED:
        try:
            channel_logout(channel, actor=actor, source=source)
        except ActionError:
            logger.warning("channel %s: logout before delete failed; deleting anyway", channel.pk)

    def call():
        try:
            partner_client().delete_channel(channel.whapi_id)
        except WhapiError as exc:
            if exc.status != 404:  # gone already: the wish is fulfilled
                raise

    _run(channel, "channel.delete", gettext_noop("delete the channel"), call, actor=actor, source=source)
    background.channel_tasks_cancel(channel.pk, "channel_configure", "channel_reconcile")
    handoff.handoff_links_revoke(channel=channel)
    channel_update(channel, state=State.DELETED, source=_timeline_source(source), detail="deleted")


def channel_rename(channel: Channel, *, name: str, actor, source: str) -> None:
    name = (name or "").strip()
    if not name or len(name) > 150:
        raise ActionError(_("A channel name needs 1 to 150 characters."), field="name")
    old = channel.name
    if channel.whapi_id:
        _run(
            channel,
            "channel.rename",
            gettext_noop("rename the channel"),
            lambda: partner_client().update_channel(channel.whapi_id, name=name, project_id=channel.whapi_project_id),
            actor=actor,
            source=source,
            detail=f"{old} → {name}",
        )
        channel_update(channel, {"name": name, "whapi_name": name})
    else:
        channel_update(channel, {"name": name})
        audit(actor=actor, source=source, action="channel.rename", target=channel, detail=f"{old} → {name}")


def validate_customer_webhook(url: str, events: list[dict]) -> tuple[str, list[dict]]:
    """Check a customer webhook; returns it cleaned, raises ActionError naming what is wrong."""
    url = (url or "").strip()
    if url and (problem := webhook_urls.customer_url_problem(url)):
        raise ActionError(problem, field="url")
    clean = []
    for event in events or []:
        if not isinstance(event, dict) or event.get("type") not in CUSTOMER_EVENT_TYPES:
            raise ActionError(
                _("Unknown event type %(event)r; choose from %(types)s.")
                % {"event": event, "types": ", ".join(CUSTOMER_EVENT_TYPES)},
                field="events",
            )
        if event.get("method", "post") not in CUSTOMER_EVENT_METHODS:
            raise ActionError(_("Unknown event method %(method)r.") % {"method": event.get("method")}, field="events")
        clean.append({"type": event["type"], "method": event.get("method", "post")})
    if url and not clean:
        raise ActionError(_("Choose at least one event type for the webhook."), field="events")
    return url, clean


def channel_set_customer_webhook(channel: Channel, *, url: str, events: list[dict], actor, source: str) -> bool:
    """Store the customer's own webhook and apply the merged settings; True when applied and verified now.

    When the channel is not configured yet, the webhook is applied at configuration time.
    """
    url, events = validate_customer_webhook(url, events)
    channel_update(channel, {"customer_webhook_url": url, "customer_webhook_events": events})
    audit(actor=actor, source=source, action="channel.customer_webhook", target=channel, detail=url or "removed")
    if not channel.webhooks_verified_at or channel.state in Channel.SETTING_UP:
        return False
    ok = _configure_now(channel, source=source)
    if not ok:
        raise ActionError(
            _("The webhook was saved but could not be applied yet (%(error)s); the portal keeps trying.")
            % {"error": channel.last_error}
        )
    return True


def channel_reveal_token(channel: Channel, *, actor, source: str) -> str:
    """The channel's API token, for an explicit request; every reveal is recorded."""
    if channel.state == State.DELETED:
        raise ActionError(_("%(channel)s: the channel is deleted; its token no longer works.") % {"channel": channel})
    if not channel.token:
        raise ActionError(_("%(channel)s: the channel has no token yet.") % {"channel": channel})
    audit(actor=actor, source=source, action="channel.reveal_token", target=channel)
    return channel.token


def channel_qr(channel: Channel) -> QrCode | None:
    """The current QR code to scan; None when the number is connected already. Raises ActionError."""
    try:
        return _gate(channel, interactive=True).login_qr()
    except WhapiError as exc:
        if exc.status == 409:
            return None
        raise ActionError(
            _("The QR code is not available right now: %(reason)s") % {"reason": exc.message}, reason="whapi"
        ) from exc


def channel_pairing_code(channel: Channel, *, phone: str, actor, source: str) -> str:
    """A pairing code for linking by phone number (digits only, 7 to 15). Raises ActionError."""
    phone = (phone or "").strip()
    if not phone.isascii() or not phone.isdigit() or not 7 <= len(phone) <= 15:
        raise ActionError(
            _("Enter the phone number with country code, digits only (7 to 15 digits), e.g. 14155550123."),
            field="phone",
        )
    return _run(
        channel,
        "channel.pairing_code",
        gettext_noop("make a pairing code"),
        lambda: _gate(channel, interactive=True).pairing_code(phone),
        actor=actor,
        source=source,
    )


def whapi_sync(*, actor, source: str = Source.STAFF, projects_only: bool = False) -> str:
    """Mirror Whapi: projects first (channels are matched to them), then every channel unless
    `projects_only`. Audited (`projects.sync` or `channels.sync`).

    Returns a summary for staff; raises ActionError with Whapi's reason when the sync failed.
    """
    action = "projects.sync" if projects_only else "channels.sync"
    try:
        projects = mirror.projects_sync()
        counts = None if projects_only else mirror.channels_sync()
    except WhapiError as exc:
        audit(actor=actor, source=source, action=action, ok=False, detail=str(exc))
        raise ActionError(f"The sync with Whapi failed: {exc.message or exc}") from exc
    detail = f"{projects['created']} new, {projects['updated']} updated"
    if counts is not None:
        detail = (
            f"{counts['imported']} imported, {counts['gone']} gone from Whapi, {counts['updated']} updated, "
            f"{counts['adopted']} adopted; projects: {detail}"
        )
    audit(actor=actor, source=source, action=action, detail=detail)
    return detail


# ------------------------------------------------------------------------------------------------
# Projects and tenancy
# ------------------------------------------------------------------------------------------------
def project_create(*, name: str, customer: Customer | None, actor, source: str = Source.STAFF) -> Project:
    """Create a Whapi project (`PUT /projects`) and mirror it, assigned to `customer`."""
    name = (name or "").strip()
    if not name:
        raise ActionError("Give the project a name.")
    try:
        remote = partner_client().create_project(name)
    except WhapiError as exc:
        audit(actor=actor, source=source, action="project.create", customer=customer, ok=False, detail=f"{name}: {exc}")
        raise ActionError(f"Whapi could not create the project {name!r}: {exc.message}") from exc
    project, _created = mirror.project_mirror(remote, customer=customer)
    audit(actor=actor, source=source, action="project.create", target=project, customer=customer)
    return project


def project_assign(project: Project, *, customer: Customer | None, actor, source: str = Source.STAFF) -> None:
    previous = project.customer
    Project.objects.filter(pk=project.pk).update(customer=customer)
    project.customer = customer
    if previous != customer:
        # Links handed out by the previous customer must not outlive its access to the channels.
        handoff.handoff_links_revoke(project=project)
    audit(
        actor=actor,
        source=source,
        action="project.assign",
        target=project,
        customer=customer or previous,
        detail=f"{previous or 'unassigned'} → {customer or 'unassigned'}",
    )
