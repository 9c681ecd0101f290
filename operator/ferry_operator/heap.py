"""Give the memory freed after a burst back to the system: glibc's ``malloc_trim``.

Python's objects larger than 512 bytes (dict tables, long strings: most of a watch event's
parsed JSON) come from glibc's heap, which keeps what is freed for reuse; after a restart's
burst (every watched object listed and handled at once, kopf_toggles.py) tens of MiB stay
with the process though nothing uses them (docs/benchmarks.md). ``malloc_trim(0)`` returns
the free pages; :func:`trim_every` calls it now and then from the operator's event loop
(in a thread: it walks the heap). Elsewhere than glibc it does nothing."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

__all__ = ["trim", "trim_every"]

log = logging.getLogger(__name__)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


_MALLOC_TRIM = _libc()


def trim() -> bool:
    """Return glibc's free heap pages to the system; True if some were."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


async def trim_every(seconds: float) -> None:
    """Trim every ``seconds`` (0: never), forever."""
    if seconds <= 0 or _MALLOC_TRIM is None:
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(trim)
