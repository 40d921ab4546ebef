"""Cluster waves: the same restart on several kubeconfig contexts, one cluster wave at a time
(staging, then the production regions), stopping at the first wave that does not fully
succeed.

Not the waves of workloads within one cluster (``order:``, ``restart.py``): each cluster of a
cluster wave runs the whole single-cluster restart, its own workload waves included.

Pure: which cluster waves a run has (repeated ``--context`` or ``waves:``), whether the next
one may start, how a cluster and the whole run are summed up, and their exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping, Optional, Sequence

from kubectl_restart_backend.errors import ExitCode, UsageError, severity, shown
from kubectl_restart_backend.outcome import RunOutcome, Verdict

SUCCEEDED = (Verdict.COMPLETE, Verdict.NO_PODS, Verdict.TRIGGERED, Verdict.DRY_RUN)
_ENDED = {  # "its cluster wave comes after prod-us failed"
    Verdict.FAILED: "failed",
    Verdict.TIMEOUT: "timed out",
    Verdict.SUPERSEDED: "was superseded",
    Verdict.INTERRUPTED: "was interrupted",
}


@dataclass(frozen=True)
class ClusterWave:
    """Clusters (kubeconfig contexts) restarted together; ``number`` counts from 1."""

    number: int
    contexts: tuple[str, ...]


def plan_cluster_waves(
    flag_contexts: Sequence[str],
    file_waves: Sequence[Sequence[str]] = (),
    *,
    file_where: Optional[str] = None,
) -> tuple[ClusterWave, ...]:
    """The cluster waves of a run: ``waves:`` of ``.restart-backend.yaml`` as written, or
    one wave per ``--context``, in the order given (the cautious reading: the first context
    is the canary; restarting clusters together is asked for in ``waves:``). ``--context``
    wins over ``waves:``, as every flag wins over the file (``flags_replace_waves`` says so).

    Empty when the run is not a run of several clusters (one or no ``--context``, no
    ``waves:``). Mistakes are ``UsageError``s, raised before any cluster is touched.
    """
    if flag_contexts:
        file_waves = ()
    if file_waves:
        waves = [tuple(wave) for wave in file_waves]
        source = f"waves: ({file_where})" if file_where else "waves:"
    else:
        if len(flag_contexts) < 2:
            return ()
        waves = [(context,) for context in flag_contexts]
        source = "--context"
    seen: set[str] = set()
    for number, wave in enumerate(waves, 1):
        if not wave:
            raise UsageError(
                f"cluster wave {number} of {source} names no context",
                "give each wave at least one context: {contexts: [NAME]}",
            )
        for context in wave:
            if not context or not context.strip():
                raise UsageError(
                    f"an empty context name in {source}",
                    "name each cluster by its kubeconfig context (kubectl config get-contexts)",
                )
            if context in seen:
                raise UsageError(
                    f"context {shown(context)} is given twice in {source}",
                    "each cluster is restarted once: name each context once",
                )
            seen.add(context)
    if len(seen) < 2:
        return ()
    return tuple(ClusterWave(n, w) for n, w in enumerate(waves, 1))


def flags_replace_waves(
    flag_contexts: Sequence[str],
    file_waves: Sequence[Sequence[str]],
    file_where: Optional[str] = None,
) -> str:
    """The note for ``--context`` given where the file has ``waves:`` ("" otherwise): the
    flag wins, and the user should see which canary order the command line just skipped."""
    if not flag_contexts or not file_waves:
        return ""
    where = f" ({file_where})" if file_where else ""
    order = ", then ".join(", ".join(wave) for wave in file_waves)
    given = ", ".join(flag_contexts)
    return f"--context {given} replaces the cluster waves of waves:{where}: {order}"


def context_of_single_wave(
    flag_contexts: Sequence[str], file_waves: Sequence[Sequence[str]]
) -> Optional[str]:
    """The one context of ``waves:`` naming a single cluster (then it is an ordinary run)."""
    if not flag_contexts and file_waves and sum(len(w) for w in file_waves) == 1:
        return next(context for wave in file_waves for context in wave)
    return None


def check_from_wave(waves: Sequence[ClusterWave], from_wave: int) -> None:
    """``--from-wave`` needs cluster waves, and one of that number."""
    if not waves:
        raise UsageError(
            f"--from-wave {from_wave} needs cluster waves, and this restart runs on one cluster",
            "name the waves in .restart-backend.yaml (waves:) or repeat --context, or drop "
            "--from-wave",
        )
    if from_wave > len(waves):
        count = f"{len(waves)} cluster wave" + ("s" if len(waves) != 1 else "")
        raise UsageError(
            f"--from-wave {from_wave}: there are only {count} "
            f"({'; '.join(', '.join(w.contexts) for w in waves)})",
            f"give a number from 1 to {len(waves)}",
        )


def skipped_waves_note(waves: Sequence[ClusterWave], from_wave: int) -> list[str]:
    """What ``--from-wave`` leaves out, said before anything is sent."""
    skipped = [wave for wave in waves if wave.number < from_wave]
    if not skipped:
        return []
    listed = "; ".join(f"wave {w.number} ({', '.join(w.contexts)})" for w in skipped)
    return [f"--from-wave {from_wave}: not restarting cluster {listed}"]


def shared_servers(servers: Mapping[str, str]) -> list[str]:
    """Warnings for contexts that reach the same API server: the search looks in all
    namespaces (or the same -n), so both would restart the same workloads, unless their users
    may list only their own namespace. Said, not refused: that last case is legitimate."""
    by_server: dict[str, list[str]] = {}
    for context, server in servers.items():
        if server:
            by_server.setdefault(server, []).append(context)
    return [
        f"contexts {', '.join(contexts)} reach the same API server ({server}): each restarts "
        "the workloads it finds there, the same ones unless their users may list only their "
        "own namespace"
        for server, contexts in by_server.items()
        if len(contexts) > 1
    ]


@dataclass(frozen=True)
class ClusterError:
    """A cluster's run ended in an error instead of verdicts (unreachable, nothing linked,
    forbidden): what ``error:`` and ``hint:`` say, and the exit code it has alone."""

    message: str
    hint: str
    exit_code: int
    triggered: bool = False  # the restart had been sent to this cluster before the error


class ClusterStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a verdict other than success (failed, timeout, superseded, ...)
    ERROR = "error"
    NOT_STARTED = "not-started"


@dataclass(frozen=True)
class ClusterResult:
    """One cluster of a run: its own run (the ordinary document), or its error, or why it
    was not touched."""

    context: str
    wave: int
    run: Optional[RunOutcome] = None
    error: Optional[ClusterError] = None
    not_started: str = ""  # NOT_STARTED: what came first ("prod-us failed")
    duration_seconds: float = 0.0

    @property
    def status(self) -> ClusterStatus:
        if self.error is not None:
            return ClusterStatus.ERROR
        if self.run is None:
            return ClusterStatus.NOT_STARTED
        if all(o.verdict in SUCCEEDED for o in self.run.outcomes):
            return ClusterStatus.SUCCEEDED
        return ClusterStatus.FAILED


@dataclass(frozen=True)
class ClustersOutcome:
    """A run of several clusters: every cluster of every wave, in wave order."""

    waves: tuple[ClusterWave, ...]
    clusters: tuple[ClusterResult, ...]
    duration_seconds: float = 0.0
    from_wave: int = 1  # --from-wave: the waves before it were left alone, unreported


def what_ended(result: ClusterResult) -> str:
    """How a cluster that did not succeed is named to the clusters it holds back."""
    if result.error is not None:
        if result.error.exit_code == ExitCode.INTERRUPTED:
            return f"{result.context} was interrupted"
        return f"{result.context} ended in an error"
    if result.run is not None:
        for outcome in result.run.outcomes:
            if outcome.verdict in _ENDED:
                return f"{result.context} {_ENDED[outcome.verdict]}"
    return f"{result.context} did not succeed"


def blocked_by(wave: Sequence[ClusterResult]) -> str:
    """Why the next cluster wave must not start ("" when every cluster of this one
    succeeded): the first cluster, in wave order, that did not."""
    for result in wave:
        if result.status is not ClusterStatus.SUCCEEDED:
            return what_ended(result)
    return ""


def not_started(wave: ClusterWave, blocked: str) -> tuple[ClusterResult, ...]:
    """A later wave's clusters after one that did not succeed: nothing is sent to them."""
    return tuple(ClusterResult(c, wave.number, not_started=blocked) for c in wave.contexts)


def cluster_severity(code: int) -> int:
    """Rank of a cluster's exit code, worst first: an interruption, a failed restart, then
    an error (the cluster was not restarted: unreachable, nothing linked, forbidden), then
    a timeout, a superseded rollout, success (``errors.SEVERITY`` with errors inserted)."""
    rank = severity(code)
    if code in _VERDICT_CODES:
        return rank + 1 if rank >= _ERRORS_RANK else rank
    return _ERRORS_RANK  # an error's code (2, 4, 5): just after a failed restart


_ERRORS_RANK = 2
_VERDICT_CODES = frozenset(
    {ExitCode.INTERRUPTED, ExitCode.ROLLOUT_FAILED, ExitCode.TIMEOUT, ExitCode.SUPERSEDED,
     ExitCode.OK}
) | frozenset(range(129, 256))  # fmt: skip


def worst_cluster_code(codes: Sequence[int]) -> int:
    """The exit code of a run of several clusters: the most severe of theirs."""
    return int(min(codes, key=cluster_severity)) if codes else int(ExitCode.OK)
