"""The StatefulSet controller, after kube-controller-manager's (pkg/controller/statefulset, as of
Kubernetes 1.37, where MaxUnavailableStatefulSet is on by default).

What the plugin relies on follows the Go code step for step (its function names are given):
Pods `<set>-<ordinal>` labelled with their revision, `statefulset.kubernetes.io/pod-name` and
`apps.kubernetes.io/pod-index`; OrderedReady creation (each Pod only once every lower ordinal
is Running, Ready and available), Parallel creation; a RollingUpdate that replaces the Pod with
the highest ordinal not at the update revision, and only while every Pod is Running and Ready
(so a crash-looping new Pod stops the rollout for good, as on a real cluster), honouring
`partition` and `maxUnavailable`; OnDelete, where a template change only moves
`status.updateRevision` and Pods are replaced when someone deletes them; ControllerRevisions
with their revision numbers, rollback by revision bump and history truncation; the status
exactly as `updateStatefulSet` fills it, with `currentRevision` becoming `updateRevision` once a
rolling update completes (never under OnDelete, as in Kubernetes).

The top half is pure: `plan_statefulset` turns the set, its Pods, its current and update
revisions and the clock into the actions of one sync and the status to write. The controller
class below reads the store, runs the plan and writes the results.

Deliberately not simulated: volumeClaimTemplates (no PersistentVolumeClaims exist here),
adoption/orphaning by label selector (only controller ownerReferences count), the back-off of
a failing sync (a failed Pod creation is retried after `SimConfig.controller_retry`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .controllers import (
    _pod_from_template,
    is_pod_available,
    is_pod_ready,
    scaled_value,
    spec_replicas,
)
from .events import NORMAL, WARNING
from .pod_owners import PodOwnerController
from .revisions import (
    HISTORY_HASH_LABEL,
    REVISION_LABEL,
    apply_revision,
    equal_revision,
    find_equal_revisions,
    hash_revision,
    new_revision,
    next_revision,
    patch_bytes,
    revision_name,
    revisions_to_truncate,
    sort_revisions,
    template_patch,
)
from .store import Conflict

__all__ = [
    "StatefulSetController",
    "StatefulSetPlan",
    "POD_NAME_LABEL",
    "POD_INDEX_LABEL",
    "parent_and_ordinal",
    "new_statefulset_pod",
    "replica_counts",
    "statefulset_status",
    "complete_rolling_update",
    "inconsistent_status",
    "max_unavailable",
    "creation_revision",
    "plan_statefulset",
]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"  # apps.StatefulSetPodNameLabel
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"  # apps.PodIndexLabel
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")  # statefulPodRegex
_MAX_INT32 = 2**31 - 1
_MAX_COLLISIONS = 20


# ----------------------------------------------------------------------------- pods


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    """getParentNameAndOrdinal: ("web", 2) for "web-2"; ("", -1) when the name has none."""
    match = _ORDINAL.match(pod_name)
    if not match:
        return "", -1
    ordinal = int(match.group(2))
    return match.group(1), ordinal if ordinal <= _MAX_INT32 else -1


def _start_ordinal(sts: dict) -> int:
    """getStartOrdinal: spec.ordinals.start, else 0."""
    return int((((sts.get("spec") or {}).get("ordinals")) or {}).get("start") or 0)


def _pod_revision(pod: dict) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _running_and_ready(pod: dict) -> bool:
    """isRunningAndReady."""
    return _phase(pod) == "Running" and is_pod_ready(pod)


def _unavailable(pod: dict | None, min_ready: int, now: float) -> bool:
    """isUnavailable: a Pod not created yet, terminating, not Running and Ready, or not
    ready for minReadySeconds."""
    return (
        pod is None
        or _is_terminating(pod)
        or not _running_and_ready(pod)
        or not is_pod_available(pod, min_ready, now)
    )


def new_statefulset_pod(template_set: dict, ordinal: int, revision: str) -> dict:
    """newStatefulSetPod + setPodRevision: the Pod for `ordinal` from the set as of a revision
    (its template), with its stable identity: name, hostname, subdomain, identity labels."""
    pod = _pod_from_template(template_set, "")
    meta = pod["metadata"]
    meta.pop("generateName", None)
    name = f"{template_set['metadata']['name']}-{ordinal}"
    meta["name"] = name
    meta["labels"][POD_NAME_LABEL] = name
    meta["labels"][POD_INDEX_LABEL] = str(ordinal)
    meta["labels"][REVISION_LABEL] = revision
    pod["spec"]["hostname"] = name
    service = (template_set.get("spec") or {}).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    return pod


# ----------------------------------------------------------------------------- status


def replica_counts(
    pods: list[dict], min_ready: int, current: str, update: str, now: float
) -> dict[str, int]:
    """computeReplicaStatus over the set's Pods."""
    counts = dict(replicas=0, readyReplicas=0, availableReplicas=0, currentReplicas=0,
                  updatedReplicas=0)  # fmt: skip
    for pod in pods:
        created = bool(_phase(pod))
        if created:
            counts["replicas"] += 1
        if _running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_pod_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if created and not _is_terminating(pod):
            revision = _pod_revision(pod)
            counts["currentReplicas"] += revision == current
            counts["updatedReplicas"] += revision == update
    return counts


def statefulset_status(
    sts: dict, counts: dict[str, int], current: str, update: str, collision_count: int
) -> dict:
    """StatefulSetStatus as the API serializes it: omitempty fields left out when zero,
    `replicas` and `availableReplicas` always present, `collisionCount` always set by the
    controller."""
    status: dict = {
        "observedGeneration": int(sts["metadata"].get("generation") or 0),
        "replicas": counts["replicas"],
    }
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        if counts[key]:
            status[key] = counts[key]
    if current:
        status["currentRevision"] = current
    if update:
        status["updateRevision"] = update
    status["collisionCount"] = collision_count
    status["availableReplicas"] = counts["availableReplicas"]
    return status


def _strategy(sts: dict) -> tuple[str, dict | None]:
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    return strategy.get("type") or "RollingUpdate", strategy.get("rollingUpdate")


def complete_rolling_update(sts: dict, status: dict) -> dict:
    """completeRollingUpdate: once every replica is updated and ready, the update revision
    becomes the current one. RollingUpdate only: under OnDelete currentRevision never moves."""
    replicas = spec_replicas(sts)
    if (
        _strategy(sts)[0] == "RollingUpdate"
        and status.get("updatedReplicas", 0) == replicas
        and status.get("readyReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    ):
        status = dict(status)
        if status.get("updatedReplicas"):
            status["currentReplicas"] = status["updatedReplicas"]
        else:
            status.pop("currentReplicas", None)
        if status.get("updateRevision"):
            status["currentRevision"] = status["updateRevision"]
    return status


def inconsistent_status(sts: dict, status: dict) -> bool:
    """inconsistentStatus: whether the new status is worth writing."""
    old = sts.get("status") or {}
    if int(status.get("observedGeneration") or 0) > int(old.get("observedGeneration") or 0):
        return True
    fields = ("replicas", "currentReplicas", "readyReplicas", "updatedReplicas",
              "availableReplicas")  # fmt: skip
    if any(int(status.get(f) or 0) != int(old.get(f) or 0) for f in fields):
        return True
    return any(
        (status.get(f) or "") != (old.get(f) or "") for f in ("currentRevision", "updateRevision")
    )


def max_unavailable(sts: dict) -> int:
    """getStatefulSetMaxUnavailable: rollingUpdate.maxUnavailable (default 1) of the
    replicas, rounded down, at least 1."""
    rolling = _strategy(sts)[1]
    if rolling is None:
        return 1
    value = rolling.get("maxUnavailable")
    return max(1, scaled_value(1 if value is None else value, spec_replicas(sts), False))


def creation_revision(sts: dict, ordinal: int) -> str:
    """newVersionedStatefulSetPod: "current" for ordinals below the partition (or, with a
    RollingUpdate without parameters, below status.currentReplicas), "update" otherwise."""
    kind, rolling = _strategy(sts)
    start = _start_ordinal(sts)
    current_replicas = int((sts.get("status") or {}).get("currentReplicas") or 0)
    if (kind == "RollingUpdate" and rolling is None and ordinal < start + current_replicas) or (
        rolling is not None and ordinal < start + int(rolling.get("partition") or 0)
    ):
        return "current"
    return "update"


# ----------------------------------------------------------------------------- the plan


@dataclass
class StatefulSetPlan:
    """One sync's work: actions in order ("create", ordinal, "current"|"update") or
    ("delete", pod name), and the status to write (completeRollingUpdate applied)."""

    actions: list[tuple] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def plan_statefulset(
    sts: dict, pods: list[dict], current: str, update: str, collision_count: int, now: float
) -> StatefulSetPlan:
    """updateStatefulSet: what one sync does. OrderedReady (monotonic) stops at the first Pod
    it must create, delete or wait for; Parallel acts on every Pod at once. Replicas first
    (ascending ordinals), then condemned Pods beyond the replica count (descending), then,
    for RollingUpdate, the Pods to replace for the update (descending, down to the
    partition, at most maxUnavailable minus the unavailable ones)."""
    spec = sts.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    replicas = spec_replicas(sts)
    start = _start_ordinal(sts)
    set_name = sts["metadata"]["name"]
    slots: list[dict | None] = [None] * replicas
    condemned: list[tuple[int, dict]] = []
    for pod in pods:
        _parent, ordinal = parent_and_ordinal(pod["metadata"]["name"])
        if start <= ordinal < start + replicas:
            slots[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append((ordinal, pod))
    condemned.sort(key=lambda item: item[0], reverse=True)
    doomed = [pod for _ordinal, pod in condemned]
    counts = replica_counts([p for p in slots if p] + doomed, min_ready, current, update, now)
    plan = StatefulSetPlan()

    def finish() -> StatefulSetPlan:
        status = statefulset_status(sts, counts, current, update, collision_count)
        plan.status = complete_rolling_update(sts, status)
        return plan

    if sts["metadata"].get("deletionTimestamp"):
        return finish()
    first_unhealthy = next(
        (f"{set_name}-{start + i}" for i, p in enumerate(slots) if _unavailable(p, min_ready, now)),
        None,
    ) or next(
        (p["metadata"]["name"] for p in reversed(doomed) if _unavailable(p, min_ready, now)), None
    )
    monotonic = spec.get("podManagementPolicy") != "Parallel"
    # processReplica, for every ordinal in range
    for index, pod in enumerate(slots):
        ordinal = start + index
        if pod is not None and _phase(pod) in ("Failed", "Succeeded"):
            if not _is_terminating(pod):
                plan.actions.append(("delete", pod["metadata"]["name"]))
            if monotonic:
                return finish()
            continue
        if pod is None:
            plan.actions.append(("create", ordinal, creation_revision(sts, ordinal)))
            if monotonic:
                return finish()
            continue
        if monotonic and _unavailable(pod, min_ready, now):
            return finish()
    # processCondemned, highest ordinal first
    for pod in doomed:
        if _is_terminating(pod):
            if monotonic:
                return finish()
            continue
        if (
            monotonic
            and pod["metadata"]["name"] != first_unhealthy
            and _unavailable(pod, min_ready, now)
        ):
            return finish()
        plan.actions.append(("delete", pod["metadata"]["name"]))
        if monotonic:
            return finish()
    kind, rolling = _strategy(sts)
    if kind == "OnDelete":
        return finish()
    # updateStatefulSetAfterInvariantEstablished
    update_min = int((rolling or {}).get("partition") or 0)
    budget = max_unavailable(sts)
    unavailable = sum(1 for p in slots if _unavailable(p, min_ready, now))
    if unavailable > budget:
        return finish()
    allowed, deleted = budget - unavailable, 0
    for index in range(len(slots) - 1, update_min - 1, -1):
        if deleted >= allowed:
            break
        pod = slots[index]
        if pod is None or _pod_revision(pod) == update or _is_terminating(pod):
            continue
        plan.actions.append(("delete", pod["metadata"]["name"]))
        deleted += 1
        counts["currentReplicas"] -= 1
    return finish()


# ----------------------------------------------------------------------------- controller


class StatefulSetController(PodOwnerController):
    """syncStatefulSet for the StatefulSets marked dirty."""

    kind, resource, timer = "StatefulSet", "statefulsets", "statefulset"
    component = "statefulset-controller"

    def sync(self, namespace: str, name: str) -> None:
        sts = self._store.get_shared("statefulsets", namespace, name)
        if sts is None:
            self._collect_garbage(namespace, name)
            return
        pods = self._owned("pods", namespace, name, sts)
        revisions = sort_revisions(self._owned("controllerrevisions", namespace, name, sts))
        now = self._clock()
        current, update, collisions = self._revisions_of(sts, revisions)
        plan = plan_statefulset(
            sts, pods, current["metadata"]["name"], update["metadata"]["name"], collisions, now
        )
        error = self._execute(sts, plan, current, update)
        if inconsistent_status(sts, plan.status):
            self._store.update_status("statefulsets", {**sts, "status": plan.status})
        self._truncate_history(sts, current, update, revisions)
        self._schedule_wakeup(sts, pods, error is not None, now)

    # -- revisions (getStatefulSetRevisions, truncateHistory)

    def _revisions_of(self, sts: dict, revisions: list[dict]) -> tuple[dict, dict, int]:
        """(current, update, collisionCount): the update revision is found (the latest one
        if its template is the set's), brought back with the next revision number (an
        older template: a rollback), or created."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = template_patch(sts)
        revision = next_revision(revisions)
        needle = new_revision(
            sts, data, revision, HISTORY_HASH_LABEL, hash_revision(data, collisions), {}
        )
        equal = find_equal_revisions(revisions, needle)
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = self._store.update("controllerrevisions", {**equal[-1], "revision": revision})
        else:
            update, collisions = self._create_revision(sts, needle, data, collisions)
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), update)
        return current, update, collisions

    def _create_revision(
        self, sts: dict, revision: dict, data: dict, collisions: int
    ) -> tuple[dict, int]:
        """CreateControllerRevision: on a name taken by other data, count a collision and
        try the next name."""
        namespace = sts["metadata"].get("namespace")
        for _ in range(_MAX_COLLISIONS):
            hash_ = hash_revision(data, collisions)
            name = revision_name(sts["metadata"]["name"], hash_)
            revision["metadata"]["name"] = name
            revision["metadata"]["labels"][HISTORY_HASH_LABEL] = hash_
            try:
                return self._store.create("controllerrevisions", revision), collisions
            except Conflict:
                existing = self._store.get_shared("controllerrevisions", namespace, name)
                if existing is not None and patch_bytes(existing.get("data") or {}) == (
                    patch_bytes(data)
                ):
                    return existing, collisions
                collisions += 1
        raise RuntimeError(f"no free ControllerRevision name for {sts['metadata']['name']}")

    def _truncate_history(
        self, sts: dict, current: dict, update: dict, revisions: list[dict]
    ) -> None:
        namespace, name = sts["metadata"].get("namespace") or "", sts["metadata"]["name"]
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        live.update(_pod_revision(p) for p in self._owned("pods", namespace, name, sts))
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit", 10)
        stale = revisions_to_truncate(revisions, live, None if limit is None else int(limit))
        for revision_name_ in stale:
            self._store.delete("controllerrevisions", namespace, revision_name_)

    # -- doing

    def _execute(self, sts: dict, plan: StatefulSetPlan, current: dict, update: dict) -> str | None:
        """Create and delete as planned, stopping at the first failure (its message)."""
        namespace = sts["metadata"].get("namespace") or ""
        sets = {
            "current": (apply_revision(sts, current), current["metadata"]["name"]),
            "update": (apply_revision(sts, update), update["metadata"]["name"]),
        }
        for action in plan.actions:
            if action[0] == "create":
                template_set, revision = sets[action[2]]
                pod = new_statefulset_pod(template_set, action[1], revision)
                error = self._create_pod(sts, namespace, pod)
                if error:
                    return error
                continue
            pod = self._store.get_shared("pods", namespace, action[1])
            if pod is not None and not _is_terminating(pod):
                self._delete_pod(pod)
                self._pod_event(sts, "delete", action[1], None)
        return None

    def _create_pod(self, sts: dict, namespace: str, pod: dict) -> str | None:
        name = pod["metadata"]["name"]
        error = self._quota.check(namespace, self._store.count("pods", namespace), name)
        if error is None:
            try:
                self._store.create("pods", pod)
            except Conflict as exc:
                error = str(exc)
        self._pod_event(sts, "create", name, error)
        return error

    def _pod_event(self, sts: dict, verb: str, pod_name: str, error: str | None) -> None:
        """recordPodEvent: `Create Pod web-0 in StatefulSet web successful`, or Failed... (the
        verb title-cased, as 1.37 writes it; kubectl differential test)."""
        set_name = sts["metadata"]["name"]
        outcome = "successful" if error is None else f"failed error: {error}"
        self._event(
            sts,
            NORMAL if error is None else WARNING,
            f"{'Successful' if error is None else 'Failed'}{verb.title()}",
            f"{verb.title()} Pod {pod_name} in StatefulSet {set_name} {outcome}",
        )
