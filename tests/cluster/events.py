"""Recording core/v1 Events the way client-go's event recorder does.

Controllers and the kubelet report what they do as Events on the object concerned. Like the
real recorder (EventCorrelator), an Event repeating one already recorded for the same object,
source, type, reason and message is not created again: its `count` goes up and its
`lastTimestamp` moves. Event names are `<object name>.<hex nanoseconds>` as in Kubernetes.

Real clusters expire Events (default TTL one hour); we bound them by number instead
(`max_events`, oldest deleted first), so a 50,000-Pod benchmark does not fill memory with them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from .store import Store, format_timestamp

__all__ = ["EventRecorder", "involved_object", "build_event", "event_key"]

NORMAL = "Normal"
WARNING = "Warning"


def involved_object(obj: dict, field_path: str | None = None) -> dict:
    """The ObjectReference an Event points at; `field_path` names a container, e.g.
    `spec.containers{app}`, as the kubelet sets it."""
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": obj.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v is not None}


def event_key(ref: dict, event_type: str, reason: str, message: str, component: str) -> tuple:
    """What makes two Events 'the same' for deduplication (the correlator's event key)."""
    return (
        component,
        ref.get("kind"),
        ref.get("namespace"),
        ref.get("name"),
        ref.get("uid"),
        ref.get("fieldPath"),
        event_type,
        reason,
        message,
    )


def build_event(
    ref: dict,
    event_type: str,
    reason: str,
    message: str,
    *,
    component: str,
    host: str | None,
    now: float,
    nanos: int | None = None,
) -> dict:
    """A new core/v1 Event as the recorder posts it (count 1, first = last timestamp); named
    `<object>.<nanos in hex>` (`nanos` defaults to `now` in nanoseconds)."""
    stamp = format_timestamp(now)
    source = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{ref['name']}.{int(now * 1e9) if nanos is None else nanos:x}",
            "namespace": ref.get("namespace") or "default",
        },
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": event_type,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }


class EventRecorder:
    """Posts Events into the store, deduplicating repeats into `count`."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        *,
        enabled: bool = True,
        max_events: int = 20_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self.enabled = enabled
        self._max_events = max_events
        # dedup key -> (namespace, event name); insertion order = age, for eviction
        self._recorded: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
        self._last_nanos = 0

    def record(
        self,
        obj: dict,
        event_type: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        """Record one occurrence of `reason`/`message` about `obj`."""
        if not self.enabled:
            return
        ref = involved_object(obj, field_path)
        key = event_key(ref, event_type, reason, message, component)
        now = self._clock()
        if key in self._recorded and self._bump(self._recorded[key], now):
            self._recorded.move_to_end(key)
            return
        event = build_event(
            ref,
            event_type,
            reason,
            message,
            component=component,
            host=host,
            now=now,
            nanos=self._unique_nanos(now),
        )
        created = self._store.create("events", event)
        self._recorded[key] = (created["metadata"]["namespace"], created["metadata"]["name"])
        self._evict()

    def _bump(self, where: tuple[str, str], now: float) -> bool:
        """count++ and lastTimestamp = now on a recorded Event; False if it is gone."""
        shared = self._store.get_shared("events", where[0], where[1])
        if shared is None:
            return False
        updated = dict(shared)
        updated["count"] = int(shared.get("count") or 1) + 1
        updated["lastTimestamp"] = format_timestamp(now)
        self._store.update("events", updated)
        return True

    def _unique_nanos(self, now: float) -> int:
        """Nanosecond stamps for names, strictly increasing so names never collide."""
        nanos = max(int(now * 1e9), self._last_nanos + 1)
        self._last_nanos = nanos
        return nanos

    def _evict(self) -> None:
        while len(self._recorded) > self._max_events:
            _key, (namespace, name) = self._recorded.popitem(last=False)
            self._store.delete("events", namespace, name)
