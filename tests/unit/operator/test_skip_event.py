"""spec.skipEvent on the operator's side, without servers: the rendered worker config, the
EventSkipped announcement, and ``kubectl ferry skip``'s parsing and patch."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_operator import kubectl_plugin
from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.plugin import lifecycle, mergepatch, positions
from ferry_operator.plugin.errors import UsageError
from ferry_operator.reconcile.synctask.announce import skip_announcement
from ferry_operator.render.worker_config import render_worker_config
from ferry_runtime import config as runtime_config

CONNECTORS = {
    "shop-db": Connector.model_validate(
        {
            "metadata": {"name": "shop-db", "namespace": "shop"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "db",
                    "user": "ferry",
                    "passwordSecretRef": {"name": "db", "key": "password"},
                },
            },
        }
    ),
    "events": Connector.model_validate(
        {
            "metadata": {"name": "events", "namespace": "shop"},
            "spec": {"type": "kafka", "kafka": {"bootstrapServers": "kafka:9092"}},
        }
    ),
}


def task(**spec: Any) -> SyncTask:
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "source": {"connectorRef": {"name": "shop-db"}},
                "sink": {"connectorRef": {"name": "events"}, "kafka": {}},
                **spec,
            },
        }
    )


def test_skip_event_reaches_the_worker_config() -> None:
    by_pos = {"position": {"file": "binlog.000003", "pos": 1500}, "nonce": "n1"}
    rendered = render_worker_config(task(skipEvent=by_pos), CONNECTORS)
    assert rendered.skip_event == runtime_config.SkipEvent.model_validate(by_pos)
    assert "skipEvent" in rendered.to_yaml()
    by_gtid = {"position": {"gtid": "0-1-57"}, "nonce": "n2"}
    rendered = render_worker_config(task(skipEvent=by_gtid), CONNECTORS)
    assert rendered.skip_event is not None
    assert rendered.skip_event.position == runtime_config.SkipGtid(gtid="0-1-57")
    # Unset renders nothing: existing tasks keep their config hash.
    assert "skipEvent" not in render_worker_config(task(), CONNECTORS).to_yaml()


def test_a_new_skip_in_status_is_announced_once() -> None:
    last = {
        "nonce": "n1",
        "position": "binlog.000003:1500",
        "gtid": "0-1-57",
        "table": "shop.orders",
        "events": 1,
    }
    assert skip_announcement({}) is None
    nonce, message = skip_announcement({"lastSkip": last}) or ("", "")
    assert nonce == "n1"
    assert message == (
        "skipped 1 row event of shop.orders at binlog.000003:1500 (GTID 0-1-57) once "
        "(spec.skipEvent nonce n1)"
    )
    assert skip_announcement({"lastSkip": last, "lastSkipNonce": "n1"}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("binlog.000042:1234", {"file": "binlog.000042", "pos": 1234}),
        (" mysql-bin.000001:4 ", {"file": "mysql-bin.000001", "pos": 4}),
    ],
)
def test_position_parses_what_last_errors_shows(text: str, expected: dict[str, Any]) -> None:
    assert positions.parse_event_position(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("binlog.000042", "is not FILE:POS"),
        ("/var/lib/mysql/binlog.000042:77", "is not a binlog file name"),
        ("binlog:77", "is not a binlog file name"),
        ("binlog.000042:3", "starts at 4"),
        ("gtid:0-1-5", "is not FILE:POS"),
    ],
)
def test_bad_position_is_a_usage_error_naming_the_flag(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as refused:
        positions.parse_event_position(text)
    assert "--position" in str(refused.value) and expected in str(refused.value)


def test_gtid_is_one_mariadb_gtid() -> None:
    assert positions.parse_event_gtid("0-1-57") == {"gtid": "0-1-57"}
    assert positions.parse_event_gtid("gtid:0-1-57") == {"gtid": "0-1-57"}
    for bad in ("0-1-5,1-1-9", "3e11fa47-71ca-11e1-9e33-c80aa9429562:5", "x"):
        with pytest.raises(UsageError, match=r"--gtid .* is not one MariaDB GTID"):
            positions.parse_event_gtid(bad)


def test_skip_patches_only_spec_skip_event_and_the_same_nonce_is_a_no_op() -> None:
    spec: dict[str, Any] = {"mode": "cdc"}
    change = lifecycle.skip_event(spec, {"file": "binlog.000003", "pos": 1500}, "n1")
    assert change.patch == {
        "spec": {"skipEvent": {"position": {"file": "binlog.000003", "pos": 1500}, "nonce": "n1"}}
    }
    assert change.message == "skip of binlog.000003:1500 requested (nonce n1)"
    applied = mergepatch.apply({"spec": spec}, change.patch)["spec"]
    again = lifecycle.skip_event(applied, {"file": "binlog.000003", "pos": 1500}, "n1")
    assert again.patch is None and "already set" in again.message
    # From {file, pos} to {gtid}: the old keys are removed, not left beside it.
    to_gtid = lifecycle.skip_event(applied, {"gtid": "0-1-57"}, "n2")
    assert to_gtid.patch is not None
    switched = mergepatch.apply({"spec": applied}, to_gtid.patch)["spec"]
    assert switched["skipEvent"] == {"position": {"gtid": "0-1-57"}, "nonce": "n2"}


def test_the_skip_verb_needs_exactly_one_of_position_and_gtid() -> None:
    parser = kubectl_plugin.build_parser()
    args = parser.parse_args(["skip", "orders", "--position", "binlog.000003:1500", "-n", "x"])
    assert (args.name, args.position, args.gtid, args.namespace) == (
        "orders",
        "binlog.000003:1500",
        None,
        "x",
    )
    for argv in (
        ["skip", "orders"],
        ["skip", "orders", "--position", "b.000001:4", "--gtid", "0-1-1"],
    ):
        with pytest.raises(SystemExit) as usage:
            parser.parse_args(argv)
        assert usage.value.code == 2


def test_status_panel_shows_the_last_skip_only_when_there_is_one() -> None:
    from datetime import UTC, datetime

    from ferry_operator.plugin import formatting

    now = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    task_body: dict[str, Any] = {"metadata": {"name": "orders", "namespace": "shop"}, "status": {}}
    assert "Last skip" not in formatting.status_panel(task_body, now)
    task_body["status"]["lastSkip"] = {
        "nonce": "n1",
        "position": "binlog.000042:1234",
        "table": "shop.orders",
        "events": 1,
        "time": "2026-12-02T10:42:30Z",
    }
    assert (
        "Last skip:    binlog.000042:1234 (1 row event of shop.orders) at "
        "2026-12-02T10:42:30Z, nonce n1"
    ) in formatting.status_panel(task_body, now).splitlines()
