"""`RealCluster`: the official control plane behind the same helpers as `SimCluster`.

Tests and the differential scenarios call `create_deployment`, `create_secret`,
`set_behaviour`, `wait_for`, `get`, `list`, `delete`, ... with the same signatures on both
clusters, so a scenario reads the same on both. Everything goes through the real API server
(as the admin); `add_user` makes a client-certificate user with real RBAC objects.

Several tests share one control plane (and pytest-xdist workers share it too), so every test
gets its own `suffix`: `cluster.ns("shop")` is `shop-<suffix>`, and the repo a test links is
`acme/shop-<suffix>`, so no label lookup ever sees another test's Deployments.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tests.cluster.behaviours import ANNOTATION, ANNOTATION_PREFIX, Behaviour
from tests.cluster.resources import workload_key
from tests.cluster.rollout_status import rollout_settled
from tests.cluster.workload_factory import WorkloadFactory

from .fake_kubelet import behaviour_configmap
from .launcher import ControlPlane
from .rest import PATCH_TYPES, Rest, RestError, resource

__all__ = ["RealCluster", "behaviour_annotations"]


def behaviour_annotations(behaviour: Behaviour) -> dict[str, str]:
    """The `sim.restart-backend.dev/*` pod annotations that ask for `behaviour`: the inverse
    of behaviours.behaviour_from_annotations (only fields that differ from the kind's default)."""
    from tests.cluster.behaviours import BEHAVIOURS

    base = BEHAVIOURS[behaviour.kind]
    out = {ANNOTATION: behaviour.kind}
    fields = (
        ("container", "container", str),
        ("exit_code", "exit-code", str),
        ("start_delay", "start-delay", repr),
        ("ready_delay", "ready-delay", repr),
        ("unready_for", "unready-for", repr),
        ("failures", "failures", str),
        ("pull_error", "pull-error", str),
    )
    for attribute, key, render in fields:
        value = getattr(behaviour, attribute)
        if value is not None and value != getattr(base, attribute):
            out[ANNOTATION_PREFIX + key] = render(value)
    if behaviour.log_lines is not None:
        out[ANNOTATION_PREFIX + "crash-log"] = "\n".join(behaviour.log_lines)
    unsupported = [
        name
        for name in ("run_seconds", "probe_message", "scheduling_message")
        if getattr(behaviour, name) != getattr(base, name)
    ]
    if unsupported:
        raise ValueError(f"no pod annotation for {', '.join(unsupported)}")
    return out


class RealCluster(WorkloadFactory):
    """SimCluster's helpers against a running `ControlPlane`, for one test (`suffix`)."""

    default_timeout = 60.0  # the real controllers and the fake kubelet's polling are slower

    def __init__(self, plane: ControlPlane, suffix: str, workdir: Path) -> None:
        self.plane = plane
        self.suffix = suffix
        self.workdir = workdir
        self.rest: Rest = plane.rest

    # ----------------------------------------------------------------- naming

    def _unique(self, base: str) -> str:
        return f"{base}-{self.suffix}" if self.suffix else base

    def ns(self, base: str = "shop") -> str:
        """This test's namespace called `base` (unique on the shared control plane)."""
        return self._unique(base)

    @property
    def repo(self) -> str:
        """The repo (owner/name) this test's checkout and links use."""
        return self._unique("acme/shop")

    @property
    def link_labels(self) -> dict[str, str]:
        return {
            "restart-backend/repo": self._unique("acme-shop"),
            "restart-backend/branch": "main",
        }

    @property
    def link_annotations(self) -> dict[str, str]:
        return {"restart-backend/repo": self.repo, "restart-backend/branch": "main"}

    # ----------------------------------------------------------------- access

    @property
    def kubeconfig(self) -> str:
        return self.plane.kubeconfig

    @property
    def url(self) -> str:
        return self.plane.server

    @property
    def ca_pem(self) -> bytes:
        return Path(self.plane.state.ca_file).read_bytes()

    def add_user(
        self,
        name: str,
        rules: Iterable[Mapping[str, Any]],
        *,
        namespace: str | None = None,
        context_namespace: str | None = None,
    ) -> str:
        """A user whose rights are `rules` (RBAC PolicyRules): a Role and RoleBinding in
        `namespace`, or a ClusterRole and ClusterRoleBinding when it is None. Returns the
        path of a kubeconfig for that user (client certificate)."""
        user = self._unique(name)
        role_name = f"restart-backend-{user}"
        rules = [dict(r) for r in rules]
        subject = {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "name": role_name}
        if namespace:
            self.create(
                "roles", {"metadata": {"name": role_name, "namespace": namespace}, "rules": rules}
            )
            self.create(
                "rolebindings",
                {
                    "metadata": {"name": role_name, "namespace": namespace},
                    "roleRef": {**role_ref, "kind": "Role"},
                    "subjects": [subject],
                },
            )
        else:
            self.create("clusterroles", {"metadata": {"name": role_name}, "rules": rules})
            self.create(
                "clusterrolebindings",
                {
                    "metadata": {"name": role_name},
                    "roleRef": {**role_ref, "kind": "ClusterRole"},
                    "subjects": [subject],
                },
            )
        path = self.plane.user_kubeconfig(
            user,
            namespace=context_namespace or namespace,
            path=self.workdir / f"kubeconfig-{name}",
        )
        return str(path)

    # ----------------------------------------------------------------- generic objects

    def create(self, kind: str, obj: dict) -> dict:
        r = resource(kind)
        body = {"apiVersion": r.api_version, "kind": r.kind, **copy.deepcopy(obj)}
        namespace = (obj.get("metadata") or {}).get("namespace") if r.namespaced else None
        return self.rest.post(r.path(namespace), body)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            return self.rest.get(resource(kind).path(namespace, name))
        except RestError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict]:
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        return self.rest.get(resource(kind).path(namespace), **query).get("items") or []

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str = "strategic",
        *,
        field_manager: str | None = None,
    ) -> dict:
        """As SimCluster.patch: `field_manager` is who the API server records in
        managedFields (kubectl sends e.g. kubectl-set, kubectl-rollout)."""
        path = resource(kind).path(namespace, name)
        if field_manager is None:
            return self.rest.patch(path, patch, patch_type)
        query = {"fieldManager": field_manager}
        return self.rest.request(
            "PATCH", path, patch, query=query, content_type=PATCH_TYPES[patch_type]
        )

    def update_status(self, kind: str, obj: dict) -> dict:
        meta = obj["metadata"]
        path = resource(kind).path(meta.get("namespace"), meta["name"], "status")
        return self.rest.patch(path, {"status": obj.get("status") or {}}, "merge")

    def delete(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """Delete in the background (dependents go via the garbage collector); None if absent."""
        try:
            return self.rest.delete(
                resource(kind).path(namespace, name), {"propagationPolicy": "Background"}
            )
        except RestError as error:
            if error.status == 404:
                return None
            raise

    # ----------------------------------------------------------------- typed helpers

    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> dict:
        """Create a namespace (existing: returned as is) and wait for its `default`
        ServiceAccount, without which the API server admits no Pod."""
        existing = self.get("namespaces", None, name)
        if existing is None:
            existing = self.create(
                "namespaces", {"metadata": {"name": name, "labels": dict(labels or {})}}
            )
        self.wait_for(
            lambda: self.plane.service_account_exists(name),
            30,
            f"no default ServiceAccount in namespace {name}",
        )
        return existing

    def link(self, namespace: str, name: str = "backend", **kwargs: Any) -> dict:
        """A Deployment linked to this test's repo (acme/shop-<suffix>@main)."""
        kwargs.setdefault("labels", {**self.link_labels, "app": name})
        kwargs.setdefault("annotations", dict(self.link_annotations))
        return self.create_deployment(namespace, name, **kwargs)

    def set_behaviour(self, namespace: str, workload: str, behaviour: Behaviour) -> None:
        """Pods created from now on for the workload (a Deployment's name, or KIND/NAME such
        as "sts/db") follow `behaviour`: written to the ConfigMap the fake kubelet reads
        when it admits a Pod."""
        name = behaviour_configmap(*workload_key(workload))
        body = {
            "metadata": {"name": name, "namespace": namespace},
            "data": {"annotations": json.dumps(behaviour_annotations(behaviour))},
        }
        try:
            self.create("configmaps", body)
        except RestError as error:
            if error.status != 409:
                raise
            self.patch("configmaps", namespace, name, {"data": body["data"]}, "merge")

    def set_pod_quota(self, namespace: str, limit: int, name: str = "pod-quota") -> dict:
        """A ResourceQuota on pods (as SimCluster.set_pod_quota), returned once the quota
        controller has counted the pods there: until then admission refuses every Pod, and
        a count from before the last Pods appeared would let one too many in."""
        self.create(
            "resourcequotas",
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"hard": {"pods": str(limit)}},
            },
        )

        def counted() -> dict | None:
            quota = self.get("resourcequotas", namespace, name) or {}
            pods = [
                p
                for p in self.list("pods", namespace)
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            ]
            used = ((quota.get("status") or {}).get("used") or {}).get("pods")
            return quota if used == str(len(pods)) else None

        return self.wait_for(counted, message="the quota controller never counted the pods")

    def create_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str] | None = None,
        *,
        type: str = "Opaque",
    ) -> dict:  # noqa: A002
        self.create_namespace(namespace)
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
        return self.create(
            "secrets",
            {"metadata": {"name": name, "namespace": namespace}, "type": type, "data": encoded},
        )

    def create_configmap(
        self, namespace: str, name: str, data: Mapping[str, str] | None = None
    ) -> dict:
        self.create_namespace(namespace)
        return self.create(
            "configmaps",
            {"metadata": {"name": name, "namespace": namespace}, "data": dict(data or {})},
        )

    def create_service(
        self,
        namespace: str,
        name: str,
        selector: Mapping[str, str],
        *,
        type: str = "ClusterIP",
        ports: list[dict] | None = None,  # noqa: A002
        load_balancer_ingress: list[str] | None = None,
    ) -> dict:
        """A Service; `load_balancer_ingress` IPs/hostnames are written to its status as a
        cloud controller would."""
        self.create_namespace(namespace)
        ports = copy.deepcopy(ports) or [{"name": "http", "port": 80, "targetPort": 8080}]
        service = self.create(
            "services",
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"type": type, "selector": dict(selector), "ports": ports},
            },
        )
        if load_balancer_ingress:
            entries = [
                {"ip": e} if e.replace(".", "").isdigit() else {"hostname": e}
                for e in load_balancer_ingress
            ]
            service["status"] = {"loadBalancer": {"ingress": entries}}
            service = self.update_status("services", service)
        return service

    def create_ingress(
        self, namespace: str, name: str, *, rules: list[dict], tls: list[dict] | None = None
    ) -> dict:
        self.create_namespace(namespace)
        spec: dict[str, Any] = {"rules": copy.deepcopy(rules)}
        if tls:
            spec["tls"] = copy.deepcopy(tls)
        return self.create(
            "ingresses", {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
        )

    # ----------------------------------------------------------------- waiting

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 30.0, message: str = ""
    ) -> Any:
        """Re-evaluate `predicate` (which reads the API) every 50 ms until it returns something
        truthy, and return that; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(message or f"condition not met within {timeout} s")
            time.sleep(0.05)

    def wait_for_rollout(
        self, namespace: str, name: str, timeout: float = 60.0, *, kind: str = "Deployment"
    ) -> dict:
        """As SimCluster.wait_for_rollout: kubectl's rule for the kind; `name` may be
        KIND/NAME."""
        if "/" in name:
            kind, name = workload_key(name)

        def complete() -> dict | None:
            obj = self.get(kind, namespace, name)
            return obj if rollout_settled(obj) else None

        return self.wait_for(
            complete, timeout, f"rollout of {kind} {namespace}/{name} not complete"
        )
