"""The HTTP API (the `web` process): ``dialer.web.app.create_app()`` for uvicorn, ``python -m dialer.web``
to serve it."""
