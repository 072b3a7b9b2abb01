"""Settings of the Whapi partner portal: one module, configured by environment variables.

Every variable is listed with a one-line comment in `.env.example`. A missing or malformed value stops
start-up with an `ImproperlyConfigured` that names the variable and says how to fix it.
"""

import os
import tempfile
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` file beside manage.py is read when present; real environment variables win over it.
# DJANGO_ENV_FILE names another file, or none when empty (the test suite reads no .env).
_env_file = env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env"))
if _env_file:
    environ.Env.read_env(_env_file, overwrite=False)


def _config_error(variable: str, problem: str, fix: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{variable}: {problem}. {fix}")


def _read(variable: str, cast, default):
    """Read one variable, turning django-environ's parse errors into a message that names it."""
    try:
        return cast(variable, default=default)
    except (ValueError, TypeError) as exc:
        raise _config_error(variable, f"cannot be read ({exc})", "Fix its value in the environment or .env.") from exc


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _strict_bool(variable: str, default: bool) -> bool:
    """Like env.bool, but a typo ("ture", "maybe") is an error instead of silently False."""
    raw = env.str(variable, default=str(default)).strip().lower()
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ValueError(f"{raw!r} is not one of on/off, true/false, yes/no, 1/0")


# ------------------------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------------------------
DEBUG = _read("DJANGO_DEBUG", _strict_bool, False)
# Staff sign in to the admin with a password and a one-time code (TOTP or a recovery code) whenever
# DJANGO_DEBUG is off; `manage.py staff_two_factor <username>` enrols them (docs/operations.md).
STAFF_TWO_FACTOR = not DEBUG
OTP_TOTP_ISSUER = "Whapi Partner Portal"

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise _config_error(
            "DJANGO_SECRET_KEY",
            "is required when DJANGO_DEBUG is off",
            'Set it to a long random string, e.g. python -c "import secrets; print(secrets.token_urlsafe(50))".',
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG-on"

ALLOWED_HOSTS = _read("DJANGO_ALLOWED_HOSTS", env.list, ["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise _config_error(
        "DJANGO_ALLOWED_HOSTS",
        "is empty while DJANGO_DEBUG is off",
        "List the host names the portal is served under, comma-separated (e.g. portal.example.com).",
    )
CSRF_TRUSTED_ORIGINS = _read("DJANGO_CSRF_TRUSTED_ORIGINS", env.list, [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise _config_error(
            "DJANGO_CSRF_TRUSTED_ORIGINS",
            f"entry {_origin!r} has no scheme",
            "Write each origin with its scheme, e.g. https://portal.example.com.",
        )

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # Django's admin, with staff's two-factor sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "channels_app",
    "alerts",
    "api",
    "branding",
    "events",
    # django-ninja's own templates and static files: /api/v1/docs then loads Swagger UI from the
    # portal itself (the Content-Security-Policy allows nothing from a CDN).
    "ninja",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The visitor's language: the language cookie (the chooser), else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's own choice of language (their profile) wins over the cookie and the browser.
    "portal.locale.ProfileLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.timezones.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.csp.ContentSecurityPolicyMiddleware",
    "portal.not_found.NotFoundPageMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "branding.context_processors.brand",
            ],
        },
    },
]

# ------------------------------------------------------------------------------------------------
# Database: SQLite file by default (WAL, immediate transactions); PostgreSQL via DATABASE_URL.
# ------------------------------------------------------------------------------------------------
(BASE_DIR / "var").mkdir(exist_ok=True)
try:
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
except Exception as exc:  # django-environ raises several types for a bad URL
    raise _config_error(
        "DATABASE_URL",
        f"cannot be parsed ({exc})",
        "Use e.g. postgres://user@127.0.0.1:5432/portal or sqlite:////abs/path/db.sqlite3.",
    ) from exc
_engine = DATABASES["default"]["ENGINE"]
if _engine == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Writers take the lock up front so concurrent workers queue instead of failing with
            # "database is locked" half-way through a transaction.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file too (not Django's in-memory default), so threads and processes share it the
    # way they do in production; one per test process, so two test runs never share one.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(Path(tempfile.gettempdir()) / f"portal-test-{os.getpid()}.sqlite3")
    )
elif _engine in ("django.db.backends.postgresql",):
    # Connections are reused for a minute, checked before each request's first query.
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # psycopg's server-side binding: statements run often (the webhook receiver's) are prepared once
    # per connection. Put PgBouncer in session mode, not transaction mode, in front of this.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
else:
    raise _config_error(
        "DATABASE_URL",
        f"selects the unsupported engine {_engine}",
        "Use a postgres:// or sqlite:// URL.",
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
# The customer pages, the hand-off page and the mails speak these (docs/customer-pages.md,
# "Languages"); the catalogues are locale/<language>/LC_MESSAGES/django.po, compiled .mo in the tree.
LANGUAGES = [("en", "English"), ("es", "Español"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"

# ------------------------------------------------------------------------------------------------
# Accounts: customers sign in under /app/ (channels_app.urls); staff keep /admin/login/ for the admin.
# ------------------------------------------------------------------------------------------------
LOGIN_URL = "channels_app:login"
LOGIN_REDIRECT_URL = "channels_app:home"
LOGOUT_REDIRECT_URL = "channels_app:login"
# Behind exactly one reverse proxy that appends to X-Forwarded-For: the login throttle then counts
# the client's address instead of the proxy's.
TRUST_X_FORWARDED_FOR = _read("DJANGO_TRUST_X_FORWARDED_FOR", _strict_bool, False)

# ------------------------------------------------------------------------------------------------
# Email (password resets, invitations): the console with DJANGO_DEBUG on, SMTP otherwise.
# ------------------------------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    if EMAIL_URL.split("://", 1)[0] not in environ.Env.EMAIL_SCHEMES:
        raise _config_error(
            "EMAIL_URL",
            f"has the unknown scheme {EMAIL_URL.split('://', 1)[0]!r}",
            "Use smtp://, smtp+tls:// (STARTTLS), smtp+ssl:// (TLS from the start) or consolemail://, "
            "e.g. smtp+tls://user:password@smtp.example.com:587.",
        )
    _email = env.email_url_config(EMAIL_URL)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
    EMAIL_PORT = _email.get("EMAIL_PORT") or 25
    EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
    EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    # No EMAIL_URL in production: the local mail server (Django's default, localhost:25).
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Whapi portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# ------------------------------------------------------------------------------------------------
# Production hardening (active when DJANGO_DEBUG is off)
# ------------------------------------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _read("DJANGO_SECURE_SSL_REDIRECT", _strict_bool, True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _read("DJANGO_SECURE_HSTS_SECONDS", env.int, 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# ------------------------------------------------------------------------------------------------
# Secrets at rest: channel tokens and webhook secrets are encrypted with these Fernet keys.
# ------------------------------------------------------------------------------------------------
FIELD_ENCRYPTION_KEYS = _read("FIELD_ENCRYPTION_KEYS", env.list, [])
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise _config_error(
            "FIELD_ENCRYPTION_KEYS",
            "is required when DJANGO_DEBUG is off",
            'Generate a key with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())" (newest key first, comma-separated when rotating).',
        )
    # A fixed key for local development only; production must bring its own.
    FIELD_ENCRYPTION_KEYS = ["ZGV2LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24tdXNlISE="]
for _position, _key in enumerate(FIELD_ENCRYPTION_KEYS, start=1):
    try:
        Fernet(_key)
    except (ValueError, TypeError) as exc:
        raise _config_error(
            "FIELD_ENCRYPTION_KEYS",
            f"key number {_position} is not a valid Fernet key",
            "Each key must be 32 url-safe base64-encoded bytes, as made by Fernet.generate_key().",
        ) from exc

# ------------------------------------------------------------------------------------------------
# Whapi
# ------------------------------------------------------------------------------------------------
WHAPI_PARTNER_URL = env.str("WHAPI_PARTNER_URL", default="https://manager.whapi.cloud").rstrip("/")
if not WHAPI_PARTNER_URL.startswith(("http://", "https://")):
    raise _config_error(
        "WHAPI_PARTNER_URL",
        f"{WHAPI_PARTNER_URL!r} is not an http(s) URL",
        "Use https://manager.whapi.cloud, or the built-in sandbox's address (e.g. http://127.0.0.1:8765).",
    )
# The partner account's name in Whapi's partner API paths (/partners/{name}/settings): only the `days`
# webhook's set-up uses it (`manage.py partner_webhook`).
WHAPI_PARTNER_NAME = env.str("WHAPI_PARTNER_NAME", default="whapicloud")
WHAPI_PARTNER_TOKEN = env.str("WHAPI_PARTNER_TOKEN", default="")
if not WHAPI_PARTNER_TOKEN:
    raise _config_error(
        "WHAPI_PARTNER_TOKEN",
        "is not set",
        "Copy the partner API token from Whapi's partner panel (panel.whapi.cloud/partner-section); "
        "`make run` sets one for the built-in sandbox.",
    )

PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000" if DEBUG else "").rstrip("/")
if not PORTAL_BASE_URL.startswith(("http://", "https://")):
    raise _config_error(
        "PORTAL_BASE_URL",
        "must be the public http(s) base URL of this portal"
        + (" and is required when DJANGO_DEBUG is off" if not DEBUG else ""),
        "Whapi calls our webhooks under it; set e.g. https://portal.example.com.",
    )

WHAPI_INIT_DELAY = _read("WHAPI_INIT_DELAY", env.float, 90.0)
WHAPI_CREATE_BUDGET = _read("WHAPI_CREATE_BUDGET", env.int, 18)
WHAPI_CREATE_WINDOW = _read("WHAPI_CREATE_WINDOW", env.float, 1800.0)
WHAPI_TIMEOUT = _read("WHAPI_TIMEOUT", env.float, 15.0)
for _name, _value, _low in (
    ("WHAPI_INIT_DELAY", WHAPI_INIT_DELAY, 0),
    ("WHAPI_CREATE_BUDGET", WHAPI_CREATE_BUDGET, 1),
    ("WHAPI_CREATE_WINDOW", WHAPI_CREATE_WINDOW, 1),
    ("WHAPI_TIMEOUT", WHAPI_TIMEOUT, 1),
):
    if _value < _low:
        raise _config_error(
            _name, f"is {_value}, below its minimum of {_low}", "Raise it or remove it to use the default."
        )
if WHAPI_CREATE_BUDGET > 20:
    raise _config_error(
        "WHAPI_CREATE_BUDGET",
        f"is {WHAPI_CREATE_BUDGET}, above Whapi's limit of 20 creations per window",
        "Keep it at 20 or below (18 leaves room for channels created by hand in Whapi's panel).",
    )

# The checks sweep (channels_app.checks): how long a channel may stay quiet before its health is
# asked of Whapi, how often a live channel's webhook settings are read back, how many gate calls
# one sweep makes at once, and in how many worker processes (each computes on one core at a time).
HEALTH_CHECK_EVERY = _read("HEALTH_CHECK_EVERY", env.float, 900.0)
SETTINGS_CHECK_EVERY = _read("SETTINGS_CHECK_EVERY", env.float, 21600.0)
CHECKS_CONCURRENCY = _read("CHECKS_CONCURRENCY", env.int, 64)
CHECKS_PROCESSES = _read("CHECKS_PROCESSES", env.int, 2)
for _name, _value, _low, _high in (
    ("HEALTH_CHECK_EVERY", HEALTH_CHECK_EVERY, 10, 86400),
    ("SETTINGS_CHECK_EVERY", SETTINGS_CHECK_EVERY, 60, 7 * 86400),
    ("CHECKS_CONCURRENCY", CHECKS_CONCURRENCY, 1, 256),
    ("CHECKS_PROCESSES", CHECKS_PROCESSES, 1, 16),
):
    if not _low <= _value <= _high:
        raise _config_error(_name, f"is {_value}", f"Use a value from {_low} to {_high}.")
if CHECKS_PROCESSES > CHECKS_CONCURRENCY:
    raise _config_error(
        "CHECKS_PROCESSES",
        f"is {CHECKS_PROCESSES}, more than CHECKS_CONCURRENCY ({CHECKS_CONCURRENCY})",
        "Each process of the sweep makes at least one gate call at once: use at most CHECKS_CONCURRENCY.",
    )

# Alerts (alerts/): a connected channel that disconnects is told only once it has stayed so for this
# long and Whapi confirms it (a reconnect within it tells nothing).
ALERT_GRACE_SECONDS = _read("ALERT_GRACE_SECONDS", env.float, 120.0)
if not 0 <= ALERT_GRACE_SECONDS <= 86400:
    raise _config_error("ALERT_GRACE_SECONDS", f"is {ALERT_GRACE_SECONDS}", "Use a value from 0 to 86400.")
# A told disconnect that still lasts this long is escalated to staff, once.
ALERT_ESCALATE_MINUTES = _read("ALERT_ESCALATE_MINUTES", env.int, 60)
# A channel ready for its scan this long, and not scanned, gets one reminder to its customer.
SCAN_REMINDER_HOURS = _read("SCAN_REMINDER_HOURS", env.float, 24.0)
for _name, _value, _low, _high in (
    ("ALERT_ESCALATE_MINUTES", ALERT_ESCALATE_MINUTES, 1, 7 * 24 * 60),
    ("SCAN_REMINDER_HOURS", SCAN_REMINDER_HOURS, 0.05, 30 * 24),
):
    if not _low <= _value <= _high:
        raise _config_error(_name, f"is {_value}", f"Use a value from {_low} to {_high}.")
# Days before a channel's paid time ends (activeTill) at which its reminders go out, each once per period.
try:
    EXPIRY_REMINDER_DAYS = sorted({int(day) for day in env.list("EXPIRY_REMINDER_DAYS", default=["7", "3", "1"])})
except ValueError as exc:
    raise _config_error("EXPIRY_REMINDER_DAYS", "is not a list of whole days", "Use e.g. 7,3,1.") from exc
if any(not 1 <= day <= 365 for day in EXPIRY_REMINDER_DAYS):
    raise _config_error("EXPIRY_REMINDER_DAYS", f"is {EXPIRY_REMINDER_DAYS}", "Use days from 1 to 365, e.g. 7,3,1.")

# Events to customers' systems (events/, docs/events.md): an endpoint whose deliveries failed this many
# times in a row is paused for this many minutes (pending deliveries wait), and its customer told.
EVENTS_DISABLE_AFTER_FAILURES = _read("EVENTS_DISABLE_AFTER_FAILURES", env.int, 10)
EVENTS_DISABLE_MINUTES = _read("EVENTS_DISABLE_MINUTES", env.int, 60)
for _name, _value, _low, _high in (
    ("EVENTS_DISABLE_AFTER_FAILURES", EVENTS_DISABLE_AFTER_FAILURES, 1, 1000),
    ("EVENTS_DISABLE_MINUTES", EVENTS_DISABLE_MINUTES, 1, 7 * 24 * 60),
):
    if not _low <= _value <= _high:
        raise _config_error(_name, f"is {_value}", f"Use a value from {_low} to {_high}.")

# ------------------------------------------------------------------------------------------------
# The REST API (/api/v1/, api/): each key may make API_RATE_LIMIT requests per API_RATE_WINDOW_SECONDS
# (counted in the database, so every web server agrees); beyond, 429 with Retry-After.
# ------------------------------------------------------------------------------------------------
API_RATE_LIMIT = _read("API_RATE_LIMIT", env.int, 300)
API_RATE_WINDOW_SECONDS = _read("API_RATE_WINDOW_SECONDS", env.int, 60)
for _name, _value, _low, _high in (
    ("API_RATE_LIMIT", API_RATE_LIMIT, 1, 100_000),
    ("API_RATE_WINDOW_SECONDS", API_RATE_WINDOW_SECONDS, 1, 86400),
):
    if not _low <= _value <= _high:
        raise _config_error(_name, f"is {_value}", f"Use a value from {_low} to {_high}.")

# ------------------------------------------------------------------------------------------------
# Monitoring: /metrics serves the fleet's figures to Prometheus (channels_app.views.metrics) to
# requests that bear this token; without one it answers 404.
# ------------------------------------------------------------------------------------------------
METRICS_TOKEN = env.str("METRICS_TOKEN", default="").strip()
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise _config_error(
        "METRICS_TOKEN",
        f"is {len(METRICS_TOKEN)} characters long, fewer than the 32 that keep it from being guessed",
        'Make one with python -c "import secrets; print(secrets.token_urlsafe(32))", or leave it empty to turn '
        "/metrics off.",
    )

# ------------------------------------------------------------------------------------------------
# Retention: days each record is kept (0 = forever); `retention_prune` deletes older rows hourly
# (channels_app.retention, docs/operations.md "Retention").
# ------------------------------------------------------------------------------------------------
# The ledger is the big one (about 10 callbacks per channel a day); 90 days covers any replay or
# "what did Whapi send us" question.
RETENTION_LEDGER_DAYS = _read("RETENTION_LEDGER_DAYS", env.int, 90)
# State changes only, a few per channel a week: a year answers "since when is it disconnected".
RETENTION_TIMELINE_DAYS = _read("RETENTION_TIMELINE_DAYS", env.int, 365)
# Forever by default: extensions spend partner days, and billing disputes look back a long way.
RETENTION_AUDIT_DAYS = _read("RETENTION_AUDIT_DAYS", env.int, 0)
# Events sent to customers' systems, their deliveries and attempts (the delivery log).
RETENTION_EVENTS_DAYS = _read("RETENTION_EVENTS_DAYS", env.int, 30)
# django-q2 keeps every failed task; successes are bounded by Q_CLUSTER["save_limit"].
RETENTION_FAILED_TASK_DAYS = _read("RETENTION_FAILED_TASK_DAYS", env.int, 30)
for _name, _value in (
    ("RETENTION_LEDGER_DAYS", RETENTION_LEDGER_DAYS),
    ("RETENTION_TIMELINE_DAYS", RETENTION_TIMELINE_DAYS),
    ("RETENTION_AUDIT_DAYS", RETENTION_AUDIT_DAYS),
    ("RETENTION_FAILED_TASK_DAYS", RETENTION_FAILED_TASK_DAYS),
    ("RETENTION_EVENTS_DAYS", RETENTION_EVENTS_DAYS),
):
    if _value < 0:
        raise _config_error(_name, f"is {_value}, below 0", "Use a number of days, or 0 to keep the rows forever.")

# ------------------------------------------------------------------------------------------------
# django-q2: the ORM broker, so the database is the only moving part.
# ------------------------------------------------------------------------------------------------
Q_CLUSTER = {
    "name": "portal",
    "orm": "default",
    # The checks sweep and the callbacks applier each run 80 s of every minute, so two of each overlap
    # for 20 s: the sweep in CHECKS_PROCESSES (2) workers, the applier in one; the events sender takes
    # one more once a customer has an endpoint. That is up to seven or eight at once; two are left for
    # creations, configurations, bulk jobs and the rest.
    "workers": _read("Q_WORKERS", env.int, 10),
    # A task is killed after `timeout` seconds and handed out again after `retry` seconds, so
    # timeout < retry is what keeps one task from running twice at the same time.
    "timeout": 120,
    "retry": 180,
    "max_attempts": 3,
    # After downtime a schedule runs once, not once per missed interval.
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 1,
    "label": "Background tasks",
}
# `manage.py worker` looks for due schedules this often (django-q2's own loop: every 30 s).
Q_SCHEDULER_SECONDS = _read("Q_SCHEDULER_SECONDS", env.float, 5.0)
if not 0.5 <= Q_SCHEDULER_SECONDS <= 60:
    raise _config_error("Q_SCHEDULER_SECONDS", f"is {Q_SCHEDULER_SECONDS}", "Use a value from 0.5 to 60 seconds.")
# How much lower than the web servers `manage.py worker` runs for the CPU scheduler (a nice value): the
# answers to Whapi's callbacks come first, the work they leave follows (docs/operations.md, "Priorities").
WORKER_NICE = _read("WORKER_NICE", env.int, 10)
if not 0 <= WORKER_NICE <= 19:
    raise _config_error("WORKER_NICE", f"is {WORKER_NICE}", "Use a nice value from 0 (as started) to 19 (lowest).")

# ------------------------------------------------------------------------------------------------
# Logging: to the console; secrets are never passed to a logger (see channels_app.crypto).
# ------------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"receiver_refusals": {"()": "portal.log_filters.QuietRefusals"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["receiver_refusals"]}},
    "root": {"handlers": ["console"], "level": _read("LOG_LEVEL", env.str, "INFO")},
    # apprise's own log lines may hold a chat URL, and with it the service's token: only its worst.
    "loggers": {"urllib3": {"level": "WARNING"}, "apprise": {"level": "CRITICAL"}},
}
