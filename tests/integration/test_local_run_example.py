"""``ferry run`` on examples/local, as a new user would run it, against the real MariaDB and
Kafka: snapshot, then streaming, /status while it runs, then a clean stop on Ctrl-C.

The example's files are copied with this test's own database, task and topic names (and the
test services' addresses), so runs never share a checkpoint.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.mysql, pytest.mark.kafka]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local"


class Lines:
    """Collects a process's stdout lines from a thread."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s:\n" + self.text())

    def text(self) -> str:
        return "\n".join(self.lines)


def copy_example(tmp_path: Path, database: str, task: str, topic: str, env: Any) -> list[Path]:
    mysql = env.mysql
    replacements = {
        "ferry_demo": database,
        "name: demo": f"name: {task}",
        "ferry-demo.{table}": topic + ".{table}",
        "host: 127.0.0.1": f"host: {mysql['host']}",
        "port: 13306": f"port: {mysql['port']}",
        "127.0.0.1:19092": env.kafka_bootstrap,
        "password: ferry-test-pw": f"password: {mysql['password']}",
    }
    paths = []
    for source in sorted(EXAMPLE.glob("*.yaml")):
        text = source.read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        target = tmp_path / source.name
        target.write_text(text)
        paths.append(target)
    return paths


def seed(mysql_connect: Callable[..., Any], database: str) -> None:
    script = (EXAMPLE / "seed.sql").read_text().replace("ferry_demo", database)
    statements = [s for s in re.sub(r"--[^\n]*", "", script).split(";") if s.strip()]
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def get_status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            values.append(json.loads(message.value()))
    finally:
        consumer.close()
    return values


FerryRun = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def ferry_run(tmp_path: Path) -> Iterator[FerryRun]:
    """``start(paths, **env)``: ``ferry run`` on the files, with ``env`` added."""
    started: list[subprocess.Popen[str]] = []

    def start(paths: list[Path], **env: str) -> subprocess.Popen[str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_SECRET_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "ferry_operator.cli", "run", *map(str, paths)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,  # as a user would, outside the repository
            env={**inherited, **env},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ferry_run_snapshots_streams_and_stops_cleanly(
    tmp_path: Path,
    testenv: Any,
    mysql_connect: Callable[..., Any],
    database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    ferry_run: FerryRun,
) -> None:
    seed(mysql_connect, database)
    task = f"demo-{uuid.uuid4().hex[:8]}"
    paths = copy_example(tmp_path, database, task, topic_prefix, testenv)
    process = ferry_run(paths)
    out = Lines(process.stdout)

    url = out.wait_for(r"\(status: (http://\S+/status)\)", timeout=30).group(1)
    out.wait_for(r"^Streaming ", timeout=180)
    status = get_status(url)
    assert status["state"] == "Streaming"
    assert {t["name"]: (t["rowsDone"], t["state"]) for t in status["progress"]["tables"]} == {
        f"{database}.customers": (20_000, "Done"),
        f"{database}.orders": (50_000, "Done"),
    }
    assert status["progress"]["percent"] == 100.0
    # plain lines (stdout is a pipe): each table reported, no terminal escape codes
    assert re.search(rf"^{database}\.orders +100\.0%  50,000/50,000 rows  done$", out.text(), re.M)
    assert "\x1b" not in out.text()

    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO `{database}`.customers (id, name, email, card_number) "
            "VALUES (900001, 'new one', 'n@example.com', '4111111111111111')"
        )
    deadline = time.monotonic() + 60
    while get_status(url)["counters"]["events"] < 70_001 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert get_status(url)["counters"]["events"] == 70_001

    customers = consume(kafka_bootstrap, f"{topic_prefix}.customers", 20_001)
    assert len(customers) == 20_001
    assert all("card_number" not in c["data"] for c in customers)  # mapping.drop
    inserted = [c for c in customers if c["data"]["id"] == 900001]
    assert [(c["type"], c["data"]["name"]) for c in inserted] == [("insert", "new one")]

    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    out._thread.join(timeout=5)
    assert out.lines[-1] == "ferry run: stopped"
    assert testenv.mysql["password"] not in out.text()


def test_ferry_run_refuses_a_missing_password_naming_the_variable(
    tmp_path: Path,
    testenv: Any,
    ferry_run: FerryRun,
) -> None:
    paths = [p for p in copy_example(tmp_path, "db", "t", "x", testenv) if p.name != "secret.yaml"]
    process = ferry_run(paths)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "FERRY_SECRET_LOCAL_MARIADB_CREDENTIALS_PASSWORD" in stderr


def test_ferry_run_with_a_wrong_password_fails_clearly_without_showing_it(
    tmp_path: Path,
    testenv: Any,
    ferry_run: FerryRun,
) -> None:
    wrong = f"not-the-password-{uuid.uuid4().hex[:6]}"
    paths = copy_example(tmp_path, "db", f"t-{uuid.uuid4().hex[:6]}", "x", testenv)
    secret = tmp_path / "secret.yaml"
    secret.write_text(secret.read_text().replace(testenv.mysql["password"], wrong))
    process = ferry_run(paths)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "ferry run: failed: AuthenticationFailed:" in stderr
    assert wrong not in stdout + stderr


def _secret(name: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    """A Secret manifest as ``kubectl get secret -o yaml`` shows it: base64 ``data``."""
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": type_,
            "data": encoded}  # fmt: skip


def test_ferry_run_takes_certificates_from_secrets_over_tls_and_mtls(
    tmp_path: Path,
    testenv: Any,
    secured: dict[str, str],
    mysql_connect: Callable[..., Any],
    database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    ferry_run: FerryRun,
) -> None:
    """MariaDB over TLS as the REQUIRE SSL user (verify-identity against the CA from a
    Secret) and Kafka over mutual TLS (client certificate from a kubernetes.io/tls Secret):
    the certificates are private files while it runs and gone when it stops."""
    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.t (id int PRIMARY KEY)")
        cur.execute(
            f"INSERT INTO `{database}`.t VALUES " + ",".join(f"({n})" for n in range(1, 21))
        )
    key = Path(secured["FERRY_TLS_CLIENT_KEY_FILE"]).read_text()
    ca_ref = {"name": "test-ca"}
    documents = [
        _secret("test-ca", {"ca.crt": Path(secured["FERRY_TLS_CA_FILE"]).read_text()}),
        _secret(
            "kafka-client",
            {"tls.crt": Path(secured["FERRY_TLS_CLIENT_CERT_FILE"]).read_text(), "tls.key": key},
            "kubernetes.io/tls",
        ),
        _secret("db", {"password": testenv.mysql["password"]}),
        {
            "apiVersion": "ferry.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": "db"},
            "spec": {"type": "mysql", "mysql": {
                "host": testenv.mysql["host"], "port": testenv.mysql["port"],
                "user": secured["FERRY_MYSQL_TLS_USER"],
                "passwordSecretRef": {"name": "db", "key": "password"},
                "tls": {"mode": "verify-identity", "caSecretRef": ca_ref}}},
        },
        {
            "apiVersion": "ferry.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": "bus"},
            "spec": {"type": "kafka", "kafka": {
                "bootstrapServers": secured["FERRY_KAFKA_MTLS_BOOTSTRAP"],
                "securityProtocol": "SSL",
                "tls": {"caSecretRef": ca_ref, "clientCertSecretRef": {"name": "kafka-client"}}}},
        },
        {
            "apiVersion": "ferry.dev/v1alpha1",
            "kind": "SyncTask",
            "metadata": {"name": f"tls-{uuid.uuid4().hex[:8]}"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}, "include": [f"{database}.t"]},
                "sink": {"connectorRef": {"name": "bus"},
                         "kafka": {"topic": f"{topic_prefix}.{{table}}"}},
            },
        },
    ]  # fmt: skip
    manifests = tmp_path / "secured.yaml"
    manifests.write_text(yaml.safe_dump_all(documents))
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = ferry_run([manifests], TMPDIR=str(temp))
    out = Lines(process.stdout)
    url = out.wait_for(r"\(status: (http://\S+/status)\)", timeout=30).group(1)
    out.wait_for(r"^Streaming ", timeout=120)

    # While it runs: one private directory holding the Secrets' keys as 0600 files.
    (tls_dir,) = temp.iterdir()
    assert tls_dir.name.startswith("ferry-run-tls-")
    assert tls_dir.stat().st_mode & 0o777 == 0o700
    files = {str(p.relative_to(tls_dir)): p for p in tls_dir.rglob("*") if p.is_file()}
    assert sorted(files) == ["sink/ca/ca.crt", "sink/client/tls.crt", "sink/client/tls.key",
                             "source/ca/ca.crt"]  # fmt: skip
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files.values())
    assert files["sink/client/tls.key"].read_text() == key

    with mysql_connect(admin=True) as conn, conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{database}`.t VALUES (21)")
    deadline = time.monotonic() + 60
    while get_status(url)["counters"]["events"] < 21 and time.monotonic() < deadline:
        time.sleep(0.5)
    records = consume(kafka_bootstrap, f"{topic_prefix}.t", 21)
    assert sorted(r["data"]["id"] for r in records) == list(range(1, 22))

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    assert list(temp.iterdir()) == []  # the certificates are gone with the run
    out._thread.join(timeout=5)
    assert key.splitlines()[1] not in out.text()
