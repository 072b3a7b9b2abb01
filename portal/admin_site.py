"""The staff console's site: Django's admin with the portal's sign-in.

Staff sign in at /admin/login/ with the same failed-login throttle as customers at /app/login/ and,
whenever `STAFF_TWO_FACTOR` is on (DJANGO_DEBUG off), with a one-time code too: the 6 digits of
their authenticator app, or one of their recovery codes (django-otp's TOTP and static devices). A
session signed in without a code (a customer's login, say) does not open the admin then.
"""

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest

from channels_app.forms import AdminLoginForm, StaffTwoFactorLoginForm


class PortalAdminSite(AdminSite):
    login_template = "admin/portal/login.html"

    @property
    def login_form(self):  # read per request, so settings that change (tests) take effect
        return StaffTwoFactorLoginForm if settings.STAFF_TWO_FACTOR else AdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.STAFF_TWO_FACTOR or request.user.is_verified()
