"""Scheduled snapshot runs on the worker's side (pure).

The operator starts each run of a scheduled ``mode: snapshot`` task with the run's id in the
environment variable ``FERRY_RUN``. A checkpoint whose ``run`` differs belongs to an earlier
run: the worker starts a new snapshot from nothing (keeping the task's counters and nonces)
and commits the new run's id with its first chunk. A checkpoint of the same run is resumed as
usual, and one that finished it makes the worker report Completed again without reading
anything: a pod restarted after its run never copies twice.
"""

from __future__ import annotations

import dataclasses
import logging

from ferry_runtime.checkpoint import Checkpoint

__all__ = ["RUN_ENV", "begin"]

RUN_ENV = "FERRY_RUN"
log = logging.getLogger("ferry.worker")


def begin(state: Checkpoint, mode: str, run: str | None) -> Checkpoint:
    """The checkpoint to work from: ``state``, or a fresh snapshot's for a new run."""
    if mode != "snapshot" or not run or run == state.run:
        return state
    log.info("snapshot run %s starts (the checkpoint's run was %s)", run, state.run or "none")
    return dataclasses.replace(state, position=None, snapshot=None, run=run)
