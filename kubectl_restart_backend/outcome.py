"""What one run ended with: a value the renderers print and the CLI maps to an exit code.

Keeping the verdict a value (not an exception) keeps "the rollout failed" apart from "the
tool broke": only the latter is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from kubectl_restart_backend.kinds import DEPLOYMENT, Kind
from kubectl_restart_backend.rollout import RolloutState
from kubectl_restart_backend.verify import Verification


class Verdict(str, Enum):
    COMPLETE = "complete"
    FAILED = "failed"
    TIMEOUT = "timeout"
    TRIGGERED = "triggered"  # --no-wait
    NO_PODS = "no-pods"  # spec.replicas is 0
    DRY_RUN = "dry-run"
    INTERRUPTED = "interrupted"  # Ctrl-C while watching: the restart goes on
    SUPERSEDED = "superseded"  # someone else's change took over: not ours to fail or undo
    NOT_STARTED = "not-started"  # a later wave of an ordered run, after one that did not succeed


@dataclass(frozen=True)
class LogExcerpt:
    pod: str
    container: str
    previous: bool
    lines: tuple[str, ...]
    error: str = ""  # why the log could not be read (permission, gone)


class Sent(str, Enum):
    """Whether a write left us: what a Ctrl-C in the middle of it leaves the user to know."""

    NO = "no"
    YES = "yes"
    UNKNOWN = "unknown"  # on its way when interrupted: it may have been applied


@dataclass(frozen=True)
class Rollback:
    """What ``--undo-on-failure`` did.

    ``refused`` is the guard at work: the live pod template was no longer the one our restart
    made, so nothing was sent (someone else's change is never undone).
    """

    revision: Optional[int]
    state: Optional[RolloutState]
    error: str = ""
    refused: bool = False
    sent: Sent = Sent.YES


@dataclass(frozen=True)
class LockReport:
    """What the restart lock did (README, "One restart at a time").

    ``held`` is False when the restart went on without it (no permission, no Lease API);
    ``waited_for`` names the other run we waited for, if any.
    """

    lease: str  # namespace/name of the Lease
    held: bool
    waited_seconds: float = 0.0
    waited_for: str = ""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    app_name: str
    namespace: str
    context: str
    repo: Optional[str] = None
    branch: Optional[str] = None
    restarted_at: Optional[str] = None
    state: Optional[RolloutState] = None
    duration_seconds: float = 0.0
    urls: tuple[str, ...] = ()
    urls_note: str = ""  # said instead of URLs when there are none or we could not look
    events: tuple = ()  # diagnosis.EventLine
    events_note: str = ""  # said when the events could not be read
    logs: tuple[LogExcerpt, ...] = ()
    notes: tuple[str, ...] = ()  # things the user should know (fallbacks, degraded reports)
    plan: dict = field(default_factory=dict)  # --dry-run: what would be sent and checked
    rollback: Optional[Rollback] = None
    own_restart: bool = False  # the rollout watched is the one our restart started
    interrupted: str = ""  # Ctrl-C after the verdict was known: what it cut short
    verification: Optional[Verification] = None  # the smoke check and settle window, if run
    kind: Kind = DEPLOYMENT
    update_strategy: str = "RollingUpdate"
    on_delete: bool = False  # OnDelete without --delete-pods: the patch replaced no pod
    deleted_pods: tuple[str, ...] = ()  # pods we deleted (--delete-pods), in order
    not_started: str = ""  # NOT_STARTED: why (the earlier wave that did not succeed)
    lock: Optional[LockReport] = None  # the restart lock (None: no restart was sent)

    @property
    def label(self) -> str:
        """``statefulset/db``: how a run of several workloads names this one."""
        return self.kind.ref(self.app_name)


@dataclass(frozen=True)
class RunOutcome:
    """Everything one run did: one outcome per workload, in the order they were restarted."""

    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = ()  # about the run as a whole (order entries naming nothing)

    @property
    def single(self) -> bool:
        return len(self.outcomes) == 1
