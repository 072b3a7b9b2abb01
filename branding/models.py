"""The partner's brand (one row), and a customer's own name and logo for partners who resell through
agencies. `branding.brand.brand_for` reads them; nothing else does."""

import re
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.utils.translation import gettext_noop

from branding.contrast import HEX_COLOR, PAGE_BACKGROUND, WHITE, contrast_problem

# The neutral default name, shown in the reader's language (brand.brand_for).
DEFAULT_NAME = gettext_noop("Channel portal")
DEFAULT_PRIMARY = "#0f2a24"
DEFAULT_ACCENT = "#0b7a5e"
# The header's links (static/portal/portal.css, .nav a) are this light on the primary colour.
HEADER_LINK = "#cfe3dc"

hex_color = RegexValidator(HEX_COLOR, "Write the colour as # and six hex digits, e.g. #0b7a5e.")


def readable_under_white_text(color: str) -> None:
    """The header's colour: its white name and light links must stay readable on it."""
    if HEX_COLOR.match(color or ""):
        problem = contrast_problem(color, against={"the white text on it": WHITE, "the header's links": HEADER_LINK})
        if problem:
            raise ValidationError(problem)


def readable_buttons_and_links(color: str) -> None:
    """The accent: white button text on it, and it as link text on the page's background."""
    if HEX_COLOR.match(color or ""):
        problem = contrast_problem(
            color, against={"the white text of buttons": WHITE, "the page's background": PAGE_BACKGROUND}
        )
        if problem:
            raise ValidationError(problem)


WHATSAPP_NUMBER = re.compile(r"^\+?[0-9]{7,15}$")


def whatsapp_number(value: str) -> None:
    if not WHATSAPP_NUMBER.match(re.sub(r"[\s().-]", "", value)):
        raise ValidationError("Write the number in international form, with its country code, e.g. +14155550123.")


class Logo(models.Model):
    """A small image kept in the database (PNG, JPEG or SVG, at most LOGO_MAX_BYTES): no media storage
    to serve or back up, and every machine of the portal serves the same one."""

    logo = models.BinaryField(blank=True, default=b"", editable=False)
    logo_type = models.CharField(max_length=32, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def has_logo(self) -> bool:
        return bool(self.logo_type)

    @property
    def version(self) -> str:
        """Changes whenever the row does: the brand's URLs carry it, so browsers may cache them long."""
        return f"{self.updated_at:%Y%m%d%H%M%S%f}" if self.updated_at else "0"


class Brand(Logo):
    """The partner's brand, shown on every customer page, the hand-off page and every mail."""

    name = models.CharField(max_length=100, default=DEFAULT_NAME, help_text="The portal's name, as customers see it.")
    primary_color = models.CharField(
        "header colour",
        max_length=7,
        default=DEFAULT_PRIMARY,
        validators=[hex_color, readable_under_white_text],
        help_text="The header bar's background, under white text (e.g. #0f2a24).",
    )
    accent_color = models.CharField(
        "accent colour",
        max_length=7,
        default=DEFAULT_ACCENT,
        validators=[hex_color, readable_buttons_and_links],
        help_text="Buttons (with white text) and links (e.g. #0b7a5e).",
    )
    support_email = models.EmailField("support email", blank=True)
    support_url = models.URLField(
        "support page",
        blank=True,
        validators=[URLValidator(schemes=["https", "http"])],
        help_text="e.g. https://help.example.com",
    )
    support_whatsapp = models.CharField(
        "support WhatsApp number",
        max_length=24,
        blank=True,
        validators=[whatsapp_number],
        help_text="With its country code, e.g. +14155550123; customers get a wa.me link.",
    )
    footer = models.TextField(blank=True, max_length=500, help_text="A line at the bottom of every page and mail.")

    class Meta:
        verbose_name = "brand"
        verbose_name_plural = "brand"

    def __str__(self) -> str:
        return self.name


class CustomerBrand(Logo):
    """A customer's own name and logo instead of the partner's (an agency reselling the portal)."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.OneToOneField("channels_app.Customer", on_delete=models.CASCADE, related_name="brand")
    name = models.CharField(max_length=100, blank=True, help_text="Empty: the partner's name.")

    class Meta:
        verbose_name = "own brand"
        verbose_name_plural = "own brand (instead of the partner's name and logo)"

    def __str__(self) -> str:
        return self.name or f"brand of {self.customer}"
