"""ferry_queue_fill_ratio and ferry_slow_decoder_events_total follow the tracker."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ferry_runtime import metrics
from ferry_runtime.status import StatusTracker


def samples(tracker: StatusTracker) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry(tracker)).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_queue_fill_is_the_probe_clamped_and_zero_without_a_feed() -> None:
    tracker = StatusTracker()
    assert samples(tracker)[("ferry_queue_fill_ratio", frozenset())] == 0.0
    fill = [0.25]
    tracker.set_queue_probe(lambda: fill[0])
    assert samples(tracker)[("ferry_queue_fill_ratio", frozenset())] == 0.25
    fill[0] = 3.0  # a transaction bigger than the whole row budget
    assert samples(tracker)[("ferry_queue_fill_ratio", frozenset())] == 1.0
    tracker.set_queue_probe(None)
    assert samples(tracker)[("ferry_queue_fill_ratio", frozenset())] == 0.0


def test_slow_decoder_events_are_counted_by_table_and_reason() -> None:
    tracker = StatusTracker()
    assert not any(n == "ferry_slow_decoder_events_total" for n, _ in samples(tracker))
    for _ in range(3):
        tracker.record_slow_decode("shop.geo", "unsupported")
    tracker.record_slow_decode("shop.orders", "rejected")
    got = samples(tracker)
    name = "ferry_slow_decoder_events_total"
    assert got[(name, frozenset({("table", "shop.geo"), ("reason", "unsupported")}))] == 3
    assert got[(name, frozenset({("table", "shop.orders"), ("reason", "rejected")}))] == 1
