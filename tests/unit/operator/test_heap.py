"""heap.py: glibc's free heap pages handed back, and the owned copies' shared strings."""

from __future__ import annotations

import asyncio
import json

from ferry_operator import heap, owned


def test_trim_runs_and_a_zero_interval_means_never() -> None:
    blocks = [bytearray(4096) for _ in range(2000)]  # ~8 MiB from glibc, then freed
    del blocks
    assert isinstance(heap.trim(), bool)
    asyncio.run(asyncio.wait_for(heap.trim_every(0), 1))  # returns at once


def test_compact_copies_share_keys_and_short_strings() -> None:
    text = '{"metadata": {"labels": {"app.kubernetes.io/managed-by": "ferry-operator"}}}'
    first, second = json.loads(text), json.loads(text)  # two watch events: new strings
    assert next(iter(first["metadata"]["labels"])) is not next(iter(second["metadata"]["labels"]))
    one, two = owned.compact(first), owned.compact(second)
    assert one == first and two == second
    assert next(iter(one["metadata"]["labels"])) is next(iter(two["metadata"]["labels"]))
    assert (
        one["metadata"]["labels"]["app.kubernetes.io/managed-by"]
        is (two["metadata"]["labels"]["app.kubernetes.io/managed-by"])
    )
    long = json.loads('"' + "x" * 100 + '"')
    assert owned.compact({"data": long})["data"] == long
    one["metadata"]["labels"]["new"] = "1"
    assert "new" not in first["metadata"]["labels"]  # a private copy
