"""`Dialer(redis_url)`: enqueue and inspect campaigns from another Python service, without HTTP.

The same service as the CLI and the HTTP API behind it: the same validation, answers and errors
(``DialerError`` subclasses carrying the user's message).
"""

from __future__ import annotations

from typing import Any

from dialer.clock import Clock
from dialer.service import Service


class Dialer:
    def __init__(self, redis_url: str | None = None, clock: Clock | None = None) -> None:
        self.service = Service.from_settings(redis_url=redis_url, clock=clock)

    def submit_campaign(
        self, account_id: str, campaign: dict[str, Any], start: bool = True
    ) -> dict[str, Any]:
        """Validate and store a campaign (and start it): seed 003's 202 body plus ``status``."""
        return self.service.for_account(account_id).submit(campaign, start=start)

    def start_campaign(self, campaign_id: str) -> dict[str, Any]:
        return self.service.for_campaign(campaign_id).start(campaign_id)

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        return self.service.for_campaign(campaign_id).campaign(campaign_id)

    def calls(self, campaign_id: str) -> list[dict[str, Any]]:
        return self.service.for_campaign(campaign_id).calls(campaign_id)

    def enqueue_campaign(self, account_id: str, campaign: dict[str, Any], start: bool = True) -> str:
        """Send the ``submit_campaign`` Dramatiq message through this client's Redis (fire and forget);
        returns the message id."""
        return self.service.enqueue_campaign(account_id, campaign, start)
