"""Secrets at rest: Fernet encryption for channel tokens and webhook secrets.

Keys come from `settings.FIELD_ENCRYPTION_KEYS` (newest first). The first key encrypts; every key
decrypts, so a new key can be put in front and the data re-encrypted afterwards with
`python manage.py rotate_encryption_keys`. A value that no key can decrypt raises
`DecryptionError`; the ciphertext is never handed back as if it were the secret.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any key in FIELD_ENCRYPTION_KEYS."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


@receiver(setting_changed)
def _forget_keys(*, setting, **kwargs):
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    """Return the Fernet token (text) of `plaintext`, made with the newest key."""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Return the plaintext of a Fernet token; raises DecryptionError when no key fits."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS: the key it was written with "
            "is missing (add it back after the new key) or the value is corrupt."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a Fernet token with the newest key (raises DecryptionError when no key fits)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("A stored secret cannot be re-encrypted: no key in FIELD_ENCRYPTION_KEYS fits.") from exc


def mask(secret: str, visible: int = 4) -> str:
    """Show only the last `visible` characters of a secret, e.g. for the admin: '••••••••Q9qn'."""
    if not secret:
        return ""
    return "•" * 8 + secret[-visible:] if len(secret) > visible * 3 else "•" * 8


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plaintext, the database the Fernet token.

    The empty string stays empty (no secret set). Lookups other than `isnull` and exact-empty make
    no sense on ciphertext and are not supported.
    """

    description = "Text encrypted at rest with FIELD_ENCRYPTION_KEYS"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
