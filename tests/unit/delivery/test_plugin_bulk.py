"""kubectl ferry pause|resume|restart over many tasks: which combinations of names, -l, --all
and -A are accepted, the summary table and the exit code."""

from __future__ import annotations

import argparse

import pytest

from ferry_operator import kubectl_plugin
from ferry_operator.plugin import bulk
from ferry_operator.plugin.errors import UsageError


def parse(*argv: str) -> argparse.Namespace:
    return kubectl_plugin.build_parser().parse_args(list(argv))


def test_one_name_is_the_single_task_call() -> None:
    selected = bulk.selection(parse("pause", "orders"))
    assert selected.single == "orders" and selected.selector is None


def test_several_names_each_once_in_order() -> None:
    selected = bulk.selection(parse("resume", "b", "a", "b"))
    assert selected.names == ("b", "a") and selected.single is None


def test_selector_all_and_all_namespaces() -> None:
    by_label = bulk.selection(parse("restart", "-l", "team=shop"))
    assert by_label.selector == "team=shop" and not by_label.all_namespaces
    every = bulk.selection(parse("pause", "--all", "-A"))
    assert every.selector == "" and every.all_namespaces and every.single is None
    assert every.describe("shop") == "--all in any namespace"
    assert by_label.describe("shop") == "-l team=shop in namespace 'shop'"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("pause",), "name a SyncTask, or select several with -l SELECTOR or --all"),
        (("pause", "a", "-l", "x=y"), "NAME and -l do not go together"),
        (("pause", "-l", "x=y", "--all"), "-l and --all do not go together"),
        (("pause", "a", "-A"), "-A goes with -l or --all"),
        (("pause", "-l", " "), "-l needs a label selector"),
    ],
)
def test_bad_combinations_are_usage_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        bulk.selection(parse(*argv))


def test_summary_table_and_exit_code() -> None:
    outcomes = [
        bulk.Outcome("orders", "shop", bulk.CHANGED, "paused", {"spec": {"paused": True}}),
        bulk.Outcome("invoices", "shop", bulk.UNCHANGED, "already paused"),
        bulk.Outcome("ghost", "shop", bulk.FAILED, "not found"),
    ]
    assert bulk.summary_table(outcomes).splitlines() == [
        "TASK       NAMESPACE   RESULT      MESSAGE",
        "orders     shop        changed     paused",
        "invoices   shop        unchanged   already paused",
        "ghost      shop        failed      not found",
        "3 tasks: 1 changed, 1 unchanged, 1 failed",
    ]
    assert bulk.exit_code(outcomes) == 1
    assert bulk.exit_code(outcomes[:2]) == 0
    assert outcomes[0].data() == {
        "name": "orders",
        "namespace": "shop",
        "result": "changed",
        "changed": True,
        "message": "paused",
        "patch": {"spec": {"paused": True}},
    }
    assert bulk.summary(outcomes[:1]) == "1 task: 1 changed, 0 unchanged, 0 failed"
