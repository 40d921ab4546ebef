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


def build_undo_patch(previous: dict, ours: dict) -> tuple[int, list]:
    """JSON patch restoring ``previous``'s pod template, guarded by the whole template.

    ``ours`` is the pod template our restart produced (the PATCH's answer). The ``test`` of
    the whole template makes the write conditional on nobody having changed it since: if a
    colleague set an image, paused nothing but edited an env var, or restarted it again, the
    server refuses (422) and nothing is undone. A test of our annotation alone would not
    see a change that left the annotation in place.
    """
    template = dict(previous["spec"]["template"])
    metadata = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != "pod-template-hash"}
    metadata["labels"] = labels
    template["metadata"] = metadata
    ops = [
        {"op": "test", "path": "/spec/template", "value": ours},
        {"op": "replace", "path": "/spec/template", "value": template},
    ]
    return _revision(previous), ops


def _revision(replicaset: dict) -> int:
    try:
        return int((replicaset["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0
