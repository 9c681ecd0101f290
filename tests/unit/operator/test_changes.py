"""Change causes name the fields that changed."""

from __future__ import annotations

from ferry_operator.render import changes


def test_a_changed_field_shows_old_and_new() -> None:
    before = {"performance": {"batchSize": 500}, "mode": "cdc"}
    after = {"performance": {"batchSize": 2000}, "mode": "cdc"}
    assert changes.describe(before, after) == "performance.batchSize: 500 → 2000"


def test_added_removed_lists_and_the_rest_counted() -> None:
    before = {"source": {"include": ["shop.a"]}, "paused": False, "alerts": {"x": 1}}
    after = {"source": {"include": ["shop.a", "shop.b"]}, "delivery": "at-least-once",
             "alerts": {"x": 1}, "z": 1, "y": 2}  # fmt: skip
    assert changes.differences(before, after) == [
        "delivery: (unset) → at-least-once",
        "paused: false → (unset)",
        'source.include: ["shop.a"] → ["shop.a", "shop.b"]',
        "y: (unset) → 2",
        "z: (unset) → 1",
    ]
    assert changes.describe(before, after) == (
        "delivery: (unset) → at-least-once; paused: false → (unset); "
        'source.include: ["shop.a"] → ["shop.a", "shop.b"] (and 2 more)'
    )


def test_long_values_are_cut_and_nothing_changed_is_none() -> None:
    long = "x" * 100
    (line,) = changes.differences({"a": long}, {"a": "y"})
    assert line == f"a: {'x' * 39}… → y"
    assert changes.describe({"a": {"b": 1}}, {"a": {"b": 1}}) is None
