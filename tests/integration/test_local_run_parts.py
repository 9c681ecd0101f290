"""Pure parts of ``ferry run`` (no services; kept here, beside the end-to-end test, because
that is where the local-run tests live): manifests, passwords, display lines and ETAs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from ferry_operator import local_run
from ferry_runtime.status import StatusTracker

CONNECTORS = """
apiVersion: ferry.dev/v1alpha1
kind: Connector
metadata: {name: db}
spec:
  type: mysql
  mysql: {host: db.local, port: 3307, user: ferry,
          passwordSecretRef: {name: db-creds, key: password}}
---
apiVersion: ferry.dev/v1alpha1
kind: Connector
metadata: {name: bus}
spec:
  type: kafka
  kafka: {bootstrapServers: "k1:9092,k2:9092"}
"""
TASK = """
apiVersion: ferry.dev/v1alpha1
kind: SyncTask
metadata: {name: orders, namespace: shop}
spec:
  templateRef: {name: defaults}
  source: {connectorRef: {name: db}, include: ["shop.orders"]}
  sink: {connectorRef: {name: bus}, kafka: {topic: "x.{table}"}}
"""
TEMPLATE = """
apiVersion: ferry.dev/v1alpha1
kind: TaskTemplate
metadata: {name: defaults}
spec:
  template:
    delivery: at-least-once
    performance: {batchSize: 250}
    sink: {kafka: {format: debezium}}
"""


def secret(data: dict[str, str]) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db-creds}}\ndata: {encoded}\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_renders_the_task_with_its_template_and_the_secret(tmp_path: Path) -> None:
    files = [
        write(tmp_path, "c.yaml", CONNECTORS),
        write(tmp_path, "t.yaml", TASK + "---\n" + TEMPLATE),
        write(tmp_path, "s.yaml", secret({"password": "pa:ss w0rd"})),
    ]
    config, env = local_run.render(local_run.load_manifests(files))
    assert (config.task.name, config.task.namespace) == ("orders", "shop")
    assert (config.source.host, config.source.port, config.source.user) == (
        "db.local",
        3307,
        "ferry",
    )
    assert config.include == ["shop.orders"]
    assert config.delivery == "at-least-once"  # from the template
    assert config.performance.batch_size == 250
    assert config.sink.kafka is not None
    assert config.sink.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert (config.sink.kafka.topic, config.sink.kafka.format) == ("x.{table}", "debezium")
    assert config.reporting.kubernetes is None
    assert env == {config.source.password_env: "pa:ss w0rd"}
    assert "pa:ss w0rd" not in config.to_yaml()


def test_password_from_the_environment_when_the_secret_is_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [write(tmp_path, "all.yaml", CONNECTORS + "---\n" + TASK + "---\n" + TEMPLATE)]
    found = local_run.load_manifests(files)
    with pytest.raises(local_run.ManifestError, match="FERRY_SECRET_DB_CREDS_PASSWORD"):
        local_run.render(found)
    monkeypatch.setenv("FERRY_SECRET_DB_CREDS_PASSWORD", "from-env")
    _, env = local_run.render(found)
    assert list(env.values()) == ["from-env"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CONNECTORS, "pass exactly one SyncTask \\(found: none\\)"),
        (CONNECTORS + "---\n" + TASK, "TaskTemplate 'defaults' is not among the manifests"),
        (TASK + "---\n" + TEMPLATE, "Connector 'db' not found"),
        ("kind: [", "not valid YAML"),
        (TASK.replace("include:", "inclde:"), "spec.source.inclde"),
    ],
)
def test_bad_manifests_are_refused_naming_what_is_wrong(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "m.yaml", text)
    with pytest.raises(local_run.ManifestError, match=message):
        local_run.render(local_run.load_manifests([path]))


def test_secret_without_the_key_is_named(tmp_path: Path) -> None:
    text = CONNECTORS + "---\n" + TASK + "---\n" + TEMPLATE + "---\n" + secret({"pw": "x"})
    with pytest.raises(local_run.ManifestError, match="Secret 'db-creds' has no key 'password'"):
        local_run.render(local_run.load_manifests([write(tmp_path, "m.yaml", text)]))


TLS_CONNECTORS = """
apiVersion: ferry.dev/v1alpha1
kind: Connector
metadata: {name: db}
spec:
  type: mysql
  mysql: {host: db.local, user: ferry, passwordSecretRef: {name: db-creds, key: password},
          tls: {mode: verify-identity, caSecretRef: {name: db-ca}}}
---
apiVersion: ferry.dev/v1alpha1
kind: Connector
metadata: {name: bus}
spec:
  type: kafka
  kafka: {bootstrapServers: "k1:9093", securityProtocol: SSL,
          tls: {caSecretRef: {name: bus-ca, key: bundle.pem},
                clientCertSecretRef: {name: bus-client}}}
"""
BUS_CLIENT = """
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {name: bus-client}
stringData: {tls.crt: CLIENT CERT, tls.key: CLIENT KEY}
"""


def test_certificates_from_secrets_are_private_files_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secret manifests (stringData or data) or FERRY_SECRET_* variables: each certificate a
    file of mode 0600 under the given directory, where the rendered config points."""
    bus_ca = secret({"bundle.pem": "BUS CA"}).replace("db-creds", "bus-ca")
    text = "---\n".join(
        [TLS_CONNECTORS, TASK, TEMPLATE, secret({"password": "pw"}), BUS_CLIENT, bus_ca]
    )
    found = local_run.load_manifests([write(tmp_path, "m.yaml", text)])
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir(mode=0o700)
    with pytest.raises(local_run.ManifestError, match="FERRY_SECRET_DB_CA_CA_CRT"):
        local_run.render(found, tls_dir)
    monkeypatch.setenv("FERRY_SECRET_DB_CA_CA_CRT", "DB CA")
    config, _ = local_run.render(found, tls_dir)

    assert config.source.tls is not None and config.sink.kafka is not None
    kafka_tls = config.sink.kafka.tls
    assert kafka_tls is not None
    files = {
        "source CA": config.source.tls.ca_file,
        "sink CA": kafka_tls.ca_file,
        "client certificate": kafka_tls.cert_file,
        "client key": kafka_tls.key_file,
    }
    assert {what: Path(str(path)).read_text() for what, path in files.items()} == {
        "source CA": "DB CA",
        "sink CA": "BUS CA",
        "client certificate": "CLIENT CERT",
        "client key": "CLIENT KEY",
    }
    for path in files.values():
        assert Path(str(path)).is_relative_to(tls_dir)
        assert Path(str(path)).stat().st_mode & 0o777 == 0o600
    assert "CLIENT KEY" not in config.to_yaml()
    with pytest.raises(ValueError, match="tls_dir"):
        local_run.render(found)


def test_rate_meter_eta_uses_the_recent_window() -> None:
    meter = local_run.RateMeter(window=10)
    assert meter.eta("t", 100) is None  # no rate yet
    meter.add("t", 0.0, 0)
    meter.add("t", 5.0, 500)  # 100 rows/s
    assert meter.eta("t", 1000) == 10.0
    meter.add("t", 20.0, 600)  # slowed down: the window now spans 5 s..20 s
    assert meter.rate("t") == pytest.approx(100 / 15)
    assert meter.eta("t", 0) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "--"), (9.6, "10s"), (65, "1m05s"), (3725, "1h02m")]
)
def test_short_duration(seconds: float | None, text: str) -> None:
    assert local_run.short_duration(seconds) == text


def test_lines_show_tables_then_the_state_line() -> None:
    clock = [1_800_000_000.0]
    tracker = StatusTracker(clock=lambda: clock[0])
    tracker.set_state("Snapshotting")
    tracker.plan_table("shop.orders", 1000)
    tracker.plan_table("shop.users", 10)
    tracker.start_table("shop.orders", 1000)
    meter = local_run.RateMeter()
    local_run.render_lines(tracker.view(), meter, 0.0, bars=True)
    tracker.record_snapshot_rows("shop.orders", 250)
    tracker.record_delivered({("shop.orders", "read"): 250}, {"file": "b.7", "pos": 99}, None)
    lines = local_run.render_lines(tracker.view(), meter, 5.0, bars=True)
    assert lines[0] == "shop.orders  [######..................]  25.0%  250/1,000 rows  ETA 15s"
    assert lines[1] == "shop.users   [........................]   0.0%  0/10 rows  waiting"
    assert lines[2].startswith("Snapshotting  lag 0.0s  250 ev/s  position b.7:99  events 250")

    tracker.record_error("ConnectionLost", "lost")
    plain = local_run.render_lines(tracker.view(), meter, 6.0, bars=False)
    assert plain[0].startswith("shop.orders   25.0%")
    assert plain[-1].endswith("errors 1  last: ConnectionLost")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_display_redraws_in_place_on_a_tty_and_prints_changes_otherwise() -> None:
    now = [0.0]
    tracker = StatusTracker()
    tracker.plan_table("a.b", 10)
    tty = local_run.Display(tracker, Terminal(), clock=lambda: now[0])
    tty.draw()
    tty.draw()
    text = tty.out.getvalue()  # type: ignore[attr-defined]
    assert text.count("\x1b[2K") == 4 and text.count("\x1b[2F") == 1  # 2 lines, redrawn once

    plain = local_run.Display(tracker, io.StringIO(), clock=lambda: now[0])
    plain.draw()
    now[0] = 1.0
    plain.draw()  # nothing changed and under 5 s: nothing printed
    now[0] = 6.0
    plain.draw()  # the state line again, the unchanged table line not
    lines = plain.out.getvalue().splitlines()  # type: ignore[attr-defined]
    assert [line.split()[0] for line in lines] == ["a.b", "Starting", "Starting"]
    assert "\x1b" not in plain.out.getvalue()  # type: ignore[attr-defined]
