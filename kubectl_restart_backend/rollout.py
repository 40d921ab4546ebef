"""The rollout verdict: one pure function from Deployment + ReplicaSets + Pods to a state.

``compute_rollout_state`` is the contract between the watcher (which only gathers snapshots)
and the renderer (which only prints). It judges in the order kstatus does, generic checks first:

1. the Deployment is gone or being deleted              -> FAILED     Deleted
2. someone else changed the pod template while we watch -> SUPERSEDED Superseded
3. someone paused it while we watch                     -> SUPERSEDED Paused
4. the controller has not observed our generation       -> WAITING    WaitingForObservation
   (a status that merely looks ready before that is somebody else's rollout: the classic bug)
5. a pod of the NEW ReplicaSet is doomed                -> FAILED     CrashLoopBackOff, ...,
                                                                      PodFailed, Unschedulable
6. the ReplicaSet cannot create pods (quota, ...)       -> FAILED     ReplicaFailure
7. the progress deadline passed                         -> FAILED     ProgressDeadlineExceeded
8. the new ReplicaSet does not exist yet                -> WAITING    WaitingForReplicaSet
9. kubectl's completion rule, plus ready new pods       -> COMPLETE, else PROGRESSING

Whether a pod (5) or the ReplicaSet (6) is doomed, and when, is the trouble table
(``trouble.py``) with the user's tolerance: trouble that may still heal keeps the rollout
PROGRESSING. A superseded rollout (2, 3) is not a failure of ours, and never ours to undo.
Pod failures come before the Deployment's own conditions because they say *why*: after ten
minutes "progress deadline exceeded" is true, but "CrashLoopBackOff: exit code 1" is useful.
Pods of old ReplicaSets never cause a failure: they are on their way out.
"""

from __future__ import annotations

import copy
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
    pod_owner_replicaset,
    unschedulable_for,
    unschedulable_message,
)
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

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


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
    new_replicaset: Optional[str]
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
    deployment: Optional[Mapping[str, Any]],
    replicasets: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: datetime,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    memory: Memory = NO_MEMORY,
    events: Sequence[Mapping[str, Any]] = (),
    template: Optional[Mapping[str, Any]] = None,
) -> RolloutState:
    """Judge the rollout that our PATCH (which returned ``generation``) started.

    ``template`` is the ``spec.template`` our PATCH returned. With it, a later generation whose
    template is still ours (an HPA or someone scaling) is followed, with the new replica count,
    while a changed template means someone else started another rollout (``Superseded``).
    Without it a later generation cannot be told apart and is followed.

    ``tolerance`` is how much trouble new pods may have; ``memory`` what earlier updates
    showed (failed pulls, since when a trouble lasts). The state's ``troubles`` are the
    time-based troubles present now, for the caller to fold into the next ``memory``.

    ``events`` only fill in explanations the objects lack (e.g. a FailedCreate message when the
    ReplicaFailure condition has none); they never decide the phase on their own.
    """
    if deployment is None:
        return _gone("deployment was deleted during the rollout")
    meta = deployment.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return _gone("deployment is being deleted")

    snapshot = _Snapshot.build(deployment, replicasets, pods, now, tolerance, memory)
    current_generation = int(meta.get("generation") or 0)
    if current_generation > generation and template is not None:
        if _strip_hash(snapshot.template) != _strip_hash(template):
            return _superseded(snapshot, template)
    if (deployment.get("spec") or {}).get("paused"):
        who = changed_by(deployment, [("spec", "paused")])
        by = f" (manager: {who})" if who else ""
        return snapshot.verdict(Phase.SUPERSEDED, "Paused", f"paused during the rollout{by}")

    status = deployment.get("status") or {}
    wanted = max(generation, current_generation)
    observed = int(status.get("observedGeneration") or 0)
    if observed < wanted:
        return snapshot.verdict(
            Phase.WAITING,
            "WaitingForObservation",
            f"waiting for the deployment controller to observe generation {wanted} "
            f"(observed {observed})",
        )
    return _judge_observed(snapshot, status, events)


def _superseded(snapshot: _Snapshot, ours: Mapping[str, Any]) -> RolloutState:
    """Someone else's template replaced ours: say what changed and, if the API tells, who."""
    theirs = _strip_hash(snapshot.template)
    ours = _strip_hash(ours)
    what = describe_template_change(ours, theirs)
    who = changed_by(snapshot.deployment, [path for _text, path in template_changes(ours, theirs)])
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

    replica_failure, key = _replica_failure(snapshot, status, events)
    if key is not None:
        snapshot = snapshot.with_trouble(key)
    if replica_failure:
        return snapshot.verdict(Phase.FAILED, "ReplicaFailure", replica_failure)

    progressing = _condition(status, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        deadline = (snapshot.deployment.get("spec") or {}).get("progressDeadlineSeconds", 600)
        where = _progress_message(snapshot, status)[1]
        text = f"progress deadline exceeded ({deadline}s)" + (f": {where}" if where else "")
        return snapshot.verdict(Phase.FAILED, "ProgressDeadlineExceeded", text)

    if snapshot.new_rs is None and snapshot.replicas > 0:
        return snapshot.verdict(
            Phase.WAITING, "WaitingForReplicaSet", "waiting for the new ReplicaSet to be created"
        )

    reason, message = _progress_message(snapshot, status)
    if reason is None:
        name = snapshot.name
        if snapshot.replicas == 0:
            text = f'deployment "{name}" has 0 replicas: no pods to restart'
        else:
            text = (
                f'deployment "{name}" successfully rolled out '
                f"({snapshot.ready_replicas}/{snapshot.replicas} pods ready)"
            )
        return snapshot.verdict(Phase.COMPLETE, "Complete", text)
    return snapshot.verdict(Phase.PROGRESSING, reason, message)


def _progress_message(snapshot: _Snapshot, status: Mapping[str, Any]) -> tuple[Optional[str], str]:
    """(reason, kubectl-like message) for what still holds the rollout, or (None, "") when done.

    Complete means, for our generation: updatedReplicas >= spec.replicas; no old replicas left
    (status.replicas == updatedReplicas, and no running old pod in the snapshot);
    availableReplicas >= updatedReplicas; and spec.replicas ready pods in the new ReplicaSet.
    Old pods already terminating do not hold completion back, as in kubectl (the API server
    counts them out of status.replicas, and the endpoints have dropped them): waiting for them
    to vanish would cost up to terminationGracePeriodSeconds and say nothing about the restart.
    Finished old pods (an evicted pod waits for pod GC, possibly for days) do not either.
    """
    replicas = snapshot.replicas
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    running_old = [p for p in snapshot.old_pods if _is_active(snapshot.raw_pods[p.name])]
    old_pending = max(int(status.get("replicas") or 0) - updated, len(running_old), 0)
    if updated < replicas:
        return "UpdatingReplicas", f"{updated} of {replicas} new replicas have been updated"
    if old_pending > 0:
        return (
            "OldReplicasPendingTermination",
            f"{old_pending} old replicas are pending termination",
        )
    if available < updated:
        return (
            "WaitingForAvailableReplicas",
            f"{available} of {updated} updated replicas are available",
        )
    if snapshot.ready_replicas < replicas:
        return "WaitingForReadyPods", f"{snapshot.ready_replicas} of {replicas} new pods are ready"
    return None, ""


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
        if not message and snapshot.new_rs_name:
            message = _latest_event_message(
                events, "ReplicaSet", snapshot.new_rs_name, "FailedCreate"
            )
        rule = rule_for(Where.REPLICA_FAILURE, cond.get("reason"), message)
        if rule is None or rule.doom is Doom.RECOVERING:
            return None, None
        if rule.kind == "QuotaExceeded" and snapshot.old_pods_terminating:
            return None, None
        key = f"rs/{snapshot.new_rs_name or snapshot.name}/{rule.kind}"
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
    """The objects of one rollout, sorted out: which ReplicaSet is new, which pods are whose."""

    deployment: Mapping[str, Any]
    name: str
    template: Mapping[str, Any]
    replicas: int
    new_rs: Optional[Mapping[str, Any]]
    new_rs_name: Optional[str]
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
        deployment: Mapping[str, Any],
        replicasets: Sequence[Mapping[str, Any]],
        pods: Sequence[Mapping[str, Any]],
        now: datetime,
        tolerance: Tolerance,
        memory: Memory,
    ) -> _Snapshot:
        spec = deployment.get("spec") or {}
        replicas = spec.get("replicas")
        owned = owned_replicasets(deployment, replicasets)
        new_rs = find_new_replicaset(deployment, owned)
        new_name = _name(new_rs) if new_rs is not None else None
        by_hash = {_hash(rs): _name(rs) for rs in owned if _hash(rs)}
        owned_names = {_name(rs) for rs in owned}

        new_pods, old_pods, raw = [], [], {}
        for pod in pods:
            owner = _pod_replicaset(pod, owned_names, by_hash)
            if owner is None:
                continue  # not ours: another Deployment's pod, or an orphan
            info = classify_pod(
                pod,
                now=now,
                new_rs=new_name,
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
            deployment=deployment,
            name=(deployment.get("metadata") or {}).get("name") or "",
            template=spec.get("template") or {},
            replicas=1 if replicas is None else int(replicas),
            new_rs=new_rs,
            new_rs_name=new_name,
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
        status = self.deployment.get("status") or {}
        shown = self.new_pods if phase is Phase.COMPLETE else self.new_pods + self.old_pods
        return RolloutState(
            phase=phase,
            reason=reason,
            message=text or reason,
            ready_replicas=self.ready_replicas,
            replicas=self.replicas,
            updated_replicas=int(status.get("updatedReplicas") or 0),
            failure_reason=(text or reason) if phase is Phase.FAILED else None,
            pods=shown,
            new_replicaset=self.new_rs_name,
            troubles=self.troubles,
        )


def pod_sort_key(info: PodInfo) -> tuple[bool, str]:
    """Pods that are not ready first (they are the interesting ones), then by name."""
    return (info.ready, info.name)


def find_new_replicaset(
    deployment: Mapping[str, Any], owned: Sequence[Mapping[str, Any]]
) -> Optional[Mapping[str, Any]]:
    """The ReplicaSet running the Deployment's current pod template, as the controller picks it.

    First the owned ReplicaSet whose template equals the Deployment's (ignoring the
    pod-template-hash label the controller adds); else the highest revision, but only when it
    is newer than the Deployment's own revision annotation (our snapshot of the Deployment is
    behind). One that is not newer ran an earlier template: the new ReplicaSet is not there yet
    (our snapshot of ReplicaSets is behind, or Recreate waits for the old pods to go first), and
    it is better to wait than to judge the old ReplicaSet's pods as new.
    """
    wanted = _strip_hash((deployment.get("spec") or {}).get("template") or {})
    for rs in owned:
        if _strip_hash((rs.get("spec") or {}).get("template") or {}) == wanted:
            return rs
    if not owned:
        return None
    newest = max(owned, key=_revision)
    deployment_revision = _revision(deployment)
    if deployment_revision and _revision(newest) <= deployment_revision:
        return None
    return newest


def owned_replicasets(
    deployment: Mapping[str, Any], replicasets: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """ReplicaSets controlled by this Deployment (by uid; by kind and name when uid is absent)."""
    meta = deployment.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    owned = []
    for rs in replicasets:
        for ref in (rs.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") != "Deployment":
                continue
            if (uid and ref.get("uid") == uid) or (not uid and ref.get("name") == name):
                owned.append(rs)
                break
    return owned


def _pod_replicaset(
    pod: Mapping[str, Any], owned_names: set[str], by_hash: Mapping[str, str]
) -> Optional[str]:
    """Which of our ReplicaSets owns the pod: ownerReferences, else its pod-template-hash label."""
    owner = pod_owner_replicaset(pod)
    if owner is not None:
        return owner if owner in owned_names else None
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return by_hash.get(labels.get(POD_TEMPLATE_HASH, ""))


def _strip_hash(template: Mapping[str, Any]) -> Mapping[str, Any]:
    """A pod template without the controller's pod-template-hash label, for comparison."""
    labels = (template.get("metadata") or {}).get("labels") or {}
    if POD_TEMPLATE_HASH not in labels:
        return template
    stripped = copy.deepcopy(dict(template))
    del stripped["metadata"]["labels"][POD_TEMPLATE_HASH]
    return stripped


def _hash(rs: Mapping[str, Any]) -> str:
    meta = rs.get("metadata") or {}
    return (meta.get("labels") or {}).get(POD_TEMPLATE_HASH) or ""


def _revision(obj: Mapping[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _name(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return {}
