"""Smoke test of the secured listeners (tests/infra/secured.sh), with the plain clients: the
TLS-only MariaDB user is refused without TLS and accepted with it (verified against the test
CA, not the other one); Kafka's SASL_SSL listener takes the SCRAM and PLAIN users and refuses
a wrong password; the mTLS listener wants a client certificate."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pymysql
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]


def _mysql(testenv: Any, secured: dict[str, str], **tls: Any) -> Any:
    return pymysql.connect(
        host=testenv.mysql["host"],
        port=testenv.mysql["port"],
        user=secured["FERRY_MYSQL_TLS_USER"],
        password=testenv.mysql["password"],
        connect_timeout=5,
        **tls,
    )


def test_mariadb_tls_user_must_use_tls(testenv: Any, secured: dict[str, str]) -> None:
    with pytest.raises(pymysql.err.OperationalError) as refused:
        _mysql(testenv, secured, ssl_disabled=True)
    assert refused.value.args[0] == 1045
    context = ssl.create_default_context(cafile=secured["FERRY_TLS_CA_FILE"])
    with _mysql(testenv, secured, ssl=context) as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchone()[1]
    wrong = ssl.create_default_context(cafile=secured["FERRY_TLS_OTHER_CA_FILE"])
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        _mysql(testenv, secured, ssl=wrong)


def _kafka(settings: dict[str, Any]) -> Callable[[], Any]:
    settings = {**settings, "log_level": 0}
    return lambda: AdminClient(settings).list_topics(timeout=8)


def test_kafka_sasl_ssl_and_mtls_listeners(secured: dict[str, str]) -> None:
    ca = secured["FERRY_TLS_CA_FILE"]
    sasl = {
        "bootstrap.servers": secured["FERRY_KAFKA_SASL_BOOTSTRAP"],
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
    }
    for mechanism, prefix in (("SCRAM-SHA-512", "SCRAM"), ("PLAIN", "PLAIN")):
        _kafka(
            {
                **sasl,
                "sasl.mechanism": mechanism,
                "sasl.username": secured[f"FERRY_KAFKA_{prefix}_USER"],
                "sasl.password": secured[f"FERRY_KAFKA_{prefix}_PASSWORD"],
            }
        )()
    with pytest.raises(KafkaException):
        _kafka(
            {
                **sasl,
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": secured["FERRY_KAFKA_SCRAM_USER"],
                "sasl.password": "not-the-password",
            }
        )()
    mtls = {
        "bootstrap.servers": secured["FERRY_KAFKA_MTLS_BOOTSTRAP"],
        "security.protocol": "SSL",
        "ssl.ca.location": ca,
    }
    _kafka(
        {
            **mtls,
            "ssl.certificate.location": secured["FERRY_TLS_CLIENT_CERT_FILE"],
            "ssl.key.location": secured["FERRY_TLS_CLIENT_KEY_FILE"],
        }
    )()
    with pytest.raises(KafkaException):
        _kafka(mtls)()
