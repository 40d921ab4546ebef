"""Fault injection, checked by the HTTP layer before a request reaches the store.

Tests use it to make the plugin meet what real clusters do to clients: throttling (429 with
Retry-After), internal errors, watches closed by the server, compacted history (410), latency,
clusters without the WatchList feature (422 for `sendInitialEvents`), proxies that end every
watch at once (HTTP 200, zero events: `cut_watches`), connections closed before the TLS
handshake (a load balancer whose backend restarts: `drop_handshakes`), and something that
happens at the very moment a client sends a given request (`before`: a colleague's change
landing just before our write, a request held so a test can press Ctrl-C while it is on its
way).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Faults", "InjectedFailure"]


@dataclass
class InjectedFailure:
    """The answer to give instead of serving a request."""

    status: int
    retry_after: int | None = None
    message: str | None = None


@dataclass
class _FailRule:
    remaining: int
    method: str | None
    pattern: re.Pattern | None
    failure: InjectedFailure


@dataclass
class _BeforeRule:
    remaining: int
    method: str | None
    pattern: re.Pattern | None
    action: Callable[[], None] | None
    delay: float


class Faults:
    """Switches and one-shot faults for one simulated cluster; safe to use from any thread."""

    def __init__(self, expire_history: Callable[[], None], wake_watches: Callable[[], None]):
        self._lock = threading.Lock()
        self._expire_history = expire_history
        self._wake_watches = wake_watches
        self._rules: list[_FailRule] = []
        self._before: list[_BeforeRule] = []
        self._close_after: int | None = None
        self._handshakes_to_drop = 0
        self.handshakes_dropped = 0  # connections closed by `drop_handshakes`, all told
        self.watch_epoch = 0  # bumped to close every open watch stream
        self.latency = 0.0
        self.watch_list_disabled = False  # True: sendInitialEvents answers 422, like WatchList off
        self.expired_watch_as_http = False  # True: too-old watch -> HTTP 410, not an ERROR event
        # True: every watch answers 200 and ends at once with zero events (a proxy or gateway
        # that cuts long requests); lists and everything else are served as usual
        self.cut_watches = False

    def close_watches(self, after_events: int | None = None) -> None:
        """Close every open watch stream now, or once `after_events` more watch events
        (ADDED/MODIFIED/DELETED, summed over all streams) have been sent."""
        with self._lock:
            if after_events is None or after_events <= 0:
                self._close_after = None
                self.watch_epoch += 1
            else:
                self._close_after = after_events
        self._wake_watches()

    def fail_next(
        self,
        n: int = 1,
        method: str | None = None,
        path: str | None = None,
        status: int = 500,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `n` requests matching `method` and `path` (a regex searched in the
        request target, path plus query string, e.g. r"/deployments\\?.*watch=true") with
        `status`. A 429 carries `Retry-After: retry_after` (1 when not given)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        rule = _FailRule(
            n,
            method.upper() if method else None,
            re.compile(path) if path else None,
            InjectedFailure(status, retry_after, message),
        )
        with self._lock:
            self._rules.append(rule)

    def before(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        action: Callable[[], None] | None = None,
        delay: float = 0.0,
        n: int = 1,
    ) -> None:
        """For the next `n` requests matching `method` and `path` (a regex, as in
        `fail_next`): run `action()` (e.g. a colleague's patch, or telling the test the
        request arrived), then hold the request `delay` seconds, then serve it as usual."""
        rule = _BeforeRule(
            n, method.upper() if method else None, re.compile(path) if path else None, action,
            max(0.0, float(delay)),
        )  # fmt: skip
        with self._lock:
            self._before.append(rule)

    def drop_handshakes(self, n: int = 1) -> None:
        """Close the next `n` new connections as soon as they are accepted, before the TLS
        handshake (the client sees an unexpected EOF), as a load balancer does while the API
        server behind it restarts."""
        with self._lock:
            self._handshakes_to_drop += max(0, int(n))

    def expire_history(self) -> None:
        """Compact all history: a watch resuming from an earlier resourceVersion gets 410."""
        self._expire_history()

    def set_latency(self, seconds: float) -> None:
        """Delay every request by `seconds` before serving it."""
        self.latency = max(0.0, float(seconds))

    def clear(self) -> None:
        """Drop pending failures and switches."""
        with self._lock:
            self._rules.clear()
            self._before.clear()
            self._close_after = None
            self._handshakes_to_drop = 0
        self.latency = 0.0
        self.watch_list_disabled = False
        self.expired_watch_as_http = False
        self.cut_watches = False

    # ------------------------------------------------------------ used by the HTTP layer

    def run_before(self, method: str, target: str) -> None:
        """Run (and consume) the `before` rule matching this request, if any."""
        with self._lock:
            rule = _take(self._before, method, target)
        if rule is None:
            return
        if rule.action is not None:
            rule.action()
        if rule.delay:
            time.sleep(rule.delay)

    def take_failure(self, method: str, target: str) -> InjectedFailure | None:
        """The injected failure for this request, consuming one count, or None."""
        with self._lock:
            rule = _take(self._rules, method, target)
        return rule.failure if rule is not None else None

    def take_handshake_drop(self) -> bool:
        """True (consuming one count) when this new connection is to be closed unanswered."""
        with self._lock:
            if self._handshakes_to_drop <= 0:
                return False
            self._handshakes_to_drop -= 1
            self.handshakes_dropped += 1
            return True

    def watch_event_sent(self) -> None:
        """Count one sent watch event towards `close_watches(after_events=...)`."""
        with self._lock:
            if self._close_after is None:
                return
            self._close_after -= 1
            if self._close_after > 0:
                return
            self._close_after = None
            self.watch_epoch += 1
        self._wake_watches()


def _take(rules: list, method: str, target: str):
    """The first rule matching the request, counted down (and dropped when used up)."""
    for rule in rules:
        if rule.method and rule.method != method.upper():
            continue
        if rule.pattern and not rule.pattern.search(target):
            continue
        rule.remaining -= 1
        if rule.remaining <= 0:
            rules.remove(rule)
        return rule
    return None
