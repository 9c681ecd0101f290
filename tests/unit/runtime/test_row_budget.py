"""RowBudget: back-pressure by rows between the binlog reader and the sink."""

from __future__ import annotations

import threading
import time

from ferry_runtime.source.binlog import RowBudget


def test_reader_waits_until_the_sink_takes_rows() -> None:
    budget, stop = RowBudget(100), threading.Event()
    assert budget.acquire(60, stop)
    acquired = threading.Event()
    thread = threading.Thread(target=lambda: budget.acquire(60, stop) and acquired.set())
    thread.start()
    time.sleep(0.3)
    assert not acquired.is_set()  # 60 + 60 > 100: blocked
    budget.release(60)
    thread.join(2)
    assert acquired.is_set() and budget.used == 60


def test_a_transaction_larger_than_the_budget_passes_alone() -> None:
    budget, stop = RowBudget(10), threading.Event()
    assert budget.acquire(1000, stop)
    budget.release(1000)
    assert budget.used == 0


def test_stop_releases_a_waiting_reader() -> None:
    budget, stop = RowBudget(10), threading.Event()
    assert budget.acquire(10, stop)
    stop.set()
    assert budget.acquire(5, stop) is False
