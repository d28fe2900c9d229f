"""Provider configurations (what `provider add/update` and the HTTP routes accept) and the factory that
builds one client per configuration, reused across calls."""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlparse

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import Settings
from dialer.clock import Clock
from dialer.errors import InvalidRequest
from dialer.models import ProviderConfig
from dialer.money import MAX_PRICE, parse_money
from dialer.phones import InvalidNumber, normalize
from dialer.secrets import SecretBox
from dialer.telephony.base import Provider
from dialer.telephony.simulator import SimulatorProvider, parse_sim_options
from dialer.telephony.twilio import TwilioProvider
from dialer.validation import describe

MAX_CPS = 1000.0
MIN_CPS = 0.001  # one call per ~17 minutes: slower still is the hourly quota's job (1/cps is the stagger)
MAX_CONCURRENT = 100_000
MAX_CALL_SECONDS = 4 * 3600  # Twilio's longest time_limit
MAX_HOURLY_QUOTA = 10_000_000


class ProviderSpec(BaseModel):
    """Options of a provider as given (CLI flags, HTTP body); unset fields keep the current value (or the
    default, for a new one). Every number is finite and within its range, else refused naming it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, strict=True)

    kind: str | None = None
    from_numbers: list[str] | None = Field(default=None, alias="from")
    hourly_quota: int | None = Field(default=None, ge=0, le=MAX_HOURLY_QUOTA)
    cps: float | None = Field(default=None, ge=MIN_CPS, le=MAX_CPS)
    max_concurrent: int | None = Field(default=None, ge=1, le=MAX_CONCURRENT)
    price_per_minute: str | None = None
    max_call_seconds: int | None = Field(default=None, ge=1, le=MAX_CALL_SECONDS)
    account_sid: str | None = None
    auth_token: str | None = Field(default=None, repr=False)
    api_base: str | None = None
    sim: list[str] | dict[str, Any] | None = None
    enabled: bool | None = None


def parse_spec(data: Any) -> ProviderSpec:
    if not isinstance(data, dict):
        raise InvalidRequest("the provider options must be a JSON object")
    try:
        return ProviderSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from None


def _numbers(values: list[str]) -> list[str]:
    numbers = []
    for n in values:
        try:
            numbers.append(normalize(n))
        except InvalidNumber as exc:
            raise InvalidRequest(f"from: {n}: {exc}") from None
    return numbers


def build_config(base: dict[str, Any], spec: ProviderSpec) -> ProviderConfig:
    """One builder for add (from the defaults) and update (from the stored configuration)."""
    cfg = dict(base)
    kind = spec.kind or cfg.get("kind") or "simulator"
    if kind not in ("simulator", "twilio"):
        raise InvalidRequest(f"kind: must be simulator or twilio, not {kind!r}")
    cfg["kind"] = kind
    if spec.from_numbers is not None:
        if not spec.from_numbers:
            raise InvalidRequest("from: at least one caller id is required")
        cfg["from_numbers"] = _numbers(spec.from_numbers)
    simple = {
        "hourly_quota": spec.hourly_quota,
        "calls_per_second": spec.cps,
        "max_concurrent": spec.max_concurrent,
        "max_call_seconds": spec.max_call_seconds,
        "account_sid": spec.account_sid,
        "api_base": spec.api_base,
        "enabled": spec.enabled,
        "auth_token": spec.auth_token,
    }
    cfg.update({k: v for k, v in simple.items() if v is not None})
    if spec.price_per_minute is not None:
        price = parse_money(spec.price_per_minute, "price_per_minute")
        if not 0 <= price <= MAX_PRICE:
            raise InvalidRequest(f"price_per_minute: must be between 0 and {MAX_PRICE // 10_000}")
        cfg["price_per_minute"] = price
    if kind == "simulator":
        for field in ("account_sid", "auth_token", "api_base"):
            if getattr(spec, field) is not None:
                raise InvalidRequest(f"{field}: a simulator provider takes no Twilio credentials")
        sim = spec.sim if spec.sim is not None else []
        pairs = [f"{k}={v}" for k, v in sim.items()] if isinstance(sim, dict) else sim
        cfg["sim"] = parse_sim_options(pairs, cfg.get("sim"))
    if not cfg.get("from_numbers"):
        raise InvalidRequest("from: at least one caller id is required")
    if kind == "twilio":
        if spec.sim:
            raise InvalidRequest("sim: simulator options are for a simulator provider, not twilio")
        _check_twilio(cfg)
    try:
        return ProviderConfig.model_validate(cfg)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from None


TWILIO_SID = re.compile(r"^AC[0-9a-fA-F]{32}\Z")


def _check_twilio(cfg: dict[str, Any]) -> None:
    if not TWILIO_SID.match(cfg.get("account_sid") or ""):
        raise InvalidRequest("account_sid: a Twilio account SID (AC followed by 32 hex digits) is required")
    token = cfg.get("auth_token") or ""
    if not token.strip() or token != token.strip():
        raise InvalidRequest(
            "auth_token: required for a twilio provider, without blanks (--auth-token - reads stdin)"
        )
    base = cfg.get("api_base")
    if base:
        url = urlparse(base)
        if url.scheme not in ("http", "https") or not url.hostname or any(c.isspace() for c in base):
            raise InvalidRequest(f"api_base: must be an http(s) URL with a host, not {base!r}")


class ProviderFactory:
    def __init__(
        self,
        client: redis.Redis,
        clock: Clock,
        settings: Settings | None = None,
        secrets: SecretBox | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings or Settings()
        # opens a token only to build its client (the store's box, which sealed it, when given)
        self.secrets = secrets or SecretBox(self.settings.secret_key)
        self._cache: dict[tuple[str, str], tuple[str, Provider]] = {}
        self._lock = threading.Lock()

    def get(self, cfg: ProviderConfig) -> Provider:
        ident = (cfg.account_id, cfg.name)
        fingerprint = cfg.model_dump_json()
        with self._lock:
            hit = self._cache.get(ident)
            if hit and hit[0] == fingerprint:
                return hit[1]
            provider = self._build(cfg)
            self._cache[ident] = (fingerprint, provider)
            return provider

    def _build(self, cfg: ProviderConfig) -> Provider:
        if cfg.kind == "simulator":
            return SimulatorProvider(self.client, self.clock, cfg.sim)
        return TwilioProvider(
            cfg.account_sid or "",
            self.secrets.open(cfg.auth_token) or "",  # CredentialsUnreadable with the wrong key
            api_base=cfg.api_base,
            http_timeout_s=self.settings.dial_timeout_s,
            callbacks=bool(self.settings.public_url),  # status callbacks come; else live calls are polled
        )
