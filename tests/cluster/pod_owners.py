"""What the StatefulSet and DaemonSet controllers share: the wiring of a controller that owns
Pods and ControllerRevisions directly.

Each keeps an index of the Pods and ControllerRevisions whose controller ownerReference names
one of its objects (fed from watch events, so nothing ever lists a whole resource), marks an
owner dirty when it or one of its children changes, syncs each dirty owner once per round
under the store lock, collects the children of a deleted owner (background propagation, as
the garbage collector would), and asks to be woken when the next ready Pod becomes available
after minReadySeconds or when a failed action should be retried.
"""

from __future__ import annotations

from typing import Callable

from .controllers import PodQuota, _owned_by, _OwnerIndex, _sync_atomically, available_at
from .events import EventRecorder
from .store import Store, WatchEvent

__all__ = ["PodOwnerController"]


class PodOwnerController:
    """Base of the StatefulSet and DaemonSet controllers; subclasses define `sync`."""

    kind = ""  # the owner's kind, as ownerReferences name it
    resource = ""  # the owner's plural resource
    timer = ""  # the first element of this controller's timer keys
    component = ""  # the Events' source

    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[tuple, float], None],
        delete_pod: Callable[[dict], None],
        quota: PodQuota,
        retry_delay: float,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._schedule = schedule
        self._delete_pod = delete_pod
        self._quota = quota
        self._retry_delay = retry_delay
        self._children = {
            "pods": _OwnerIndex(self.kind),
            "controllerrevisions": _OwnerIndex(self.kind),
        }
        self.dirty: set[tuple[str, str]] = set()

    def observe(self, event: WatchEvent) -> None:
        """Note which owners a change concerns."""
        if event.resource == self.resource:
            meta = event.obj["metadata"]
            self.dirty.add((meta.get("namespace") or "", meta["name"]))
            return
        index = self._children.get(event.resource)
        owner = index.observe(event) if index is not None else None
        if owner:
            self.dirty.add(owner)

    def sync_dirty(self) -> int:
        """Sync every dirty owner once; returns how many."""
        keys, self.dirty = self.dirty, set()
        for key in sorted(keys):
            _sync_atomically(self._store, self.sync, key)
        return len(keys)

    def sync(self, namespace: str, name: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- for subclasses

    def _owned(self, resource: str, namespace: str, name: str, owner: dict | None) -> list[dict]:
        """The `resource` objects whose controller is the owner (any owner of that name when
        `owner` is None, i.e. gone)."""
        result = []
        for child in self._children[resource].children((namespace, name)):
            obj = self._store.get_shared(resource, namespace, child)
            if obj is not None and (owner is None or _owned_by(obj, owner)):
                result.append(obj)
        return result

    def _collect_garbage(self, namespace: str, name: str) -> None:
        """The owner is gone: its Pods are deleted gracefully, its revisions at once."""
        for pod in self._owned("pods", namespace, name, None):
            if not pod["metadata"].get("deletionTimestamp"):
                self._delete_pod(pod)
        for revision in self._owned("controllerrevisions", namespace, name, None):
            self._store.delete("controllerrevisions", namespace, revision["metadata"]["name"])

    def _schedule_wakeup(self, owner: dict, pods: list[dict], failed: bool, now: float) -> None:
        """Sync again when the next ready Pod becomes available (minReadySeconds), and after
        the retry delay when an action failed."""
        meta = owner["metadata"]
        key = (self.timer, meta.get("namespace") or "", meta["name"])
        if failed:
            self._schedule(key, now + self._retry_delay)
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if not min_ready:
            return
        pending = [at for at in (available_at(p, min_ready) for p in pods)
                   if at is not None and at >= now]  # fmt: skip
        if pending:
            self._schedule(key, min(pending) + 0.001)

    def _event(self, owner: dict, kind: str, reason: str, message: str) -> None:
        self._recorder.record(owner, kind, reason, message, component=self.component)
