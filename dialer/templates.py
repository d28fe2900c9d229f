"""Message templates (DESIGN §10): ``{{first_name}}``, ``{{custom_fields.x}}``, ``{{first_name|there}}``,
``{{1}}``..``{{N}}`` for per-contact ``params``. TwiML is built with the SDK (escaped), never pasted."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*(?:\|([^}]*))?\}\}")


class MissingValue(ValueError):
    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder)
        self.placeholder = placeholder


def check_template(text: str) -> None:
    """Every ``{{`` opens a well-formed placeholder: an unclosed ``{{first_name`` or a stray ``}}`` would
    otherwise be spoken as is. Raises ValueError naming the spot."""
    rest = PLACEHOLDER.sub("", text)
    for mark in ("{{", "}}"):
        at = rest.find(mark)
        if at >= 0:
            raise ValueError(
                f"malformed placeholder near {rest[max(0, at - 10) : at + 20]!r} (write {{{{name}}}})"
            )


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def required_params(text: str) -> int:
    """How many per-contact ``params`` a text needs: its highest ``{{N}}`` without a declared default."""
    return max(
        (int(m.group(1)) for m in PLACEHOLDER.finditer(text) if m.group(1).isdigit() and m.group(2) is None),
        default=0,
    )


def _lookup(name: str, data: dict[str, Any]) -> Any:
    if name.isdigit():
        params = data.get("params") or []
        i = int(name) - 1
        return params[i] if 0 <= i < len(params) else None
    value: Any = data
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def render(text: str, data: dict[str, Any]) -> str:
    """Fill placeholders from a contact's data; raise MissingValue for one with no value and no default."""

    def sub(m: re.Match[str]) -> str:
        value = _lookup(m.group(1), data)
        if value is None or value == "":
            if m.group(2) is not None:
                return m.group(2).strip()
            # seed 001: a param given empty is given (its rule counts params)
            if value == "" and m.group(1).isdigit():
                return ""
            raise MissingValue("{{" + m.group(1) + "}}")
        return str(value)

    return PLACEHOLDER.sub(sub, text)


def check_xml(xml: str) -> None:
    """A raw ``xml`` message must be well-formed TwiML (a <Response> root)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise ValueError("TwiML must have a <Response> root element")


def twiml_for(
    say: str | None,
    audio: str | None,
    xml: str | None,
    data: dict[str, Any],
    language: str | None = None,
    voice: str | None = None,
) -> str:
    """The TwiML a contact hears."""
    if xml:
        return xml
    resp = VoiceResponse()
    if say:
        kwargs: dict[str, Any] = {}
        if language:
            kwargs["language"] = language
        if voice:
            kwargs["voice"] = voice
        resp.say(render(say, data), **kwargs)
    if audio:
        resp.play(audio)
    return str(resp)
