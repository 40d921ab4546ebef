"""Which Deployment is "the backend" of this repo and branch (the spec's pipeline).

The server already filtered by the slug labels; here we drop Deployments whose exact-value
annotations say they belong to another repo with a colliding slug, then apply the tie-break
(``app.kubernetes.io/component=backend``). Anything but exactly one is refused with a list
the user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from kubectl_restart_backend.errors import NotFoundError
from kubectl_restart_backend.labels import COMPONENT_LABEL, matches_exact_values
from kubectl_restart_backend.repo_url import RepoRef


@dataclass(frozen=True)
class SearchScope:
    """Where we looked, to say so when nothing was found."""

    namespaces: tuple[str, ...]  # empty: all namespaces
    note: str = ""  # e.g. why the search fell back to one namespace

    def describe(self) -> str:
        if not self.namespaces:
            return "all namespaces"
        names = ", ".join(self.namespaces)
        return f"namespace {names}" if len(self.namespaces) == 1 else f"namespaces {names}"


def qualified_name(deployment: dict) -> str:
    meta = deployment.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def choose_target(
    deployments: Sequence[dict], repo: RepoRef, branch: str, scope: SearchScope
) -> dict:
    """The one Deployment for repo@branch, or ``NotFoundError`` saying why not."""
    candidates = [d for d in deployments if matches_exact_values(d, repo, branch)]
    if len(candidates) > 1:
        backends = [d for d in candidates if _labels(d).get(COMPONENT_LABEL) == "backend"]
        if backends:
            candidates = backends
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise NotFoundError(
            f"No deployment found for {repo}@{branch} (searched {scope.describe()})",
            "link one with `kubectl restart-backend link DEPLOYMENT -n NAMESPACE`, "
            "or pick one with --deployment NAME -n NAMESPACE",
        )
    listing = ", ".join(sorted(qualified_name(d) for d in candidates))
    raise NotFoundError(
        f"{len(candidates)} deployments are linked to {repo}@{branch}: {listing}",
        "choose one with --deployment NAME -n NAMESPACE, or label the backend "
        f"{COMPONENT_LABEL}=backend",
    )


def _labels(deployment: dict) -> dict:
    return (deployment.get("metadata") or {}).get("labels") or {}
