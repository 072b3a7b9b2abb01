"""Signing in and out, and passwords, for customer users (staff keep /admin/login/).

Django's auth views do the work; these settings give them the portal's templates, the throttled
login form and the portal's URLs.
"""

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from channels_app.forms import LoginForm, PasswordResetForm

login = auth_views.LoginView.as_view(
    template_name="portal/accounts/login.html",
    authentication_form=LoginForm,
    redirect_authenticated_user=True,
)

password_change = auth_views.PasswordChangeView.as_view(
    template_name="portal/accounts/password_change.html",
    success_url=reverse_lazy("channels_app:password_change_done"),
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
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
    messages.info(request, "You are signed out.")
    return redirect("channels_app:login")
