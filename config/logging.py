"""structlog set-up: one processor chain, secrets redacted, phone numbers masked to the last 4 digits."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from config.settings import Settings, get_settings

_SECRET_KEY = re.compile(r"(token|secret|password|api_?key|auth|credential)", re.IGNORECASE)
# Keys whose whole value is a phone number, whatever its format.
_PHONE_KEY = re.compile(r"^(phone|to|from|from_|number|numbers|caller|called|msisdn)$", re.IGNORECASE)
# In free text: international numbers (+ or URL-encoded %2B, then 7-15 digits with common separators).
# Ids and timestamps carry no +, so they are left alone.
_PHONE = re.compile(r"(?:\+|%2B)\d(?:[\d\- ().]{5,}\d)")
REDACTED = "[redacted]"


def mask_phone(value: str) -> str:
    """`+34600123456` -> `***3456`; keeps only the last 4 digits."""
    digits = re.sub(r"\D", "", value.replace("%2B", "+"))
    return "***" + digits[-4:]


def _mask_text(text: str) -> str:
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def _scrub(value: Any, phone: bool = False) -> Any:
    if isinstance(value, str):
        return mask_phone(value) if phone and any(c.isdigit() for c in value) else _mask_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _SECRET_KEY.search(str(k)) else _scrub(v, bool(_PHONE_KEY.match(str(k)))))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, phone) for v in value)
    return value


def redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Redaction is a processor, not a habit at call sites: secrets by key name, phones by key and shape."""
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger"):
            continue
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key], bool(_PHONE_KEY.match(key)))
    return event_dict


def configure_logging(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_processor,
    ]
    # JSON lines carry the traceback as text (the console renderer prints it itself), redacted like every
    # other field: an exception's message may hold a number
    exc_text: list[Any] = [] if fmt == "console" else [structlog.processors.format_exc_info, redact_processor]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exc_text,
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the Twilio SDK logs request parameters (To/From) at DEBUG; keep it quiet
    logging.getLogger("twilio").setLevel(max(level, logging.WARNING))
    # httpx logs every request at INFO (the demo's health polls, the SDK's calls): its failures raise
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    # APScheduler logs every run of the tick at INFO ("Running job", "Job executed successfully") and a
    # tick that overran its interval at WARNING; how late ticks are is in `dialer status` and /metrics
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))
