from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "channels_app"
    # What the staff console calls the app (its index, breadcrumbs), instead of the module's name.
    verbose_name = "Channels"
