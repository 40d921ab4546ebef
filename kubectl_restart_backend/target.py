"""Which workloads are "the backend" of this repo and branch, and in what order (pure).

The server already filtered by the slug labels; here we drop workloads whose exact-value
annotations say they belong to another repo with a colliding slug, then either apply the
tie-break (``app.kubernetes.io/component=backend``: anything but exactly one is refused
with a list the user can act on) or, with ``--all``, take every one. ``plan_waves`` turns the
config file's ``order:`` into waves: each starts only when the one before succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

from kubectl_restart_backend.errors import NotFoundError, UsageError, shown
from kubectl_restart_backend.kinds import DEPLOYMENT, Kind, parse_workload
from kubectl_restart_backend.labels import COMPONENT_LABEL, matches_exact_values
from kubectl_restart_backend.repo_url import RepoRef


@dataclass(frozen=True)
class SearchScope:
    """Where we looked, to say so when nothing was found."""

    namespaces: tuple[str, ...]  # empty: all namespaces
    note: str = ""  # e.g. why the search fell back to one namespace
    kinds: tuple[str, ...] = ("deployments", "statefulsets", "daemonsets")  # resources searched

    def describe(self) -> str:
        if not self.namespaces:
            where = "all namespaces"
        else:
            names = ", ".join(self.namespaces)
            where = f"namespace {names}" if len(self.namespaces) == 1 else f"namespaces {names}"
        return f"{_and(self.kinds)} in {where}"


@dataclass(frozen=True)
class Found:
    """A workload the search (or a name) found: its kind and the object as the API sent it."""

    kind: Kind
    obj: dict

    @property
    def name(self) -> str:
        return (self.obj.get("metadata") or {}).get("name", "")

    @property
    def namespace(self) -> str:
        return (self.obj.get("metadata") or {}).get("namespace", "")

    @property
    def ref(self) -> str:
        """``statefulset/db``."""
        return self.kind.ref(self.name)

    @property
    def label(self) -> str:
        """``statefulset shop/db``."""
        return f"{self.kind.word} {self.namespace}/{self.name}"


def qualified_name(workload: dict) -> str:
    meta = workload.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def linked_candidates(found: Sequence[Found], repo: RepoRef, branch: str) -> list[Found]:
    """What the labels found, minus workloads whose exact values name another repo/branch."""
    return [f for f in found if matches_exact_values(f.obj, repo, branch)]


def choose_target(found: Sequence[Found], repo: RepoRef, branch: str, scope: SearchScope) -> Found:
    """The one workload for repo@branch, or ``NotFoundError`` saying why not."""
    candidates = linked_candidates(found, repo, branch)
    if len(candidates) > 1:
        backends = [f for f in candidates if _labels(f.obj).get(COMPONENT_LABEL) == "backend"]
        if backends:
            candidates = backends
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _none_found(repo, branch, scope)
    if all(f.kind is DEPLOYMENT for f in candidates):
        listing = ", ".join(sorted(qualified_name(f.obj) for f in candidates))
        what = "deployments"
    else:
        listing = ", ".join(sorted(f.label for f in candidates))
        what = "workloads"
    raise NotFoundError(
        f"{len(candidates)} {what} are linked to {repo}@{branch}: {listing}",
        "restart them all with --all, choose some with -w KIND/NAME -n NAMESPACE, or label "
        f"the backend {COMPONENT_LABEL}=backend",
    )


def choose_all(
    found: Sequence[Found], repo: RepoRef, branch: str, scope: SearchScope
) -> list[Found]:
    """``--all``: every workload linked to repo@branch, by kind, namespace and name."""
    candidates = linked_candidates(found, repo, branch)
    if not candidates:
        raise _none_found(repo, branch, scope)
    return sorted(candidates, key=lambda f: (f.kind.resource, f.namespace, f.name))


def _none_found(repo: RepoRef, branch: str, scope: SearchScope) -> NotFoundError:
    return NotFoundError(
        f"No workload found for {repo}@{branch} (searched {scope.describe()})",
        "link one with `kubectl restart-backend link KIND/NAME -n NAMESPACE`, "
        "or pick one with -w KIND/NAME -n NAMESPACE",
    )


Order = Sequence[Union[str, Sequence[str]]]


def plan_waves(targets: Sequence[Found], order: Order) -> tuple[list[list[int]], list[str]]:
    """``order:`` as waves of indexes into ``targets``, and notes about entries that name no
    workload of this run.

    Each entry is one wave: a name (``api``, or ``statefulset/cache`` where a name is shared
    by two kinds) or a list of names restarted together. Workloads the order does not name
    form one last wave. Without an order, everything is one wave: restarted together and
    watched together.
    """
    if not order:
        return ([list(range(len(targets)))] if targets else []), []
    waves: list[list[int]] = []
    notes: list[str] = []
    placed: set[int] = set()
    for entry in order:
        names = [entry] if isinstance(entry, str) else list(entry)
        wave = []
        for name in names:
            index = _match(targets, name)
            if index is None:
                notes.append(f"order: {shown(name)} is not among the workloads of this run")
            elif index not in placed:
                placed.add(index)
                wave.append(index)
        if wave:
            waves.append(wave)
    rest = [i for i in range(len(targets)) if i not in placed]
    if rest:
        waves.append(rest)
    return waves, notes


def _match(targets: Sequence[Found], name: str) -> int | None:
    """The index of the target ``name`` means (``api`` or ``kind/api``); ambiguous names are
    a usage error."""
    if "/" in name:
        ref = parse_workload(name)
        hits = [i for i, t in enumerate(targets) if t.kind is ref.kind and t.name == ref.name]
    else:
        hits = [i for i, t in enumerate(targets) if t.name == name]
    if len(hits) > 1:
        kinds = ", ".join(targets[i].ref for i in hits)
        raise UsageError(
            f"order: {shown(name)} names several workloads ({kinds})",
            "write KIND/NAME in order: (e.g. statefulset/cache)",
        )
    return hits[0] if hits else None


def _labels(workload: dict) -> dict:
    return (workload.get("metadata") or {}).get("labels") or {}


def _and(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
