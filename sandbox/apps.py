from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Only for `manage.py whapi_sandbox`: the sandbox has no Django models."""

    name = "sandbox"
    verbose_name = "Whapi sandbox"
