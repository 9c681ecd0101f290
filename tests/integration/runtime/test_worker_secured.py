"""The worker against the secured listeners of tests/infra (secured.sh): MariaDB over TLS as a
user that must use it (REQUIRE SSL), Kafka over SASL_SSL (SCRAM-SHA-512, PLAIN) and over
mutual TLS. Rows flow exactly once; a wrong CA and a wrong password fail with a reason that
names what to fix, and never show the password."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from tests.integration.runtime.conftest import Pipeline, WorkerThread

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

SASL_USER_ENV, SASL_PASSWORD_ENV = "FERRY_TEST_SASL_USERNAME", "FERRY_TEST_SASL_PASSWORD"


def _tls_source(secured: dict[str, str], ca: str = "FERRY_TLS_CA_FILE") -> dict[str, Any]:
    return {
        "user": secured["FERRY_MYSQL_TLS_USER"],
        "tls": {"mode": "verify-identity", "caFile": secured[ca]},
    }


def _sasl_sink(
    pipeline: Pipeline, secured: dict[str, str], mechanism: str, monkeypatch: Any, password: str
) -> dict[str, Any]:
    prefix = "SCRAM" if mechanism.startswith("SCRAM") else "PLAIN"
    monkeypatch.setenv(SASL_USER_ENV, secured[f"FERRY_KAFKA_{prefix}_USER"])
    monkeypatch.setenv(SASL_PASSWORD_ENV, password)
    base = pipeline.config()["sink"]["kafka"]
    return {
        "kafka": {
            **base,
            "bootstrapServers": secured["FERRY_KAFKA_SASL_BOOTSTRAP"],
            "securityProtocol": "SASL_SSL",
            "saslMechanism": mechanism,
            "saslUsernameEnv": SASL_USER_ENV,
            "saslPasswordEnv": SASL_PASSWORD_ENV,
            "tls": {"caFile": secured["FERRY_TLS_CA_FILE"]},
        }
    }


def _mtls_sink(pipeline: Pipeline, secured: dict[str, str]) -> dict[str, Any]:
    base = pipeline.config()["sink"]["kafka"]
    return {
        "kafka": {
            **base,
            "bootstrapServers": secured["FERRY_KAFKA_MTLS_BOOTSTRAP"],
            "securityProtocol": "SSL",
            "tls": {
                "caFile": secured["FERRY_TLS_CA_FILE"],
                "certFile": secured["FERRY_TLS_CLIENT_CERT_FILE"],
                "keyFile": secured["FERRY_TLS_CLIENT_KEY_FILE"],
            },
        }
    }


def _exactly_once(pipeline: Pipeline, **overrides: Any) -> None:
    """Snapshot 50 rows, stream 50 more, stop the worker mid-way and start another: every
    row is in the topic once (transactions with the checkpoint, over the secured listener)."""
    sql = pipeline.sql
    sql(f"CREATE TABLE {pipeline.db}.t (id int PRIMARY KEY, v varchar(20))")
    sql(f"INSERT INTO {pipeline.db}.t VALUES " + ",".join(f"({n}, 's{n}')" for n in range(1, 51)))
    first = pipeline.run(**overrides)
    pipeline.wait_streaming(first)
    for n in range(51, 76):
        sql(f"INSERT INTO {pipeline.db}.t VALUES ({n}, 'c{n}')")
    pipeline.wait_until(lambda: first.tracker.events >= 75, 60, "75 rows delivered")
    assert first.stop() == 0
    second = pipeline.run(**overrides)
    pipeline.wait_streaming(second)
    for n in range(76, 101):
        sql(f"INSERT INTO {pipeline.db}.t VALUES ({n}, 'c{n}')")
    # The counters carry on from the checkpoint: the second worker starts at 75.
    pipeline.wait_until(lambda: second.tracker.events >= 100, 60, "the last 25 rows delivered")
    assert second.stop() == 0
    records = pipeline.records("t")
    assert Counter(v["data"]["id"] for _, v in records) == {n: 1 for n in range(1, 101)}


def test_tls_source_rows_flow(pipeline: Pipeline, secured: dict[str, str]) -> None:
    """ferry_tls is REQUIRE SSL: the snapshot, the binlog and the position lookups all had
    to use TLS, or the server would have refused them."""
    _exactly_once(pipeline, source=_tls_source(secured))


def test_tls_source_with_a_wrong_ca_fails_naming_the_ca(
    pipeline: Pipeline, secured: dict[str, str]
) -> None:
    worker = pipeline.run(source=_tls_source(secured, ca="FERRY_TLS_OTHER_CA_FILE"))
    assert worker.join(60) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "TLSVerificationFailed"
    assert f"the CA in {secured['FERRY_TLS_OTHER_CA_FILE']}" in failure.message
    assert "caSecretRef" in failure.message


def test_a_tls_only_user_without_tls_is_refused(
    pipeline: Pipeline, secured: dict[str, str]
) -> None:
    worker = pipeline.run(source={"user": secured["FERRY_MYSQL_TLS_USER"]})
    assert worker.join(60) == 1
    assert worker.worker.failure is not None
    assert worker.worker.failure.reason == "AuthenticationFailed"


def test_scram_sink_delivers_exactly_once(
    pipeline: Pipeline, secured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = secured["FERRY_KAFKA_SCRAM_PASSWORD"]
    sink = _sasl_sink(pipeline, secured, "SCRAM-SHA-512", monkeypatch, password)
    _exactly_once(pipeline, sink=sink, source=_tls_source(secured))


def test_plain_sink_delivers_exactly_once(
    pipeline: Pipeline, secured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = secured["FERRY_KAFKA_PLAIN_PASSWORD"]
    _exactly_once(pipeline, sink=_sasl_sink(pipeline, secured, "PLAIN", monkeypatch, password))


def test_mtls_sink_delivers_exactly_once(pipeline: Pipeline, secured: dict[str, str]) -> None:
    _exactly_once(pipeline, sink=_mtls_sink(pipeline, secured))


def test_mtls_sink_without_a_client_certificate_fails(
    pipeline: Pipeline, secured: dict[str, str]
) -> None:
    sink = _mtls_sink(pipeline, secured)
    sink["kafka"]["tls"] = {"caFile": secured["FERRY_TLS_CA_FILE"]}
    worker = pipeline.run(sink=sink, restartPolicy={"maxRetries": 0})
    assert worker.join(90) == 1
    assert worker.worker.failure is not None
    assert worker.worker.failure.reason in {"TLSHandshakeFailed", "TooManyRestarts"}


def test_scram_with_a_wrong_password_fails_without_showing_it(
    pipeline: Pipeline, secured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wr0ng-Pa55word-8f3a"
    worker: WorkerThread = pipeline.run(
        sink=_sasl_sink(pipeline, secured, "SCRAM-SHA-512", monkeypatch, wrong)
    )
    assert worker.join(90) == 1
    failure = worker.worker.failure
    assert failure is not None and failure.reason == "AuthenticationFailed"
    assert "SCRAM-SHA-512" in failure.message and "secretRef" in failure.message
    shown = json.dumps(worker.tracker.view()) + failure.message
    assert wrong not in shown


@pytest.mark.parametrize(
    "mode, ca, outcome",
    [
        ("verify-identity", "FERRY_TLS_CA_FILE", "TLS"),
        ("verify-ca", "FERRY_TLS_CA_FILE", "TLS"),
        ("required", None, "TLS"),
        ("verify-ca", "FERRY_TLS_OTHER_CA_FILE", "TLSVerificationFailed"),
        ("verify-identity", "FERRY_TLS_OTHER_CA_FILE", "TLSVerificationFailed"),
        ("disabled", None, "AuthenticationFailed"),  # the user is REQUIRE SSL
    ],
)
def test_the_snapshot_reader_connection_keeps_the_tls_mode(
    pipeline: Pipeline, secured: dict[str, str], mode: str, ca: str | None, outcome: str
) -> None:
    """The snapshot's row readers use another driver (mysqlclient) than the rest of the
    worker: the same TLS mode must mean the same there, and a CA that did not sign the
    server's certificate must be refused, not ignored."""
    from ferry_runtime import config, errors
    from ferry_runtime.source import mysql

    tls = {"mode": mode, **({"caFile": secured[ca]} if ca else {})}
    source = {**pipeline.config()["source"], "user": secured["FERRY_MYSQL_TLS_USER"], "tls": tls}
    settings = config.parse({**pipeline.config(), "source": source}).source
    try:
        conn = mysql.connect_reader(settings)
    except errors.WorkerError as error:
        assert error.reason == outcome, error.message
        assert secured.get("FERRY_MYSQL_PASSWORD", "\0") not in error.message
        return
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            cipher = cursor.fetchall()[0][1]
    finally:
        conn.close()
    assert outcome == "TLS" and cipher, f"{mode}: connected, cipher {cipher!r}"
