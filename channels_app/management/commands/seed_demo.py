"""Demo data for `make run`: a staff login, a customer with a Whapi project, and a customer login.

Idempotent: running it again changes nothing and prints the same credentials. Refuses to run with
DJANGO_DEBUG off, because the demo passwords are public.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_app.mirror import project_mirror
from channels_app.models import Customer, Membership
from channels_app.whapi import WhapiError, partner_client

STAFF = ("staff", "staff-demo-password")
CUSTOMER_USER = ("acme", "acme-demo-password")
CUSTOMER_NAME = "Acme Corp"


class Command(BaseCommand):
    help = "Create the demo logins and customer used by `make run` (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--whapi-project",
            action="store_true",
            help="Also create a Whapi project for the demo customer (make run does this with the sandbox).",
        )

    def handle(self, *args, whapi_project: bool, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo only runs with DJANGO_DEBUG=on: its passwords are public.")
        User = get_user_model()
        with transaction.atomic():
            staff, created = User.objects.get_or_create(
                username=STAFF[0], defaults={"is_staff": True, "is_superuser": True, "email": "staff@example.com"}
            )
            if created:
                staff.set_password(STAFF[1])
                staff.save()
            customer, _ = Customer.objects.get_or_create(name=CUSTOMER_NAME, defaults={"channel_quota": 5})
            owner, created = User.objects.get_or_create(
                username=CUSTOMER_USER[0], defaults={"email": "owner@acme.example"}
            )
            if created:
                owner.set_password(CUSTOMER_USER[1])
                owner.save()
            Membership.objects.get_or_create(customer=customer, user=owner, defaults={"role": Membership.Role.OWNER})

        if whapi_project and not customer.projects.exists():
            try:
                remote = partner_client().create_project(f"{CUSTOMER_NAME} channels")
            except WhapiError as exc:
                self.stderr.write(f"Could not create the demo Whapi project: {exc}")
            else:
                project_mirror(remote, customer=customer)

        self.stdout.write(
            "Demo logins:\n"
            f"  staff (admin)   {STAFF[0]} / {STAFF[1]}\n"
            f"  customer owner  {CUSTOMER_USER[0]} / {CUSTOMER_USER[1]}  ({CUSTOMER_NAME}, "
            f"{customer.projects.count()} project(s))"
        )
