"""The workload kinds the plugin restarts, as data: Deployment, StatefulSet, DaemonSet.

``kubectl rollout restart`` accepts exactly these three, and sends each the same patch (the
``restartedAt`` annotation of the pod template). What differs per kind is data: the resource
name the API serves it under, its short names, whether it can be paused, which update
strategy can leave pods untouched (``OnDelete``), and whether its pods are grouped by
ReplicaSets (Deployments) or by controller revisions (the other two).

``parse_workload`` reads what a user types (``statefulset/db``, ``sts/db``, ``db``), the way
kubectl reads ``TYPE/NAME``; a plain name is a Deployment, as it always was for this plugin.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from kubectl_restart_backend.errors import UsageError, shown


@dataclass(frozen=True)
class Kind:
    """One workload kind and the few facts about it the plugin needs."""

    name: str  # Deployment
    resource: str  # deployments (the API's plural)
    aliases: tuple[str, ...]  # what users type: deployment, deploy, ...
    pausable: bool  # spec.paused exists (Deployments only)
    replicasets: bool  # pods grouped by ReplicaSets (else by controller revisions)

    @property
    def word(self) -> str:
        """The lower-case word kubectl prints: ``deployment``, ``statefulset``."""
        return self.name.lower()

    def ref(self, name: str) -> str:
        """``statefulset/db``: how kubectl names one object of this kind."""
        return f"{self.word}/{name}"


DEPLOYMENT = Kind("Deployment", "deployments", ("deployment", "deploy", "deployments"), True, True)
STATEFULSET = Kind(
    "StatefulSet", "statefulsets", ("statefulset", "sts", "statefulsets"), False, False
)
DAEMONSET = Kind("DaemonSet", "daemonsets", ("daemonset", "ds", "daemonsets"), False, False)
KINDS: tuple[Kind, ...] = (DEPLOYMENT, STATEFULSET, DAEMONSET)

_BY_WORD = {alias: kind for kind in KINDS for alias in (kind.name.lower(), *kind.aliases)}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def kind_named(word: str) -> Kind:
    """The kind for ``deployment``, ``sts``, ``DaemonSet``, ... (``UsageError`` otherwise)."""
    kind = _BY_WORD.get(word.strip().lower())
    if kind is None:
        raise UsageError(
            f"{shown(word)} is not a kind the plugin restarts",
            "use deployment, statefulset (sts) or daemonset (ds), as kubectl rollout restart",
        )
    return kind


def kind_of(obj: Mapping[str, Any], default: Kind = DEPLOYMENT) -> Kind:
    """The kind an object says it is (list items carry no ``kind``: then ``default``)."""
    word = obj.get("kind")
    return _BY_WORD.get(str(word).lower(), default) if word else default


@dataclass(frozen=True)
class WorkloadRef:
    """A workload named by the user: its kind and name (the namespace comes from -n)."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return self.kind.ref(self.name)


def parse_workload(text: str, default: Kind = DEPLOYMENT) -> WorkloadRef:
    """``statefulset/db`` or ``sts/db`` -> (StatefulSet, db); ``db`` -> (``default``, db).

    A name the API server could never hold (``Bad_Name``, ``../x``) is a usage error here,
    before anything is asked of the cluster.
    """
    word, sep, name = text.partition("/")
    if not sep:
        return workload_named(default, text)
    return workload_named(kind_named(word), name)


def workload_named(kind: Kind, name: str) -> WorkloadRef:
    """A workload of ``kind`` called ``name`` (``--deployment NAME``: never TYPE/NAME);
    a name the API server could never hold is a usage error."""
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise UsageError(
            f"{shown(name)} is not a valid {kind.name} name",
            f"{kind.name} names are lowercase letters, digits, '-' and '.' (kubectl get "
            f"{kind.resource} lists them)",
        )
    return WorkloadRef(kind, name)


def update_strategy(obj: Mapping[str, Any], kind: Kind) -> str:
    """``RollingUpdate``, ``OnDelete`` (StatefulSets, DaemonSets) or ``Recreate``
    (Deployments); the API server's default when the field is absent."""
    spec = obj.get("spec") or {}
    if kind is DEPLOYMENT:
        return str((spec.get("strategy") or {}).get("type") or "RollingUpdate")
    return str((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate")


def replaced_on_delete(obj: Mapping[str, Any], kind: Kind) -> bool:
    """True when the restart patch alone replaces no pod: the ``OnDelete`` update strategy
    of StatefulSets and DaemonSets (pods take the new template only when deleted)."""
    return kind is not DEPLOYMENT and update_strategy(obj, kind) == "OnDelete"


def describe(kind: Kind, namespace: str, name: str) -> str:
    """``statefulset shop/db``: the words of the target lines and errors."""
    return f"{kind.word} {namespace}/{name}"


def kind_or_none(word: Optional[str]) -> Optional[Kind]:
    """The kind for ``word``, None for None."""
    return None if word is None else kind_named(word)
