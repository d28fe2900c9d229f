"""``python -m dialer.web``: serve the HTTP API with uvicorn (``DIALER_HTTP_HOST``, ``DIALER_HTTP_PORT``,
``DIALER_WEB_WORKERS``)."""

from __future__ import annotations

import sys

import uvicorn

from config.logging import configure_logging
from config.settings import process_settings


def main() -> int:
    settings = process_settings()
    configure_logging(settings)
    uvicorn.run(
        "dialer.web.app:create_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=settings.web_workers,
        log_config=None,  # our structlog set-up (JSON or console), with the access log of the app itself
        access_log=False,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
