"""The Deployment and ReplicaSet controllers, after kube-controller-manager's.

The rollout arithmetic is what the plugin's tests rely on, so it follows
`pkg/controller/deployment` step for step (names of the Go functions are given where it helps
to compare): the new ReplicaSet is found by template, scaled up within maxSurge; old ones are
scaled down within maxUnavailable (unhealthy replicas first); a change of spec.replicas while
several ReplicaSets are active is spread proportionally; status and conditions are computed as
`calculateStatus`/`syncRolloutStatus` do.

The top half of this module is pure (plain dicts in, values out, `now` passed in). The two
controller classes below it read the store, apply those rules and write the results back; they
are driven by `simulation.Simulation`, which tells them which objects changed.

Deliberately not simulated: adoption/orphaning of objects by label selector (only objects whose
controller ownerReference names the owner count), expectations (our reads are never stale),
the old `spec.rollbackTo`.
"""

from __future__ import annotations

import calendar
import json
import math
import random
import time
from collections import defaultdict
from typing import Callable, Iterable

from .events import NORMAL, WARNING, EventRecorder
from .store import Conflict, NotFound, Store, WatchEvent, deep_copy, format_timestamp

__all__ = [
    "DeploymentController",
    "ReplicaSetController",
    "PodQuota",
    "scaled_value",
    "resolve_fenceposts",
    "max_surge",
    "max_unavailable",
    "strategy_errors",
    "pod_template_hash",
    "safe_encode_string",
    "templates_equal_ignoring_hash",
    "new_rs_new_replicas",
    "plan_old_scale_down",
    "plan_proportional_scale",
    "is_pod_ready",
    "is_pod_available",
    "calculate_rs_status",
    "calculate_deployment_status",
    "set_condition",
    "get_condition",
    "parse_timestamp",
]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations never copied onto its ReplicaSets (annotationsToSkip).
_SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
NO_DEADLINE = 2147483647  # progressDeadlineSeconds meaning "never" (math.MaxInt32)
DEFAULT_DEADLINE = 600
DEFAULT_HISTORY_LIMIT = 10
BURST_REPLICAS = 500  # the ReplicaSet controller creates/deletes at most this many per sync
_REV_HISTORY_CHARS = 2000
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Condition reasons (deploymentutil)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# ----------------------------------------------------------------------------- time


_PARSED: dict[str, float] = {}


def parse_timestamp(value: str | None) -> float | None:
    """Seconds since the epoch for an RFC 3339 'Z' timestamp (whole seconds), or None."""
    if not value:
        return None
    cached = _PARSED.get(value)
    if cached is None:
        cached = float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))
        if len(_PARSED) < 100_000:
            _PARSED[value] = cached
    return cached


# ----------------------------------------------------------------------------- strategy


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "N%" of `total` rounded."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    percent = int(text[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _rolling_params(deployment: dict) -> tuple[int | str, int | str]:
    rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")


def strategy_type(deployment: dict) -> str:
    """RollingUpdate (the default) or Recreate."""
    return ((deployment.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"


def spec_replicas(obj: dict) -> int:
    """spec.replicas with the API default of 1."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def resolve_fenceposts(
    surge: int | str | None, unavailable: int | str | None, desired: int
) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as absolute numbers: surge rounds up, unavailable down; if
    both come out 0, unavailable becomes 1 (so a rollout can always make progress)."""
    up = scaled_value(surge, desired, True)
    down = scaled_value(unavailable, desired, False)
    if up == 0 and down == 0:
        down = 1
    return up, down


def max_surge(deployment: dict) -> int:
    """deploymentutil.MaxSurge: 0 for Recreate."""
    if strategy_type(deployment) != "RollingUpdate":
        return 0
    surge, unavailable = _rolling_params(deployment)
    return resolve_fenceposts(surge, unavailable, spec_replicas(deployment))[0]


def max_unavailable(deployment: dict) -> int:
    """deploymentutil.MaxUnavailable: 0 for Recreate or 0 replicas, at most spec.replicas."""
    replicas = spec_replicas(deployment)
    if strategy_type(deployment) != "RollingUpdate" or replicas == 0:
        return 0
    surge, unavailable = _rolling_params(deployment)
    return min(resolve_fenceposts(surge, unavailable, replicas)[1], replicas)


def strategy_errors(deployment: dict) -> list[tuple[str, str]]:
    """What API validation says about spec.strategy, as (field, message) pairs; empty when
    valid. For the API server to answer 422 with (the controller tolerates invalid values)."""
    errors: list[tuple[str, str]] = []
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    kind = strategy.get("type") or "RollingUpdate"
    field = "spec.strategy.rollingUpdate"
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            errors.append(
                (field, "Forbidden: may not be specified when strategy `type` is 'Recreate'")
            )
        return errors
    if kind != "RollingUpdate":
        return [
            (
                "spec.strategy.type",
                f'Unsupported value: "{kind}": supported values: "Recreate", "RollingUpdate"',
            )
        ]
    surge, unavailable = _rolling_params(deployment)
    for name, value in (("maxSurge", surge), ("maxUnavailable", unavailable)):
        try:
            scaled_value(value, 100, True)
        except ValueError as exc:
            errors.append((f"{field}.{name}", f"Invalid value: {value!r}: {exc}"))
            continue
        if str(value).startswith("-"):
            errors.append(
                (f"{field}.{name}", f"Invalid value: {value}: must be greater than or equal to 0")
            )
    if errors:
        return errors
    if isinstance(unavailable, str) and int(unavailable[:-1]) > 100:
        errors.append(
            (
                f"{field}.maxUnavailable",
                f"Invalid value: {unavailable!r}: must not be greater than 100%",
            )
        )
    if scaled_value(surge, 100, True) == 0 and scaled_value(unavailable, 100, True) == 0:
        errors.append(
            (
                f"{field}.maxUnavailable",
                f"Invalid value: {unavailable}: may not be 0 when `maxSurge` is 0",
            )
        )
    return errors


# ----------------------------------------------------------------------------- templates


def _normalized(value):
    """Drop empty maps/lists/None, as apimachinery's semantic equality treats them as unset."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _without_hash(template: dict) -> dict:
    template = dict(template or {})
    meta = dict(template.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    meta["labels"] = labels
    template["metadata"] = meta
    return _normalized(template)


def templates_equal_ignoring_hash(a: dict, b: dict) -> bool:
    """deploymentutil.EqualIgnoreHash: same pod template apart from pod-template-hash."""
    return _without_hash(a) == _without_hash(b)


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def pod_template_hash(template: dict, collision_count: int | None = None) -> str:
    """controller.ComputeHash: a 32-bit FNV-1a of the template (plus the collision count),
    its decimal digits mapped onto the safe alphabet (rand.SafeEncodeString)."""
    data = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":"))
    if collision_count:
        data += f"#{collision_count}"
    return safe_encode_string(str(_fnv32a(data.encode())))


def safe_encode_string(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto an alphabet without vowels (no
    words) and without 0/1/3 (no look-alikes), as Kubernetes spells its name hashes."""
    return "".join(_NAME_ALPHABET[ord(ch) % len(_NAME_ALPHABET)] for ch in text)


# ----------------------------------------------------------------------------- replica sets


def revision_of(rs: dict) -> int:
    """The deployment.kubernetes.io/revision annotation as a number (0 when absent)."""
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _by_creation(rs: dict) -> tuple[str, str]:
    meta = rs["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


def _rs_replicas(rs: dict | None) -> int:
    return 0 if rs is None else int((rs.get("spec") or {}).get("replicas") or 0)


def _rs_status(rs: dict | None, field: str) -> int:
    return 0 if rs is None else int((rs.get("status") or {}).get(field) or 0)


def _desired_annotation(rs: dict) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(DESIRED_REPLICAS)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def new_rs_new_replicas(deployment: dict, all_rss: Iterable[dict | None], new_rs: dict) -> int:
    """deploymentutil.NewRSNewReplicas: how big the new ReplicaSet may be now."""
    replicas = spec_replicas(deployment)
    if strategy_type(deployment) != "RollingUpdate":
        return replicas
    current = sum(_rs_replicas(rs) for rs in all_rss)
    max_total = replicas + max_surge(deployment)
    if current >= max_total:
        return _rs_replicas(new_rs)
    grow = min(max_total - current, replicas - _rs_replicas(new_rs))
    return _rs_replicas(new_rs) + grow


def plan_old_scale_down(deployment: dict, new_rs: dict, old_rss: list[dict]) -> list[tuple]:
    """reconcileOldReplicaSets: the scale-downs of old ReplicaSets allowed now, in order, as
    (name, from, to). Unhealthy replicas go first (cleanupUnhealthyReplicas), then available
    ones while availability stays above spec.replicas - maxUnavailable, oldest first."""
    sizes = {rs["metadata"]["name"]: _rs_replicas(rs) for rs in old_rss}
    old_count = sum(sizes.values())
    if old_count == 0:
        return []
    replicas = spec_replicas(deployment)
    all_count = old_count + _rs_replicas(new_rs)
    min_available = replicas - max_unavailable(deployment)
    new_unavailable = _rs_replicas(new_rs) - _rs_status(new_rs, "availableReplicas")
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    steps: list[tuple] = []
    ordered = sorted(old_rss, key=_by_creation)
    cleaned = 0
    for rs in ordered:
        if cleaned >= max_scaled_down:
            break
        name = rs["metadata"]["name"]
        available = _rs_status(rs, "availableReplicas")
        if sizes[name] == 0 or sizes[name] == available:
            continue
        count = min(max_scaled_down - cleaned, sizes[name] - available)
        steps.append((name, sizes[name], sizes[name] - count))
        sizes[name] -= count
        cleaned += count
    # scaleDownOldReplicaSetsForRollingUpdate
    available_count = _rs_status(new_rs, "availableReplicas") + sum(
        _rs_status(rs, "availableReplicas") for rs in old_rss
    )
    if available_count <= min_available:
        return steps
    budget = available_count - min_available
    scaled = 0
    for rs in ordered:
        if scaled >= budget:
            break
        name = rs["metadata"]["name"]
        if sizes[name] == 0:
            continue
        count = min(sizes[name], budget - scaled)
        steps.append((name, sizes[name], sizes[name] - count))
        sizes[name] -= count
        scaled += count
    return steps


def _max_replicas_annotation(rs: dict) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(MAX_REPLICAS)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _round_half_away(value: float) -> int:
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def plan_proportional_scale(deployment: dict, active_rss: list[dict]) -> list[tuple]:
    """scale(): spread a change of spec.replicas over several active ReplicaSets in
    proportion to their size (the largest takes the leftover), as (name, from, to, op)."""
    replicas = spec_replicas(deployment)
    status_replicas = int((deployment.get("status") or {}).get("replicas") or 0)
    allowed = replicas + max_surge(deployment) if replicas > 0 else 0
    total = sum(_rs_replicas(rs) for rs in active_rss)
    to_add = allowed - total
    if to_add > 0:
        ordered = sorted(active_rss, key=_by_creation, reverse=True)  # newer first on ties
        ordered.sort(key=_rs_replicas, reverse=True)
        operation = "up"
    elif to_add < 0:
        ordered = sorted(active_rss, key=_by_creation)  # older first on ties
        ordered.sort(key=_rs_replicas, reverse=True)
        operation = "down"
    else:
        return []
    added = 0
    sizes: dict[str, int] = {}
    for rs in ordered:
        current = _rs_replicas(rs)
        proportion = 0
        if current != 0 and to_add != added:
            if replicas == 0:
                fraction = -current
            else:
                before = _max_replicas_annotation(rs) or status_replicas
                fraction = _round_half_away(current * allowed / before) - current if before else 0
            allowed_left = to_add - added
            proportion = min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
        sizes[rs["metadata"]["name"]] = current + proportion
        added += proportion
    first = ordered[0]["metadata"]["name"]
    sizes[first] = max(0, sizes[first] + to_add - added)
    return [
        (rs["metadata"]["name"], _rs_replicas(rs), sizes[rs["metadata"]["name"]], operation)
        for rs in ordered
    ]


# ----------------------------------------------------------------------------- pods


def get_condition(status: dict | None, kind: str) -> dict | None:
    """The condition of type `kind` in a status, or None."""
    for condition in (status or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def is_pod_ready(pod: dict) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    condition = get_condition(pod.get("status"), "Ready")
    return bool(condition and condition.get("status") == "True")


def is_pod_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    """podutil.IsPodAvailable: ready for longer than minReadySeconds (whole-second stamps)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_timestamp(get_condition(pod["status"], "Ready").get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def available_at(pod: dict, min_ready_seconds: int) -> float | None:
    """When a ready pod becomes available (None if not ready)."""
    if not is_pod_ready(pod):
        return None
    since = parse_timestamp(get_condition(pod["status"], "Ready").get("lastTransitionTime"))
    return None if since is None else since + min_ready_seconds


def is_pod_active(pod: dict) -> bool:
    """controller.IsPodActive: not terminating and not finished."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_pod_terminating(pod: dict) -> bool:
    """Deleted but not finished: what status.terminatingReplicas counts."""
    phase = (pod.get("status") or {}).get("phase")
    return bool(pod["metadata"].get("deletionTimestamp")) and phase not in (
        "Succeeded",
        "Failed",
    )


def _deletion_rank(pod: dict) -> tuple:
    """Which pods a scale-down removes first (ActivePodsWithRanks, ascending): unscheduled,
    then pending, then not ready, then ready most recently, more restarts, newer."""
    status = pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase"), 0)
    ready = is_pod_ready(pod)
    ready_since = 0.0
    if ready:
        ready_since = (
            parse_timestamp(get_condition(status, "Ready").get("lastTransitionTime")) or 0.0
        )
    restarts = max(
        (int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []),
        default=0,
    )
    created = parse_timestamp(pod["metadata"].get("creationTimestamp")) or 0.0
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        phase_rank,
        1 if ready else 0,
        -ready_since,
        -restarts,
        -created,
    )


# ----------------------------------------------------------------------------- status


def set_condition(status: dict, condition: dict) -> None:
    """SetDeploymentCondition: no-op when status and reason are unchanged; keeps
    lastTransitionTime when only the reason changes; the new condition goes last."""
    conditions = status.get("conditions") or []
    current = get_condition(status, condition["type"])
    if current and current["status"] == condition["status"]:
        if current.get("reason") == condition.get("reason"):
            return
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in conditions if c.get("type") != condition["type"]] + [
        condition
    ]


def remove_condition(status: dict, kind: str) -> None:
    """Drop the condition of type `kind` (and `conditions` itself when it ends up empty)."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def deployment_condition(kind: str, state: str, reason: str, message: str, now: float) -> dict:
    """NewDeploymentCondition."""
    stamp = format_timestamp(now)
    return {
        "type": kind,
        "status": state,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def calculate_rs_status(
    rs: dict, active: list[dict], terminating: int, manage_error: str | None, now: float
) -> dict:
    """The ReplicaSet controller's calculateStatus (zero counts omitted, as Go's omitempty
    does; `replicas` and `terminatingReplicas` always present)."""
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    template_labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    labeled = ready = available = 0
    for pod in active:
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    status: dict = {"replicas": len(active)}
    for field, value in (
        ("fullyLabeledReplicas", labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ):
        if value:
            status[field] = value
    status["terminatingReplicas"] = terminating
    generation = (rs.get("metadata") or {}).get("generation")
    if generation:
        status["observedGeneration"] = generation
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = get_condition(old, "ReplicaFailure")
    if manage_error and failure is None:
        reason = "FailedCreate" if len(active) < _rs_replicas(rs) else "FailedDelete"
        failure = {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": format_timestamp(now),
            "reason": reason,
            "message": manage_error,
        }
    if manage_error and failure:
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    return status


def calculate_deployment_status(
    deployment: dict, all_rss: list[dict | None], new_rs: dict | None, now: float
) -> dict:
    """The Deployment controller's calculateStatus: counts from the ReplicaSets, conditions
    copied, the Available condition set (zero counts omitted, as Go's omitempty does)."""
    rss = [rs for rs in all_rss if rs is not None]
    available = sum(_rs_status(rs, "availableReplicas") for rs in rss)
    total = sum(_rs_replicas(rs) for rs in rss)
    old = deployment.get("status") or {}
    status: dict = {}
    fields = (
        ("observedGeneration", int(deployment["metadata"].get("generation") or 0)),
        ("replicas", sum(_rs_status(rs, "replicas") for rs in rss)),
        ("updatedReplicas", _rs_status(new_rs, "replicas")),
        ("readyReplicas", sum(_rs_status(rs, "readyReplicas") for rs in rss)),
        ("availableReplicas", available),
        ("unavailableReplicas", max(0, total - available)),
    )
    for field, value in fields:
        if value:
            status[field] = value
    status["terminatingReplicas"] = sum(_rs_status(rs, "terminatingReplicas") for rs in rss)
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= spec_replicas(deployment) - max_unavailable(deployment):
        condition = deployment_condition(
            "Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        condition = deployment_condition(
            "Available",
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, condition)
    return status


def progress_deadline(deployment: dict) -> int | None:
    """spec.progressDeadlineSeconds (default 600), None when it means 'never'."""
    value = (deployment.get("spec") or {}).get("progressDeadlineSeconds", DEFAULT_DEADLINE)
    if value is None or int(value) == NO_DEADLINE:
        return None
    return int(value)


def deployment_complete(deployment: dict, status: dict) -> bool:
    """deploymentutil.DeploymentComplete."""
    replicas = spec_replicas(deployment)
    return (
        int(status.get("updatedReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("observedGeneration") or 0)
        >= int(deployment["metadata"].get("generation") or 0)
    )


def deployment_progressing(deployment: dict, new: dict) -> bool:
    """deploymentutil.DeploymentProgressing: any count moved the right way since last time."""
    old = deployment.get("status") or {}

    def count(status: dict, field: str) -> int:
        return int(status.get(field) or 0)

    old_old = count(old, "replicas") - count(old, "updatedReplicas")
    new_old = count(new, "replicas") - count(new, "updatedReplicas")
    return (
        count(new, "updatedReplicas") > count(old, "updatedReplicas")
        or new_old < old_old
        or count(new, "readyReplicas") > count(old, "readyReplicas")
        or count(new, "availableReplicas") > count(old, "availableReplicas")
    )


def deployment_timed_out(deployment: dict, new: dict, now: float) -> bool:
    """deploymentutil.DeploymentTimedOut: no progress for progressDeadlineSeconds."""
    deadline = progress_deadline(deployment)
    condition = get_condition(new, "Progressing")
    if deadline is None or condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    since = parse_timestamp(condition.get("lastUpdateTime"))
    return since is not None and since + deadline < now


def rollout_status(
    deployment: dict, all_rss: list[dict | None], new_rs: dict | None, now: float
) -> dict:
    """syncRolloutStatus: calculateStatus plus the Progressing and ReplicaFailure
    conditions."""
    status = calculate_deployment_status(deployment, all_rss, new_rs, now)
    name = deployment["metadata"]["name"]
    has_deadline = progress_deadline(deployment) is not None
    if not has_deadline:
        remove_condition(status, "Progressing")
    current = get_condition(deployment.get("status"), "Progressing")
    complete_before = (
        status.get("replicas", 0) == status.get("updatedReplicas", 0)
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{name}"'
    if has_deadline and not complete_before:
        if deployment_complete(deployment, status):
            set_condition(
                status,
                deployment_condition(
                    "Progressing",
                    "True",
                    NEW_RS_AVAILABLE,
                    f"{subject} has successfully progressed.",
                    now,
                ),
            )
        elif deployment_progressing(deployment, status):
            condition = deployment_condition(
                "Progressing", "True", RS_UPDATED, f"{subject} is progressing.", now
            )
            if current is not None:
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, "Progressing")
            set_condition(status, condition)
        elif deployment_timed_out(deployment, status, now):
            set_condition(
                status,
                deployment_condition(
                    "Progressing", "False", TIMED_OUT, f"{subject} has timed out progressing.", now
                ),
            )
    failure = _replica_failure(all_rss, new_rs)
    if failure:
        set_condition(status, failure)
    else:
        remove_condition(status, "ReplicaFailure")
    return status


def _replica_failure(all_rss: list[dict | None], new_rs: dict | None) -> dict | None:
    """getReplicaFailures: the new ReplicaSet's ReplicaFailure first, else any old one's."""
    for rs in [new_rs, *all_rss]:
        if rs is None:
            continue
        condition = get_condition(rs.get("status"), "ReplicaFailure")
        if condition:
            return {
                "type": "ReplicaFailure",
                "status": condition["status"],
                "lastUpdateTime": condition.get("lastTransitionTime"),
                "lastTransitionTime": condition.get("lastTransitionTime"),
                "reason": condition.get("reason"),
                "message": condition.get("message"),
            }
    return None


def stuck_recheck_at(deployment: dict, status: dict) -> float | None:
    """requeueStuckDeployment: when to look again for a timed-out rollout, or None."""
    deadline = progress_deadline(deployment)
    current = get_condition(deployment.get("status"), "Progressing")
    if deadline is None or current is None:
        return None
    if deployment_complete(deployment, status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_timestamp(current.get("lastUpdateTime"))
    return None if since is None else since + deadline


# ----------------------------------------------------------------------------- helpers


def controller_ref(obj: dict) -> dict | None:
    """The ownerReference with controller: true, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: dict) -> dict:
    """metav1.NewControllerRef."""
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict | None, owner: dict) -> bool:
    ref = controller_ref(obj) if obj else None
    return bool(ref and ref.get("uid") == owner["metadata"]["uid"])


def _sync_atomically(store: Store, sync: Callable[..., None], key: tuple) -> None:
    """One object's sync under the store lock, so API requests cannot change what it read
    before it writes. An object deleted meanwhile is skipped (its DELETED event brings it
    back for garbage collection), as a real controller drops a NotFound and requeues."""
    with store.lock:
        try:
            sync(*key)
        except NotFound:
            pass


class _OwnerIndex:
    """owner key -> names of the objects whose controller ownerReference names it, kept up to
    date from watch events, so no controller ever lists a whole resource."""

    def __init__(self, owner_kind: str) -> None:
        self._kind = owner_kind
        self._children: dict[tuple[str, str], set[str]] = defaultdict(set)

    def observe(self, event: WatchEvent) -> tuple[str, str] | None:
        """Update the index; returns the owner's (namespace, name), if any."""
        meta = event.obj.get("metadata") or {}
        ref = controller_ref(event.obj)
        if not ref or ref.get("kind") != self._kind:
            return None
        owner = (meta.get("namespace") or "", ref["name"])
        if event.type == "DELETED":
            names = self._children.get(owner)
            if names is not None:
                names.discard(meta["name"])
                if not names:
                    del self._children[owner]
        else:
            self._children[owner].add(meta["name"])
        return owner

    def children(self, owner: tuple[str, str]) -> list[str]:
        return sorted(self._children.get(owner, ()))


# ----------------------------------------------------------------------------- deployments


class DeploymentController:
    """syncDeployment for the Deployments marked dirty."""

    component = "deployment-controller"

    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[tuple, float], None],
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._schedule = schedule
        self._replicasets = _OwnerIndex("Deployment")
        self.dirty: set[tuple[str, str]] = set()

    # -- wiring

    def observe(self, event: WatchEvent) -> None:
        """Note which Deployments a change concerns."""
        if event.resource == "deployments":
            meta = event.obj["metadata"]
            self.dirty.add((meta.get("namespace") or "", meta["name"]))
        elif event.resource == "replicasets":
            owner = self._replicasets.observe(event)
            if owner:
                self.dirty.add(owner)

    def owner_of(self, rs: dict) -> tuple[str, str] | None:
        """The Deployment (namespace, name) controlling a ReplicaSet."""
        ref = controller_ref(rs)
        if ref and ref.get("kind") == "Deployment":
            return rs["metadata"].get("namespace") or "", ref["name"]
        return None

    def sync_dirty(self) -> int:
        """Sync every dirty Deployment once; returns how many."""
        keys, self.dirty = self.dirty, set()
        for key in sorted(keys):
            _sync_atomically(self._store, self.sync, key)
        return len(keys)

    # -- syncDeployment

    def sync(self, namespace: str, name: str) -> None:
        shared = self._store.get_shared("deployments", namespace, name)
        rs_list = self._replica_sets(namespace, name, shared)
        if shared is None:
            for rs in rs_list:  # garbage collection (background propagation)
                self._store.delete("replicasets", namespace, rs["metadata"]["name"])
            return
        d = deep_copy(shared)
        selector = (d.get("spec") or {}).get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            self._event(
                d,
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            return
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = self._new_and_old(d, rs_list, create=False)
            self._sync_status(d, [*old_rss, new_rs], new_rs)
            return
        d = self._check_paused_conditions(d)
        if (d.get("spec") or {}).get("paused"):
            self._sync(d, rs_list)
            return
        if self._is_scaling_event(d, rs_list):
            self._sync(d, rs_list)
            return
        if strategy_type(d) == "Recreate":
            self._rollout_recreate(d, rs_list)
        else:
            self._rollout_rolling(d, rs_list)

    def _replica_sets(self, namespace: str, name: str, d: dict | None) -> list[dict]:
        result = []
        for rs_name in self._replicasets.children((namespace, name)):
            rs = self._store.get_shared("replicasets", namespace, rs_name)
            if rs is not None and (d is None or _owned_by(rs, d)):
                result.append(rs)
        return result

    def _check_paused_conditions(self, d: dict) -> dict:
        if progress_deadline(d) is None:
            return d
        status = d.get("status") or {}
        condition = get_condition(status, "Progressing")
        if condition is not None and condition.get("reason") == TIMED_OUT:
            return d
        paused_before = condition is not None and condition.get("reason") == PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused == paused_before:
            return d
        now = self._clock()
        status = deep_copy(status)
        if paused:
            new = deployment_condition(
                "Progressing", "Unknown", PAUSED, "Deployment is paused", now
            )
        else:
            new = deployment_condition(
                "Progressing", "Unknown", RESUMED, "Deployment is resumed", now
            )
        set_condition(status, new)
        d["status"] = status
        return self._store.update_status("deployments", d)

    def _is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        new_rs, old_rss = self._new_and_old(d, rs_list, create=False)
        replicas = spec_replicas(d)
        for rs in [*old_rss, new_rs]:
            if rs is None or _rs_replicas(rs) == 0:
                continue
            desired = _desired_annotation(rs)
            if desired is not None and desired != replicas:
                return True
        return False

    def _sync(self, d: dict, rs_list: list[dict]) -> None:
        """sync(): scale (proportionally if needed), clean up when paused, write status."""
        new_rs, old_rss = self._new_and_old(d, rs_list, create=False)
        self._scale(d, new_rs, old_rss)
        rs_list = self._replica_sets(d["metadata"]["namespace"], d["metadata"]["name"], d)
        new_rs, old_rss = self._split(d, rs_list)
        if (d.get("spec") or {}).get("paused"):
            self._cleanup(d, old_rss)
        self._sync_status(d, [*old_rss, new_rs], new_rs)

    def _scale(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        replicas = spec_replicas(d)
        active = [rs for rs in [*old_rss, new_rs] if rs is not None and _rs_replicas(rs) > 0]
        if len(active) <= 1:
            if active:
                target = active[0]
            elif new_rs is not None:
                target = new_rs
            else:
                target = max(old_rss, key=_by_creation, default=None)
            if target is not None and _rs_replicas(target) != replicas:
                self._scale_rs(d, target, replicas)
            return
        if new_rs is not None and self._saturated(d, new_rs):
            for rs in old_rss:
                if _rs_replicas(rs) > 0:
                    self._scale_rs(d, rs, 0)
            return
        if strategy_type(d) != "RollingUpdate":
            return
        by_name = {rs["metadata"]["name"]: rs for rs in active}
        for rs_name, _old, new, operation in plan_proportional_scale(d, active):
            self._scale_rs(d, by_name[rs_name], new, operation, force_annotations=True)

    @staticmethod
    def _saturated(d: dict, rs: dict) -> bool:
        replicas = spec_replicas(d)
        return (
            _rs_replicas(rs) == replicas
            and _desired_annotation(rs) == replicas
            and _rs_status(rs, "availableReplicas") == replicas
        )

    # -- strategies

    def _rollout_rolling(self, d: dict, rs_list: list[dict]) -> None:
        new_rs, old_rss = self._new_and_old(d, rs_list, create=True)
        if new_rs is None:
            return
        all_rss = [*old_rss, new_rs]
        replicas = spec_replicas(d)
        # reconcileNewReplicaSet
        target = _rs_replicas(new_rs)
        if target > replicas:
            target = replicas
        elif target < replicas:
            target = new_rs_new_replicas(d, all_rss, new_rs)
        if target != _rs_replicas(new_rs):
            new_rs = self._scale_rs(d, new_rs, target)
            self._sync_status(d, [*old_rss, new_rs], new_rs, rollout=True)
            return
        # reconcileOldReplicaSets
        steps = plan_old_scale_down(d, new_rs, [rs for rs in old_rss if _rs_replicas(rs) > 0])
        if steps:
            by_name = {rs["metadata"]["name"]: rs for rs in old_rss}
            for rs_name, _old, new in steps:
                by_name[rs_name] = self._scale_rs(d, by_name[rs_name], new)
            self._sync_status(d, [*by_name.values(), new_rs], new_rs, rollout=True)
            return
        if deployment_complete(d, d.get("status") or {}):
            self._cleanup(d, old_rss)
        self._sync_status(d, all_rss, new_rs, rollout=True)

    def _rollout_recreate(self, d: dict, rs_list: list[dict]) -> None:
        new_rs, old_rss = self._new_and_old(d, rs_list, create=False)
        scaled_down = False
        for index, rs in enumerate(old_rss):
            if _rs_replicas(rs) > 0:
                old_rss[index] = self._scale_rs(d, rs, 0)
                scaled_down = True
        if scaled_down or self._old_pods_running(d, new_rs, old_rss):
            self._sync_status(d, [*old_rss, new_rs], new_rs, rollout=True)
            return
        if new_rs is None:
            new_rs, old_rss = self._new_and_old(d, rs_list, create=True)
            if new_rs is None:
                return
        if _rs_replicas(new_rs) != spec_replicas(d):
            new_rs = self._scale_rs(d, new_rs, spec_replicas(d))
        if deployment_complete(d, d.get("status") or {}):
            self._cleanup(d, old_rss)
        self._sync_status(d, [*old_rss, new_rs], new_rs, rollout=True)

    def _old_pods_running(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> bool:
        """oldPodsRunning: old ReplicaSets still report pods, or any of their pods (even a
        terminating one) is not finished."""
        if sum(_rs_status(rs, "replicas") for rs in old_rss) > 0:
            return True
        return any(_rs_status(rs, "terminatingReplicas") > 0 for rs in old_rss)

    # -- the new ReplicaSet

    def _split(self, d: dict, rs_list: list[dict]) -> tuple[dict | None, list[dict]]:
        """FindNewReplicaSet / FindOldReplicaSets."""
        template = (d.get("spec") or {}).get("template") or {}
        new_rs = None
        for rs in sorted(rs_list, key=_by_creation):
            if templates_equal_ignoring_hash((rs.get("spec") or {}).get("template"), template):
                new_rs = rs
                break
        old = [rs for rs in rs_list if new_rs is None or rs is not new_rs]
        return new_rs, old

    def _new_and_old(
        self, d: dict, rs_list: list[dict], create: bool
    ) -> tuple[dict | None, list[dict]]:
        """getAllReplicaSetsAndSyncRevision: find (or create) the new ReplicaSet, keep its
        revision annotations and the Deployment's revision in step."""
        existing, old_rss = self._split(d, rs_list)
        new_revision = max((revision_of(rs) for rs in old_rss), default=0) + 1
        if existing is not None:
            return self._sync_existing_new_rs(d, existing, new_revision), old_rss
        if not create:
            return None, old_rss
        return self._create_new_rs(d, old_rss, new_revision), old_rss

    def _sync_existing_new_rs(self, d: dict, rs: dict, new_revision: int) -> dict:
        copy = deep_copy(rs)
        changed = _set_new_rs_annotations(d, copy, new_revision, exists=True)
        min_ready = (d.get("spec") or {}).get("minReadySeconds") or 0
        if changed or ((copy.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            copy["spec"]["minReadySeconds"] = min_ready
            return self._store.update("replicasets", copy)
        needs_update = self._set_deployment_revision(
            d, copy["metadata"]["annotations"].get(REVISION)
        )
        if (
            progress_deadline(d) is not None
            and get_condition(d.get("status"), "Progressing") is None
        ):
            status = deep_copy(d.get("status") or {})
            set_condition(
                status,
                deployment_condition(
                    "Progressing",
                    "True",
                    FOUND_NEW_RS,
                    f'Found new replica set "{rs["metadata"]["name"]}"',
                    self._clock(),
                ),
            )
            d["status"] = status
            needs_update = True
        if needs_update:
            self._write_deployment(d)
        return rs

    def _create_new_rs(self, d: dict, old_rss: list[dict], new_revision: int) -> dict | None:
        meta = d["metadata"]
        spec = d.get("spec") or {}
        collisions = (d.get("status") or {}).get("collisionCount")
        template = deep_copy(spec.get("template") or {})
        hash_ = pod_template_hash(template, collisions)
        template.setdefault("metadata", {})
        template["metadata"]["labels"] = {
            **(template["metadata"].get("labels") or {}),
            HASH_LABEL: hash_,
        }
        selector = deep_copy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: hash_}
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta.get("namespace"),
                "labels": dict(template["metadata"]["labels"]),
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": spec.get("minReadySeconds") or 0,
                "selector": selector,
                "template": template,
            },
        }
        replicas = new_rs_new_replicas(d, [*old_rss, rs], rs)
        rs["spec"]["replicas"] = replicas
        _set_new_rs_annotations(d, rs, new_revision, exists=False)
        try:
            created = self._store.create("replicasets", rs)
        except Conflict:
            existing = self._store.get_shared(
                "replicasets", meta.get("namespace"), rs["metadata"]["name"]
            )
            if (
                existing is not None
                and _owned_by(existing, d)
                and templates_equal_ignoring_hash(
                    existing["spec"]["template"], spec.get("template") or {}
                )
            ):
                return existing
            status = deep_copy(d.get("status") or {})
            status["collisionCount"] = int(collisions or 0) + 1
            d["status"] = status
            self._store.update_status("deployments", d)
            return None
        if replicas > 0:
            self._event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas}",
            )
        self._set_deployment_revision(d, str(new_revision))
        if progress_deadline(d) is not None:
            status = deep_copy(d.get("status") or {})
            set_condition(
                status,
                deployment_condition(
                    "Progressing",
                    "True",
                    NEW_RS_CREATED,
                    f'Created new replica set "{created["metadata"]["name"]}"',
                    self._clock(),
                ),
            )
            d["status"] = status
        self._write_deployment(d)
        return created

    def _set_deployment_revision(self, d: dict, revision: str | None) -> bool:
        annotations = d["metadata"].setdefault("annotations", {})
        if revision is None or annotations.get(REVISION) == revision:
            return False
        annotations[REVISION] = revision
        return True

    def _write_deployment(self, d: dict) -> None:
        """Write annotations and status (the real controller does both with UpdateStatus,
        whose strategy keeps metadata changes; our store splits them)."""
        shared = self._store.get_shared(
            "deployments", d["metadata"].get("namespace"), d["metadata"]["name"]
        )
        if shared is None:
            return
        if (shared["metadata"].get("annotations") or {}) != (
            d["metadata"].get("annotations") or {}
        ):
            fresh = deep_copy(shared)
            fresh["metadata"]["annotations"] = d["metadata"].get("annotations")
            self._store.update("deployments", fresh)
        if shared.get("status") != d.get("status"):
            self._store.update_status("deployments", d)

    # -- scaling and status

    def _scale_rs(
        self,
        d: dict,
        rs: dict,
        size: int,
        operation: str | None = None,
        force_annotations: bool = False,
    ) -> dict:
        """scaleReplicaSet(AndRecordEvent): new size and replica annotations; an event if the
        size changed."""
        old_size = _rs_replicas(rs)
        if old_size == size and not force_annotations:
            return rs
        replicas = spec_replicas(d)
        max_replicas = replicas + max_surge(d)
        copy = deep_copy(rs)
        annotations = copy["metadata"].setdefault("annotations", {})
        annotations_changed = annotations.get(DESIRED_REPLICAS) != str(replicas) or annotations.get(
            MAX_REPLICAS
        ) != str(max_replicas)
        if old_size == size and not annotations_changed:
            return rs
        copy["spec"]["replicas"] = size
        annotations[DESIRED_REPLICAS] = str(replicas)
        annotations[MAX_REPLICAS] = str(max_replicas)
        updated = self._store.update("replicasets", copy)
        if old_size != size:
            operation = operation or ("up" if size > old_size else "down")
            self._event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled {operation} replica set {rs['metadata']['name']} from {old_size} "
                f"to {size}",
            )
        return updated

    def _sync_status(
        self, d: dict, all_rss: list[dict | None], new_rs: dict | None, rollout: bool = False
    ) -> None:
        now = self._clock()
        if rollout:
            status = rollout_status(d, all_rss, new_rs, now)
        else:
            status = calculate_deployment_status(d, all_rss, new_rs, now)
        if status != (d.get("status") or {}):
            d["status"] = status
            self._store.update_status("deployments", d)
        elif rollout:
            recheck = stuck_recheck_at(d, status)
            if recheck is not None:
                meta = d["metadata"]
                self._schedule(
                    ("deployment", meta.get("namespace") or "", meta["name"]), recheck + 0.001
                )

    def _cleanup(self, d: dict, old_rss: list[dict]) -> None:
        """cleanupDeployment: delete old, empty ReplicaSets beyond revisionHistoryLimit."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT)
        if limit is None:
            return
        alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
        extra = len(alive) - int(limit)
        if extra <= 0:
            return
        alive.sort(key=lambda rs: (revision_of(rs), _by_creation(rs)))
        for rs in alive[:extra]:
            status = rs.get("status") or {}
            if (
                int(status.get("replicas") or 0) != 0
                or _rs_replicas(rs) != 0
                or int(rs["metadata"].get("generation") or 0)
                > int(status.get("observedGeneration") or 0)
            ):
                continue
            self._store.delete(
                "replicasets", rs["metadata"].get("namespace"), rs["metadata"]["name"]
            )

    def _event(self, d: dict, kind: str, reason: str, message: str) -> None:
        self._recorder.record(d, kind, reason, message, component=self.component)


def _set_new_rs_annotations(d: dict, rs: dict, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy the Deployment's annotations, raise the revision to
    `new_revision` (recording the old one in revision-history when an old template comes
    back), and for a new ReplicaSet the desired/max replica annotations."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((d["metadata"].get("annotations")) or {}).items():
        if key in _SKIPPED_ANNOTATIONS:
            continue
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old_text = annotations.get(REVISION)
    try:
        old_revision = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old_revision < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = annotations.get(REVISION_HISTORY)
            entries = history.split(",") if history else []
            entries.append(old_text)
            while len(",".join(entries)) > _REV_HISTORY_CHARS and len(entries) > 1:
                entries.pop(0)
            annotations[REVISION_HISTORY] = ",".join(entries)
    if not exists:
        replicas = spec_replicas(d)
        annotations[DESIRED_REPLICAS] = str(replicas)
        annotations[MAX_REPLICAS] = str(replicas + max_surge(d))
        changed = True
    return changed


# ----------------------------------------------------------------------------- quota


class PodQuota:
    """A stand-in for a ResourceQuota on `pods` per namespace: creating a pod beyond the
    limit fails as the quota admission plugin fails it."""

    def __init__(self) -> None:
        self._limits: dict[str, tuple[str, int]] = {}

    def set(self, namespace: str, limit: int | None, name: str = "pod-quota") -> None:
        if limit is None:
            self._limits.pop(namespace, None)
        else:
            self._limits[namespace] = (name, limit)

    def check(self, namespace: str, used: int, pod_name: str) -> str | None:
        """The API server's error for creating one more pod, or None if allowed."""
        quota = self._limits.get(namespace)
        if quota is None or used < quota[1]:
            return None
        name, limit = quota
        return (
            f'pods "{pod_name}" is forbidden: exceeded quota: {name}, requested: pods=1, '
            f"used: pods={used}, limited: pods={limit}"
        )


# ----------------------------------------------------------------------------- replica sets


class ReplicaSetController:
    """syncReplicaSet for the ReplicaSets marked dirty: create or delete pods to match
    spec.replicas, then write status."""

    component = "replicaset-controller"

    def __init__(
        self,
        store: Store,
        recorder: EventRecorder,
        clock: Callable[[], float],
        schedule: Callable[[tuple, float], None],
        delete_pod: Callable[[dict], None],
        quota: PodQuota,
        retry_delay: float,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._schedule = schedule
        self._delete_pod = delete_pod
        self._quota = quota
        self._retry_delay = retry_delay
        self._rng = rng or random.Random()
        self._pods = _OwnerIndex("ReplicaSet")
        self.dirty: set[tuple[str, str]] = set()

    def observe(self, event: WatchEvent) -> None:
        """Note which ReplicaSets a change concerns."""
        if event.resource == "replicasets":
            meta = event.obj["metadata"]
            self.dirty.add((meta.get("namespace") or "", meta["name"]))
        elif event.resource == "pods":
            owner = self._pods.observe(event)
            if owner:
                self.dirty.add(owner)

    def sync_dirty(self) -> int:
        """Sync every dirty ReplicaSet once; returns how many."""
        keys, self.dirty = self.dirty, set()
        for key in sorted(keys):
            _sync_atomically(self._store, self.sync, key)
        return len(keys)

    def sync(self, namespace: str, name: str) -> None:
        rs = self._store.get_shared("replicasets", namespace, name)
        pods = []
        for pod_name in self._pods.children((namespace, name)):
            pod = self._store.get_shared("pods", namespace, pod_name)
            if pod is not None and (rs is None or _owned_by(pod, rs)):
                pods.append(pod)
        if rs is None:
            for pod in pods:  # garbage collection (background propagation)
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete_pod(pod)
            return
        active = [pod for pod in pods if is_pod_active(pod)]
        terminating = sum(1 for pod in pods if is_pod_terminating(pod))
        error = None
        if not rs["metadata"].get("deletionTimestamp"):
            error = self._manage(rs, active)
        now = self._clock()
        status = calculate_rs_status(rs, active, terminating, error, now)
        if status != (rs.get("status") or {}):
            copy = dict(rs)
            copy["status"] = status
            self._store.update_status("replicasets", copy)
        self._schedule_availability(rs, active, now)
        if error:
            self._schedule(("replicaset", namespace, name), now + self._retry_delay)

    def _schedule_availability(self, rs: dict, active: list[dict], now: float) -> None:
        """Wake up when the next ready pod has been ready for minReadySeconds."""
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if not min_ready:
            return
        pending = [
            at
            for at in (available_at(pod, min_ready) for pod in active)
            if at is not None and at >= now
        ]
        if pending:
            meta = rs["metadata"]
            self._schedule(
                ("replicaset", meta.get("namespace") or "", meta["name"]), min(pending) + 0.001
            )

    def _manage(self, rs: dict, active: list[dict]) -> str | None:
        """manageReplicas: returns the error that stopped it, if any."""
        diff = len(active) - _rs_replicas(rs)
        if diff < 0:
            return self._create_pods(rs, min(-diff, BURST_REPLICAS))
        if diff > 0:
            victims = sorted(active, key=_deletion_rank)[: min(diff, BURST_REPLICAS)]
            for pod in victims:
                self._delete_pod(pod)
                self._event(
                    rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"
                )
        return None

    def _create_pods(self, rs: dict, count: int) -> str | None:
        meta = rs["metadata"]
        namespace = meta.get("namespace") or ""
        for _ in range(count):
            prefix = f"{meta['name']}-"
            guess = prefix + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(5))
            error = self._quota.check(namespace, self._store.count("pods", namespace), guess)
            if error:
                self._event(rs, WARNING, "FailedCreate", f"Error creating: {error}")
                return error
            pod = self._store.create("pods", _pod_from_template(rs, prefix))
            self._event(rs, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return None

    def _event(self, rs: dict, kind: str, reason: str, message: str) -> None:
        self._recorder.record(rs, kind, reason, message, component=self.component)


def _pod_from_template(rs: dict, prefix: str) -> dict:
    """controller.GetPodFromTemplate: labels, annotations, spec from the template; owned by
    the ReplicaSet; status as the API server initialises it."""
    template = (rs.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    spec = deep_copy(template.get("spec") or {})
    metadata: dict = {
        "generateName": prefix,
        "namespace": rs["metadata"].get("namespace"),
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [owner_reference(rs)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": qos_class(spec)},
    }


def qos_class(spec: dict) -> str:
    """BestEffort without any requests/limits, Guaranteed when every container's cpu and
    memory requests equal its limits, Burstable otherwise."""
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = r.get("requests") or limits
        for kind in ("cpu", "memory"):
            if not limits.get(kind) or requests.get(kind) != limits.get(kind):
                return "Burstable"
    return "Guaranteed"


def __getattr__(name: str):
    """`controllers.Simulation`/`SimConfig` resolve to simulation.py's (loaded lazily, since
    simulation.py imports this module), for callers that look for them here."""
    if name in ("Simulation", "SimConfig"):
        from . import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
