"""The worker config model: defaults, round trip, and errors that name the field."""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry_runtime import config


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task": {"name": "orders", "namespace": "shop"},
        "source": {"host": "db", "user": "repl", "passwordEnv": "SOURCE_PASSWORD", "serverId": 7},
        "sink": {"kafka": {"bootstrapServers": "kafka:9092"}},
    }
    data.update(overrides)
    return data


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(config.ConfigError) as raised:
        config.parse(data)
    return str(raised.value)


def test_defaults_are_sane() -> None:
    worker = config.parse(minimal())
    assert worker.mode == "snapshot+cdc"
    assert worker.delivery == "exactly-once"
    assert worker.include == ["*.*"]
    assert worker.performance.max_batch_delay == timedelta(milliseconds=500)
    assert worker.sink.kafka is not None and worker.sink.kafka.topic == "ferry.{database}.{table}"
    assert worker.task.id == "shop.orders"


def test_yaml_round_trip_is_exact() -> None:
    worker = config.parse(
        minimal(
            startPosition={"file": "binlog.000003", "pos": 1234},
            resetPosition={"to": {"timestamp": "2026-01-02T03:04:05Z"}, "nonce": "n1"},
            performance={"maxBatchDelay": "250ms", "batchSize": 10},
            restartPolicy={"maxBackoff": "2m"},
        )
    )
    assert config.parse(yaml.safe_load(worker.to_yaml())) == worker
    assert "maxBatchDelay: 250ms" in worker.to_yaml()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"bogus": 1}, "bogus: unknown field"),
        (
            {"source": {"host": "db", "user": "u", "passwordEnv": "P", "serverId": 0}},
            "source.serverId",
        ),
        ({"sink": {}}, "exactly one of sink.kafka and sink.mysql"),
        ({"include": []}, "include"),
        ({"include": ["nodot"]}, "include.0"),
        ({"performance": {"batchSize": -1}}, "performance.batchSize"),
        ({"performance": {"snapshotParallelism": 0}}, "performance.snapshotParallelism"),
        ({"performance": {"maxBatchDelay": "soon"}}, "not a duration"),
        ({"startPosition": {"file": "binlog.000001"}}, "startPosition.file.pos"),
        ({"startPosition": "middle"}, "startPosition"),
        ({"errorPolicy": {"mode": "deadLetter"}}, "deadLetterTopic is required"),
        ({"sink": {"kafka": {"bootstrapServers": "k", "topic": "x.{schema}"}}}, "placeholder"),
        ({"delivery": "maybe-once"}, "delivery"),
        (
            {"snapshotRequest": {"tables": ["a.b"], "nonce": "n", "where": "1; DROP TABLE a.b"}},
            "snapshotRequest.where",
        ),
        (
            {"snapshotRequest": {"tables": ["a.b"], "nonce": "n", "where": "x" * 1001}},
            "snapshotRequest.where",
        ),
    ],
)
def test_errors_name_the_field(overrides: dict[str, Any], expected: str) -> None:
    assert expected in error_of(minimal(**overrides))


def test_table_selection_and_mapping() -> None:
    worker = config.parse(
        minimal(
            include=["shop.order_*", "shop.customer"],
            exclude=["*.order_tmp?"],
            mapping=[{"table": "shop.order_*", "columns": {"amt": "amount"}, "drop": ["secret"]}],
        )
    )
    assert worker.selects("shop", "order_items")
    assert worker.selects("shop", "customer")
    assert not worker.selects("shop", "order_tmp1")
    assert not worker.selects("other", "customer")
    mapping = worker.mapping_for("shop", "order_items")
    assert mapping is not None and mapping.columns == {"amt": "amount"}
    assert worker.mapping_for("shop", "customer") is None


def test_restart_backoff_grows_and_is_capped() -> None:
    policy = config.RestartPolicy(backoff="1s", multiplier=3, max_backoff="20s")
    assert [policy.ceiling(n).total_seconds() for n in (1, 2, 3, 4, 500)] == [1, 3, 9, 20, 20]


def test_restart_backoff_has_full_jitter() -> None:
    policy = config.RestartPolicy(backoff="1s", multiplier=3, max_backoff="20s")
    assert policy.delay(3, lambda: 0.0).total_seconds() == 0
    assert policy.delay(3, lambda: 0.5).total_seconds() == 4.5
    waits = {policy.delay(4).total_seconds() for _ in range(200)}
    assert len(waits) > 150 and all(0 <= w < 20 for w in waits)
    assert min(waits) < 5 and max(waits) > 15  # spread over the whole range


def test_restart_policy_defaults_unlimited_retries_reset_after_ten_minutes() -> None:
    policy = config.RestartPolicy()
    assert policy.max_retries is None
    assert policy.reset_after.total_seconds() == 600


def test_tls_files_are_paths_and_a_missing_one_is_invalid_config(tmp_path: Path) -> None:
    from ferry_runtime import errors, tls

    files = config.TLSFiles(mode="verify-ca", caFile=str(tmp_path / "nowhere.crt"))
    with pytest.raises(errors.FatalError) as refused:
        tls.pymysql_args(files)
    assert refused.value.reason == "InvalidConfig"
    assert "tls.caFile" in refused.value.message
    assert tls.pymysql_args(None) == {"ssl_disabled": True}
    assert tls.pymysql_args(config.TLSFiles(mode="preferred")) == {}
    context = tls.pymysql_args(config.TLSFiles(mode="required"))["ssl"]
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    with pytest.raises(ValueError, match="certFile and keyFile go together"):
        config.TLSFiles(certFile="/a")
