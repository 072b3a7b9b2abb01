"""Forms of the customer pages and the sign-in forms (with the login throttle of throttle.py).

Every form reports problems next to the field they concern; messages are fit to show.
"""

import re
import uuid

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from branding.brand import brand_for
from channels_app import throttle, two_factor
from channels_app.actions import CUSTOMER_EVENT_TYPES, ActionError, validate_customer_webhook
from channels_app.models import Channel, Membership, Project, UserProfile
from portal import timezones


# ------------------------------------------------------------------------------------------------
# Signing in
# ------------------------------------------------------------------------------------------------
class ThrottledLoginMixin:
    """For AuthenticationForm subclasses: refuse while throttled, record every failed attempt."""

    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip()
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # the fields say what is missing; no password is checked
        ip = throttle.client_ip(self.request)
        wait, attempt = throttle.login_attempt_begin(username, ip)
        if wait:
            # Refused without checking the password: a throttled guess tells the guesser nothing.
            raise ValidationError(throttle.throttle_message(wait), code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if username and getattr(exc, "code", None) in ("invalid_login", "inactive", "invalid_token"):
                throttle.login_attempt_failed()
            else:
                throttle.login_attempt_withdraw(attempt)
            raise
        except Exception:
            throttle.login_attempt_withdraw(attempt)
            raise
        throttle.login_attempt_succeeded(username, ip)
        return cleaned


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, throttled per address asked for and per client address; the page after it
    says the same whether a mail went out or not, so it tells nobody which addresses have accounts."""

    def save(self, *args, request=None, **kwargs):
        """Sent under the partner's brand (a signed-out visitor names no customer)."""
        if throttle.password_reset_allowed(self.cleaned_data["email"], throttle.client_ip(request)):
            brand = brand_for()
            kwargs["extra_email_context"] = {**(kwargs.get("extra_email_context") or {}), "brand": brand}
            kwargs["from_email"] = brand.from_email
            super().save(*args, request=request, **kwargs)


def code_field(*, required: bool) -> forms.CharField:
    """The sign-in forms' field for a one-time code (two_factor.code_check)."""
    return forms.CharField(
        label=_("Authentication code"),
        required=required,
        max_length=16,
        help_text=_("The 6 digits your authenticator app shows, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off"}),
    )


class _CodeIfTurnedOn(AuthenticationForm):
    """The customer pages' sign-in: the password, then a code for an account that turned two-factor
    sign-in on (asked for once the password is right; the page then shows the code field)."""

    otp_token = code_field(required=False)
    needs_code = False

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None or not two_factor.is_on(user):
            return cleaned
        self.needs_code = True
        self.fields["password"].widget.render_value = True  # the code is asked for on the same form
        if not (cleaned.get("otp_token") or "").strip():
            raise ValidationError(_("Enter the code from your authenticator app."), code="code_required")
        user.otp_device = two_factor.code_check(user, cleaned["otp_token"])
        return cleaned


class LoginForm(ThrottledLoginMixin, _CodeIfTurnedOn):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's login form with the same throttle (staff accounts are worth more to a guesser)."""


class _PasswordAndCodeForm(AdminAuthenticationForm):
    """The admin's password check, then the one-time code (two_factor.code_check).

    A wrong password, a missing or wrong code and an account without an authenticator all get the
    same answer, counted as a failed attempt: the page never tells whether the password was right.
    """

    WRONG = (
        "Please enter the correct username, password and authentication code of a staff account "
        "(an account without an authenticator is enrolled with `manage.py staff_two_factor`)."
    )
    error_messages = {**AdminAuthenticationForm.error_messages, "invalid_login": WRONG}

    otp_token = code_field(required=False)

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is None:
            return cleaned
        try:
            user.otp_device = two_factor.code_check(user, cleaned.get("otp_token") or "")
        except ValidationError:
            self.user_cache = None
            raise ValidationError(self.WRONG, code="invalid_token") from None
        return cleaned  # django-otp puts the device in the session at login: the session is verified


class StaffTwoFactorLoginForm(ThrottledLoginMixin, _PasswordAndCodeForm):
    """The admin's login when STAFF_TWO_FACTOR is on: password and code, throttled together (a wrong
    code counts as a failed attempt, like a wrong password)."""


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


# ------------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------------
# The dashboard's state filter: the customer-facing states, the setting-up steps and the states that
# need someone's attention grouped (value in the URL → label, states).
_State = Channel.State
DASHBOARD_STATE_GROUPS = {
    "setup": (_("Being set up (queued, creating, initializing, configuring)"), Channel.SETTING_UP),
    "waiting_scan": (_State.WAITING_SCAN.label, (_State.WAITING_SCAN,)),
    "connected": (_State.CONNECTED.label, (_State.CONNECTED,)),
    "disconnected": (_State.DISCONNECTED.label, (_State.DISCONNECTED,)),
    "attention": (_("Needs attention (error, stopped, expired)"), (_State.ERROR, _State.STOPPED, _State.EXPIRED)),
}


class DashboardFilterForm(forms.Form):
    """The dashboard's search and filters, from the query string. A value that does not fit (an unknown
    state or project, a search too long) is reported next to its field and otherwise ignored."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        strip=True,
        widget=forms.SearchInput(attrs={"placeholder": _("Name or number")}),
    )
    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[("", _("Any state"))] + [(value, label) for value, (label, _states) in DASHBOARD_STATE_GROUPS.items()],
        error_messages={"invalid_choice": _("There is no state “%(value)s”; showing every state.")},
    )
    project = forms.ChoiceField(
        label=_("Project"),
        required=False,
        error_messages={"invalid_choice": _("No such project; showing every project.")},
    )

    def __init__(self, data, *, projects: list[Project]):
        super().__init__(data)
        self.fields["project"].choices = [("", _("Every project"))] + [(p.whapi_id, p.name) for p in projects]
        self.projects = {p.whapi_id: p for p in projects}
        if len(projects) < 2:
            del self.fields["project"]

    def filters(self) -> dict:
        """The valid filters, as {"q": str, "states": tuple | None, "project": Project | None}."""
        self.is_valid()  # fills cleaned_data with the fields that are valid, errors with the others
        data = self.cleaned_data
        group = DASHBOARD_STATE_GROUPS.get(data.get("state") or "")
        return {
            "q": data.get("q") or "",
            "states": group[1] if group else None,
            "project": self.projects.get(data.get("project") or ""),
        }


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return obj.name


class ChannelCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=150,
        help_text=_("For you to recognise it, e.g. “Support line”."),
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )
    project = ProjectChoiceField(
        label=_("Project"), queryset=Project.objects.none(), to_field_name="whapi_id", empty_label=None
    )
    # One key per rendered form: a double submit sends the same key, and finds the first channel.
    request_key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects if projects is not None else Project.objects.none()
        if not self.is_bound:
            self.initial.setdefault("request_key", uuid.uuid4().hex)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Give the channel a name."))
        return name

    def clean_request_key(self) -> str:
        key = self.cleaned_data["request_key"]
        try:
            return uuid.UUID(key).hex
        except ValueError:
            raise ValidationError(_("The form is out of date; reload the page and submit it again.")) from None


class RenameForm(forms.Form):
    name = forms.CharField(label=_("Channel name"), max_length=150)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Give the channel a name."))
        return name


_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


class PairingCodeForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        help_text=_("With country code, e.g. 14155550123."),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "14155550123"}),
    )

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"].strip()
        # Spaces, dashes, brackets and a leading + are how people write numbers; Whapi wants digits only.
        phone = _PHONE_SEPARATORS.sub("", raw).removeprefix("+")
        if not phone.isascii() or not phone.isdigit():
            raise ValidationError(_("Use digits only: country code and number, e.g. 14155550123."))
        if not 7 <= len(phone) <= 15:
            raise ValidationError(
                ngettext(
                    "A phone number has 7 to 15 digits with its country code; this one has %(count)d digit.",
                    "A phone number has 7 to 15 digits with its country code; this one has %(count)d digits.",
                    len(phone),
                )
                % {"count": len(phone)}
            )
        return phone


EVENT_LABELS = {
    "messages": _("Messages (incoming and sent)"),
    "statuses": _("Message statuses (delivered, read)"),
    "chats": _("Chats"),
    "contacts": _("Contacts"),
    "groups": _("Groups"),
    "presences": _("Presences (online, typing)"),
    "calls": _("Calls"),
    "labels": _("Labels"),
}


class WebhookForm(forms.Form):
    url = forms.CharField(
        label=_("Webhook URL"),
        required=False,
        max_length=500,
        help_text=_("Whapi posts the events you choose to this address. Leave empty to remove your webhook."),
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/whatsapp/hook"}),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        required=False,
        choices=[(event_type, EVENT_LABELS.get(event_type, event_type)) for event_type in CUSTOMER_EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )

    @classmethod
    def for_channel(cls, channel: Channel) -> "WebhookForm":
        types = [event.get("type") for event in channel.customer_webhook_events or [] if isinstance(event, dict)]
        return cls(initial={"url": channel.customer_webhook_url, "events": types or ["messages", "statuses"]})

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            url, _events = validate_customer_webhook(url, [{"type": "messages", "method": "post"}])
        except ActionError as exc:
            raise ValidationError(str(exc)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("url") and not cleaned.get("events"):
            self.add_error("events", _("Choose at least one kind of event for the webhook."))
        return cleaned

    def event_list(self) -> list[dict]:
        """The events as Whapi wants them (new objects: `post`); none once the URL is removed."""
        if not self.cleaned_data.get("url"):
            return []
        return [{"type": event_type, "method": "post"} for event_type in self.cleaned_data["events"]]


class HandoffForm(forms.Form):
    LIFETIMES = [(30, _("30 minutes")), (120, _("2 hours")), (24 * 60, _("24 hours"))]

    minutes = forms.TypedChoiceField(label=_("Valid for"), choices=LIFETIMES, coerce=int, initial=30)


# ------------------------------------------------------------------------------------------------
# Members
# ------------------------------------------------------------------------------------------------
ROLE_HELP = _("Owner: everything, members too. Operator: channels. Viewer: read only.")


class MemberInviteForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        help_text=_("They get a link to accept, with an account of theirs or a new one."),
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(
        label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.OPERATOR, help_text=ROLE_HELP
    )


class InvitationSignupForm(auth_forms.UserCreationForm):
    """A new account to accept an invitation with; its email address is the invitation's. Django's
    form refuses a user name that differs from an existing one only in case."""

    class Meta(auth_forms.UserCreationForm.Meta):
        fields = ("username",)

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.email = self.email
        if commit:
            user.save()
        return user


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


# ------------------------------------------------------------------------------------------------
# The user's profile
# ------------------------------------------------------------------------------------------------
class ProfileForm(forms.ModelForm):
    """The time zone and language the customer pages are shown in; blank follows the browser."""

    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        help_text=_("Times on the portal's pages are shown in this zone, and named."),
    )
    # Each language in its own words (UserProfile.Language), as choosers name them.
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("As my browser says")), *list(UserProfile.Language.choices)],
    )

    class Meta:
        model = UserProfile
        fields = ["time_zone", "language"]

    def __init__(self, *args, browser_zone: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if browser_zone:
            browser = _("As my browser says (%(zone)s)") % {"zone": browser_zone}
        else:
            browser = _("As my browser says (UTC until it tells)")
        self.fields["time_zone"].choices = [("", browser), *timezones.zone_choices()]
