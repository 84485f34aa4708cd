"""Offhours' Prometheus metrics: every metric object, and the small functions that record them.

One `Metrics` per app, each with its own CollectorRegistry, so that two apps in one process (the tests) never
share a count. Labels carry kinds, outcomes, Web API method names and error codes: never a user id, a team id
or any text. README ("Watching it") says what each metric means and how to alert on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# The `_created` series double every counter's lines and tell an operator nothing a restart does not.
disable_created_metrics()

# Slack wants the 200 within 3 s: the buckets are finest below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# From seconds (an auto-reply) to hours (a recap retried through a Slack incident).
LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600)
# A label value must be a code, never free text (an HTML error page, an exception's message).
_LABEL = re.compile(r"[A-Za-z0-9_.:]{1,64}")


class PendingRead(Protocol):
    @property
    def count(self) -> int: ...
    @property
    def oldest(self) -> datetime | None: ...


def label(value: object) -> str:
    """`value` as a label value when it looks like a code, else "other"."""
    text = str(value)
    return text if _LABEL.fullmatch(text) else "other"


class Metrics:
    """The metrics of one app: counters and histograms recorded as things happen, gauges read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "offhours_events", "Slack events handled, by event type and outcome.", ["type", "outcome"], registry=r
        )
        self.deliveries = Counter(
            "offhours_deliveries",
            "Delivery attempts settled, by kind (auto_reply, recap) and result (sent, failed, retried, looked_up, "
            "expired). looked_up: found already posted by an earlier attempt (also counted as sent).",
            ["kind", "result"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "offhours_ack_seconds", "Time from a Slack request's arrival to Offhours' answer.", buckets=ACK_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.delivery_lag = Histogram(
            "offhours_delivery_lag_seconds",
            "Time from when a delivery was due (the DM's arrival, the recap's time) to when it was sent.",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.api_errors = Counter(
            "offhours_slack_api_errors",
            "Slack Web API calls that failed, by method and error (Slack's code, the HTTP status, or the network "
            "error's type); every attempt, retries included.",
            ["method", "error"],
            registry=r,
        )
        self.rate_limited = Counter(
            "offhours_rate_limited", "Slack Web API answers 429 (rate limited), by method.", ["method"], registry=r
        )
        self.nudges_dropped = Counter(
            "offhours_nudges_dropped",
            "Nudges not sent because they came too late (the promised reply-by time had passed: downtime), by reason.",
            ["reason"],
            registry=r,
        )
        self.scheduler_poll_seconds: float | None = None  # set when this process runs the scheduler
        self.last_tick_at: datetime | None = None
        self.scheduler_started_at: datetime | None = None

    # --- recording -------------------------------------------------------------------------------------

    def event(self, type_: str, outcome: str) -> None:
        self.events.labels(label(type_), label(outcome)).inc()

    def nudge_dropped(self, reason: str) -> None:
        self.nudges_dropped.labels(label(reason)).inc()

    def ack(self, seconds: float) -> None:
        self.ack_seconds.observe(max(seconds, 0.0))

    def settled(
        self,
        kind: str,
        state: str,
        *,
        due_at: datetime | None = None,
        now: datetime | None = None,
        untried: bool = False,
        looked_up: bool = False,
    ) -> None:
        """A delivery attempt ended in `state` (sent, pending = to be retried, failed, expired...).

        `untried`: handed back without an attempt (stopping, waiting for a lookup slot): not counted.
        `looked_up`: sent, found in Slack where an earlier attempt had posted it.
        """
        if state == "pending":
            if not untried:
                self.deliveries.labels(kind, "retried").inc()
            return
        if state == "sent":
            self.deliveries.labels(kind, "sent").inc()
            if looked_up:
                self.looked_up(kind)
            if due_at is not None and now is not None:
                self.delivery_lag.labels(kind).observe(max((now - due_at).total_seconds(), 0.0))
            return
        self.deliveries.labels(kind, "failed" if state == "failed" else "expired").inc()

    def looked_up(self, kind: str) -> None:
        """A delivery found in Slack, posted by an earlier attempt whose outcome was unknown: not posted again."""
        self.deliveries.labels(kind, "looked_up").inc()

    def api_error(self, method: str, error: str, *, rate_limited: bool = False) -> None:
        self.api_errors.labels(label(method), label(error)).inc()
        if rate_limited:
            self.rate_limited.labels(label(method)).inc()

    # --- the scheduler's heartbeat -----------------------------------------------------------------------

    def scheduler_started(self, *, poll_seconds: float, now: datetime) -> None:
        self.scheduler_poll_seconds = poll_seconds
        self.scheduler_started_at = now

    def scheduler_ticked(self, now: datetime) -> None:
        self.last_tick_at = now

    def scheduler_stale(self, now: datetime) -> float | None:
        """Seconds since this process's scheduler last ticked (or started) when that is too long ago, else None.

        Too long: three poll intervals, and at least a minute, so one slow tick (a morning's fan-out) is no outage.
        """
        if self.scheduler_poll_seconds is None:
            return None
        since = self.last_tick_at or self.scheduler_started_at
        if since is None:
            return None
        age = (now - since).total_seconds()
        return age if age > max(3 * self.scheduler_poll_seconds, 60.0) else None

    # --- scrape-time gauges ------------------------------------------------------------------------------

    def watch_pending(
        self, read: Callable[[datetime], Mapping[str, PendingRead]], clock: Callable[[], datetime]
    ) -> None:
        """Read the pending deliveries from the database at each scrape (`read(now)`: by kind)."""
        self.registry.register(_ScrapeCollector(self, read, clock))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ScrapeCollector(Collector):
    """The gauges worked out when Prometheus scrapes: pending deliveries (a database read) and the heartbeat."""

    def __init__(
        self, metrics: Metrics, read: Callable[[datetime], Mapping[str, PendingRead]], clock: Callable[[], datetime]
    ) -> None:
        self.metrics = metrics
        self.read = read
        self.clock = clock

    def describe(self) -> list:
        return []  # read at scrape time only: nothing is queried when the collector is registered

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        if self.metrics.scheduler_poll_seconds is not None:  # only a process running the scheduler has one
            tick = GaugeMetricFamily(
                "offhours_scheduler_last_tick_timestamp_seconds",
                "When this process's scheduler last finished a tick (Unix time; its start until the first tick).",
            )
            since = self.metrics.last_tick_at or self.metrics.scheduler_started_at
            tick.add_metric([], since.timestamp() if since is not None else 0.0)
            yield tick
        try:
            pending = self.read(now)
        except Exception as e:  # the database is down: the other metrics are still worth a scrape
            log.warning("metrics: pending deliveries unreadable error=%s", type(e).__name__)
            return
        count = GaugeMetricFamily("offhours_pending", "Deliveries due and not yet settled, by kind.", labels=["kind"])
        oldest = GaugeMetricFamily(
            "offhours_oldest_pending_seconds", "How long the oldest pending delivery has been due, by kind.",
            labels=["kind"],
        )  # fmt: skip
        for kind, value in sorted(pending.items()):
            count.add_metric([kind], value.count)
            age = (now - value.oldest).total_seconds() if value.oldest is not None else 0.0
            oldest.add_metric([kind], max(age, 0.0))
        yield count
        yield oldest
