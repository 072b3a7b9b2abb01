"""Pieces the staff console's pages share: the channel actions and their permissions, a plain page
for an admin form, and the create budget as staff see it."""

from dataclasses import dataclass

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from channels_app import budget


@dataclass(frozen=True)
class ChannelAction:
    """A staff action on channels: its bulk-job name, the permission it needs and how it reads."""

    name: str
    permission: str
    label: str
    done: str  # what the message says once it worked, after the channel's name


CHANNEL_ACTIONS = {
    action.name: action
    for action in (
        ChannelAction("configure", "operate_channel", "Configure webhooks now", "webhooks set and verified"),
        ChannelAction(
            "rotate_secret", "operate_channel", "Rotate the webhook secret", "new webhook secret set and verified"
        ),
        ChannelAction("refresh", "operate_channel", "Refresh status", "status refreshed"),
        ChannelAction("restart", "operate_channel", "Restart", "restart requested"),
        ChannelAction("extend", "extend_channel", "Extend", "extended"),
        ChannelAction("mode", "change_mode", "Change mode", "mode changed"),
        ChannelAction("logout", "logout_number", "Log the number out", "number logged out"),
        ChannelAction("delete", "delete_in_whapi", "Delete in Whapi", "deleted in Whapi"),
    )
}


def has_channel_perm(request: HttpRequest, codename: str) -> bool:
    return request.user.is_active and request.user.is_staff and request.user.has_perm(f"channels_app.{codename}")


def require_channel_perm(request: HttpRequest, codename: str) -> None:
    """PermissionDenied (403) unless the user holds `channels_app.<codename>`."""
    if not has_channel_perm(request, codename):
        raise PermissionDenied


def may_run_any_channel_action(request: HttpRequest) -> bool:
    return any(has_channel_perm(request, action.permission) for action in CHANNEL_ACTIONS.values())


def admin_url(obj, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def channel_url(channel_id: int) -> str:
    return reverse("admin:channels_app_channel_change", args=[channel_id])


def form_page(request: HttpRequest, model_admin: admin.ModelAdmin, *, title: str, form, **context) -> TemplateResponse:
    """A page with one form in the admin's look (intermediate pages of actions, add pages)."""
    media = model_admin.media + form.media if form is not None else model_admin.media
    return TemplateResponse(
        request,
        context.pop("template", "admin/portal/form_page.html"),
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            "form": form,
            "media": media,
            **context,
        },
    )


def budget_context() -> dict:
    """The create budget for a page header: used/limit in the window, queue length, next free slot."""
    status = budget.status()
    return {
        "budget": status,
        "budget_window_minutes": round(status.window_seconds / 60),
        "budget_slot_free_now": status.next_free_slot <= timezone.now(),
    }
