"""kubectl's `rollout status` rules, one per kind (pure).

The same decisions and words as kubectl's status viewers (pkg/polymorphichelpers/
rollout_status.go): each takes an object and returns (message, done, error). Test helpers wait
on them (`SimCluster.wait_for_rollout`), and tests compare them with what real kubectl prints.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RolloutStatus", "rollout_status", "rollout_complete", "rollout_settled"]


class RolloutStatus(NamedTuple):
    """kubectl's (message, done, error): `error` set means kubectl gives up with it."""

    message: str
    done: bool
    error: str | None = None


def _int(obj: dict, *path: str) -> int:
    node = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return int(node or 0)


def _replicas(obj: dict) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _rolling_update_only(obj: dict) -> RolloutStatus | None:
    """kubectl refuses StatefulSets and DaemonSets whose updateStrategy is not RollingUpdate."""
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") == "RollingUpdate":
        return None
    return RolloutStatus(
        "", True, "rollout status is only available for RollingUpdate strategy type"
    )


def deployment_status(d: dict) -> RolloutStatus:
    """DeploymentStatusViewer."""
    name = d["metadata"]["name"]
    if _int(d, "metadata", "generation") > _int(d, "status", "observedGeneration"):
        return RolloutStatus("Waiting for deployment spec update to be observed...\n", False)
    for condition in (d.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RolloutStatus("", False, f'deployment "{name}" exceeded its progress deadline')
    replicas = _replicas(d)
    updated = _int(d, "status", "updatedReplicas")
    total = _int(d, "status", "replicas")
    available = _int(d, "status", "availableReplicas")
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < replicas:
        return RolloutStatus(
            f"{waiting}{updated} out of {replicas} new replicas have been updated...\n", False
        )
    if total > updated:
        return RolloutStatus(
            f"{waiting}{total - updated} old replicas are pending termination...\n", False
        )
    if available < updated:
        return RolloutStatus(
            f"{waiting}{available} of {updated} updated replicas are available...\n", False
        )
    return RolloutStatus(f'deployment "{name}" successfully rolled out\n', True)


def statefulset_status(sts: dict) -> RolloutStatus:
    """StatefulSetStatusViewer: RollingUpdate only; with rollingUpdate parameters the
    partition decides, without them currentRevision must have caught up."""
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    refusal = _rolling_update_only(sts)
    if refusal:
        return refusal
    observed = _int(sts, "status", "observedGeneration")
    if observed == 0 or _int(sts, "metadata", "generation") > observed:
        return RolloutStatus("Waiting for statefulset spec update to be observed...\n", False)
    replicas = _replicas(sts)
    ready = _int(sts, "status", "readyReplicas")
    if ready < replicas:
        return RolloutStatus(f"Waiting for {replicas - ready} pods to be ready...\n", False)
    updated = _int(sts, "status", "updatedReplicas")
    rolling = strategy.get("rollingUpdate")
    if rolling is not None:
        if rolling.get("partition") is not None:
            target = replicas - int(rolling["partition"])
            if updated < target:
                return RolloutStatus(
                    f"Waiting for partitioned roll out to finish: {updated} out of {target} "
                    "new pods have been updated...\n",
                    False,
                )
        return RolloutStatus(
            f"partitioned roll out complete: {updated} new pods have been updated...\n", True
        )
    status = sts.get("status") or {}
    if status.get("updateRevision") != status.get("currentRevision"):
        return RolloutStatus(
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision')}...\n",
            False,
        )
    return RolloutStatus(
        f"statefulset rolling update complete {_int(sts, 'status', 'currentReplicas')} pods at "
        f"revision {status.get('currentRevision')}...\n",
        True,
    )


def daemonset_status(ds: dict) -> RolloutStatus:
    """DaemonSetStatusViewer: RollingUpdate only."""
    refusal = _rolling_update_only(ds)
    if refusal:
        return refusal
    if _int(ds, "metadata", "generation") > _int(ds, "status", "observedGeneration"):
        return RolloutStatus("Waiting for daemon set spec update to be observed...\n", False)
    name = ds["metadata"]["name"]
    desired = _int(ds, "status", "desiredNumberScheduled")
    updated = _int(ds, "status", "updatedNumberScheduled")
    available = _int(ds, "status", "numberAvailable")
    waiting = f'Waiting for daemon set "{name}" rollout to finish: '
    if updated < desired:
        return RolloutStatus(
            f"{waiting}{updated} out of {desired} new pods have been updated...\n", False
        )
    if available < desired:
        return RolloutStatus(
            f"{waiting}{available} of {desired} updated pods are available...\n", False
        )
    return RolloutStatus(f'daemon set "{name}" successfully rolled out\n', True)


_VIEWERS = {
    "Deployment": deployment_status,
    "StatefulSet": statefulset_status,
    "DaemonSet": daemonset_status,
}


def rollout_status(obj: dict) -> RolloutStatus:
    """kubectl's status viewer for the object's kind (Deployment when it has no kind)."""
    return _VIEWERS[obj.get("kind") or "Deployment"](obj)


def rollout_complete(obj: dict | None) -> bool:
    """kubectl's `rollout status` success rule for the object's current generation."""
    if not obj:
        return False
    status = rollout_status(obj)
    return status.done and status.error is None


def rollout_settled(obj: dict | None) -> bool:
    """`rollout_complete`, or, under OnDelete (where kubectl has no rule and says so), every
    Pod ready and available at the observed generation: what a test waits for after creating
    a workload."""
    if not obj:
        return False
    status = rollout_status(obj)
    if status.error is None or not status.done:
        return status.done and status.error is None
    if _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration"):
        return False
    if obj.get("kind") == "DaemonSet":
        return _int(obj, "status", "numberAvailable") >= _int(
            obj, "status", "desiredNumberScheduled"
        )
    replicas = _replicas(obj)
    return (
        min(_int(obj, "status", "readyReplicas"), _int(obj, "status", "availableReplicas"))
        >= replicas
    )
