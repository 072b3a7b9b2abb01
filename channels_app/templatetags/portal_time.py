"""`{{ value|when:"j M Y, H:i" }}`: a time in the zone the page is shown in, with the zone named, as
"14:05 Europe/Lisbon". Every time on the customer pages, the hand-off page and the mails goes
through it, so none is shown without its zone."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

register = template.Library()


def zone_name(value: datetime) -> str:
    key = getattr(value.tzinfo, "key", None)
    return key or value.tzname() or "UTC"


def when_text(value: datetime, fmt: str = "j M Y, H:i") -> str:
    """The time as plain text with its zone (for mails)."""
    local = timezone.localtime(value)
    return f"{date_format(local, fmt)} {zone_name(local)}"


@register.filter
def when(value: datetime | None, fmt: str = "j M Y, H:i"):
    """A <time> element: the local time with its zone, the exact instant in its datetime attribute."""
    if not value:
        return ""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), when_text(value, fmt))


@register.filter
def when_plain(value: datetime | None, fmt: str = "j M Y, H:i") -> str:
    """The same as text, for the mails (which have no HTML)."""
    return when_text(value, fmt) if value else ""


@register.simple_tag
def now_when(fmt: str = "H:i"):
    """The current time, as `when` shows it."""
    return when(timezone.now(), fmt)
