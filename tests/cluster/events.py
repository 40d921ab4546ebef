"""Recording core/v1 Events the way client-go's event recorder does.

Controllers and the kubelet report what they do as Events on the object concerned, through
client-go's EventCorrelator (tools/record/events_cache.go), which we follow:

- an Event repeating one already recorded for the same object, source, type, reason and
  message is not created again: its `count` goes up and its `lastTimestamp` moves;
- similar Events (same object, source, type and reason, other messages) are aggregated: from
  the 10th distinct message within 10 minutes on, one Event with the message
  "(combined from similar events): <latest message>" is created and then updated (count,
  message, lastTimestamp) instead of a new one each time (kubectl shows this, e.g. for a
  Deployment's ScalingReplicaSet Events after a restart and an undo);
- a source may record 25 Events about one object and type, then one more every 5 minutes;
  the rest are dropped (the spam filter; a long crash loop's counts stop growing).

Event names are `<object name>.<hex nanoseconds>` as in Kubernetes.

Real clusters expire Events (default TTL one hour); we bound them by number instead
(`max_events`, oldest deleted first), so a 50,000-Pod benchmark does not fill memory with them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable

from .store import Store, format_timestamp

__all__ = ["EventRecorder", "involved_object", "build_event", "event_key"]

NORMAL = "Normal"
WARNING = "Warning"
# client-go tools/record/events_cache.go
AGGREGATE_MAX_EVENTS = 10  # defaultAggregateMaxEvents
AGGREGATE_INTERVAL = 600.0  # defaultAggregateIntervalInSeconds
COMBINED_PREFIX = "(combined from similar events): "
SPAM_BURST = 25  # defaultSpamBurst
SPAM_QPS = 1.0 / 300.0  # defaultSpamQPS
LRU_ENTRIES = 4096  # maxLruCacheEntries


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
        # aggregate key -> (messages seen, last time); spam key -> (tokens, last refill)
        self._similar: OrderedDict[Hashable, tuple[set[str], float]] = OrderedDict()
        self._spam: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

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
        now = self._clock()
        message, key = self._aggregate(ref, event_type, reason, message, component, host, now)
        if self._spam_filtered(ref, event_type, component, host, now):
            return
        if key in self._recorded and self._bump(self._recorded[key], now, message):
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

    def _aggregate(
        self,
        ref: dict,
        event_type: str,
        reason: str,
        message: str,
        component: str,
        host: str | None,
        now: float,
    ) -> tuple[str, tuple]:
        """EventAggregator: (message, dedup key) of the Event to record. From the 10th
        distinct message of similar Events on, the combined Event under one key. (client-go
        then forgets an arbitrary one of the ten messages; we forget the newest, so the
        choice is deterministic.)"""
        similar = (component, host, ref.get("kind"), ref.get("namespace"), ref.get("name"),
                   ref.get("uid"), ref.get("apiVersion"), event_type, reason)  # fmt: skip
        messages, last = self._similar.pop(similar, (set(), now))
        if now - last > AGGREGATE_INTERVAL:
            messages = set()
        messages.add(message)
        combined = len(messages) >= AGGREGATE_MAX_EVENTS
        if combined:
            messages.discard(message)
        self._remember(self._similar, similar, (messages, now))
        if combined:
            return COMBINED_PREFIX + message, ("combined", *similar)
        return message, event_key(ref, event_type, reason, message, component)

    def _spam_filtered(
        self, ref: dict, event_type: str, component: str, host: str | None, now: float
    ) -> bool:
        """EventSourceObjectSpamFilter: a token bucket per source, object and type."""
        spam = (component, host, ref.get("kind"), ref.get("namespace"), ref.get("name"),
                ref.get("uid"), ref.get("apiVersion"), event_type)  # fmt: skip
        tokens, last = self._spam.pop(spam, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + (now - last) * SPAM_QPS)
        allowed = tokens >= 1.0
        self._remember(self._spam, spam, (tokens - 1.0 if allowed else tokens, now))
        return not allowed

    @staticmethod
    def _remember(cache: OrderedDict, key: Hashable, value: object) -> None:
        cache[key] = value
        if len(cache) > LRU_ENTRIES:
            cache.popitem(last=False)

    def _bump(self, where: tuple[str, str], now: float, message: str) -> bool:
        """count++, lastTimestamp = now (and the latest message, for a combined Event) on a
        recorded Event; False if it is gone."""
        shared = self._store.get_shared("events", where[0], where[1])
        if shared is None:
            return False
        updated = dict(shared)
        updated["count"] = int(shared.get("count") or 1) + 1
        updated["lastTimestamp"] = format_timestamp(now)
        updated["message"] = message
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
