"""Builds the provider client for a ProviderConfig (one per configuration, reused across calls)."""

from __future__ import annotations

import threading

import redis

from dialer.clock import Clock
from dialer.models import ProviderConfig
from dialer.telephony.base import Provider
from dialer.telephony.simulator import SimulatorProvider


class ProviderFactory:
    def __init__(self, client: redis.Redis, clock: Clock) -> None:
        self.client = client
        self.clock = clock
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
        raise NotImplementedError(f"provider kind {cfg.kind!r} is not available yet")
