"""The forms API keys are made with: an owner's on their customer's API keys page, staff's in the admin."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import ApiKey
from channels_app import access
from channels_app.models import Channel, Customer

# Up to this many channels the scope is a list to choose from; past it, a box for the channel's id.
CHANNEL_CHOICES_MAX = 200

ACCESS_CHOICES = [
    ("read", _("Read-only: lists and reads")),
    ("write", _("Read and write: may also make changes")),
]


def _channel_choice(channel: Channel) -> str:
    # The ID too: two channels may have the same name.
    if channel.whapi_id:
        return _("Only the channel %(name)s (%(id)s)") % {"name": channel.name, "id": channel.whapi_id}
    return _("Only the channel %(name)s") % {"name": channel.name}


class CustomerApiKeyForm(forms.Form):
    """A key of one customer: for the whole customer or one of its channels, read-only or read-write."""

    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("What the key is for, e.g. the system that uses it.")
    )
    channel = forms.CharField(label=_("Scope"), required=False)
    access = forms.ChoiceField(label=_("Access"), choices=ACCESS_CHOICES, initial="read", widget=forms.RadioSelect)

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        self.channels = access.channels_for(customer).only("code", "name", "whapi_id", "project_id")
        choices = list(self.channels[: CHANNEL_CHOICES_MAX + 1])
        # A customer with thousands of channels gets a box, not a select of thousands of options.
        self.channel_box = len(choices) > CHANNEL_CHOICES_MAX
        field = self.fields["channel"]
        if self.channel_box:
            field.label = _("One channel only (optional)")
            field.help_text = _(
                "%(name)s has more than %(count)d channels: give the channel's ID "
                "(shown on its page, e.g. MANTIS-M72HC), or leave empty for the whole customer."
            ) % {"name": customer.name, "count": CHANNEL_CHOICES_MAX}
        else:
            field.widget = forms.Select(
                choices=[("", _("The whole customer (every channel of %(name)s)") % {"name": customer.name})]
                + [(str(channel.code), _channel_choice(channel)) for channel in choices]
            )

    def clean_channel(self) -> Channel | None:
        value = self.cleaned_data["channel"].strip()
        if not value:
            return None
        try:
            channel = self.channels.filter(code=uuid.UUID(value)).first()
        except ValueError:  # not a code: in the box, a Whapi channel ID
            channel = self.channels.filter(whapi_id=value).first() if self.channel_box else None
        if channel is None:
            raise forms.ValidationError(_("%(name)s has no such channel.") % {"name": self.customer.name})
        return channel

    @property
    def can_write(self) -> bool:
        return self.cleaned_data["access"] == "write"


class ApiKeyAddForm(forms.ModelForm):
    """Staff's: a partner key (no customer, may act for any customer), a customer's or a channel's."""

    class Meta:
        model = ApiKey
        fields = ["name", "customer", "channel", "can_write"]
        labels = {"can_write": "May write"}
        help_texts = {
            "customer": "Empty (and no channel): a partner key, which may act for every customer.",
            "channel": "Set: the key sees this one channel only (its customer is the channel's).",
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        channel, customer = cleaned.get("channel"), cleaned.get("customer")
        if channel is not None:
            if channel.customer is None:
                self.add_error("channel", "This channel belongs to no customer.")
            elif customer is not None and customer != channel.customer:
                self.add_error("customer", f"The channel belongs to {channel.customer}: leave this empty or choose it.")
            elif channel.state == Channel.State.DELETED:
                self.add_error("channel", "This channel is deleted.")
            else:
                cleaned["customer"] = channel.customer  # what api_key_create does, and the constraint wants
        return cleaned
