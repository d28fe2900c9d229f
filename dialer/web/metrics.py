"""``GET /metrics``: Prometheus metrics read from Redis at scrape time — the counters the scripts keep in the
same step as the change they count, and gauges of the moment — so they are exact however many worker
processes there are (no per-process counters to add up)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer import keys, ops
from dialer.money import UNITS_PER_CURRENCY
from dialer.pace import hour_start
from dialer.service import Service
from dialer.web.auth import admin, service_of

router = APIRouter(tags=["operations"])


class DialerCollector(Collector):
    def __init__(self, svc: Service) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        core = self.svc.core
        store, now = core.store, core.now()
        yield from self._counters(store.stats())
        yield from self._accounts(store, now)
        status = ops.status(core)
        backlog = status["backlog"]
        for name, doc, value in (
            ("dialer_due_backlog", "Attempts due now, not yet handed to a worker", backlog["due_now"]),
            ("dialer_due_later", "Attempts waiting for a later time", backlog["due_later"]),
            ("dialer_claimed_attempts", "Attempts handed to a worker (leased)", backlog["claimed"]),
            ("dialer_launches_due", "Campaign launches due", backlog["launches_due"]),
            (
                "dialer_live_call_checks",
                "Live calls waiting for their next check",
                backlog["live_call_checks"],
            ),
            (
                "dialer_queue_messages",
                "Dramatiq messages enqueued and not yet acked",
                backlog["queued_messages"],
            ),
            (
                "dialer_oldest_overdue_seconds",
                "How late the most overdue attempt is",
                backlog["oldest_overdue_s"],
            ),
            (
                "dialer_scheduler_tick_age_seconds",
                "Seconds since the last scheduler tick",
                status["last_tick"]["age_s"] or 0,
            ),
            ("dialer_schedulers_alive", "Schedulers that ticked in the last 10 s", len(status["schedulers"])),
            ("dialer_workers_alive", "Worker processes that beat in the last 10 s", len(status["workers"])),
        ):
            yield GaugeMetricFamily(name, doc, value=value)

    @staticmethod
    def _counters(stats: dict[str, int]) -> Iterator[Metric]:
        placed = CounterMetricFamily(
            "dialer_calls_placed", "Calls the provider accepted", labels=["account", "provider"]
        )
        outcomes = CounterMetricFamily(
            "dialer_call_outcomes", "Attempts ended, by final state", labels=["account", "provider", "state"]
        )
        settled = CounterMetricFamily(
            "dialer_money_settled",
            "Money charged for ended calls (currency units)",
            labels=["account", "provider"],
        )
        deferrals = CounterMetricFamily(
            "dialer_deferrals", "Attempts that had to wait, by reason", labels=["reason"]
        )
        released = CounterMetricFamily(
            "dialer_claims_released",
            "Claims given back to be taken again: expired (a worker died or was stuck: look into it) or "
            "shutdown (a worker stopped cleanly)",
            labels=["reason"],
        )
        for key, value in sorted(stats.items()):
            kind, _, rest = key.partition("|")
            if kind == "placed":
                placed.add_metric(rest.split("/", 1), value)
            elif kind == "outcome":
                label, _, state = rest.rpartition("|")
                outcomes.add_metric([*label.split("/", 1), state], value)
            elif kind == "settled":
                settled.add_metric(rest.split("/", 1), value / UNITS_PER_CURRENCY)
            elif kind == "deferred":
                deferrals.add_metric([rest], value)
            elif kind == "released":
                released.add_metric([rest], value)
        yield from (placed, outcomes, settled, deferrals, released)

    @staticmethod
    def _accounts(store: Any, now: int) -> Iterator[Metric]:
        reserved = GaugeMetricFamily(
            "dialer_money_reserved", "Money held for live calls (currency units)", labels=["account"]
        )
        available = GaugeMetricFamily(
            "dialer_money_available", "Balance minus reserved (currency units)", labels=["account"]
        )
        quota = GaugeMetricFamily(
            "dialer_quota_used", "Calls placed this UTC hour", labels=["account", "provider"]
        )
        live = GaugeMetricFamily("dialer_live_calls", "Calls up now", labels=["account", "provider"])
        hour = hour_start(now)
        pairs = [(a, p) for a in store.account_ids() for p in store.provider_names(a)]
        with store.r.pipeline(transaction=False) as pipe:
            for a in store.account_ids():
                pipe.hmget(keys.account(a), "balance", "reserved")
            for a, p in pairs:
                pipe.get(keys.provider_quota(a, p, hour))
                pipe.hget(keys.provider_state(a, p), "live")
            answers = pipe.execute()
        accounts = store.account_ids()
        for a, (balance, held) in zip(accounts, answers[: len(accounts)], strict=False):
            reserved.add_metric([a], int(held or 0) / UNITS_PER_CURRENCY)
            available.add_metric([a], (int(balance or 0) - int(held or 0)) / UNITS_PER_CURRENCY)
        rest = answers[len(accounts) :]
        for i, (a, p) in enumerate(pairs):
            quota.add_metric([a, p], int(rest[2 * i] or 0))
            live.add_metric([a, p], int(rest[2 * i + 1] or 0))
        yield from (reserved, available, quota, live)


@router.get("/metrics", include_in_schema=True)
def metrics(request: Request) -> Response:
    """Prometheus text format. With DIALER_ADMIN_TOKEN set it needs `Authorization: Bearer` that token (the
    metrics name every account)."""
    svc = service_of(request)
    if svc.core.settings.admin_token:
        admin(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DialerCollector(svc))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
