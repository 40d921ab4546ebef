"""The event stream of ``-o ndjson``: what a run does, as one JSON object per line.

Pure: every function here turns what the Reporter is told (targets, the patch, judged
rollout states, the outcome documents) into event dicts; ``event_stream.py`` writes them.
The schema is ``docs/events.md`` (``restart-backend.events/v1``): within v1 fields are only
ever added, so a consumer written today keeps working.

Progress is reported as changes, not as a heartbeat: ``track`` folds each judged state into
a ``Seen`` value per workload and returns only the events that something new deserves (a
count moved, a pod changed state, a pod's trouble began, grew or became doomed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from kubectl_restart_backend.kinds import DAEMONSET, Kind
from kubectl_restart_backend.rollout import PodInfo, RolloutState

SCHEMA = "restart-backend.events/v1"
QUIET_TROUBLES = frozenset({"NotReady"})  # warming up is every start-up, not trouble to tell


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-11-30T09:00:00.123Z``."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def make_event(
    event_type: str,
    time: datetime,
    context: Optional[str],
    workload: Optional[str],
    /,
    **fields: Any,
) -> dict[str, Any]:
    """The envelope every event shares, then the type's own fields."""
    return {
        "schema": SCHEMA,
        "type": event_type,
        "time": format_time(time),
        "context": context or None,
        "workload": workload,
        **fields,
    }


def workload_ref(kind: Kind, name: str) -> str:
    """``deployment/backend``: how events name a workload (kubectl's TYPE/NAME)."""
    return kind.ref(name)


# -- before the patch ------------------------------------------------------------------------


def resolved_events(
    targets: Sequence[tuple[Kind, str, str]],
    context: str,
    time: datetime,
    *,
    action: str,
    known: Mapping[str, Any],
    found: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One ``resolved`` event per target: which workload, where, for which repo and branch,
    and how it was found (``found``: by, repoFrom, branchFrom)."""
    return [
        make_event(
            "resolved",
            time,
            context,
            workload_ref(kind, name),
            action=action,
            kind=kind.name,
            name=name,
            namespace=namespace,
            repo=known.get("repo"),
            branch=known.get("branch"),
            foundBy=found.get("by"),
            repoFrom=found.get("repoFrom"),
            branchFrom=found.get("branchFrom"),
        )
        for kind, namespace, name in targets
    ]


def triggered_events(
    targets: Sequence[tuple[Kind, str, str]],
    context: str,
    time: datetime,
    *,
    restarted_at: str,
    patch: Optional[dict],
) -> list[dict[str, Any]]:
    """One ``triggered`` event per workload the patch was sent to."""
    return [
        make_event(
            "triggered",
            time,
            context,
            workload_ref(kind, name),
            namespace=namespace,
            restartedAt=restarted_at or None,
            patch=patch,
        )
        for kind, namespace, name in targets
    ]


# -- while watching --------------------------------------------------------------------------


@dataclass(frozen=True)
class PodMark:
    """What a progress event says of one pod; a change of any of it is a state change."""

    new: bool
    status: str
    ready: bool
    restarts: int

    def document(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "new": self.new,
            "status": self.status,
            "ready": self.ready,
            "restarts": self.restarts,
        }


@dataclass(frozen=True)
class Seen:
    """What the stream has already told of one workload's rollout."""

    counts: Optional[tuple] = None
    pods: Mapping[str, PodMark] = field(default_factory=dict)
    troubles: Mapping[str, tuple] = field(default_factory=dict)  # pod -> its trouble's key


def available_of(workload: Optional[Mapping[str, Any]], kind: Kind) -> Optional[int]:
    """The controller's own count of available pods (old and new), as kubectl reads it."""
    if not workload:
        return None
    status = workload.get("status") or {}
    key = "numberAvailable" if kind is DAEMONSET else "availableReplicas"
    return int(status.get(key) or 0)


def track(
    seen: Seen,
    state: RolloutState,
    time: datetime,
    *,
    context: str,
    workload: str,
    available: Optional[int] = None,
) -> tuple[Seen, list[dict[str, Any]]]:
    """Fold one judged state into what was told; the events it deserves, in order: trouble
    of new pods first (what happened), then the progress it led to."""
    marks = {pod.name: _mark(pod) for pod in state.pods}
    counts = (
        state.phase.value,
        state.reason,
        state.updated_replicas,
        state.ready_replicas,
        available,
        state.replicas,
    )
    events = []
    troubles = {}
    for pod in state.pods:
        key = _trouble_key(pod)
        if key is None:
            continue
        troubles[pod.name] = key
        if seen.troubles.get(pod.name) != key:
            events.append(trouble_event(pod, time, context=context, workload=workload))
    changed = [name for name, mark in marks.items() if seen.pods.get(name) != mark]
    gone = [name for name in seen.pods if name not in marks]
    if counts != seen.counts or changed or gone:
        events.append(
            make_event(
                "progress",
                time,
                context,
                workload,
                phase=state.phase.value,
                reason=state.reason,
                message=state.message,
                updated=state.updated_replicas,
                ready=state.ready_replicas,
                available=available,
                replicas=state.replicas,
                pods=[marks[name].document(name) for name in changed],
                gone=gone,
            )
        )
    return Seen(counts, marks, troubles), events


def _mark(pod: PodInfo) -> PodMark:
    return PodMark(pod.is_new, pod.status, pod.ready, pod.restarts)


def _trouble_key(pod: PodInfo) -> Optional[tuple]:
    """What makes a new pod's trouble worth a new event: another row, another restart or
    failed pull, or becoming doomed. None: no trouble to tell."""
    if not pod.is_new or not pod.trouble or pod.trouble in QUIET_TROUBLES:
        return None
    return (pod.trouble, pod.failing, pod.restarts, pod.failed_pulls)


def classification(pod: PodInfo) -> str:
    """``doomed`` (it fails the restart), ``recovering`` (a row that never fails on its own)
    or ``tolerated`` (waited out within --max-restarts, --max-pull-failures, a grace)."""
    if pod.failing:
        return "doomed"
    if pod.doom == "recovering":
        return "recovering"
    return "tolerated"


def trouble_event(pod: PodInfo, time: datetime, *, context: str, workload: str) -> dict[str, Any]:
    """One new pod's classified trouble (the trouble table's row and what it means now)."""
    return make_event(
        "trouble",
        time,
        context,
        workload,
        pod=pod.name,
        container=pod.container,
        trouble=pod.trouble,
        reason=pod.status,
        message=pod.message,
        lastTermination=pod.last_termination,
        classification=classification(pod),
        doom=pod.doom,
        tolerance=pod.tolerance,
        restarts=pod.restarts,
        failedPulls=pod.failed_pulls,
        failure=pod.failure,
    )


# -- each workload's end, and the run's ------------------------------------------------------


def verdict_events(document: Mapping[str, Any], time: datetime) -> list[dict[str, Any]]:
    """One workload's end (``document``: its report document, ``render.outcome_document``):
    its ``verification`` (when the smoke check ran), then its ``verdict``."""
    ref = _ref_of(document)
    events = []
    if document.get("verification") is not None:
        events.append(
            make_event(
                "verification", time, document.get("context"), ref, **document["verification"]
            )
        )
    events.append(_verdict_and_document("verdict", time, ref, document))
    return events


VerdictKey = tuple[Optional[str], Optional[str], Optional[str], Optional[str]]


def verdict_key(document: Mapping[str, Any]) -> VerdictKey:
    """What names one workload's verdict within a run, over all its clusters."""
    return (
        document.get("context"),
        document.get("namespace"),
        document.get("kind"),
        document.get("appName"),
    )


def workload_documents(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The workloads' documents in a run's (or one cluster's) document: its ``workloads``
    for several, else the document itself."""
    return list(document.get("workloads") or [document])


def untold_verdicts(
    documents: Sequence[Mapping[str, Any]], told: frozenset[VerdictKey], time: datetime
) -> tuple[list[dict[str, Any]], frozenset[VerdictKey]]:
    """The ``verification`` and ``verdict`` events of the workloads whose verdict was not
    told yet, and what is told then: each verdict is written once, as soon as it is final
    (``on_concluded``) or, for the rest, at the end of its cluster's run or of the run."""
    events: list[dict[str, Any]] = []
    for document in documents:
        key = verdict_key(document)
        if key not in told:
            told = told | {key}
            events += verdict_events(document, time)
    return events, told


def run_event(document: Mapping[str, Any], time: datetime) -> dict[str, Any]:
    """The last event of every run that reached verdicts: the whole run's document."""
    return _verdict_and_document("run", time, None, document)


def _verdict_and_document(
    event_type: str, time: datetime, workload: Optional[str], document: Mapping[str, Any]
) -> dict[str, Any]:
    return make_event(
        event_type,
        time,
        document.get("context"),
        workload,
        verdict=document["verdict"],
        exitCode=document["exitCode"],
        document=dict(document),
    )


def error_event(document: Mapping[str, Any], time: datetime) -> dict[str, Any]:
    """A run that ended in an error instead of verdicts (bad input, refusal, API error,
    interruption): the error document (``render.error_document``), always the last line."""
    error = document.get("error") or {}
    return make_event(
        "error",
        time,
        document.get("context"),
        None,
        message=error.get("message"),
        hint=error.get("hint"),
        exitCode=document["exitCode"],
        document=dict(document),
    )


def _ref_of(document: Mapping[str, Any]) -> Optional[str]:
    if not document.get("kind") or not document.get("appName"):
        return None
    return f"{str(document['kind']).lower()}/{document['appName']}"
