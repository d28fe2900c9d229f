"""E.164 normalisation with phonenumbers (DESIGN §10 Numbers)."""

from __future__ import annotations

import re

import phonenumbers

MAX_LENGTH = 32
# digits with the usual separators, one leading + (perhaps inside a parenthesis): no letters (an
# extension, a vanity number), no leading minus
_SHAPE = re.compile(r"^\(?\+?\d[\d ().\-/]*$")


class InvalidNumber(ValueError):
    pass


def normalize(raw: str, default_region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise InvalidNumber (``is_valid_number`` must hold). A number
    with an extension is refused (it would be dialled without it)."""
    text = raw.strip()
    if len(text) > MAX_LENGTH:
        raise InvalidNumber(f"not a phone number: longer than {MAX_LENGTH} characters")
    if not _SHAPE.match(text):
        raise InvalidNumber("not a phone number: digits with an optional leading + and country code")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else (default_region or None))
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc}") from None
    if parsed.extension:
        raise InvalidNumber("an extension cannot be dialled: give the number without it")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
