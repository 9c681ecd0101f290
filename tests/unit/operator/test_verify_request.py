"""spec.verifyRequest on the operator's side, without servers: the rendered worker config, the
refusal of repair with a Kafka sink, the Event per nonce, and ``kubectl ferry verify``'s patch
and summary."""

from __future__ import annotations

from typing import Any

import pytest

from ferry_operator import kubectl_plugin
from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.plugin import formatting, lifecycle
from ferry_operator.reconcile.synctask.announce import verify_announcement
from ferry_operator.render.worker_config import InvalidSpec, render_worker_config

CONNECTORS = {
    name: Connector.model_validate({"metadata": {"name": name, "namespace": "shop"}, "spec": spec})
    for name, spec in {
        "db": {
            "type": "mysql",
            "mysql": {"host": "db", "user": "u", "passwordSecretRef": {"name": "s", "key": "p"}},
        },
        "events": {"type": "kafka", "kafka": {"bootstrapServers": "kafka:9092"}},
    }.items()
}


def task(sink: dict[str, Any], **spec: Any) -> SyncTask:
    return SyncTask.model_validate(
        {
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"},
            "spec": {"source": {"connectorRef": {"name": "db"}}, "sink": sink, **spec},
        }
    )


KAFKA = {"connectorRef": {"name": "events"}, "kafka": {}}
MYSQL = {"connectorRef": {"name": "db"}, "mysql": {"database": "copy"}}


def test_verify_request_reaches_the_worker_config() -> None:
    request = {"tables": ["shop.*"], "repair": True, "chunkSize": 500, "nonce": "v1"}
    rendered = render_worker_config(task(MYSQL, verifyRequest=request), CONNECTORS)
    assert rendered.verify_request is not None
    assert rendered.verify_request.model_dump(by_alias=True) == request
    plain = render_worker_config(task(KAFKA, verifyRequest={"nonce": "v2"}), CONNECTORS)
    assert plain.verify_request is not None
    assert (plain.verify_request.tables, plain.verify_request.repair) == (["*.*"], False)
    assert "verifyRequest" not in render_worker_config(task(KAFKA), CONNECTORS).to_yaml()


def test_repair_with_a_kafka_sink_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidSpec, match=r"verifyRequest\.repair: only a MySQL sink"):
        render_worker_config(task(KAFKA, verifyRequest={"nonce": "v", "repair": True}), CONNECTORS)


def _found(**fields: Any) -> dict[str, Any]:
    base = {"nonce": "v1", "state": "Completed", "tables": ["shop.a", "shop.b"], "chunks": 7}
    return {"verification": {**base, **fields}}


def test_one_event_per_finished_verification() -> None:
    assert verify_announcement({}) is None
    assert verify_announcement({"verification": {"nonce": "v1", "state": "Running"}}) is None
    nonce, (kind, reason, message) = verify_announcement(_found(mismatchedRows=0)) or (
        "",
        ("",) * 3,
    )
    assert (nonce, kind, reason) == ("v1", "Normal", "Verified")
    assert "2 table(s) in 7 chunk(s)" in message and "0 mismatched" in message
    drift = _found(mismatchedRows=2, sampleKeys=[{"table": "shop.a", "key": "[7]"}], repairedRows=2)
    _, (kind, reason, message) = verify_announcement(drift) or ("", ("",) * 3)
    assert (kind, reason) == ("Warning", "DriftFound")
    assert "2 mismatched" in message and "2 repaired" in message and "shop.a [7]" in message
    failed = {"verification": {"nonce": "v3", "state": "Failed", "message": "sink down"}}
    _, (kind, reason, message) = verify_announcement(failed) or ("", ("",) * 3)
    assert (kind, reason) == ("Warning", "VerificationFailed") and "sink down" in message
    assert verify_announcement({**_found(), "lastVerifyNonce": "v1"}) is None


def test_verify_patches_the_whole_request_and_the_same_nonce_is_a_no_op() -> None:
    change = lifecycle.verify_request({}, "v1", ["shop.a"], repair=True)
    assert change.patch == {
        "spec": {"verifyRequest": {"nonce": "v1", "tables": ["shop.a"], "repair": True}}
    }
    # A new plain request drops the old repair and tables (no merge).
    again = lifecycle.verify_request({"verifyRequest": change.patch["spec"]["verifyRequest"]}, "v2")  # type: ignore[index]
    assert again.patch == {"spec": {"verifyRequest": {"nonce": "v2"}}}
    same = lifecycle.verify_request({"verifyRequest": {"nonce": "v2"}}, "v2")
    assert same.patch is None and "nothing to do" in same.message


def test_the_cli_parses_verify() -> None:
    args = kubectl_plugin.build_parser().parse_args(
        ["verify", "orders", "--table", "shop.a", "--table", "shop.b*", "--repair", "--wait"]
    )
    assert (args.name, args.table, args.repair, args.wait, args.timeout) == (
        "orders", ["shop.a", "shop.b*"], True, True, 600.0,
    )  # fmt: skip


def test_status_shows_the_verification() -> None:
    lines = formatting.verification_lines(
        _found(
            mismatchedRows=1,
            rows=90,
            time="2026-12-02T10:00:00Z",
            sampleKeys=[{"table": "shop.a", "key": "[7]"}],
        )["verification"]
    )
    assert lines[0].startswith("Verification: 1 mismatched row(s) in 2 table(s), 90 row(s)")
    assert lines[1] == "  mismatch: shop.a [7]"
    running = {"nonce": "v", "state": "Running", "startTime": "T"}
    assert formatting.verification_lines(running) == ["Verification: running since T, nonce v"]
    assert formatting.verification_lines(None) == []
