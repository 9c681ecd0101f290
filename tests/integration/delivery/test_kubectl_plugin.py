"""kubectl ferry against the real API server: each verb patches exactly the spec fields it
should, a second identical call writes nothing (the generation stays), errors are clear and
exit codes are stable (0 ok, 1 error, 2 usage, 3 not found)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.delivery.conftest import GROUP, PLURAL, VERSION, Ran, task_spec

from ferry_operator.api.connector import Connector
from ferry_operator.api.synctask import SyncTask
from ferry_operator.render import objects, worker_config
from ferry_operator.render.meta import Owner

pytestmark = pytest.mark.kube

Ferry = Callable[..., Ran]
MakeTask = Callable[..., dict[str, Any]]
GetTask = Callable[[str], dict[str, Any]]


def assert_only_spec_changed(
    before: dict[str, Any], after: dict[str, Any], spec: dict[str, Any]
) -> None:
    assert after["spec"] == spec
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["metadata"].get("labels") == before["metadata"].get("labels")
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")


def test_pause_then_pause_again_writes_once(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    before = make_task("orders")
    ran = ferry("pause", "orders")
    assert ran.code == 0, ran
    assert ran.out.strip() == "synctask.ferry.dev/orders paused"
    after = get_task("orders")
    assert_only_spec_changed(before, after, {**before["spec"], "paused": True})

    again = ferry("pause", "orders")
    assert again.code == 0 and "already paused" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]


def test_pause_with_resume_at_then_resume(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    before = make_task("orders")
    ran = ferry("pause", "orders", "--resume-at", "2099-01-01T00:00:00Z")
    assert ran.code == 0, ran
    paused = get_task("orders")
    assert_only_spec_changed(
        before, paused, {**before["spec"], "paused": True, "resumeAt": "2099-01-01T00:00:00Z"}
    )
    assert ferry("pause", "orders", "--resume-at", "2099-01-01T00:00:00Z").out.count(
        "already paused"
    )

    resumed = ferry("resume", "orders")
    assert resumed.code == 0 and resumed.out.strip() == "synctask.ferry.dev/orders resumed"
    after = get_task("orders")
    assert_only_spec_changed(paused, after, {**before["spec"], "paused": False})
    again = ferry("resume", "orders")
    assert again.code == 0 and "already running" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]


def test_restart_sets_a_new_nonce_each_time_and_a_given_one_once(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    before = make_task("orders")
    assert ferry("restart", "orders").code == 0
    first = get_task("orders")
    nonce = first["spec"]["restartNonce"]
    assert_only_spec_changed(before, first, {**before["spec"], "restartNonce": nonce})
    assert ferry("restart", "orders").code == 0
    second = get_task("orders")
    assert second["spec"]["restartNonce"] != nonce

    assert ferry("restart", "orders", "--nonce", "deploy-42").code == 0
    third = get_task("orders")
    again = ferry("restart", "orders", "--nonce", "deploy-42")
    assert again.code == 0 and "nothing to do" in again.out
    assert get_task("orders")["metadata"]["generation"] == third["metadata"]["generation"]


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("binlog.000042:1234", {"file": "binlog.000042", "pos": 1234}),
        ("gtid:0-1-100", {"gtid": "0-1-100"}),
        ("2026-01-31T17:00:00Z", {"timestamp": "2026-01-31T17:00:00Z"}),
        ("earliest", {"at": "earliest"}),
        ("latest", {"at": "latest"}),
    ],
)
def test_reset_position_to_each_kind(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask, to: str, expected: dict[str, Any]
) -> None:
    before = make_task(
        "orders", resetPosition={"to": {"file": "binlog.000001", "pos": 4}, "nonce": "old"}
    )
    ran = ferry("reset-position", "orders", "--to", to, "--nonce", "n1")
    assert ran.code == 0, ran
    after = get_task("orders")
    assert_only_spec_changed(
        before, after, {**before["spec"], "resetPosition": {"to": expected, "nonce": "n1"}}
    )
    again = ferry("reset-position", "orders", "--to", to, "--nonce", "n1")
    assert again.code == 0 and "nothing to do" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]


def test_bad_input_is_a_usage_error_naming_the_flag(ferry: Ferry, make_task: MakeTask) -> None:
    make_task("orders")
    bad_position = ferry("reset-position", "orders", "--to", "binlog.000042")
    assert bad_position.code == 2 and "--to 'binlog.000042' is not a position" in bad_position.err
    past = ferry("pause", "orders", "--resume-at", "2001-01-01T00:00:00Z")
    assert past.code == 2 and "in the past" in past.err
    assert ferry("frobnicate", "orders").code == 2
    assert ferry("rollback", "orders", "--to-revision", "abc").code == 2


def test_missing_task_exits_3_with_a_clear_message(
    ferry: Ferry, ferry_crds: None, namespace: str
) -> None:
    for verb in (
        ["status", "ghost"],
        ["pause", "ghost"],
        ["history", "ghost"],
        ["progress", "ghost"],
    ):
        ran = ferry(*verb)
        assert ran.code == 3, ran
        assert ran.err.strip() == f"error: SyncTask 'ghost' not found in namespace '{namespace}'"


def test_unreachable_api_server_is_an_error(ferry_crds: None, tmp_path: Any, capsys: Any) -> None:
    from ferry_operator import kubectl_plugin

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    code = kubectl_plugin.main(["status", "x", "--kubeconfig", str(kubeconfig)])
    assert code == 1
    assert "cannot reach the API server" in capsys.readouterr().err


def test_list_status_stats_and_output_formats(
    ferry: Ferry, make_task: MakeTask, namespace: str
) -> None:
    make_task(
        "orders",
        status={
            "phase": "Running",
            "lag": {"seconds": 3},
            "position": {"file": "binlog.000042", "pos": 1234},
            "progress": {"percent": 100.0, "rowsDone": 5, "rowsTotal": 5},
            "counters": {"events": 7, "errors": 0, "restarts": 0},
        },
    )
    make_task("customers", status={"phase": "Paused"}, paused=True)
    listed = ferry("list")
    assert listed.code == 0, listed
    rows = [line.split() for line in listed.out.splitlines()]
    assert rows[0] == ["NAME", "READY", "PHASE", "REASON", "LAG", "PROGRESS", "POSITION", "AGE"]
    assert [r[:7] for r in rows[1:]] == [
        ["customers", "-", "Paused", "-", "-", "-", "-"],
        ["orders", "-", "Running", "-", "3s", "100%", "binlog.000042:1234"],
    ]
    only = ferry("list", "--phase", "Paused")
    assert [line.split()[0] for line in only.out.splitlines()[1:]] == ["customers"]
    none = ferry("list", "--phase", "Failed")
    assert (
        none.code == 0
        and none.out.strip() == f"No SyncTasks in phase Failed in namespace '{namespace}'."
    )

    as_json = json.loads(ferry("list", "-o", "json").out)
    assert [t["metadata"]["name"] for t in as_json["items"]] == ["customers", "orders"]
    as_yaml = yaml.safe_load(ferry("status", "orders", "-o", "yaml").out)
    assert as_yaml["status"]["position"] == {"file": "binlog.000042", "pos": 1234}
    panel = ferry("status", "orders").out
    assert "Position:     binlog.000042:1234" in panel and "events 7, errors 0" in panel

    stats = json.loads(ferry("stats", "-o", "json").out)
    assert (
        stats["total"] == 2 and stats["phases"]["Running"] == 1 and stats["phases"]["Paused"] == 1
    )


def test_progress_by_table(ferry: Ferry, make_task: MakeTask) -> None:
    make_task(
        "big",
        status={
            "phase": "Snapshotting",
            "progress": {
                "percent": 40.0,
                "rowsDone": 400,
                "rowsTotal": 1000,
                # What the worker writes: an RFC 3339 end time; the CLI shows it from now.
                "eta": (datetime.now(UTC) + timedelta(minutes=2, seconds=30)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "tables": [
                    {"name": "shop.orders", "rowsDone": 400, "rowsTotal": 1000, "state": "Running"}
                ],
            },
            "heartbeatTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    ran = ferry("progress", "big", "--by-table")
    assert ran.code == 0, ran
    assert re.search(r"40\.0%  rows 400/1000  ETA 2m[23]\ds  \(updated \d+s ago\)", ran.out), ran
    assert "shop.orders" in ran.out


CONNECTORS = {
    "shop-db": Connector.model_validate(
        {
            "metadata": {"name": "shop-db"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": "mariadb.shop",
                    "user": "ferry",
                    "passwordSecretRef": {"name": "shop-db", "key": "password"},
                },
            },
        }
    ),
    "kafka": Connector.model_validate(
        {
            "metadata": {"name": "kafka"},
            "spec": {"type": "kafka", "kafka": {"bootstrapServers": "k:9092"}},
        }
    ),
}


def _revision(
    task: dict[str, Any], number: int, spec: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The revision ConfigMap the operator's renderer makes for ``spec``, and its stored spec."""
    meta = task["metadata"]
    model = SyncTask.model_validate({"metadata": {**meta}, "spec": spec})
    owner = Owner(meta["name"], meta["namespace"], meta["uid"])
    effective = worker_config.effective_spec(model, None)
    config = worker_config.render_worker_config(model, CONNECTORS, None)
    stored = worker_config.stored_spec(effective)
    digest = worker_config.config_hash(config)
    return objects.revision_configmap(
        owner, number, config, stored, digest, f"change {number}"
    ), stored


def test_history_diff_rollback(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask, kube_api: Any, namespace: str
) -> None:
    task = make_task("orders", mode="snapshot+cdc", paused=True)
    core = client.CoreV1Api(kube_api)
    first, old_spec = _revision(task, 1, task_spec(mode="cdc", performance={"batchSize": 100}))
    second, _ = _revision(task, 2, task["spec"])
    core.create_namespaced_config_map(namespace, first)
    core.create_namespaced_config_map(namespace, second)
    client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "orders", {"status": {"configRevision": "orders-r2"}}
    )

    history = ferry("history", "orders")
    assert history.code == 0, history
    rows = [line.split() for line in history.out.splitlines()]
    assert rows[0] == ["REVISION", "AGE", "HASH", "CHANGE-CAUSE"]
    assert rows[1][0] == "1" and rows[2][:2] == ["2", "*"]
    assert rows[1][-2:] == ["change", "1"]
    assert rows[2][3] == second["metadata"]["annotations"]["ferry.dev/config-hash"][:12]

    diff = ferry("diff", "orders", "1")
    assert diff.code == 0, diff
    assert "-mode: cdc" in diff.out and "+mode: snapshot+cdc" in diff.out
    assert "-  batchSize: 100" in diff.out
    assert ferry("diff", "orders", "2", "2").out.strip() == "revisions 2 and 2 are identical"
    missing = ferry("diff", "orders", "9")
    assert (
        missing.code == 3
        and "revision 9 of SyncTask 'orders' not found (revisions: 1, 2)" in missing.err
    )

    before = get_task("orders")
    ran = ferry("rollback", "orders", "--to-revision", "1")
    assert ran.code == 0 and "rolled back to revision 1" in ran.out, ran
    after = get_task("orders")
    # The configuration comes back; paused is a lifecycle action and stays as it is.
    assert_only_spec_changed(before, after, {**old_spec, "paused": True})
    again = ferry("rollback", "orders", "--to-revision", "1")
    assert again.code == 0 and "nothing to do" in again.out
    assert get_task("orders")["metadata"]["generation"] == after["metadata"]["generation"]
    assert ferry("rollback", "orders", "--to-revision", "7").code == 3


def test_context_and_all_namespaces(
    make_task: MakeTask, namespace: str, testenv: Any, tmp_path: Any, capsys: Any
) -> None:
    from ferry_operator import kubectl_plugin

    make_task("orders", status={"phase": "Running"})
    # A kubeconfig whose current context is unreachable; --context picks the working one,
    # whose namespace is the default for -n.
    config = yaml.safe_load(Path(testenv.kubeconfig).read_text())
    good = config["contexts"][0]
    config["clusters"].append({"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}})
    config["contexts"] = [
        {"name": "good", "context": {**good["context"], "namespace": namespace}},
        {"name": "dead", "context": {"cluster": "dead", "user": good["context"]["user"]}},
    ]
    config["current-context"] = "dead"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))

    assert kubectl_plugin.main(["status", "orders", "--kubeconfig", str(path)]) == 1
    capsys.readouterr()
    assert (
        kubectl_plugin.main(["--kubeconfig", str(path), "--context", "good", "status", "orders"])
        == 0
    )
    assert f"SyncTask:     {namespace}/orders" in capsys.readouterr().out
    assert kubectl_plugin.main(["list", "-A", "--kubeconfig", str(path), "--context", "good"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0][:2] == ["NAMESPACE", "NAME"] and [namespace, "orders", "-", "Running"] in [
        r[:4] for r in rows
    ]
    assert kubectl_plugin.main(["status", "x", "--kubeconfig", str(path), "--context", "nope"]) == 1
    assert "cannot load the kubeconfig" in capsys.readouterr().err


def test_patching_a_gitops_managed_task_warns_on_stderr(
    ferry: Ferry, make_task: MakeTask, objects: Any, namespace: str, get_task: GetTask
) -> None:
    make_task("orders")
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "orders",
        {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "shop-sync"}}},
    )
    ran = ferry("pause", "orders")
    assert ran.code == 0 and get_task("orders")["spec"]["paused"] is True
    assert "managed by Flux; commit spec.paused to Git as well" in ran.err
    assert ferry("pause", "orders").err == ""  # nothing patched, nothing to warn about


def test_clear_finalizers_lists_then_releases_only_stuck_tasks(
    ferry: Ferry, objects: client.CustomObjectsApi, namespace: str, make_task: MakeTask
) -> None:
    # No operator runs here: a task deleted while it carries the finalizer stays, as it does
    # when the operator was uninstalled first.
    make_task("alive")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncTask",
        "metadata": {"name": "gone", "finalizers": ["ferry.dev/finalizer"]},
        "spec": task_spec(),
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    held = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    assert held["metadata"]["deletionTimestamp"]

    young = ferry("clear-finalizers")  # default --older-than 5m: too recent to be stuck
    assert young.code == 0 and "No SyncTask has been held" in young.out
    dry = ferry("clear-finalizers", "--older-than", "0s")
    assert dry.code == 0, dry
    assert f"{namespace}/gone: deleted " in dry.out and "Dry run." in dry.out
    assert f"{namespace}/alive" not in dry.out
    assert objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")

    done = ferry("clear-finalizers", "--older-than", "0s", "--yes")
    assert done.code == 0, done
    assert f"synctask.ferry.dev/gone -n {namespace}: finalizer removed" in done.out
    with pytest.raises(client.ApiException) as missing:
        objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    assert missing.value.status == 404
    assert objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "alive")
    assert ferry("clear-finalizers", "--older-than", "soon").code == 2
