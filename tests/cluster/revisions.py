"""ControllerRevisions: the rollout history of StatefulSets and DaemonSets (pure).

Both controllers snapshot their pod template into an apps/v1 ControllerRevision whose `data`
is the strategic merge patch that puts the template back: `{"spec": {"template": {...,
"$patch": "replace"}}}` (`getPatch` in pkg/controller/statefulset and pkg/controller/daemon).
`kubectl rollout history` lists these objects and `kubectl rollout undo` sends that very patch,
so they are stored exactly in that shape.

The two controllers name and label them differently, as the real ones do:

- StatefulSet (pkg/controller/history): `<set>-<hash>` where the hash is a 32-bit FNV-1 of
  the patch's JSON bytes followed by the collision count (`HashControllerRevision`), label
  `controller.kubernetes.io/hash`; the Pods' `controller-revision-hash` label carries the
  whole revision name.
- DaemonSet (`snapshot` in pkg/controller/daemon/update.go): `<ds>-<hash>` where the hash is
  the pod-template hash Deployments use (`controller.ComputeHash`), label
  `controller-revision-hash`; the Pods' label carries just the hash.
"""

from __future__ import annotations

import json
from typing import Iterable

from .controllers import _normalized, owner_reference, safe_encode_string
from .patching import apply_patch
from .store import deep_copy

__all__ = [
    "HISTORY_HASH_LABEL",
    "REVISION_LABEL",
    "template_patch",
    "patch_bytes",
    "fnv32",
    "hash_revision",
    "revision_name",
    "new_revision",
    "revision_number",
    "sort_revisions",
    "next_revision",
    "equal_revision",
    "find_equal_revisions",
    "apply_revision",
    "revisions_to_truncate",
]

HISTORY_HASH_LABEL = "controller.kubernetes.io/hash"  # history.ControllerRevisionHashLabel
REVISION_LABEL = "controller-revision-hash"  # apps.ControllerRevisionHashLabelKey
_MAX_PREFIX = 223  # ControllerRevisionName keeps names within 253 characters


def template_patch(obj: dict) -> dict:
    """getPatch: the patch that restores `obj`'s pod template. Empty maps and lists are
    dropped first, as Go's omitempty encoding drops them, so equal templates give equal
    patches however they were written."""
    template = _normalized(deep_copy(((obj.get("spec") or {}).get("template")) or {}))
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def patch_bytes(patch: dict) -> bytes:
    """The patch as Go's json.Marshal writes a map: keys sorted, no spaces."""
    return json.dumps(patch, sort_keys=True, separators=(",", ":")).encode()


def fnv32(data: bytes) -> int:
    """hash/fnv New32: FNV-1 (multiply, then xor), not the FNV-1a of pod-template hashes."""
    value = 0x811C9DC5
    for byte in data:
        value = (value * 0x01000193) & 0xFFFFFFFF
        value ^= byte
    return value


def hash_revision(data: dict, probe: int | None) -> str:
    """HashControllerRevision: FNV-1 of the data's bytes, then the probe (the collision
    count, always given by the StatefulSet controller, so "0" is hashed too)."""
    raw = patch_bytes(data)
    if probe is not None:
        raw += str(probe).encode()
    return safe_encode_string(str(fnv32(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    """ControllerRevisionName: `<prefix>-<hash>`, the prefix cut to 223 characters."""
    return f"{prefix[:_MAX_PREFIX]}-{hash_}"


def new_revision(
    owner: dict, data: dict, revision: int, hash_label: str, hash_: str, extra_labels: dict
) -> dict:
    """A ControllerRevision owned by `owner`: the pod template's labels plus the hash label,
    the owner's annotations (both controllers copy them, so `kubernetes.io/change-cause`
    reaches `kubectl rollout history`), `data` and the revision number."""
    meta = owner["metadata"]
    template = (owner.get("spec") or {}).get("template") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.update(extra_labels)
    labels[hash_label] = hash_
    metadata: dict = {
        "name": revision_name(meta["name"], hash_),
        "namespace": meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if meta.get("annotations"):
        metadata["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "data": deep_copy(data),
        "revision": revision,
    }


def revision_number(revision: dict) -> int:
    """`.revision` as a number (0 when missing)."""
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def sort_revisions(revisions: Iterable[dict]) -> list[dict]:
    """SortControllerRevisions: by revision, then creation time, then name."""
    return sorted(
        revisions,
        key=lambda r: (
            revision_number(r),
            r["metadata"].get("creationTimestamp") or "",
            r["metadata"]["name"],
        ),
    )


def next_revision(sorted_revisions: list[dict]) -> int:
    """nextRevision: one more than the last (highest) revision, 1 for none."""
    return revision_number(sorted_revisions[-1]) + 1 if sorted_revisions else 1


def equal_revision(a: dict, b: dict) -> bool:
    """history.EqualRevision: different hash labels mean different; otherwise the data."""
    hash_a = ((a.get("metadata") or {}).get("labels") or {}).get(HISTORY_HASH_LABEL)
    hash_b = ((b.get("metadata") or {}).get("labels") or {}).get(HISTORY_HASH_LABEL)
    if hash_a and hash_b and hash_a != hash_b:
        return False
    return patch_bytes(a.get("data") or {}) == patch_bytes(b.get("data") or {})


def find_equal_revisions(revisions: Iterable[dict], needle: dict) -> list[dict]:
    """FindEqualRevisions, in the order given."""
    return [r for r in revisions if equal_revision(r, needle)]


def apply_revision(obj: dict, revision: dict) -> dict:
    """ApplyRevision: `obj` with the revision's patch applied (its template restored)."""
    return apply_patch(deep_copy(obj), deep_copy(revision.get("data") or {}), "strategic")


def revisions_to_truncate(
    sorted_revisions: list[dict], live: set[str], limit: int | None
) -> list[str]:
    """truncateHistory (StatefulSet): names of the oldest revisions that are not live (the
    current and update revisions, or any Pod's) beyond `limit` (revisionHistoryLimit)."""
    history = [r for r in sorted_revisions if r["metadata"]["name"] not in live]
    if limit is None or limit < 0 or len(history) <= limit:
        return []
    return [r["metadata"]["name"] for r in history[: len(history) - limit]]
