"""A stand-in for the kubelet, for Ferry's worker Deployments only.

The test control plane has no scheduler and no kubelet, so worker Pods stay Pending. This
process plays the kubelet's part for Ferry: it watches Deployments labelled
``app.kubernetes.io/managed-by=ferry`` and runs each one's first container as a local
process while the Deployment wants a replica — with the ConfigMap volumes written to a
temporary directory (mount paths in the command line rewritten to it), ``env`` resolved from
literal values, Secrets and ConfigMaps, and the same KUBECONFIG. A changed pod template
restarts the process (SIGTERM, then a new one); replicas 0 or a deleted Deployment stops it.

It is test and demo tooling, not part of the product: in a real cluster the kubelet runs the
worker image.

    python3 tests/infra/local_kubelet.py [--namespace NS] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

SELECTOR = "app.kubernetes.io/managed-by=ferry"
GRACE_SECONDS = 30


@dataclass
class RunningPod:
    key: str  # namespace/name of the Deployment
    template_hash: str
    process: subprocess.Popen[bytes]
    workdir: Path


def template_hash(deployment: dict[str, Any]) -> str:
    template = deployment["spec"]["template"]
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


class LocalKubelet:
    def __init__(self, api: client.ApiClient, log_dir: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.api = api
        self.log_dir = log_dir
        self.running: dict[str, RunningPod] = {}
        self.lock = threading.Lock()

    # ------------------------------------------------------------ decide

    def sync(self, deployment: dict[str, Any] | None, key: str) -> None:
        with self.lock:
            current = self.running.get(key)
            wanted = deployment is not None and (deployment["spec"].get("replicas") or 0) > 0
            if current and (not wanted or current.template_hash != template_hash(deployment or {})):
                self.stop(current)
                current = None
            if wanted and current is None and deployment is not None:
                self.start(deployment, key)

    # ------------------------------------------------------------ act

    def start(self, deployment: dict[str, Any], key: str) -> None:
        namespace = deployment["metadata"]["namespace"]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        workdir = Path(
            tempfile.mkdtemp(prefix=f"ferry-{namespace}-{deployment['metadata']['name']}-")
        )
        paths = self.materialise_volumes(namespace, pod, container, workdir)
        argv = [
            self.rewrite(arg, paths)
            for arg in container.get("command", []) + container.get("args", [])
        ]
        if argv and argv[0] in {"ferry", "ferry-worker"}:
            argv[0] = shutil.which(argv[0]) or argv[0]
        env = dict(os.environ)
        env.update(self.resolve_env(namespace, container.get("env", [])))
        log_path = self.log_dir / f"{namespace}.{deployment['metadata']['name']}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
            )
        self.running[key] = RunningPod(key, template_hash(deployment), process, workdir)
        print(f"started {key}: pid {process.pid}, log {log_path}", flush=True)

    def stop(self, pod: RunningPod) -> None:
        if pod.process.poll() is None:
            pod.process.send_signal(signal.SIGTERM)
            try:
                pod.process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pod.process.kill()
                pod.process.wait()
        shutil.rmtree(pod.workdir, ignore_errors=True)
        self.running.pop(pod.key, None)
        print(f"stopped {pod.key}: exit {pod.process.returncode}", flush=True)

    def stop_all(self) -> None:
        with self.lock:
            for pod in list(self.running.values()):
                self.stop(pod)

    # ------------------------------------------------------------ pod spec → local process

    def materialise_volumes(
        self, namespace: str, pod: dict[str, Any], container: dict[str, Any], workdir: Path
    ) -> dict[str, str]:
        """Write ConfigMap/Secret volumes into ``workdir``; return mountPath → local path."""
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        paths: dict[str, str] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            local = workdir / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                data = (
                    self.core.read_namespaced_config_map(
                        volume["configMap"]["name"], namespace
                    ).data
                    or {}
                )
                for item_key, value in data.items():
                    (local / item_key).write_text(value)
            elif "secret" in volume:
                secret = self.core.read_namespaced_secret(volume["secret"]["secretName"], namespace)
                for item_key, value in (secret.data or {}).items():
                    (local / item_key).write_bytes(base64.b64decode(value))
            paths[mount["mountPath"]] = str(local)
        return paths

    @staticmethod
    def rewrite(arg: str, paths: dict[str, str]) -> str:
        for mount_path in sorted(paths, key=len, reverse=True):
            if (
                arg == mount_path
                or arg.startswith(mount_path.rstrip("/") + "/")
                or f"={mount_path}" in arg
            ):
                return arg.replace(mount_path, paths[mount_path], 1)
        return arg

    def resolve_env(self, namespace: str, env: list[dict[str, Any]]) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for item in env:
            if "value" in item:
                resolved[item["name"]] = str(item["value"])
                continue
            source = item.get("valueFrom", {})
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.core.read_namespaced_secret(ref["name"], namespace)
                resolved[item["name"]] = base64.b64decode((secret.data or {})[ref["key"]]).decode()
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                data = self.core.read_namespaced_config_map(ref["name"], namespace).data or {}
                resolved[item["name"]] = data[ref["key"]]
            elif "fieldRef" in source:
                field = source["fieldRef"]["fieldPath"]
                resolved[item["name"]] = {"metadata.namespace": namespace}.get(field, "")
        return resolved

    # ------------------------------------------------------------ observe

    def run(self, namespace: str | None) -> None:
        while True:
            if namespace:
                lister = self.apps.list_namespaced_deployment
                args: tuple[str, ...] = (namespace,)
            else:
                lister = self.apps.list_deployment_for_all_namespaces
                args = ()
            self.reap()
            initial = lister(*args, label_selector=SELECTOR)
            seen = set()
            for item in initial.items:
                obj = self.api.sanitize_for_serialization(item)
                key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                seen.add(key)
                self.sync(obj, key)
            for key in set(self.running) - seen:
                self.sync(None, key)
            stream = watch.Watch().stream(
                lister,
                *args,
                label_selector=SELECTOR,
                resource_version=initial.metadata.resource_version,
                timeout_seconds=5,  # then list again: reaps and restarts exited workers
            )
            try:
                for event in stream:
                    obj = self.api.sanitize_for_serialization(event["object"])
                    key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                    self.sync(None if event["type"] == "DELETED" else obj, key)
            except client.ApiException as error:
                if error.status != 410:  # 410 Gone: the watch expired, list again
                    raise

    def reap(self) -> None:
        """Forget workers that exited, so the next sync restarts them (restartPolicy: Always)."""
        with self.lock:
            for pod in list(self.running.values()):
                if pod.process.poll() is not None:
                    print(f"{pod.key} exited with {pod.process.returncode}", flush=True)
                    shutil.rmtree(pod.workdir, ignore_errors=True)
                    self.running.pop(pod.key, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", help="watch one namespace (default: all)")
    parser.add_argument(
        "--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "ferry-workers"
    )
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    kubelet = LocalKubelet(config.new_client_from_config(), args.log_dir)

    def terminate(signum: int, frame: Any) -> None:
        kubelet.stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    kubelet.run(args.namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
