"""The daemon's Prometheus metrics, through prometheus-client.

Counters and the duration histogram are observed as syncs finish; the gauges (DAGs by status,
consecutive failures, served commit, age of the last successful sync) are read at each scrape
from the reconcile records and the DAG counts, over the daemon's one read-only connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gitdags.model import CONSUMER_STATES, ConsumerStatus, SourceRecord

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _StateCollector(Collector):
    def __init__(
        self,
        records: Callable[[], dict[str, SourceRecord]],
        counts: Callable[[], dict[str, dict[str, int]]],
        publishes: Callable[[], dict[str, dict[str, Any]]] | None = None,
        last_success: Callable[[], dict[str, float]] | None = None,
        consumers: Callable[[], list[ConsumerStatus]] | None = None,
    ) -> None:
        self.consumers = consumers
        self.records = records
        self.counts = counts
        self.publishes = publishes
        self.last_success = last_success

    def collect(self) -> Iterator[GaugeMetricFamily]:
        records = self.records()
        age = GaugeMetricFamily(
            "gitdags_seconds_since_last_successful_sync",
            "Age of the last successful sync (a poll that found nothing new included).",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "gitdags_source_consecutive_failures", "Failed syncs in a row.", labels=["source"]
        )
        served = GaugeMetricFamily(
            "gitdags_served_commit_info",
            "The commit each source serves (as a label).",
            labels=["source", "commit"],
        )
        now = time.time()
        polled = self.last_success() if self.last_success else {}
        for name, r in sorted(records.items()):
            failures.add_metric([name], r.failures)
            if r.served_commit:
                served.add_metric([name, r.served_commit], 1)
            # a poll that found nothing new is a successful sync too (the database records
            # only the syncs that changed something; the daemon knows its quiet polls)
            synced = [polled[name]] if name in polled else []
            if r.last_sync_at:
                synced.append(datetime.fromisoformat(r.last_sync_at).timestamp())
            if synced:
                age.add_metric([name], max(0.0, now - max(synced)))
        dags = GaugeMetricFamily(
            "gitdags_dags", "DAGs by source and status.", labels=["source", "status"]
        )
        for source, by_status in sorted(self.counts().items()):
            for status, n in sorted(by_status.items()):
                dags.add_metric([source, status], n)
        published = GaugeMetricFamily(
            "gitdags_publish_ok",
            "1 when the publish target's last publish worked, 0 when it failed.",
            labels=["target", "generation"],
        )
        for target, last in sorted((self.publishes() if self.publishes else {}).items()):
            published.add_metric(
                [target, str(last.get("generation") or "")], 0 if last.get("error") else 1
            )
        yield from (age, failures, served, dags, published)
        if self.consumers is not None:
            yield from _consumer_metrics(self.consumers())


def _consumer_metrics(statuses: list[ConsumerStatus]) -> Iterator[GaugeMetricFamily]:
    dags = GaugeMetricFamily(
        "gitdags_consumer_dags",
        "Served DAGs by consumer and state there (landed, pending, drift, broken, missing).",
        labels=["consumer", "state"],
    )
    lag = GaugeMetricFamily(
        "gitdags_consumer_lag_seconds",
        "How long the oldest served DAG a consumer has not parsed yet has waited (0: none).",
        labels=["consumer"],
    )
    for status in statuses:
        for state in CONSUMER_STATES:
            dags.add_metric([status.name, state], status.counts.get(state, 0))
        lag.add_metric([status.name], status.oldest_pending or 0.0)
    yield from (dags, lag)


class DaemonMetrics:
    def __init__(
        self,
        records: Callable[[], dict[str, SourceRecord]],
        counts: Callable[[], dict[str, dict[str, int]]],
        publishes: Callable[[], dict[str, dict[str, Any]]] | None = None,
        *,
        last_success: Callable[[], dict[str, float]] | None = None,
        consumers: Callable[[], list[ConsumerStatus]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.syncs = Counter(
            "gitdags_syncs",
            "Syncs by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "gitdags_sync_duration_seconds",
            "Duration of syncs, fetch included.",
            ["source"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(records, counts, publishes, last_success, consumers))

    def observe(self, source: str, outcome: str, seconds: float) -> None:
        self.syncs.labels(source, outcome).inc()
        self.duration.labels(source).observe(seconds)

    def forget(self, source: str) -> None:
        """Drop the series of a source that left the config."""
        outcomes = {
            sample.labels["outcome"]
            for family in self.syncs.collect()
            for sample in family.samples
            if sample.labels.get("source") == source and "outcome" in sample.labels
        }
        for outcome in outcomes:
            self.syncs.remove(source, outcome)
        if any(
            sample.labels.get("source") == source
            for family in self.duration.collect()
            for sample in family.samples
        ):
            self.duration.remove(source)
