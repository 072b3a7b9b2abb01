"""pytest plugin (loaded with `-p tests.environment`): the environment every test run starts from.

It runs before pytest-django imports `portal.settings`, so the settings see these values. Values
already set in the environment win (CI passes DATABASE_URL for PostgreSQL).
"""

import os

TEST_ENVIRONMENT = {
    "DJANGO_ENV_FILE": "",
    "DJANGO_DEBUG": "off",
    "DJANGO_SECRET_KEY": "test-secret-key-not-used-anywhere-else",
    "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    # Two keys: the first encrypts, both decrypt (rotation is exercised by the tests).
    "FIELD_ENCRYPTION_KEYS": (
        "dGVzdC1rZXktb25lLWZvci10aGUtcG9ydGFsLXRlc3Q=,dGVzdC1rZXktdHdvLWZvci10aGUtcG9ydGFsLXRlc3Q="
    ),
    "WHAPI_PARTNER_URL": "https://manager.whapi.test",
    "WHAPI_PARTNER_TOKEN": "test-partner-token",
    "PORTAL_BASE_URL": "https://portal.test",
    "DJANGO_SECURE_SSL_REDIRECT": "off",
    "WHAPI_TIMEOUT": "5",
    # Playwright's sync API keeps an event loop in the test thread; Django would take the test for
    # async code and refuse database access in it.
    "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
}

for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
