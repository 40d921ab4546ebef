"""A run of several clusters: every context's session first, then one cluster wave at a time,
its clusters restarted at once (a thread each: the kubernetes client blocks) and each
cluster's ordinary single-cluster run (``restart.run_restart``) reported by its own Reporter.

Orchestration only: which waves (``cluster_waves.plan_cluster_waves``), whether the next may
start (``cluster_waves.blocked_by``) and the exit code are decided by pure functions.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Optional, Protocol, Sequence

from kubectl_restart_backend.cancellation import Cancellation, install
from kubectl_restart_backend.cluster_waves import (
    ClusterError,
    ClusterResult,
    ClustersOutcome,
    ClusterWave,
    blocked_by,
    not_started,
    shared_servers,
)
from kubectl_restart_backend.errors import ExitCode, PluginError
from kubectl_restart_backend.outcome import RunOutcome
from kubectl_restart_backend.restart import Reporter
from kubectl_restart_backend.session import Session


class ClusterReporter(Reporter, Protocol):
    """A Reporter that also tells whether this cluster's restart was sent (an error after it
    must say the rollout goes on)."""

    restart_sent: bool

    def ran(self, result: ClusterResult) -> None:
        """This cluster's run reached its verdicts (the other clusters may still run)."""


# After Ctrl-C, how long a cluster's thread may take to stop: its current API request (or
# the release of its lock) ends first. A thread still busy then is reported interrupted and
# left behind (a daemon thread: it ends with the process; its lock expires by itself).
STOP_GRACE = 10.0

OpenSession = Callable[[str, ClusterReporter], Session]
RestartOne = Callable[[Session, ClusterReporter], RunOutcome]


def run_cluster_waves(
    waves: Sequence[ClusterWave],
    *,
    open_session: OpenSession,
    restart: RestartOne,
    reporter_for: Callable[[str], ClusterReporter],
    announce: Callable[[ClusterWave, int], None],
    notice: Callable[[str], None],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    from_wave: int = 1,
) -> ClustersOutcome:
    """Resolve every context (kubeconfig, credentials) of the waves to run before touching
    the first cluster, then restart wave after wave from wave ``from_wave`` on (the ones
    before it are neither contacted nor reported); a wave in which a cluster did not succeed
    (a failure, a timeout, an error such as an unreachable API server) leaves the later waves
    untouched.

    Errors while opening the sessions (an unknown context, a broken kubeconfig entry, a
    credential plugin that fails) are raised: nothing has been sent anywhere yet.
    """
    started = clock()
    running = [wave for wave in waves if wave.number >= from_wave]
    reporters = {c: reporter_for(c) for wave in running for c in wave.contexts}
    sessions = {c: _open(c, open_session, reporters[c]) for c in reporters}
    for warning in shared_servers({c: session.server for c, session in sessions.items()}):
        notice(warning)
    results: list[ClusterResult] = []
    blocked = ""
    for wave in running:
        if blocked:
            results += not_started(wave, blocked)
            continue
        announce(wave, len(waves))
        done = _restart_wave(wave, sessions, reporters, restart, timeout, clock)
        results += done
        blocked = blocked_by(done)
    return ClustersOutcome(tuple(waves), tuple(results), clock() - started, from_wave)


def _open(context: str, open_session: OpenSession, reporter: ClusterReporter) -> Session:
    try:
        return open_session(context, reporter)
    except PluginError as err:
        if context not in err.message:
            err.message = f"context {context}: {err.message}"
        raise


def _restart_wave(
    wave: ClusterWave,
    sessions: dict[str, Session],
    reporters: dict[str, ClusterReporter],
    restart: RestartOne,
    timeout: float,
    clock: Callable[[], float],
) -> list[ClusterResult]:
    """Every cluster of the wave at once, each in a thread; Ctrl-C (or SIGTERM) reaches the
    main thread only, so each cluster's thread is asked to stop (``cancellation``) and ends
    its watch as a single-cluster run does (verdicts known are kept, the others interrupted)."""
    results: list[Optional[ClusterResult]] = [None] * len(wave.contexts)
    failures: list[BaseException] = []
    finished: queue.Queue[int] = queue.Queue()
    stops = [Cancellation() for _ in wave.contexts]

    def work(index: int, context: str) -> None:
        install(stops[index])
        try:
            results[index] = _restart_cluster(
                context, wave.number, sessions[context], reporters[context], restart, timeout,
                clock,
            )  # fmt: skip
        except BaseException as err:  # a bug: raised again in the main thread
            failures.append(err)
        finally:
            finished.put(index)

    threads = [
        threading.Thread(target=work, args=(i, c), name=f"cluster-{c}", daemon=True)
        for i, c in enumerate(wave.contexts)
    ]
    started = clock()
    interrupted = _start_all(threads)
    _wait(threads, finished, stops, interrupted=interrupted)
    if failures:
        raise failures[0]
    for index, context in enumerate(wave.contexts):
        if results[index] is None:  # never started, or still in a request after the grace
            results[index] = _interrupted(
                context, wave.number, reporters[context], clock() - started
            )
    return [r for r in results if r is not None]


def _start_all(threads: list[threading.Thread]) -> bool:
    """Start the threads; True when Ctrl-C came meanwhile (the ones not started yet stay
    so, and the ones started are asked to stop by ``_wait``, never left running unreported)."""
    try:
        for thread in threads:
            thread.start()
    except KeyboardInterrupt:
        return True
    return False


def _wait(
    threads: list[threading.Thread],
    finished: queue.Queue[int],
    stops: list[Cancellation],
    *,
    interrupted: bool = False,
) -> list[int]:
    """Wait until every thread has finished; on Ctrl-C (or when ``interrupted`` already),
    ask the ones still running to stop and wait for them at most ``STOP_GRACE`` more seconds
    (a thread is then inside one API request at worst). Returns the threads given up on.

    (Not ``Thread.join`` alone: a join cut short by Ctrl-C can leave a running thread marked
    as stopped, as seen on CPython 3.11.)"""
    running = {index for index, thread in enumerate(threads) if thread.ident is not None}
    give_up: Optional[float] = None
    if interrupted:
        give_up = _cancel_all(stops)
    while running:
        if give_up is not None and time.monotonic() >= give_up:
            return sorted(running)
        try:
            running.discard(finished.get(timeout=0.2 if give_up is not None else 1.0))
        except queue.Empty:  # a thread that could not say so has ended too
            running = {index for index in running if threads[index].is_alive()}
        except KeyboardInterrupt:
            if give_up is None:
                give_up = _cancel_all(stops)
    return []


def _cancel_all(stops: list[Cancellation]) -> float:
    """Ask every cluster thread to stop (a finished thread's cancellation is never looked
    at); returns when to give up waiting for them."""
    for stop in stops:
        stop.cancel()
    return time.monotonic() + STOP_GRACE


def _restart_cluster(
    context: str,
    wave: int,
    session: Session,
    reporter: ClusterReporter,
    restart: RestartOne,
    timeout: float,
    clock: Callable[[], float],
) -> ClusterResult:
    """One cluster's ordinary run; an error ends this cluster (and its wave), not the run."""
    started = clock()
    session.api.extend_deadline(started + timeout)  # the session was opened waves ago
    try:
        run = restart(session, reporter)
    except PluginError as err:
        error = ClusterError(err.message, err.hint, int(err.exit_code), reporter.restart_sent)
        return ClusterResult(context, wave, error=error, duration_seconds=clock() - started)
    except KeyboardInterrupt:
        return _interrupted(context, wave, reporter, clock() - started)
    result = ClusterResult(context, wave, run=run, duration_seconds=clock() - started)
    reporter.ran(result)
    return result


def _interrupted(
    context: str, wave: int, reporter: ClusterReporter, duration: float
) -> ClusterResult:
    sent = reporter.restart_sent
    state = "the restart was triggered and goes on in the cluster" if sent else (
        "nothing was changed in this cluster"
    )  # fmt: skip
    hint = f"follow it with: kubectl restart-backend status --context {context}" if sent else ""
    error = ClusterError(f"interrupted: {state}", hint, int(ExitCode.INTERRUPTED), sent)
    return ClusterResult(context, wave, error=error, duration_seconds=duration)
