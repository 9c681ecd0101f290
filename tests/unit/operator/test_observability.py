"""The operator's per-task metrics, computed from SyncTask objects."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from ferry_operator import observability


class Fixed(Collector):
    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks

    def collect(self) -> Any:
        return observability.task_metrics(self.tasks)


def exposition(tasks: list[dict[str, Any]]) -> str:
    registry = CollectorRegistry()
    registry.register(Fixed(tasks))
    return generate_latest(registry).decode()


def test_a_running_task_exports_every_series() -> None:
    task = {
        "metadata": {"namespace": "shop", "name": "orders"},
        "spec": {"alerts": {"lagThreshold": "1m"}},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "lag": {"seconds": 2.5},
            "progress": {"percent": 100},
            "counters": {"events": 42, "errors": 1, "restarts": 3},
            "workerPod": {"restarts": 2},  # pod restarts add up with the pipeline's
            "verification": {"nonce": "v", "state": "Completed", "mismatchedRows": 4},
        },
    }
    text = exposition([task])
    labels = 'namespace="shop",synctask="orders"'
    assert f"ferry_synctask_ready{{{labels}}} 1.0" in text
    # the exposition sorts labels by name
    assert 'ferry_synctask_phase{namespace="shop",phase="Running",synctask="orders"} 1.0' in text
    assert 'ferry_synctask_phase{namespace="shop",phase="Paused",synctask="orders"} 0.0' in text
    assert f"ferry_synctask_lag_seconds{{{labels}}} 2.5" in text
    assert f"ferry_synctask_lag_threshold_seconds{{{labels}}} 60.0" in text
    assert f"ferry_synctask_progress_percent{{{labels}}} 100.0" in text
    assert f"ferry_synctask_events_total{{{labels}}} 42.0" in text
    assert f"ferry_synctask_errors_total{{{labels}}} 1.0" in text
    assert f"ferry_synctask_restarts_total{{{labels}}} 5.0" in text
    assert f"ferry_synctask_verification_mismatched_rows{{{labels}}} 4.0" in text


def test_a_new_task_without_status_is_not_ready_and_has_no_threshold() -> None:
    text = exposition([{"metadata": {"namespace": "a", "name": "b"}, "spec": {}}])
    assert 'ferry_synctask_ready{namespace="a",synctask="b"} 0.0' in text
    assert "ferry_synctask_lag_threshold_seconds{" not in text
    assert "ferry_synctask_verification_mismatched_rows{" not in text  # never verified
    assert 'phase="Pending",synctask="b"} 0.0' in text  # no phase yet: every phase series is 0


def test_heartbeat_goes_stale() -> None:
    heartbeat = observability.LoopHeartbeat()
    assert heartbeat.healthy()
    heartbeat.last -= observability.STUCK_AFTER_SECONDS + 1
    assert not heartbeat.healthy()
