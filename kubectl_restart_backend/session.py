"""Connecting to the cluster and finding the target workloads.

A ``Session`` bundles what every command needs: the API, the context's name and namespace,
and the clocks (passed around, so rules never read the time themselves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Mapping, Optional

from kubectl_restart_backend.api import KubeApi
from kubectl_restart_backend.errors import (
    ApiError,
    NotFoundError,
    PluginError,
    shown,
)
from kubectl_restart_backend.gitrepo import GitContext
from kubectl_restart_backend.kinds import (
    DEPLOYMENT,
    KINDS,
    Kind,
    WorkloadRef,
    parse_workload,
    workload_named,
)
from kubectl_restart_backend.retry import RetryBudget
from kubectl_restart_backend.target import (
    Found,
    Order,
    SearchScope,
    choose_all,
    choose_target,
    plan_waves,
)

if TYPE_CHECKING:
    from kubectl_restart_backend.kubeconfig import ResolvedConfig


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
    server: str = ""  # the API server's URL (credentials redacted), "in-cluster" in a pod


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
    from kubectl_restart_backend.api import request_tracer, trace_proxy
    from kubectl_restart_backend.kubeconfig import build_api_client, resolve_from_environment
    from kubectl_restart_backend.proxies import choose_proxy

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
    proxy = choose_proxy(_server_url(resolved, env), _proxy_url(resolved), env)
    trace_proxy(connect.verbosity, proxy)
    client = build_api_client(
        resolved,
        exec_timeout=exec_timeout,
        wrap_requests=request_tracer(connect.verbosity),
        proxy=proxy,
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
    api = KubeApi(
        client,
        budget=budget,
        request_timeout=connect.request_timeout,
        on_retry=on_retry,
        proxy=proxy,
    )
    return Session(
        api=api, context=context, namespace=namespace or "default", server=resolved.server
    )


def _server_url(resolved: ResolvedConfig, env: Mapping[str, str]) -> str:
    """The API server's URL, to decide whether a proxy variable applies to it."""
    if resolved.in_cluster:
        host = env.get("KUBERNETES_SERVICE_HOST", "")
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{env.get('KUBERNETES_SERVICE_PORT', '443')}"
    return str(_cluster_entry(resolved.config_dict_for_client).get("server") or "")


def _proxy_url(resolved: ResolvedConfig) -> Optional[str]:
    return _cluster_entry(resolved.config_dict_for_client).get("proxy-url")


def _skips_tls_verification(config: dict) -> bool:
    return _cluster_entry(config).get("insecure-skip-tls-verify") is True


def _cluster_entry(config: dict) -> dict:
    """The one cluster entry of a resolved kubeconfig (empty in-cluster)."""
    clusters = config.get("clusters") or [{}]
    return clusters[0].get("cluster") or {}


def _silence_insecure_request_warnings() -> None:
    """The user chose this in the kubeconfig: say it once, not on every request."""
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    warnings.filterwarnings("ignore", category=InsecureRequestWarning)


@dataclass(frozen=True)
class TargetQuery:
    """How the user asked for the targets: by repo/branch (git, flags, config) or by name."""

    git: Optional[GitContext] = None  # None when git could not tell (see git_error)
    git_error: Optional[PluginError] = None
    deployment: Optional[str] = None  # --deployment NAME: deployment/NAME
    namespace: Optional[str] = None  # -n (or the config file): restricts the search
    selector: Optional[str] = None  # extra label selector from the config file
    workloads: tuple[str, ...] = ()  # -w KIND/NAME (or the config file's workloads:)
    all: bool = False  # --all: every workload linked to the repo and branch
    order: Order = ()  # the config file's order: (waves)


@dataclass(frozen=True)
class Target:
    """One workload to restart or watch, and what it is linked to."""

    workload: dict
    repo: Optional[str]
    branch: Optional[str]
    notes: tuple[str, ...] = ()
    kind: Kind = DEPLOYMENT

    @property
    def found(self) -> Found:
        return Found(self.kind, self.workload)


@dataclass(frozen=True)
class Selection:
    """The targets of a run, and the waves they go in (indexes into ``targets``)."""

    targets: tuple[Target, ...]
    waves: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...] = ()


def find_targets(session: Session, query: TargetQuery, notice: Callable[[str], None]) -> Selection:
    """The workloads to restart: by name (-w, --deployment, the config file), else by the
    repo/branch labels (the one backend, or every linked one with --all); in waves when the
    config file gives an ``order:``."""
    git = query.git
    refs = named_workloads(query)
    if refs:  # naming the workloads makes the checkout optional
        namespace = query.namespace or session.namespace
        targets = [_named_target(session, namespace, ref, git, notice) for ref in refs]
        return _in_waves(targets, query.order, [], notice)
    if git is None:
        raise query.git_error or PluginError("cannot tell which repo and branch to restart")
    notes = []
    if git.branch_source not in ("git", "--branch"):
        notes.append(f"branch {shown(git.branch)} taken from ${git.branch_source} (detached HEAD)")
        notice(notes[-1])
    found, scope = search_linked_workloads(session, git, query, notice)
    if scope.note:
        notes.append(scope.note)
    try:
        if query.all:
            chosen = choose_all(found, git.repo, git.branch, scope)
        else:
            chosen = [choose_target(found, git.repo, git.branch, scope)]
    except NotFoundError as err:
        if "No workload found" in err.message:
            err.hint = _link_hint(git.repo, git.branch, query.namespace or session.namespace)
        raise
    targets = [Target(f.obj, str(git.repo), git.branch, tuple(notes), f.kind) for f in chosen]
    return _in_waves(targets, query.order, notes, notice)


def find_target(session: Session, query: TargetQuery, notice: Callable[[str], None]) -> Target:
    """The one target of a query that names or finds exactly one workload."""
    return find_targets(session, query, notice).targets[0]


def named_workloads(query: TargetQuery) -> list[WorkloadRef]:
    """-w KIND/NAME and --deployment NAME, in the order given, each once."""
    refs = [parse_workload(text) for text in query.workloads]
    if query.deployment:
        refs.append(workload_named(DEPLOYMENT, query.deployment))
    unique: list[WorkloadRef] = []
    for ref in refs:
        if ref not in unique:
            unique.append(ref)
    return unique


def _in_waves(
    targets: list[Target], order: Order, notes: list[str], notice: Callable[[str], None]
) -> Selection:
    waves, order_notes = plan_waves([t.found for t in targets], order)
    for note in order_notes:
        notice(note)
    return Selection(
        tuple(targets), tuple(tuple(w) for w in waves), tuple(notes) + tuple(order_notes)
    )


def _named_target(
    session: Session,
    namespace: str,
    ref: WorkloadRef,
    git: Optional[GitContext],
    notice: Callable[[str], None],
) -> Target:
    """A workload chosen by name: its repo and branch are the ones it is linked to (not
    the checkout's), and a link to another branch is said, since it may be the wrong one."""
    from kubectl_restart_backend.linking import is_linked_to, link_of

    workload = get_named_workload(session, namespace, ref)
    repo, branch = link_of(workload)
    notes = []
    if git is not None and repo and not is_linked_to(workload, git.repo, git.branch):
        notes.append(
            f"{ref.kind.word} {namespace}/{ref.name} is linked to {repo}@{branch or '?'}, "
            f"not to this checkout's {git.repo}@{git.branch}"
        )
        notice(notes[-1])
    return Target(workload, repo, branch, tuple(notes), ref.kind)


def get_named_workload(session: Session, namespace: str, ref: WorkloadRef) -> dict:
    """GET one workload; a 404 becomes the plugin's "not found" (exit 4)."""
    kind = ref.kind
    try:
        return session.api.get_workload(kind.resource, namespace, ref.name)
    except ApiError as err:
        if err.status == 404:
            raise NotFoundError(
                f'{kind.word} "{ref.name}" not found in namespace {namespace}',
                f"check the name and namespace: kubectl get {kind.resource} -n {namespace}",
            ) from None
        raise


def get_named_deployment(session: Session, namespace: str, name: str) -> dict:
    """GET one Deployment by name (a name it could never have is a usage error first)."""
    return get_named_workload(session, namespace, workload_named(DEPLOYMENT, name))


def search_linked_workloads(
    session: Session, git: GitContext, query: TargetQuery, notice: Callable[[str], None]
) -> tuple[list[Found], SearchScope]:
    """Ask the server for the workloads labelled for repo@branch: in ``query.namespace``,
    else in all namespaces, falling back to the context's namespace on 403."""
    from kubectl_restart_backend.labels import build_selector

    selector = build_selector(git.repo, git.branch)
    if query.selector:
        selector = f"{selector},{query.selector}"
    return list_workloads_in_scope(session, selector, query.namespace, notice)


def list_workloads_in_scope(
    session: Session,
    selector: str,
    namespace: Optional[str],
    notice: Callable[[str], None],
    kinds: tuple[Kind, ...] = KINDS,
) -> tuple[list[Found], SearchScope]:
    """Workloads of ``kinds`` matching ``selector`` (one list per kind), in ``namespace``,
    else in all namespaces, falling back to the context's namespace (said as a notice) when
    listing Deployments everywhere is forbidden. The restart's search and ``list`` share it,
    so they always look in the same places.

    Deployments decide where to look; a StatefulSet or DaemonSet list that is forbidden
    there too is skipped with a note (a Role written for Deployments only keeps working),
    unless every kind is forbidden: then the Deployments' error is the answer.
    """
    first, *others = kinds
    found, scope = _list_kind_in_scope(session, first, selector, namespace, notice)
    searched, skipped = [first.resource], []
    where = scope.namespaces[0] if scope.namespaces else None
    for kind in others:
        try:
            items = session.api.list(kind.resource, where, label_selector=selector).items
        except ApiError as err:
            if err.status != 403:
                raise
            skipped.append(kind.resource)
            continue
        found += [Found(kind, item) for item in items]
        searched.append(kind.resource)
    if skipped:
        place = f"namespace {where}" if where else "all namespaces"
        notice(f"not allowed to list {' or '.join(skipped)} in {place}; searched "
               f"{', '.join(searched)} only")  # fmt: skip
    return found, SearchScope(scope.namespaces, scope.note, tuple(searched))


def _list_kind_in_scope(
    session: Session,
    kind: Kind,
    selector: str,
    namespace: Optional[str],
    notice: Callable[[str], None],
) -> tuple[list[Found], SearchScope]:
    if namespace:
        listing = session.api.list(kind.resource, namespace, label_selector=selector)
        return [Found(kind, i) for i in listing.items], SearchScope((namespace,))
    try:
        listing = session.api.list(kind.resource, None, label_selector=selector)
        return [Found(kind, i) for i in listing.items], SearchScope(())
    except ApiError as err:
        if err.status != 403:
            raise
    fallback = session.namespace
    note = (
        f"not allowed to list {kind.resource} in all namespaces; searched namespace {fallback} "
        "(use -n to choose another)"
    )
    notice(note)
    listing = session.api.list(kind.resource, fallback, label_selector=selector)
    return [Found(kind, i) for i in listing.items], SearchScope((fallback,), note)


def _link_hint(repo, branch, namespace: str) -> str:
    from kubectl_restart_backend.labels import kubectl_label_command

    command = " && ".join(kubectl_label_command(namespace, "DEPLOYMENT", repo, branch).splitlines())
    return (
        f"link one: kubectl restart-backend link KIND/NAME -n {namespace} (or by hand: {command})"
    )
