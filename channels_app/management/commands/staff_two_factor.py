"""Enrol a staff account for two-factor sign-in to the admin: a new authenticator key (TOTP) and ten
recovery codes, which replace any the account had. Prints what the person needs, once.

The first superuser: `createsuperuser`, then `staff_two_factor <username>`; later staff are enrolled
the same way by whoever runs the portal (docs/operations.md).
"""

import io

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_app import two_factor
from channels_app.audit import audit
from channels_app.models import AuditLog


class Command(BaseCommand):
    help = "Give a staff account a new authenticator key and recovery codes for the admin's two-factor sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--no-qr", action="store_true", help="do not draw the key's QR code in the terminal")

    def handle(self, *args, username: str, no_qr: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_staff:
            raise CommandError(f"No staff account {username!r}; create it first (createsuperuser, or in the admin).")
        with transaction.atomic():
            device, codes = two_factor.enrol(user)
            audit(actor=None, source=AuditLog.Source.SYSTEM, action="staff.two_factor", detail=user.get_username())
        url = device.config_url
        self.stdout.write(f"Authenticator for {user.get_username()}: add this key to an authenticator app.")
        self.stdout.write(f"  key: {two_factor.key_text(device)}")
        self.stdout.write(f"  otpauth URL: {url}")
        if not no_qr:
            code = qrcode.QRCode(border=1)
            code.add_data(url)
            drawn = io.StringIO()
            code.print_ascii(out=drawn)
            self.stdout.write(drawn.getvalue())
        self.stdout.write("Recovery codes (each works once; keep them apart from the phone):")
        for code in codes:
            self.stdout.write(f"  {code}")
        self.stdout.write(self.style.SUCCESS("Any earlier key and recovery codes of this account no longer work."))
