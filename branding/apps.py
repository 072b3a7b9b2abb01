from django.apps import AppConfig


class BrandingConfig(AppConfig):
    name = "branding"
    verbose_name = "Brand"
    default_auto_field = "django.db.models.BigAutoField"
