"""The forms recipients are made with: staff's in the admin (any address apprise knows) and customers'
owners' on their alerts page (members, addresses, and chat services that cannot aim at a host of
their choosing)."""

from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from alerts.models import CUSTOMER_EVENTS, Recipient
from channels_app import webhook_urls

# Chat services whose URL names the service, not a host: apprise sends to the service's own public
# servers. Any other scheme would let a URL aim the worker at an address of the customer's choosing.
SERVICE_SCHEMES = {"slack": "Slack", "tgram": "Telegram", "msteams": "Microsoft Teams", "discord": "Discord"}
SCHEMES_HELP = _(
    "A Slack, Telegram, Microsoft Teams or Discord URL in apprise's notation (slack://…, tgram://…, "
    "msteams://…, discord://…), or jsons://host/path for a webhook of your own (a public https address)."
)


def customer_chat_url_problem(url: str) -> str:
    """Why a customer may not use `url` as a chat URL ("" when they may)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "jsons":
        problem = webhook_urls.url_problem(f"https://{parts.netloc}{parts.path or '/'}")
        if problem:
            return problem
    elif scheme not in SERVICE_SCHEMES:
        return str(SCHEMES_HELP)
    return ""


class RecipientFormBase(forms.ModelForm):
    """Exactly one address: a member (with an email address), an email address or a chat URL."""

    ADDRESS_FIELDS = ("user", "email", "chat_url")

    def clean(self) -> dict:
        cleaned = super().clean()
        if any(self.has_error(name) for name in self.ADDRESS_FIELDS if name in self.fields):
            return cleaned  # the field says what is wrong with it
        given = [name for name in self.ADDRESS_FIELDS if cleaned.get(name)]
        if not given:
            self.add_error("email", _("Give an email address or a chat URL."))
        elif len(given) > 1:
            self.add_error(given[-1], _("Give only one of a member, an email address or a chat URL."))
        elif given == ["user"] and not cleaned["user"].email:
            self.add_error("user", _("This member has no email address in their account."))
        return cleaned


class CustomerRecipientForm(RecipientFormBase):
    user = forms.ModelChoiceField(
        label=_("A member"), queryset=get_user_model().objects.none(), required=False, empty_label="—"
    )
    email = forms.EmailField(label=_("Or an email address"), required=False)
    chat_url = forms.CharField(label=_("Or a chat service"), required=False, help_text=SCHEMES_HELP)
    events = forms.MultipleChoiceField(
        label=_("Tell about"),
        choices=CUSTOMER_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        initial=[value for value, _ in CUSTOMER_EVENTS],
    )

    class Meta:
        model = Recipient
        fields = ["user", "email", "chat_url", "events"]

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.customer = customer
        self.fields["user"].queryset = (
            get_user_model().objects.filter(memberships__customer=customer).order_by("username")
        )
        self.fields["user"].label_from_instance = lambda user: f"{user.get_username()} ({user.email or _('no email')})"

    def clean_chat_url(self) -> str:
        url = self.cleaned_data["chat_url"].strip()
        if url and (problem := customer_chat_url_problem(url)):
            raise forms.ValidationError(problem)
        return url
