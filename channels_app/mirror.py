"""Mirroring Whapi: the partner's projects, and every channel Whapi has (updating ours, adopting ours
whose creation answer was lost, importing channels made elsewhere, noticing ours that are gone)."""

from django.db import transaction
from django.utils import timezone

from channels_app.models import Channel, Project
from channels_app.pipeline import channel_adopt, mirror_fields
from channels_app.status import channel_lock, channel_update
from channels_app.whapi import WhapiError, WhapiProject, partner_client

State = Channel.State


def projects_sync() -> dict[str, int]:
    """Mirror every Whapi project (all pages of `GET /projects`); returns counts created/updated."""
    counts = {"created": 0, "updated": 0}
    for remote in partner_client().list_projects():
        _, created = project_mirror(remote)
        counts["created" if created else "updated"] += 1
    return counts


def project_mirror(remote: WhapiProject, **fields) -> tuple[Project, bool]:
    """Create or update the mirror of a Whapi project (extra `fields`, e.g. customer, are set too)."""
    return Project.objects.update_or_create(
        whapi_id=remote.id,
        defaults={
            "name": remote.name or remote.id,
            "whapi_created_at": remote.creation_ts,
            "is_default": remote.is_default,
            "last_synced_at": timezone.now(),
            **fields,
        },
    )


def channels_sync() -> dict[str, int]:
    """Mirror every Whapi channel: update known ones, adopt ours whose answer was lost, import the
    ones made elsewhere (unassigned, webhooks untouched), and mark ours that vanished from Whapi."""
    counts = {"updated": 0, "adopted": 0, "imported": 0, "gone": 0}
    remote_channels = partner_client().list_channels()
    projects = {project.whapi_id: project for project in Project.objects.all()}
    waiting = {c.creation_marker: c for c in Channel.objects.filter(whapi_id__isnull=True, state=State.CREATING)}
    seen = set()
    for remote in remote_channels:
        seen.add(remote.id)
        local = Channel.objects.filter(whapi_id=remote.id).first()
        if local:
            channel_update(local, mirror_fields(remote))
            counts["updated"] += 1
            continue
        marker = next((m for m in waiting if m in (remote.name or "")), None)
        if marker:
            channel_adopt(waiting.pop(marker), remote, detail="found in Whapi by the sync")
            counts["adopted"] += 1
            continue
        with transaction.atomic():
            imported = Channel.objects.create(
                name=remote.name or remote.id,
                project=projects.get(remote.project_id),
                whapi_id=remote.id,
                token=remote.token,
                state=State.STOPPED if remote.stopped else State.WAITING_SCAN,
                last_error="Imported from Whapi: its webhooks are not managed by the portal until configured.",
                error_source=Channel.ErrorSource.CONFIGURE,
                health_check_due_at=timezone.now(),  # the checks sweep asks its health at once
                **mirror_fields(remote),
            )
            channel_update(imported, state=imported.state, detail="imported from Whapi", force=True)
        counts["imported"] += 1
    missing = Channel.objects.filter(whapi_id__isnull=False).exclude(state=State.DELETED).exclude(whapi_id__in=seen)
    for channel in missing:
        # Not in the list is no proof (adopted after the list was read, or shifted between pages while
        # Whapi deleted another channel): only Whapi's 404 for this very channel is (docs/whapi.md §1.3).
        try:
            remote = partner_client().get_channel(channel.whapi_id)
        except WhapiError as exc:
            if exc.status == 404 and _mark_gone(channel.pk):
                counts["gone"] += 1
            continue
        channel_update(channel, mirror_fields(remote))
        counts["updated"] += 1
    return counts


def _mark_gone(channel_id: int) -> bool:
    """Move the channel to deleted, Whapi having said it no longer exists, unless it is already (a sync
    running at the same time): decided under its row lock, so the move is told once."""
    with transaction.atomic():
        try:
            channel = channel_lock(channel_id)
        except Channel.DoesNotExist:
            return False
        if channel.state == State.DELETED:
            return False
        return channel_update(channel, state=State.DELETED, detail="no longer exists in Whapi")
