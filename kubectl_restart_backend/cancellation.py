"""Ctrl-C for the threads that restart one cluster each in a run of cluster waves.

A signal reaches the main thread only. A cluster's thread must nevertheless end its watch
exactly as a single-cluster run ends it on Ctrl-C: a ``KeyboardInterrupt`` raised where it
waits, handled by the same code (verdicts known are kept, the lock is given back, the
others are reported interrupted). Raising it from outside (CPython's
``PyThreadState_SetAsyncExc``) lands at any instruction: inside ``Thread.start`` of a watch
thread, inside a lock's release, or, once a thread has ended and its id was reused, in
another thread, which CI saw hang a run for good. So the main thread only *asks*
(``Cancellation.cancel``) and the cluster's thread raises by itself at its next checkpoint:
every API call, every pause between retries or polls, every tick of a watch loop.

Like a signal, a cancellation raises once: the clean-up that follows (giving a lock back,
saying what was interrupted) runs undisturbed. Threads that have no cancellation installed
(the main thread, watch and lock-renewal threads) never raise here.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

_current = threading.local()


class Cancellation:
    """One cluster thread's pending Ctrl-C."""

    def __init__(self) -> None:
        self._asked = threading.Event()
        self._raised = False
        self._wakers: list[threading.Event] = []

    def cancel(self) -> None:
        """Ask the thread to stop (from any thread); it raises at its next checkpoint."""
        self._asked.set()
        for event in list(self._wakers):
            event.set()

    def wake(self, event: threading.Event) -> None:
        """Set ``event`` on cancellation (at once if already asked)."""
        self._wakers.append(event)
        if self._asked.is_set():
            event.set()

    @property
    def asked(self) -> bool:
        return self._asked.is_set()

    def check(self) -> None:
        if self._asked.is_set() and not self._raised:
            self._raised = True
            raise KeyboardInterrupt

    def pause(self, seconds: float) -> None:
        """Sleep, cut short by a cancellation (which then raises)."""
        if self._raised:
            time.sleep(max(0.0, seconds))
            return
        self._asked.wait(max(0.0, seconds))
        self.check()


def install(cancellation: Optional[Cancellation]) -> None:
    """Make ``cancellation`` the calling thread's (None: the thread has none)."""
    _current.cancellation = cancellation


def wake_on_cancel(event: threading.Event) -> None:
    """Set ``event`` when this thread is asked to stop, so that a loop waiting on it reaches
    its checkpoint at once rather than at its next tick."""
    cancellation = getattr(_current, "cancellation", None)
    if cancellation is not None:
        cancellation.wake(event)


def checkpoint() -> None:
    """Raise ``KeyboardInterrupt`` if this thread was asked to stop and has not yet been told."""
    cancellation = getattr(_current, "cancellation", None)
    if cancellation is not None:
        cancellation.check()


def pause(seconds: float) -> None:
    """``time.sleep`` that a cancellation of this thread ends at once."""
    cancellation = getattr(_current, "cancellation", None)
    if cancellation is None:
        time.sleep(max(0.0, seconds))
    else:
        cancellation.pause(seconds)
