"""Forms of the staff console's own pages (adding channels and projects, actions that need input)."""

import uuid

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from channels_app.models import Channel, Customer, Project

# Modes staff may switch to (`dev_archive` is undocumented, docs/whapi.md §1.3).
MODE_CHOICES = [
    (Channel.Mode.TRIAL, "Trial"),
    (Channel.Mode.DEV, "Sandbox (dev)"),
    (Channel.Mode.LIVE, "Live"),
]


def new_request_key() -> str:
    return uuid.uuid4().hex


def use_autocomplete(field: forms.ModelChoiceField, model_field, admin_site: admin.AdminSite) -> None:
    """Give a form field the admin's autocomplete widget (it searches through that model's admin)."""
    field.widget = AutocompleteSelect(model_field, admin_site)
    field.widget.choices = field.choices


class ChannelRequestForm(forms.Form):
    """Ask for a channel in a customer's project. `request_key` makes a double submit ask once."""

    project = forms.ModelChoiceField(
        queryset=Project.objects.select_related("customer"),
        help_text="A project assigned to a customer (type the customer or project name).",
    )
    name = forms.CharField(max_length=150, help_text="Shown to the customer; Whapi gets it too.")
    ignore_quota = forms.BooleanField(
        required=False, label="Ignore the customer's channel quota", help_text="Only for agreed exceptions."
    )
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, admin_site: admin.AdminSite, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        use_autocomplete(self.fields["project"], Channel._meta.get_field("project"), admin_site)

    def clean_project(self) -> Project:
        project = self.cleaned_data["project"]
        if project.customer_id is None:
            raise forms.ValidationError("This project belongs to no customer yet; assign it to one first.")
        return project


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="The project's name in Whapi.")
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(), required=False, help_text="Leave empty to assign it later."
    )

    def __init__(self, *args, admin_site: admin.AdminSite, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        use_autocomplete(self.fields["customer"], Project._meta.get_field("customer"), admin_site)


class ProjectAssignForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(), required=False, help_text="Leave empty to unassign the projects."
    )

    def __init__(self, *args, admin_site: admin.AdminSite, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        use_autocomplete(self.fields["customer"], Project._meta.get_field("customer"), admin_site)


class ExtendForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=3650, help_text="Taken from the partner balance.")
    comment = forms.CharField(max_length=200, help_text="Whapi requires one, e.g. the invoice number.")

    def params(self) -> dict:
        return {"days": self.cleaned_data["days"], "comment": self.cleaned_data["comment"].strip()}


class ModeForm(forms.Form):
    mode = forms.ChoiceField(choices=MODE_CHOICES, widget=forms.RadioSelect)

    def params(self) -> dict:
        return {"mode": self.cleaned_data["mode"]}


class ConfirmForm(forms.Form):
    """Nothing to fill in: the page asks to confirm."""

    def params(self) -> dict:
        return {}


# Actions that ask first on a page of their own: for input, or to confirm what they do (a restart and
# a mode change leave the channel unavailable for a while).
ACTION_FORMS: dict[str, type[forms.Form]] = {
    "restart": ConfirmForm,
    "extend": ExtendForm,
    "mode": ModeForm,
    "logout": ConfirmForm,
    "delete": ConfirmForm,
}
