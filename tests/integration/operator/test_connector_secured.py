"""Connectors probed against the secured listeners (tests/infra/secured.sh), by the operator
running against the real API server: the Ready condition names TLS when the server wants
it, names the CA that cannot verify the server, says AuthenticationFailed for a wrong SCRAM
password without showing it, and is True when the settings are right (SCRAM, PLAIN, mTLS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.integration.operator.conftest import (
    Ferry,
    OperatorProcess,
    kafka_connector,
    mysql_connector,
    wait_until,
)

pytestmark = [pytest.mark.kube, pytest.mark.mysql, pytest.mark.kafka]
WRONG_PASSWORD = "Wr0ng-Scram-Pa55-6e1d"


def _secret(ferry: Ferry, name: str, data: dict[str, str], kind: str = "Opaque") -> None:
    ferry.core.create_namespaced_secret(
        ferry.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), type=kind, string_data=data),
    )


def _ca(ferry: Ferry, name: str, path: str) -> None:
    _secret(ferry, name, {"ca.crt": Path(path).read_text()})


def _settled(ferry: Ferry, name: str, status: str) -> dict[str, Any]:
    return wait_until(
        lambda: (c := ferry.condition("connectors", name)).get("status") == status and c,
        90,
        f"{name} Ready={status}",
    )


def _tls_db(testenv: Any, secured: dict[str, str], tls: dict[str, Any] | None) -> dict[str, Any]:
    connector = mysql_connector("db", testenv, user=secured["FERRY_MYSQL_TLS_USER"])
    if tls is not None:
        connector["spec"]["mysql"]["tls"] = tls
    return connector


def test_tls_only_user_without_tls_is_not_ready_naming_tls(
    ferry: Ferry, testenv: Any, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    ferry.secret("db", testenv.mysql["password"])
    ferry.create("connectors", _tls_db(testenv, secured, None))
    ready = _settled(ferry, "db", "False")
    assert ready["reason"] == "TLSRequired"
    assert "over TLS only" in ready["message"] and "spec.mysql.tls" in ready["message"]


def test_tls_with_the_right_ca_is_ready(
    ferry: Ferry, testenv: Any, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    ferry.secret("db", testenv.mysql["password"])
    _ca(ferry, "db-ca", secured["FERRY_TLS_CA_FILE"])
    tls = {"mode": "verify-identity", "caSecretRef": {"name": "db-ca"}}
    ferry.create("connectors", _tls_db(testenv, secured, tls))
    assert _settled(ferry, "db", "True")["reason"] == "Ready"
    binlog = ferry.condition("connectors", "db", "BinlogReady")
    assert binlog["status"] == "True", binlog


def test_a_wrong_ca_is_named(
    ferry: Ferry, testenv: Any, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    ferry.secret("db", testenv.mysql["password"])
    _ca(ferry, "other-ca", secured["FERRY_TLS_OTHER_CA_FILE"])
    tls = {"mode": "verify-ca", "caSecretRef": {"name": "other-ca"}}
    ferry.create("connectors", _tls_db(testenv, secured, tls))
    ready = _settled(ferry, "db", "False")
    assert ready["reason"] == "TLSVerificationFailed"
    assert "spec.mysql.tls.caSecretRef (Secret 'other-ca' key 'ca.crt')" in ready["message"]


def test_a_missing_ca_secret_is_named(
    ferry: Ferry, testenv: Any, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    ferry.secret("db", testenv.mysql["password"])
    tls = {"mode": "verify-ca", "caSecretRef": {"name": "nowhere"}}
    ferry.create("connectors", _tls_db(testenv, secured, tls))
    ready = _settled(ferry, "db", "False")
    assert ready["reason"] == "SecretNotFound"
    assert "spec.mysql.tls.caSecretRef: Secret 'nowhere'" in ready["message"]


def _sasl_kafka(secured: dict[str, str], mechanism: str) -> dict[str, Any]:
    connector = kafka_connector("kafka", secured["FERRY_KAFKA_SASL_BOOTSTRAP"])
    connector["spec"]["kafka"] |= {
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": mechanism, "secretRef": "kafka-user"},
        "tls": {"caSecretRef": {"name": "kafka-ca"}},
    }
    return connector


def test_scram_with_a_wrong_password_is_authentication_failed_without_the_password(
    ferry: Ferry, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    user = secured["FERRY_KAFKA_SCRAM_USER"]
    _secret(ferry, "kafka-user", {"username": user, "password": WRONG_PASSWORD})
    _ca(ferry, "kafka-ca", secured["FERRY_TLS_CA_FILE"])
    ferry.create("connectors", _sasl_kafka(secured, "SCRAM-SHA-512"))
    ready = _settled(ferry, "kafka", "False")
    assert ready["reason"] == "AuthenticationFailed"
    assert f"user {user!r} (SCRAM-SHA-512)" in ready["message"]
    shown = json.dumps(ferry.get("connectors", "kafka")) + ferry_operator.log()
    shown += json.dumps([e.message for e in ferry.core.list_namespaced_event(ferry.ns).items])
    assert WRONG_PASSWORD not in shown

    # The right password: the Secret changes and the Connector is probed again at once.
    ferry.core.patch_namespaced_secret(
        "kafka-user", ferry.ns, {"stringData": {"password": secured["FERRY_KAFKA_SCRAM_PASSWORD"]}}
    )
    assert _settled(ferry, "kafka", "True")["reason"] == "Ready"


def test_plain_over_sasl_ssl_is_ready(
    ferry: Ferry, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    _secret(
        ferry,
        "kafka-user",
        {
            "username": secured["FERRY_KAFKA_PLAIN_USER"],
            "password": secured["FERRY_KAFKA_PLAIN_PASSWORD"],
        },
    )
    _ca(ferry, "kafka-ca", secured["FERRY_TLS_CA_FILE"])
    ferry.create("connectors", _sasl_kafka(secured, "PLAIN"))
    assert _settled(ferry, "kafka", "True")["reason"] == "Ready"


def _mtls_kafka(secured: dict[str, str], client_cert: bool) -> dict[str, Any]:
    connector = kafka_connector("kafka", secured["FERRY_KAFKA_MTLS_BOOTSTRAP"])
    tls: dict[str, Any] = {"caSecretRef": {"name": "kafka-ca"}}
    if client_cert:
        tls["clientCertSecretRef"] = {"name": "kafka-client"}
    connector["spec"]["kafka"] |= {"securityProtocol": "SSL", "tls": tls}
    return connector


def test_mtls_with_a_client_certificate_is_ready_and_without_one_is_named(
    ferry: Ferry, secured: dict[str, str], ferry_operator: OperatorProcess
) -> None:
    _ca(ferry, "kafka-ca", secured["FERRY_TLS_CA_FILE"])
    cert = Path(secured["FERRY_TLS_CLIENT_CERT_FILE"]).read_text()
    key = Path(secured["FERRY_TLS_CLIENT_KEY_FILE"]).read_text()
    _secret(ferry, "kafka-client", {"tls.crt": cert, "tls.key": key}, "kubernetes.io/tls")
    ferry.create("connectors", _mtls_kafka(secured, client_cert=False))
    ready = _settled(ferry, "kafka", "False")
    assert ready["reason"] == "TLSHandshakeFailed"
    assert "clientCertSecretRef" in ready["message"]
    ferry.patch_spec("connectors", "kafka", _mtls_kafka(secured, client_cert=True)["spec"])
    assert _settled(ferry, "kafka", "True")["reason"] == "Ready"
