"""The three PATCH flavours the API server accepts (pure; inputs are never mutated).

* strategic merge patch (`application/strategic-merge-patch+json`): a JSON merge patch that
  knows, per field, whether a list is merged by a key (containers by `name`, container ports by
  `containerPort`, ...) or replaced, and honours the `$patch` (delete/replace/merge),
  `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and `$retainKeys` directives.
  The per-field knowledge covers the built-in types our simulated resources use.
* JSON merge patch, RFC 7386 (`application/merge-patch+json`).
* JSON patch, RFC 6902 (`application/json-patch+json`).
"""

from __future__ import annotations

from typing import Any

from .store import deep_copy

__all__ = [
    "PatchError",
    "PATCH_CONTENT_TYPES",
    "apply_patch",
    "strategic_merge_patch",
    "json_merge_patch",
    "json_patch",
]

PATCH_CONTENT_TYPES = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
}


class PatchError(ValueError):
    """A patch that cannot be applied; `status` is the HTTP code the API server answers."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def apply_patch(obj: dict, patch: Any, patch_type: str) -> dict:
    """Apply `patch` ("strategic" | "merge" | "json") to `obj`, returning a new object."""
    if patch_type == "strategic":
        return strategic_merge_patch(obj, patch)
    if patch_type == "merge":
        if not isinstance(patch, dict):
            raise PatchError("merge patch must be a JSON object", 400)
        return json_merge_patch(obj, patch)
    if patch_type == "json":
        return json_patch(obj, patch)
    raise PatchError(f"unknown patch type {patch_type!r}", 415)


# ------------------------------------------------------------------ JSON merge patch (RFC 7386)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# ------------------------------------------------------------------ strategic merge patch

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# field name -> merge key, from the patchMergeKey tags of the core/apps/networking types.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}

# lists of scalars whose patch strategy is "merge" (union instead of replace)
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


def _merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key of the list at `path` (field names only), or None when it is replaced."""
    field = path[-1]
    if field == "ports":
        return "containerPort" if any(p in _CONTAINER_LISTS for p in path) else "port"
    if field == "conditions" and "status" not in path:
        return None
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(obj: dict, patch: Any) -> dict:
    """Apply a strategic merge patch to a Kubernetes object."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", 400)
    result = _merge_map(obj, patch, ())
    if result is None:
        raise PatchError("a strategic merge patch cannot delete the whole object", 400)
    return result


def _merge_map(original: Any, patch: dict, path: tuple[str, ...]) -> dict | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: deep_copy(v) for k, v in patch.items() if k != "$patch"}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive} in map: {patch}", 400)
    result = dict(original) if isinstance(original, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key), value, (*path, key))
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_value(original: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if isinstance(patch, dict):
        return _merge_map(original, patch, path)
    if isinstance(patch, list):
        return _merge_list(original if isinstance(original, list) else [], patch, path)
    return patch


def _merge_list(original: list, patch: list, path: tuple[str, ...]) -> list:
    field = path[-1]
    if field in _MERGED_PRIMITIVE_LISTS:
        return list(original) + [v for v in patch if v not in original]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [deep_copy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return deep_copy(patch)
    result = list(original)
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}", 400)
        index = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_merge_map({}, item, path))
        else:
            result[index] = _merge_map(result[index], item, path)
    return result


# ------------------------------------------------------------------ JSON patch (RFC 6902)


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}", 400)
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _index(container: list, token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index: {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index out of range: {index}")
    return index


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return node


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"doc is missing path: /{'/'.join(parts)}")


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts)
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        del parent[_index(parent, parts[-1], allow_end=False)]
    else:
        del parent[parts[-1]]
    return value


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return deep_copy(value)
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], allow_end=True), deep_copy(value))
    elif isinstance(parent, dict):
        parent[parts[-1]] = deep_copy(value)
    else:
        raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def json_patch(obj: Any, operations: Any) -> Any:
    """RFC 6902: apply the operations in order to a copy; any failure aborts the whole patch."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a JSON array of operations", 400)
    doc = deep_copy(obj)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid operation: {op!r}", 400)
        kind, parts = op["op"], _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation", 400)
        if kind == "add":
            doc = _add(doc, parts, op["value"])
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _get(doc, parts)
            if not parts:
                doc = deep_copy(op["value"])
            else:
                _remove(doc, parts)
                doc = _add(doc, parts, op["value"])
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = _remove(doc, source) if kind == "move" else deep_copy(_get(doc, source))
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _get(doc, parts) != op["value"]:
                raise PatchError(f"testing value /{'/'.join(parts)} failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", 400)
    return doc
