"""Ctrl-C in a run of cluster waves: each cluster's thread is asked to stop and stops at its
next checkpoint, never at an arbitrary instruction of another thread.

The end-to-end twin (a real signal to the installed plugin mid-wave) is in
test_cluster_waves_e2e.py; here the orchestration runs with restarts of our own that start
and stop threads as fast as they can, the pattern that once hung a CI run for good when
the interruption was raised into threads from outside.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kubectl_restart_backend import cluster_run
from kubectl_restart_backend.cancellation import (
    Cancellation,
    checkpoint,
    install,
    pause,
    wake_on_cancel,
)


def test_a_cancellation_raises_once_at_the_next_checkpoint():
    cancellation = Cancellation()
    cancellation.check()  # not asked: nothing
    cancellation.cancel()
    with pytest.raises(KeyboardInterrupt):
        cancellation.check()
    cancellation.check()  # like a signal: once; the clean-up that follows runs undisturbed


def test_a_pause_ends_as_soon_as_its_thread_is_asked_to_stop():
    cancellation = Cancellation()
    threading.Timer(0.2, cancellation.cancel).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cancellation.pause(60)
    assert time.monotonic() - started < 30  # generous: the point is that 60 s were not slept


def test_a_watch_loops_wake_event_is_set_by_the_cancellation_of_its_thread():
    cancellation = Cancellation()
    woken: list[bool] = []
    registered = threading.Event()

    def cluster_thread() -> None:
        install(cancellation)
        wake = threading.Event()
        wake_on_cancel(wake)
        registered.set()
        woken.append(wake.wait(60))

    thread = threading.Thread(target=cluster_thread)
    thread.start()
    assert registered.wait(30)
    cancellation.cancel()
    thread.join(30)
    assert woken == [True]
    late = threading.Event()
    cancellation.wake(late)  # registered after the cancellation: set at once
    assert late.is_set()


def test_threads_without_a_cancellation_never_raise_at_checkpoints():
    cancellation = Cancellation()
    cancellation.cancel()
    raised: list[BaseException] = []

    def watch_thread() -> None:  # e.g. a watch or lock-renewal thread of the cluster
        try:
            checkpoint()
            pause(0.01)
        except BaseException as err:  # noqa: BLE001 - what is asserted
            raised.append(err)

    def cluster_thread() -> None:
        install(cancellation)
        helper = threading.Thread(target=watch_thread)
        helper.start()
        helper.join()
        try:
            checkpoint()
        except KeyboardInterrupt as err:
            raised.append(err)

    thread = threading.Thread(target=cluster_thread)
    thread.start()
    thread.join(30)
    assert [type(err) for err in raised] == [KeyboardInterrupt]
    checkpoint()  # this thread has none installed


def test_ctrl_c_while_the_cluster_threads_start_leaves_none_running_unasked():
    """Ctrl-C can land in the main thread between two ``Thread.start`` calls: the ones
    started are asked to stop and awaited, the rest never start (each is then reported
    interrupted, nothing changed), instead of daemon threads patching on unreported."""
    stops = [Cancellation(), Cancellation(), Cancellation()]
    finished: queue.Queue[int] = queue.Queue()
    stopped: list[int] = []

    def cluster(index: int) -> None:
        install(stops[index])
        try:
            while True:
                pause(0.05)  # a watch loop: its pauses are checkpoints
        except KeyboardInterrupt:
            stopped.append(index)
        finally:
            finished.put(index)

    class CtrlCOnStart(threading.Thread):
        def start(self) -> None:
            raise KeyboardInterrupt

    threads = [
        threading.Thread(target=cluster, args=(0,), daemon=True),
        CtrlCOnStart(target=cluster, args=(1,), daemon=True),
        threading.Thread(target=cluster, args=(2,), daemon=True),
    ]
    assert cluster_run._start_all(threads) is True
    assert [t.ident is not None for t in threads] == [True, False, False]
    assert cluster_run._wait(threads, finished, stops, interrupted=True) == []
    assert stopped == [0]
    assert all(stop.asked for stop in stops)


CHURN = textwrap.dedent(
    """
    import os, signal, sys, threading, time, types
    from kubectl_restart_backend.cancellation import checkpoint
    from kubectl_restart_backend.cluster_run import run_cluster_waves
    from kubectl_restart_backend.cluster_waves import ClusterWave
    from kubectl_restart_backend.outcome import RunOutcome

    started = threading.Barrier(4)

    def restart(session, reporter):
        reporter.restart_sent = True
        if session.context == "quick":  # ends at once: its thread id is free for reuse
            started.wait()
            return RunOutcome(())
        started.wait()
        while True:  # a watch that starts and stops threads all the time
            helpers = [threading.Thread(target=time.sleep, args=(0.001,)) for _ in range(4)]
            for helper in helpers:
                helper.start()
            for helper in helpers:
                helper.join()
            checkpoint()

    def open_session(context, reporter):
        api = types.SimpleNamespace(extend_deadline=lambda deadline: None)
        return types.SimpleNamespace(context=context, server=context, api=api)

    def waiting_for_the_clusters():  # the main thread blocks in _wait, where Ctrl-C is caught
        frame = sys._current_frames().get(threading.main_thread().ident)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        return "_wait" in names and names[0] in ("wait", "get")

    def interrupt():
        started.wait()
        while not waiting_for_the_clusters():
            time.sleep(0.001)  # polling the condition, not a delay standing in for it
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    outcome = run_cluster_waves(
        [ClusterWave(1, ("quick", "eu", "us")), ClusterWave(2, ("later",))],
        open_session=open_session,
        restart=restart,
        reporter_for=lambda context: types.SimpleNamespace(
            restart_sent=False, ran=lambda result: None
        ),
        announce=lambda wave, count: None,
        notice=print,
        timeout=300,
    )
    for result in outcome.clusters:
        said = result.error.message if result.error else result.not_started
        print(f"{result.context}: {result.status.value}: {said}")
    """
)


@pytest.mark.parametrize("attempt", range(10))
def test_ctrl_c_while_cluster_threads_start_watch_threads_interrupts_each_and_returns(attempt):
    finished = subprocess.run(
        [sys.executable, "-c", CHURN], capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert "Exception" not in finished.stderr
    assert finished.stdout.splitlines() == [
        "quick: succeeded: ",
        "eu: error: interrupted: the restart was triggered and goes on in the cluster",
        "us: error: interrupted: the restart was triggered and goes on in the cluster",
        "later: not-started: eu was interrupted",
    ]
