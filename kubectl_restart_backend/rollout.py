"""The rollout verdict: one pure function from a workload + its ReplicaSets + Pods to a state.

``compute_rollout_state`` is the contract between the watcher (which only gathers snapshots)
and the renderer (which only prints). It judges every kind (Deployment, StatefulSet,
DaemonSet) in the order kstatus does, generic checks first:

1. the workload is gone or being deleted                -> FAILED     Deleted
2. someone else changed the pod template while we watch -> SUPERSEDED Superseded
3. someone paused it while we watch (Deployments)       -> SUPERSEDED Paused
4. the controller has not observed our generation       -> WAITING    WaitingForObservation
   (a status that merely looks ready before that is somebody else's rollout: the classic bug)
5. a NEW pod is doomed                                  -> FAILED     CrashLoopBackOff, ...,
                                                                      PodFailed, Unschedulable
then the kind's own rules (``kind_rules.py``):
6. Deployments: the ReplicaSet cannot create pods       -> FAILED     ReplicaFailure
7. Deployments: the progress deadline passed            -> FAILED     ProgressDeadlineExceeded
8. the new ReplicaSet / update revision is not there    -> WAITING    WaitingForReplicaSet,
                                                                      WaitingForUpdateRevision
9. the kind's completion rule, plus ready new pods      -> COMPLETE, else PROGRESSING

Which pods are new is the kind's (``kind_rules.group_pods``); whether a new pod (5) or the
ReplicaSet (6) is doomed, and when, is the trouble table (``trouble.py``) with the user's
tolerance, the same for every kind: trouble that may still heal keeps the rollout
PROGRESSING. A superseded rollout (2, 3) is not a failure of ours, and never ours to undo.
Pod failures come before the Deployment's own conditions because they say *why*: after ten
minutes "progress deadline exceeded" is true, but "CrashLoopBackOff: exit code 1" is useful.
Old pods never cause a failure: they are on their way out. StatefulSets and DaemonSets have
no progress deadline and no ReplicaFailure condition: a pod their controller cannot create
is said by the timeout, with the controller's FailedCreate events in the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Mapping, Optional, Sequence

from kubectl_restart_backend.changes import changed_by, describe_template_change, template_changes
from kubectl_restart_backend.diagnosis import (
    PodInfo,
    classify_pod,
    failure_rank,
    format_age,
    one_line,
    pod_is_terminating,
    unschedulable_for,
    unschedulable_message,
)
from kubectl_restart_backend.kind_rules import (
    Grouping,
    desired_pods,
    group_pods,
    partition,
    progress,
    restarted_pods,
    strip_hash,
)
from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, STATEFULSET, Kind
from kubectl_restart_backend.trouble import (
    DEFAULT_TOLERANCE,
    NO_MEMORY,
    Doom,
    Evidence,
    Memory,
    Tolerance,
    Where,
    judge,
    rule_for,
)


class Phase(str, Enum):
    """Where a rollout is; FAILED and COMPLETE are final for the caller."""

    WAITING = "Waiting"  # our generation not observed yet, or new ReplicaSet not there yet
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"  # someone else's change (a newer template, a pause) took over


@dataclass(frozen=True)
class RolloutState:
    """The verdict for one snapshot (see docs/architecture.md, "Rollout state")."""

    phase: Phase
    reason: str
    message: str
    ready_replicas: int
    replicas: int
    updated_replicas: int
    failure_reason: Optional[str]
    pods: tuple[PodInfo, ...]
    new_replicaset: Optional[str]  # the new ReplicaSet, or the new revision (StatefulSets:
    # status.updateRevision; DaemonSets: the controller-revision-hash of the new pods)
    troubles: tuple[str, ...] = ()  # time-based troubles present now (Memory.since keys)

    @property
    def ready(self) -> bool:
        """The spec's ``ready``: the rollout is complete."""
        return self.phase is Phase.COMPLETE

    @property
    def failed(self) -> bool:
        """The spec's ``failed``."""
        return self.phase is Phase.FAILED

    @property
    def superseded(self) -> bool:
        """Someone else's change took over the rollout we watched."""
        return self.phase is Phase.SUPERSEDED

    @property
    def rollout_in_progress(self) -> bool:
        """The spec's ``rolloutInProgress``: neither complete nor failed (nor superseded)."""
        return not (self.ready or self.failed or self.superseded)


def compute_rollout_state(
    workload: Optional[Mapping[str, Any]],
    replicasets: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: datetime,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    memory: Memory = NO_MEMORY,
    events: Sequence[Mapping[str, Any]] = (),
    template: Optional[Mapping[str, Any]] = None,
    kind: Kind = DEPLOYMENT,
) -> RolloutState:
    """Judge the rollout that our PATCH (which returned ``generation``) started.

    ``workload`` is a Deployment, StatefulSet or DaemonSet (``kind``); ``replicasets`` matter
    for Deployments only. ``template`` is the ``spec.template`` our PATCH returned. With it, a
    later generation whose template is still ours (an HPA or someone scaling) is followed,
    with the new replica count, while a changed template means someone else started another
    rollout (``Superseded``). Without it a later generation cannot be told apart and is
    followed.

    ``tolerance`` is how much trouble new pods may have; ``memory`` what earlier updates
    showed (failed pulls, since when a trouble lasts). The state's ``troubles`` are the
    time-based troubles present now, for the caller to fold into the next ``memory``.

    ``events`` only fill in explanations the objects lack (e.g. a FailedCreate message when the
    ReplicaFailure condition has none); they never decide the phase on their own.
    """
    if workload is None:
        return _gone(f"{kind.word} was deleted during the rollout")
    meta = workload.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return _gone(f"{kind.word} is being deleted")

    current_generation = int(meta.get("generation") or 0)
    status = workload.get("status") or {}
    wanted = max(generation, current_generation)
    observed = int(status.get("observedGeneration") or 0)
    grouping = group_pods(kind, workload, replicasets, pods, observed=observed >= wanted)
    snapshot = _Snapshot.build(kind, workload, grouping, pods, now, tolerance, memory)
    if current_generation > generation and template is not None:
        if strip_hash(snapshot.template) != strip_hash(template):
            return _superseded(snapshot, template)
    if kind.pausable and (workload.get("spec") or {}).get("paused"):
        who = changed_by(workload, [("spec", "paused")])
        by = f" (manager: {who})" if who else ""
        return snapshot.verdict(Phase.SUPERSEDED, "Paused", f"paused during the rollout{by}")

    if observed < wanted:
        return snapshot.verdict(
            Phase.WAITING,
            "WaitingForObservation",
            f"waiting for the {kind.word} controller to observe generation {wanted}; "
            f"last observed {observed}",
        )
    return _judge_observed(snapshot, status, events)


def _superseded(snapshot: _Snapshot, ours: Mapping[str, Any]) -> RolloutState:
    """Someone else's template replaced ours: say what changed and, if the API tells, who."""
    theirs = strip_hash(snapshot.template)
    ours = strip_hash(ours)
    what = describe_template_change(ours, theirs)
    who = changed_by(snapshot.workload, [path for _text, path in template_changes(ours, theirs)])
    by = f" (manager: {who})" if who else ""
    return snapshot.verdict(
        Phase.SUPERSEDED, "Superseded", f"superseded by a newer change: {what}{by}"
    )


def _judge_observed(
    snapshot: _Snapshot, status: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> RolloutState:
    """Rules 5-9: the status is about our generation, so it can now be believed."""
    failing = [p for p in snapshot.new_pods if p.failing]
    if failing:
        return _pod_failure(snapshot, failing, events)

    if snapshot.kind is DEPLOYMENT:
        failed = _deployment_failure(snapshot, status, events)
        if isinstance(failed, RolloutState):
            return failed
        snapshot = failed

    if snapshot.new_group is None and snapshot.target > 0 and snapshot.kind is not DAEMONSET:
        # (a DaemonSet's new revision shows with its first new pod: its progress says so)
        if snapshot.kind is DEPLOYMENT:
            reason, what = "WaitingForReplicaSet", "the new ReplicaSet to be created"
        else:
            reason, what = "WaitingForUpdateRevision", "the statefulset's update revision"
        return snapshot.verdict(Phase.WAITING, reason, f"waiting for {what}")

    running_old = [p.name for p in snapshot.old_pods if _is_active(snapshot.raw_pods[p.name])]
    held = progress(
        snapshot.kind,
        snapshot.workload,
        new_ready=snapshot.ready_replicas,
        old_active=running_old,
    )
    if held is not None:
        return snapshot.verdict(Phase.PROGRESSING, *held)
    return snapshot.verdict(Phase.COMPLETE, "Complete", _complete_text(snapshot))


def _complete_text(snapshot: _Snapshot) -> str:
    """``deployment "backend" successfully rolled out (3/3 pods ready)``, and what a
    StatefulSet's partition kept on the old template."""
    kind, name = snapshot.kind, snapshot.name
    if snapshot.target == 0 and partition(kind, snapshot.workload) == 0:
        return f'{kind.word} "{name}" has 0 {_noun(kind)}: no pods to restart'
    text = (
        f'{kind.word} "{name}" successfully rolled out '
        f"({snapshot.ready_replicas}/{snapshot.target} pods ready)"
    )
    kept = partition(kind, snapshot.workload)
    if kept:
        text += f"; partition {kept}: pods below ordinal {kept} keep the old template"
    return text


def _noun(kind: Kind) -> str:
    return "replicas" if kind.replicasets or kind is STATEFULSET else "pods scheduled"


def _deployment_failure(
    snapshot: _Snapshot, status: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> RolloutState | _Snapshot:
    """Rules 6-7, the Deployment controller's own verdicts: a FAILED state, or the snapshot
    (with the ReplicaFailure it is waiting out, if any, among its troubles)."""
    replica_failure, key = _replica_failure(snapshot, status, events)
    if key is not None:
        snapshot = snapshot.with_trouble(key)
    if replica_failure:
        return snapshot.verdict(Phase.FAILED, "ReplicaFailure", replica_failure)

    progressing = _condition(status, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        deadline = (snapshot.workload.get("spec") or {}).get("progressDeadlineSeconds", 600)
        running_old = [p.name for p in snapshot.old_pods if _is_active(snapshot.raw_pods[p.name])]
        held = progress(
            DEPLOYMENT,
            snapshot.workload,
            new_ready=snapshot.ready_replicas,
            old_active=running_old,
        )
        where = held[1] if held else ""
        text = f"progress deadline exceeded ({deadline}s)" + (f": {where}" if where else "")
        return snapshot.verdict(Phase.FAILED, "ProgressDeadlineExceeded", text)
    return snapshot


def _is_active(pod: Mapping[str, Any]) -> bool:
    """Neither being deleted nor finished (Succeeded/Failed, e.g. an evicted pod left for pod
    GC): the pods the controller counts (controller.IsPodActive)."""
    phase = (pod.get("status") or {}).get("phase")
    return not pod_is_terminating(pod) and phase not in ("Succeeded", "Failed")


def _pod_failure(
    snapshot: _Snapshot, failing: list[PodInfo], events: Sequence[Mapping[str, Any]]
) -> RolloutState:
    """FAILED because of the most telling doomed pod of the new ReplicaSet."""
    worst = min(failing, key=lambda p: (failure_rank(p), p.name))
    if worst.failure_kind != "Unschedulable":
        return snapshot.verdict(Phase.FAILED, worst.failure_kind or "PodFailed", worst.failure)
    # Unschedulable is about capacity, so it is said for the pods together, scheduler's words.
    raw = snapshot.raw_pods[worst.name]
    elapsed = unschedulable_for(raw, snapshot.now) or 0.0
    message = unschedulable_message(raw) or _latest_event_message(
        events, "Pod", worst.name, "FailedScheduling"
    )
    text = f"pods unschedulable for {format_age(elapsed)}" + (f": {message}" if message else "")
    return snapshot.verdict(Phase.FAILED, "Unschedulable", text)


def _replica_failure(
    snapshot: _Snapshot, status: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> tuple[Optional[str], Optional[str]]:
    """('ReplicaSet could not create pods: ...' when that dooms the rollout, else None; the
    Memory key of the trouble while it lasts, else None).

    Quota is the race of rolling updates: the new ReplicaSet asks for a pod before an old
    one has gone. While old pods are terminating it is not counted at all; after that, the
    grace counts from the moment none was left.
    """
    sources = [status]
    if snapshot.new_rs is not None:
        sources.append(snapshot.new_rs.get("status") or {})
    for source in sources:
        cond = _condition(source, "ReplicaFailure")
        if cond.get("status") != "True":
            continue
        message = one_line(cond.get("message"))
        if not message and snapshot.new_group:
            message = _latest_event_message(
                events, "ReplicaSet", snapshot.new_group, "FailedCreate"
            )
        rule = rule_for(Where.REPLICA_FAILURE, cond.get("reason"), message)
        if rule is None or rule.doom is Doom.RECOVERING:
            return None, None
        if rule.kind == "QuotaExceeded" and snapshot.old_pods_terminating:
            return None, None
        key = f"rs/{snapshot.new_group or snapshot.name}/{rule.kind}"
        evidence = Evidence(seconds=snapshot.memory.lasted(key, snapshot.now))
        verdict = judge(rule, evidence, snapshot.tolerance)
        if not verdict.doomed:
            return None, key
        text = "ReplicaSet could not create pods" + (
            f": {_drop_forbidden(message)}" if message else ""
        )
        if verdict.progress:
            text += f" ({verdict.progress})"
        return text, key if rule.doom is Doom.AFTER_SECONDS else None
    return None, None


def _drop_forbidden(message: str) -> str:
    """'pods "x-1" is forbidden: exceeded quota: q, ...' -> 'exceeded quota: q, ...'."""
    head, sep, rest = message.partition(" is forbidden: ")
    return rest if sep and head.startswith("pods ") else message


def _latest_event_message(
    events: Sequence[Mapping[str, Any]], kind: str, name: str, reason: str
) -> str:
    """The message of the last matching event in the given order (the watcher appends them)."""
    found = ""
    for event in events:
        obj = event.get("involvedObject") or event.get("regarding") or {}
        if obj.get("kind") == kind and obj.get("name") == name and event.get("reason") == reason:
            found = one_line(event.get("message") or event.get("note")) or found
    return found


def _gone(text: str) -> RolloutState:
    return RolloutState(
        phase=Phase.FAILED,
        reason="Deleted",
        message=text,
        ready_replicas=0,
        replicas=0,
        updated_replicas=0,
        failure_reason=text,
        pods=(),
        new_replicaset=None,
    )


# --------------------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class _Snapshot:
    """The objects of one rollout, sorted out: which pods are new, which old, which not ours."""

    kind: Kind
    workload: Mapping[str, Any]
    name: str
    template: Mapping[str, Any]
    replicas: int  # pods the workload runs
    target: int  # pods the rollout brings to the new template (replicas - a partition)
    new_group: Optional[str]  # the new ReplicaSet or revision
    new_rs: Optional[Mapping[str, Any]]  # Deployments: the new ReplicaSet object
    new_pods: tuple[PodInfo, ...]  # failing first (most telling first), then by name
    old_pods: tuple[PodInfo, ...]
    raw_pods: Mapping[str, Mapping[str, Any]]
    ready_replicas: int
    now: datetime
    tolerance: Tolerance
    memory: Memory
    troubles: tuple[str, ...]  # time-based troubles present now (Memory.since keys)

    @classmethod
    def build(
        cls,
        kind: Kind,
        workload: Mapping[str, Any],
        grouping: Grouping,
        pods: Sequence[Mapping[str, Any]],
        now: datetime,
        tolerance: Tolerance,
        memory: Memory,
    ) -> _Snapshot:
        new_pods, old_pods, raw = [], [], {}
        for pod in pods:
            owner = grouping.groups.get((pod.get("metadata") or {}).get("name") or "")
            if owner is None:
                continue  # not ours: another workload's pod, or an orphan
            info = classify_pod(
                pod,
                now=now,
                new_rs=grouping.new,
                tolerance=tolerance,
                memory=memory,
                replicaset=owner,
            )
            raw[info.name] = pod
            (new_pods if info.is_new else old_pods).append(info)
        new_pods.sort(key=lambda p: (not p.failing, failure_rank(p), pod_sort_key(p)))
        old_pods.sort(key=pod_sort_key)
        ready = sum(1 for p in new_pods if p.ready and not pod_is_terminating(raw[p.name]))
        return cls(
            kind=kind,
            workload=workload,
            name=(workload.get("metadata") or {}).get("name") or "",
            template=(workload.get("spec") or {}).get("template") or {},
            replicas=desired_pods(kind, workload),
            target=restarted_pods(kind, workload),
            new_group=grouping.new,
            new_rs=grouping.new_replicaset,
            new_pods=tuple(new_pods),
            old_pods=tuple(old_pods),
            raw_pods=raw,
            ready_replicas=ready,
            now=now,
            tolerance=tolerance,
            memory=memory,
            troubles=tuple(
                p.trouble_key for p in new_pods if p.trouble_key and p.doom == Doom.AFTER_SECONDS
            ),
        )

    @property
    def old_pods_terminating(self) -> bool:
        return any(pod_is_terminating(self.raw_pods[p.name]) for p in self.old_pods)

    def with_trouble(self, key: str) -> _Snapshot:
        return dataclasses.replace(self, troubles=(*self.troubles, key))

    def verdict(self, phase: Phase, reason: str, text: Optional[str]) -> RolloutState:
        """The state for this snapshot; a FAILED verdict's text is also its failure_reason."""
        status = self.workload.get("status") or {}
        key = "updatedNumberScheduled" if self.kind is DAEMONSET else "updatedReplicas"
        shown = self.new_pods if phase is Phase.COMPLETE else self.new_pods + self.old_pods
        return RolloutState(
            phase=phase,
            reason=reason,
            message=text or reason,
            ready_replicas=self.ready_replicas,
            replicas=self.target,
            updated_replicas=int(status.get(key) or 0),
            failure_reason=(text or reason) if phase is Phase.FAILED else None,
            pods=shown,
            new_replicaset=self.new_group,
            troubles=self.troubles,
        )


def pod_sort_key(info: PodInfo) -> tuple[bool, str]:
    """Pods that are not ready first (they are the interesting ones), then by name."""
    return (info.ready, info.name)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return {}
