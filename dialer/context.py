"""What every layer above the store works with: the store, the clock, the provider factory, the settings.

Built once per process (``Service.from_settings``) and handed down, so no function takes four loose
arguments and no layer builds its own factory.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from dialer.clock import Clock
from dialer.providers import ProviderFactory
from dialer.store import Store


@dataclass(frozen=True)
class Core:
    store: Store
    clock: Clock
    providers: ProviderFactory
    settings: Settings

    def now(self) -> int:
        return self.clock.now_ms()
