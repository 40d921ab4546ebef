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

A run of several workloads takes one lock per workload (``hold_locks``): all of them before
its first patch (so a refusal changes nothing, and no other run restarts a later wave's
workload between our waves), in one canonical order (``lease.lock_order``: kind, name,
namespace) so that two runs wanting some of the same workloads never each hold one the other
waits for, within one --timeout in all; each wave's given back when the wave ends.

Not allowed to read or write Leases (RBAC), or no Lease API at all: said once per run, and
the restart goes on without the lock. The lock never fails a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

from kubectl_restart_backend.api import PatchOutcomeUnknown
from kubectl_restart_backend.cancellation import pause
from kubectl_restart_backend.diagnosis import format_age
from kubectl_restart_backend.errors import ApiError, RefusedError
from kubectl_restart_backend.kinds import Kind
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
    lock_order,
    sight,
)
from kubectl_restart_backend.outcome import LockReport, Outcome
from kubectl_restart_backend.render import status_command


@dataclass(frozen=True)
class LockOptions:
    wait: bool = True  # False with --no-wait-lock: refuse while someone else holds it
    timeout: float = 120.0  # how long to wait for the other run (--timeout; inf: no limit)


class LeasesOutOfReach(Exception):
    """The lock cannot be used here (permission, no Lease API): go on without it.

    ``scope``: the namespace the answer holds for, or "" for the whole cluster."""

    def __init__(self, why: str, scope: str) -> None:
        super().__init__(why)
        self.why, self.scope = why, scope


class RestartLock:
    """The lock of one workload, for one run: ``acquire``, then ``release`` at exit."""

    def __init__(
        self,
        session,
        kind: Kind,
        namespace: str,
        name: str,
        options: LockOptions,
        notice: Callable[[str], None],
        *,
        identity: Optional[str] = None,
        sleep: Callable[[float], None] = pause,
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
        self.name = lease_name(kind.name, name)
        self.workload = f"{kind.word} {namespace}/{name}"
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

    def acquire(self, deadline: Optional[float] = None) -> None:
        """Take the lock, waiting for another run's if need be, until ``deadline`` (our
        clock; by default --timeout from now). ``RefusedError`` when we may not wait, or
        waited in vain; ``LeasesOutOfReach`` when the lock cannot be used here."""
        clock = self._session.clock
        started = clock()
        if deadline is None:
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
                        self.kind, self.target, self.namespace, self._session.context
                    )
                    waited = clock() - (deadline - self._options.timeout)  # for all the locks
                    raise RefusedError(
                        f"{describe_held(self.workload, view, now)}; gave up waiting after "
                        f"{format_age(waited)}: nothing was changed",
                        f"follow that restart with: {follow}; or wait longer with --timeout",
                    )
                if view.holder != told:
                    told = self.waited_for = view.holder
                    self._say(describe_waiting(self.workload, view, now, self._limit()))
                self._sleep(min(POLL_EVERY, remaining))
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
            why = f"not allowed to {verb} leases in namespace {self.namespace}"
            raise LeasesOutOfReach(why, self.namespace)
        if verb == "create" and err.status in (404, 405):
            raise LeasesOutOfReach("this cluster serves no coordination.k8s.io/v1 Leases", "")

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

    def say(self, line: str) -> None:
        """Say ``line`` now, and keep it among this workload's notes."""
        self._say(line)

    def _say(self, line: str) -> None:
        self.notes.append(line)
        self._notice(line)

    def _limit(self) -> str:
        if self._options.timeout == float("inf"):
            return "no limit (--timeout 0)"
        return f"up to {format_age(self._options.timeout)}, --timeout"


@contextlib.contextmanager
def hold_locks(
    session,
    workloads: Sequence[tuple[Kind, str, str]],
    options: LockOptions,
    notice: Callable[[str], None],
) -> Iterator[dict[tuple[Kind, str, str], RestartLock]]:
    """Hold the locks of a run's workloads (kind, namespace, name) for the body of the
    ``with``: all taken before it starts, in ``lock_order``, waiting at most --timeout in
    all, under one holder identity; each given back by its ``release`` (when its wave
    ends) or at the end, however it ends. A refusal (``RefusedError``) comes before
    anything was sent.

    Leases out of reach (no rights in a namespace, no Lease API) are said once and not
    asked for again: the workloads concerned go on without their locks.
    """
    deadline = session.clock() + options.timeout
    identity = my_identity()
    several = len(set(workloads)) > 1
    out_of_reach: dict[str, str] = {}  # namespace ("": every one) -> why
    locks: dict[tuple[Kind, str, str], RestartLock] = {}
    with contextlib.ExitStack() as taken:
        for kind, namespace, name in sorted(set(workloads), key=lock_order):
            lock = RestartLock(session, kind, namespace, name, options, notice, identity=identity)
            taken.callback(lock.release)
            locks[(kind, namespace, name)] = lock
            if namespace in out_of_reach or "" in out_of_reach:
                continue  # already said: this workload goes without its lock too
            try:
                lock.acquire(deadline)
            except LeasesOutOfReach as err:
                out_of_reach[err.scope] = err.why
                lock.say(describe_no_lock(None if several else lock.workload, err.why))
        yield locks


def my_identity() -> str:
    """Who this run is, for the Lease's holderIdentity: user@host, pid, and a random run id."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError, ImportError):  # no USER and no passwd entry (containers)
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return holder_identity(
        user, socket.gethostname() or "localhost", os.getpid(), secrets.token_hex(3)
    )
