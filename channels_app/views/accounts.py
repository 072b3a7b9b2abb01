"""Signing in and out, and passwords, for customer users (staff keep /admin/login/).

Django's auth views do the work; these settings give them the portal's templates, the throttled
login form and the portal's URLs.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from channels_app import two_factor
from channels_app.audit import audit
from channels_app.forms import LoginForm, PasswordResetForm, ProfileForm, TwoFactorCodeForm
from channels_app.models import AuditLog, UserProfile
from channels_app.views.common import layout_context, page
from portal import preferences, timezones

login = auth_views.LoginView.as_view(
    template_name="portal/accounts/login.html",
    authentication_form=LoginForm,
    redirect_authenticated_user=True,
)


class _PortalLayout:
    """For Django's views of a signed-in user: the portal's navigation (views.common.layout_context)."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **layout_context(self.request, None)}


class _PasswordChangeView(_PortalLayout, auth_views.PasswordChangeView):
    pass


class _PasswordChangeDoneView(_PortalLayout, auth_views.PasswordChangeDoneView):
    pass


password_change = _PasswordChangeView.as_view(
    template_name="portal/accounts/password_change.html",
    success_url=reverse_lazy("channels_app:password_change_done"),
)
password_change_done = _PasswordChangeDoneView.as_view(
    template_name="portal/accounts/password_change_done.html",
)
password_reset = auth_views.PasswordResetView.as_view(
    form_class=PasswordResetForm,
    template_name="portal/accounts/password_reset.html",
    email_template_name="portal/email/password_reset.txt",
    subject_template_name="portal/email/password_reset_subject.txt",
    success_url=reverse_lazy("channels_app:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="portal/accounts/password_reset_done.html",
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="portal/accounts/password_reset_confirm.html",
    success_url=reverse_lazy("channels_app:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="portal/accounts/password_reset_complete.html",
)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("channels_app:login")


# ------------------------------------------------------------------------------------------------
# Two-factor sign-in, turned on or off by the customer user themself
# ------------------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in on (a new key, confirmed with a code from it; recovery codes shown
    once) or off (with a code). Each change is in the audit log."""
    user = request.user
    if user.is_staff and settings.STAFF_TWO_FACTOR:
        # Staff keys are issued by `manage.py staff_two_factor`: a staff password alone must never be
        # enough to enrol a key of one's own and then open the admin with it.
        raise PermissionDenied("Staff accounts are enrolled by an administrator (manage.py staff_two_factor).")
    action = request.POST.get("action", "")
    form = TwoFactorCodeForm(request.POST or None)
    context: dict = {"on": two_factor.is_on(user), "form": form}
    if action == "start":
        context["pending"] = two_factor.enrolment_start(user)
        context["form"] = TwoFactorCodeForm()
    elif action == "confirm" and form.is_valid():
        try:
            context["recovery_codes"] = two_factor.enrolment_confirm(user, form.cleaned_data["code"])
        except ValidationError as exc:
            form.add_error("code", exc)
            context["pending"] = two_factor.enrolment_pending(user)
        else:
            context["on"] = True
            audit(actor=user, source=AuditLog.Source.CUSTOMER, action="account.two_factor_on", detail=user.username)
    elif action == "confirm":
        context["pending"] = two_factor.enrolment_pending(user)
    elif action == "off" and form.is_valid():
        try:
            two_factor.code_check(user, form.cleaned_data["code"])
        except ValidationError as exc:
            form.add_error("code", exc)
        else:
            two_factor.turn_off(user)
            audit(actor=user, source=AuditLog.Source.CUSTOMER, action="account.two_factor_off", detail=user.username)
            messages.success(request, _("Two-factor sign-in is off: your password alone signs you in."))
            return redirect("channels_app:two_factor")
    pending = context.get("pending")
    if pending is not None:
        context.update(key=two_factor.key_text(pending), qr=two_factor.qr_data_uri(pending))
    response = page(request, "portal/accounts/two_factor.html", None, context)
    response["Cache-Control"] = "no-store"  # the key and the recovery codes are shown here
    return response


# ------------------------------------------------------------------------------------------------
# The profile: time zone and language
# ------------------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def profile_page(request: HttpRequest) -> HttpResponse:
    """The user's time zone and language (blank: as the browser says)."""
    profile = UserProfile.objects.filter(user=request.user).first() or UserProfile(user=request.user)
    browser_zone = timezones.known_zone(request.COOKIES.get(timezones.COOKIE))
    form = ProfileForm(request.POST or None, instance=profile, browser_zone=browser_zone)
    if request.method == "POST" and form.is_valid():
        form.save()
        preferences.remember_profile_choices(
            request, time_zone=form.cleaned_data["time_zone"], language=form.cleaned_data["language"]
        )
        # Said in the language just chosen (blank: the browser's, as the next page will be).
        translation.activate(form.cleaned_data["language"] or translation.get_language_from_request(request))
        messages.success(request, _("Your profile is saved."))
        return redirect("channels_app:profile")
    return page(request, "portal/accounts/profile.html", None, {"form": form})
