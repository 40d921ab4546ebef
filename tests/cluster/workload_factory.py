"""create_deployment / create_statefulset / create_daemonset, once for both test clusters.

The simulated cluster (`SimCluster`) and the official control plane (`RealCluster`) must
build the same objects from the same arguments, or a differential test would compare two
different workloads. So the bodies are built here, and each cluster only says how to create
an object, set a behaviour and wait for a rollout.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping


def strategy_spec(strategy: dict | str) -> dict:
    """A strategy given as its type ("OnDelete") or in full."""
    return {"type": strategy} if isinstance(strategy, str) else copy.deepcopy(strategy)


def default_containers(name: str) -> list[dict]:
    """One container serving HTTP on 8080, its image named for the workload."""
    return [
        {
            "name": "app",
            "image": f"registry.example.com/acme/{name}:1.0.0",
            "ports": [{"containerPort": 8080, "name": "http"}],
        }
    ]


def workload_body(
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    pod_labels: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
    containers: list[dict] | None = None,
    pod_spec: Mapping[str, Any] | None = None,
) -> dict:
    """Metadata and spec of a workload: selector and template labels `app: <name>` unless
    given, the kind's own `spec` fields on top."""
    selector = dict(pod_labels or {"app": name})
    template: dict[str, Any] = {
        "metadata": {"labels": dict(selector)},
        "spec": {
            **copy.deepcopy(dict(pod_spec or {})),
            "containers": copy.deepcopy(containers) or default_containers(name),
        },
    }
    if pod_annotations:
        template["metadata"]["annotations"] = dict(pod_annotations)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels or {"app": name}),
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    body = {
        **copy.deepcopy(dict(spec)),
        "selector": {"matchLabels": selector},
        "template": template,
    }
    return {"metadata": metadata, "spec": body}


class WorkloadFactory:
    """Typed create_* helpers for a test cluster.

    The cluster provides `create(kind, obj)`, `create_namespace(name)`,
    `set_behaviour(namespace, "KIND/NAME", behaviour)` and
    `wait_for_rollout(namespace, name, timeout=, kind=)`; `can_wait_for_rollouts` says
    whether anything will ever make the rollout progress (a simulated cluster without its
    simulation will not).
    """

    default_timeout: float = 30.0

    @property
    def can_wait_for_rollouts(self) -> bool:
        return True

    def create_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 3,
        strategy: dict | str | None = None,
        paused: bool = False,
        progress_deadline_seconds: int = 600,
        min_ready_seconds: int = 0,
        wait_ready: bool = True,
        **common: Any,
    ) -> dict:
        """Create a Deployment (and its namespace if needed). `wait_ready` returns once the
        first rollout is complete; a behaviour (`behaviour=`) applies from the first pod.
        `common`: labels, annotations, pod_labels, pod_annotations, containers, behaviour,
        timeout."""
        spec: dict[str, Any] = {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline_seconds,
            "minReadySeconds": min_ready_seconds,
        }
        if strategy:
            spec["strategy"] = strategy_spec(strategy)
        if paused:
            spec["paused"] = True
        return self._create_workload(
            "Deployment", namespace, name, spec, wait_ready=wait_ready and not paused, **common
        )

    def create_statefulset(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 3,
        service_name: str | None = None,
        update_strategy: dict | str | None = None,
        pod_management_policy: str | None = None,
        min_ready_seconds: int = 0,
        **common: Any,
    ) -> dict:
        """Create a StatefulSet (serviceName defaults to its name; `update_strategy` is
        "OnDelete", "RollingUpdate" or a dict such as {"type": "RollingUpdate",
        "rollingUpdate": {"partition": 1}}). `wait_ready` as for Deployments (under OnDelete:
        until every Pod is ready)."""
        spec: dict[str, Any] = {
            "replicas": replicas,
            "serviceName": name if service_name is None else service_name,
            "minReadySeconds": min_ready_seconds,
        }
        if update_strategy:
            spec["updateStrategy"] = strategy_spec(update_strategy)
        if pod_management_policy:
            spec["podManagementPolicy"] = pod_management_policy
        return self._create_workload("StatefulSet", namespace, name, spec, **common)

    def create_daemonset(
        self,
        namespace: str,
        name: str,
        *,
        update_strategy: dict | str | None = None,
        node_selector: Mapping[str, str] | None = None,
        min_ready_seconds: int = 0,
        **common: Any,
    ) -> dict:
        """Create a DaemonSet: one Pod per node that `node_selector` admits. `update_strategy`
        and `wait_ready` as for StatefulSets."""
        spec: dict[str, Any] = {"minReadySeconds": min_ready_seconds}
        if update_strategy:
            spec["updateStrategy"] = strategy_spec(update_strategy)
        pod_spec = {"nodeSelector": dict(node_selector)} if node_selector else None
        return self._create_workload(
            "DaemonSet", namespace, name, spec, pod_spec=pod_spec, **common
        )

    def _create_workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        spec: dict[str, Any],
        *,
        behaviour: Any = None,
        wait_ready: bool = True,
        timeout: float | None = None,
        **body: Any,
    ) -> dict:
        self.create_namespace(namespace)  # type: ignore[attr-defined]
        if behaviour is not None:
            self.set_behaviour(namespace, f"{kind}/{name}", behaviour)  # type: ignore[attr-defined]
        created = self.create(kind, workload_body(namespace, name, spec, **body))  # type: ignore[attr-defined]
        if not wait_ready or not self.can_wait_for_rollouts:
            return created
        return self.wait_for_rollout(  # type: ignore[attr-defined]
            namespace, name, timeout=timeout or self.default_timeout, kind=kind
        )
