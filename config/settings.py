"""Settings read from the environment (prefix ``DIALER_``) — the only configuration surface."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis to use (>= 6.2). Unset: the embedded one started by `dialer dev` (var/redis.url).",
    )
    var_dir: Path = Field(
        default=Path("var"), description="Where the embedded Redis keeps data, socket, logs."
    )
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="auto = console on a TTY, JSON otherwise."
    )
    log_level: str = Field(default="INFO")
    scheduler_tick_s: float = Field(default=1.0, gt=0, description="Seconds between scheduler ticks.")
    claim_batch: int = Field(default=500, gt=0, description="Most messages the scheduler keeps queued.")
    lease_s: float = Field(default=60.0, gt=0, description="How long a claimed attempt/schedule is leased.")
    dial_timeout_s: float = Field(default=15.0, gt=0, description="HTTP timeout of one provider dial.")
    public_url: str | None = Field(default=None, description="Public base URL for Twilio status callbacks.")
    http_port: int = Field(
        default=8000, ge=0, le=65535, description="Port of the web process (0 = any free port)."
    )
    http_host: str = Field(
        default="127.0.0.1", description="Address the web process listens on (0.0.0.0: all)."
    )
    web_workers: int = Field(
        default=2, ge=1, le=64, description="uvicorn worker processes of `python -m dialer.web`."
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token of the admin routes (accounts, top-ups, keys); unset = none."
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Largest HTTP request body.")
    max_contacts: int = Field(default=100_000, ge=1, description="Most contacts in one campaign or import.")
    secret_key: str | None = Field(
        default=None, repr=False, description="Fernet key that encrypts provider credentials at rest."
    )
    queue: str = Field(default="dialer", description="Dramatiq queue name of the actors.")
    expand_chunk: int = Field(
        default=1000, ge=1, le=10_000, description="Contacts turned into attempts per step of a launch."
    )
    poison_limit: int = Field(
        default=3, ge=1, description="Times an attempt's processing may raise before it ends failed."
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        """Twilio posts to ``<public_url>/twilio/status?ref=...``: an http(s) base with a host and nothing
        after its path (a query or fragment would swallow the route)."""
        url = (v or "").strip()
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
            raise ValueError("must be an http(s) URL with a host, like https://dialer.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment (it is the base of /twilio/status)")
        return url.rstrip("/")


class SettingsError(Exception):
    """An environment variable the settings cannot take (exit 3, naming it)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"DIALER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"bad environment: {problems}") from None


def process_settings() -> Settings:
    """The settings of a long-running process (scheduler, web): a bad DIALER_* variable is said once on
    stderr and the process exits 3, with no traceback."""
    try:
        return get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(3) from None
