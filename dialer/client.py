"""`Dialer(redis_url)`: enqueue and inspect campaigns from another Python service, without HTTP."""

from __future__ import annotations

from typing import Any

from config import get_settings
from dialer.campaigns import calls_view, campaign_view, start_campaign, submit
from dialer.clock import Clock, SystemClock
from dialer.connection import connect
from dialer.providers import ProviderFactory
from dialer.store import Store


class Dialer:
    """A thin client over the store: the same validation and answers as the CLI (errors are DialerError)."""

    def __init__(self, redis_url: str | None = None, clock: Clock | None = None) -> None:
        self.store = Store(connect(redis_url, get_settings()))
        self.clock = clock or SystemClock()
        self.providers = ProviderFactory(self.store.r, self.clock)

    def submit_campaign(
        self, account_id: str, campaign: dict[str, Any], start: bool = True
    ) -> dict[str, Any]:
        """Validate and store a campaign (and start it): seed 003's 202 body plus ``status``."""
        return submit(self.store, self.clock, self.providers, account_id, campaign, start=start)

    def start_campaign(self, campaign_id: str) -> dict[str, Any]:
        account_id = self.store.campaign_account(campaign_id)
        return start_campaign(self.store, self.clock, self.providers, account_id, campaign_id)

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        return campaign_view(self.store, self.store.campaign_account(campaign_id), campaign_id)

    def calls(self, campaign_id: str) -> list[dict[str, Any]]:
        return calls_view(self.store, self.store.campaign_account(campaign_id), campaign_id)

    @staticmethod
    def enqueue_campaign(account_id: str, campaign: dict[str, Any], start: bool = True) -> str:
        """Send the ``submit_campaign`` Dramatiq message (fire and forget); returns the message id."""
        import actors

        return str(actors.submit_campaign.send(account_id, campaign, start).message_id)
