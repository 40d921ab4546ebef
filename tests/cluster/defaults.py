"""Defaulting and the little validation the API server does for our resources (pure).

The real API server fills defaults (a Deployment's 25%/25% RollingUpdate strategy, 600 s
progress deadline, a container's imagePullPolicy, ...) before storing; clients and our
controllers read those fields, so objects created through the simulated API get them too.
Validation covers what a client could plausibly get wrong and the API server would answer 422.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .selectors import labels_match, parse_label_selector

__all__ = ["apply_defaults", "validate", "selector_string", "decode_problem"]


def _default_container(container: dict) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def _default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            _default_container(container)


def _default_template(spec: dict) -> None:
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}))


def _default_deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replicaset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _default_statefulset(obj: dict) -> None:
    """SetDefaults_StatefulSet (1.37: MaxUnavailableStatefulSet and the PVC retention policy
    on by default). A RollingUpdate given without parameters keeps rollingUpdate unset."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        strategy.setdefault("rollingUpdate", {})
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None:
        rolling.setdefault("partition", 0)
        rolling.setdefault("maxUnavailable", 1)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_daemonset(obj: dict) -> None:
    """SetDefaults_DaemonSet: RollingUpdate, maxUnavailable 1, maxSurge 0, history 10."""
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_service(obj: dict, cluster_ip: str | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if cluster_ip and not spec.get("clusterIP"):
            spec["clusterIP"] = cluster_ip
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def apply_defaults(resource: str, obj: dict, *, cluster_ip: str | None = None) -> dict:
    """Fill the defaults the API server fills for `resource`, in place; returns `obj`."""
    if resource == "deployments":
        _default_deployment(obj)
    elif resource == "replicasets":
        _default_replicaset(obj)
    elif resource == "statefulsets":
        _default_statefulset(obj)
    elif resource == "daemonsets":
        _default_daemonset(obj)
    elif resource == "pods":
        _default_pod_spec(obj.setdefault("spec", {}))
    elif resource == "services":
        _default_service(obj, cluster_ip)
    elif resource == "namespaces":
        name = obj.get("metadata", {}).get("name", "")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
    elif resource == "ingresses":
        obj.setdefault("status", {"loadBalancer": {}})
    return obj


def initial_status(resource: str, obj: dict) -> Any:
    """The status a freshly created object starts with (clients cannot set it on create)."""
    if resource in ("deployments", "replicasets"):
        return {}
    if resource == "statefulsets":  # the fields without omitempty
        return {"replicas": 0, "availableReplicas": 0}
    if resource == "daemonsets":
        return {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0}  # fmt: skip
    if resource == "pods":
        return {"phase": "Pending", "qosClass": "BestEffort"}
    if resource == "namespaces":
        return {"phase": "Active"}
    return obj.get("status")


def selector_string(selector: dict | None) -> str:
    """A LabelSelector object as the string form (`a=b,c in (d,e)`) selectors.py parses."""
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(str(key))
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def _validate_workload(obj: dict) -> list[tuple[str, str]]:
    spec = obj.get("spec") or {}
    causes: list[tuple[str, str]] = []
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if selector and not labels_match(
        parse_label_selector(selector_string(selector)), template_labels
    ):
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {template_labels}: `selector` does not match template `labels`",
            )
        )
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    causes.extend(_validate_containers(containers, "spec.template.spec.containers"))
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        )
    return causes


def _validate_containers(containers: list, field: str) -> list[tuple[str, str]]:
    if not containers:
        return [(field, "Required value")]
    causes = []
    for index, container in enumerate(containers):
        if not container.get("name"):
            causes.append((f"{field}[{index}].name", "Required value"))
        if not container.get("image"):
            causes.append((f"{field}[{index}].image", "Required value"))
    return causes


def _validate_update_strategy(obj: dict, daemonset: bool) -> list[tuple[str, str]]:
    """StatefulSet and DaemonSet updateStrategy: RollingUpdate or OnDelete; a StatefulSet's
    rollingUpdate only with RollingUpdate; a DaemonSet's maxUnavailable and maxSurge not
    both 0."""
    strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    field = "spec.updateStrategy"
    if kind not in ("RollingUpdate", "OnDelete"):
        return [(field, f"Invalid value: \"{kind}\": must be 'RollingUpdate' or 'OnDelete'")]
    if kind == "OnDelete" and rolling is not None and not daemonset:
        return [(f"{field}.rollingUpdate",
                 "Invalid value: {}: only allowed for updateStrategy 'RollingUpdate'")]  # fmt: skip
    causes: list[tuple[str, str]] = []
    partition = (rolling or {}).get("partition", 0)
    if not isinstance(partition, int) or partition < 0:
        causes.append(
            (
                f"{field}.rollingUpdate.partition",
                f"Invalid value: {partition}: must be greater than or equal to 0",
            )
        )
    if daemonset and rolling is not None:
        surge, unavailable = rolling.get("maxSurge", 0), rolling.get("maxUnavailable", 1)
        if str(surge) in ("0", "0%") and str(unavailable) in ("0", "0%"):
            causes.append(
                (
                    f"{field}.rollingUpdate.maxUnavailable",
                    f"Invalid value: {unavailable}: may not be 0 when `maxSurge` is 0",
                )
            )
    return causes


# metav1.MicroTime: parsed with RFC3339Micro (exactly six fraction digits), written in UTC.
_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_MICRO_TIME_FIELDS = {"leases": ("acquireTime", "renewTime")}


def decode_problem(resource: str, obj: dict) -> str | None:
    """Why the API server could not decode `obj` (a 400 before any validation), or None.
    MicroTime fields are normalised to UTC (in a copy of .spec set on `obj`), as a real
    server writes them back."""
    if not isinstance(obj.get("spec"), dict) or resource not in _MICRO_TIME_FIELDS:
        return None
    spec = obj["spec"] = dict(obj["spec"])
    for key in _MICRO_TIME_FIELDS[resource]:
        value = spec.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not _MICRO_TIME.match(value):
            kind = obj.get("kind") or "Lease"
            return (
                f'{kind} in version "v1" cannot be handled as a {kind}: parsing time '
                f'"{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse it as '
                "RFC3339Micro"
            )
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
        spec[key] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return None


def _validate_lease(obj: dict) -> list[tuple[str, str]]:
    """ValidateLeaseSpec: positive duration, transitions not negative, preferredHolder only
    with a strategy (the one strategy there is, or a qualified name)."""
    spec = obj.get("spec") or {}
    causes: list[tuple[str, str]] = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        causes.append(("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater "
                                                     "than 0"))  # fmt: skip
    if isinstance(transitions, int) and transitions < 0:
        causes.append(("spec.leaseTransitions", f"Invalid value: {transitions}: must be greater "
                                                 "than or equal to 0"))  # fmt: skip
    strategy = spec.get("strategy")
    if strategy is not None and strategy != "OldestEmulationVersion" and "/" not in strategy:
        causes.append(("spec.strategy", f'Unsupported value: "{strategy}": supported values: '
                                         '"OldestEmulationVersion"'))  # fmt: skip
    if spec.get("preferredHolder") and not strategy:
        causes.append(("spec.preferredHolder",
                       "Forbidden: may only be specified if `strategy` is defined"))  # fmt: skip
    return causes


def validate(resource: str, obj: dict) -> list[tuple[str, str]]:
    """(field, message) pairs the API server would reject the object for; empty when valid."""
    if resource in ("deployments", "replicasets"):
        return _validate_workload(obj)
    if resource == "statefulsets":
        policy = (obj.get("spec") or {}).get("podManagementPolicy")
        causes = _validate_workload(obj) + _validate_update_strategy(obj, False)
        if policy not in ("OrderedReady", "Parallel"):
            causes.append(
                (
                    "spec.podManagementPolicy",
                    f"Invalid value: \"{policy}\": must be 'OrderedReady' or 'Parallel'",
                )
            )
        return causes
    if resource == "daemonsets":
        return _validate_workload(obj) + _validate_update_strategy(obj, True)
    if resource == "leases":
        return _validate_lease(obj)
    if resource == "pods":
        return _validate_containers((obj.get("spec") or {}).get("containers") or [],
                                    "spec.containers")  # fmt: skip
    return []
