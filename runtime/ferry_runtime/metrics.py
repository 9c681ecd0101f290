"""Prometheus metrics of one worker, read from its StatusTracker at scrape time.

A custom collector derives every metric from the tracker, so the pipeline records each fact
once (in the tracker) and the metrics can never disagree with /status. Each server gets its
own CollectorRegistry: no global state, so tests can run many workers in one process.

Metric names (all prefixed ``ferry_``) are listed in docs/status.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from ferry_runtime.status import State, StatusTracker

__all__ = ["TrackerCollector", "registry"]

STATES: tuple[str, ...] = get_args(State)


class TrackerCollector(Collector):
    """Yields the worker's metrics from a consistent read of the tracker."""

    def __init__(self, tracker: StatusTracker) -> None:
        self._tracker = tracker

    def collect(self) -> Iterator[Metric]:
        tracker = self._tracker
        with tracker.reading():  # one consistent picture
            events = dict(tracker.events_by_table_op)
            errors = dict(tracker.errors_by_reason)
            tables = [(t.name, t.rows_done, t.rows_total) for t in tracker.tables.values()]
            histogram = tracker.batch_latencies
            buckets = histogram.cumulative()
            latency_sum = histogram.total
            state = tracker.state
            restarts = tracker.restarts
            lag = tracker.lag_seconds()
            rate = tracker.events_per_second()
            checkpoint_age = tracker.checkpoint_age()
            percent = tracker.progress()["percent"]
            slow = dict(tracker.slow_decodes)
            queue_fill = tracker.queue_fill()
            verified = tracker.verification

        family = CounterMetricFamily(
            "ferry_events", "Change events delivered to the sink.", labels=["table", "op"]
        )
        for (table, op), count in sorted(events.items()):
            family.add_metric([table, op], count)
        yield family

        family = CounterMetricFamily(
            "ferry_errors", "Errors seen by the worker, by reason.", labels=["reason"]
        )
        for reason, count in sorted(errors.items()):
            family.add_metric([reason], count)
        yield family

        family = CounterMetricFamily(
            "ferry_snapshot_rows", "Snapshot rows delivered, by table.", labels=["table"]
        )
        estimate = GaugeMetricFamily(
            "ferry_snapshot_rows_estimate",
            "Rows each snapshot table is expected to hold (exact once the table is done).",
            labels=["table"],
        )
        for name, done, total in tables:
            family.add_metric([name], done)
            estimate.add_metric([name], total)
        yield family
        yield estimate
        yield GaugeMetricFamily(
            "ferry_snapshot_progress_percent", "Snapshot progress over all tables.", value=percent
        )

        yield HistogramMetricFamily(
            "ferry_batch_latency_seconds",
            "Time from a batch's first event read to the sink's acknowledgement.",
            buckets=buckets,
            sum_value=latency_sum,
        )
        yield GaugeMetricFamily(
            "ferry_lag_seconds",
            "Now minus the source timestamp of the newest delivered event; 0 when caught up.",
            value=lag,
        )
        yield GaugeMetricFamily(
            "ferry_events_per_second", "Delivered events per second (10 s window).", value=rate
        )
        if checkpoint_age is not None:
            yield GaugeMetricFamily(
                "ferry_checkpoint_age_seconds",
                "Seconds since the newest committed checkpoint.",
                value=checkpoint_age,
            )
        yield CounterMetricFamily(
            "ferry_restarts", "Pipeline restarts after transient errors.", value=restarts
        )
        yield GaugeMetricFamily(
            "ferry_queue_fill_ratio",
            "How full the binlog reader's queue to the sink is (0-1; 1: the reader waits).",
            value=queue_fill,
        )
        family = CounterMetricFamily(
            "ferry_slow_decoder_events",
            "Binlog rows events decoded on a slow path, by table and reason (by the "
            "library: unsupported, a column type the fast decoder does not read; rejected, "
            "it refused the event; python: the C decoder refused the event, the generated "
            "Python decoders read it).",
            labels=["table", "reason"],
        )
        for (table, reason), count in sorted(slow.items()):
            family.add_metric([table, reason], count)
        yield family
        if verified is not None and verified.error is None:
            yield GaugeMetricFamily(
                "ferry_verification_mismatched_rows",
                "Rows the last verifyRequest found different in the sink (drift).",
                value=verified.mismatched,
            )
            yield GaugeMetricFamily(
                "ferry_verification_unsettled_rows",
                "Rows the last verifyRequest could not judge (they kept changing).",
                value=verified.unsettled,
            )
            yield GaugeMetricFamily(
                "ferry_verification_timestamp_seconds",
                "When the last verifyRequest finished (Unix time).",
                value=verified.time,
            )
        yield StateSetMetricFamily(
            "ferry_state", "The worker's state.", value={s: s == state for s in STATES}
        )


def registry(tracker: StatusTracker) -> CollectorRegistry:
    """A fresh registry holding only this tracker's metrics."""
    result = CollectorRegistry(auto_describe=False)
    result.register(TrackerCollector(tracker))
    return result
