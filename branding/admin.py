"""The brand in the staff console: one row, the partner's; a customer's own name and logo are an
inline of the customer (channels_app.admin.customers)."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from branding.forms import BrandForm, CustomerBrandForm
from branding.models import Brand, CustomerBrand
from channels_app.audit import audit
from channels_app.models import AuditLog


def logo_preview(obj) -> str:
    if not obj or not obj.has_logo:
        return "none (the neutral icon)"
    url = (
        reverse("branding:customer_logo", args=[obj.code])
        if isinstance(obj, CustomerBrand)
        else reverse("branding:logo")
    )
    return format_html('<img src="{}?v={}" alt="the current logo" height="28">', url, obj.version)


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    form = BrandForm
    fields = [
        "name",
        "current_logo",
        "logo_file",
        "remove_logo",
        "primary_color",
        "accent_color",
        "support_email",
        "support_url",
        "support_whatsapp",
        "footer",
    ]
    readonly_fields = ["current_logo"]

    @admin.display(description="Current logo")
    def current_logo(self, obj):
        return logo_preview(obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = ", ".join(form.changed_data) or "nothing"
        audit(actor=request.user, source=AuditLog.Source.STAFF, action="brand.change", detail=f"changed: {changed}")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not Brand.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: the list is the row itself (or the form that adds it).
        brand = Brand.objects.order_by("pk").first()
        if brand is None:
            return redirect("admin:branding_brand_add")
        return redirect("admin:branding_brand_change", brand.pk)


class CustomerBrandInline(admin.StackedInline):
    model = CustomerBrand
    form = CustomerBrandForm
    extra = 0
    max_num = 1
    fields = ["name", "current_logo", "logo_file", "remove_logo"]
    readonly_fields = ["current_logo"]

    @admin.display(description="Current logo")
    def current_logo(self, obj):
        return logo_preview(obj)
