"""The Helm chart against the real API server: it lints, its manifests (default and full
values) pass ``kubectl apply --dry-run=server``, it installs, its values schema refuses bad
values, and its RBAC holds exactly what the operator needs, checked by the API server's own
authorizer (``kubectl auth can-i`` as the chart's ServiceAccount)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ferry_operator import owned

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "ferry"
OPERATOR_SOURCE = REPO / "operator" / "ferry_operator"
# prometheus-operator's CRDs (ServiceMonitor, PrometheusRule), from its Go module.
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

FULL_VALUES: dict[str, Any] = {
    "replicaCount": 2,
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "workers": {
            "podMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "service": {"enabled": True},
        },
        "prometheusRule": {"enabled": True, "notReadyFor": "15m", "errorRate": 0.1},
    },
    "dashboard": {"enabled": True},
    "extraArgs": ["--verbose"],
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "podLabels": {"team": "data"},
    "podAnnotations": {"example.com/owner": "data"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ferry", "effect": "NoSchedule"}
    ],
    "priorityClassName": "",
    "serviceAccount": {"annotations": {"example.com/role": "ferry"}},
    "imagePullSecrets": [{"name": "registry"}],
}

# (API group, resource, verb) the operator needs wherever it serves SyncTasks, and why.
NAMESPACED_NEEDS = {
    *{
        ("ferry.dev", r, v)
        for r in ("synctasks", "connectors", "tasktemplates")
        for v in ("get", "list", "watch", "patch")
    },
    *{
        ("ferry.dev", f"{r}/status", v)
        for r in ("synctasks", "connectors", "tasktemplates")
        for v in ("get", "patch")
    },
    *{("", "configmaps", v) for v in ("get", "list", "watch", "create", "patch", "delete")},
    *{
        (g, r, v)
        for g, r in (
            ("", "serviceaccounts"),
            ("apps", "deployments"),
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "rolebindings"),
        )
        for v in ("get", "list", "watch", "create", "patch")
    },
    *{("", "secrets", v) for v in ("get", "list", "watch")},
    *{("", "pods", v) for v in ("list", "watch")},
    ("apps", "deployments/scale", "patch"),
    *{(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")},
}
# kopf observes CRDs and namespaces at run time, even when given fixed namespaces.
CLUSTER_NEEDS = {
    *{("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")},
    *{("", "namespaces", v) for v in ("list", "watch")},
}
PEERING_NEEDS = {("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")}
# Things the operator must not be able to do.
FORBIDDEN = [
    ("create", "secrets", ""),
    ("patch", "secrets", ""),
    ("delete", "synctasks", "ferry.dev"),
    ("update", "synctasks", "ferry.dev"),
    ("create", "pods", ""),
    ("create", "pods/exec", ""),
    ("delete", "deployments", "apps"),
    ("escalate", "roles", "rbac.authorization.k8s.io"),
    ("bind", "roles", "rbac.authorization.k8s.io"),
    ("create", "clusterroles", "rbac.authorization.k8s.io"),
]
KOPF_HANDLER = re.compile(
    r"@kopf\.(?:on\.\w+|timer|daemon|index)\(\s*(GROUP|\"[^\"]*\")\s*,\s*(?:VERSION|\"[^\"]*\")\s*,\s*\"([a-z]+)\""
)
CLIENT_CALL = re.compile(
    r"\.(read|list|create|patch|replace|delete)_namespaced_([a-z_]+?)(_status)?\b"
)
CLIENT_RESOURCE = {
    "config_map": ("", "configmaps"),
    "secret": ("", "secrets"),
    "pod": ("", "pods"),
    "service_account": ("", "serviceaccounts"),
    "event": ("", "events"),
    "deployment": ("apps", "deployments"),
    "deployment_scale": ("apps", "deployments/scale"),
    "role": ("rbac.authorization.k8s.io", "roles"),
    "role_binding": ("rbac.authorization.k8s.io", "rolebindings"),
}
CLIENT_VERB = {
    "read": "get",
    "list": "list",
    "create": "create",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
}


def operator_calls() -> set[tuple[str, str, str]]:
    """What the operator's code asks of the API server: its typed client calls and the
    kinds its applier server-side-applies (the kubectl plugin runs as the user: left out)."""
    # The owned kinds and pods are listed and watched by owned_store.py, a loop over their
    # table (owned.WATCHED): no decorator for the source scan below to find.
    needs = {
        (group, plural, verb) for group, _, plural in owned.WATCHED for verb in ("list", "watch")
    }
    for path in OPERATOR_SOURCE.rglob("*.py"):
        if "plugin" in path.parts or path.name == "kubectl_plugin.py":
            continue
        text = path.read_text()
        for verb, resource, status in CLIENT_CALL.findall(text):
            if resource == "custom_object":
                continue  # the Ferry resources: NAMESPACED_NEEDS lists them
            assert resource in CLIENT_RESOURCE, (
                f"{path.name} calls *_namespaced_{resource}: add it to the chart's RBAC"
            )
            group, plural = CLIENT_RESOURCE[resource]
            needs.add((group, plural + ("/status" if status else ""), CLIENT_VERB[verb]))
        for group, plural in KOPF_HANDLER.findall(text):
            # kopf lists and watches what it handles; it patches only Ferry's own resources
            # (finalizer, progress annotations), never others (on.event handlers store nothing).
            group = "ferry.dev" if group == "GROUP" else group.strip('"')
            needs |= {(group, plural, "list"), (group, plural, "watch")}
            if group == "ferry.dev":
                needs.add((group, plural, "patch"))
            if path.name == "applier.py":
                # Server-side apply creates what does not exist yet: patch needs create.
                needs |= {
                    (g, r, "create") for g, r, v in needs.copy() if v == "patch" and "/" not in r
                }
    return needs


def rule_triples(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def helm(testenv: Any) -> str:
    """helm, built once from the Go module proxy by tests/infra/build-helm."""
    result = subprocess.run(
        [str(REPO / "tests/infra/build-helm")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, f"tests/infra/build-helm failed:\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def kube_env(testenv: Any) -> dict[str, str]:
    kubectl_dir = str(Path(testenv.kubectl).parent) if os.sep in testenv.kubectl else ""
    path = os.pathsep.join(p for p in (kubectl_dir, os.environ.get("PATH", "")) if p)
    return {**os.environ, "KUBECONFIG": testenv.kubeconfig, "PATH": path}


def run(
    args: list[str], env: dict[str, str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def chart_crds(ferry_crds: None, kube_env: dict[str, str], testenv: Any) -> None:
    """The kopf peering CRDs and prometheus-operator's ServiceMonitor/PrometheusRule CRDs."""
    kubectl = testenv.kubectl
    run(
        [
            kubectl,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(CHART / "crds" / "kopf.dev_peerings.yaml"),
        ],
        kube_env,
    )
    download = run(
        ["go", "mod", "download", "-json", PROMETHEUS_OPERATOR], {**kube_env, "GOFLAGS": "-mod=mod"}
    )
    crd_dir = Path(json.loads(download.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    for name in ("servicemonitors", "podmonitors", "prometheusrules"):
        run(
            [
                kubectl,
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(crd_dir / f"monitoring.coreos.com_{name}.yaml"),
            ],
            kube_env,
        )
    for crd in (
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        run(
            [kubectl, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}"],
            kube_env,
        )


@pytest.fixture
def extra_namespaces(kube_api: Any) -> Iterator[list[str]]:
    """Two more namespaces, for watchNamespaces."""
    core = client.CoreV1Api(kube_api)
    names = [f"t-watch-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield names
    for name in names:
        core.delete_namespace(name, propagation_policy="Background")


def template(
    helm: str,
    env: dict[str, str],
    namespace: str,
    release: str,
    values: dict[str, Any] | None = None,
) -> str:
    args = [
        helm,
        "template",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"peering.name={release}",
    ]
    if values is not None:
        args += ["-f", "-"]
    return run(args, env, stdin=yaml.safe_dump(values) if values is not None else None).stdout


def release_name() -> str:
    return f"rel-{uuid.uuid4().hex[:6]}"  # without "ferry": objects are named <release>-ferry


# ---------------------------------------------------------------- tests


def test_helm_lint_with_default_and_full_values(
    helm: str, kube_env: dict[str, str], tmp_path: Path
) -> None:
    full = tmp_path / "full.yaml"
    full.write_text(yaml.safe_dump({**FULL_VALUES, "watchNamespaces": ["shop", "billing"]}))
    result = run([helm, "lint", "--strict", str(CHART)], kube_env)
    assert "0 chart(s) failed" in result.stdout
    result = run([helm, "lint", "--strict", str(CHART), "-f", str(full)], kube_env)
    assert "0 chart(s) failed" in result.stdout


def test_default_values_pass_server_side_dry_run(
    helm: str, kube_env: dict[str, str], chart_crds: None, namespace: str, testenv: Any
) -> None:
    manifests = template(helm, kube_env, namespace, release_name())
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(manifests) if d)
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",  # the operator's log level and format (mounted, re-read live)
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    result = run(
        [testenv.kubectl, "apply", "--dry-run=server", "-f", "-"], kube_env, stdin=manifests
    )
    assert result.stdout.count("(server dry run)") == len(kinds), result.stdout


def test_full_values_pass_server_side_dry_run(
    helm: str,
    kube_env: dict[str, str],
    chart_crds: None,
    namespace: str,
    extra_namespaces: list[str],
    testenv: Any,
) -> None:
    values = {**FULL_VALUES, "watchNamespaces": extra_namespaces}
    manifests = template(helm, kube_env, namespace, release_name(), values)
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "PodMonitor",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
        + ["KopfPeering", "Role", "RoleBinding", "Service"] * 2  # a worker Service each
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [
        f"--namespace={n}" for n in extra_namespaces
    ]
    assert "--all-namespaces" not in args
    result = run(
        [testenv.kubectl, "apply", "--dry-run=server", "-f", "-"], kube_env, stdin=manifests
    )
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout


def test_service_monitor_keeps_the_tasks_namespace_label(
    helm: str, kube_env: dict[str, str], chart_crds: None, namespace: str, testenv: Any
) -> None:
    # honorLabels: the series' own `namespace` (the task's) wins over the target's (the
    # operator's); the API server's dry run keeps the field, so prometheus-operator's CRD
    # knows it (an unknown field would be pruned).
    manifests = template(helm, kube_env, namespace, release_name(), FULL_VALUES)
    monitor = next(d for d in yaml.safe_load_all(manifests) if d and d["kind"] == "ServiceMonitor")
    result = run(
        [testenv.kubectl, "apply", "--dry-run=server", "-o", "json", "-f", "-"],
        kube_env,
        stdin=yaml.safe_dump(monitor),
    )
    stored = json.loads(result.stdout)
    assert stored["spec"]["endpoints"][0]["honorLabels"] is True
    assert stored["spec"]["endpoints"][0]["path"] == "/metrics"


def test_worker_pod_monitor_passes_the_dry_run_and_selects_the_workers(
    helm: str, kube_env: dict[str, str], chart_crds: None, namespace: str, testenv: Any
) -> None:
    # The PodMonitor (every namespace) and the worker Service (the release's namespace),
    # through the API server's dry run with prometheus-operator's CRD: the fields it keeps
    # are the ones prometheus-operator reads (an unknown field would be pruned).
    values = {
        "metrics": {"workers": {"podMonitor": {"enabled": True}, "service": {"enabled": True}}}
    }
    manifests = template(helm, kube_env, namespace, release_name(), values)
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    monitor = next(d for d in docs if d["kind"] == "PodMonitor")
    (service,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-workers")
    ]
    result = run(
        [testenv.kubectl, "apply", "--dry-run=server", "-o", "json", "-f", "-"],
        kube_env,
        stdin=yaml.safe_dump_all([monitor, service]),
    )
    stored = {item["kind"]: item for item in json.loads(result.stdout)["items"]}
    spec = stored["PodMonitor"]["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    # The labels the operator gives worker pods (render/objects.py, render/meta.py).
    worker_labels = {
        "app.kubernetes.io/managed-by": "ferry",
        "app.kubernetes.io/component": "worker",
    }
    assert spec["selector"]["matchLabels"] == worker_labels
    assert spec["selector"]["matchExpressions"] == [{"key": "ferry.dev/task", "operator": "Exists"}]
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    (relabel,) = endpoint["relabelings"]
    assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_ferry_dev_task"]
    assert relabel["targetLabel"] == "synctask"
    workers = stored["Service"]["spec"]
    assert workers["clusterIP"] == "None" and workers["selector"] == worker_labels
    assert workers["ports"][0]["targetPort"] == "http"

    # With watchNamespaces: only those namespaces, and a worker Service in each.
    scoped = {"watchNamespaces": ["shop", "billing"], **values}
    docs = [
        d
        for d in yaml.safe_load_all(template(helm, kube_env, namespace, release_name(), scoped))
        if d
    ]
    monitor = next(d for d in docs if d["kind"] == "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["shop", "billing"]}
    assert sorted(
        d["metadata"]["namespace"]
        for d in docs
        if d["metadata"]["name"].endswith("-workers") and d["kind"] == "Service"
    ) == ["billing", "shop"]


def _alerts(manifests: str) -> dict[str, dict[str, Any]]:
    (rule,) = [d for d in yaml.safe_load_all(manifests) if d and d["kind"] == "PrometheusRule"]
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_rendered_alerts_have_severities_and_a_default_lag_threshold(
    helm: str, kube_env: dict[str, str], namespace: str
) -> None:
    alerts = _alerts(
        template(
            helm,
            kube_env,
            namespace,
            release_name(),
            {"metrics": {"prometheusRule": {"enabled": True}}},
        )
    )
    severities = {name: rule["labels"]["severity"] for name, rule in alerts.items()}
    assert set(severities.values()) == {"warning", "critical"}
    assert severities["FerryTaskLagHigh"] == "warning"
    assert severities["FerryTaskLagCritical"] == "critical"
    assert severities["FerryTaskFailed"] == "critical"
    assert severities["FerryWorkerMemoryHigh"] == "warning"
    assert severities["FerryWorkerMemoryCritical"] == "critical"
    assert severities["FerryWorkerCPUHigh"] == "warning"

    def flat(name: str) -> str:
        return " ".join(alerts[name]["expr"].split())

    # A task's own lagThreshold, else the default 5m (300 s); critical at 3 times that.
    lag = flat("FerryTaskLagHigh")
    assert (
        "max by (namespace, synctask) (ferry_synctask_lag_threshold_seconds) "
        "or on (namespace, synctask)" in lag
    )
    assert "(0 * ferry_synctask_lag_seconds + 300)" in lag
    assert "> on (namespace, synctask) 3 * (" in flat("FerryTaskLagCritical")
    # Worker pods: cAdvisor over kube-state-metrics' limit, for pods that are Ferry workers.
    memory = flat("FerryWorkerMemoryHigh")
    assert 'container_memory_working_set_bytes{container="worker"}' in memory
    assert 'kube_pod_container_resource_limits{container="worker", resource="memory"}' in memory
    assert (
        "group_left (synctask) max by (namespace, pod, synctask) (0 * ferry_state + 1) > 0.8"
        in memory
    )
    assert flat("FerryWorkerMemoryCritical").endswith("> 0.95")
    assert 'rate(container_cpu_usage_seconds_total{container="worker"}[5m])' in flat(
        "FerryWorkerCPUHigh"
    )
    for name, rule in alerts.items():
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), name
        assert "{{" not in expr, name  # no template left unrendered

    tuned = _alerts(
        template(
            helm,
            kube_env,
            namespace,
            release_name(),
            {
                "metrics": {
                    "prometheusRule": {
                        "enabled": True,
                        "defaultLagThreshold": "2m",
                        "lagCriticalFactor": 4,
                        "workerMemory": {"warning": 0.7, "critical": 0.9},
                        "workerCPU": 0.5,
                    }
                }
            },
        )
    )
    assert "+ 120)" in tuned["FerryTaskLagHigh"]["expr"]
    assert "4 * (" in tuned["FerryTaskLagCritical"]["expr"]
    assert tuned["FerryWorkerMemoryHigh"]["expr"].rstrip().endswith("> 0.7")
    assert tuned["FerryWorkerMemoryCritical"]["expr"].rstrip().endswith("> 0.9")
    assert tuned["FerryWorkerCPUHigh"]["expr"].rstrip().endswith("> 0.5")
    assert "1h" not in tuned["FerryTaskLagHigh"]["expr"]


def test_pod_security_is_restricted(helm: str, kube_env: dict[str, str], namespace: str) -> None:
    docs = [d for d in yaml.safe_load_all(template(helm, kube_env, namespace, release_name())) if d]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_values_schema_refuses_bad_values(
    helm: str, kube_env: dict[str, str], namespace: str
) -> None:
    for setting, field in (
        ("replicaCount=0", "replicaCount"),
        ("logLevel=loud", "logLevel"),
        ("watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("metrics.prometheusRule.errorRate=5", "errorRate"),
        ("nosuchkey=1", "nosuchkey"),
        ("metrics.workers.podMonitor.interval=soon", "interval"),
        ("metrics.prometheusRule.workerMemory.warning=2", "warning"),
        ("metrics.prometheusRule.defaultLagThreshold=five", "defaultLagThreshold"),
    ):
        result = run(
            [helm, "template", "x", str(CHART), "-n", namespace, "--set", setting],
            kube_env,
            check=False,
        )
        assert result.returncode != 0, setting
        assert field in result.stderr, result.stderr


def test_clusterrole_holds_exactly_what_the_operator_needs(
    helm: str, kube_env: dict[str, str], namespace: str
) -> None:
    needed = operator_calls()
    all_ns = [
        d for d in yaml.safe_load_all(template(helm, kube_env, namespace, release_name())) if d
    ]
    (cluster_role,) = [d for d in all_ns if d["kind"] == "ClusterRole"]
    held = rule_triples(cluster_role["rules"])
    assert needed <= held, (
        f"the operator calls the API for more than the chart grants: {sorted(needed - held)}"
    )
    assert held == NAMESPACED_NEEDS | CLUSTER_NEEDS | PEERING_NEEDS, sorted(
        held ^ (NAMESPACED_NEEDS | CLUSTER_NEEDS | PEERING_NEEDS)
    )

    scoped = [
        d
        for d in yaml.safe_load_all(
            template(helm, kube_env, namespace, release_name(), {"watchNamespaces": ["a", "b"]})
        )
        if d
    ]
    (cluster_role,) = [d for d in scoped if d["kind"] == "ClusterRole"]
    assert rule_triples(cluster_role["rules"]) == CLUSTER_NEEDS
    roles = [d for d in scoped if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    peering = {("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")}
    for role in roles:
        assert rule_triples(role["rules"]) == NAMESPACED_NEEDS | peering


def test_helm_install_and_the_api_servers_authorizer_agrees(
    helm: str,
    kube_env: dict[str, str],
    chart_crds: None,
    namespace: str,
    extra_namespaces: list[str],
    kube_api: Any,
    testenv: Any,
) -> None:
    release = release_name()
    run(
        [helm, "install", release, str(CHART), "-n", namespace, "--set", f"peering.name={release}"],
        kube_env,
    )
    try:
        apps = client.AppsV1Api(kube_api)
        deployment = apps.read_namespaced_deployment(f"{release}-ferry", namespace)
        assert deployment.spec.template.spec.service_account_name == f"{release}-ferry"
        status = run([helm, "status", release, "-n", namespace, "-o", "json"], kube_env)
        assert json.loads(status.stdout)["info"]["status"] == "deployed"
        subject = f"system:serviceaccount:{namespace}:{release}-ferry"

        def can(verb: str, resource: str, group: str, ns: str | None) -> bool:
            target = f"{resource}.{group}" if group else resource
            args = [testenv.kubectl, "auth", "can-i", verb, target, "--as", subject]
            args += ["-n", ns] if ns else []
            return run(args, kube_env, check=False).stdout.strip() == "yes"

        other = extra_namespaces[0]  # cluster-wide: any namespace
        for group, resource, verb in sorted(NAMESPACED_NEEDS):
            assert can(verb, resource, group, other), f"cannot {verb} {resource}.{group} in {other}"
        for group, resource, verb in sorted(CLUSTER_NEEDS | PEERING_NEEDS):
            assert can(verb, resource, group, None), f"cannot {verb} {resource}.{group}"
        for verb, resource, group in FORBIDDEN:
            assert not can(verb, resource, group, other), (
                f"may {verb} {resource}.{group}: more than it needs"
            )
    finally:
        run([helm, "uninstall", release, "-n", namespace], kube_env)
    assert (
        not client.RbacAuthorizationV1Api(kube_api)
        .list_cluster_role(label_selector=f"app.kubernetes.io/instance={release}")
        .items
    )


def test_watch_namespaces_install_grants_only_those_namespaces(
    helm: str,
    kube_env: dict[str, str],
    chart_crds: None,
    namespace: str,
    extra_namespaces: list[str],
    testenv: Any,
) -> None:
    release = release_name()
    watched, unwatched = extra_namespaces
    run(
        [
            helm,
            "install",
            release,
            str(CHART),
            "-n",
            namespace,
            "--set",
            f"peering.name={release}",
            "--set",
            f"watchNamespaces={{{watched}}}",
        ],
        kube_env,
    )
    try:
        subject = f"system:serviceaccount:{namespace}:{release}-ferry"

        def can(verb: str, resource: str, ns: str) -> bool:
            args = [testenv.kubectl, "auth", "can-i", verb, resource, "--as", subject, "-n", ns]
            return run(args, kube_env, check=False).stdout.strip() == "yes"

        assert can("patch", "synctasks.ferry.dev", watched)
        assert can("patch", "kopfpeerings.kopf.dev", watched)
        assert not can("patch", "synctasks.ferry.dev", unwatched)
        assert not can("get", "secrets", unwatched)
    finally:
        run([helm, "uninstall", release, "-n", namespace], kube_env)


def test_log_level_and_format_change_only_the_mounted_configmap(
    helm: str, kube_env: dict[str, str], namespace: str
) -> None:
    """A new logLevel/logFormat must not restart the operator: the pod template stays the
    same; the ConfigMap it mounts (FERRY_LOG_CONFIG, re-read by the operator) changes."""
    name = release_name()

    def rendered(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
        docs = yaml.safe_load_all(template(helm, kube_env, namespace, name, values))
        return {d["kind"]: d for d in docs if d and d["kind"] in ("ConfigMap", "Deployment")}

    info, debug = rendered({}), rendered({"logLevel": "debug", "logFormat": "json"})
    assert info["Deployment"] == debug["Deployment"]
    assert yaml.safe_load(info["ConfigMap"]["data"]["log.yaml"]) == {
        "level": "info",
        "format": "text",
    }
    assert yaml.safe_load(debug["ConfigMap"]["data"]["log.yaml"]) == {
        "level": "debug",
        "format": "json",
    }
    pod = info["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "log-config")
    assert env["FERRY_LOG_CONFIG"] == f"{mount['mountPath']}/log.yaml"
    assert "subPath" not in mount  # a subPath mount would never see an update
    volume = next(v for v in pod["volumes"] if v["name"] == "log-config")
    assert volume["configMap"]["name"] == info["ConfigMap"]["metadata"]["name"]
