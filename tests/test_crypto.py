import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from channels_app.crypto import DecryptionError, decrypt, encrypt, mask
from channels_app.models import Channel
from tests.conftest import skip_without_row_locks

KEY_ONE, KEY_TWO = (
    "dGVzdC1rZXktb25lLWZvci10aGUtcG9ydGFsLXRlc3Q=",
    "dGVzdC1rZXktdHdvLWZvci10aGUtcG9ydGFsLXRlc3Q=",
)
TOKEN = "LK0tQ9qnb5pvfDDsj5NzeRFpnpApSEGb"


def stored_token(channel: Channel) -> str:
    """The token column exactly as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {Channel._meta.db_table} WHERE id = %s", [channel.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def channel(db):
    return Channel.objects.create(name="Shop bot", token=TOKEN)


def test_token_round_trips(channel):
    assert Channel.objects.get(pk=channel.pk).token == TOKEN


def test_token_is_not_stored_in_clear(channel):
    raw = stored_token(channel)
    assert TOKEN not in raw
    assert Fernet(KEY_ONE).decrypt(raw.encode()).decode() == TOKEN


def test_webhook_secret_is_generated_and_encrypted(channel):
    secret = Channel.objects.get(pk=channel.pk).webhook_secret
    assert len(secret) >= 40
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT webhook_secret FROM {Channel._meta.db_table} WHERE id = %s", [channel.pk])
        assert secret not in cursor.fetchone()[0]


def test_empty_token_stays_empty(db):
    channel = Channel.objects.create(name="queued")
    assert stored_token(channel) == ""
    assert Channel.objects.get(pk=channel.pk).token == ""


def test_wrong_key_raises_instead_of_returning_ciphertext(channel, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        Channel.objects.get(pk=channel.pk)


def test_a_value_read_before_its_key_was_removed_no_longer_decrypts(channel, settings):
    assert Channel.objects.get(pk=channel.pk).token == TOKEN
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        Channel.objects.get(pk=channel.pk)


def test_old_key_still_decrypts_after_new_key_is_put_first(channel, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), KEY_ONE]
    assert Channel.objects.get(pk=channel.pk).token == TOKEN


def test_rotation_command_reencrypts_with_the_newest_key(channel, settings):
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, KEY_ONE, KEY_TWO]
    call_command("rotate_encryption_keys", verbosity=0, stdout=io.StringIO())

    raw = stored_token(channel)
    assert Fernet(new_key).decrypt(raw.encode()).decode() == TOKEN
    # The old key can be dropped now.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    reloaded = Channel.objects.get(pk=channel.pk)
    assert reloaded.token == TOKEN
    assert reloaded.webhook_secret == channel.webhook_secret


@pytest.mark.django_db(transaction=True)
def test_a_token_changed_while_the_rotation_runs_is_kept(settings):
    """The rotation locks the rows it re-encrypts as it reads them: a token written meanwhile (staff,
    a sync) is re-encrypted as written, not overwritten with the value read before it."""
    import threading
    import time

    from django.db import transaction

    skip_without_row_locks()
    channel = Channel.objects.create(name="Shop bot", token=TOKEN)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, KEY_ONE, KEY_TWO]

    def rotate():
        try:
            call_command("rotate_encryption_keys", verbosity=0, stdout=io.StringIO())
        finally:
            connection.close()

    with transaction.atomic():
        changing = Channel.objects.select_for_update().get(pk=channel.pk)
        changing.token = "the-token-written-meanwhile"
        changing.save(update_fields=["token"])
        rotation = threading.Thread(target=rotate)
        rotation.start()
        time.sleep(1.5)  # the rotation reaches the row while this write is not committed yet
    rotation.join(30)
    assert not rotation.is_alive()
    assert Fernet(new_key).decrypt(stored_token(channel).encode()).decode() == "the-token-written-meanwhile"


def test_rotation_command_fails_clearly_when_a_key_is_missing(channel, settings):
    from django.core.management.base import CommandError

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())


def test_decrypt_of_garbage_raises():
    with pytest.raises(DecryptionError):
        decrypt("not-a-fernet-token")
    assert decrypt(encrypt("x")) == "x"


def test_repr_and_str_never_show_secrets(channel):
    channel.whapi_id = "SHAZAM-3HDYQ"
    for text in (repr(channel), str(channel)):
        assert TOKEN not in text
        assert channel.webhook_secret not in text


def test_mask_shows_only_the_tail():
    assert mask(TOKEN) == "••••••••SEGb"
    assert mask("") == ""
    assert "abc" not in mask("abc")
