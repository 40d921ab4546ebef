"""What differs per workload kind in judging a rollout, side by side (pure).

``rollout.py`` judges every kind alike: the workload gone, superseded by someone else's
change, paused (where the kind can be), its generation not observed yet, a new pod doomed by
the trouble table. Two things are the kind's own, and live here, one function per kind:

1. **Which pods are new** (``group_*``): the pods that run the pod template of the rollout,
   the only ones the trouble table may judge (old pods are on their way out and never fail
   a restart).

   - Deployment: the pods of the new ReplicaSet, the owned ReplicaSet whose template is the
     Deployment's (the controller's own choice).
   - StatefulSet: the pods whose ``controller-revision-hash`` label is
     ``status.updateRevision``. Robust because the controller writes that label on every pod
     it creates and the revision name on the status in the same sync; but only once the
     controller has observed our generation: before that, ``updateRevision`` still names the
     previous template, and every old pod would look new (a crash-looping old pod would fail
     a healthy restart). So before observation no pod is new.
   - DaemonSet: the pods labelled ``pod-template-generation`` with the DaemonSet's template
     generation (the ``deprecated.daemonset.template.generation`` annotation), and the pods
     sharing their ``controller-revision-hash``. The API server bumps that annotation in the
     very write that changes the template (our PATCH's answer carries it), and the
     controller copies it onto every pod it creates from then on, so it needs no
     ControllerRevision list nor watch. The status carries no revision name, and the hash
     alone would need the ControllerRevisions (one more list and watch per DaemonSet);
     the hash is still honoured as the controller's ``IsPodUpdated`` does, so a pod the
     controller counts as updated is one we judge as new.

2. **When it is complete** (``*_progress``), kubectl's status viewers
   (``pkg/polymorphichelpers/rollout_status.go``) plus what they leave out: that the new
   pods themselves are ready, and that no old pod still runs.

   - Deployment: updatedReplicas >= replicas, no old replicas left (status.replicas, and no
     running old pod), availableReplicas >= updatedReplicas, replicas ready new pods.
   - StatefulSet: updatedReplicas >= replicas - partition, readyReplicas >= replicas,
     availableReplicas >= replicas (minReadySeconds), as many ready new pods, no old pod
     left at or above the partition, and without rollingUpdate parameters currentRevision
     == updateRevision.
   - DaemonSet: updatedNumberScheduled >= desiredNumberScheduled, numberAvailable >=
     desiredNumberScheduled, as many ready new pods, no old pod still running.

   Each returns ``(reason, message)`` for what still holds the rollout, or None when done.
   Under ``OnDelete`` (StatefulSets, DaemonSets) kubectl has no rule at all; ours is the
   same, and what holds the rollout is said as pods waiting to be deleted.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from kubectl_restart_backend.changes import POD_TEMPLATE_HASH
from kubectl_restart_backend.diagnosis import pod_owner_replicaset
from kubectl_restart_backend.kinds import (
    DAEMONSET,
    DEPLOYMENT,
    STATEFULSET,
    Kind,
    replaced_on_delete,
)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
_ORDINAL = re.compile(r"-([0-9]+)$")

Progress = Optional[tuple[str, str]]


@dataclass(frozen=True)
class Grouping:
    """The workload's pods sorted out: each one's ReplicaSet or revision, and the new one."""

    new: Optional[str]  # new ReplicaSet / update revision / new revision hash; None: not yet
    groups: Mapping[str, str] = field(default_factory=dict)  # pod name -> its group
    new_replicaset: Optional[Mapping[str, Any]] = None  # Deployments: the new ReplicaSet


# --------------------------------------------------------------------------- which pods are new


def group_pods(
    kind: Kind,
    workload: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    *,
    observed: bool,
) -> Grouping:
    """The kind's grouping (``observed``: the controller has seen the current generation)."""
    if kind is STATEFULSET:
        return group_statefulset(workload, pods, observed=observed)
    if kind is DAEMONSET:
        return group_daemonset(workload, pods)
    return group_deployment(workload, replicasets, pods)


def group_deployment(
    deployment: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
) -> Grouping:
    """Pods by their ReplicaSet (ownerReferences, else the pod-template-hash label)."""
    owned = owned_replicasets(deployment, replicasets)
    new_rs = find_new_replicaset(deployment, owned)
    by_hash = {_hash(rs): _name(rs) for rs in owned if _hash(rs)}
    owned_names = {_name(rs) for rs in owned}
    groups = {}
    for pod in pods:
        owner = _pod_replicaset(pod, owned_names, by_hash)
        if owner is not None:
            groups[_name(pod)] = owner
    return Grouping(_name(new_rs) if new_rs is not None else None, groups, new_rs)


def group_statefulset(
    sts: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, observed: bool
) -> Grouping:
    """Pods by their revision; the new one is status.updateRevision, once observed."""
    groups = {
        _name(pod): _label(pod, REVISION_LABEL)
        for pod in pods
        if controlled_by(pod, sts, STATEFULSET)
    }
    update = (sts.get("status") or {}).get("updateRevision") if observed else None
    return Grouping(update or None, groups)


def group_daemonset(ds: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Grouping:
    """Pods by their revision hash; the new hash is the one of the pods labelled with the
    DaemonSet's template generation."""
    generation = _annotation(ds, TEMPLATE_GENERATION_ANNOTATION)
    ours = [pod for pod in pods if controlled_by(pod, ds, DAEMONSET)]
    groups = {_name(pod): _label(pod, REVISION_LABEL) for pod in ours}
    fresh = sorted(
        _label(pod, REVISION_LABEL)
        for pod in ours
        if generation and _label(pod, TEMPLATE_GENERATION_LABEL) == generation
    )
    return Grouping(fresh[0] if fresh and fresh[0] else None, groups)


def controlled_by(pod: Mapping[str, Any], owner: Mapping[str, Any], kind: Kind) -> bool:
    """The pod's controller is ``owner`` (by uid; by kind and name when uid is absent)."""
    meta = owner.get("metadata") or {}
    uid, name = meta.get("uid"), meta.get("name")
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") != kind.name or not ref.get("controller", True):
            continue
        return bool((uid and ref.get("uid") == uid) or (not uid and ref.get("name") == name))
    return False


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
    wanted = strip_hash((deployment.get("spec") or {}).get("template") or {})
    for rs in owned:
        if strip_hash((rs.get("spec") or {}).get("template") or {}) == wanted:
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


def strip_hash(template: Mapping[str, Any]) -> Mapping[str, Any]:
    """A pod template without the controller's pod-template-hash label, for comparison."""
    labels = (template.get("metadata") or {}).get("labels") or {}
    if POD_TEMPLATE_HASH not in labels:
        return template
    stripped = copy.deepcopy(dict(template))
    del stripped["metadata"]["labels"][POD_TEMPLATE_HASH]
    return stripped


def _pod_replicaset(
    pod: Mapping[str, Any], owned_names: set[str], by_hash: Mapping[str, str]
) -> Optional[str]:
    """Which of our ReplicaSets owns the pod: ownerReferences, else its pod-template-hash label."""
    owner = pod_owner_replicaset(pod)
    if owner is not None:
        return owner if owner in owned_names else None
    return by_hash.get(_label(pod, POD_TEMPLATE_HASH))


# --------------------------------------------------------------------------- how many pods


def desired_pods(kind: Kind, workload: Mapping[str, Any]) -> int:
    """How many pods the workload runs: spec.replicas (1 when unset), or for a DaemonSet
    the nodes it should run on (status.desiredNumberScheduled)."""
    if kind is DAEMONSET:
        return int((workload.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (workload.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def restarted_pods(kind: Kind, workload: Mapping[str, Any]) -> int:
    """How many pods a rollout brings to the new template: all of them, except a
    StatefulSet's below its partition (they keep the old template)."""
    return max(desired_pods(kind, workload) - partition(kind, workload), 0)


def partition(kind: Kind, workload: Mapping[str, Any]) -> int:
    """A StatefulSet RollingUpdate's partition (0 for everything else)."""
    if kind is not STATEFULSET:
        return 0
    strategy = (workload.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return 0
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


# --------------------------------------------------------------------------- when it is done


def progress(
    kind: Kind,
    workload: Mapping[str, Any],
    *,
    new_ready: int,
    old_active: Sequence[str],
) -> Progress:
    """The kind's rule: what still holds the rollout, or None when it is complete.

    ``new_ready``: ready, not terminating pods of the new group; ``old_active``: names of the
    workload's old pods that still run (neither terminating nor finished).
    """
    rule = {STATEFULSET: statefulset_progress, DAEMONSET: daemonset_progress}.get(
        kind, deployment_progress
    )
    return rule(workload, new_ready=new_ready, old_active=old_active)


def deployment_progress(
    deployment: Mapping[str, Any], *, new_ready: int, old_active: Sequence[str]
) -> Progress:
    """kubectl's DeploymentStatusViewer, plus ready new pods and no running old pod.

    Old pods already terminating do not hold completion back, as in kubectl (the API server
    counts them out of status.replicas, and the endpoints have dropped them): waiting for them
    to vanish would cost up to terminationGracePeriodSeconds and say nothing about the
    restart. Finished old pods (an evicted pod waits for pod GC, possibly for days) do not
    either.
    """
    status = deployment.get("status") or {}
    replicas = desired_pods(DEPLOYMENT, deployment)
    updated = _int(status, "updatedReplicas")
    available = _int(status, "availableReplicas")
    old_pending = max(_int(status, "replicas") - updated, len(old_active), 0)
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
    if new_ready < replicas:
        return "WaitingForReadyPods", f"{new_ready} of {replicas} new pods are ready"
    return None


def statefulset_progress(
    sts: Mapping[str, Any], *, new_ready: int, old_active: Sequence[str]
) -> Progress:
    """kubectl's StatefulSetStatusViewer, plus ready new pods and no old pod at or above the
    partition; under OnDelete, what is missing is pods being deleted."""
    status = sts.get("status") or {}
    replicas = desired_pods(STATEFULSET, sts)
    cut = partition(STATEFULSET, sts)
    target = max(replicas - cut, 0)
    updated = _int(status, "updatedReplicas")
    ready = _int(status, "readyReplicas")
    if updated < target:
        if replaced_on_delete(sts, STATEFULSET):
            return _waiting_for_deletion(updated, target)
        return "UpdatingReplicas", f"{updated} of {target} new pods have been updated"
    stale = [name for name in old_active if ordinal(name) >= cut]
    if stale:
        if replaced_on_delete(sts, STATEFULSET):
            return _waiting_for_deletion(target - len(stale), target)
        return "OldReplicasPendingTermination", f"{len(stale)} old pods are pending termination"
    if ready < replicas:
        return "WaitingForReadyPods", f"{ready} of {replicas} pods are ready"
    if new_ready < target:
        return "WaitingForReadyPods", f"{new_ready} of {target} new pods are ready"
    available = _int(status, "availableReplicas")
    if available < replicas:
        return "WaitingForAvailableReplicas", f"{available} of {replicas} pods are available"
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    plain = (strategy.get("type") or "RollingUpdate") == "RollingUpdate" and not strategy.get(
        "rollingUpdate"
    )
    if plain and status.get("currentRevision") != status.get("updateRevision"):
        return (
            "WaitingForRevision",
            f"waiting for the current revision to become {status.get('updateRevision')}",
        )
    return None


def daemonset_progress(
    ds: Mapping[str, Any], *, new_ready: int, old_active: Sequence[str]
) -> Progress:
    """kubectl's DaemonSetStatusViewer, plus ready new pods and no old pod still running;
    under OnDelete, what is missing is pods being deleted."""
    status = ds.get("status") or {}
    desired = desired_pods(DAEMONSET, ds)
    updated = _int(status, "updatedNumberScheduled")
    available = _int(status, "numberAvailable")
    if updated < desired:
        if replaced_on_delete(ds, DAEMONSET):
            return _waiting_for_deletion(updated, desired)
        return "UpdatingPods", f"{updated} of {desired} new pods have been updated"
    if old_active:
        if replaced_on_delete(ds, DAEMONSET):
            return _waiting_for_deletion(desired - len(old_active), desired)
        return "OldPodsPendingTermination", f"{len(old_active)} old pods are pending termination"
    if available < desired:
        return "WaitingForAvailablePods", f"{available} of {desired} updated pods are available"
    if new_ready < desired:
        return "WaitingForReadyPods", f"{new_ready} of {desired} new pods are ready"
    return None


def _waiting_for_deletion(updated: int, target: int) -> tuple[str, str]:
    return (
        "WaitingForPodDeletion",
        f"{max(updated, 0)} of {target} pods run the new template; under OnDelete the others "
        "take it only when deleted",
    )


# --------------------------------------------------------------------------- helpers


def ordinal(name: str) -> int:
    """A StatefulSet pod's ordinal (``db-2`` -> 2; -1 when the name has none)."""
    found = _ORDINAL.search(name)
    return int(found.group(1)) if found else -1


def _int(status: Mapping[str, Any], key: str) -> int:
    return int(status.get(key) or 0)


def _label(obj: Mapping[str, Any], key: str) -> str:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(key) or ""


def _annotation(obj: Mapping[str, Any], key: str) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(key) or "")


def _hash(rs: Mapping[str, Any]) -> str:
    return _label(rs, POD_TEMPLATE_HASH)


def _revision(obj: Mapping[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _name(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name") or ""
