"""The scheduler and kubelet, simulated: what happens to a Pod after it is created.

Each Pod gets a small runtime record (its node, its containers' states, pending actions with
due times). A Pod is bound to a node, its sandbox is created (ContainerCreating), images are
pulled, containers are created and started, and readiness passes; or, as its `Behaviour` says,
containers crash into CrashLoopBackOff, images never arrive, readiness never passes, or no node
fits. CreateContainerConfigError is not a behaviour: it is decided from the Pod spec and the
Secrets/ConfigMaps in the store, as the real kubelet decides it.

The status written is built from the runtime record each time (`render_status`), in the shape
the kubelet reports it; Events use the kubelet's wording. Container output is kept per
container instance so the API server can serve `/log` (current and `previous`).

A running container also answers the HTTP requests the API server proxies to it
(`answer_http`): what it answers, and how slowly, is its behaviour's (behaviours.py).

Deliberately not simulated: volumes (and FailedMount), startup/liveness probes, resource
accounting on nodes, restartPolicy other than Always, pod IP reuse.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from . import behaviours as bh
from .behaviours import Behaviour, image_pull_fails
from .events import NORMAL, WARNING, EventRecorder
from .scheduling import affinity_mismatch_message, feasible_nodes
from .store import NotFound, Store, WatchEvent, format_timestamp

if TYPE_CHECKING:
    from .simulation import SimConfig

__all__ = [
    "HttpAnswer",
    "Kubelet",
    "LogBook",
    "LogError",
    "log_container_id",
    "container_config_error",
    "format_backoff",
    "normalize_image",
]

_MAX_BACKOFF = 300.0  # kubelet's MaxContainerBackOff: 5 minutes
_INITIAL_BACKOFF = 10.0
_HEALTHY_LOG = ("Starting {container} in pod {pod}", "Listening on :8080")


# ----------------------------------------------------------------------------- pure helpers


def format_backoff(seconds: float) -> str:
    """A back-off as Go prints a time.Duration: 10s, 1m20s, 5m0s."""
    whole = int(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def normalize_image(image: str) -> str:
    """The fully qualified reference containerd reports: nginx:1 -> docker.io/library/nginx:1."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def container_config_error(
    container: dict, namespace: str, lookup: Callable[[str, str], dict | None]
) -> tuple | None:
    """Why the kubelet cannot build this container's environment, as (message, resource,
    name), or None. `lookup(resource, name)` reads a Secret/ConfigMap in the namespace.

    Follows kubelet's makeEnvironmentVariables: envFrom first, then env; optional references
    to missing objects or keys are skipped."""
    for source in container.get("envFrom") or []:
        for ref_field, resource, word in (
            ("secretRef", "secrets", "secret"),
            ("configMapRef", "configmaps", "configmap"),
        ):
            ref = source.get(ref_field)
            if ref and not ref.get("optional") and lookup(resource, ref.get("name", "")) is None:
                return f'{word} "{ref.get("name", "")}" not found', resource, ref.get("name", "")
    for env in container.get("env") or []:
        value_from = env.get("valueFrom") or {}
        for ref_field, resource, word, kind in (
            ("secretKeyRef", "secrets", "secret", "Secret"),
            ("configMapKeyRef", "configmaps", "configmap", "ConfigMap"),
        ):
            ref = value_from.get(ref_field)
            if not ref or ref.get("optional"):
                continue
            name, key = ref.get("name", ""), ref.get("key", "")
            obj = lookup(resource, name)
            if obj is None:
                return f'{word} "{name}" not found', resource, name
            keys = {
                *(obj.get("data") or {}),
                *(obj.get("stringData") or {}),
                *(obj.get("binaryData") or {}),
            }
            if key not in keys:
                return f"couldn't find key {key} in {kind} {namespace}/{name}", resource, name
    return None


# ----------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class HttpAnswer:
    """What a container answers one proxied HTTP request: status, body and how long it takes
    (seconds of the simulation's clock, the behaviour's kubelet seconds scaled)."""

    status: int
    body: str
    delay: float = 0.0


# ----------------------------------------------------------------------------- logs


class LogError(LookupError):
    """A /log request the API server refuses; `code` is the HTTP status (400 or 404)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LogBook:
    """Container output per Pod uid and container instance (container ID); thread-safe (the
    API server reads while the simulation writes). The last few instances of each container
    are kept, as the kubelet keeps the exited containers `--previous` needs."""

    def __init__(self, max_lines: int = 1000, keep_instances: int = 3) -> None:
        self._lock = threading.Lock()
        self._max_lines = max_lines
        self._keep = keep_instances
        # uid -> container name -> [(container ID, [(time, line)])], oldest first
        self._logs: dict[str, dict[str, list[tuple[str, list[tuple[float, str]]]]]] = {}

    def start_instance(
        self, uid: str, container: str, container_id: str, lines: list[str], now: float
    ) -> None:
        with self._lock:
            instances = self._logs.setdefault(uid, {}).setdefault(container, [])
            instances.append((container_id, [(now, line) for line in lines][-self._max_lines :]))
            del instances[: -self._keep]

    def drop(self, uid: str) -> None:
        with self._lock:
            self._logs.pop(uid, None)

    def read(
        self, uid: str, container: str, container_id: str, tail_lines: int | None, timestamps: bool
    ) -> str:
        """The text of one container instance ("" if it printed nothing or is forgotten)."""
        with self._lock:
            lines: list[tuple[float, str]] = []
            for cid, instance_lines in self._logs.get(uid, {}).get(container, []):
                if cid == container_id:
                    lines = list(instance_lines)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        out = []
        for when, line in lines:
            prefix = ""
            if timestamps:
                nanos = int(round((when % 1) * 1e9)) % 1_000_000_000
                prefix = f"{format_timestamp(when)[:-1]}.{nanos:09d}Z "
            out.append(prefix + line + "\n")
        return "".join(out)


def log_container_id(name: str, pod_name: str, status: dict | None, previous: bool) -> str:
    """Which container instance a /log request reads, from the container's status, as the
    kubelet's validateContainerLogStatus picks it; LogError when there is none."""
    status = status or {}
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    if previous:
        if not last.get("containerID"):
            raise LogError(f'previous terminated container "{name}" in pod "{pod_name}" not found')
        return last["containerID"]
    if "running" in state:
        return status.get("containerID") or ""
    if "terminated" in state:
        cid = state["terminated"].get("containerID") or last.get("containerID")
        if not cid:
            raise LogError(f'container "{name}" in pod "{pod_name}" is terminated')
        return cid
    if last:
        if not last.get("containerID"):
            raise LogError(f'container "{name}" in pod "{pod_name}" is terminated')
        return last["containerID"]
    reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
    explanation = {
        "ErrImagePull": "image can't be pulled",
        "ImagePullBackOff": "trying and failing to pull image",
    }.get(reason, reason)
    raise LogError(f'container "{name}" in pod "{pod_name}" is waiting to start: {explanation}')


# ----------------------------------------------------------------------------- runtime state


@dataclass
class ContainerRuntime:
    """One container of a simulated Pod; `next_action` runs at `next_at`."""

    name: str
    image: str
    pull_policy: str
    init: bool
    misbehaves: bool
    state: str = "waiting"  # waiting | running | terminated
    reason: str | None = "ContainerCreating"  # waiting or terminated reason
    message: str | None = None
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    container_id: str | None = None
    last_terminated: dict | None = None
    restart_count: int = 0
    ready: bool = False
    image_id: str = ""
    crash_backoff: float = 0.0  # the kubelet's current restart back-off (kubelet seconds)
    pull_backoff: float = 0.0  # the kubelet's current image back-off (kubelet seconds)
    pull_retry_at: float = 0.0  # when the image back-off lets the next pull start
    pull_error: str | None = None  # the last failed pull's message (shown during back-off)
    # how many more times this container fails (exits, or fails a pull) before it works, as
    # its behaviour says; None: for ever. Only counted for the misbehaving container.
    failures_left: int | None = None
    next_at: float | None = None
    next_action: str | None = None

    def plan(self, action: str | None, at: float | None) -> None:
        self.next_action, self.next_at = action, at

    def terminated_state(self) -> dict:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": format_timestamp(self.started_at or 0),
            "finishedAt": format_timestamp(self.finished_at or 0),
            "containerID": self.container_id,
        }


@dataclass
class PodRuntime:
    """A Pod as the scheduler and kubelet see it."""

    uid: str
    namespace: str
    name: str
    behaviour: Behaviour
    containers: list[ContainerRuntime]
    node: str | None = None
    host_ip: str | None = None
    pod_ip: str | None = None
    start_time: float | None = None
    unschedulable: bool = False
    scheduling_message: str | None = None
    sandbox_ready: bool = False
    terminating: bool = False
    next_at: float | None = None
    next_action: str | None = None  # schedule | sandbox | kill | remove
    transitions: dict[str, tuple[str, float]] = field(default_factory=dict)

    def plan(self, action: str | None, at: float | None) -> None:
        self.next_action, self.next_at = action, at

    @property
    def init_containers(self) -> list[ContainerRuntime]:
        return [c for c in self.containers if c.init]

    @property
    def app_containers(self) -> list[ContainerRuntime]:
        return [c for c in self.containers if not c.init]

    def initialized(self) -> bool:
        return all(c.state == "terminated" and c.exit_code == 0 for c in self.init_containers)

    def next_due(self) -> float | None:
        times = [t for t in [self.next_at, *(c.next_at for c in self.containers)] if t is not None]
        return min(times) if times else None


def _container_runtimes(pod: dict, behaviour: Behaviour) -> list[ContainerRuntime]:
    spec = pod.get("spec") or {}
    init = spec.get("initContainers") or []
    app = spec.get("containers") or []
    target = behaviour.container or (app[0]["name"] if app else None)
    result = []
    for is_init, containers in ((True, init), (False, app)):
        for c in containers:
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1]
            default_policy = (
                "Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent"
            )
            result.append(
                ContainerRuntime(
                    name=c["name"],
                    image=image,
                    pull_policy=c.get("imagePullPolicy") or default_policy,
                    init=is_init,
                    misbehaves=behaviour.kind != bh.HEALTHY and c["name"] == target,
                    failures_left=behaviour.failures,
                    reason="PodInitializing" if (init and not is_init) else "ContainerCreating",
                )
            )
    return result


# ----------------------------------------------------------------------------- status


def _condition(
    kind: str,
    ok: bool,
    pod: PodRuntime,
    now: float,
    reason: str | None = None,
    message: str | None = None,
) -> dict:
    state = "True" if ok else "False"
    previous = pod.transitions.get(kind)
    if previous is None or previous[0] != state:
        pod.transitions[kind] = (state, now)
    condition = {
        "type": kind,
        "status": state,
        "lastProbeTime": None,
        "lastTransitionTime": format_timestamp(pod.transitions[kind][1]),
    }
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def _container_status(c: ContainerRuntime) -> dict:
    if c.state == "running":
        state: dict = {"running": {"startedAt": format_timestamp(c.started_at or 0)}}
    elif c.state == "terminated":
        state = {"terminated": c.terminated_state()}
    else:
        waiting = {"reason": c.reason}
        if c.message:
            waiting["message"] = c.message
        state = {"waiting": waiting}
    status = {
        "name": c.name,
        "state": state,
        "lastState": {"terminated": dict(c.last_terminated)} if c.last_terminated else {},
        "ready": c.ready,
        "restartCount": c.restart_count,
        "image": normalize_image(c.image) if c.image_id else c.image,
        "imageID": c.image_id,
        "started": c.state == "running",
    }
    if c.container_id:
        status["containerID"] = c.container_id
    return status


def _phase(pod: PodRuntime) -> str:
    """kubelet getPhase for restartPolicy Always."""
    if not pod.node or not pod.initialized():
        return "Pending"
    for c in pod.app_containers:
        if c.state == "waiting" and c.last_terminated is None:
            return "Pending"
    return "Running"


def render_status(pod: PodRuntime, base: dict, now: float) -> dict:
    """The Pod status the kubelet (or scheduler) would report now."""
    status = {k: v for k, v in base.items() if k in ("qosClass",)}
    status["phase"] = _phase(pod)
    if pod.unschedulable or not pod.node:
        if pod.unschedulable:
            status["conditions"] = [
                _condition("PodScheduled", False, pod, now, "Unschedulable", pod.scheduling_message)
            ]
        return status
    unready = [c.name for c in pod.app_containers if not c.ready]
    incomplete = [
        c.name for c in pod.init_containers if c.exit_code != 0 or c.state != "terminated"
    ]
    not_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    status["conditions"] = [
        _condition("PodReadyToStartContainers", pod.sandbox_ready, pod, now),
        _condition(
            "Initialized",
            not incomplete,
            pod,
            now,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("Ready", not unready, pod, now, "ContainersNotReady", not_ready_message),
        _condition(
            "ContainersReady", not unready, pod, now, "ContainersNotReady", not_ready_message
        ),
        _condition("PodScheduled", True, pod, now),
    ]
    status["hostIP"] = pod.host_ip
    status["hostIPs"] = [{"ip": pod.host_ip}]
    if pod.pod_ip:
        status["podIP"] = pod.pod_ip
        status["podIPs"] = [{"ip": pod.pod_ip}]
    status["startTime"] = format_timestamp(pod.start_time or now)
    if pod.init_containers:
        status["initContainerStatuses"] = [_container_status(c) for c in pod.init_containers]
    status["containerStatuses"] = [_container_status(c) for c in pod.app_containers]
    return status


# ----------------------------------------------------------------------------- the kubelet


class Kubelet:
    """Scheduler plus kubelet for every Pod in the store."""

    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[tuple, float], None],
        config: SimConfig,
        behaviour_for: Callable[[dict, int], Behaviour],
        logs: LogBook,
        needed: Callable[[str, str, str], None] = lambda namespace, resource, name: None,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._schedule = schedule
        self._config = config
        self._behaviour_for = behaviour_for
        self.logs = logs
        self._needed = needed  # told which Secret/ConfigMap a container found missing
        self._pods: dict[str, PodRuntime] = {}
        self._node_pods: dict[str, int] = {node: 0 for node in config.nodes}
        self._node_images: dict[str, set[str]] = {node: set() for node in config.nodes}
        self._ip_counter = itertools.count(2)
        self._id_counter = itertools.count(1)
        self._config_waiters: dict[tuple[str, str, str], set[str]] = {}
        self.due: set[str] = set()

    # -- wiring

    def observe(self, event: WatchEvent) -> None:
        """Track Pods; wake Pods waiting for a Secret/ConfigMap that appeared."""
        if event.resource in ("secrets", "configmaps") and event.type != "DELETED":
            meta = event.obj["metadata"]
            waiters = self._config_waiters.pop(
                (meta.get("namespace") or "", event.resource, meta["name"]), set()
            )
            self.due.update(uid for uid in waiters if uid in self._pods)
            return
        if event.resource != "pods":
            return
        meta = event.obj["metadata"]
        uid = meta.get("uid")
        if event.type == "DELETED":
            self._forget(uid)
            return
        runtime = self._pods.get(uid)
        if runtime is None:
            self._admit(event.obj, event.resource_version)
        elif meta.get("deletionTimestamp") and not runtime.terminating:
            self.due.add(uid)

    def on_timer(self, uid: str) -> None:
        if uid in self._pods:
            self.due.add(uid)

    def sync_due(self) -> int:
        """Advance every Pod with something due; returns how many."""
        uids, self.due = self.due, set()
        for uid in sorted(uids):
            runtime = self._pods.get(uid)
            if runtime is None:
                continue
            with self._store.lock:  # API requests cannot change the Pod under our feet
                try:
                    self._advance(runtime)
                except NotFound:  # deleted meanwhile: its DELETED event cleans up
                    pass
        return len(uids)

    def delete_pod(self, pod: dict) -> None:
        """A graceful delete as the API server does it: an unscheduled Pod goes at once, a
        scheduled one gets deletionTimestamp (now + grace period) and the kubelet stops it."""
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            self._store.delete("pods", meta.get("namespace"), meta["name"])
            return
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        copy = dict(pod)
        copy["metadata"] = {
            **meta,
            "deletionTimestamp": format_timestamp(self._clock() + grace),
            "deletionGracePeriodSeconds": grace,
        }
        self._store.update("pods", copy)

    # -- admission and bookkeeping

    def _admit(self, pod: dict, resource_version: int) -> None:
        meta = pod["metadata"]
        behaviour = self._behaviour_for(pod, resource_version)
        runtime = PodRuntime(
            uid=meta["uid"],
            namespace=meta.get("namespace") or "",
            name=meta["name"],
            behaviour=behaviour,
            containers=_container_runtimes(pod, behaviour),
        )
        self._pods[runtime.uid] = runtime
        now = self._clock()
        node = (pod.get("spec") or {}).get("nodeName")
        if meta.get("deletionTimestamp"):
            runtime.node = node
            runtime.plan("kill", now)
        elif node:
            self._adopt(runtime, pod, node, now)
        else:
            runtime.plan("schedule", now + self._config.schedule_delay)
        self._reschedule(runtime)

    def _adopt(self, runtime: PodRuntime, pod: dict, node: str, now: float) -> None:
        """A Pod already bound (created with nodeName, or found at start-up): run it there."""
        self._bind_locally(runtime, node, now)
        ready = {
            s.get("name"): s
            for s in (pod.get("status") or {}).get("containerStatuses") or []
            if s.get("ready")
        }
        app = runtime.app_containers
        if app and all(c.name in ready for c in app):
            runtime.sandbox_ready = True
            runtime.pod_ip = (pod.get("status") or {}).get("podIP") or self._next_ip(node)
            for c in runtime.containers:
                c.state, c.reason = ("running", None) if not c.init else ("terminated", "Completed")
                c.exit_code = None if not c.init else 0
                c.ready = True
                c.started_at = c.finished_at = now
                c.container_id = self._new_container_id()
                c.image_id = self._image_id(c.image)
                c.restart_count = int((ready.get(c.name) or {}).get("restartCount") or 0)
                if not c.init:
                    self._log_start(runtime, c, now)
            return
        runtime.plan("sandbox", now + self._config.sandbox_delay)

    def _forget(self, uid: str | None) -> None:
        runtime = self._pods.pop(uid, None) if uid else None
        if runtime is None:
            return
        if runtime.node in self._node_pods:
            self._node_pods[runtime.node] -= 1
        self.logs.drop(runtime.uid)

    def _reschedule(self, runtime: PodRuntime) -> None:
        due = runtime.next_due()
        if due is not None:
            self._schedule(("pod", runtime.uid), due)

    # -- the state machine

    def _advance(self, runtime: PodRuntime) -> None:
        now = self._clock()
        shared = self._store.get_shared("pods", runtime.namespace, runtime.name)
        if shared is None or shared["metadata"].get("uid") != runtime.uid:
            return
        if shared["metadata"].get("deletionTimestamp") and not runtime.terminating:
            runtime.plan("kill", now)
        for _ in range(100):  # actions may chain with no delay; bounded for safety
            if runtime.next_at is not None and runtime.next_at <= now:
                action = runtime.next_action
                runtime.plan(None, None)
                getattr(self, f"_pod_{action}")(runtime, now)
                continue
            due = [c for c in runtime.containers if c.next_at is not None and c.next_at <= now]
            if not due:
                break
            for c in due:
                action = c.next_action
                c.plan(None, None)
                getattr(self, f"_container_{action}")(runtime, c, now)
        if runtime.uid not in self._pods:
            return
        self._write_status(runtime, now)
        self._reschedule(runtime)

    def _write_status(self, runtime: PodRuntime, now: float) -> None:
        shared = self._store.get_shared("pods", runtime.namespace, runtime.name)
        if shared is None or shared["metadata"].get("uid") != runtime.uid:
            return
        status = render_status(runtime, shared.get("status") or {}, now)
        if status != shared.get("status"):
            copy = dict(shared)
            copy["status"] = status
            self._store.update_status("pods", copy)

    # pod-level actions

    def _pod_schedule(self, runtime: PodRuntime, now: float) -> None:
        pod = self._pod(runtime)
        nodes = feasible_nodes(pod.get("spec") or {}, self._config.nodes, self._config.node_labels)
        if runtime.behaviour.kind == bh.UNSCHEDULABLE or not nodes:
            count = len(self._config.nodes)
            message = runtime.behaviour.scheduling_message or (
                f"0/{count} nodes are available: {count} Insufficient cpu."
                if nodes
                else affinity_mismatch_message(count)
            )
            runtime.unschedulable = True
            runtime.scheduling_message = message
            self._recorder.record(
                pod, WARNING, "FailedScheduling", message, component="default-scheduler"
            )
            return
        node = min(nodes, key=lambda n: self._node_pods[n])
        copy = dict(pod)
        copy["spec"] = {**(pod.get("spec") or {}), "nodeName": node}
        pod = self._store.update("pods", copy)
        self._recorder.record(
            pod,
            NORMAL,
            "Scheduled",
            f"Successfully assigned {runtime.namespace}/{runtime.name} to {node}",
            component="default-scheduler",
        )
        self._bind_locally(runtime, node, now)
        runtime.plan("sandbox", now + self._config.sandbox_delay)

    def _bind_locally(self, runtime: PodRuntime, node: str, now: float) -> None:
        if node not in self._node_pods:
            self._node_pods[node] = 0
            self._node_images[node] = set()
        runtime.node = node
        self._node_pods[node] += 1
        index = sorted(self._node_pods).index(node) + 1
        runtime.host_ip = f"192.168.49.{index + 1}"
        runtime.start_time = now

    def _pod_sandbox(self, runtime: PodRuntime, now: float) -> None:
        runtime.sandbox_ready = True
        runtime.pod_ip = self._next_ip(runtime.node or "")
        self._start_next(runtime, now)

    def _start_next(self, runtime: PodRuntime, now: float) -> None:
        """Start the next init container, or all app containers once init is done."""
        delay = runtime.behaviour.start_delay
        at = now + (self._config.start_delay if delay is None else delay)
        for c in runtime.init_containers:
            if c.state == "terminated" and c.exit_code == 0:
                continue
            if c.next_action is None and c.state == "waiting" and c.container_id is None:
                c.plan("pull", at)
            return
        for c in runtime.app_containers:
            if c.state == "waiting" and c.container_id is None and c.next_action is None:
                c.reason = "ContainerCreating"
                c.plan("pull", at)

    def _pod_kill(self, runtime: PodRuntime, now: float) -> None:
        runtime.terminating = True
        pod = self._pod(runtime)
        for c in runtime.containers:
            c.plan(None, None)
            if c.state == "running":
                self._container_event(
                    runtime, pod, c, NORMAL, "Killing", f"Stopping container {c.name}"
                )
        runtime.plan("remove", now + self._config.termination_delay)

    def _pod_remove(self, runtime: PodRuntime, now: float) -> None:
        self._store.delete("pods", runtime.namespace, runtime.name)
        self._forget(runtime.uid)

    # container actions

    def _container_pull(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        pod = self._pod(runtime)
        images = self._node_images.setdefault(runtime.node or "", set())
        error = self._pull_error(runtime, c)
        if error is None and c.pull_policy != "Always" and c.image in images:
            self._container_event(
                runtime,
                pod,
                c,
                NORMAL,
                "Pulled",
                f'Container image "{c.image}" already present on machine',
            )
            self._container_create(runtime, c, now)
            return
        self._container_event(runtime, pod, c, NORMAL, "Pulling", f'Pulling image "{c.image}"')
        if error is None:
            c.plan("pulled", now + self._config.pull_delay)
            return
        # image_manager.go: a failed pull is an event, ErrImagePull with the runtime's words,
        # and the next step of the image back-off (10 s, doubling, 5 m at most) from now.
        self._container_event(
            runtime, pod, c, WARNING, "Failed", f'Failed to pull image "{c.image}": {error}'
        )
        self._container_event(runtime, pod, c, WARNING, "Failed", "Error: ErrImagePull")
        c.state, c.reason, c.message = "waiting", "ErrImagePull", error
        c.pull_error = error
        c.pull_backoff = (
            min(c.pull_backoff * 2, _MAX_BACKOFF) if c.pull_backoff else _INITIAL_BACKOFF
        )
        c.pull_retry_at = now + c.pull_backoff * self._config.time_scale
        if c.misbehaves and c.failures_left:
            c.failures_left -= 1
        c.plan("pull_backoff", min(now + self._config.pull_error_delay, c.pull_retry_at))

    def _pull_error(self, runtime: PodRuntime, c: ContainerRuntime) -> str | None:
        """What the registry answers this pull, or None when the pull succeeds."""
        if image_pull_fails(c.image):
            return bh.pull_error_message("not_found", normalize_image(c.image))
        if self._kind(runtime, c) == bh.IMAGE_PULL_BACKOFF:
            return bh.pull_error_message(runtime.behaviour.pull_error, normalize_image(c.image))
        return None

    def _container_pulled(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        pod = self._pod(runtime)
        self._node_images.setdefault(runtime.node or "", set()).add(c.image)
        took = self._config.pull_delay
        size = int(_digest(c.image)[:6], 16) * 16 + 1_000_000
        self._container_event(
            runtime,
            pod,
            c,
            NORMAL,
            "Pulled",
            f'Successfully pulled image "{c.image}" in {took * 1000:.0f}ms '
            f"({took * 1000:.0f}ms including waiting). Image size: {size} bytes.",
        )
        self._container_create(runtime, c, now)

    def _container_pull_backoff(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        """Waiting out the image back-off: the status carries the last pull's error (kubelet
        1.33+: "Back-off pulling image "x": ErrImagePull: <error>"), the event does not."""
        pod = self._pod(runtime)
        message = f'Back-off pulling image "{c.image}"'
        self._container_event(runtime, pod, c, NORMAL, "BackOff", message)
        self._container_event(runtime, pod, c, WARNING, "Failed", "Error: ImagePullBackOff")
        detail = f"{message}: ErrImagePull: {c.pull_error}" if c.pull_error else message
        c.state, c.reason, c.message = "waiting", "ImagePullBackOff", detail
        c.plan("pull", max(now, c.pull_retry_at))

    def _container_create(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        pod = self._pod(runtime)
        spec = self._container_spec(pod, c)
        c.image_id = self._image_id(c.image)

        def lookup(resource: str, name: str) -> dict | None:
            return self._store.get_shared(resource, runtime.namespace, name)

        problem = container_config_error(spec, runtime.namespace, lookup)
        if problem:
            message, resource, name = problem
            self._container_event(runtime, pod, c, WARNING, "Failed", f"Error: {message}")
            c.state, c.reason, c.message = "waiting", "CreateContainerConfigError", message
            self._config_waiters.setdefault((runtime.namespace, resource, name), set()).add(
                runtime.uid
            )
            self._needed(runtime.namespace, resource, name)
            c.plan("create", now + self._config.config_retry)
            return
        self._container_event(runtime, pod, c, NORMAL, "Created", f"Created container: {c.name}")
        self._container_event(runtime, pod, c, NORMAL, "Started", f"Started container {c.name}")
        c.state, c.reason, c.message, c.exit_code = "running", None, None, None
        c.started_at, c.finished_at = now, None
        c.container_id = self._new_container_id()
        c.ready = False
        self._log_start(runtime, c, now)
        self._after_start(runtime, c, now)

    def _after_start(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        """What a freshly started container does next, by behaviour."""
        kind = self._kind(runtime, c)
        if kind in (bh.CRASH_LOOP, bh.OOM_KILLED):
            run = runtime.behaviour.run_seconds
            c.plan("exit", now + (self._config.crash_after if run is None else run))
        elif c.init:
            c.plan("exit", now + self._config.init_run)
        elif kind == bh.NEVER_READY and self._still_unready(runtime, c, now):
            c.plan("probe_failed", now + self._config.probe_period)
        else:
            delay = runtime.behaviour.ready_delay
            c.plan("ready", now + (self._config.ready_delay if delay is None else delay))

    def _unready_until(self, runtime: PodRuntime, c: ContainerRuntime) -> float | None:
        """When a slow warm-up's readiness starts to pass (None: never)."""
        unready_for = runtime.behaviour.unready_for
        if unready_for is None:
            return None
        return (c.started_at or 0.0) + unready_for * self._config.time_scale

    def _still_unready(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> bool:
        until = self._unready_until(runtime, c)
        return until is None or now < until

    def _container_ready(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        c.ready = True
        if self._kind(runtime, c) == bh.CRASH_AFTER_READY:
            after = runtime.behaviour.crash_after or 0.0
            c.plan("exit", now + after * self._config.time_scale)

    def _container_probe_failed(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        if not self._still_unready(runtime, c, now):
            c.ready = True
            return
        until = self._unready_until(runtime, c)
        self._container_event(
            runtime,
            self._pod(runtime),
            c,
            WARNING,
            "Unhealthy",
            f"Readiness probe failed: {runtime.behaviour.probe_message}",
        )
        due = now + self._config.probe_period
        c.plan("probe_failed", due if until is None else min(due, until))

    def _container_exit(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        self._on_exit(runtime, c, now)

    def _on_exit(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        """A container's process ended: completed (init) or crashed (then restart/back off).

        The restart schedule is kuberuntime's doBackOff over client-go's flowcontrol.Backoff:
        the first crash has no back-off entry yet, so the container restarts at once (and
        the entry starts at 10 s); each later crash waits the current back-off counted from
        the moment it exited (CrashLoopBackOff), which then doubles, up to 5 minutes.
        """
        kind = self._kind(runtime, c)
        c.state, c.finished_at, c.ready = "terminated", now, False
        if kind == bh.HEALTHY and c.init:
            c.reason, c.exit_code, c.ready = "Completed", 0, True
            self._start_next(runtime, now)
            return
        oom = kind == bh.OOM_KILLED
        c.reason = "OOMKilled" if oom else "Error"
        c.exit_code = 137 if oom else runtime.behaviour.exit_code
        if c.misbehaves and c.failures_left:
            c.failures_left -= 1
        if not c.crash_backoff:
            c.crash_backoff = _INITIAL_BACKOFF
            c.plan("restart", now + self._config.restart_delay)
            return
        c.last_terminated = c.terminated_state()
        c.state, c.reason = "waiting", "CrashLoopBackOff"
        pod_ref = f"{runtime.name}_{runtime.namespace}({runtime.uid})"
        c.message = (
            f"back-off {format_backoff(c.crash_backoff)} restarting failed "
            f"container={c.name} pod={pod_ref}"
        )
        self._container_event(
            runtime,
            self._pod(runtime),
            c,
            WARNING,
            "BackOff",
            f"Back-off restarting failed container {c.name} in pod {pod_ref}",
        )
        c.plan("restart", now + c.crash_backoff * self._config.time_scale)
        c.crash_backoff = min(c.crash_backoff * 2, _MAX_BACKOFF)

    @staticmethod
    def _kind(runtime: PodRuntime, c: ContainerRuntime) -> str:
        """How this container behaves now: its pod's behaviour while it still misbehaves,
        healthy once it has used up its `failures` (a start-up race that healed)."""
        if not c.misbehaves or c.failures_left == 0:
            return bh.HEALTHY
        return runtime.behaviour.kind

    def _container_restart(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        if c.state == "terminated":
            c.last_terminated = c.terminated_state()
        c.restart_count += 1
        c.state, c.reason, c.message = "waiting", "ContainerCreating", None
        self._container_pull(runtime, c, now)

    # -- helpers

    def _pod(self, runtime: PodRuntime) -> dict:
        pod = self._store.get_shared("pods", runtime.namespace, runtime.name)
        return pod or {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": runtime.name, "namespace": runtime.namespace, "uid": runtime.uid},
        }

    @staticmethod
    def _container_spec(pod: dict, c: ContainerRuntime) -> dict:
        spec = pod.get("spec") or {}
        for container in (spec.get("initContainers") if c.init else spec.get("containers")) or []:
            if container.get("name") == c.name:
                return container
        return {}

    def _container_event(
        self,
        runtime: PodRuntime,
        pod: dict,
        c: ContainerRuntime,
        kind: str,
        reason: str,
        message: str,
    ) -> None:
        group = "initContainers" if c.init else "containers"
        self._recorder.record(
            pod,
            kind,
            reason,
            message,
            component="kubelet",
            host=runtime.node,
            field_path=f"spec.{group}{{{c.name}}}",
        )

    def _log_start(self, runtime: PodRuntime, c: ContainerRuntime, now: float) -> None:
        kind = self._kind(runtime, c)
        if kind in (bh.CRASH_LOOP, bh.OOM_KILLED, bh.CRASH_AFTER_READY):
            lines = list(runtime.behaviour.default_log())
        elif runtime.behaviour.log_lines is not None and kind == bh.HEALTHY and not c.init:
            lines = list(runtime.behaviour.log_lines)
        else:
            lines = [line.format(container=c.name, pod=runtime.name) for line in _HEALTHY_LOG]
        self.logs.start_instance(runtime.uid, c.name, c.container_id or "", lines, now)

    def _next_ip(self, node: str) -> str:
        index = sorted(self._node_pods).index(node) + 1 if node in self._node_pods else 9
        n = next(self._ip_counter)
        return f"10.244.{index}.{n % 250 + 2}" if n < 250 else f"10.{index}.{n // 250}.{n % 250}"

    def _new_container_id(self) -> str:
        return "containerd://" + _digest(f"container-{next(self._id_counter)}")

    @staticmethod
    def _image_id(image: str) -> str:
        ref = normalize_image(image)
        repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        return f"{repo}@sha256:{_digest(ref)}"

    # -- HTTP answers as the API server proxies them

    def answer_http(self, namespace: str, name: str, port: int) -> HttpAnswer | None:
        """What the pod's container listening on `port` answers a request now, or None when
        nothing listens (no such pod, or its container is not running: connection refused).

        The container that declares `port` answers (else the first app container, as a
        process may listen on a port it does not declare). A broken container answers its
        error while it still misbehaves, counting its `failures` down per answer.
        """
        with self._store.lock:
            pod = self._store.get_shared("pods", namespace, name)
            runtime = self._pods.get((pod or {}).get("metadata", {}).get("uid", ""))
            if runtime is None or not runtime.app_containers:
                return None
            spec = pod.get("spec") or {}
            declaring = {
                c.get("name")
                for c in spec.get("containers") or []
                if any(p.get("containerPort") == port for p in c.get("ports") or [])
            }
            c = next(
                (c for c in runtime.app_containers if c.name in declaring),
                runtime.app_containers[0],
            )
            if c.state != "running":
                return None
            misbehaving = self._kind(runtime, c) == bh.BROKEN
            if misbehaving and c.failures_left:
                c.failures_left -= 1
            status, body = runtime.behaviour.answer(misbehaving)
            delay = runtime.behaviour.answer_delay * self._config.time_scale
            return HttpAnswer(status, body, delay)

    # -- logs as the API server serves them

    def read_log(
        self,
        namespace: str,
        name: str,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """The text of a container's log; LogError with the API server's wording if none."""
        pod = self._store.get_shared("pods", namespace, name)
        if pod is None:
            raise LogError(f'pods "{name}" not found', 404)
        spec = pod.get("spec") or {}
        app = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        if container is None:
            if len(app) != 1:
                message = (
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(app)}]"
                )
                if init:
                    message += f" or one of the init containers: [{' '.join(init)}]"
                raise LogError(message)
            container = app[0]
        if container not in app and container not in init:
            raise LogError(f"container {container} is not valid for pod {name}")
        if not spec.get("nodeName"):
            raise LogError(f"pod {name} does not have a host assigned")
        status = pod.get("status") or {}
        statuses = {
            s.get("name"): s
            for s in [
                *(status.get("initContainerStatuses") or []),
                *(status.get("containerStatuses") or []),
            ]
        }
        cid = log_container_id(container, name, statuses.get(container), previous)
        return self.logs.read(
            pod["metadata"].get("uid", ""), container, cid, tail_lines, timestamps
        )
