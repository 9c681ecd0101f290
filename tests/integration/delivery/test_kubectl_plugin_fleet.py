"""kubectl ferry at fleet scale, against the real API server: pause/resume/restart over names,
label selectors and --all with a summary table and an exit code that says whether any task
failed; status --watch; progress --table; logs without a pod; create from a TaskTemplate and
template-from, their manifests accepted by the API server as kubectl sends them."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.integration.delivery.conftest import GROUP, PLURAL, VERSION, Ran, task_spec
from tests.support import wait_until

pytestmark = pytest.mark.kube

Ferry = Callable[..., Ran]
MakeTask = Callable[..., dict[str, Any]]
GetTask = Callable[[str], dict[str, Any]]
TEMPLATES = "tasktemplates"


def relabel(objects: client.CustomObjectsApi, namespace: str, name: str, **labels: str) -> None:
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"labels": labels}}
    )


def rows(out: str) -> list[list[str]]:
    """The summary table's rows (after the header, before the count line)."""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["TASK", "NAMESPACE", "RESULT", "MESSAGE"], out
    return [line.split(None, 3) for line in lines[1:-1]]


def test_pause_by_selector_pauses_only_the_matching_tasks(
    ferry: Ferry,
    make_task: MakeTask,
    get_task: GetTask,
    objects: client.CustomObjectsApi,
    namespace: str,
) -> None:
    make_task("orders")
    make_task("invoices", paused=True)
    make_task("payroll")
    relabel(objects, namespace, "payroll", team="hr")
    before = {name: get_task(name) for name in ("orders", "invoices", "payroll")}

    ran = ferry("pause", "-l", "team=shop")
    assert ran.code == 0, ran
    assert rows(ran.out) == [
        ["invoices", namespace, "unchanged", "already paused"],
        ["orders", namespace, "changed", "paused"],
    ]
    assert ran.out.strip().splitlines()[-1] == "2 tasks: 1 changed, 1 unchanged, 0 failed"
    after = {name: get_task(name) for name in before}
    assert after["orders"]["spec"]["paused"] is True
    assert (
        after["orders"]["metadata"]["generation"] == before["orders"]["metadata"]["generation"] + 1
    )
    # One write per task that needed one: the paused task and the other team's are untouched.
    for name in ("invoices", "payroll"):
        assert after[name]["metadata"]["generation"] == before[name]["metadata"]["generation"]
    assert "paused" not in after["payroll"]["spec"]

    as_json = json.loads(ferry("resume", "-l", "team=shop", "-o", "json").out)
    assert [(r["name"], r["result"], r["patch"]) for r in as_json["results"]] == [
        ("invoices", "changed", {"spec": {"paused": False}}),
        ("orders", "changed", {"spec": {"paused": False}}),
    ]
    assert as_json["summary"] == "2 tasks: 2 changed, 0 unchanged, 0 failed"

    none = ferry("pause", "-l", "team=nobody")
    assert none.code == 0 and none.out.strip() == (
        f"No SyncTasks match -l team=nobody in namespace '{namespace}'."
    )


def test_bulk_with_a_missing_name_does_the_others_and_exits_1(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask, namespace: str
) -> None:
    make_task("orders", paused=True)
    make_task("invoices", paused=True)
    ran = ferry("resume", "orders", "ghost", "invoices")
    assert ran.code == 1, ran
    assert rows(ran.out) == [
        ["orders", namespace, "changed", "resumed"],
        ["ghost", namespace, "failed", "not found"],
        ["invoices", namespace, "changed", "resumed"],
    ]
    assert ran.out.strip().splitlines()[-1] == "3 tasks: 2 changed, 0 unchanged, 1 failed"
    assert get_task("orders")["spec"]["paused"] is False
    assert get_task("invoices")["spec"]["paused"] is False


def test_a_refused_patch_fails_that_task_only(
    ferry: Ferry,
    make_task: MakeTask,
    get_task: GetTask,
    objects: client.CustomObjectsApi,
    kube_api: Any,
    namespace: str,
) -> None:
    """An admission policy of the cluster refuses changes to a frozen task: that task fails
    with the API server's message, the others are done, the exit code is 1."""
    admission = client.AdmissionregistrationV1Api(kube_api)
    policy = f"ferry-frozen-{uuid.uuid4().hex[:8]}"
    admission.create_validating_admission_policy({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [GROUP], "apiVersions": [VERSION], "resources": [PLURAL],
                "operations": ["UPDATE"],
            }]},
            "validations": [{
                "expression": "!has(object.metadata.labels) || "
                              "!('frozen' in object.metadata.labels)",
                "message": "this SyncTask is frozen",
            }],
        },
    })  # fmt: skip
    try:
        admission.create_validating_admission_policy_binding({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {
                "policyName": policy,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": namespace}}},
            },
        })  # fmt: skip
        make_task("orders")
        frozen = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": "frozen", "labels": {"team": "shop", "frozen": "yes"}},
            "spec": task_spec(),
        }
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, frozen)

        def refused() -> bool:
            try:
                objects.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, "frozen", {"spec": {"paused": True}},
                    dry_run="All",
                )  # fmt: skip
            except client.ApiException:
                return True
            return False

        wait_until(refused, 30, "the admission policy to take effect")
        ran = ferry("pause", "-l", "team=shop")
        assert ran.code == 1, ran
        table = rows(ran.out)
        assert table[0][:3] == ["frozen", namespace, "failed"]
        assert "this SyncTask is frozen" in table[0][3]
        assert table[1] == ["orders", namespace, "changed", "paused"]
        assert get_task("orders")["spec"]["paused"] is True
        assert "paused" not in get_task("frozen")["spec"]
    finally:
        admission.delete_validating_admission_policy_binding(policy)
        admission.delete_validating_admission_policy(policy)


def test_restart_all_gives_every_task_the_same_nonce_once(
    ferry: Ferry, make_task: MakeTask, get_task: GetTask
) -> None:
    make_task("orders")
    make_task("invoices")
    ran = ferry("restart", "--all", "--nonce", "deploy-7")
    assert ran.code == 0, ran
    assert [r[2] for r in rows(ran.out)] == ["changed", "changed"]
    assert {get_task(n)["spec"]["restartNonce"] for n in ("orders", "invoices")} == {"deploy-7"}
    again = ferry("restart", "--all", "--nonce", "deploy-7")
    assert again.code == 0 and [r[2] for r in rows(again.out)] == ["unchanged", "unchanged"]


def test_all_namespaces_with_a_selector(
    ferry: Ferry,
    make_task: MakeTask,
    get_task: GetTask,
    objects: client.CustomObjectsApi,
    kube_api: Any,
    namespace: str,
) -> None:
    # A selector unique to this test: -A must not touch anybody else's tasks.
    mark = f"fleet-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube_api)
    other = f"{namespace[:40]}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        make_task("orders")
        relabel(objects, namespace, "orders", mark=mark)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": "orders", "labels": {"mark": mark}},
            "spec": task_spec(),
        }
        objects.create_namespaced_custom_object(GROUP, VERSION, other, PLURAL, body)
        ran = ferry("pause", "-A", "-l", f"mark={mark}")
        assert ran.code == 0, ran
        assert sorted(r[1] for r in rows(ran.out)) == sorted([namespace, other])
        paused = objects.get_namespaced_custom_object(GROUP, VERSION, other, PLURAL, "orders")
        assert paused["spec"]["paused"] is True and get_task("orders")["spec"]["paused"] is True
    finally:
        core.delete_namespace(other, propagation_policy="Background")


def test_bulk_usage_errors(ferry: Ferry, make_task: MakeTask) -> None:
    make_task("orders")
    for argv, message in (
        (("pause",), "name a SyncTask, or select several"),
        (("pause", "orders", "--all"), "NAME and --all do not go together"),
        (("resume", "orders", "-A"), "-A goes with -l or --all"),
    ):
        ran = ferry(*argv)
        assert ran.code == 2 and message in ran.err, ran
    # One name keeps the one-task output and exit code.
    single = ferry("pause", "ghost")
    assert single.code == 3 and "SyncTask 'ghost' not found" in single.err


def test_status_watch_prints_again_on_each_change(
    ferry: Ferry, make_task: MakeTask, objects: client.CustomObjectsApi, namespace: str
) -> None:
    make_task("orders", status={"phase": "Starting"})

    def change() -> None:
        time.sleep(1.5)
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "orders", {"status": {"phase": "Running"}}
        )
        time.sleep(1.0)
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "orders", {"spec": {"paused": True}}
        )

    changer = threading.Thread(target=change)
    changer.start()
    started = time.monotonic()
    ran = ferry("status", "orders", "--watch", "--watch-timeout", "5")
    took = time.monotonic() - started
    changer.join()
    assert ran.code == 0, ran
    phases = [line.split()[1] for line in ran.out.splitlines() if line.startswith("Phase:")]
    assert phases == ["Starting", "Running", "Running"], ran.out
    generations = [line for line in ran.out.splitlines() if line.startswith("Generation:")]
    assert generations[-1].startswith("Generation:   2"), ran.out
    assert 4.5 <= took < 15, took

    # The task's deletion ends the watch.
    def delete() -> None:
        time.sleep(1.0)
        objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "orders")

    deleter = threading.Thread(target=delete)
    deleter.start()
    gone = ferry("status", "orders", "-w", "--watch-timeout", "30")
    deleter.join()
    assert gone.code == 0 and gone.out.strip().endswith("synctask.ferry.dev/orders was deleted")


def test_progress_of_one_table(ferry: Ferry, make_task: MakeTask) -> None:
    tables = [
        {"name": "shop.orders", "rowsDone": 1000, "rowsTotal": 1000, "state": "Done"},
        {"name": "shop.customers", "rowsDone": 250, "rowsTotal": 1000, "state": "Running"},
    ]
    make_task(
        "big", status={"phase": "Snapshotting", "progress": {"percent": 62.5, "tables": tables}}
    )
    ran = ferry("progress", "big", "--table", "shop.customers")
    assert ran.code == 0, ran
    assert ran.out.startswith("shop.customers  Running  █████░") and "rows 250/1000" in ran.out
    assert len(ran.out.strip().splitlines()) == 1
    as_json = json.loads(ferry("progress", "big", "--table", "customers", "-o", "json").out)
    assert as_json["progress"] == tables[1]
    missing = ferry("progress", "big", "--table", "shop.refunds")
    assert missing.code == 3 and "tables: shop.orders, shop.customers" in missing.err
    both = ferry("progress", "big", "--table", "shop.orders", "--by-table")
    assert both.code == 2


def test_logs_without_a_worker_pod_says_why(
    ferry: Ferry, make_task: MakeTask, namespace: str
) -> None:
    # No operator runs here: no Deployment and no pod.
    make_task("orders", status={"phase": "Pending"})
    ran = ferry("logs", "orders")
    assert ran.code == 1
    assert ran.err.strip() == (
        "error: SyncTask 'orders' has no worker pod (phase Pending); "
        "see `kubectl ferry status orders`"
    )
    make_task("invoices", paused=True)
    paused = ferry("logs", "invoices", "--since", "5m")
    assert paused.code == 1 and "it is paused (its worker is scaled to 0)" in paused.err
    assert ferry("logs", "orders", "--since", "soon").code == 2
    assert ferry("logs", "ghost").code == 3


def kubectl(testenv: Any, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(testenv.kubectl)
    assert binary, f"kubectl not found ({testenv.kubectl})"
    return subprocess.run(
        [binary, "--kubeconfig", testenv.kubeconfig, *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def make_template(objects: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskTemplate",
        "metadata": {"name": "shop-defaults"},
        "spec": {
            "template": {
                "source": {"connectorRef": {"name": "shop-db"}, "exclude": ["*.tmp_*"]},
                "sink": {"connectorRef": {"name": "kafka"}, "kafka": {"format": "debezium"}},
                "performance": {"batchSize": 2000},
            }
        },
    }
    template: dict[str, Any] = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, TEMPLATES, body
    )
    return template


def test_create_from_a_template(
    ferry: Ferry,
    objects: client.CustomObjectsApi,
    get_task: GetTask,
    namespace: str,
    testenv: Any,
    ferry_crds: None,
) -> None:
    make_template(objects, namespace)
    dry = ferry(
        "create", "refunds", "--template", "shop-defaults", "--include", "shop.refunds,shop.fees",
        "--label", "team=shop", "--dry-run", "-o", "yaml",
    )  # fmt: skip
    assert dry.code == 0, dry
    manifest = yaml.safe_load(dry.out)
    assert manifest["spec"] == {
        "templateRef": {"name": "shop-defaults"},
        "source": {"include": ["shop.refunds", "shop.fees"]},
    }
    assert manifest["metadata"] == {
        "name": "refunds",
        "namespace": namespace,
        "labels": {"team": "shop"},
    }
    applied = kubectl(testenv, "apply", "--dry-run=server", "-f", "-", stdin=dry.out)
    assert applied.returncode == 0, applied
    assert "synctask.ferry.dev/refunds created (server dry run)" in applied.stdout
    server = ferry("create", "refunds", "--template", "shop-defaults", "--include", "shop.x",
                   "--dry-run=server")  # fmt: skip
    assert server.code == 0 and "(server dry run)" in server.out, server
    with pytest.raises(client.ApiException):
        get_task("refunds")  # neither dry run stored anything

    made = ferry("create", "refunds", "--template", "shop-defaults", "--include", "shop.refunds")
    assert made.code == 0 and made.out.strip() == "synctask.ferry.dev/refunds created", made
    assert get_task("refunds")["spec"] == {
        "templateRef": {"name": "shop-defaults"},
        "source": {"include": ["shop.refunds"]},
    }
    exists = ferry("create", "refunds", "--template", "shop-defaults", "--include", "shop.a")
    assert exists.code == 1 and "already exists" in exists.err

    no_tables = ferry("create", "fees", "--template", "shop-defaults")
    assert no_tables.code == 2
    assert "--include is required: TaskTemplate 'shop-defaults' sets no source.include" in (
        no_tables.err
    )
    no_template = ferry("create", "fees", "--template", "nope", "--include", "shop.fees")
    assert no_template.code == 3
    assert f"TaskTemplate 'nope' not found in namespace '{namespace}'" in no_template.err
    # What only the API server checks (the glob's shape) comes back with its message.
    bad_glob = ferry("create", "fees", "--template", "shop-defaults", "--include", "fees")
    assert bad_glob.code == 1 and "spec.source.include[0]" in bad_glob.err, bad_glob


def test_template_from_a_task_applies_and_makes_the_same_task_again(
    ferry: Ferry,
    make_task: MakeTask,
    objects: client.CustomObjectsApi,
    get_task: GetTask,
    namespace: str,
    testenv: Any,
) -> None:
    make_template(objects, namespace)
    make_task(
        "orders",
        templateRef={"name": "shop-defaults"},
        source={"include": ["shop.orders"], "serverId": 4242},
        sink={"kafka": {"topic": "ferry.{database}.{table}"}},
        paused=True,
        restartNonce="n1",
        startPosition={"at": "latest"},
        performance={"batchSize": 500, "maxBatchDelay": "1s"},
    )
    relabel(objects, namespace, "orders", **{"kustomize.toolkit.fluxcd.io/name": "shop"})
    ran = ferry("template-from", "orders", "--name", "orders-defaults")
    assert ran.code == 0, ran
    manifest = yaml.safe_load(ran.out)
    assert manifest == {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "TaskTemplate",
        "metadata": {"name": "orders-defaults", "namespace": namespace},
        "spec": {
            "template": {
                "source": {"connectorRef": {"name": "shop-db"}, "exclude": ["*.tmp_*"]},
                "sink": {
                    "connectorRef": {"name": "kafka"},
                    "kafka": {"format": "debezium", "topic": "ferry.{database}.{table}"},
                },
                "performance": {"batchSize": 500, "maxBatchDelay": "1s"},
                "mode": "cdc",
            }
        },
    }
    applied = kubectl(testenv, "apply", "-f", "-", stdin=ran.out)
    assert applied.returncode == 0, applied
    stored = objects.get_namespaced_custom_object(
        GROUP, VERSION, namespace, TEMPLATES, "orders-defaults"
    )
    assert stored["spec"] == manifest["spec"] and not stored["metadata"].get("labels")

    # A task made from it with the same tables has the same effective configuration.
    made = ferry("create", "orders-2", "--template", "orders-defaults", "--include", "shop.orders")
    assert made.code == 0, made
    as_json = json.loads(ferry("template-from", "orders-2", "-o", "json").out)
    assert as_json["spec"] == manifest["spec"]
    assert ferry("template-from", "ghost").code == 3
