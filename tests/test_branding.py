"""The partner's brand and a customer's own: the contrast check, the effective brand, the admin that
sets it (logo uploads, refused colours), and where it shows (pages, the hand-off page, mails)."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from alerts import delivery
from alerts.models import Event, Notification, Recipient
from branding.brand import brand_for
from branding.contrast import contrast_ratio
from branding.models import Brand, CustomerBrand
from channels_app import handoff
from channels_app.models import AuditLog
from tests.conftest import staff_login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.fixture
def brand(db):
    return Brand.objects.create(
        name="Zap Connect",
        primary_color="#202a6b",
        accent_color="#8a1c7c",
        support_email="help@zap.example",
        support_whatsapp="+44 7700 900123",
        footer="Zap Connect Ltd, 1 High Street",
        logo=PNG,
        logo_type="image/png",
    )


def brand_post(**fields) -> dict:
    data = {
        "name": "Zap Connect",
        "primary_color": "#202a6b",
        "accent_color": "#8a1c7c",
        "support_email": "",
        "support_url": "",
        "support_whatsapp": "",
        "footer": "",
    }
    data.update(fields)
    return data


# ------------------------------------------------------------------------------------------------
# The contrast check
# ------------------------------------------------------------------------------------------------
def test_contrast_ratios_follow_wcag():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1)
    # WCAG's own example value: #767676 on white is the lightest grey that passes 4.5:1.
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize(
    ("field", "color"),
    [("accent_color", "#ffd400"), ("accent_color", "#4fa3ff"), ("primary_color", "#9ad0c2"), ("primary_color", "#fff")],
)
def test_an_unreadable_or_malformed_colour_is_refused(db, field, color):
    with pytest.raises(ValidationError) as refused:
        Brand(**{field: color}).full_clean()
    assert list(refused.value.message_dict) == [field]


def test_the_neutral_default_passes_its_own_check(db):
    Brand().full_clean()


# ------------------------------------------------------------------------------------------------
# The brand in effect
# ------------------------------------------------------------------------------------------------
def test_without_a_brand_the_portal_is_neutral(db):
    effective = brand_for()
    assert effective.name == "Channel portal"
    assert effective.logo_url.endswith("portal/icon.svg")
    assert not effective.has_support


def test_a_customer_of_its_own_brand_gets_its_name_and_logo_and_the_partners_colours(brand, customer):
    own = CustomerBrand.objects.create(customer=customer, name="Agency Ten", logo=SVG, logo_type="image/svg+xml")
    effective = brand_for(customer)
    assert effective.name == "Agency Ten"
    assert effective.logo_url.startswith(reverse("branding:customer_logo", args=[own.code]))
    assert (effective.primary_color, effective.accent_color) == ("#202a6b", "#8a1c7c")
    assert effective.support_email == "help@zap.example"
    # Another customer, and the partner's own pages, keep the partner's.
    assert brand_for().name == "Zap Connect"
    assert brand_for().logo_url.startswith(reverse("branding:logo"))


def test_an_own_brand_without_a_name_or_logo_keeps_the_partners(brand, customer):
    CustomerBrand.objects.create(customer=customer)
    effective = brand_for(customer)
    assert effective.name == "Zap Connect"
    assert effective.logo_url.startswith(reverse("branding:logo"))


def test_the_support_number_becomes_a_wa_me_link(brand):
    assert brand_for().whatsapp_url == "https://wa.me/447700900123"


def test_the_stylesheet_carries_the_colours_and_the_logo_is_served_sandboxed(client, brand):
    css = client.get(reverse("branding:css"))
    assert css["Content-Type"].startswith("text/css")
    assert "--primary: #202a6b;" in css.content.decode() and "--accent: #8a1c7c;" in css.content.decode()
    assert "max-age" in css["Cache-Control"]
    logo = client.get(reverse("branding:logo"))
    assert (logo.status_code, logo["Content-Type"], logo.content) == (200, "image/png", PNG)
    assert "sandbox" in logo["Content-Security-Policy"]


def test_a_missing_logo_is_404(client, db):
    assert client.get(reverse("branding:logo")).status_code == 404
    Brand.objects.create()
    assert client.get(reverse("branding:logo")).status_code == 404


# ------------------------------------------------------------------------------------------------
# The admin
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def staff(client, superuser):
    return staff_login(client, superuser)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@partner.example", "root-password")


def test_staff_set_the_brand_with_a_logo(staff):
    add = reverse("admin:branding_brand_add")
    upload = SimpleUploadedFile("logo.png", PNG)
    response = staff.post(add, {**brand_post(support_url="help.zap.example"), "logo_file": upload})
    assert response.status_code == 302
    brand = Brand.objects.get()
    assert (brand.name, brand.logo_type, bytes(brand.logo)) == ("Zap Connect", "image/png", PNG)
    assert brand.support_url == "https://help.zap.example"
    # One row: the list leads to it, and no second can be added.
    assert staff.get(reverse("admin:branding_brand_changelist"))["Location"] == reverse(
        "admin:branding_brand_change", args=[brand.pk]
    )
    assert staff.get(add).status_code == 403


def test_the_admin_refuses_an_unreadable_colour_next_to_its_field(staff):
    response = staff.post(reverse("admin:branding_brand_add"), brand_post(accent_color="#ffd400"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["accent_color"]
    assert "4.5:1" in errors["accent_color"][0]
    assert not Brand.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("logo.gif", b"GIF89a" + b"\x00" * 20, "PNG, JPEG or SVG"),
        ("big.png", PNG + b"\x00" * 210_000, "at most 200 KB"),
    ],
)
def test_the_admin_refuses_a_logo_it_cannot_serve(staff, name, data, problem):
    upload = SimpleUploadedFile(name, data)
    response = staff.post(reverse("admin:branding_brand_add"), {**brand_post(), "logo_file": upload})
    assert response.status_code == 200
    assert problem in response.context["adminform"].form.errors["logo_file"][0]


def test_staff_give_a_customer_its_own_name_and_logo(staff, customer):
    data = {
        "name": customer.name,
        "channel_quota": "5",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "brand-TOTAL_FORMS": "1",
        "brand-INITIAL_FORMS": "0",
        "brand-0-name": "Agency Ten",
        "brand-0-logo_file": SimpleUploadedFile("logo.svg", SVG),
    }
    response = staff.post(reverse("admin:channels_app_customer_change", args=[customer.pk]), data)
    assert response.status_code == 302
    own = CustomerBrand.objects.get(customer=customer)
    assert (own.name, own.logo_type) == ("Agency Ten", "image/svg+xml")
    assert AuditLog.objects.filter(action="customer.brand", customer=customer).exists()


# ------------------------------------------------------------------------------------------------
# Where the brand shows
# ------------------------------------------------------------------------------------------------
def test_the_customer_pages_show_the_brand(client, alice, customer, brand):
    CustomerBrand.objects.create(customer=customer, name="Agency Ten")
    client.force_login(alice)
    page = client.get(reverse("channels_app:dashboard", args=[customer.code])).content.decode()
    assert "<title>Acme Corp: channels · Agency Ten</title>" in page
    assert reverse("branding:logo") in page  # the agency has no logo of its own: the partner's
    assert reverse("branding:css") in page
    assert "Zap Connect Ltd, 1 High Street" in page and "mailto:help@zap.example" in page
    assert "https://wa.me/447700900123" in page


def test_the_sign_in_page_shows_the_partners_brand(client, brand):
    page = client.get(reverse("channels_app:login")).content.decode()
    assert "Zap Connect" in page and reverse("branding:logo") in page


def test_the_handoff_page_shows_the_channels_customers_brand(client, channel, alice, customer, brand, whapi):
    CustomerBrand.objects.create(customer=customer, name="Agency Ten")
    link = handoff.handoff_create(channel=channel, actor=alice)
    client.get(reverse("channels_app:handoff", args=[handoff.handoff_token(link)]))
    page = client.get(reverse("channels_app:handoff_page")).content.decode()
    assert "Agency Ten" in page and "Zap Connect" not in page.split("<footer")[0]


def test_mails_go_out_under_the_brand(client, alice, customer, brand, mailoutbox):
    CustomerBrand.objects.create(customer=customer, name="Agency Ten")
    client.force_login(alice)
    client.post(reverse("channels_app:member_invite", args=[customer.code]), {"email": "d@x.example", "role": "viewer"})
    (invitation,) = mailoutbox
    assert invitation.subject == "You are invited to Acme Corp on Agency Ten"
    assert invitation.from_email.startswith("Agency Ten <")
    assert "help@zap.example" in invitation.body and "Zap Connect Ltd" in invitation.body
    # Its page says the same.
    client.logout()
    link = next(line for line in invitation.body.splitlines() if "/app/invitations/" in line).strip()
    assert "invites you to Acme Corp on Agency Ten" in client.get(link).content.decode()

    client.logout()
    client.post(reverse("channels_app:password_reset"), {"email": alice.email})
    reset = mailoutbox[1]
    assert reset.subject == "Reset your password for Zap Connect"
    assert reset.from_email.startswith("Zap Connect <")


def test_an_alert_goes_out_under_the_recipients_brand(customer, brand, channel):
    CustomerBrand.objects.create(customer=customer, name="Agency Ten")
    own = Recipient.objects.create(customer=customer, email="it@acme.example", events=[Event.DISCONNECTED])
    staff = Recipient.objects.create(email="oncall@partner.example", events=[Event.DISCONNECTED])
    for recipient in (own, staff):
        notification = Notification.objects.create(
            event=Event.DISCONNECTED,
            key="k",
            recipient=recipient,
            to=recipient.email,
            customer=customer,
            channel=channel,
            subject="Shop bot: the WhatsApp number disconnected",
            body="It disconnected.\n",
        )
        delivery.send(notification)
    customer_mail, staff_mail = mail.outbox
    assert customer_mail.from_email.startswith("Agency Ten <") and "Agency Ten" in customer_mail.body
    assert staff_mail.from_email.startswith("Zap Connect <")
