"""Which pod to delete next, when the user asked us to replace pods the controller will not
(pure).

Two cases need it, both behind an explicit opt-in (``--delete-pods`` or ``delete-pods:``):

- the ``OnDelete`` update strategy (StatefulSets, DaemonSets): the restart patch moves the
  update revision, but the controller replaces a pod only once someone deletes it;
- a StatefulSet rolled back by ``--undo-on-failure``: with ordered pod management the
  controller never replaces a pod that is not running and ready, so the broken pods of the
  failed revision stay until deleted (Kubernetes' "forced rollback").

The rule is the careful one a person would follow by hand: one pod at a time; nothing while
any pod of the workload is still terminating (the previous deletion is not done) or while a
pod of the new template is not ready (its replacement has not come up: a doomed one stops
the run, since the verdict is FAILED before anything more is deleted); nothing while fewer
pods exist than the workload wants (a replacement is not created yet). Then the old pod with
the highest ordinal (StatefulSets, as their controller goes), or the first by node name
(DaemonSets, one node at a time). Deleting is by uid, so a pod that was replaced meanwhile
under the same name is never deleted by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from kubectl_restart_backend.diagnosis import pod_is_ready, pod_is_terminating
from kubectl_restart_backend.kind_rules import Grouping, desired_pods, ordinal
from kubectl_restart_backend.kinds import STATEFULSET, Kind


@dataclass(frozen=True)
class PodToDelete:
    name: str
    uid: str
    node: Optional[str]


def next_pod_to_delete(
    kind: Kind,
    workload: Mapping[str, Any],
    grouping: Grouping,
    pods: Sequence[Mapping[str, Any]],
    *,
    only_unready: bool = False,
    deleted: frozenset[str] = frozenset(),
) -> Optional[PodToDelete]:
    """The next old pod to delete, or None (wait, or nothing left to replace).

    ``only_unready``: delete only old pods that are not ready (a rolled-back StatefulSet's
    broken pods; its controller replaces the healthy ones itself). ``deleted``: uids of the
    pods already deleted, which count as terminating until the watch shows them so.
    """
    ours = [p for p in pods if _name(p) in grouping.groups]
    if any(pod_is_terminating(p) or _uid(p) in deleted for p in ours):
        return None
    fresh = [p for p in ours if grouping.new and grouping.groups[_name(p)] == grouping.new]
    if any(not pod_is_ready(p) for p in fresh):
        return None
    if len(ours) < desired_pods(kind, workload):
        return None
    old = [p for p in ours if p not in fresh and _active(p)]
    if only_unready:
        old = [p for p in old if not pod_is_ready(p)]
    if not old:
        return None
    if kind is STATEFULSET:
        chosen = max(old, key=lambda p: ordinal(_name(p)))
    else:
        chosen = min(old, key=lambda p: ((p.get("spec") or {}).get("nodeName") or "", _name(p)))
    return PodToDelete(_name(chosen), _uid(chosen), (chosen.get("spec") or {}).get("nodeName"))


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _active(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _name(pod: Mapping[str, Any]) -> str:
    return (pod.get("metadata") or {}).get("name") or ""
