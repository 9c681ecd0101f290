"""What the operator's steady state costs the API server, and how fast it converges after a
restart (prints figures; not a pass/fail test).

    python3 tests/bench/bench_operator.py [--tasks 50 200] [--seconds 30] [--resync SECONDS]
                                          [--paused] [--restart] [--source DIR] [--keep]

For each task count N: a fresh namespace with a Secret, two Ready Connectors (the real MariaDB
and Kafka of tests/infra/up) and N SyncTasks; the operator (``python -m ferry_operator.main
--namespace NS``) as a child process; once every task has its revision and Deployment and
the writes have settled, it counts for ``--seconds`` every request the operator's Kubernetes
client sends and every resync, and prints requests per task per resync by verb and resource.
The tasks' worker pods stay Pending (a nodeSelector no node has), so the shared node runs
none of them; ``--paused`` makes no pods at all (replicas 0: for thousands of tasks).
``--resync`` sets FERRY_RESYNC_SECONDS (default: the operator's own default).

``--restart`` then stops the operator (SIGTERM) and starts a second one: how long until it
has reconciled every task (its startup listing), the requests it made meanwhile, its peak RSS.

The counting is done by this script inside the child (it wraps the official client's
``ApiClient.call_api`` and the reconcile entry point before the operator starts), not by the
operator's own metrics, so the same instrument measures any version: ``--source DIR`` runs the
operator from another checkout (e.g. ``git worktree add /tmp/before <commit>``) for a before
figure. kopf's own watch streams and patches use its own client and are not counted.
Needs the services of tests/infra/up: reads $FERRY_TESTENV_ENV (e.g. a private API server's
env file, tests/infra/private-apiserver), else ~/.local/state/ferry-testenv/env.

``--seed`` makes the tasks' objects without an operator (the operator's reconcile code in
this process, 64 threads; kopf's finalizer and last-handled configuration written as kopf
writes them): the operator's first start is then measured as a restart.
``--reuse NAMESPACE`` measures a restart on the tasks a ``--keep`` run left (``--tasks``: their
number): the first operator's start is measured as the restart, then the idle window.
``FERRY_BENCH_HEAP=1`` prints the operator's heap after the idle window (RSS, glibc's heap,
pymalloc's arenas, live objects by type and the bytes reachable from kopf's indexes, kopf's
per-object memories, asyncio tasks and the operator's module state); ``=start`` also at the
first reconcile after the restart (it slows the start).
``--keep`` leaves the namespace (tasks and objects) behind instead of deleting it and waiting
for the operator to finish every task's deletion (as long again as the creation for
thousands of tasks): for a private API server that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # tests.support, run as a script
from tests.support import testenv_values  # noqa: E402

GROUP, VERSION = "ferry.dev", "v1alpha1"


# ---------------------------------------------------------------- the child: a counted operator


def child(counts_file: str, operator_args: list[str]) -> int:
    """Run the operator with its API requests and reconciles counted into ``counts_file``."""
    from kubernetes import client

    from ferry_operator.reconcile import synctask

    requests: Counter[str] = Counter()
    reconciles: Counter[str] = Counter()
    lock = threading.Lock()
    call_api = client.ApiClient.call_api
    reconcile = synctask.reconcile

    def shape(url: str) -> str:
        """The request's path without the object's name (``…/synctasks/_``): a few keys for
        thousands of tasks, so that writing the counts stays cheap."""
        path, _, query = url.split("://", 1)[-1].split("/", 1)[-1].partition("?")
        parts = path.split("/")
        at = 2 if parts[0] == "api" else 3  # the resource, or "namespaces"
        if len(parts) > at + 2 and parts[at] == "namespaces":
            at += 2
        if len(parts) > at + 1:
            parts[at + 1] = "_"
        return "/".join(parts) + (f"?{query}" if query else "")

    def counted_call_api(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        key = f"{method} {shape(url)}"
        with lock:
            requests[key] += 1
        return call_api(self, method, url, *args, **kwargs)

    def counted_reconcile(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            reconciles[ctx.trigger.split("/")[0]] += 1
        return reconcile(ctx, *args, **kwargs)

    client.ApiClient.call_api = counted_call_api  # type: ignore[method-assign]
    synctask.reconcile = counted_reconcile

    def dump() -> None:
        while True:
            with lock:
                data = {"requests": dict(requests), "reconciles": dict(reconciles)}
            Path(counts_file + ".tmp").write_text(json.dumps(data))
            os.replace(counts_file + ".tmp", counts_file)
            time.sleep(0.5)

    threading.Thread(target=dump, daemon=True).start()
    if os.environ.get("FERRY_BENCH_TRACEMALLOC"):  # where the memory goes: top allocations
        import tracemalloc

        tracemalloc.start(12)

        def allocations() -> None:
            while True:
                time.sleep(float(os.environ["FERRY_BENCH_TRACEMALLOC"]))
                snapshot = tracemalloc.take_snapshot()
                lines = [f"{tracemalloc.get_traced_memory()}"]
                for group in ("lineno", "traceback"):
                    for stat in snapshot.statistics(group)[: 25 if group == "lineno" else 8]:
                        lines.append(f"{stat.size / 2**20:8.1f} MiB {stat.count:>8}")
                        frames = stat.traceback.format()[-24:] if group == "traceback" else []
                        lines += frames or [f"  {stat.traceback[0]}"]
                Path(counts_file + ".memory").write_text("\n".join(lines))

        threading.Thread(target=allocations, daemon=True).start()
    if os.environ.get("FERRY_BENCH_HEAP"):  # who holds the memory, when the parent asks
        heap_file = Path(counts_file + ".heap")

        def heap_on_request() -> None:
            request = Path(counts_file + ".heap-request")
            while True:
                time.sleep(1)
                if request.exists():
                    request.unlink()
                    text = heap_report()
                    Path(f"{heap_file}.tmp").write_text(text)
                    os.replace(f"{heap_file}.tmp", heap_file)

        threading.Thread(target=heap_on_request, daemon=True).start()
    import ferry_operator

    print(f"operator source: {Path(ferry_operator.__file__).parent}", flush=True)
    from ferry_operator.main import main

    return main(operator_args)


def _mallinfo() -> str:
    """glibc's heap: bytes in use, free but kept, and mmapped (Python's larger objects)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost",
            )
        ]  # fmt: skip

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return "glibc malloc: unknown"
    mib = 2**20
    return (
        f"glibc malloc: heap {info.arena / mib:.1f} MiB (in use {info.uordblks / mib:.1f}, "
        f"free {info.fordblks / mib:.1f}), mmapped {info.hblkhd / mib:.1f} MiB"
    )


def _pymalloc() -> str:
    """pymalloc's arenas (sys._debugmallocstats, C stderr captured): its summary lines."""
    import tempfile

    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    wanted = ("# arenas", "# bytes in", "Total", "bytes in allocated", "bytes in available")
    return "\n".join(f"  {line}" for line in lines if line.strip().startswith(wanted))


def deep_size(root: Any, seen: set[int], skip: set[int]) -> tuple[int, int]:
    """Bytes and objects reachable from ``root`` not in ``seen`` (then added to it); modules'
    and classes' dicts, types, modules and functions are not followed (shared by all)."""
    import gc
    import types

    opaque = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
              types.CodeType, threading.Thread)  # fmt: skip
    size = count = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or id(obj) in skip or isinstance(obj, opaque):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj, 0)
        count += 1
        stack.extend(gc.get_referents(obj))
    return size, count


def heap_report() -> str:
    """Who holds the operator's memory: RSS, the allocators' totals, live objects by type and
    by holder (kopf's per-object memories, its indexes, its workers' tasks; the operator's
    module state)."""
    import asyncio
    import gc
    from collections import defaultdict

    started = time.monotonic()
    pid = os.getpid()
    lines = [
        f"RSS {rss_mib(pid, 'VmRSS'):.0f} MiB, peak {rss_mib(pid, 'VmHWM'):.0f} MiB",
        _mallinfo(),
        "pymalloc:",
        _pymalloc(),
    ]
    gc.collect()
    objects = gc.get_objects()
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for obj in objects:
        entry = by_type[type(obj).__qualname__]
        entry[0] += 1
        entry[1] += sys.getsizeof(obj, 0)
    lines.append(f"gc-tracked objects: {len(objects)}; by type (count, shallow MiB):")
    for name, (count, size) in sorted(by_type.items(), key=lambda kv: -kv[1][1])[:20]:
        lines.append(f"  {name:<40} {count:>9} {size / 2**20:8.1f}")
    skip = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    skip |= {id(o.__dict__) for o in objects if isinstance(o, type)}
    skip |= {id(objects)}
    roots: dict[str, list[Any]] = defaultdict(list)
    for obj in objects:
        kind = type(obj)
        where = f"{kind.__module__}.{kind.__qualname__}"
        if where == "kopf._core.reactor.inventory.ResourceMemories":
            roots["kopf memories: live_fresh_body"] += [
                m.daemons_memory.live_fresh_body for m in obj._items.values()
            ]
            roots["kopf memories: the rest"].append(obj)
        elif where == "kopf._core.engines.indexing.OperatorIndexers":
            for handler_id, indexer in obj.items():
                roots[f"kopf index {handler_id}"].append(indexer)
        elif isinstance(obj, asyncio.Task):
            roots["asyncio tasks (kopf's workers, watchers, daemons)"].append(obj)
    from ferry_operator import handlers
    from ferry_operator.reconcile import synctask

    for name in ("_VIEWS", "WAKEUPS", "DEPENDENTS", "FAILURES", "APPLIER", "_CACHE", "STORE"):
        if hasattr(handlers, name):  # STORE: the owned objects' store (owned_store.py)
            roots[f"ferry handlers.{name}"].append(getattr(handlers, name))
    roots["ferry synctask._LOCKS"].append(synctask._LOCKS)
    seen: set[int] = set()
    lines.append("reachable from (first holder counts; MiB, objects):")
    # the indexes first: kopf's timers (in its memories) hold them too, through their kwargs
    order = sorted(roots, key=lambda k: (not k.startswith("kopf index"), k.startswith("asyncio")))
    total = 0
    for name in order:
        size = count = 0
        for root in roots[name]:
            found = deep_size(root, seen, skip)
            size, count = size + found[0], count + found[1]
        total += size
        lines.append(f"  {name:<50} {size / 2**20:8.1f} {count:>9} ({len(roots[name])} roots)")
    rest_size = sum(sys.getsizeof(o, 0) for o in objects if id(o) not in seen)
    lines.append(f"  {'(gc-tracked, none of the above: shallow)':<50} {rest_size / 2**20:8.1f}")
    took = time.monotonic() - started
    lines.append(f"  total above {total / 2**20:.1f} MiB; report took {took:.0f}s")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the parent: set up, measure


def apply_crds(api: Any) -> None:
    import yaml
    from kubernetes import client

    extensions = client.ApiextensionsV1Api(api)
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        extensions.patch_custom_resource_definition(
            crd["metadata"]["name"], crd, field_manager="ferry-bench", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip
    time.sleep(2)


def wait_until(predicate: Any, timeout: float, what: str, every: float = 1.0) -> None:
    from kubernetes import client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except client.ApiException as error:  # e.g. 429 while a CRD's storage re-initializes
            if error.status not in (429, 500, 503, 504):
                raise
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def setup(api: Any, env: dict[str, str], namespace: str, tasks: int, paused: bool) -> None:
    from kubernetes import client

    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="db"),
            string_data={"password": env["FERRY_MYSQL_PASSWORD"]},
        ),
    )
    connectors = [
        {
            "metadata": {"name": "db"},
            "spec": {
                "type": "mysql",
                "mysql": {
                    "host": env.get("FERRY_MYSQL_HOST", "127.0.0.1"),
                    "port": int(env.get("FERRY_MYSQL_PORT", "13306")),
                    "user": env.get("FERRY_MYSQL_USER", "ferry"),
                    "passwordSecretRef": {"name": "db", "key": "password"},
                },
            },
        },
        {
            "metadata": {"name": "kafka"},
            "spec": {
                "type": "kafka",
                "kafka": {"bootstrapServers": env.get("FERRY_KAFKA_BOOTSTRAP", "127.0.0.1:19092")},
            },
        },
    ]
    for body in connectors:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "connectors",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Connector", **body},
        )  # fmt: skip

    def create(i: int) -> None:
        task = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncTask",
            "metadata": {"name": f"task-{i:04d}"},
            "spec": {
                "source": {"connectorRef": {"name": "db"}, "include": [f"shop{i}.*"]},
                "sink": {"connectorRef": {"name": "kafka"}, "kafka": {}},
                "worker": {"nodeSelector": {"ferry.dev/bench": "nowhere"}},
                **({"paused": True} if paused else {}),
            },
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "synctasks", task)

    with ThreadPoolExecutor(max_workers=8) as pool:  # thousands of tasks: in parallel
        list(pool.map(create, range(tasks)))


def seed(env: dict[str, str], namespace: str, tasks: int, threads: int = 64) -> float:
    """Bring the tasks of ``namespace`` to where a first operator would have left them, with
    the operator's own code in this process and ``threads`` at once (for thousands of tasks:
    an operator makes one task at a time per worker, ~15 requests each): each Connector
    probed (reconcile/connector.py), then per task not done yet kopf's bookkeeping (its
    finalizer and the last-handled configuration, from kopf's own AnnotationsDiffBaseStorage,
    so that the next operator sees no change to handle) and the operator's first reconcile
    of a new task (synctask.decide from nothing there yet, then act: the objects and status).
    Returns the seconds it took."""
    from datetime import UTC, datetime

    import kopf
    from kubernetes import client, config

    from ferry_operator.applier import Applier
    from ferry_operator.context import Context
    from ferry_operator.kube import Clients
    from ferry_operator.reconcile import connector, synctask

    started = time.monotonic()
    configuration = client.Configuration()
    config.load_kube_config(config_file=env["KUBECONFIG"], client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = threads * 2
    api = client.ApiClient(configuration)
    found = Clients(
        api,
        client.CoreV1Api(api),
        client.AppsV1Api(api),
        client.RbacAuthorizationV1Api(api),
        client.CustomObjectsApi(api),
    )
    applier = Applier(found)
    connectors = {}
    for name in ("db", "kafka"):
        body = found.get_custom(namespace, "connectors", name)
        assert body is not None, name
        ctx = Context(namespace, name, body["metadata"]["uid"], "seed")
        connector.reconcile(ctx, found, applier, body)
        connectors[name] = found.get_custom(namespace, "connectors", name) or {}
    storage = kopf.AnnotationsDiffBaseStorage(prefix="ferry.dev", key="last-handled-configuration")
    listed: Any = found.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "synctasks")
    todo = [t for t in listed["items"] if not (t.get("status") or {}).get("configRevision")]
    print(f"  seeding {len(todo)} of {tasks} tasks", file=sys.stderr, flush=True)

    def one(task: dict[str, Any]) -> None:
        name = task["metadata"]["name"]
        body = kopf.Body(cast(Any, task))
        patch = kopf.Patch()
        storage.store(body=body, patch=patch, essence=storage.build(body=body))
        metadata = {"finalizers": ["ferry.dev/finalizer"], **dict(patch)["metadata"]}
        found.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "synctasks", name, {"metadata": metadata}
        )
        ctx = Context(namespace, name, task["metadata"]["uid"], "seed")
        observed = synctask.Observed(task, None, connectors, [], {}, datetime.now(UTC))
        synctask.act(ctx, applier, observed, synctask.decide(ctx, observed))

    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(one, todo):
            done += 1
            if done % 250 == 0:
                print(f"  seeded {done}", file=sys.stderr, flush=True)
    return time.monotonic() - started


def all_started(api: Any, namespace: str, tasks: int) -> bool:
    from kubernetes import client

    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "synctasks")
    items = listed["items"]
    revised = sum(1 for t in items if (t.get("status") or {}).get("configRevision"))
    deployments = len(apps.list_namespaced_deployment(namespace).items)
    print(f"  {revised} revised, {deployments} Deployments", file=sys.stderr, flush=True)
    return revised == tasks and deployments == tasks


def rss_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_counts(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def heap_of(counts: Path) -> str:
    """The child's heap report (FERRY_BENCH_HEAP), asked for now."""
    heap = Path(str(counts) + ".heap")
    heap.unlink(missing_ok=True)
    Path(str(counts) + ".heap-request").touch()
    wait_until(heap.exists, 900, "the heap report", every=2)
    return heap.read_text()


def start_child(counts: Path, log: Path, env: dict[str, str], namespace: str) -> Any:
    command = [sys.executable, __file__, "--child", str(counts), "--", "--namespace", namespace]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def delta(after: dict[str, Any], before: dict[str, Any]) -> Counter[tuple[str, str]]:
    from ferry_operator.kube import request_labels

    by_label: Counter[tuple[str, str]] = Counter()
    for key, value in after["requests"].items():
        change = value - before["requests"].get(key, 0)
        if change:
            method, path = key.split(" ", 1)
            by_label[request_labels(method, "/" + path)] += change
    return by_label


def quiet(counts: Path, seconds: float, timeout: float) -> None:
    """Wait until the operator has made no reconcile for ``seconds``."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < seconds and time.monotonic() < deadline:
        done = sum(read_counts(counts)["reconciles"].values())
        if done != last:
            last, since = done, time.monotonic()
        time.sleep(0.5)


def restart(
    process: Any, counts: Path, log: Path, env: dict[str, str], namespace: str, tasks: int
) -> tuple[Any, dict[str, Any]]:
    """Stop the operator (if any), start another; measure until it has reconciled every task."""
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:  # handlers still waiting on a slow API server
            process.kill()
            process.wait()
    counts.unlink(missing_ok=True)
    started = time.monotonic()
    second = start_child(counts, log, env, namespace)
    peak = 0.0

    def resumed() -> bool:
        nonlocal peak
        peak = max(peak, rss_mib(second.pid, "VmHWM"))
        if not counts.exists():
            return False
        found = read_counts(counts)["reconciles"]
        return bool(found.get("resume", 0) + found.get("create", 0) + found.get("update", 0))

    try:
        wait_until(resumed, 600, "the first reconcile after the restart")
        first_after = time.monotonic() - started
        print(f"  first reconcile after {first_after:.0f}s", file=sys.stderr, flush=True)
        if os.environ.get("FERRY_BENCH_HEAP") == "start":  # the startup's holders (slows it)
            print(f"heap at the first reconcile:\n{heap_of(counts)}", file=sys.stderr, flush=True)
        last, quiet_since, all_after = -1, time.monotonic(), None
        # until every task is reconciled (the listing's "resume") and 10 s without a reconcile;
        # wake-ups from other controllers' changes (e.g. just-made Deployments' status) may
        # go on longer: then reported as not quiet after 300 s
        while all_after is None or time.monotonic() - quiet_since < 10:
            peak = max(peak, rss_mib(second.pid, "VmHWM"))
            found = read_counts(counts)["reconciles"]
            done = sum(found.values())
            if done != last:
                last, quiet_since = done, time.monotonic()
            if all_after is None and found.get("resume", 0) >= tasks:
                all_after = time.monotonic() - started
                peak_then = max(peak, rss_mib(second.pid, "VmHWM"))
                print(
                    f"  every task reconciled after {all_after:.0f}s, peak RSS {peak_then:.0f} "
                    f"MiB: {found}",
                    file=sys.stderr,
                    flush=True,
                )
            if time.monotonic() - started > (300 if all_after is not None else 900):
                if all_after is None:
                    raise SystemExit(f"not every task reconciled after 900 s: {found}")
                quiet_since = time.monotonic()  # not quiet: reported as such
                break
            time.sleep(0.5)
    except BaseException:
        second.kill()  # not left running after a failed measurement
        second.wait()
        raise
    converged = quiet_since - started
    data = read_counts(counts)
    return second, {
        "first_after": first_after,
        "all_after": all_after,
        "converged_after": converged,
        "reconciles": data["reconciles"],
        "requests": dict(delta(data, {"requests": {}})),
        "peak_rss": max(peak, rss_mib(second.pid, "VmHWM")),
        "rss": rss_mib(second.pid, "VmRSS"),
        "tasks": tasks,
    }


def measure(
    api: Any,
    env: dict[str, str],
    tasks: int,
    seconds: float,
    resync: float | None,
    source: str | None,
    paused: bool = False,
    again: bool = False,
    keep: bool = False,
    reuse: str | None = None,
    seeding: bool = False,
) -> dict[str, Any]:
    from kubernetes import client

    def tasks_left() -> bool:
        """Tasks or Connectors left (the operator removes their finalizers)."""
        custom = client.CustomObjectsApi(api)
        listed: list[Any] = [
            custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
            for plural in ("synctasks", "connectors")
        ]
        return any(found["items"] for found in listed)

    run = uuid.uuid4().hex[:6]
    namespace = reuse or f"ferry-bench-{run}"
    counts = Path(f"/tmp/{namespace}-{run}-counts.json")
    log = Path(f"/tmp/{namespace}-{run}-operator.log")
    if reuse is None:
        setup(api, env, namespace, tasks, paused)
    seeded = seed(env, namespace, tasks) if seeding else None
    child_env = {
        **os.environ,
        "KUBECONFIG": env["KUBECONFIG"],
        "FERRY_WAIT_SECONDS": "2",
    }
    if resync is not None:
        child_env["FERRY_RESYNC_SECONDS"] = str(resync)
    if source:
        root = Path(source).resolve()
        child_env["PYTHONPATH"] = f"{root / 'operator'}:{root / 'runtime'}"
    started = time.monotonic()
    restarted: dict[str, Any] | None = None
    if reuse is not None or seeded is not None:  # the tasks are there: a start is a restart
        process, restarted = restart(None, counts, log, child_env, namespace, tasks)
        restarted["load"] = os.getloadavg()[0]
        restarted["all_started"] = all_started(api, namespace, tasks)
    else:
        process = start_child(counts, log, child_env, namespace)
    try:
        wait_until(
            lambda: all_started(api, namespace, tasks),
            3600,
            f"{tasks} tasks started",
            every=max(1.0, tasks / 500),  # listing thousands of tasks is not free
        )
        ready_after = time.monotonic() - started
        # The cluster settles after the operator did: the Deployment and ReplicaSet controllers
        # and the scheduler update 1000s of objects at their own pace, and each change a task
        # acts on wakes it. The window starts once the operator has been quiet for 20 s.
        quiet(counts, 20, 600)
        before = read_counts(counts)
        load = os.getloadavg()[0]
        time.sleep(seconds)
        after = read_counts(counts)
        rss = rss_mib(process.pid, "VmRSS"), rss_mib(process.pid, "VmHWM")
        if os.environ.get("FERRY_BENCH_HEAP"):
            print(f"heap after the idle window:\n{heap_of(counts)}", file=sys.stderr, flush=True)
        if again:
            process, restarted = restart(process, counts, log, child_env, namespace, tasks)
            restarted["load"] = os.getloadavg()[0]
            restarted["all_started"] = all_started(api, namespace, tasks)
    finally:
        if not keep:
            client.CoreV1Api(api).delete_namespace(namespace)
            # The operator finishes the tasks' deletion (finalizers) before it is stopped.
            wait_until(lambda: not tasks_left(), 1800, "the tasks deleted")
        process.terminate()
        process.wait(timeout=30)
    by_label = delta(after, before)
    resyncs = after["reconciles"].get("resync", 0) - before["reconciles"].get("resync", 0)
    others = sum(after["reconciles"].values()) - sum(before["reconciles"].values()) - resyncs
    return {
        "tasks": tasks,
        "ready_after": ready_after,
        "seconds": seconds,
        "resyncs": resyncs,
        "other_reconciles": others,
        "requests": dict(by_label),
        "rss": rss,
        "load": load,
        "restart": restarted,
        "seeded": seeded,
        "source": log.read_text(errors="replace").splitlines()[0],
    }


def report(result: dict[str, Any]) -> None:
    total = sum(result["requests"].values())
    resyncs = max(result["resyncs"], 1)
    print(
        f"\n{result['tasks']} tasks ({result['source']}): all started after "
        f"{result['ready_after']:.0f}s; in {result['seconds']:.0f}s of steady state "
        f"{result['resyncs']} resyncs ({result['other_reconciles']} other reconciles), "
        f"{total} API requests = {total / result['seconds']:.1f}/s, "
        f"{total / resyncs:.2f} per task per resync; "
        f"operator RSS {result['rss'][0]:.0f} MiB (peak {result['rss'][1]:.0f}); "
        f"load average {result['load']:.1f}"
    )
    for (verb, resource), count in sorted(result["requests"].items(), key=lambda kv: -kv[1]):
        print(f"  {verb:>8} {resource:<22} {count:>7}  {count / resyncs:.2f} per resync")
    if result.get("seeded") is not None:
        print(f"seeded (the operator's code in 64 threads, no operator) in {result['seeded']:.0f}s")
    again = result.get("restart")
    if again:
        print(
            f"restart: first reconcile after {again['first_after']:.0f}s, every task reconciled "
            f"after {again['all_after']:.0f}s, the last reconcile at "
            f"{again['converged_after']:.0f}s (then 10 s without one); "
            f"reconciles {again['reconciles']}; "
            f"{sum(again['requests'].values())} API requests; peak RSS "
            f"{again['peak_rss']:.0f} MiB (now {again['rss']:.0f}); all tasks with revision and "
            f"Deployment: {again['all_started']}; load average {again['load']:.1f}"
        )
        for (verb, resource), count in sorted(again["requests"].items(), key=lambda kv: -kv[1]):
            print(f"  {verb:>8} {resource:<22} {count:>7}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[4:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--resync", type=float, help="FERRY_RESYNC_SECONDS")
    parser.add_argument("--source", help="run the operator from this checkout instead")
    parser.add_argument("--paused", action="store_true", help="paused tasks: no worker pods")
    parser.add_argument("--restart", action="store_true", help="then measure a restart")
    parser.add_argument("--keep", action="store_true", help="leave the namespace behind")
    parser.add_argument(
        "--seed",
        action="store_true",
        help="make the tasks' objects with the operator's code in 64 threads, then measure a start",
    )
    parser.add_argument(
        "--reuse",
        metavar="NAMESPACE",
        help="the tasks of a --keep run (--tasks: their number): measure a start as a restart",
    )
    args = parser.parse_args()
    from kubernetes import config

    env = testenv_values()
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    apply_crds(api)
    for tasks in args.tasks:
        result = measure(
            api,
            env,
            tasks,
            args.seconds,
            args.resync,
            args.source,
            args.paused,
            args.restart,
            args.keep,
            args.reuse,
            args.seed,
        )
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
