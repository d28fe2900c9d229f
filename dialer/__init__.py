"""dialer: an outbound-call campaign engine on Dramatiq + Redis."""

__version__ = "0.1.0"
