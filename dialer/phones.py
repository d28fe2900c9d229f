"""E.164 normalisation with phonenumbers (DESIGN §10 Numbers)."""

from __future__ import annotations

import phonenumbers


class InvalidNumber(ValueError):
    pass


def normalize(raw: str, default_region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise InvalidNumber (``is_valid_number`` must hold)."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else (default_region or None))
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
