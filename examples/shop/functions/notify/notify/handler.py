"""Normalise a customer message of unknown encoding to UTF-8 before sending it."""

from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from typing import Any

from charset_normalizer import from_bytes
from pydantic import ValidationError
from shared.models import Message


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        message = Message.model_validate(event)
        raw = base64.b64decode(message.body_base64, validate=True)
    except ValidationError as exc:
        return {"ok": False, "errors": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]}
    except binascii.Error:
        return {"ok": False, "errors": [{"field": "body_base64", "message": "not valid base64"}]}
    guess = from_bytes(raw).best()
    if guess is None:
        return {"ok": False, "errors": [{"field": "body_base64", "message": "not text in any known encoding"}]}
    # NFC so that "é" is one code point whichever system composed it.
    text = unicodedata.normalize("NFC", str(guess))
    return {
        "ok": True,
        "from": os.environ.get("SENDER", "shop@example.com"),
        "to": message.to,
        "subject": message.subject,
        "detected_encoding": guess.encoding,
        "language": guess.language,
        "text": text,
        "utf8_bytes": len(text.encode("utf-8")),
    }
