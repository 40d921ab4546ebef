"""A fake kubelet (and binder) for the official control plane, in the way of kwok.

No container ever runs. The simulated cluster's own scheduler+kubelet state machine
(`tests.cluster.kubelet.Kubelet`, driven by the shared behaviour vocabulary in
`tests.cluster.behaviours`) decides what happens to each Pod; this module only connects it to a
real API server instead of the simulated store:

- `ApiStore` has the few Store methods the Kubelet and its EventRecorder call (`get_shared`,
  `create`, `update`, `update_status`, `delete`, `lock`) and turns them into the requests the
  real components send: a `pods/binding` for a scheduling decision, a merge patch of
  `pods/status`, a final `DELETE` with grace period 0 and a UID precondition once a Pod's
  containers are stopped, core/v1 Events from the kubelet (count bumped in place, as client-go's
  correlator does) and events.k8s.io/v1 Events from the scheduler (a `series` on repeats, as
  the scheduler's recorder does).
- Informers (list, then watch, resume, relist on 410) keep a cache of Pods, Secrets and
  ConfigMaps and feed the Kubelet the same WatchEvents the simulated store would.
- `NodeAgent` registers the Nodes (Ready, with capacity), renews their Leases in
  `kube-node-lease` every 10 s as the kubelet does, and says where the kubelet API is.
- `LogServer` is that kubelet API: `GET /containerLogs/<ns>/<pod>/<container>` served from the
  Kubelet's LogBook, so `kubectl logs` and the plugin read logs through the real API server's
  proxy, with the real kubelet's answers (400 with the reason when there is no such instance).

Time: the Kubelet's back-off schedule is the real kubelet's, verified in the 1.37 source
(pkg/kubelet/kubelet.go, kuberuntime_manager.go `doBackOff`, images/image_manager.go): a
container that exits is restarted at once the first time (`backOff.Next` only records 10 s),
then each further exit waits the current back-off (CrashLoopBackOff, "back-off 10s restarting
failed container=..."), which doubles up to MaxContainerBackOff 300 s (reset after 600 s
without an exit); image pulls back off the same way (imageBackOffPeriod 10 s doubling to
MaxImageBackOff 300 s, "Back-off pulling image"). `SimConfig.time_scale` is the one knob
that scales those seconds for tests; the shape stays the kubelet's.

Run as a process by the launcher: ``python -m tests.controlplane.fake_kubelet CONFIG.json``.
"""

from __future__ import annotations

import copy
import heapq
import json
import queue
import ssl
import sys
import threading
import time
import traceback
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlparse

from tests.cluster.behaviours import Behaviour, behaviour_from_annotations
from tests.cluster.events import EventRecorder
from tests.cluster.kubelet import Kubelet, LogBook, LogError, log_container_id
from tests.cluster.scheduling import node_labels
from tests.cluster.simulation import SimConfig
from tests.cluster.store import NotFound, WatchEvent

from .rest import RESOURCES, Rest, RestError


def behaviour_configmap(kind: str, name: str) -> str:
    """The ConfigMap RealCluster.set_behaviour writes for a workload (tests/controlplane/
    cluster.py): `sim-behaviour-deployment.backend`, `sim-behaviour-statefulset.db`, ..."""
    return f"sim-behaviour-{kind.lower()}.{name}"


def workload_of(pod: dict) -> tuple[str, str] | None:
    """(kind, name) of the workload a Pod belongs to: its controller, or the Deployment of
    its ReplicaSet (whose name is `<deployment>-<pod-template-hash>`)."""
    meta = pod["metadata"]
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None:
        return None
    if owner.get("kind") != "ReplicaSet":
        return owner.get("kind"), owner.get("name")
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if not template_hash:
        return None
    return "Deployment", owner["name"].removesuffix(f"-{template_hash}")


__all__ = [
    "ApiStore",
    "FakeKubelet",
    "NodeAgent",
    "LogServer",
    "read_container_log",
    "behaviour_configmap",
    "workload_of",
    "main",
]

SCHEDULER = "default-scheduler"
KUBELET_VERSION = "v1.37.2"
LEASE_DURATION = 40  # seconds, the kubelet's default nodeLeaseDurationSeconds
LEASE_RENEW = 10.0  # the kubelet renews every 0.25 * lease duration


def _rv(obj: dict | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def micro_time(seconds: float) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1e6):06d}Z"


# ----------------------------------------------------------------------------- the cache


class Cache:
    """Objects by (resource, namespace, name); newer resourceVersions win."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict] = {}

    @staticmethod
    def _key(resource: str, obj: dict) -> tuple[str, str, str]:
        meta = obj["metadata"]
        return resource, meta.get("namespace") or "", meta["name"]

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            return self._objects.get((resource, namespace or "", name))

    def put(self, resource: str, obj: dict) -> bool:
        """Store `obj` unless the cache has a newer version; True if stored."""
        key = self._key(resource, obj)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and _rv(current) > _rv(obj) and _uid(current) == _uid(obj):
                return False
            self._objects[key] = obj
            return True

    def remove(self, resource: str, obj: dict) -> None:
        key = self._key(resource, obj)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and _uid(current) == _uid(obj):
                del self._objects[key]

    def keys(self, resource: str) -> list[tuple[str, str, str]]:
        with self._lock:
            return [k for k in self._objects if k[0] == resource]


def _uid(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


# ----------------------------------------------------------------------------- the store


class ApiStore:
    """The Store interface the Kubelet and EventRecorder use, answered by a real API server."""

    def __init__(self, rest: Rest, cache: Cache, clock: Callable[[], float], log) -> None:
        self.lock = threading.RLock()
        self._rest = rest
        self._cache = cache
        self._clock = clock
        self._log = log
        self._events: dict[tuple[str, str], dict] = {}  # what we recorded, core/v1 shaped
        self._new_api: set[tuple[str, str]] = set()  # events.k8s.io/v1 ones among them

    def get_shared(self, resource: str, namespace: str | None, name: str) -> dict | None:
        if resource == "events":
            return self._events.get((namespace or "", name))
        return self._cache.get(resource, namespace, name)

    def create(self, resource: str, obj: dict) -> dict:
        if resource != "events":
            raise NotImplementedError(f"the fake kubelet does not create {resource}")
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if (obj.get("source") or {}).get("component") == SCHEDULER:
            self._post_scheduler_event(obj)
            self._new_api.add(key)
        else:
            obj = self._call("POST", RESOURCES["events"].path(meta["namespace"]), obj) or obj
        self._events[key] = obj
        return obj

    def update(self, resource: str, obj: dict) -> dict:
        meta = obj["metadata"]
        if resource == "events":
            return self._bump_event(obj)
        if resource != "pods":
            raise NotImplementedError(f"the fake kubelet does not update {resource}")
        node = (obj.get("spec") or {}).get("nodeName")
        current = self._cache.get("pods", meta.get("namespace"), meta["name"])
        if not node or current is None or (current.get("spec") or {}).get("nodeName"):
            raise NotImplementedError("the fake kubelet only binds pods")
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = RESOURCES["pods"].path(meta["namespace"], meta["name"], "binding")
        self._call("POST", path, binding, missing_ok=(404, 409))
        bound = copy.deepcopy(current)
        bound["spec"]["nodeName"] = node
        return bound

    def update_status(self, resource: str, obj: dict) -> dict:
        if resource != "pods":
            raise NotImplementedError(f"the fake kubelet does not write {resource} status")
        meta = obj["metadata"]
        current = self._cache.get("pods", meta.get("namespace"), meta["name"]) or obj
        status = dict(obj.get("status") or {})
        for key in (current.get("status") or {}).keys() - status.keys():
            status[key] = None  # merge patch: dropped fields go
        patch = {"metadata": {"uid": meta["uid"]}, "status": status}
        path = RESOURCES["pods"].path(meta["namespace"], meta["name"], "status")
        updated = self._call("PATCH", path, patch, patch_type="merge", missing_ok=(404, 409, 422))
        self._cache.put("pods", updated)
        return updated

    def delete(self, resource: str, namespace: str | None, name: str) -> dict | None:
        if resource == "events":
            self._events.pop((namespace or "", name), None)
            return None
        if resource != "pods":
            raise NotImplementedError(f"the fake kubelet does not delete {resource}")
        current = self._cache.get("pods", namespace, name)
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        options["gracePeriodSeconds"] = 0
        if current is not None:
            options["preconditions"] = {"uid": _uid(current)}
        try:
            return self._call("DELETE", RESOURCES["pods"].path(namespace, name), options)
        except NotFound:
            return None

    # -- events as each component writes them

    def _post_scheduler_event(self, event: dict) -> None:
        """The scheduler records through events.k8s.io/v1 (client-go tools/events): no count
        and no first/last timestamps, an eventTime, and a series from the second time on."""
        self._call(
            "POST",
            f"/apis/events.k8s.io/v1/namespaces/{event['metadata']['namespace']}/events",
            {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": dict(event["metadata"]),
                "eventTime": micro_time(self._clock()),
                "reportingController": SCHEDULER,
                "reportingInstance": f"{SCHEDULER}-fake-kubelet",
                "action": "Binding" if event["reason"] == "Scheduled" else "Scheduling",
                "reason": event["reason"],
                "regarding": event["involvedObject"],
                "note": event["message"],
                "type": event["type"],
            },
        )

    def _bump_event(self, event: dict) -> dict:
        meta = event["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._new_api:
            # The scheduler's recorder writes the series once, at the second occurrence, and
            # later counts only in memory (refreshed every 30 minutes).
            if int(event.get("count") or 2) == 2:
                series = {"count": 2, "lastObservedTime": micro_time(self._clock())}
                path = f"/apis/events.k8s.io/v1/namespaces/{key[0]}/events/{key[1]}"
                self._call("PATCH", path, {"series": series}, patch_type="merge")
        else:
            # count, lastTimestamp and message (a combined Event takes the latest one)
            patch = {k: event[k] for k in ("count", "lastTimestamp", "message")}
            event = (
                self._call("PATCH", RESOURCES["events"].path(*key), patch, patch_type="merge")
                or event
            )
        self._events[key] = event
        return event

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        patch_type: str = "strategic",
        missing_ok: tuple[int, ...] = (404,),
    ) -> Any:
        """One request; NotFound (which the Kubelet expects for vanished Pods) for the
        answers that mean the object is gone or was replaced."""
        try:
            if method == "PATCH":
                return self._rest.patch(path, body, patch_type)
            return self._rest.request(method, path, body)
        except RestError as error:
            if error.status in missing_ok:
                raise NotFound(str(error)) from None
            raise


# ----------------------------------------------------------------------------- informers


class Informer(threading.Thread):
    """List, then watch one resource in all namespaces; puts (resource, type, obj) on `out`
    and keeps `cache` current. Resumes after a closed watch, relists after 410 Gone."""

    def __init__(
        self, rest: Rest, resource: str, cache: Cache, out: queue.Queue, stop: threading.Event, log
    ) -> None:
        super().__init__(name=f"informer-{resource}", daemon=True)
        self._rest, self._resource, self._cache = rest, resource, cache
        self._out, self._stop, self._log = out, stop, log
        self.synced = threading.Event()

    def run(self) -> None:
        path = RESOURCES[self._resource].path()
        version = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist(path)
                    self.synced.set()
                for kind, obj in self._rest.watch(path, version, timeout_seconds=240):
                    if self._stop.is_set():
                        return
                    if kind == "ERROR":
                        version = None if obj.get("code") == 410 else version
                        break
                    version = obj["metadata"].get("resourceVersion") or version
                    if kind == "BOOKMARK":
                        continue
                    self._deliver(kind, obj)
            except RestError as error:
                if error.status == 410:
                    version = None
                else:
                    self._log(f"watch {self._resource}: {error}")
                    self._stop.wait(1.0)
            except Exception as error:  # connection reset, server restarting
                if not self._stop.is_set():
                    self._log(f"watch {self._resource}: {type(error).__name__}: {error}")
                    self._stop.wait(1.0)

    def _relist(self, path: str) -> str:
        listed = self._rest.get(path)
        present = set()
        for item in listed.get("items") or []:
            item.setdefault("kind", RESOURCES[self._resource].kind)
            item.setdefault("apiVersion", RESOURCES[self._resource].api_version)
            present.add(Cache._key(self._resource, item))
            self._deliver("ADDED", item)
        for key in set(self._cache.keys(self._resource)) - present:
            gone = self._cache.get(*key)
            if gone is not None:
                self._deliver("DELETED", gone)
        return listed["metadata"]["resourceVersion"]

    def _deliver(self, kind: str, obj: dict) -> None:
        if kind == "DELETED":
            self._cache.remove(self._resource, obj)
        else:
            self._cache.put(self._resource, obj)
        self._out.put((self._resource, kind, obj))


# ----------------------------------------------------------------------------- nodes


class NodeAgent(threading.Thread):
    """Registers the Nodes and keeps their Leases fresh, as each node's kubelet would."""

    def __init__(
        self,
        rest: Rest,
        nodes: tuple[str, ...],
        kubelet_port: int,
        stop: threading.Event,
        log,
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(name="node-agent", daemon=True)
        self._rest, self._nodes, self._port = rest, nodes, kubelet_port
        self._stop, self._log = stop, log
        self._labels = labels or {}

    def register(self) -> None:
        for name in self._nodes:
            self._register(name)
            self._renew(name)

    def run(self) -> None:
        while not self._stop.wait(LEASE_RENEW):
            for name in self._nodes:
                try:
                    self._renew(name)
                except Exception as error:  # the API server may be restarting
                    self._log(f"lease {name}: {type(error).__name__}: {error}")

    def _register(self, name: str) -> None:
        nodes = RESOURCES["nodes"]
        # The labels the simulation schedules by, so the real DaemonSet controller agrees.
        labels = node_labels(name, self._labels)
        try:
            self._rest.post(
                nodes.path(),
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}},
            )
        except RestError as error:
            if error.status != 409:
                raise
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        conditions = [
            (kind, "False", reason, message)
            for kind, reason, message in (
                (
                    "MemoryPressure",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ] + [("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
        status = {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
                for t, s, r, m in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self._port}},
            "nodeInfo": {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": "6.8.0",
                "osImage": "fake-kubelet",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://2.1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
            },
        }
        self._rest.patch(nodes.path(None, name, "status"), {"status": status}, "merge")

    def _renew(self, name: str) -> None:
        leases = RESOURCES["leases"]
        now = micro_time(time.time())
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_DURATION,
                "renewTime": now,
            },
        }
        try:
            self._rest.patch(leases.path("kube-node-lease", name), {"spec": lease["spec"]}, "merge")
        except RestError as error:
            if error.status != 404:
                raise
            self._rest.post(leases.path("kube-node-lease"), lease)


# ----------------------------------------------------------------------------- logs


def read_container_log(
    cache: Cache, logs: LogBook, namespace: str, pod_name: str, container: str, query: dict
) -> tuple[int, str]:
    """(HTTP status, body) as the kubelet's getContainerLogs answers."""
    pod = cache.get("pods", namespace, pod_name)
    if pod is None or not (pod.get("spec") or {}).get("nodeName"):
        return 404, f'pod "{pod_name}" does not exist'
    spec = pod.get("spec") or {}
    names = [c["name"] for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
    if container not in names:
        return 404, f'container "{container}" not found in pod "{pod_name}"'
    status = pod.get("status") or {}
    statuses = {
        s.get("name"): s
        for s in (status.get("initContainerStatuses") or [])
        + (status.get("containerStatuses") or [])
    }
    previous = (query.get("previous") or ["false"])[0] == "true"
    try:
        cid = log_container_id(container, pod_name, statuses.get(container), previous)
    except LogError as error:
        return 400, error.message
    tail = query.get("tailLines")
    text = logs.read(
        _uid(pod) or "",
        container,
        cid,
        int(tail[0]) if tail else None,
        (query.get("timestamps") or ["false"])[0] == "true",
    )
    return 200, text


class LogServer:
    """The kubelet's `/containerLogs` endpoint over HTTPS, for the API server's log proxy."""

    def __init__(self, logs: LogBook, cache: Cache, cert: str, key: str, ca: str) -> None:
        self._logs, self._cache = logs, cache
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED  # only the API server (its kubelet-client cert)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]

    def serve(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="kubelet-api", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def read(self, namespace: str, pod_name: str, container: str, query: dict) -> tuple[int, str]:
        return read_container_log(self._cache, self._logs, namespace, pod_name, container, query)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.strip("/").split("/")]
                if len(parts) == 4 and parts[0] == "containerLogs":
                    code, body = server.read(parts[1], parts[2], parts[3], parse_qs(url.query))
                else:
                    code, body = 404, "404 page not found"
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


# ----------------------------------------------------------------------------- the loop


class FakeKubelet:
    """Runs the shared Kubelet against the API server until stopped."""

    def __init__(self, config: dict, log=None) -> None:
        self._log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        names = {f.name for f in fields(SimConfig)}
        settings = {k: v for k, v in (config.get("sim") or {}).items() if k in names}
        if "nodes" in settings:
            settings["nodes"] = tuple(settings["nodes"])
        self.sim_config = SimConfig(**settings)
        self.rest = Rest(
            config["server"],
            ca_file=config["ca"],
            cert_file=config["cert"],
            key_file=config["key"],
            user_agent=f"kubelet/{KUBELET_VERSION}",  # a kubelet's field manager: "kubelet"
        )
        self.cache = Cache()
        self.store = ApiStore(self.rest, self.cache, time.time, self._log)
        self.recorder = EventRecorder(self.store, time.time)
        self.logs = LogBook()
        self._timers: list[tuple[float, str]] = []
        self.kubelet = Kubelet(
            self.store,  # type: ignore[arg-type]  # Store-shaped
            self.recorder,
            time.time,
            self._schedule,
            self.sim_config,
            self._behaviour_for,
            self.logs,
        )
        self._events: queue.Queue = queue.Queue()
        serving = config["serving"]
        self.log_server = LogServer(
            self.logs, self.cache, serving["cert"], serving["key"], config["ca"]
        )
        self.nodes = NodeAgent(
            self.rest,
            self.sim_config.nodes,
            self.log_server.port,
            self.stop_event,
            self._log,
            self.sim_config.node_labels,
        )
        self._informers = [
            Informer(self.rest, resource, self.cache, self._events, self.stop_event, self._log)
            for resource in ("pods", "secrets", "configmaps")
        ]

    def start(self) -> None:
        """Serve logs, register Nodes, sync the informers; then `run()` does the work."""
        self.log_server.serve()
        self.nodes.register()
        self.nodes.start()
        for informer in self._informers:
            informer.start()
        for informer in self._informers:
            informer.synced.wait(30)

    def run(self) -> None:
        while not self.stop_event.is_set():
            timeout = 1.0
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - time.time()))
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                item = None
            try:
                self._step(item)
            except Exception:
                error = traceback.format_exc()
                self.errors.append(error)
                self._log("ERROR in the fake kubelet:\n" + error)

    def _step(self, first: Any) -> None:
        items = [first] if first is not None else []
        while True:
            try:
                items.append(self._events.get_nowait())
            except queue.Empty:
                break
        for resource, kind, obj in items:
            self.kubelet.observe(WatchEvent(kind, resource, obj, _rv(obj)))
        now = time.time()
        while self._timers and self._timers[0][0] <= now:
            _due, uid = heapq.heappop(self._timers)
            self.kubelet.on_timer(uid)
        self.kubelet.sync_due()

    def _schedule(self, key: tuple, due: float) -> None:
        heapq.heappush(self._timers, (due, key[1]))

    def _behaviour_for(self, pod: dict, resource_version: int) -> Behaviour:
        """What the simulation does: a `set_behaviour` override for the Pod's Deployment made
        before the Pod was created, else the Pod's `sim.restart-backend.dev/*` annotations,
        else healthy."""
        try:
            override = self._override(pod, resource_version)
            annotations = pod["metadata"].get("annotations")
            return override or behaviour_from_annotations(annotations) or Behaviour.healthy()
        except ValueError as error:  # a typo in a test's annotation: say so where it shows
            self.recorder.record(
                pod, "Warning", "InvalidSimBehaviour", str(error), component="simulation"
            )
            return Behaviour.healthy()

    def _override(self, pod: dict, resource_version: int) -> Behaviour | None:
        """RealCluster.set_behaviour writes a ConfigMap per workload; read live (not from the
        informer's cache, which may lag behind the Pod's watch)."""
        workload = workload_of(pod)
        if workload is None:
            return None
        path = RESOURCES["configmaps"].path(
            pod["metadata"]["namespace"], behaviour_configmap(*workload)
        )
        try:
            configmap = self.rest.get(path)
        except RestError as error:
            if error.status == 404:
                return None
            raise
        if _rv(configmap) >= resource_version:  # set after this Pod was created
            return None
        annotations = json.loads((configmap.get("data") or {}).get("annotations") or "{}")
        return behaviour_from_annotations(annotations)


def main(argv: list[str] | None = None) -> int:
    import signal

    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    kubelet = FakeKubelet(config)
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stop_event.set())
    kubelet.start()
    print("fake kubelet ready", flush=True)
    kubelet.run()
    kubelet.log_server.close()
    return 1 if kubelet.errors else 0


if __name__ == "__main__":
    sys.exit(main())
