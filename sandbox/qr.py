"""QR codes of the sandbox: rotating codes per channel and real, scannable PNGs (pure Python, no Pillow)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import math
import secrets
import string

import qrcode
from qrcode.image.pure import PyPNGImage

_PAIRING_ALPHABET = string.ascii_uppercase + string.digits


def qr_code_at(secret: str, now: float, expire_seconds: int, *, periods_back: int = 0) -> str:
    """The QR code of a channel at sandbox time `now` (or `periods_back` rotations earlier).

    Codes are derived, not stored: an HMAC of the channel's QR secret and the rotation period, so
    they survive restarts and need no cleanup. A new code starts every `expire_seconds`.
    """
    period = int(now // expire_seconds) - periods_back
    return hmac.new(secret.encode(), str(period).encode(), hashlib.sha256).hexdigest()[:16]


def qr_seconds_left(now: float, expire_seconds: int) -> int:
    """Whole seconds (at least 1) until the current code is replaced: the `expire` of Whapi's QR object."""
    return max(1, math.ceil((int(now // expire_seconds) + 1) * expire_seconds - now))


def qr_png(data: str) -> bytes:
    """A PNG image of a QR code holding `data` (qrcode's defaults: ECC M, box 10 px, border 4 modules)."""
    image = qrcode.make(data, image_factory=PyPNGImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def png_data_url(png: bytes) -> str:
    """`data:image/png;base64,...`, the form of Whapi's QR `base64` field the sandbox answers with."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def new_pairing_code() -> str:
    """A WhatsApp-style pairing code, e.g. "K7QM-2XWA"."""
    letters = "".join(secrets.choice(_PAIRING_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"
