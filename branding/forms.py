"""The admin's forms of a brand: the logo is uploaded as a file and kept in the row (models.Logo)."""

from django import forms
from django.core.exceptions import ValidationError

from branding.models import Brand, CustomerBrand

LOGO_MAX_BYTES = 200 * 1024
# What a logo's first bytes are for each type accepted; an SVG is text that holds an <svg> element.
SIGNATURES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def logo_type(data: bytes) -> str:
    """The content type of an accepted logo; raises ValidationError for anything else."""
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(f"The logo is {len(data) // 1024} KB; at most {LOGO_MAX_BYTES // 1024} KB fit.")
    for content_type, signature in SIGNATURES.items():
        if data.startswith(signature):
            return content_type
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "<svg" in text[:2048]:
        return "image/svg+xml"
    raise ValidationError("The logo must be a PNG, JPEG or SVG image.")


class LogoForm(forms.ModelForm):
    logo_file = forms.FileField(
        label="Logo", required=False, help_text="PNG, JPEG or SVG, at most 200 KB; shown 28 pixels high."
    )
    remove_logo = forms.BooleanField(label="Remove the logo", required=False)

    def clean_logo_file(self):
        upload = self.cleaned_data.get("logo_file")
        if not upload:
            return None
        data = upload.read(LOGO_MAX_BYTES + 1)
        return data, logo_type(data)

    def save(self, commit=True):
        logo = self.cleaned_data.get("logo_file")
        if logo:
            self.instance.logo, self.instance.logo_type = logo
        elif self.cleaned_data.get("remove_logo"):
            self.instance.logo, self.instance.logo_type = b"", ""
        return super().save(commit)


class BrandForm(LogoForm):
    support_url = forms.URLField(
        label="Support page", required=False, assume_scheme="https", help_text="e.g. https://help.example.com"
    )

    class Meta:
        model = Brand
        fields = ["name", "primary_color", "accent_color", "support_email", "support_url", "support_whatsapp", "footer"]
        widgets = {
            "primary_color": forms.TextInput(attrs={"size": 8}),
            "accent_color": forms.TextInput(attrs={"size": 8}),
            "footer": forms.Textarea(attrs={"rows": 3}),
        }


class CustomerBrandForm(LogoForm):
    class Meta:
        model = CustomerBrand
        fields = ["name"]
