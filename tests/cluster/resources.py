"""The resource registry and the discovery documents built from it (pure).

One table says which resources exist, in which group/version, whether they are namespaced, which
verbs and subresources they have. The store uses it to fill kind/apiVersion, the HTTP layer to
route, and discovery (legacy `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>` and the aggregated
`apidiscovery.k8s.io/v2` form kubectl 1.37 asks for) is generated from it, so the three never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "ResourceType",
    "REGISTRY",
    "by_plural",
    "lookup",
    "resolve",
    "workload_key",
    "api_version_of",
    "api_versions_doc",
    "api_group_list_doc",
    "api_resource_list_doc",
    "aggregated_discovery_doc",
    "version_doc",
    "AGGREGATED_CONTENT_TYPE",
]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    """A subresource such as deployments/scale: its kind and verbs."""

    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    """One row of the registry."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...] = _ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    # The registry strategy's AllowUnconditionalUpdate / AllowCreateOnUpdate: a Lease must be
    # replaced at a resourceVersion (422 without one), and a PUT may create a missing one.
    unconditional_update: bool = True
    create_on_update: bool = False

    @property
    def api_version(self) -> str:
        """`apps/v1` or `v1` (core)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """`deployments.apps` or `pods`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _status(group: str, version: str, kind: str) -> Subresource:
    return Subresource("status", kind, group, version, ("get", "patch", "update"))


# The connect verbs discovery lists for pods/proxy and services/proxy (the simulated API
# server proxies GET only).
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")


def _scale(group: str = "autoscaling", version: str = "v1") -> Subresource:
    return Subresource("scale", "Scale", group, version, ("get", "patch", "update"))


REGISTRY: tuple[ResourceType, ...] = (
    ResourceType(
        "", "v1", "Namespace", "namespaces", "namespace", False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short_names=("ns",), subresources=(_status("", "v1", "Namespace"),),
    ),
    ResourceType(
        "", "v1", "Pod", "pods", "pod", True, short_names=("po",), categories=("all",),
        subresources=(
            _status("", "v1", "Pod"),
            Subresource("log", "Pod", "", "v1", ("get",)),
            Subresource("proxy", "PodProxyOptions", "", "v1", _PROXY_VERBS),
        ),
    ),
    ResourceType("", "v1", "Event", "events", "event", True, short_names=("ev",)),
    ResourceType(
        "", "v1", "Service", "services", "service", True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        short_names=("svc",), categories=("all",),
        subresources=(
            _status("", "v1", "Service"),
            Subresource("proxy", "ServiceProxyOptions", "", "v1", _PROXY_VERBS),
        ),
    ),
    ResourceType("", "v1", "Secret", "secrets", "secret", True),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, short_names=("cm",)),
    ResourceType(
        "apps", "v1", "Deployment", "deployments", "deployment", True,
        short_names=("deploy",), categories=("all",),
        subresources=(_scale(), _status("apps", "v1", "Deployment")),
    ),
    ResourceType(
        "apps", "v1", "ReplicaSet", "replicasets", "replicaset", True,
        short_names=("rs",), categories=("all",),
        subresources=(_scale(), _status("apps", "v1", "ReplicaSet")),
    ),
    ResourceType(
        "apps", "v1", "StatefulSet", "statefulsets", "statefulset", True,
        short_names=("sts",), categories=("all",),
        subresources=(_scale(), _status("apps", "v1", "StatefulSet")),
    ),
    ResourceType(
        "apps", "v1", "DaemonSet", "daemonsets", "daemonset", True,
        short_names=("ds",), categories=("all",),
        subresources=(_status("apps", "v1", "DaemonSet"),),
    ),
    ResourceType(
        "apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", True,
    ),
    ResourceType(
        "coordination.k8s.io", "v1", "Lease", "leases", "lease", True,
        unconditional_update=False, create_on_update=True,
    ),
    ResourceType(
        "networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True,
        short_names=("ing",), subresources=(_status("networking.k8s.io", "v1", "Ingress"),),
    ),
    ResourceType(
        "gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", "httproute", True,
        categories=("gateway-api",),
        subresources=(_status("gateway.networking.k8s.io", "v1", "HTTPRoute"),),
    ),
    ResourceType(
        "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
        "selfsubjectaccessreview", False, verbs=("create",),
    ),
)  # fmt: skip

_BY_PLURAL = {rt.plural: rt for rt in REGISTRY}


def by_plural(plural: str) -> ResourceType:
    """The registry row for a plural resource name; KeyError when unknown."""
    return _BY_PLURAL[plural]


def resolve(name: str) -> ResourceType:
    """The row for a plural, singular, kind or short name ("deploy", "Deployment", ...)."""
    wanted = name.lower()
    for rt in REGISTRY:
        if wanted in (rt.plural, rt.singular, rt.kind.lower(), *rt.short_names):
            return rt
    raise KeyError(f"unknown resource {name!r}")


def workload_key(workload: str) -> tuple[str, str]:
    """(kind, name) for "name" (a Deployment) or "KIND/NAME" with any spelling kubectl
    accepts for the kind ("statefulset/db", "sts/db", "StatefulSet/db")."""
    kind, _, name = workload.rpartition("/")
    return (resolve(kind).kind if kind else "Deployment"), name


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The row served at /api(s)/<group>/<version>/<plural>, or None."""
    rt = _BY_PLURAL.get(plural)
    if rt is None or rt.group != group or rt.version != version:
        return None
    return rt


def api_version_of(plural: str) -> tuple[str, str]:
    """(apiVersion, kind) for a plural name: what the store fills in when missing."""
    rt = _BY_PLURAL[plural]
    return rt.api_version, rt.kind


def _groups(registry: Iterable[ResourceType]) -> dict[str, list[ResourceType]]:
    """Named groups (core excluded) in registry order."""
    groups: dict[str, list[ResourceType]] = {}
    for rt in registry:
        if rt.group:
            groups.setdefault(rt.group, []).append(rt)
    return groups


def version_doc() -> dict:
    """`/version`: what `kubectl version` and the Python client read."""
    return {
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.0-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions_doc(server_address: str) -> dict:
    """`/api` as legacy JSON (APIVersions)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list_doc(registry: Iterable[ResourceType] = REGISTRY) -> dict:
    """`/apis` as legacy JSON (APIGroupList)."""
    groups = []
    for group, rows in _groups(registry).items():
        gv = {"groupVersion": f"{group}/{rows[0].version}", "version": rows[0].version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _legacy_entries(rt: ResourceType) -> list[dict]:
    entry = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    entries = [entry]
    for sub in rt.subresources:
        item = {
            "name": f"{rt.plural}/{sub.name}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": sub.kind,
            "verbs": list(sub.verbs),
        }
        if sub.group != rt.group or sub.version != rt.version:
            item["group"], item["version"] = sub.group, sub.version
        entries.append(item)
    return entries


def api_resource_list_doc(
    group: str, version: str, registry: Iterable[ResourceType] = REGISTRY
) -> dict | None:
    """`/api/v1` or `/apis/<g>/<v>` as legacy JSON (APIResourceList); None if not served."""
    rows = [rt for rt in registry if rt.group == group and rt.version == version]
    if not rows:
        return None
    resources = [entry for rt in rows for entry in _legacy_entries(rt)]
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}  # fmt: skip


def _aggregated_resource(rt: ResourceType) -> dict:
    item = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        item["shortNames"] = list(rt.short_names)
    if rt.categories:
        item["categories"] = list(rt.categories)
    if rt.subresources:
        item["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                "verbs": list(sub.verbs),
            }
            for sub in rt.subresources
        ]
    return item


def _aggregated_group(name: str, rows: list[ResourceType]) -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": None},
        "versions": [
            {
                "version": rows[0].version,
                "resources": [_aggregated_resource(rt) for rt in rows],
                "freshness": "Current",
            }
        ],
    }


def aggregated_discovery_doc(
    legacy_core: bool, registry: Iterable[ResourceType] = REGISTRY
) -> dict:
    """`/api` (legacy_core=True) or `/apis` as an apidiscovery.k8s.io/v2 APIGroupDiscoveryList."""
    registry = tuple(registry)
    if legacy_core:
        items = [_aggregated_group("", [rt for rt in registry if not rt.group])]
    else:
        items = [_aggregated_group(name, rows) for name, rows in _groups(registry).items()]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
