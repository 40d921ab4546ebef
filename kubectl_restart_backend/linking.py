"""The companions of the restart: list the linked workloads, link and unlink one.

Linking writes only the two labels and the two exact-value annotations, with one
strategic-merge patch of ``metadata`` (unlinking sets them to null): nothing else of the
workload (a Deployment, StatefulSet or DaemonSet) is read back and written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Sequence

from kubectl_restart_backend.diagnosis import format_age, one_line, parse_time
from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, Kind
from kubectl_restart_backend.labels import (
    BRANCH_LABEL,
    REPO_LABEL,
    matches_exact_values,
    slug,
)
from kubectl_restart_backend.repo_url import RepoRef
from kubectl_restart_backend.restart_patch import restarted_at_of


@dataclass(frozen=True)
class LinkedRow:
    namespace: str
    kind: Kind
    name: str
    repo: str
    branch: str
    ready: int
    replicas: int
    restarted_at: Optional[str]
    age_seconds: Optional[float]


def build_link_patch(repo: RepoRef, branch: str) -> dict:
    """Labels carry the slugs (what the server selects on), annotations the exact values."""
    return {
        "metadata": {
            "labels": {REPO_LABEL: slug(str(repo)), BRANCH_LABEL: slug(branch)},
            "annotations": {REPO_LABEL: str(repo), BRANCH_LABEL: branch},
        }
    }


def build_unlink_patch() -> dict:
    """Null removes a key in a strategic-merge (and JSON-merge) patch."""
    return {
        "metadata": {
            "labels": {REPO_LABEL: None, BRANCH_LABEL: None},
            "annotations": {REPO_LABEL: None, BRANCH_LABEL: None},
        }
    }


def repo_selector(repo: Optional[RepoRef]) -> str:
    """All branches of ``repo``; every linked workload when ``repo`` is None."""
    return f"{REPO_LABEL}={slug(str(repo))}" if repo else REPO_LABEL


def describe_link_change(workload: dict, patch: dict) -> list[str]:
    """What ``link``/``unlink`` would change, one line per key, for the confirmation prompt."""
    meta = workload.get("metadata") or {}
    lines = []
    for section in ("labels", "annotations"):
        current = meta.get(section) or {}
        for key, value in patch["metadata"][section].items():
            old = current.get(key)
            if old == value:
                continue
            if value is None:
                lines.append(f"  - {section[:-1]} {key}={old}")
            elif old is None:
                lines.append(f"  + {section[:-1]} {key}={value}")
            else:
                lines.append(f"  ~ {section[:-1]} {key}: {old} -> {value}")
    return lines


def link_of(workload: dict) -> tuple[Optional[str], Optional[str]]:
    """The repo and branch a workload is linked to: the exact values (annotations), else
    the slugs (labels); None for what it does not say."""
    meta = workload.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    repo = annotations.get(REPO_LABEL) or labels.get(REPO_LABEL) or None
    branch = annotations.get(BRANCH_LABEL) or labels.get(BRANCH_LABEL) or None
    return repo, branch


def is_linked_to(workload: dict, repo: RepoRef, branch: str) -> bool:
    """True when the workload's labels carry the slugs of repo@branch and its annotations,
    if any, the exact values: what the restart's label search would find."""
    labels = (workload.get("metadata") or {}).get("labels") or {}
    try:
        slugs = (slug(repo.slug_source), slug(branch))
    except UsageError:
        return False
    return (labels.get(REPO_LABEL), labels.get(BRANCH_LABEL)) == slugs and matches_exact_values(
        workload, repo, branch
    )


def linked_row(workload: dict, now: datetime, kind: Kind = DEPLOYMENT) -> LinkedRow:
    """One row of ``list``; a DaemonSet's READY is its ready pods of the nodes it should run
    on (numberReady/desiredNumberScheduled, as ``kubectl get ds`` shows them)."""
    meta = workload.get("metadata") or {}
    status = workload.get("status") or {}
    created = parse_time(meta.get("creationTimestamp"))
    repo, branch = link_of(workload)
    if kind is DAEMONSET:
        ready = int(status.get("numberReady") or 0)
        replicas = int(status.get("desiredNumberScheduled") or 0)
    else:
        ready = int(status.get("readyReplicas") or 0)
        replicas = int((workload.get("spec") or {}).get("replicas", 1))
    return LinkedRow(
        namespace=meta.get("namespace", ""),
        kind=kind,
        name=meta.get("name", ""),
        repo=repo or "",
        branch=branch or "",
        ready=ready,
        replicas=replicas,
        restarted_at=restarted_at_of(workload),
        age_seconds=(now - created).total_seconds() if created else None,
    )


def render_rows(rows: Sequence[LinkedRow]) -> str:
    table = [("NAMESPACE", "KIND", "NAME", "REPO", "BRANCH", "READY", "RESTARTED", "AGE")]
    for row in rows:
        table.append(
            (
                row.namespace,
                row.kind.word,
                row.name,
                row.repo,
                row.branch,
                f"{row.ready}/{row.replicas}",
                row.restarted_at or "<never>",
                format_age(row.age_seconds) if row.age_seconds is not None else "<unknown>",
            )
        )
    table = [tuple(one_line(cell) for cell in r) for r in table]  # annotations are data
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in table
    )


def row_document(row: LinkedRow) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "kind": row.kind.name,
        "name": row.name,
        "repo": row.repo,
        "branch": row.branch,
        "readyReplicas": row.ready,
        "replicas": row.replicas,
        "restartedAt": row.restarted_at,
        "ageSeconds": row.age_seconds,
    }
