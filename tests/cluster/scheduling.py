"""Which simulated nodes a Pod may run on (pure).

The simulation's nodes are names (`SimConfig.nodes`) with labels: the well-known ones every
kubelet sets (`kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch`) plus any
`SimConfig.node_labels` adds. Two parts of the control plane ask the same question:

- the scheduler (kubelet.py) filters nodes by the Pod's `spec.nodeName`, `nodeSelector` and
  required node affinity (the NodeName, NodeAffinity plugins), which is how a DaemonSet Pod,
  created with a `matchFields metadata.name` affinity for its node, lands there;
- the DaemonSet controller asks whether a node should run its Pod (`NodeShouldRunDaemonPod`,
  the same predicates).

Deliberately not simulated: taints and tolerations, resources, inter-pod affinity.
"""

from __future__ import annotations

from typing import Iterable, Mapping

__all__ = [
    "node_labels",
    "node_fits",
    "feasible_nodes",
    "affinity_mismatch_message",
]

_NODE_NAME_FIELD = "metadata.name"


def node_labels(name: str, extra: Mapping[str, Mapping[str, str]] | None = None) -> dict:
    """The labels of the simulated node `name`: the kubelet's well-known ones plus extras."""
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    labels.update((extra or {}).get(name) or {})
    return labels


def _requirement_matches(req: Mapping, value: str | None) -> bool:
    """One NodeSelectorRequirement against a label's (or field's) value (None: absent)."""
    op, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


def _term_matches(term: Mapping, name: str, labels: Mapping[str, str]) -> bool:
    """A NodeSelectorTerm: all its expressions and fields match (an empty term matches
    nothing, as in Kubernetes)."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    for req in expressions:
        if not _requirement_matches(req, labels.get(req.get("key", ""))):
            return False
    for req in fields:
        value = name if req.get("key") == _NODE_NAME_FIELD else None
        if not _requirement_matches(req, value):
            return False
    return True


def node_fits(pod_spec: Mapping, name: str, labels: Mapping[str, str]) -> bool:
    """The NodeName, nodeSelector and required node affinity filters (terms are ORed)."""
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != name:
        return False
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
    ) or None
    if required is None:
        return True
    return any(_term_matches(t, name, labels) for t in required.get("nodeSelectorTerms") or [])


def feasible_nodes(
    pod_spec: Mapping,
    nodes: Iterable[str],
    extra_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """The nodes (in the given order) the Pod may be bound to."""
    return [n for n in nodes if node_fits(pod_spec, n, node_labels(n, extra_labels))]


def affinity_mismatch_message(count: int) -> str:
    """The scheduler's FailedScheduling message when no node matches the Pod's selector."""
    return (
        f"0/{count} nodes are available: {count} node(s) didn't match Pod's node "
        f"affinity/selector. preemption: 0/{count} nodes are available: {count} Preemption "
        "is not helpful for scheduling."
    )
