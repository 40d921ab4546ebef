"""Label and field selectors as the API server parses and applies them (pure).

Label selectors follow apimachinery's grammar: comma-separated requirements, each one of
`key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` (exists) or
`!key` (does not exist). Field selectors only know `=`, `==` and `!=`, and only a few fields per
resource; asking for another field is a 400 in a real cluster, so it is an error here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = [
    "SelectorError",
    "LabelRequirement",
    "FieldRequirement",
    "parse_label_selector",
    "parse_field_selector",
    "labels_match",
    "fields_match",
    "field_value",
    "SUPPORTED_FIELDS",
]


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest."""


@dataclass(frozen=True)
class LabelRequirement:
    """One clause of a label selector; `op` is one of =, !=, in, notin, exists, !."""

    key: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector; `op` is = or !=."""

    field: str
    op: str
    value: str


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `( ... )` (set-based values contain commas)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    if not _KEY_RE.match(key) or len(name) > 63 or len(key) > 253 + 1 + 63:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )
    return key


def _check_value(key: str, value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": a valid '
            "label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character"
        )
    return value


def _parse_label_term(term: str) -> LabelRequirement:
    term = term.strip()
    if not term:
        raise SelectorError("unable to parse requirement: found '', expected: identifier")
    set_match = _SET_RE.match(term)
    if set_match:
        key = _check_key(set_match["key"])
        values = tuple(v.strip() for v in set_match["values"].split(",") if v.strip())
        if not values:
            raise SelectorError(
                f"unable to parse requirement: for '{set_match['op']}', 'notin' operators, "
                "values set can't be empty"
            )
        return LabelRequirement(key, set_match["op"], tuple(_check_value(key, v) for v in values))
    if term.startswith("!") and "=" not in term:
        return LabelRequirement(_check_key(term[1:].strip()), "!")
    for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
        if token in term:
            key, value = term.split(token, 1)
            key = _check_key(key.strip())
            return LabelRequirement(key, op, (_check_value(key, value.strip()),))
    return LabelRequirement(_check_key(term), "exists")


def parse_label_selector(text: str | None) -> tuple[LabelRequirement, ...]:
    """Parse a label selector string; empty or None selects everything."""
    if text is None or not text.strip():
        return ()
    return tuple(_parse_label_term(term) for term in _split_top_level(text))


def labels_match(requirements: tuple[LabelRequirement, ...], labels: Mapping[str, str]) -> bool:
    """True when `labels` satisfy every requirement (AND, as in Kubernetes)."""
    for req in requirements:
        present = req.key in labels
        value = labels.get(req.key)
        if req.op == "=" and (not present or value != req.values[0]):
            return False
        if req.op == "!=" and present and value == req.values[0]:
            return False
        if req.op == "in" and (not present or value not in req.values):
            return False
        if req.op == "notin" and present and value in req.values:
            return False
        if req.op == "exists" and not present:
            return False
        if req.op == "!" and present:
            return False
    return True


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")

SUPPORTED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "pods": _COMMON_FIELDS
    + (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": _COMMON_FIELDS
    + (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": _COMMON_FIELDS + ("type",),
    "namespaces": _COMMON_FIELDS + ("status.phase",),
    "replicasets": _COMMON_FIELDS + ("status.replicas",),
}


def _parse_field_term(term: str, allowed: tuple[str, ...]) -> FieldRequirement:
    for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
        if token in term:
            field, value = term.split(token, 1)
            field = field.strip()
            if field not in allowed:
                raise SelectorError(f"field label not supported: {field}")
            return FieldRequirement(field, op, value.strip())
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def parse_field_selector(text: str | None, resource: str) -> tuple[FieldRequirement, ...]:
    """Parse a field selector for `resource` (plural); unknown fields raise SelectorError."""
    if text is None or not text.strip():
        return ()
    allowed = SUPPORTED_FIELDS.get(resource, _COMMON_FIELDS)
    return tuple(_parse_field_term(t, allowed) for t in text.split(",") if t.strip())


def field_value(obj: Mapping, field: str) -> str:
    """The string the API server compares for `field` (missing fields compare as "")."""
    if field == "source":
        node = obj.get("source") or {}
        return str(node.get("component", "")) if isinstance(node, Mapping) else str(node)
    node: object = obj
    for part in field.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def fields_match(
    requirements: tuple[FieldRequirement, ...],
    obj: Mapping,
    value_of: Callable[[Mapping, str], str] = field_value,
) -> bool:
    """True when `obj` satisfies every field requirement."""
    for req in requirements:
        equal = value_of(obj, req.field) == req.value
        if equal != (req.op == "="):
            return False
    return True
