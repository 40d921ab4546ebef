"""metadata.managedFields for Update operations, as the API server keeps them (simplified).

Every create, update and patch names a field manager (the `fieldManager` query parameter, or
the User-Agent up to its first `/`, as the real server derives it). The manager takes
ownership of every field whose value its write changed (a FieldsV1 tree: `f:<field>` for
fields, `k:{"name":...}` for list items keyed by name, `.` for the item itself); other
managers lose those fields, and an entry left with none is dropped. Status writes are not
tracked (the simulated controllers write status straight into the store).

Enough for clients that ask "who changed the image?", which is what kubectl-restart-backend
asks when someone else's change supersedes its rollout. Not simulated: Apply operations,
ownership of unchanged fields set by an Update, and the per-apiVersion split of entries.
"""

from __future__ import annotations

import json
from typing import Any

from .patching import _MERGE_KEYS as _LIST_KEYS  # items are owned by the key they merge by

__all__ = ["update_managed_fields", "fields_changed", "HARNESS_MANAGER"]

# Who creates the objects of a test (SimCluster.create; the real tier's REST client sends it
# as its User-Agent): an API server records every object's creator, the real one included.
HARNESS_MANAGER = "restart-backend-tests"

_UNTRACKED = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "generation",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    }
)


def fields_changed(old: Any, new: Any, field: str | None = None) -> dict:
    """The FieldsV1 tree of what differs from `old` to `new` (new or changed values)."""
    if isinstance(new, dict) and isinstance(old, dict):
        tree: dict = {}
        for key, value in new.items():
            if key in _UNTRACKED or key == "status":
                continue
            if key in old and old[key] == value:
                continue
            before = old.get(key)
            if isinstance(value, dict) and not isinstance(before, dict):
                before = {}  # a new object: each field under it is new
            sub = fields_changed(before, value, key)
            if (
                not sub
                and isinstance(value, (dict, list))
                and isinstance(old.get(key), type(value))
            ):
                continue  # only untracked fields below it changed
            tree[f"f:{key}"] = sub
        return tree
    if isinstance(new, list) and field in _LIST_KEYS and all(isinstance(i, dict) for i in new):
        key = _LIST_KEYS[field]
        before = {
            json.dumps(i.get(key)): i
            for i in (old if isinstance(old, list) else [])
            if isinstance(i, dict)
        }
        tree = {}
        for item in new:
            ident = json.dumps(item.get(key))
            previous = before.get(ident)
            if previous == item:
                continue
            sub = fields_changed(previous or {}, item)
            if previous is None:
                sub["."] = {}
            tree["k:" + json.dumps({key: item.get(key)}, separators=(",", ":"))] = sub
        return tree
    return {}


def update_managed_fields(old: dict | None, new: dict, manager: str, timestamp: str) -> list[dict]:
    """`new`'s managedFields after `manager` wrote it over `old` (None for a create)."""
    entries = [dict(e) for e in ((old or {}).get("metadata") or {}).get("managedFields") or []]
    changed = fields_changed(old or {}, new)
    if not changed:
        return entries
    kept = []
    mine = None
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            mine = entry
            continue
        remaining = _without(entry.get("fieldsV1") or {}, changed)
        if remaining:
            kept.append({**entry, "fieldsV1": remaining})
    owned = _merged((mine or {}).get("fieldsV1") or {}, changed)
    kept.append(
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": new.get("apiVersion") or "v1",
            "time": timestamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": owned,
        }
    )
    return kept


def _merged(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merged(out.get(key) or {}, value) if value else (out.get(key) or {})
    return out


def _without(owned: dict, taken: dict) -> dict:
    """`owned` minus the leaves in `taken` (a field taken whole takes its subtree)."""
    out = {}
    for key, value in owned.items():
        if key not in taken:
            out[key] = value
            continue
        if not taken[key]:  # taken as a leaf: the whole subtree goes
            continue
        rest = _without(value, taken[key]) if value else {}
        if rest:
            out[key] = rest
    return out
