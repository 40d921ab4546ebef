"""The simulated control plane: Deployment, ReplicaSet, StatefulSet and DaemonSet controllers,
scheduler and kubelet, stepped by whoever owns the clock.

`Simulation` subscribes to the store and queues every change; `step()` hands the changes to
the controllers (which mark the objects concerned dirty), fires the timers that are due, and
lets each part work through its dirty set, round after round, until nothing is left to do now.
It returns how long until the next timer, so a driver can sleep exactly that long (or, in a
test with a fake clock, jump there). Nothing ever scans all objects: work is proportional to
what changed, which is what lets 5,000 Deployments and 50,000 Pods run.

Every delay is in `SimConfig`; the defaults make a 3-replica rolling restart take about one
second of real time. The kubelet's back-off schedules (restarts and image pulls: 10 s,
doubling, capped at 5 minutes, the first restart immediate) keep their real shape, scaled by
the one knob `SimConfig.time_scale`. Kubernetes' own durations (minReadySeconds,
progressDeadlineSeconds, terminationGracePeriodSeconds in deletionTimestamp) are honoured as
written, in seconds.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from .behaviours import Behaviour, behaviour_from_annotations
from .controllers import DeploymentController, PodQuota, ReplicaSetController, controller_ref
from .daemonset_controller import DaemonSetController
from .events import EventRecorder
from .kubelet import HttpAnswer, Kubelet, LogBook, LogError
from .resources import workload_key
from .statefulset_controller import StatefulSetController
from .store import Store, WatchEvent

__all__ = ["Simulation", "SimConfig", "Behaviour", "LogError", "ManualClock", "run_until"]


@dataclass
class SimConfig:
    """Every delay of the simulation, in seconds of the clock the Simulation is given."""

    nodes: tuple[str, ...] = ("sim-node-1", "sim-node-2", "sim-node-3")
    schedule_delay: float = 0.02  # Pod created -> bound to a node (Scheduled)
    sandbox_delay: float = 0.03  # bound -> sandbox ready (ContainerCreating meanwhile)
    start_delay: float = 0.02  # sandbox ready -> image pull / container start
    pull_delay: float = 0.05  # pulling an image a node does not have yet
    ready_delay: float = 0.25  # container started -> readiness passes
    init_run: float = 0.03  # how long a healthy init container runs
    crash_after: float = 0.1  # how long a crashing container runs
    restart_delay: float = 0.02  # first restart after a crash: immediate, no back-off yet
    # The one time-scale knob: kubelet seconds (the restart and image back-offs, 10 s doubling
    # to 5 m; a behaviour's `unready_for`) times this. The schedule's shape and ratios stay
    # those of the real kubelet; 0.02 makes the 10 s back-off 0.2 s.
    time_scale: float = 0.02
    pull_error_delay: float = 0.05  # ErrImagePull -> ImagePullBackOff
    probe_period: float = 0.2  # a failing readiness probe's period (Unhealthy events)
    config_retry: float = 0.2  # CreateContainerConfigError: retry period
    termination_delay: float = 0.15  # deletionTimestamp set -> Pod gone (Terminating)
    controller_retry: float = 0.5  # a ReplicaSet whose pod creation failed syncs again
    record_events: bool = True  # False: no Events at all (scale benchmarks)
    max_events: int = 20_000  # oldest Events are deleted beyond this
    max_rounds: int = 200  # safety bound on cascades within one step()
    seed: int | None = None  # for generated names in quota errors
    # labels of the nodes beyond the well-known ones (kubernetes.io/hostname, os, arch), for
    # DaemonSet nodeSelectors and node affinity: {"sim-node-1": {"disk": "ssd"}}
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def bulk(cls, **overrides) -> SimConfig:
        """For scale benchmarks (thousands of Deployments): no Events, and a Pod goes from
        bound to running in one status write (no separate sandbox/pull/start stages)."""
        settings = dict(record_events=False, sandbox_delay=0.0, start_delay=0.0, pull_delay=0.0)
        settings.update(overrides)
        return cls(**settings)


class _Timers:
    """A heap of (due, key) with one pending due time per key (the earliest wins)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, tuple]] = []
        self._due: dict[tuple, float] = {}
        self._seq = 0

    def schedule(self, key: tuple, due: float) -> None:
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))

    def pop_due(self, now: float) -> list[tuple]:
        keys = []
        while self._heap and self._heap[0][0] <= now:
            due, _seq, key = heapq.heappop(self._heap)
            if self._due.get(key) == due:
                del self._due[key]
                keys.append(key)
        return keys

    def next_due(self) -> float | None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None


class Simulation:
    """Controllers, scheduler and kubelet over a Store; see the module docstring."""

    def __init__(
        self, store: Store, config: SimConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.config = config or SimConfig()
        self.clock = clock
        self._lock = threading.RLock()
        self._queue: deque[WatchEvent] = deque()
        self._timers = _Timers()
        # (namespace, workload kind, name) -> (behaviours in pod creation order, the last one
        # repeating; the store's resourceVersion when set; how many pods have taken one)
        self._overrides: dict[
            tuple[str, str, str], tuple[tuple[Behaviour, ...], int, list[int]]
        ] = {}
        self._deferred: dict[tuple[str, str, str], tuple[dict, float]] = {}
        self._creations: dict[tuple[str, str, str], dict] = {}
        self.quota = PodQuota()
        self.recorder = EventRecorder(
            store, clock, enabled=self.config.record_events, max_events=self.config.max_events
        )
        self.logs = LogBook()
        self.kubelet = Kubelet(
            store,
            self.recorder,
            clock,
            self._timers.schedule,
            self.config,
            self._behaviour_for,
            self.logs,
            self._needed,
        )
        self.deployments = DeploymentController(store, self.recorder, clock, self._timers.schedule)
        self.replicasets = ReplicaSetController(
            store,
            self.recorder,
            clock,
            self._timers.schedule,
            self.kubelet.delete_pod,
            self.quota,
            self.config.controller_retry,
            random.Random(self.config.seed),
        )
        owners = (store, self.recorder, clock, self._timers.schedule, self.kubelet.delete_pod,
                  self.quota, self.config.controller_retry)  # fmt: skip
        self.statefulsets = StatefulSetController(*owners)
        self.daemonsets = DaemonSetController(
            *owners,
            nodes=self.config.nodes,
            extra_node_labels=self.config.node_labels,
            rng=random.Random(self.config.seed),
        )
        with store.lock:
            self._unsubscribe = store.subscribe(self._queue.append)
            self._bootstrap()

    # ----------------------------------------------------------------- public API

    def step(self) -> float | None:
        """Do all work due now; return seconds until the next timer, or None when idle."""
        with self._lock:
            for _ in range(self.config.max_rounds):
                self._drain()
                for key in self._timers.pop_due(self.clock()):
                    self._fire(key)
                work = self.kubelet.sync_due()
                work += self.replicasets.sync_dirty()
                work += self.deployments.sync_dirty()
                work += self.statefulsets.sync_dirty()
                work += self.daemonsets.sync_dirty()
                if not work and not self._queue:
                    break
            else:
                return 0.0
            due = self._timers.next_due()
            return None if due is None else max(0.0, due - self.clock())

    def set_behaviour(self, namespace: str, workload: str, behaviour: Behaviour) -> None:
        """Pods created from now on for that workload follow `behaviour`. `workload` is a
        Deployment's name, or KIND/NAME for any kind ("statefulset/db", "ds/agent")."""
        self.set_behaviours(namespace, workload, [behaviour])

    def set_behaviours(
        self, namespace: str, workload: str, behaviours: Sequence[Behaviour]
    ) -> None:
        """Pods created from now on for that workload take these behaviours in creation
        order, the last one for every pod after (mixed replicas: one doomed, two that heal)."""
        if not behaviours:
            raise ValueError("set_behaviours needs at least one behaviour")
        with self.store.lock:
            self._overrides[(namespace, *workload_key(workload))] = (
                tuple(behaviours),
                self.store.resource_version,
                [0],
            )

    def create_when_needed(self, resource: str, obj: dict, after: float) -> None:
        """Create the Secret or ConfigMap `obj` `after` seconds (of this simulation's clock)
        after the first container that needs it found it missing: an operator that creates
        it a little late. Until a container needs it, it does not exist."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "default", resource, meta["name"])
        with self._lock:
            self._deferred[key] = (obj, after)

    def set_pod_quota(self, namespace: str, limit: int | None, name: str = "pod-quota") -> None:
        """Allow at most `limit` Pods in the namespace (None: no limit), like a ResourceQuota
        on `pods`: creations beyond it fail with "exceeded quota" (FailedCreate)."""
        self.quota.set(namespace, limit, name)

    def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a Pod gracefully, as `DELETE .../pods/<name>` does: it shows as Terminating
        (deletionTimestamp set) until the kubelet has stopped it. False if there is none."""
        # Only the store lock: callers (the API server) may hold it already, and step() takes
        # its own lock before the store's, so taking ours here could deadlock.
        with self.store.lock:
            pod = self.store.get_shared("pods", namespace, name)
            if pod is None:
                return False
            self.kubelet.delete_pod(pod)
            return True

    def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """A container's log; raises LogError (a LookupError, with `.code` 400 or 404) with
        the API server's wording when the Pod, container or previous instance is missing."""
        return self.kubelet.read_log(namespace, pod, container, previous, tail_lines, timestamps)

    def answer_http(self, namespace: str, pod: str, port: int) -> HttpAnswer | None:
        """What the Pod's container on `port` answers a proxied HTTP request now (behaviour:
        healthy 200, broken, slow, ...); None when nothing listens (not running)."""
        return self.kubelet.answer_http(namespace, pod, port)

    def close(self) -> None:
        """Stop listening to the store."""
        self._unsubscribe()

    # ----------------------------------------------------------------- internals

    def _bootstrap(self) -> None:
        """Pick up objects that existed before the simulation started (one scan, once)."""
        for resource in ("deployments", "replicasets", "statefulsets", "daemonsets",
                         "controllerrevisions", "pods"):  # fmt: skip
            for obj in self.store.list(resource):
                rv = int(obj["metadata"].get("resourceVersion") or 0)
                self._queue.append(WatchEvent("ADDED", resource, obj, rv))

    def _drain(self) -> None:
        while self._queue:
            event = self._queue.popleft()
            self.deployments.observe(event)
            self.replicasets.observe(event)
            self.statefulsets.observe(event)
            self.daemonsets.observe(event)
            self.kubelet.observe(event)

    def _needed(self, namespace: str, resource: str, name: str) -> None:
        """A container found this Secret/ConfigMap missing: start a deferred creation's clock."""
        deferred = self._deferred.pop((namespace, resource, name), None)
        if deferred is not None:
            obj, after = deferred
            self._creations[(namespace, resource, name)] = obj
            self._timers.schedule(("create", namespace, resource, name), self.clock() + after)

    def _fire(self, key: tuple) -> None:
        kind = key[0]
        if kind == "create":
            obj = self._creations.pop(key[1:], None)
            if obj is not None and self.store.get_shared(key[2], key[1], key[3]) is None:
                self.store.create(key[2], obj)
        elif kind == "pod":
            self.kubelet.on_timer(key[1])
        elif kind == "replicaset":
            self.replicasets.dirty.add((key[1], key[2]))
        elif kind == "deployment":
            self.deployments.dirty.add((key[1], key[2]))
        elif kind == "statefulset":
            self.statefulsets.dirty.add((key[1], key[2]))
        elif kind == "daemonset":
            self.daemonsets.dirty.add((key[1], key[2]))

    def _workload_of(self, pod: dict) -> tuple[str, str] | None:
        """(kind, name) of the workload behind a Pod: its controller, or the Deployment
        behind its ReplicaSet."""
        ref = controller_ref(pod)
        if ref and ref.get("kind") == "ReplicaSet":
            rs = self.store.get_shared("replicasets", pod["metadata"].get("namespace"),
                                       ref["name"])  # fmt: skip
            ref = controller_ref(rs) if rs else None
        return (ref["kind"], ref["name"]) if ref else None

    def _behaviour_for(self, pod: dict, resource_version: int) -> Behaviour:
        """set_behaviour for the Pod's workload (if set before the Pod was created), else
        the Pod's annotations, else healthy."""
        meta = pod["metadata"]
        workload = self._workload_of(pod) if self._overrides else None
        if workload is not None:
            override = self._overrides.get((meta.get("namespace") or "", *workload))
            if override and resource_version > override[1]:
                behaviours, _since, taken = override
                index = min(taken[0], len(behaviours) - 1)
                taken[0] += 1
                return behaviours[index]
        try:
            return behaviour_from_annotations(meta.get("annotations")) or Behaviour.healthy()
        except ValueError as exc:  # a typo in a test's annotation: say so where it shows
            self.recorder.record(
                pod, "Warning", "InvalidSimBehaviour", str(exc), component="simulation"
            )
            return Behaviour.healthy()


class ManualClock:
    """A clock that moves only when told to: simulated time for exact, fast tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_until(
    sim: Simulation,
    clock: ManualClock,
    predicate: Callable[[], bool] | None = None,
    *,
    limit: float,
) -> bool:
    """Step `sim`, jumping `clock` from timer to timer, until `predicate()` holds (True), or
    `limit` simulated seconds have passed or nothing is left to do (False). Without a
    predicate, runs for `limit` seconds."""
    deadline = clock.now + limit
    while True:
        delay = sim.step()
        if predicate is not None and predicate():
            return True
        if delay is None or clock.now + delay > deadline:
            if predicate is None and clock.now < deadline:
                clock.now = deadline
                sim.step()
            return False
        clock.advance(delay)
