"""The brand in effect: the partner's (or the neutral default), with a customer's own name and logo
when it has them. Pages get it as `brand` (the context processor, or the view for a customer's
pages); mails call `brand_for` themselves."""

import re
from dataclasses import dataclass
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _

from branding.models import DEFAULT_ACCENT, DEFAULT_NAME, DEFAULT_PRIMARY, Brand, CustomerBrand


@dataclass(frozen=True)
class EffectiveBrand:
    name: str
    logo_url: str
    css_url: str
    primary_color: str
    accent_color: str
    support_email: str = ""
    support_url: str = ""
    support_whatsapp: str = ""
    footer: str = ""

    @property
    def whatsapp_url(self) -> str:
        """The support number as a wa.me link (digits only, as wa.me wants), or ""."""
        digits = re.sub(r"\D", "", self.support_whatsapp)
        return f"https://wa.me/{digits}" if digits else ""

    @property
    def has_support(self) -> bool:
        return bool(self.support_email or self.support_url or self.support_whatsapp)

    @property
    def from_email(self) -> str:
        """DEFAULT_FROM_EMAIL's address under the brand's name, for the From header of mails."""
        return formataddr((self.name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))

    def support_lines(self) -> list[str]:
        """The support contact as plain-text lines, for mails."""
        lines = []
        if self.support_email:
            lines.append(_("Email: %(address)s") % {"address": self.support_email})
        if self.support_url:
            lines.append(_("Help: %(url)s") % {"url": self.support_url})
        if self.whatsapp_url:
            lines.append(f"WhatsApp: {self.whatsapp_url}")
        return lines


def _partner_brand() -> Brand | None:
    return Brand.objects.defer("logo").order_by("pk").first()


def brand_for(customer=None) -> EffectiveBrand:
    """The brand a customer's pages and mails use (the partner's without a customer, or when the
    customer has no own brand; the neutral default when staff set none). Two small queries at most;
    the logos' bytes are not read."""
    partner = _partner_brand()
    own = (
        CustomerBrand.objects.defer("logo").filter(customer=customer).first()
        if customer is not None and customer.pk
        else None
    )
    version = partner.version if partner else "0"
    name = (own.name if own else "") or (partner.name if partner else DEFAULT_NAME)
    if name == DEFAULT_NAME:
        name = _(DEFAULT_NAME)  # the neutral default is a description, said in the reader's language
    if own and own.has_logo:
        logo_url = f"{reverse('branding:customer_logo', args=[own.code])}?v={own.version}"
    elif partner and partner.has_logo:
        logo_url = f"{reverse('branding:logo')}?v={version}"
    else:
        logo_url = static("portal/icon.svg")
    return EffectiveBrand(
        name=name,
        logo_url=logo_url,
        css_url=f"{reverse('branding:css')}?v={version}",
        primary_color=partner.primary_color if partner else DEFAULT_PRIMARY,
        accent_color=partner.accent_color if partner else DEFAULT_ACCENT,
        support_email=partner.support_email if partner else "",
        support_url=partner.support_url if partner else "",
        support_whatsapp=partner.support_whatsapp if partner else "",
        footer=partner.footer if partner else "",
    )
