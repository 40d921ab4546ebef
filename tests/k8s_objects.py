"""Small builders of Kubernetes objects as the API server sends them (plain dicts, camelCase).

They keep rule tables readable: a row says only what matters for the case (``pod("a",
waiting=("CrashLoopBackOff", "back-off 10s"), restarts=3, last_terminated=("Error", 1))``) and
everything else gets a realistic default. Times are given as seconds before ``NOW``.

The standard cast: Deployment ``backend`` (namespace ``shop``, uid ``uid-backend``) rolling
from ReplicaSet ``backend-old`` (hash ``old11``, revision 1) to ``backend-new`` (hash ``new22``,
revision 2); pods are owned by ``backend-new`` unless told otherwise.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Optional, Sequence

NOW = datetime(2026, 11, 3, 12, 0, 0, tzinfo=timezone.utc)
NAMESPACE = "shop"
DEPLOYMENT = "backend"
DEPLOYMENT_UID = "uid-backend"
NEW_RS, NEW_HASH = "backend-new", "new22"
OLD_RS, OLD_HASH = "backend-old", "old11"
APP_LABELS = {"app": "backend"}
OUR_RESTART = "2026-11-03T11:58:00Z"
OLD_RESTART = "2026-10-01T08:00:00Z"


def ts(seconds_ago: float) -> str:
    """RFC 3339 timestamp ``seconds_ago`` before NOW, as the API server writes it."""
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    kind: str, status: str = "True", reason: str = "", message: str = "", ago: float = 0
) -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(ago),
        "lastUpdateTime": ts(ago),
    }


def template(restarted_at: str = OUR_RESTART, image: str = "shop/api:1.4") -> dict:
    """A pod template like the one `kubectl rollout restart` leaves behind."""
    return {
        "metadata": {
            "labels": dict(APP_LABELS),
            "annotations": {"kubectl.kubernetes.io/restartedAt": restarted_at},
        },
        "spec": {
            "containers": [{"name": "api", "image": image, "ports": [{"containerPort": 8080}]}],
            "restartPolicy": "Always",
        },
    }


def deployment(
    name: str = DEPLOYMENT,
    *,
    replicas: Optional[int] = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    ready: Optional[int] = None,
    available: Optional[int] = None,
    status_replicas: Optional[int] = None,
    conditions: Sequence[dict] = (),
    pod_template: Optional[dict] = None,
    annotations: Optional[dict] = None,
    revision: str = "2",
    paused: bool = False,
    deleting: bool = False,
    namespace: str = NAMESPACE,
) -> dict:
    """A Deployment; ready/available/status.replicas default to ``updated``."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(APP_LABELS)},
        "template": pod_template or template(),
        "strategy": {"type": "RollingUpdate"},
        "progressDeadlineSeconds": 600,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    if paused:
        spec["paused"] = True
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": DEPLOYMENT_UID,
        "generation": generation,
        "labels": {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"},
        "annotations": {"deployment.kubernetes.io/revision": revision, **(annotations or {})},
        "creationTimestamp": ts(86400),
    }
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": updated if status_replicas is None else status_replicas,
            "updatedReplicas": updated,
            "readyReplicas": updated if ready is None else ready,
            "availableReplicas": updated if available is None else available,
            "conditions": list(conditions),
        },
    }


def replicaset(
    name: str = NEW_RS,
    *,
    pod_hash: str = NEW_HASH,
    revision: int = 2,
    replicas: int = 3,
    pod_template: Optional[dict] = None,
    owner_uid: str = DEPLOYMENT_UID,
    conditions: Sequence[dict] = (),
) -> dict:
    """A ReplicaSet owned by the Deployment; its template carries the pod-template-hash label."""
    tpl = copy.deepcopy(pod_template or template())
    tpl["metadata"]["labels"]["pod-template-hash"] = pod_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "labels": {**APP_LABELS, "pod-template-hash": pod_hash},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": DEPLOYMENT,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "template": tpl},
        "status": {"replicas": replicas, "conditions": list(conditions)},
    }


def old_replicaset(replicas: int = 0) -> dict:
    """The ReplicaSet of the template before our restart."""
    return replicaset(
        OLD_RS,
        pod_hash=OLD_HASH,
        revision=1,
        replicas=replicas,
        pod_template=template(OLD_RESTART),
    )


def container(
    name: str = "api",
    *,
    ready: bool = True,
    waiting: Optional[tuple[str, str]] = None,
    terminated: Optional[tuple[str, int]] = None,
    last_terminated: Optional[tuple[str, int]] = None,
    last_message: Optional[str] = None,
    restarts: int = 0,
    started: Optional[bool] = None,
) -> dict:
    """A containerStatus: running unless ``waiting`` (reason, message) or ``terminated``."""
    if waiting is not None:
        state: dict[str, Any] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
        ready = False
    elif terminated is not None:
        state = {"terminated": {"reason": terminated[0], "exitCode": terminated[1]}}
        ready = False
    else:
        state = {"running": {"startedAt": ts(30)}}
    status: dict[str, Any] = {
        "name": name,
        "image": "shop/api:1.4",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
        "lastState": {},
    }
    if last_terminated is not None:
        status["lastState"] = {
            "terminated": {
                "reason": last_terminated[0],
                "exitCode": last_terminated[1],
                "finishedAt": ts(20),
            }
        }
        if last_message is not None:
            status["lastState"]["terminated"]["message"] = last_message
    if started is not None:
        status["started"] = started
    return status


def pod(
    name: str = "backend-new-a1",
    *,
    rs: Optional[str] = NEW_RS,
    pod_hash: Optional[str] = None,
    phase: Optional[str] = None,
    ready: bool = True,
    waiting: Optional[tuple[str, str]] = None,
    terminated: Optional[tuple[str, int]] = None,
    last_terminated: Optional[tuple[str, int]] = None,
    last_message: Optional[str] = None,
    restarts: int = 0,
    containers: Optional[Sequence[dict]] = None,
    init: Optional[Sequence[dict]] = None,
    unschedulable: Optional[tuple[float, str]] = None,
    reason: Optional[str] = None,
    message: Optional[str] = None,
    created_ago: float = 60,
    deleting: bool = False,
    node: Optional[str] = "node-1",
) -> dict:
    """A pod of ``rs``. The shortcuts (ready, waiting, ...) describe its one container ``api``;
    pass ``containers``/``init`` (lists of ``container(...)``) for anything richer.
    ``unschedulable=(seconds_ago, message)`` makes it Pending with PodScheduled=False."""
    if pod_hash is None:
        pod_hash = {NEW_RS: NEW_HASH, OLD_RS: OLD_HASH}.get(rs or "", "zzz99")
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "labels": {**APP_LABELS, "pod-template-hash": pod_hash},
        "creationTimestamp": ts(created_ago),
    }
    if rs is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": rs,
                "uid": f"uid-{rs}",
                "controller": True,
            }
        ]
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    spec_containers = [{"name": c["name"], "image": "shop/api:1.4"} for c in containers or []]
    if containers is None:
        containers = [
            container(
                ready=ready,
                waiting=waiting,
                terminated=terminated,
                last_terminated=last_terminated,
                last_message=last_message,
                restarts=restarts,
            )
        ]
        spec_containers = [{"name": "api", "image": "shop/api:1.4"}]
    spec: dict[str, Any] = {"containers": spec_containers}
    status: dict[str, Any] = {"conditions": []}
    if unschedulable is not None:
        spec.pop("nodeName", None)
        status["phase"] = phase or "Pending"
        status["conditions"].append(
            condition("PodScheduled", "False", "Unschedulable", unschedulable[1], unschedulable[0])
        )
    else:
        if node:
            spec["nodeName"] = node
        all_ready = all(c.get("ready") for c in containers)
        init_done = all(
            (c.get("state") or {}).get("terminated", {}).get("exitCode") == 0 for c in init or []
        )
        status["phase"] = phase or ("Running" if init_done and containers else "Pending")
        status["conditions"] += [
            condition("PodScheduled", "True"),
            condition("Initialized", "True" if init_done else "False"),
            condition("ContainersReady", "True" if all_ready and init_done else "False"),
            condition("Ready", "True" if all_ready and init_done else "False"),
        ]
        if init_done:
            status["containerStatuses"] = list(containers)
        else:
            status["containerStatuses"] = [
                {
                    "name": c["name"],
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }
                for c in containers
            ]
    if init is not None:
        spec["initContainers"] = [{"name": c["name"], "image": "shop/migrate:1"} for c in init]
        status["initContainerStatuses"] = list(init)
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


# -- StatefulSets and DaemonSets ----------------------------------------------------------

STATEFULSET, STATEFULSET_UID = "db", "uid-db"
NEW_REV, OLD_REV = "db-7c5d9f", "db-5f6b8c"  # StatefulSet revisions (ControllerRevision names)
DAEMONSET, DAEMONSET_UID = "agent", "uid-agent"
NEW_DS_HASH, OLD_DS_HASH = "6d4b7f", "58c9d2"  # DaemonSet revision hashes


def statefulset(
    name: str = STATEFULSET,
    *,
    replicas: int = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    ready: Optional[int] = None,
    available: Optional[int] = None,
    current_revision: Optional[str] = None,
    update_revision: str = NEW_REV,
    strategy: str = "RollingUpdate",
    partition: Optional[int] = 0,
    pod_template: Optional[dict] = None,
    deleting: bool = False,
) -> dict:
    """A StatefulSet; ready/available default to ``replicas``, currentRevision to the update
    revision once every replica is updated (as the controller's completeRollingUpdate)."""
    update_strategy: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate" and partition is not None:
        update_strategy["rollingUpdate"] = {"partition": partition, "maxUnavailable": 1}
    if current_revision is None:
        current_revision = update_revision if updated >= replicas else OLD_REV
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "uid": STATEFULSET_UID,
        "generation": generation,
        "creationTimestamp": ts(86400),
    }
    if deleting:
        meta["deletionTimestamp"] = ts(1)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "serviceName": name,
            "template": pod_template or template(),
            "updateStrategy": update_strategy,
            "podManagementPolicy": "OrderedReady",
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": replicas if ready is None else ready,
            "availableReplicas": (replicas if ready is None else ready)
            if available is None
            else available,
            "currentReplicas": replicas if current_revision == update_revision else 0,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
        },
    }


def daemonset(
    name: str = DAEMONSET,
    *,
    generation: int = 2,
    observed: int = 2,
    template_generation: int = 2,
    desired: int = 3,
    updated: int = 3,
    available: Optional[int] = None,
    strategy: str = "RollingUpdate",
    pod_template: Optional[dict] = None,
) -> dict:
    """A DaemonSet on ``desired`` nodes; numberAvailable/numberReady default to ``desired``."""
    update_strategy: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        update_strategy["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 0}
    available = desired if available is None else available
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": DAEMONSET_UID,
            "generation": generation,
            "annotations": {"deprecated.daemonset.template.generation": str(template_generation)},
            "creationTimestamp": ts(86400),
        },
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template or template(),
            "updateStrategy": update_strategy,
        },
        "status": {
            "observedGeneration": observed,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": available,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        },
    }


def set_pod(
    name: str,
    *,
    revision: str = NEW_REV,
    owner: tuple[str, str, str] = ("StatefulSet", STATEFULSET, STATEFULSET_UID),
    template_generation: Optional[int] = None,
    **state: Any,
) -> dict:
    """A pod of a StatefulSet (default) or DaemonSet (``owner=("DaemonSet", ...)``): labelled
    with its revision (and template generation), controlled by ``owner``; ``state`` as for
    ``pod``."""
    made = pod(name, rs=None, **state)
    labels = made["metadata"]["labels"]
    labels.pop("pod-template-hash", None)
    labels["app"] = owner[1]
    labels["controller-revision-hash"] = revision
    if template_generation is not None:
        labels["pod-template-generation"] = str(template_generation)
    made["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": owner[2],
         "controller": True}
    ]  # fmt: skip
    return made


def ds_pod(name: str, *, new: bool = True, **state: Any) -> dict:
    """A pod of DaemonSet ``agent``: of the new template generation (2) or the old one (1)."""
    return set_pod(
        name,
        revision=NEW_DS_HASH if new else OLD_DS_HASH,
        owner=("DaemonSet", DAEMONSET, DAEMONSET_UID),
        template_generation=2 if new else 1,
        **state,
    )


def ready_pods(count: int, rs: str = NEW_RS, prefix: Optional[str] = None) -> list[dict]:
    """``count`` healthy pods of ``rs`` named ``<rs>-p0``, ``<rs>-p1``, ..."""
    return [pod(f"{prefix or rs}-p{i}", rs=rs) for i in range(count)]


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    *,
    count: int = 1,
    ago: float = 10,
    type: str = "Warning",
    new_style: bool = False,
) -> dict:
    """A core/v1 Event, or an events.k8s.io/v1 one with ``new_style``."""
    if new_style:
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{reason}", "namespace": NAMESPACE},
            "regarding": {"kind": kind, "name": name, "namespace": NAMESPACE},
            "reason": reason,
            "note": message,
            "type": type,
            "eventTime": ts(ago + 60) if count > 1 else ts(ago),
            "series": {"count": count, "lastObservedTime": ts(ago)} if count > 1 else None,
        }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{reason}", "namespace": NAMESPACE},
        "involvedObject": {"kind": kind, "name": name, "namespace": NAMESPACE},
        "reason": reason,
        "message": message,
        "type": type,
        "count": count,
        "firstTimestamp": ts(ago + 60),
        "lastTimestamp": ts(ago),
    }


def service(
    name: str = "backend",
    *,
    selector: Optional[dict] = None,
    type: str = "ClusterIP",
    ports: Iterable[int] = (80,),
    lb: Sequence[dict] = (),
    namespace: str = NAMESPACE,
) -> dict:
    """A Service selecting the backend pods unless told otherwise; ``lb`` = status ingress list."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": type,
            "selector": dict(APP_LABELS) if selector is None else selector,
            "ports": [{"port": p, "targetPort": 8080} for p in ports],
        },
        "status": {"loadBalancer": {"ingress": list(lb)}},
    }


def ingress_rule(host: Optional[str], *paths: tuple[str, str]) -> dict:
    """A rule for ``host`` with (path, service name) pairs."""
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": svc, "port": {"number": 80}}},
                }
                for path, svc in paths
            ]
        }
    }
    if host is not None:
        rule["host"] = host
    return rule


def ingress(
    name: str = "backend",
    *,
    rules: Sequence[dict] = (),
    tls: Sequence[Sequence[str]] = (),
    lb: Sequence[dict] = (),
    default_backend: Optional[str] = None,
    namespace: str = NAMESPACE,
) -> dict:
    spec: dict[str, Any] = {
        "rules": list(rules),
        "tls": [{"hosts": list(hosts), "secretName": f"tls-{i}"} for i, hosts in enumerate(tls)],
    }
    if default_backend:
        spec["defaultBackend"] = {"service": {"name": default_backend, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": list(lb)}},
    }


def httproute(
    name: str = "backend",
    *,
    hostnames: Sequence[str] = (),
    backends: Sequence[str] = ("backend",),
    paths: Sequence[str] = (),
    section: Optional[str] = None,
    namespace: str = NAMESPACE,
) -> dict:
    parent: dict[str, Any] = {"name": "gateway"}
    if section is not None:
        parent["sectionName"] = section
    rule: dict[str, Any] = {"backendRefs": [{"name": b, "port": 80} for b in backends]}
    if paths:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": p}} for p in paths]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [parent], "hostnames": list(hostnames), "rules": [rule]},
    }
