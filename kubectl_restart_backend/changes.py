"""What someone else changed in a Deployment while we watched, and who, in one line.

When a newer generation's pod template is not the one our restart produced (a colleague ran
``kubectl set image``, CI applied a new manifest) or the Deployment was paused mid-rollout,
the rollout we started is superseded: not a failure of ours, and never ours to undo. The
report says what changed (``image 3.0 -> 4.0-hotfix``) and, where the API server's
managedFields tell, which field manager did it (``kubectl-set``).

Pure: plain dicts in, text out.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Sequence

OUR_FIELD_MANAGER = "kubectl-restart-backend"
POD_TEMPLATE_HASH = "pod-template-hash"
_MAX_ITEMS = 3


def describe_template_change(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """``image 3.0 -> 4.0-hotfix, env of container api`` (at most three items), or
    ``the pod template`` when the difference is nowhere we know how to name."""
    items = [text for text, _path in template_changes(ours, theirs)]
    if not items:
        return "the pod template"
    more = len(items) - _MAX_ITEMS
    shown = ", ".join(items[:_MAX_ITEMS])
    return shown + (f" and {more} more" if more > 0 else "")


def template_changes(
    ours: Mapping[str, Any], theirs: Mapping[str, Any]
) -> list[tuple[str, tuple[str, ...]]]:
    """Each change as (words, field path under the Deployment) in template order; the path
    is what managedFields are searched for (``k:{"name":"api"}`` for a container)."""
    changes: list[tuple[str, tuple[str, ...]]] = []
    base = ("spec", "template")
    ours_meta, theirs_meta = ours.get("metadata") or {}, theirs.get("metadata") or {}
    for field in ("annotations", "labels"):
        old = dict(ours_meta.get(field) or {})
        new = dict(theirs_meta.get(field) or {})
        old.pop(POD_TEMPLATE_HASH, None)
        new.pop(POD_TEMPLATE_HASH, None)
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                word = field[:-1]
                changes.append((f"{word} {key}", (*base, "metadata", field, key)))
    ours_spec, theirs_spec = ours.get("spec") or {}, theirs.get("spec") or {}
    single = len(theirs_spec.get("containers") or []) == 1
    for group in ("initContainers", "containers"):
        changes += _container_changes(
            ours_spec.get(group) or [], theirs_spec.get(group) or [], group, single
        )
    for key in sorted(set(ours_spec) | set(theirs_spec)):
        if key in ("containers", "initContainers"):
            continue
        if ours_spec.get(key) != theirs_spec.get(key):
            changes.append((f"spec.{key}", (*base, "spec", key)))
    return changes


def _container_changes(
    ours: Sequence[Mapping[str, Any]],
    theirs: Sequence[Mapping[str, Any]],
    group: str,
    single: bool,
) -> list[tuple[str, tuple[str, ...]]]:
    changes: list[tuple[str, tuple[str, ...]]] = []
    before = {c.get("name"): c for c in ours}
    after = {c.get("name"): c for c in theirs}
    noun = "init container" if group == "initContainers" else "container"
    for name in [c.get("name") for c in theirs] + [n for n in before if n not in after]:
        path = ("spec", "template", "spec", group, _list_key(name))
        old, new = before.get(name), after.get(name)
        if old is None:
            changes.append((f"{noun} {name} added", path))
            continue
        if new is None:
            changes.append((f"{noun} {name} removed", path))
            continue
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            if key == "image":
                where = "" if single and group == "containers" else f" of {noun} {name}"
                text = f"image{where} {_image_change(old.get('image'), new.get('image'))}"
            else:
                text = f"{key} of {noun} {name}"
            changes.append((text, (*path, key)))
    return changes


def _image_change(old: Any, new: Any) -> str:
    """``3.0 -> 4.0-hotfix`` when only the tag moved, else both references in full."""
    old_s, new_s = str(old or ""), str(new or "")
    old_repo, _, old_tag = old_s.rpartition(":")
    new_repo, _, new_tag = new_s.rpartition(":")
    if old_repo and old_repo == new_repo and "/" not in old_tag and "/" not in new_tag:
        return f"{old_tag} -> {new_tag}"
    return f"{old_s} -> {new_s}"


def _list_key(name: Any) -> str:
    """How managedFields name a list item keyed by name."""
    return "k:" + json.dumps({"name": name}, separators=(",", ":"))


def changed_by(deployment: Mapping[str, Any], paths: Sequence[tuple[str, ...]]) -> Optional[str]:
    """The field manager (other than ours) that owns one of ``paths`` and wrote last, else
    the one that last touched the pod template (or ``spec.paused``); None when managedFields
    do not tell (an old server, or fields stripped)."""
    entries = [
        e
        for e in (deployment.get("metadata") or {}).get("managedFields") or []
        if isinstance(e, Mapping)
        and e.get("manager")
        and e.get("manager") != OUR_FIELD_MANAGER
        and not e.get("subresource")
    ]
    owners = [e for e in entries if any(_owns(e.get("fieldsV1") or {}, p) for p in paths)]
    if not owners:
        broad = [("spec", "template"), ("spec", "paused")]
        owners = [e for e in entries if any(_owns(e.get("fieldsV1") or {}, p) for p in broad)]
    if not owners:
        return None
    return str(max(owners, key=lambda e: str(e.get("time") or "")).get("manager"))


def _owns(fields: Mapping[str, Any], path: Sequence[str]) -> bool:
    """True when the fieldsV1 tree has ``path`` (``f:`` fields, ``k:`` list keys)."""
    node: Any = fields
    for segment in path:
        if not isinstance(node, Mapping):
            return False
        key = segment if segment.startswith("k:") else f"f:{segment}"
        if key not in node:
            return False
        node = node[key]
    return True
