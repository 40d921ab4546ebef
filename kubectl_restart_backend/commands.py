"""``list``, ``link`` and ``unlink``: orchestration over the pure helpers in linking.py."""

from __future__ import annotations

import sys
from typing import Any

from kubectl_restart_backend.errors import RefusedError, UsageError
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
    get_named_deployment,
    list_deployments_in_scope,
    search_linked_deployments,
)
from kubectl_restart_backend.target import qualified_name


def list_linked(session: Any, settings: dict, console: Any) -> int:
    """Every Deployment linked to the repo (all branches), where the restart would look: all
    namespaces (the context's on 403), or ``-n``."""
    git = settings["git"]
    repo = None if settings.get("all_repos") else git.repo
    namespace = None if settings.get("all_namespaces") else settings.get("namespace")
    items, scope = list_deployments_in_scope(
        session, repo_selector(repo), namespace, console.notice
    )
    if repo is not None:
        items = [d for d in items if _same_repo(d, git)]
    rows = sorted(
        (linked_row(d, session.now()) for d in items), key=lambda r: (r.namespace, r.name)
    )
    output = settings.get("output") or "text"
    if output != "text":
        document = {"items": [row_document(r) for r in rows], "exitCode": 0, "error": None}
        console.write(render_document(document, output))
        return 0
    if not rows:
        whose = f"{repo}" if repo else "any repo"
        console.notice(f"no deployments linked to {whose} in {scope.describe()}")
        return 0
    console.write(render_rows(rows))
    return 0


def link(session: Any, settings: dict, console: Any) -> int:
    git = settings["git"]
    name = settings["deployment_name"]
    namespace = settings.get("namespace") or session.namespace
    deployment = get_named_deployment(session, namespace, name)
    # Wherever the restart would look (all namespaces), so a link never makes it ambiguous.
    linked, _scope = search_linked_deployments(session, git, TargetQuery(git=git), console.notice)
    others = [
        d
        for d in linked
        if qualified_name(d) != f"{namespace}/{name}"
        and matches_exact_values(d, git.repo, git.branch)
    ]
    if others and not settings.get("force"):
        names = ", ".join(qualified_name(d) for d in others)
        raise RefusedError(
            f"{names} is already linked to {git.repo}@{git.branch}",
            f"pass --force to move the link to {namespace}/{name}, or unlink the other first",
        )
    patch = build_link_patch(git.repo, git.branch)
    changes = describe_link_change(deployment, patch)
    if not changes and not others:
        console.write(
            f"deployment {namespace}/{name} is already linked to {git.repo}@{git.branch}\n"
        )
        return 0
    summary = [f"Link deployment {namespace}/{name} to {git.repo}@{git.branch}:", *changes]
    summary += [f"  and unlink {qualified_name(d)}" for d in others]
    _confirm(settings, console, summary)
    for other in others:
        meta = other["metadata"]
        session.api.patch_deployment(meta["namespace"], meta["name"], build_unlink_patch())
    session.api.patch_deployment(namespace, name, patch)
    console.write(f"deployment {namespace}/{name} linked to {git.repo}@{git.branch}\n")
    return 0


def unlink(session: Any, settings: dict, console: Any) -> int:
    name = settings["deployment_name"]
    namespace = settings.get("namespace") or session.namespace
    deployment = get_named_deployment(session, namespace, name)
    patch = build_unlink_patch()
    changes = describe_link_change(deployment, patch)
    if not changes:
        console.write(f"deployment {namespace}/{name} is not linked\n")
        return 0
    _confirm(settings, console, [f"Unlink deployment {namespace}/{name}:", *changes])
    session.api.patch_deployment(namespace, name, patch)
    console.write(f"deployment {namespace}/{name} unlinked\n")
    return 0


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


def _same_repo(deployment: dict, git: Any) -> bool:
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    exact = annotations.get("restart-backend/repo")
    return exact is None or exact.lower() == str(git.repo).lower()
