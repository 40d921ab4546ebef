"""``list``, ``link`` and ``unlink``: orchestration over the pure helpers in linking.py."""

from __future__ import annotations

import sys
from typing import Any

from kubectl_restart_backend.errors import RefusedError, UsageError
from kubectl_restart_backend.kinds import DEPLOYMENT, WorkloadRef, kind_or_none, parse_workload
from kubectl_restart_backend.labels import matches_exact_values
from kubectl_restart_backend.linking import (
    build_link_patch,
    build_unlink_patch,
    describe_link_change,
    linked_row,
    render_rows,
    repo_selector,
    row_document,
)
from kubectl_restart_backend.render import render_document
from kubectl_restart_backend.session import (
    TargetQuery,
    get_named_workload,
    list_workloads_in_scope,
    search_linked_workloads,
)


def list_linked(session: Any, settings: dict, console: Any) -> int:
    """Every workload linked to the repo (all branches), where the restart would look: all
    namespaces (the context's on 403), or ``-n``."""
    git = settings["git"]
    repo = None if settings.get("all_repos") else git.repo
    namespace = None if settings.get("all_namespaces") else settings.get("namespace")
    found, scope = list_workloads_in_scope(session, repo_selector(repo), namespace, console.notice)
    if repo is not None:
        found = [f for f in found if _same_repo(f.obj, git)]
    rows = sorted(
        (linked_row(f.obj, session.now(), f.kind) for f in found),
        key=lambda r: (r.namespace, r.kind.resource, r.name),
    )
    output = settings.get("output") or "text"
    if output != "text":
        document = {"items": [row_document(r) for r in rows], "exitCode": 0, "error": None}
        console.write(render_document(document, output))
        return 0
    if not rows:
        whose = f"{repo}" if repo else "any repo"
        console.notice(f"no workloads linked to {whose} in {scope.describe()}")
        return 0
    console.write(render_rows(rows))
    return 0


def link(session: Any, settings: dict, console: Any) -> int:
    git = settings["git"]
    ref = _workload_ref(settings)
    namespace = settings.get("namespace") or session.namespace
    workload = get_named_workload(session, namespace, ref)
    who = f"{ref.kind.word} {namespace}/{ref.name}"
    # Wherever the restart would look (all namespaces), so a link never makes it ambiguous
    # unless asked to (--add: restart them together with --all).
    linked, _scope = search_linked_workloads(session, git, TargetQuery(git=git), console.notice)
    others = [
        f
        for f in linked
        if (f.kind, f.namespace, f.name) != (ref.kind, namespace, ref.name)
        and matches_exact_values(f.obj, git.repo, git.branch)
    ]
    if settings.get("add"):
        if others:
            names = ", ".join(f.label for f in others)
            console.notice(f"{names} stay linked too: restart them together with --all")
        others = []
    if others and not settings.get("force"):
        names = ", ".join(f.label for f in others)
        raise RefusedError(
            f"{names} is already linked to {git.repo}@{git.branch}",
            f"pass --force to move the link to {who}, --add to link both (restart them "
            "together with --all), or unlink the other first",
        )
    patch = build_link_patch(git.repo, git.branch)
    changes = describe_link_change(workload, patch)
    if not changes and not others:
        console.write(f"{who} is already linked to {git.repo}@{git.branch}\n")
        return 0
    summary = [f"Link {who} to {git.repo}@{git.branch}:", *changes]
    summary += [f"  and unlink {f.label}" for f in others]
    _confirm(settings, console, summary)
    for other in others:
        session.api.patch_workload(
            other.kind.resource, other.namespace, other.name, build_unlink_patch()
        )
    session.api.patch_workload(ref.kind.resource, namespace, ref.name, patch)
    console.write(f"{who} linked to {git.repo}@{git.branch}\n")
    return 0


def unlink(session: Any, settings: dict, console: Any) -> int:
    ref = _workload_ref(settings)
    namespace = settings.get("namespace") or session.namespace
    workload = get_named_workload(session, namespace, ref)
    who = f"{ref.kind.word} {namespace}/{ref.name}"
    patch = build_unlink_patch()
    changes = describe_link_change(workload, patch)
    if not changes:
        console.write(f"{who} is not linked\n")
        return 0
    _confirm(settings, console, [f"Unlink {who}:", *changes])
    session.api.patch_workload(ref.kind.resource, namespace, ref.name, patch)
    console.write(f"{who} unlinked\n")
    return 0


def _workload_ref(settings: dict) -> WorkloadRef:
    """``link statefulset/db``, ``link db --kind statefulset``; a plain NAME is a Deployment."""
    text = settings["workload_name"]
    kind = kind_or_none(settings.get("kind"))
    ref = parse_workload(text, kind or DEPLOYMENT)
    if kind is not None and "/" in text and ref.kind is not kind:
        raise UsageError(
            f"{text} is a {ref.kind.word}, but --kind says {kind.word}",
            "give the kind once: KIND/NAME, or NAME with --kind",
        )
    return ref


def _confirm(settings: dict, console: Any, summary: list[str]) -> None:
    """Show the change; ask unless --yes. Without a terminal to ask on, refuse (never hang).

    No, or end of input (Ctrl-D), changes nothing (exit 5); Ctrl-C is an interruption like
    anywhere else (exit 130, nothing changed).
    """
    console.write("\n".join(summary) + "\n")
    if settings.get("yes"):
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("no terminal to ask for confirmation on", "pass --yes to go ahead")
    if not console.ask("Go ahead? [y/N]: ", sys.stdin):
        raise RefusedError("cancelled: nothing was changed")


def _same_repo(workload: dict, git: Any) -> bool:
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    exact = annotations.get("restart-backend/repo")
    return exact is None or exact.lower() == str(git.repo).lower()
