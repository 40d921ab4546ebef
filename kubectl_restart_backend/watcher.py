"""Keep an up-to-date snapshot of one workload (Deployment, StatefulSet, DaemonSet), its pods.

Watches of the workload by name and of its pods by the workload's selector (and, for a
Deployment, of its ReplicaSets by the same selector), each in its own thread, feed one
queue; the caller drains it into a ``Snapshot`` and hands the snapshot to the pure rollout
rule. StatefulSets and DaemonSets need no third watch: which pods are new is told by the
workload's status and the pods' own labels (``kind_rules.py``). Several watchers may share
one ``wake`` event, so one loop can follow several workloads at once.

This module decides nothing about the rollout: it only keeps the picture true through
dropped streams (resume from the last resourceVersion), expired history (410: list again),
a busy or restarting server (back off and retry), and watches that end at once without a
word.

That last one is what some proxies and gateways do to long requests: every watch answers
200 and ends immediately with zero events. Resuming from the same resourceVersion would
never see the rollout finish. Like client-go's reflector ("very short watch"), a watch that
ends within ``SHORT_WATCH`` with no events counts as an error: back off, then list again (a
list shows what changed). After ``POLL_AFTER`` such watches in a row the resource is polled
(one list every ``POLL_EVERY`` seconds, a watch tried again every ``WATCH_RETRY_EVERY``), so
the verdict still comes, at a bounded rate and never in a hot loop.

Every pod update is also folded into the snapshot's trouble memory (``trouble.observe_pod``):
failed pulls can only be counted update by update.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Optional

from kubectl_restart_backend.api import KubeApi, WatchExpired
from kubectl_restart_backend.errors import ApiError
from kubectl_restart_backend.kinds import DEPLOYMENT, Kind
from kubectl_restart_backend.retry import RetryBudget, compute_backoff
from kubectl_restart_backend.rollout import RolloutState, compute_rollout_state
from kubectl_restart_backend.trouble import (
    NO_MEMORY,
    Memory,
    Tolerance,
    observe_pod,
    remember_troubles,
)

SHORT_WATCH = 1.0  # a watch that ends sooner, with no events, is broken (client-go's rule)
SHORT_BACKOFF = 0.2  # first pause after a very short watch; doubles up to POLL_EVERY
POLL_AFTER = 3  # very short watches in a row before the resource is polled instead
POLL_EVERY = 1.0  # seconds between lists while polling (per resource)
WATCH_RETRY_EVERY = 10.0  # while polling, how often a watch is tried again


@dataclass
class Snapshot:
    """What we currently know; replaced piecewise by watch events."""

    workload: Optional[dict]
    replicasets: dict[str, dict] = field(default_factory=dict)
    pods: dict[str, dict] = field(default_factory=dict)
    memory: Memory = NO_MEMORY
    kind: Kind = DEPLOYMENT

    @property
    def resource(self) -> str:
        """The workload's resource (its kind's plural), as watch events name it."""
        return self.kind.resource

    def apply(self, resource: str, event_type: str, obj: dict) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if resource == self.resource:
            self.workload = None if event_type == "DELETED" else obj
            return
        store = self.replicasets if resource == "replicasets" else self.pods
        if event_type == "DELETED":
            store.pop(name, None)
        else:
            store[name] = obj
            if resource == "pods":
                self.memory = observe_pod(self.memory, obj)

    def judge(
        self,
        *,
        generation: int,
        now: datetime,
        tolerance: Tolerance,
        template: Optional[Mapping[str, Any]],
    ) -> RolloutState:
        """The rollout rule over what is known now (rollout.compute_rollout_state); the
        time-based troubles it reports are folded into the memory (since when they last)."""
        state = compute_rollout_state(
            self.workload,
            list(self.replicasets.values()),
            list(self.pods.values()),
            generation=generation,
            now=now,
            tolerance=tolerance,
            memory=self.memory,
            template=template,
            kind=self.kind,
        )
        self.memory = remember_troubles(self.memory, state.troubles, now)
        return state

    def replace(self, resource: str, items: list[dict]) -> None:
        if resource == self.resource:
            self.workload = items[0] if items else None
            return
        fresh = {(o.get("metadata") or {}).get("name", ""): o for o in items}
        if resource == "replicasets":
            self.replicasets = fresh
        else:
            self.pods = fresh
            for pod in items:
                self.memory = observe_pod(self.memory, pod)


def selector_string(workload: dict) -> str:
    """The workload's ``spec.selector`` as a label-selector string for the API."""
    selector = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


class RolloutWatcher:
    """Lists, then watches, and applies what arrives to ``self.snapshot``."""

    def __init__(
        self,
        api: KubeApi,
        workload: dict,
        *,
        budget: RetryBudget,
        kind: Kind = DEPLOYMENT,
        notice: Optional[Callable[[str], None]] = None,
        clock: Callable[[], float] = time.monotonic,
        wake: Optional[threading.Event] = None,
    ) -> None:
        meta = workload.get("metadata") or {}
        self.namespace: str = meta.get("namespace", "")
        self.name: str = meta.get("name", "")
        self.kind = kind
        self.snapshot = Snapshot(workload, kind=kind)
        self._api = api
        self._budget = budget
        self._selector = selector_string(workload)
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._workload_rv = str(meta.get("resourceVersion") or "")
        self._notice = notice
        self._clock = clock
        self._wake = wake
        self._told_polling = False
        self._lock = threading.Lock()

    @property
    def resources(self) -> tuple[str, ...]:
        """What is watched: the workload, its ReplicaSets (Deployments), its pods."""
        owned = ("replicasets", "pods") if self.kind.replicasets else ("pods",)
        return (self.kind.resource, *owned)

    def start(self) -> None:
        """List the pods (and ReplicaSets), then start the watches."""
        versions = {self.kind.resource: self._workload_rv}
        for resource in self.resources[1:]:
            listing = self._api.list(resource, self.namespace, label_selector=self._selector)
            self.snapshot.replace(resource, listing.items)
            versions[resource] = listing.resource_version
        for resource, version in versions.items():
            thread = threading.Thread(
                target=self._follow,
                args=(resource, version),
                name=f"watch-{resource}",
                daemon=True,
            )
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float) -> bool:
        """Apply everything that arrived within ``timeout``; True if anything changed.

        Raises the ``ApiError`` a watch could not recover from (e.g. 403 on watch).
        """
        try:
            item = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return False
        self._apply(item)
        self.drain()
        return True

    def drain(self) -> bool:
        """Apply what has arrived, without waiting; True if anything changed."""
        changed = False
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return changed
            self._apply(item)
            changed = True

    def _put(self, item: tuple) -> None:
        self._events.put(item)
        if self._wake is not None:
            self._wake.set()

    def _apply(self, item: tuple) -> None:
        kind = item[0]
        if kind == "error":
            raise item[1]
        if kind == "notice":
            if self._notice is not None:
                self._notice(item[1])
            return
        if kind == "relist":
            self.snapshot.replace(item[1], item[2])
        else:
            self.snapshot.apply(item[1], item[2], item[3])

    # -- the watch threads ---------------------------------------------------------------

    def _selectors(self, resource: str) -> dict[str, str]:
        if resource == self.kind.resource:
            return {"field_selector": f"metadata.name={self.name}"}
        return {"label_selector": self._selector}

    def _follow(self, resource: str, version: str) -> None:
        """Watch ``resource`` until stopped: resume from the last version, relist on 410 and
        after a very short watch, poll while watches keep ending at once."""
        failures = 0
        short = 0  # very short, empty watches in a row
        last_watch = float("-inf")  # when a watch was last opened
        trouble_since: Optional[float] = None  # when the current stretch of failures began
        needs_list = False
        while not self._stop.is_set():
            try:
                if needs_list:
                    version = self._relist(resource)
                    needs_list = False
                if short >= POLL_AFTER and self._clock() - last_watch < WATCH_RETRY_EVERY:
                    self._stop.wait(POLL_EVERY)  # polling: one list per POLL_EVERY
                    needs_list = True
                    continue
                last_watch = self._clock()
                received = False
                for event in self._api.watch(
                    resource,
                    self.namespace,
                    resource_version=version,
                    stop=self._stop,
                    **self._selectors(resource),
                ):
                    if self._stop.is_set():
                        return
                    obj = event.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    received = True
                    trouble_since = None
                    if event.get("type") != "BOOKMARK":
                        self._put(("event", resource, event.get("type"), obj))
                failures = 0
                if received or self._clock() - last_watch >= SHORT_WATCH:
                    short = 0
                    continue  # an ordinary end (timeoutSeconds): resume where it stopped
                short += 1
                needs_list = True  # the watch may have missed changes: list them
                if short == POLL_AFTER:
                    self._tell_polling(resource)
                self._stop.wait(min(POLL_EVERY, SHORT_BACKOFF * 2 ** (short - 1)))
            except WatchExpired:
                needs_list = True
            except ApiError as err:
                if self._stop.is_set():
                    return
                if not err.retryable:
                    self._put(("error", err))
                    return
                failures += 1
                delay = compute_backoff(failures, None)
                if not self._budget.allows(delay):
                    return
                if trouble_since is None:
                    trouble_since = self._budget.clock()
                self._api.tell_retry(trouble_since, delay, err.message, f"watch {resource}")
                self._stop.wait(delay)
            except Exception as err:  # noqa: BLE001 - a dead thread would leave the run blind
                if not self._stop.is_set():
                    self._put(
                        ("error", ApiError(f"watching {resource} failed unexpectedly: {err}"))
                    )
                return

    def _tell_polling(self, resource: str) -> None:
        """Say once per run that watches are broken and we poll instead (three threads)."""
        with self._lock:
            if self._told_polling:
                return
            self._told_polling = True
        self._put(
            (
                "notice",
                f"every watch of {resource} ends at once without events (a proxy cutting "
                f"long requests?); listing every {POLL_EVERY:.0f}s instead",
            )
        )

    def _relist(self, resource: str) -> str:
        listing = self._api.list(resource, self.namespace, **self._selectors(resource))
        self._put(("relist", resource, listing.items))
        return listing.resource_version
