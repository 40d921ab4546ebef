"""Connecting to the cluster and finding the target Deployment.

A ``Session`` bundles what every command needs: the API, the context's name and namespace,
and the clocks (passed around, so rules never read the time themselves).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping, Optional

from kubectl_restart_backend.api import KubeApi
from kubectl_restart_backend.errors import (
    ApiError,
    NotFoundError,
    PluginError,
    UsageError,
    shown,
)
from kubectl_restart_backend.gitrepo import GitContext
from kubectl_restart_backend.retry import RetryBudget
from kubectl_restart_backend.target import SearchScope, choose_target


@dataclass(frozen=True)
class ConnectOptions:
    """kubectl's standard connection flags."""

    kubeconfig: Optional[str] = None
    context: Optional[str] = None
    cluster: Optional[str] = None
    user: Optional[str] = None
    namespace: Optional[str] = None
    request_timeout: Optional[float] = None
    token: Optional[str] = field(default=None, repr=False)
    impersonate_user: Optional[str] = None  # --as
    impersonate_groups: tuple[str, ...] = ()  # --as-group
    verbosity: int = 0  # -v/--v: 6 traces API calls, 7 adds headers, 8 bodies


@dataclass
class Session:
    api: KubeApi
    context: str
    namespace: str  # the context's namespace (or -n): where namespaced fallbacks look
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def open_session(
    connect: ConnectOptions,
    env: Mapping[str, str],
    *,
    deadline: Optional[float],
    on_retry: Optional[Callable[[str], None]] = None,
) -> Session:
    """Resolve the kubeconfig as kubectl does and build the client (the slow import is here).

    An exec credential plugin gets the time left until ``deadline`` (``--timeout``).
    """
    from kubectl_restart_backend.api import request_tracer
    from kubectl_restart_backend.kubeconfig import build_api_client, resolve_from_environment

    resolved = resolve_from_environment(
        connect.kubeconfig,
        env,
        context=connect.context,
        cluster=connect.cluster,
        user=connect.user,
        namespace=connect.namespace,
        token=connect.token,
        impersonate_user=connect.impersonate_user,
        impersonate_groups=connect.impersonate_groups,
    )
    exec_timeout = None
    if deadline is not None:  # a day at most: selectors refuse longer waits (OverflowError)
        exec_timeout = min(max(1.0, deadline - time.monotonic()), 86_400.0)
    client = build_api_client(
        resolved, exec_timeout=exec_timeout, wrap_requests=request_tracer(connect.verbosity)
    )
    if _skips_tls_verification(resolved.config_dict_for_client):
        _silence_insecure_request_warnings()
        if on_retry is not None:
            on_retry(
                f"TLS verification is off for {resolved.server} "
                "(insecure-skip-tls-verify in your kubeconfig)"
            )
    context = resolved.context_name or ("in-cluster" if resolved.in_cluster else "")
    namespace = resolved.namespace
    budget = RetryBudget(deadline, time.monotonic)
    api = KubeApi(client, budget=budget, request_timeout=connect.request_timeout, on_retry=on_retry)
    return Session(api=api, context=context, namespace=namespace or "default")


def _skips_tls_verification(config: dict) -> bool:
    clusters = config.get("clusters") or [{}]
    return (clusters[0].get("cluster") or {}).get("insecure-skip-tls-verify") is True


def _silence_insecure_request_warnings() -> None:
    """The user chose this in the kubeconfig: say it once, not on every request."""
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)


@dataclass(frozen=True)
class TargetQuery:
    """How the user asked for the target: by repo/branch (git, flags, config) or by name."""

    git: Optional[GitContext] = None  # None when git could not tell (see git_error)
    git_error: Optional[PluginError] = None
    deployment: Optional[str] = None
    namespace: Optional[str] = None  # -n (or the config file): restricts the search
    selector: Optional[str] = None  # extra label selector from the config file


@dataclass(frozen=True)
class Target:
    deployment: dict
    repo: Optional[str]
    branch: Optional[str]
    notes: tuple[str, ...] = ()


def find_target(session: Session, query: TargetQuery, notice: Callable[[str], None]) -> Target:
    """The Deployment to restart: by name with --deployment, else by the repo/branch labels."""
    git = query.git
    if query.deployment:  # naming the Deployment makes the checkout optional
        namespace = query.namespace or session.namespace
        return _named_target(session, namespace, query.deployment, git, notice)
    if git is None:
        raise query.git_error or PluginError("cannot tell which repo and branch to restart")
    notes = []
    if git.branch_source not in ("git", "--branch"):
        notes.append(f"branch {shown(git.branch)} taken from ${git.branch_source} (detached HEAD)")
        notice(notes[-1])
    deployments, scope = search_linked_deployments(session, git, query, notice)
    if scope.note:
        notes.append(scope.note)
    try:
        chosen = choose_target(deployments, git.repo, git.branch, scope)
    except NotFoundError as err:
        if "No deployment found" in err.message:
            err.hint = _link_hint(git.repo, git.branch, query.namespace or session.namespace)
        raise
    return Target(chosen, str(git.repo), git.branch, tuple(notes))


def _named_target(
    session: Session,
    namespace: str,
    name: str,
    git: Optional[GitContext],
    notice: Callable[[str], None],
) -> Target:
    """A Deployment chosen by name: its repo and branch are the ones it is linked to (not
    the checkout's), and a link to another branch is said, since it may be the wrong one."""
    from kubectl_restart_backend.linking import is_linked_to, link_of

    deployment = get_named_deployment(session, namespace, name)
    repo, branch = link_of(deployment)
    notes = []
    if git is not None and repo and not is_linked_to(deployment, git.repo, git.branch):
        notes.append(
            f"deployment {namespace}/{name} is linked to {repo}@{branch or '?'}, "
            f"not to this checkout's {git.repo}@{git.branch}"
        )
        notice(notes[-1])
    return Target(deployment, repo, branch, tuple(notes))


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def get_named_deployment(session: Session, namespace: str, name: str) -> dict:
    """GET one Deployment; a 404 becomes the plugin's "not found" (exit 4).

    A name the API server could never hold (``Bad_Name``, ``../x``) is a usage error first.
    """
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise UsageError(
            f"{shown(name)} is not a valid Deployment name",
            "Deployment names are lowercase letters, digits, '-' and '.' (kubectl get "
            f"deployments -n {namespace} lists them)",
        )
    try:
        return session.api.get_deployment(namespace, name)
    except ApiError as err:
        if err.status == 404:
            raise NotFoundError(
                f'deployment "{name}" not found in namespace {namespace}',
                "check the name and namespace: kubectl get deployments -n " + namespace,
            ) from None
        raise


def search_linked_deployments(
    session: Session, git: GitContext, query: TargetQuery, notice: Callable[[str], None]
) -> tuple[list[dict], SearchScope]:
    """Ask the server for the Deployments labelled for repo@branch: in ``query.namespace``,
    else in all namespaces, falling back to the context's namespace on 403."""
    from kubectl_restart_backend.labels import build_selector

    selector = build_selector(git.repo, git.branch)
    if query.selector:
        selector = f"{selector},{query.selector}"
    return list_deployments_in_scope(session, selector, query.namespace, notice)


def list_deployments_in_scope(
    session: Session, selector: str, namespace: Optional[str], notice: Callable[[str], None]
) -> tuple[list[dict], SearchScope]:
    """Deployments matching ``selector`` in ``namespace``, else in all namespaces, falling
    back to the context's namespace (said as a notice) when listing everywhere is forbidden.
    The restart's search and ``list`` share it, so they always look in the same places."""
    if namespace:
        listing = session.api.list("deployments", namespace, label_selector=selector)
        return listing.items, SearchScope((namespace,))
    try:
        listing = session.api.list("deployments", None, label_selector=selector)
        return listing.items, SearchScope(())
    except ApiError as err:
        if err.status != 403:
            raise
    fallback = session.namespace
    note = (
        f"not allowed to list deployments in all namespaces; searched namespace {fallback} "
        "(use -n to choose another)"
    )
    notice(note)
    listing = session.api.list("deployments", fallback, label_selector=selector)
    return listing.items, SearchScope((fallback,), note)


def _link_hint(repo, branch, namespace: str) -> str:
    from kubectl_restart_backend.labels import kubectl_label_command

    command = " && ".join(kubectl_label_command(namespace, "DEPLOYMENT", repo, branch).splitlines())
    return (
        f"link one: kubectl restart-backend link DEPLOYMENT -n {namespace} (or by hand: {command})"
    )
