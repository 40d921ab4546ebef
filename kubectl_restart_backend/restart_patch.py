"""The restart itself: the one annotation ``kubectl rollout restart`` sets, nothing else.

Sending only this strategic-merge patch (never a read-modify-write of the whole object) means
a concurrent change by someone else, or by an HPA, is never overwritten.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional, Sequence

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def format_rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a 'Z', to the second, as kubectl writes it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_restart_patch(restarted_at: str) -> dict:
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}


def restarted_at_of(deployment: dict) -> Optional[str]:
    """The pod template's restartedAt annotation, if any."""
    template_meta = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (template_meta.get("annotations") or {}).get(RESTARTED_AT)


REVISION = "deployment.kubernetes.io/revision"
REVISION_HASH = "controller-revision-hash"


def choose_previous_replicaset(
    replicasets: Sequence[dict], owner_uid: Optional[str], new_name: Optional[str]
) -> Optional[dict]:
    """The Deployment's newest ReplicaSet other than the failing one (what undo returns to)."""
    owned = [
        rs
        for rs in replicasets
        if rs["metadata"].get("name") != new_name
        and any(ref.get("uid") == owner_uid for ref in rs["metadata"].get("ownerReferences") or [])
    ]
    if not owned:
        return None
    return max(owned, key=_revision)


def choose_previous_revision(
    revisions: Sequence[dict], owner_uid: Optional[str], new_revision: Optional[str]
) -> Optional[dict]:
    """A StatefulSet's or DaemonSet's newest ControllerRevision other than the failing one
    (``new_revision``: its name, or for a DaemonSet the hash its pods carry), as
    ``kubectl rollout undo`` picks it."""
    owned = [
        r
        for r in revisions
        if any(ref.get("uid") == owner_uid for ref in r["metadata"].get("ownerReferences") or [])
        and new_revision
        not in (r["metadata"].get("name"), (r["metadata"].get("labels") or {}).get(REVISION_HASH))
    ]
    if not owned:
        return None
    return max(owned, key=lambda r: int(r.get("revision") or 0))


def build_undo_patch(previous: dict, ours: dict) -> tuple[int, list]:
    """JSON patch restoring ``previous``'s pod template, guarded by the whole template.

    ``previous`` is a ReplicaSet (Deployments) or a ControllerRevision (StatefulSets,
    DaemonSets: its ``data`` is the patch that puts the template back). ``ours`` is the pod
    template our restart produced (the PATCH's answer). The ``test`` of the whole template
    makes the write conditional on nobody having changed it since: if a colleague set an
    image, paused nothing but edited an env var, or restarted it again, the server refuses
    (422) and nothing is undone. A test of our annotation alone would not see a change that
    left the annotation in place.
    """
    if "data" in previous:  # a ControllerRevision
        template = dict(((previous.get("data") or {}).get("spec") or {}).get("template") or {})
        template.pop("$patch", None)
        revision = int(previous.get("revision") or 0)
    else:
        template = dict(previous["spec"]["template"])
        revision = _revision(previous)
    metadata = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != "pod-template-hash"}
    metadata["labels"] = labels
    template["metadata"] = metadata
    ops = [
        {"op": "test", "path": "/spec/template", "value": ours},
        {"op": "replace", "path": "/spec/template", "value": template},
    ]
    return revision, ops


def _revision(replicaset: dict) -> int:
    try:
        return int((replicaset["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0
