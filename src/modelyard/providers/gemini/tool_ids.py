"""Tool call ids for Gemini function calls, carrying the call's thought signature.

Gemini does not give function calls ids that clients can echo, and from Gemini 3 on it rejects a
conversation whose latest function calls come back without the opaque ``thoughtSignature`` it
attached to them. Clients speaking the OpenAI or Anthropic API echo only a call's id, name and
arguments, so the signature rides inside the id: ``call_<24 hex>_ts_<signature>``, with the
signature's base64 turned into the URL-safe alphabet so the id stays ``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import re
import uuid

_MARK = "_ts_"
_SIGNED = re.compile(r"call_[0-9a-f]{24}_ts_(?P<sig>[A-Za-z0-9_-]+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")


def new_call_id(signature: object = None) -> str:
    """A fresh ``call_...`` id; ``signature`` (Gemini's base64 text) is embedded when valid."""
    call_id = "call_" + uuid.uuid4().hex[:24]
    if isinstance(signature, str) and _BASE64.fullmatch(signature):
        return call_id + _MARK + signature.rstrip("=").translate(_TO_URLSAFE)
    return call_id


def signature_of(call_id: str) -> str | None:
    """The thought signature embedded by ``new_call_id``, as Gemini's base64, or None."""
    match = _SIGNED.fullmatch(call_id)
    if match is None:
        return None
    text = match["sig"].translate(_FROM_URLSAFE)
    return text + "=" * (-len(text) % 4)
