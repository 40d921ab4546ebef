"""The object store: what etcd plus the API server's registry do for us.

Thread-safe, one global resourceVersion counter, a bounded history of changes (so watches can
resume from a resourceVersion and get 410 Gone once it has been compacted away) and synchronous
change fan-out to subscribers (the HTTP watches and the simulation).

Stored objects are never mutated in place: every change stores a new dict (sharing untouched
subtrees with the previous version). That makes the history cheap and lets the HTTP layer
serialize stored objects without copying them. Everything handed to callers is a deep copy.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from . import resources
from .selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

__all__ = [
    "Conflict",
    "NotFound",
    "Expired",
    "WatchEvent",
    "Change",
    "Store",
    "deep_copy",
    "format_timestamp",
]

# Resources whose metadata.generation tracks spec changes (the ones our controllers observe).
GENERATION_RESOURCES = frozenset({"deployments", "replicasets", "statefulsets", "daemonsets"})
# The DaemonSet registry keeps the template generation (bumped on template changes) in this
# annotation of apps/v1 objects; clients cannot set it on update.
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Conflict(Exception):
    """Create of an existing name (409 AlreadyExists) or a stale resourceVersion (409 Conflict)."""


class NotFound(Exception):
    """Update or status update of an object that does not exist (404)."""


class Expired(Exception):
    """A watch asked to resume from a resourceVersion older than the retained history (410)."""


@dataclass
class WatchEvent:
    """One change as subscribers see it; `obj` is a deep copy, theirs to keep."""

    type: str  # "ADDED" | "MODIFIED" | "DELETED"
    resource: str  # plural resource name
    obj: dict  # the object after the change (as it was, with a new resourceVersion, if DELETED)
    resource_version: int = 0


class Change(NamedTuple):
    """One history entry; `obj` (after) and `prev` (before; None for ADDED) are the stored,
    shared, read-only objects. `prev` lets a selective watch turn a MODIFIED that leaves or
    enters its selector into DELETED or ADDED, as the API server does."""

    resource_version: int
    type: str
    resource: str
    obj: dict
    prev: dict | None = None


def deep_copy(value: Any) -> Any:
    """Copy a JSON-like value (dicts, lists, scalars); several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def format_timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with a trailing Z and whole seconds, as metav1.Time serializes."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _keep_template_generation(new: dict, old: dict | None) -> None:
    """The DaemonSet strategy: template generation 1 on create (or what the client gave, if
    higher), the old one on update, plus one when the pod template changed."""
    annotations = new["metadata"].get("annotations") or {}

    def number(obj: dict | None) -> int:
        value = ((obj or {}).get("metadata") or {}).get("annotations", {}) or {}
        try:
            return int(value.get(TEMPLATE_GENERATION) or 0)
        except ValueError:
            return 0

    if old is None:
        generation = max(1, number(new))
    else:
        template = (new.get("spec") or {}).get("template")
        generation = number(old) + (template != (old.get("spec") or {}).get("template"))
    new["metadata"]["annotations"] = {**annotations, TEMPLATE_GENERATION: str(generation)}


def _key(namespace: str | None, namespaced: bool) -> str:
    return (namespace or "") if namespaced else ""


class Store:
    """Thread-safe object store with a global resourceVersion counter and change fan-out."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        history_limit: int = 20_000,
        rng: random.Random | None = None,
    ) -> None:
        self.lock = threading.RLock()
        # notified (under the lock) after every change and by wake_waiters()
        self.changed = threading.Condition(self.lock)
        self._clock = clock
        self._rng = rng or random.Random()
        self._rv = 0
        self._compacted_rv = 0  # history holds every change with resourceVersion > this
        self._history: deque[Change] = deque()
        self._history_limit = history_limit
        # resource -> namespace ("" when cluster-scoped) -> name -> stored object
        self._data: dict[str, dict[str, dict[str, dict]]] = {}
        self._subscribers: list[Callable[[WatchEvent], None]] = []

    # ----------------------------------------------------------------- reading

    def clock(self) -> float:
        """The store's clock (the time it writes into timestamps)."""
        return self._clock()

    @property
    def resource_version(self) -> int:
        """The current global counter (the resourceVersion of the latest change)."""
        return self._rv

    @property
    def compacted_resource_version(self) -> int:
        """Watches may resume from this resourceVersion or later; older ones get 410."""
        return self._compacted_rv

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """A deep copy of one object, or None."""
        with self.lock:
            stored = self.get_shared(resource, namespace, name)
            return deep_copy(stored) if stored is not None else None

    def get_shared(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """The stored object itself (read-only!), for serializing without a copy."""
        namespaced = resources.by_plural(resource).namespaced
        with self.lock:
            return self._data.get(resource, {}).get(_key(namespace, namespaced), {}).get(name)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        """Deep copies of the matching objects, sorted by namespace and name.

        Raises selectors.SelectorError (a ValueError) for a selector the API server rejects.
        """
        return [deep_copy(obj) for obj in self.select(resource, namespace, label_selector,
                                                      field_selector)]  # fmt: skip

    def select(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        """Like `list` but returns the stored objects themselves (read-only!), no copies.

        Only matching objects are touched, so selecting a few Pods among 50,000 stays cheap.
        """
        label_reqs = parse_label_selector(label_selector)
        field_reqs = parse_field_selector(field_selector, resource)
        namespaced = resources.by_plural(resource).namespaced
        with self.lock:
            by_ns = self._data.get(resource, {})
            if namespace and namespaced:
                buckets: Iterable[tuple[str, dict[str, dict]]] = [
                    (namespace, by_ns.get(namespace, {}))
                ]
            else:
                buckets = sorted(by_ns.items())
            result = []
            for _ns, objects in buckets:
                for name in sorted(objects):
                    obj = objects[name]
                    if label_reqs and not labels_match(
                        label_reqs, obj["metadata"].get("labels") or {}
                    ):
                        continue
                    if field_reqs and not fields_match(field_reqs, obj):
                        continue
                    result.append(obj)
            return result

    def count(self, resource: str, namespace: str | None = None) -> int:
        """How many objects of a resource there are (in a namespace), without copying."""
        with self.lock:
            by_ns = self._data.get(resource, {})
            if namespace:
                return len(by_ns.get(namespace, {}))
            return sum(len(objects) for objects in by_ns.values())

    def history_since(self, resource_version: int) -> list[Change]:
        """Every change after `resource_version`, oldest first; Expired if compacted away."""
        with self.lock:
            if resource_version < self._compacted_rv:
                raise Expired(
                    f"too old resource version: {resource_version} ({self._compacted_rv})"
                )
            if not self._history or resource_version >= self._rv:
                return []
            first = self._history[0].resource_version
            start = max(0, resource_version + 1 - first)
            # resourceVersions are dense (every change takes the next one), so index directly
            return [self._history[i] for i in range(start, len(self._history))]

    # ----------------------------------------------------------------- writing

    def create(self, resource: str, obj: dict) -> dict:
        """Store a new object: fills uid, resourceVersion, creationTimestamp, generation,
        kind/apiVersion and a generated name; returns a deep copy. Raises Conflict."""
        rt = resources.by_plural(resource)
        new = deep_copy(obj)
        meta = new.setdefault("metadata", {})
        api_version, kind = rt.api_version, rt.kind
        new.setdefault("apiVersion", api_version)
        new.setdefault("kind", kind)
        if not rt.namespaced:
            meta.pop("namespace", None)
        with self.lock:
            bucket = self._data.setdefault(resource, {}).setdefault(
                _key(meta.get("namespace"), rt.namespaced), {}
            )
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generate_name(meta["generateName"], bucket)
            name = meta.get("name")
            if not name:
                raise ValueError("name or generateName is required")
            if name in bucket:
                raise Conflict(f'{rt.group_resource} "{name}" already exists')
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = format_timestamp(self._clock())
            if resource in GENERATION_RESOURCES:
                meta["generation"] = 1
            if resource == "daemonsets":
                _keep_template_generation(new, None)
            meta.pop("deletionTimestamp", None)
            meta["resourceVersion"] = str(self._next_rv())
            bucket[name] = new
            self._record("ADDED", resource, new, None)
            return deep_copy(new)

    def update(self, resource: str, obj: dict, *, check_resource_version: bool = False) -> dict:
        """Replace an object except its .status (kept from the stored one).

        Bumps resourceVersion; bumps metadata.generation when .spec changed (deployments,
        replicasets). A no-op update changes nothing, as in Kubernetes. With
        `check_resource_version`, a stale metadata.resourceVersion raises Conflict (what PUT
        does). Raises NotFound.
        """
        rt = resources.by_plural(resource)
        meta_in = obj.get("metadata") or {}
        with self.lock:
            old = self._stored_or_raise(rt, meta_in.get("namespace"), meta_in.get("name"))
            if check_resource_version:
                self._check_rv(rt, old, meta_in)
            new = deep_copy(obj)
            new.setdefault("apiVersion", rt.api_version)
            new.setdefault("kind", rt.kind)
            meta = new.setdefault("metadata", {})
            old_meta = old["metadata"]
            for kept in ("uid", "creationTimestamp", "namespace", "generation", "resourceVersion"):
                if kept in old_meta:
                    meta[kept] = old_meta[kept]
                else:
                    meta.pop(kept, None)
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
            if resource == "daemonsets":
                _keep_template_generation(new, old)
            if new == old:
                return deep_copy(old)
            if resource in GENERATION_RESOURCES and new.get("spec") != old.get("spec"):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            return self._replace(rt, new, old)

    def update_status(self, resource: str, obj: dict, *,
                      check_resource_version: bool = False) -> dict:  # fmt: skip
        """Replace only .status; bumps resourceVersion, never generation. No-op if unchanged."""
        rt = resources.by_plural(resource)
        meta_in = obj.get("metadata") or {}
        with self.lock:
            old = self._stored_or_raise(rt, meta_in.get("namespace"), meta_in.get("name"))
            if check_resource_version:
                self._check_rv(rt, old, meta_in)
            if obj.get("status") == old.get("status"):
                return deep_copy(old)
            new = dict(old)
            new["metadata"] = dict(old["metadata"])
            if obj.get("status") is None:
                new.pop("status", None)
            else:
                new["status"] = deep_copy(obj["status"])
            return self._replace(rt, new, old)

    def delete(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """Remove an object; returns it (with the deletion's resourceVersion) or None."""
        rt = resources.by_plural(resource)
        with self.lock:
            bucket = self._data.get(resource, {}).get(_key(namespace, rt.namespaced), {})
            old = bucket.pop(name, None)
            if old is None:
                return None
            gone = dict(old)
            gone["metadata"] = dict(old["metadata"])
            gone["metadata"]["resourceVersion"] = str(self._next_rv())
            self._record("DELETED", resource, gone, old)
            return deep_copy(gone)

    def subscribe(self, callback: Callable[[WatchEvent], None]) -> Callable[[], None]:
        """Call `callback` synchronously, under the lock, after every change; returns an
        unsubscribe function. Callbacks must be quick (queue the event, set a flag)."""
        with self.lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self.lock:
                self._subscribers = [cb for cb in self._subscribers if cb is not callback]

        return unsubscribe

    def wait_for_change(
        self,
        resource_version: int,
        timeout: float | None,
        interrupted: Callable[[], bool] | None = None,
    ) -> bool:
        """Block until the counter passes `resource_version` (True), or until timeout or a
        wake_waiters() call (False). `interrupted` is checked under the lock before blocking,
        so a wake-up that comes with setting it is never missed."""
        with self.lock:
            if self._rv > resource_version:
                return True
            if interrupted is not None and interrupted():
                return False
            self.changed.wait(timeout)
            return self._rv > resource_version

    def wake_waiters(self) -> None:
        """Wake everything blocked on `changed` (watches re-check whether to stop)."""
        with self.lock:
            self.changed.notify_all()

    def expire_history(self) -> None:
        """Forget all history: resuming a watch from any resourceVersion a client has seen
        gets 410. The compaction point is a fresh resourceVersion that no event carries (as
        after writes the client does not watch), so even a client that saw the newest event
        has fallen behind; compacting at the newest one would let such a client resume."""
        with self.lock:
            self._history.clear()
            self._compacted_rv = self._next_rv()

    # ----------------------------------------------------------------- internals

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _generate_name(self, prefix: str, bucket: dict) -> str:
        while True:
            suffix = "".join(self._rng.choice(_GENERATE_NAME_ALPHABET) for _ in range(5))
            if prefix + suffix not in bucket:
                return prefix + suffix

    def _stored_or_raise(self, rt: resources.ResourceType, namespace: str | None,
                         name: str | None) -> dict:  # fmt: skip
        stored = self._data.get(rt.plural, {}).get(_key(namespace, rt.namespaced), {}).get(name)
        if stored is None:
            raise NotFound(f'{rt.group_resource} "{name}" not found')
        return stored

    @staticmethod
    def _check_rv(rt: resources.ResourceType, old: dict, meta_in: dict) -> None:
        wanted = meta_in.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {rt.group_resource} "{meta_in.get("name")}": '
                "the object has been modified; please apply your changes to the latest version "
                "and try again"
            )

    def _replace(self, rt: resources.ResourceType, new: dict, old: dict) -> dict:
        meta = new["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        self._data[rt.plural][_key(meta.get("namespace"), rt.namespaced)][meta["name"]] = new
        self._record("MODIFIED", rt.plural, new, old)
        return deep_copy(new)

    def _record(self, event_type: str, resource: str, obj: dict, prev: dict | None) -> None:
        self._history.append(Change(self._rv, event_type, resource, obj, prev))
        while len(self._history) > self._history_limit:
            self._compacted_rv = self._history.popleft().resource_version
        self.changed.notify_all()
        if self._subscribers:
            event = WatchEvent(event_type, resource, deep_copy(obj), self._rv)
            for callback in self._subscribers:
                callback(event)
