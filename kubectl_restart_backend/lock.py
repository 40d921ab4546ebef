"""Holding the restart lock: take the workload's Lease, renew it, give it back (shell).

``lease.py`` decides (is it free, expired, ours; what to send; what to say); this module only
reads and writes the Lease through ``KubeApi`` and keeps time:

- taking it: read; create it, or replace it at the resourceVersion we read. A 409 means
  another run wrote it first: read again and decide again. A write whose answer was lost is
  read back (the holder tells whether it is ours).
- waiting: while someone else holds it, read it every ``POLL_EVERY`` s, up to ``--timeout``
  (or refuse at once with ``--no-wait-lock``); a holder that stops renewing it for a whole
  lease duration of our clock is gone, and its lock is taken over.
- holding it: a thread renews it every ``RENEW_EVERY`` s while we patch and watch.
- giving it back at exit (also after Ctrl-C, SIGTERM, SIGHUP): no holder, so the next run
  starts at once. If we die instead, it expires by itself after ``LEASE_DURATION`` s.

Not allowed to read or write Leases (RBAC), or no Lease API at all: said once, and the
restart goes on without the lock. The lock never fails a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from kubectl_restart_backend.api import PatchOutcomeUnknown
from kubectl_restart_backend.diagnosis import format_age
from kubectl_restart_backend.errors import ApiError, RefusedError
from kubectl_restart_backend.kinds import kind_named
from kubectl_restart_backend.lease import (
    LEASE_DURATION,
    POLL_EVERY,
    RENEW_EVERY,
    LeaseView,
    LockState,
    Sighting,
    build_lease,
    build_release,
    build_renewal,
    build_takeover,
    describe_held,
    describe_no_lock,
    describe_takeover,
    describe_waiting,
    holder_identity,
    judge_lease,
    lease_name,
    sight,
)
from kubectl_restart_backend.outcome import LockReport, Outcome
from kubectl_restart_backend.render import status_command


@dataclass(frozen=True)
class LockOptions:
    wait: bool = True  # False with --no-wait-lock: refuse while someone else holds it
    timeout: float = 120.0  # how long to wait for the other run (--timeout; inf: no limit)


class _NoLock(Exception):
    """The lock cannot be used here (permission, no Lease API): go on without it."""


class RestartLock:
    """The lock of one workload, for one run: ``acquire``, then ``release`` at exit."""

    def __init__(
        self,
        session,
        kind: str,
        namespace: str,
        name: str,
        options: LockOptions,
        notice: Callable[[str], None],
        *,
        identity: Optional[str] = None,
        sleep: Callable[[float], None] = time.sleep,
        renew_every: float = RENEW_EVERY,
    ) -> None:
        self._session = session
        self._renew_every = renew_every
        self._options = options
        self._notice = notice
        self._sleep = sleep
        self.kind = kind
        self.namespace = namespace
        self.target = name
        self.name = lease_name(kind, name)
        self.workload = f"{kind.lower()} {namespace}/{name}"
        self.identity = identity or my_identity()
        self.held = False
        self.waited = 0.0
        self.waited_for = ""
        self.notes: list[str] = []
        self._lease: Optional[dict] = None
        self._mutex = threading.Lock()  # one write at a time: a renewal, or the release
        self._stop = threading.Event()
        self._keeper: Optional[threading.Thread] = None
        self._lost = False

    # -- taking it -----------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lock, waiting for another run's if need be (``RefusedError`` when we may
        not wait, or waited ``--timeout`` in vain); without it if Leases are out of reach."""
        clock = self._session.clock
        started = clock()
        deadline = started + self._options.timeout
        seen: Optional[Sighting] = None
        told = ""
        try:
            while True:
                lease = self._read()
                seen = sight(seen, lease, clock())
                now = self._session.now()
                still = clock() - seen.since if seen is not None else 0.0
                view = judge_lease(lease, self.identity, now, still)
                if view.state is not LockState.HELD:
                    if self._take(lease, view):
                        break
                    continue  # someone else wrote it first: read again
                if not self._options.wait:
                    raise RefusedError(
                        f"{describe_held(self.workload, view, now)}: nothing was changed",
                        "run again once it is done, or without --no-wait-lock to wait for it "
                        "(at most --timeout)",
                    )
                remaining = deadline - clock()
                if remaining <= 0:
                    follow = status_command(
                        kind_named(self.kind), self.target, self.namespace, self._session.context
                    )
                    raise RefusedError(
                        f"{describe_held(self.workload, view, now)}; gave up waiting after "
                        f"{format_age(clock() - started)}: nothing was changed",
                        f"follow that restart with: {follow}; or wait longer with --timeout",
                    )
                if view.holder != told:
                    told = self.waited_for = view.holder
                    self._say(describe_waiting(self.workload, view, now, self._limit()))
                self._sleep(min(POLL_EVERY, remaining))
        except _NoLock as why:
            self._say(describe_no_lock(self.workload, str(why)))
            return
        finally:
            self.waited = clock() - started
        if self.waited_for:
            self._say(f"the lock of {self.workload} is ours after {format_age(self.waited)}")
        self._start_keeper()

    def _read(self) -> Optional[dict]:
        try:
            return self._session.api.get_lease(self.namespace, self.name)
        except ApiError as err:
            self._raise_if_out_of_reach(err, "get")
            raise

    def _take(self, lease: Optional[dict], view: LeaseView) -> bool:
        """One write that takes the lock; False when another run's write came first."""
        api, now = self._session.api, self._session.now()
        try:
            if view.state is LockState.ABSENT:
                body = build_lease(self.namespace, self.name, self.identity, now, self.workload)
                taken = api.create_lease(self.namespace, body)
            else:
                assert lease is not None
                body = build_takeover(lease, self.identity, now)
                taken = api.replace_lease(self.namespace, self.name, body)
        except PatchOutcomeUnknown:
            return False  # read back: if it is ours, the next round re-stamps it
        except ApiError as err:
            self._raise_if_out_of_reach(err, "create" if lease is None else "update")
            if err.status in (404, 409):  # deleted, or written, since we read it
                return False
            raise
        if view.state is LockState.EXPIRED:
            self._say(describe_takeover(self.workload, view, now))
        self._lease, self.held = taken, True
        return True

    def _raise_if_out_of_reach(self, err: ApiError, verb: str) -> None:
        if err.status == 403:
            raise _NoLock(f"not allowed to {verb} leases in namespace {self.namespace}")
        if verb == "create" and err.status in (404, 405):
            raise _NoLock("this cluster serves no coordination.k8s.io/v1 Leases")

    # -- holding it ----------------------------------------------------------------------

    def _start_keeper(self) -> None:
        self._keeper = threading.Thread(target=self._keep, name="restart-lock", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        """Renew every ``RENEW_EVERY`` s until released; a failed renewal is said once and
        tried again (two may fail before the Lease expires); a lost lock is said once."""
        trouble = ""
        while not self._stop.wait(self._renew_every):
            with self._mutex:
                if self._stop.is_set() or self._lost:
                    return
                try:
                    self._write(build_renewal)
                    trouble = ""
                except (ApiError, PatchOutcomeUnknown) as err:
                    message = getattr(err, "message", str(err))
                    if message != trouble:
                        trouble = message
                        self._say(
                            f"could not renew the lock of {self.workload} ({message}); "
                            f"trying again in {self._renew_every:.0f}s (it expires "
                            f"{LEASE_DURATION}s after the last renewal)"
                        )

    def _write(self, build: Callable, *, releasing: bool = False) -> None:
        """Replace our Lease with ``build(lease, now)``. On a conflict or a lost answer, read
        it: our write in it (or, releasing, no holder), done; still ours, write again at its
        resourceVersion; someone else's, the lock is lost (said once). Two tries: the next
        renewal is the retry (raises ``ApiError``)."""
        api = self._session.api
        assert self._lease is not None
        failure = ""
        for _attempt in range(2):
            body = build(self._lease, self._session.now())
            try:
                self._lease = api.replace_lease(self.namespace, self.name, body, retry=False)
                return
            except ApiError as err:
                if err.status not in (404, 409):
                    raise
                failure = err.message
            except PatchOutcomeUnknown as err:
                failure = str(err)
            current = api.get_lease(self.namespace, self.name)
            view = judge_lease(current, self.identity, self._session.now())
            if releasing and view.state in (LockState.FREE, LockState.ABSENT):
                return
            if view.state is not LockState.OURS:
                self._lost = True
                who = f"taken by {view.holder}" if view.holder else "no longer held by us"
                self._say(
                    f"the lock of {self.workload} was {who} (our renewals did not reach the "
                    "API server in time); another run may restart it meanwhile"
                )
                return
            assert current is not None
            self._lease = current
            if current.get("spec") == body["spec"]:
                return  # our write went through; only its answer was lost
        raise ApiError(failure)

    # -- giving it back ------------------------------------------------------------------

    def release(self) -> None:
        """Give the lock back (no holder): at exit, whatever ended the run. If that fails,
        it expires by itself: said, never raised."""
        if not self.held:
            return
        self._stop.set()
        try:
            with self._mutex:
                if not self._lost:
                    self._write(build_release, releasing=True)
        except KeyboardInterrupt:
            self._say(f"{self._not_given_back()}: interrupted")
        except (ApiError, PatchOutcomeUnknown) as err:
            self._say(f"{self._not_given_back()}: {getattr(err, 'message', str(err))}")
        self.held = False

    def _not_given_back(self) -> str:
        return (
            f"the lock of {self.workload} was not given back (it expires by itself within "
            f"{LEASE_DURATION}s)"
        )

    # -- what the run reports ------------------------------------------------------------

    def report(self) -> LockReport:
        return LockReport(
            lease=f"{self.namespace}/{self.name}",
            held=self._keeper is not None,
            waited_seconds=self.waited,
            waited_for=self.waited_for,
        )

    def stamp(self, outcome: Outcome) -> Outcome:
        """The outcome with what the lock did (its notes too: waiting, no lock, lost)."""
        return dataclasses.replace(
            outcome, lock=self.report(), notes=tuple(outcome.notes) + tuple(self.notes)
        )

    def _say(self, line: str) -> None:
        self.notes.append(line)
        self._notice(line)

    def _limit(self) -> str:
        if self._options.timeout == float("inf"):
            return "no limit (--timeout 0)"
        return f"up to {format_age(self._options.timeout)}, --timeout"


@contextlib.contextmanager
def restart_lock(
    session,
    kind: str,
    namespace: str,
    name: str,
    options: LockOptions,
    notice: Callable[[str], None],
) -> Iterator[RestartLock]:
    """Hold the workload's lock for the body of the ``with``; given back however it ends."""
    lock = RestartLock(session, kind, namespace, name, options, notice)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def my_identity() -> str:
    """Who this run is, for the Lease's holderIdentity: user@host, pid, and a random run id."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError, ImportError):  # no USER and no passwd entry (containers)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return holder_identity(
        user, socket.gethostname() or "localhost", os.getpid(), secrets.token_hex(3)
    )
