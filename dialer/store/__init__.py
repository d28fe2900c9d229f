"""The Redis store: the system of record. Every state change that can race is a Lua script."""

from dialer.store.redis_store import Store

__all__ = ["Store"]
