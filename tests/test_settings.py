"""Start-up validation: a misconfiguration stops the portal with a message naming the variable."""

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "portal" / "settings.py"

PRODUCTION = {
    "DJANGO_ENV_FILE": "",
    "DJANGO_DEBUG": "off",
    "DJANGO_SECRET_KEY": "a-long-production-secret-key-for-the-settings-tests-0123456789",
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLWZvci10aGUtcG9ydGFsLXRlc3Q=",
    "WHAPI_PARTNER_TOKEN": "partner-token",
    "PORTAL_BASE_URL": "https://portal.example.com",
}
OPTIONAL = (
    "DATABASE_URL",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "WHAPI_PARTNER_URL",
    "WHAPI_INIT_DELAY",
    "WHAPI_CREATE_BUDGET",
    "WHAPI_CREATE_WINDOW",
    "WHAPI_TIMEOUT",
)


def load(monkeypatch, **overrides):
    for name in OPTIONAL:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**PRODUCTION, **overrides}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_production_settings_load(monkeypatch):
    settings = load(monkeypatch)
    assert settings["DEBUG"] is False
    assert settings["WHAPI_PARTNER_URL"] == "https://manager.whapi.cloud"
    assert settings["WHAPI_INIT_DELAY"] == 90
    assert (settings["WHAPI_CREATE_BUDGET"], settings["WHAPI_CREATE_WINDOW"]) == (18, 1800)
    assert settings["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DATABASES"]["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in settings["DATABASES"]["default"]["OPTIONS"]["init_command"]


def test_postgres_is_chosen_by_database_url(monkeypatch):
    settings = load(monkeypatch, DATABASE_URL="postgres://portal@127.0.0.1:5432/portal")
    database = settings["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("127.0.0.1", "portal")
    assert database["CONN_HEALTH_CHECKS"] is True


@pytest.mark.parametrize(
    ("overrides", "variable", "hint"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY", "required when DJANGO_DEBUG is off"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG", "cannot be read"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS", "host names"),
        ({"DJANGO_CSRF_TRUSTED_ORIGINS": "portal.example.com"}, "DJANGO_CSRF_TRUSTED_ORIGINS", "scheme"),
        ({"FIELD_ENCRYPTION_KEYS": None}, "FIELD_ENCRYPTION_KEYS", "Fernet.generate_key"),
        ({"FIELD_ENCRYPTION_KEYS": "short"}, "FIELD_ENCRYPTION_KEYS", "key number 1"),
        ({"WHAPI_PARTNER_TOKEN": None}, "WHAPI_PARTNER_TOKEN", "partner panel"),
        ({"WHAPI_PARTNER_URL": "manager.whapi.cloud"}, "WHAPI_PARTNER_URL", "not an http(s) URL"),
        ({"PORTAL_BASE_URL": None}, "PORTAL_BASE_URL", "required when DJANGO_DEBUG is off"),
        ({"WHAPI_INIT_DELAY": "ninety"}, "WHAPI_INIT_DELAY", "cannot be read"),
        ({"WHAPI_CREATE_BUDGET": "0"}, "WHAPI_CREATE_BUDGET", "below its minimum"),
        ({"WHAPI_CREATE_BUDGET": "25"}, "WHAPI_CREATE_BUDGET", "above Whapi's limit of 20"),
        ({"WHAPI_CREATE_WINDOW": "-5"}, "WHAPI_CREATE_WINDOW", "below its minimum"),
        ({"DATABASE_URL": "mysql://root@localhost/portal"}, "DATABASE_URL", "unsupported engine"),
        ({"RETENTION_LEDGER_DAYS": "-1"}, "RETENTION_LEDGER_DAYS", "0 to keep the rows forever"),
        ({"RETENTION_AUDIT_DAYS": "a year"}, "RETENTION_AUDIT_DAYS", "cannot be read"),
    ],
)
def test_misconfiguration_names_the_variable(monkeypatch, overrides, variable, hint):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        load(monkeypatch, **overrides)
    message = str(excinfo.value)
    assert message.startswith(variable + ":")
    assert hint in message


def test_debug_mode_needs_no_production_secrets(monkeypatch):
    settings = load(
        monkeypatch,
        DJANGO_DEBUG="on",
        DJANGO_SECRET_KEY=None,
        FIELD_ENCRYPTION_KEYS=None,
        PORTAL_BASE_URL=None,
        DJANGO_ALLOWED_HOSTS=None,
    )
    assert settings["DEBUG"] is True
    assert settings["PORTAL_BASE_URL"] == "http://127.0.0.1:8000"
    assert settings["FIELD_ENCRYPTION_KEYS"]


def test_env_file_is_read_but_environment_wins(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("WHAPI_INIT_DELAY=12\nWHAPI_PARTNER_TOKEN=from-file\n")
    settings = load(monkeypatch, DJANGO_ENV_FILE=str(env_file), WHAPI_PARTNER_TOKEN="from-environment")
    assert settings["WHAPI_INIT_DELAY"] == 12
    assert settings["WHAPI_PARTNER_TOKEN"] == "from-environment"
