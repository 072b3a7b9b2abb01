"""The forms of a customer's events pages: registering an endpoint, and replaying a time range."""

from datetime import UTC, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from events import endpoints
from events.models import EventType


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        help_text=_("The portal posts the events you choose to this public https address, signed (see the docs)."),
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/portal/events"}),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=EventType.values,
        help_text=_("Event types added to the portal later are sent only once you choose them here."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if problem := endpoints.url_problem(url):
            raise forms.ValidationError(problem)
        return url


class UtcDateTimeField(forms.DateTimeField):
    """A date and time read as UTC, as its label says, whatever zone the page is drawn in (a
    DateTimeField reads the active zone's, which portal.timezones sets to the browser's)."""

    def to_python(self, value):
        with timezone.override(UTC):
            return super().to_python(value)


class ReplayRangeForm(forms.Form):
    since = UtcDateTimeField(label=_("From (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = UtcDateTimeField(label=_("Until (UTC)"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    failed_only = forms.BooleanField(
        label=_("Only events not delivered"),
        required=False,
        initial=True,
        help_text=_("Otherwise every event of the range."),
    )

    @classmethod
    def last_day(cls) -> "ReplayRangeForm":
        now = timezone.now().replace(second=0, microsecond=0)
        fmt = "%Y-%m-%dT%H:%M"
        return cls(initial={"since": (now - timedelta(days=1)).strftime(fmt), "until": now.strftime(fmt)})

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("since") and cleaned.get("until") and cleaned["since"] >= cleaned["until"]:
            self.add_error("until", _("The end of the range must be after its start."))
        return cleaned
