"""``kubectl ferry skip`` against the real API server: it patches exactly spec.skipEvent, a
second call with the same nonce writes nothing, bad input is a usage error naming the flag,
and the API server itself refuses a bad skipEvent naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.integration.delivery.conftest import GROUP, PLURAL, VERSION, Ran, task_spec

pytestmark = pytest.mark.kube

Ferry = Callable[..., Ran]
MakeTask = Callable[..., dict[str, Any]]
GetTask = Callable[[str], dict[str, Any]]


def test_skip_sets_spec_skip_event_once_per_nonce(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    before = make_task("orders")
    ran = ferry("skip", "orders", "--position", "binlog.000003:1500", "--nonce", "n1")
    assert ran.code == 0, ran
    assert ran.out.strip() == (
        "synctask.ferry.dev/orders skip of binlog.000003:1500 requested (nonce n1)"
    )
    after = get_task("orders")
    expected = {"position": {"file": "binlog.000003", "pos": 1500}, "nonce": "n1"}
    assert after["spec"] == {**before["spec"], "skipEvent": expected}
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1

    again = ferry("skip", "orders", "--position", "binlog.000003:1500", "--nonce", "n1")
    assert again.code == 0 and "nothing to do" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]

    # Without --nonce each call makes a new one; --gtid replaces {file, pos} whole.
    by_gtid = ferry("skip", "orders", "--gtid", "0-1-57")
    assert by_gtid.code == 0, by_gtid
    skip_event = get_task("orders")["spec"]["skipEvent"]
    assert skip_event["position"] == {"gtid": "0-1-57"}
    assert skip_event["nonce"] not in ("", "n1")


def test_bad_skip_input_is_a_usage_error_naming_the_flag(ferry: Ferry, make_task: MakeTask) -> None:
    make_task("orders")
    bad = ferry("skip", "orders", "--position", "binlog.000003")
    assert bad.code == 2 and "--position 'binlog.000003' is not FILE:POS" in bad.err
    bad_gtid = ferry("skip", "orders", "--gtid", "0-1-5,1-1-6")
    assert bad_gtid.code == 2 and "is not one MariaDB GTID" in bad_gtid.err
    assert ferry("skip", "orders").code == 2  # one of --position and --gtid is required


@pytest.mark.parametrize(
    ("skip_event", "expected"),
    [
        (
            {"position": {"file": "binlog.000003", "pos": 9, "gtid": "0-1-5"}, "nonce": "a"},
            "spec.skipEvent.position is exactly one of {file, pos} or {gtid}",
        ),
        ({"position": {"file": "binlog.000003"}, "nonce": "a"}, "file and pos go together"),
        (
            {"position": {"file": "/var/lib/mysql/binlog.000003", "pos": 9}, "nonce": "a"},
            "spec.skipEvent.position.file must be a binlog file name",
        ),
        (
            {"position": {"gtid": "0-1-5,1-1-6"}, "nonce": "a"},
            "spec.skipEvent.position.gtid must be one MariaDB GTID",
        ),
        (
            {"position": {"file": "binlog.000003", "pos": 2}, "nonce": "a"},
            "spec.skipEvent.position.pos",
        ),
        ({"position": {"gtid": "0-1-5"}}, "spec.skipEvent.nonce: Required value"),
        ({"position": {"timestamp": "2026-01-01T00:00:00Z"}, "nonce": "a"}, "timestamp"),
    ],
)
def test_the_api_server_refuses_a_bad_skip_event_naming_the_field(
    ferry_crds: None,
    objects: client.CustomObjectsApi,
    namespace: str,
    skip_event: dict[str, Any],
    expected: str,
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncTask",
        "metadata": {"name": "orders"},
        "spec": task_spec(skipEvent=skip_event),
    }
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, field_validation="Strict"
        )
    assert refused.value.status in (400, 422)
    message = json.loads(refused.value.body)["message"]
    assert expected in message, message


def test_snapshot_sets_spec_snapshot_request_once_per_nonce_and_cancel_replaces_it(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    """``kubectl ferry snapshot`` (in this file: the other nonce verb beside ``skip``)."""
    before = make_task("orders")
    ran = ferry("snapshot", "orders", "--table", "shop.orders", "--table", "shop.items_*",
                "--nonce", "s1")  # fmt: skip
    assert ran.code == 0, ran
    assert ran.out.strip() == (
        "synctask.ferry.dev/orders re-snapshot of shop.orders, shop.items_* requested (nonce s1)"
    )
    after = get_task("orders")
    request = {"tables": ["shop.orders", "shop.items_*"], "cancel": False, "nonce": "s1"}
    assert after["spec"] == {**before["spec"], "snapshotRequest": request}
    again = ferry("snapshot", "orders", "--table", "shop.orders", "--table", "shop.items_*",
                  "--nonce", "s1")  # fmt: skip
    assert again.code == 0 and "nothing to do" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]

    cancel = ferry("snapshot", "orders", "--table", "shop.orders", "--cancel")
    assert cancel.code == 0 and "cancel of the re-read of shop.orders" in cancel.out, cancel
    cancelled = get_task("orders")["spec"]["snapshotRequest"]
    assert cancelled["tables"] == ["shop.orders"] and cancelled["cancel"] is True
    assert cancelled["nonce"] not in ("", "s1")
    assert ferry("snapshot", "orders").code == 2  # --table is required
    not_a_table = ferry("snapshot", "orders", "--table", "orders")
    assert not_a_table.code != 0 and "snapshotRequest.tables" in not_a_table.err, not_a_table


def test_snapshot_where_sets_the_condition_and_the_api_server_refuses_a_semicolon(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    make_task("orders")
    where = "created_at > '2026-01-01'"
    ran = ferry("snapshot", "orders", "--table", "shop.orders", "--where", where, "--nonce", "w1")
    assert ran.code == 0, ran
    request = get_task("orders")["spec"]["snapshotRequest"]
    assert request == {"tables": ["shop.orders"], "cancel": False, "nonce": "w1", "where": where}
    refused = ferry("snapshot", "orders", "--table", "shop.orders", "--where", "1; DROP TABLE x")
    assert refused.code != 0 and "snapshotRequest.where" in refused.err, refused
    assert get_task("orders")["spec"]["snapshotRequest"]["nonce"] == "w1"
