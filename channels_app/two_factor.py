"""Two-factor sign-in: an authenticator app's codes (django-otp's TOTP device) and ten recovery codes
(its static device; each works once). Required for staff in the admin whenever DJANGO_DEBUG is off
(portal.admin_site); customers turn it on for themselves (`/app/two-factor/`).

A code of 6 digits is checked against the authenticator, anything else against the recovery codes.
django-otp counts wrong codes per device and makes it wait before the next try.
"""

import base64
import io

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
WRONG_CODE = _("That code is not right; check your authenticator's clock.")


def is_on(user) -> bool:
    """Whether `user` signs in with a code too."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def code_check(user, code: str):
    """The device that accepts `code` for `user`; raises ValidationError (code "invalid_token" for a
    wrong code, "no_device" when the account has no authenticator) otherwise.

    The device is locked while the code is checked, so two requests with one code cannot both pass
    (each code works once) and django-otp's count of wrong codes misses none.
    """
    code = "".join((code or "").split()).lower()
    kind = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    with transaction.atomic():  # the outcome is raised after it, so a wrong code's count is kept
        device = kind.objects.select_for_update().filter(user=user, confirmed=True).first()
        allowed = device is not None and device.verify_is_allowed()[0]
        verified = allowed and device.verify_token(code)
    if device is None:
        if kind is StaticDevice and is_on(user):
            raise ValidationError(WRONG_CODE, code="invalid_token")
        raise ValidationError(_("This account has no authenticator yet."), code="no_device")
    if not allowed:
        raise ValidationError(_("Too many wrong codes; wait a minute and try again."), code="invalid_token")
    if not verified:
        raise ValidationError(WRONG_CODE, code="invalid_token")
    return device


def _recovery_codes(user) -> list[str]:
    """New recovery codes for `user` (the earlier ones stop working)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    """A new authenticator key (in use at once) and recovery codes, replacing any the account had."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        return device, _recovery_codes(user)


def enrolment_start(user) -> TOTPDevice:
    """A new authenticator key, not in use until confirmed with a code from it (`enrolment_confirm`)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def enrolment_pending(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def enrolment_confirm(user, code: str) -> list[str]:
    """Put the pending key in use when `code` is one of its codes; returns the new recovery codes.
    Raises ValidationError when there is no pending key or the code is wrong."""
    device = enrolment_pending(user)
    if device is None:
        raise ValidationError(_("Start again: the key to confirm is gone."), code="no_device")
    if not device.verify_token("".join((code or "").split())):
        raise ValidationError(WRONG_CODE, code="invalid_token")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        return _recovery_codes(user)


def turn_off(user) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def key_text(device: TOTPDevice) -> str:
    """The key as an authenticator app takes it when typed in (base32, in groups of four)."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[index : index + 4] for index in range(0, len(key), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """The key's otpauth URL as a QR code, an SVG `data:` URI for an <img> (no inline markup)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    out = io.BytesIO()
    image.save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()
