"""Pod diagnosis: what a pod is doing, whether it dooms the rollout, and how to say so.

Everything here is pure: Kubernetes objects come in as the plain dicts the API server sends
(camelCase keys) and the clock is passed in. The STATUS column follows what `kubectl get pods`
prints, so a user sees the words they already know (CrashLoopBackOff, Init:ImagePullBackOff,
OOMKilled, ContainerCreating, Terminating, ...). The one addition is ``Unschedulable``, which
kubectl shows as ``Pending``: for a restart that hangs, that difference is the whole story.

Which trouble dooms a pod, and when, is the table in ``trouble.py``: this module finds the
trouble a pod shows (the container that explains it, how often it has stopped, how many of
its pulls failed, how long it has lasted) and asks the table. A pod is failing only when
waiting longer will not help: a container that crashed once and runs again, a registry 503, a
Secret created a few seconds late, a failed readiness probe, ContainerCreating and a brief
FailedScheduling are all normal parts of a healthy rollout.

Text that comes from the cluster (event and status messages, container logs) is data written
by someone else: it is flattened to one line or stripped of control sequences before anyone
prints it, never interpreted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

from kubectl_restart_backend.trouble import (
    DEFAULT_TOLERANCE,
    NO_MEMORY,
    PULL_REASONS,
    Doom,
    Evidence,
    Judgement,
    Memory,
    Rule,
    Tolerance,
    Where,
    judge,
    rule_for,
)

# Waiting reasons that explain a pod before anything else (the container to show first).
TROUBLE_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "SignatureValidationFailed",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)

# Statuses in which the container has not run yet, so it has no log of its own to show.
_NEVER_RAN = frozenset(
    {
        "ContainerCreating",
        "PodInitializing",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "Pending",
        "Unschedulable",
    }
)

# Statuses of a container that has stopped and not been restarted yet.
_TERMINATED_STATUSES = frozenset({"Error", "OOMKilled", "Completed", "ContainerCannotRun"})

# How failing pods are ordered: the most actionable explanation first.
_FAILURE_RANK = {"PodFailed": 1, "Unschedulable": 2}


@dataclass(frozen=True)
class PodInfo:
    """One row of "Pod details" (the contract in docs/architecture.md, plus two fields).

    Added beyond the contract: ``failure`` (this pod's one-line failure sentence, set only when
    ``failing``) and ``failure_kind`` (its CamelCase reason, e.g. CrashLoopBackOff, PodFailed,
    Unschedulable), so the rollout rule can quote the pod without re-reading it; and what the
    trouble table made of the pod: ``trouble`` (the row, e.g. CrashLoop, RegistryHiccup),
    ``doom`` (its Doom value), ``tolerance`` (how much of the tolerance it used, while it is
    not failing), ``trouble_key`` (for the memory of time-based trouble), ``failed_pulls``,
    ``last_exit_age`` (seconds since its last exit) and ``seen`` (troubles it showed while
    watched, for "... and recovered").
    """

    name: str
    ready_containers: int
    total_containers: int
    status: str
    restarts: int
    age_seconds: Optional[float]
    node: Optional[str]
    ready: bool
    failing: bool
    container: Optional[str]
    message: Optional[str]
    last_termination: Optional[str]
    replicaset: Optional[str]
    is_new: bool
    failure: Optional[str] = None
    failure_kind: Optional[str] = None
    trouble: Optional[str] = None
    doom: Optional[str] = None
    tolerance: Optional[str] = None
    trouble_key: Optional[str] = None
    failed_pulls: int = 0
    last_exit_age: Optional[float] = None
    seen: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventLine:
    """One deduplicated Warning event: the same (object, reason, message) summed up."""

    object_kind: str
    object_name: str
    reason: str
    message: str
    count: int
    age_seconds: Optional[float]


@dataclass(frozen=True)
class LogTarget:
    """A container whose log explains a failure; ``previous`` asks for the crashed instance."""

    pod: str
    container: str
    previous: bool


# --------------------------------------------------------------------------- time


def parse_time(value: Any) -> Optional[datetime]:
    """Parse a Kubernetes RFC 3339 timestamp (``Time`` or ``MicroTime``) to an aware datetime.

    Python 3.9's ``fromisoformat`` knows neither ``Z`` nor fractions other than 3 or 6 digits,
    so both are normalised first. Anything unparseable is None: a missing clock reading must
    never crash a verdict.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if not match:
        return None
    head, fraction, zone = match.groups()
    fraction = (fraction or "")[1:7].ljust(6, "0") if fraction else ""
    try:
        parsed = datetime.fromisoformat(head + ("." + fraction if fraction else "") + zone)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def seconds_since(value: Any, now: datetime) -> Optional[float]:
    """Seconds from a timestamp to ``now`` (None when the timestamp is missing or bad)."""
    then = parse_time(value)
    if then is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return (now - then).total_seconds()


def format_age(seconds: Optional[float]) -> str:
    """Format a duration the way kubectl's AGE column does (5s, 3m20s, 2h, 4d, ...).

    Same breakpoints as kubectl's human duration: seconds up to 2 minutes, minutes and seconds
    up to 10 minutes, minutes up to 3 hours, hours and minutes up to 8 hours, hours up to 2
    days, days and hours up to 8 days, days up to 2 years, then years.
    """
    if seconds is None:
        return "<unknown>"
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 120:
        return f"{max(total, 0)}s"
    minutes = total // 60
    if minutes < 10:
        return _two_units(minutes, "m", total % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return _two_units(years, "y", days % 365, "d")
    return f"{years}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


# --------------------------------------------------------------------------- safe text

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
# C0 controls except tab and newline, DEL, C1 controls, and the bidi overrides/isolates that can
# make a printed line read differently from what it contains.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sanitize_log_text(text: str) -> str:
    """Make text from a container (or the cluster) safe to print on a terminal.

    Escape sequences are removed, CRLF becomes LF, a lone CR (progress-bar redraws) is dropped,
    and any other control or direction-override character becomes ``?``: the user sees what the
    container wrote, and the terminal never acts on it.
    """
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "")
    return _UNSAFE_CHARS.sub("?", text)


def safe_text(text: Any) -> str:
    """Any text from the cluster (a log line, a message), made safe to print; None -> ''."""
    return "" if text is None else sanitize_log_text(str(text))


def cut_log_line(line: str, limit: int = 300) -> str:
    """Cut a very long line to ``limit`` characters, saying how much was left out."""
    if limit <= 0 or len(line) <= limit:
        return line
    return f"{line[:limit]}... [{len(line) - limit} more characters]"


def one_line(text: Any, limit: int = 300) -> str:
    """Flatten a message from the cluster to one safe line (whitespace runs become one space)."""
    if text is None:
        return ""
    flat = " ".join(sanitize_log_text(str(text)).split())
    return cut_log_line(flat, limit)


# --------------------------------------------------------------------------- pods


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """True when the pod's Ready condition is True (what Services and the controller count)."""
    return _condition(pod.get("status") or {}, "Ready").get("status") == "True"


def pod_is_terminating(pod: Mapping[str, Any]) -> bool:
    """True once deletion has started: the pod no longer counts, for good or for bad."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_owner_replicaset(pod: Mapping[str, Any]) -> Optional[str]:
    """Name of the ReplicaSet that controls the pod, from its ownerReferences."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet" and ref.get("controller", True):
            return ref.get("name")
    return None


def unschedulable_for(pod: Mapping[str, Any], now: datetime) -> Optional[float]:
    """Seconds the pod has been Unschedulable, or None when the scheduler has not said so.

    Measured from the PodScheduled condition's lastTransitionTime, or from the pod's creation
    when the condition carries no time.
    """
    status = pod.get("status") or {}
    if not _is_unschedulable(status):
        return None
    cond = _condition(status, "PodScheduled")
    elapsed = seconds_since(cond.get("lastTransitionTime"), now)
    if elapsed is None:
        elapsed = seconds_since((pod.get("metadata") or {}).get("creationTimestamp"), now)
    return max(elapsed or 0.0, 0.0)


def _is_unschedulable(status: Mapping[str, Any]) -> bool:
    cond = _condition(status, "PodScheduled")
    return cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def unschedulable_message(pod: Mapping[str, Any]) -> str:
    """The scheduler's explanation (e.g. ``0/3 nodes are available: 3 Insufficient cpu.``)."""
    return one_line(_condition(pod.get("status") or {}, "PodScheduled").get("message"))


def classify_pod(
    pod: Mapping[str, Any],
    *,
    now: datetime,
    new_rs: Optional[str],
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    memory: Memory = NO_MEMORY,
    replicaset: Optional[str] = None,
) -> PodInfo:
    """Describe one pod as a "Pod details" row and decide whether it alone dooms the rollout.

    ``new_rs`` names the rollout's new ReplicaSet: only its pods, and only those not already
    terminating, can be ``failing``. ``replicaset`` overrides the owner read from
    ``ownerReferences`` (the caller may have matched the pod by its pod-template-hash label).
    ``tolerance`` is how much trouble a pod may have; ``memory`` what earlier updates showed
    (failed pulls, since when a trouble lasts).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    name = meta.get("name") or "<unnamed>"
    owner = replicaset if replicaset is not None else pod_owner_replicaset(pod)
    is_new = new_rs is not None and owner == new_rs
    terminating = pod_is_terminating(pod)

    culprit = _find_culprit(spec, status)
    shown = culprit.status
    if culprit.status is None:
        shown = _pod_level_status(pod)
    if terminating:
        shown = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"

    statuses = status.get("containerStatuses") or []
    found = None
    if is_new and not terminating:
        found = _assess(pod, culprit, now, tolerance, memory)
    doomed = found is not None and found.judgement.doomed

    return PodInfo(
        name=name,
        ready_containers=sum(1 for cs in statuses if cs.get("ready")),
        total_containers=len(spec.get("containers") or []) or len(statuses),
        status=shown or "Unknown",
        restarts=culprit.pod_restarts,
        age_seconds=seconds_since(meta.get("creationTimestamp"), now),
        node=spec.get("nodeName") or None,
        ready=pod_is_ready(pod),
        failing=doomed,
        container=culprit.container,
        message=culprit.message or _pod_level_message(pod) or None,
        last_termination=culprit.last_termination,
        replicaset=owner,
        is_new=is_new,
        failure=found.sentence if found is not None and doomed else None,
        failure_kind=found.kind if found is not None and doomed else None,
        trouble=found.judgement.rule.kind if found is not None else None,
        doom=found.judgement.rule.doom.value if found is not None else None,
        tolerance=found.judgement.progress or None if found is not None and not doomed else None,
        trouble_key=found.key if found is not None else None,
        failed_pulls=memory.failed_pulls(name),
        last_exit_age=seconds_since(culprit.last_finished, now),
        seen=tuple(memory.seen.get(name, ())),
    )


def failure_rank(info: PodInfo) -> int:
    """Sort key among failing pods: container errors first, then Failed, then Unschedulable."""
    return _FAILURE_RANK.get(info.failure_kind or "", 0)


@dataclass(frozen=True)
class _Culprit:
    """The container that explains the pod's state, as `kubectl get pods` would pick it."""

    status: Optional[str] = None  # kubelet-style status it implies (None: decide at pod level)
    container: Optional[str] = None
    init: bool = False
    waiting_reason: Optional[str] = None
    message: Optional[str] = None
    last_termination: Optional[str] = None
    last_reason: Optional[str] = None
    last_exit_code: Optional[int] = None
    last_message: Optional[str] = None  # the last termination's message (e.g. StartError's)
    last_finished: Optional[str] = None  # when it last exited (RFC 3339)
    down: bool = False  # stopped after running: CrashLoopBackOff, or terminated (restarting)
    restarts: int = 0  # this container's restarts
    pod_restarts: int = 0  # the RESTARTS column


def _find_culprit(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Culprit:
    """Pick the container that explains the pod: a stuck init container, else the worst one."""
    init_statuses = status.get("initContainerStatuses") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    initialized = _condition(status, "Initialized").get("status") == "True"
    for index, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        if terminated and terminated.get("exitCode") == 0:
            continue
        sidecar = (init_specs.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
        if sidecar and (cs.get("started") or state.get("running")):
            continue
        if initialized:
            break
        waiting = state.get("waiting") or {}
        if terminated:
            label = terminated.get("reason") or _exit_label(terminated)
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            label = waiting["reason"]
        else:
            label = f"{index}/{len(init_specs) or len(init_statuses)}"
        return _container_culprit(
            cs, f"Init:{label}", init=True, pod_restarts=_restarts(init_statuses)
        )

    # Sidecars (init containers with restartPolicy Always) run beside the app once the pod is
    # initialized, so a crash-looping sidecar is judged like any other container.
    sidecars = [
        cs
        for cs in init_statuses
        if (init_specs.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
    ]
    regular = status.get("containerStatuses") or []
    pod_restarts = _restarts(regular)
    best: Optional[tuple[int, dict, Optional[str]]] = None
    for cs in [*regular, *sidecars]:
        rank, label = _container_rank(cs)
        if best is None or rank < best[0]:
            best = (rank, cs, label)
    if best is None or best[0] >= 5:
        return _Culprit(pod_restarts=pod_restarts)
    return _container_culprit(best[1], best[2], init=False, pod_restarts=pod_restarts)


def _container_rank(cs: Mapping[str, Any]) -> tuple[int, Optional[str]]:
    """How much a container explains about its pod (lower: more) and the status it implies."""
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    if waiting.get("reason") in TROUBLE_WAITING_REASONS:
        return 0, waiting["reason"]
    if terminated and terminated.get("exitCode") not in (0, None):
        return 1, terminated.get("reason") or _exit_label(terminated)
    if waiting.get("reason"):
        return 2, waiting["reason"]
    if terminated:
        return 3, terminated.get("reason") or _exit_label(terminated)
    if not cs.get("ready"):
        return 4, None  # running but not ready: names the container, pod decides the status
    if (cs.get("lastState") or {}).get("terminated"):
        return 4, None
    return 5, None


def _container_culprit(
    cs: Mapping[str, Any], shown: Optional[str], *, init: bool, pod_restarts: int
) -> _Culprit:
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = terminated or (cs.get("lastState") or {}).get("terminated") or {}
    message = waiting.get("message") or terminated.get("message")
    exited_badly = terminated and (not init or terminated.get("exitCode") != 0)
    return _Culprit(
        status=shown,
        container=cs.get("name"),
        init=init,
        waiting_reason=waiting.get("reason"),
        message=one_line(message, limit=1000) or None,
        last_termination=_termination_label(last) if last else None,
        last_reason=last.get("reason") if last else None,
        last_exit_code=last.get("exitCode") if last else None,
        last_message=one_line(last.get("message")) or None if last else None,
        last_finished=last.get("finishedAt") if last else None,
        down=bool(exited_badly) or waiting.get("reason") == "CrashLoopBackOff",
        restarts=int(cs.get("restartCount") or 0),
        pod_restarts=pod_restarts,
    )


def _pod_level_status(pod: Mapping[str, Any]) -> str:
    """The status when no container explains it: phase, pod reason, or Unschedulable."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if status.get("reason"):
        return status["reason"]
    if phase == "Succeeded":
        return "Completed"
    if phase == "Pending" and _is_unschedulable(status):
        return "Unschedulable"
    return phase


def _pod_level_message(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    if status.get("message"):
        return one_line(status["message"])
    return unschedulable_message(pod)


@dataclass(frozen=True)
class _Assessment:
    """The trouble a pod shows, judged: the row, doomed or not, and how to say it."""

    judgement: Judgement
    kind: str  # failure_kind: the reason shown (CrashLoopBackOff, ImagePullBackOff, PodFailed)
    sentence: str
    key: Optional[str] = None  # for time-based rows: what Memory.since is keyed by


def _assess(
    pod: Mapping[str, Any],
    culprit: _Culprit,
    now: datetime,
    tolerance: Tolerance,
    memory: Memory,
) -> Optional[_Assessment]:
    """What trouble this pod shows, if any, and whether it dooms the rollout (the table)."""
    name = (pod.get("metadata") or {}).get("name") or "<unnamed>"
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        rule = _row(Where.POD_FAILED, status.get("reason"), status.get("message"))
        why = ": ".join(p for p in (status.get("reason"), one_line(status.get("message"))) if p)
        if not why and culprit.container and culprit.last_termination:
            why = f"container {culprit.container} {culprit.last_termination}"
        sentence = f"pod {name} failed" + (f": {why}" if why else "")
        return _Assessment(judge(rule, Evidence(), tolerance), "PodFailed", sentence)
    elapsed = unschedulable_for(pod, now)
    if elapsed is not None:
        rule = _row(Where.UNSCHEDULABLE, "Unschedulable")
        message = unschedulable_message(pod)
        sentence = f"pod {name} has been unschedulable for {format_age(elapsed)}"
        sentence += f": {message}" if message else ""
        verdict = judge(rule, Evidence(seconds=elapsed), tolerance)
        return _Assessment(verdict, "Unschedulable", sentence)
    if culprit.container is None:
        return None
    where = f"{'init container' if culprit.init else 'container'} {culprit.container}"
    if culprit.down:
        return _assess_exit(name, where, culprit, tolerance)
    reason = culprit.waiting_reason
    message = culprit.message or ""
    if reason in PULL_REASONS and ": ErrImagePull: " not in message and reason != "ErrImagePull":
        message = memory.pull_error(name, culprit.container) or message  # an older kubelet
    rule = rule_for(Where.WAITING, reason, message)
    if rule is None:  # ContainerCreating, PodInitializing, running: no trouble
        return None
    key = f"{name}/{culprit.container}/{rule.kind}" if rule.doom is Doom.AFTER_SECONDS else None
    evidence = Evidence(
        crashes=culprit.restarts + 1,
        failed_pulls=max(memory.failed_pulls(name, culprit.container), 1),
        seconds=memory.lasted(key, now) if key else 0.0,
    )
    verdict = judge(rule, evidence, tolerance)
    detail = culprit.message
    sentence = f"pod {name} ({where}) is in {reason}" + (f": {detail}" if detail else "")
    if verdict.progress:
        sentence += f" ({verdict.progress})"
    return _Assessment(verdict, reason or rule.kind, sentence, key)


def _row(where: Where, reason: Optional[str], message: Optional[str] = None) -> Rule:
    """The row for trouble whose rows end with a catch-all (exits, Failed pods, scheduling)."""
    rule = rule_for(where, reason, message)
    if rule is None:  # pragma: no cover - the table guarantees a catch-all row here
        raise LookupError(f"no trouble row for {where.value} {reason}")
    return rule


def _assess_exit(name: str, where: str, culprit: _Culprit, tolerance: Tolerance) -> _Assessment:
    """A container that stopped: judged by how it exited and how often (its restarts so far,
    plus the exit it is down from now)."""
    rule = _row(Where.EXITED, culprit.last_reason, culprit.last_message)
    verdict = judge(rule, Evidence(crashes=culprit.restarts + 1), tolerance)
    allowed = tolerance.restarts
    tolerated = f" ({allowed} tolerated)" if rule.doom is Doom.AFTER_RESTARTS else ""
    if culprit.waiting_reason:
        state, kind = f"is in {culprit.waiting_reason}", culprit.waiting_reason
    else:
        state, kind = "exited", culprit.last_reason or "Error"
    detail = _crash_detail(culprit) + tolerated
    if rule.doom is Doom.NOW and culprit.last_message:
        detail = culprit.last_message
    return _Assessment(verdict, kind, f"pod {name} ({where}) {state}: {detail}")


def _crash_detail(culprit: _Culprit) -> str:
    """'exit code 1, 3 restarts' or 'OOMKilled (exit code 137), 5 restarts'."""
    parts = []
    if culprit.last_exit_code is not None:
        if culprit.last_reason in (None, "", "Error", "Completed"):
            parts.append(f"exit code {culprit.last_exit_code}")
        else:
            parts.append(f"{culprit.last_reason} (exit code {culprit.last_exit_code})")
    parts.append(f"{culprit.restarts} restart{'' if culprit.restarts == 1 else 's'}")
    return ", ".join(parts)


def _termination_label(terminated: Mapping[str, Any]) -> str:
    """'Error (exit code 1)', 'OOMKilled (exit code 137)', 'Error (signal 9)'."""
    reason = terminated.get("reason") or "Error"
    if terminated.get("signal"):
        return f"{reason} (signal {terminated['signal']})"
    return f"{reason} (exit code {terminated.get('exitCode', '?')})"


def _exit_label(terminated: Mapping[str, Any]) -> str:
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', '?')}"


def _restarts(statuses: Iterable[Mapping[str, Any]]) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in statuses)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return {}


# --------------------------------------------------------------------------- recovery

_TIMES = {1: "once", 2: "twice"}
_SHORT_PULL_ERROR = re.compile(
    r"\b(\d{3} [A-Z][A-Za-z ]*[a-z])|(i/o timeout|connection reset by peer|connection refused"
    r"|no such host|toomanyrequests|deadline exceeded)",
)


def describe_recovery(pod: PodInfo) -> Optional[str]:
    """``pod x restarted once (exit code 1, 12s ago) and recovered``, for a new pod that had
    trouble and is ready now; None for a pod without a story (or not ready)."""
    if not pod.ready:
        return None
    parts = []
    if pod.restarts:
        times = _TIMES.get(pod.restarts, f"{pod.restarts} times")
        how = [pod.last_termination or ""]
        if pod.last_exit_age is not None:
            how.append(f"{format_age(pod.last_exit_age)} ago")
        detail = ", ".join(h for h in how if h)
        parts.append(f"restarted {times}" + (f" ({detail})" if detail else ""))
    if pod.failed_pulls:
        noun = "image pull" if pod.failed_pulls == 1 else "image pulls"
        error = next((_short_pull_error(s) for s in pod.seen if s.startswith("ErrImagePull")), "")
        parts.append(f"had {pod.failed_pulls} failed {noun}" + (f" ({error})" if error else ""))
    for note in pod.seen:
        reason, _, message = note.partition(": ")
        if reason in ("ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"):
            continue
        parts.append(f"was in {reason}" + (f" ({message})" if message else ""))
    if not parts:
        return None
    return f"pod {pod.name} {' and '.join(parts)} and recovered"


def _short_pull_error(note: str) -> str:
    found = _SHORT_PULL_ERROR.search(note)
    return (found.group(1) or found.group(2)) if found else ""


# --------------------------------------------------------------------------- events


def summarize_events(
    events: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    involved: set[tuple[str, str]],
) -> list[EventLine]:
    """Warning events about the given (kind, name) objects, deduplicated and newest first.

    Accepts both core/v1 Events (involvedObject, count, lastTimestamp) and events.k8s.io/v1
    Events (regarding, note, series). Repeats of the same (object, reason, message) are summed
    into one line that carries the newest age.
    """
    merged: dict[tuple[str, str, str, str], EventLine] = {}
    for event in events:
        if event.get("type") != "Warning":
            continue
        obj = event.get("involvedObject") or event.get("regarding") or {}
        kind, name = obj.get("kind") or "", obj.get("name") or ""
        if (kind, name) not in involved:
            continue
        reason = one_line(event.get("reason"))
        message = one_line(event.get("message") or event.get("note"))
        key = (kind, name, reason, message)
        age = _event_age(event, now)
        count = _event_count(event)
        seen = merged.get(key)
        if seen is not None:
            count += seen.count
            age = _newest(age, seen.age_seconds)
        merged[key] = EventLine(kind, name, reason, message, count, age)
    return sorted(merged.values(), key=_event_sort_key)


def _event_sort_key(line: EventLine) -> tuple[float, str, str, str]:
    age = line.age_seconds if line.age_seconds is not None else float("inf")
    return (age, line.object_name, line.reason, line.message)


def _event_age(event: Mapping[str, Any], now: datetime) -> Optional[float]:
    series = event.get("series") or {}
    for stamp in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        event.get("deprecatedLastTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        age = seconds_since(stamp, now)
        if age is not None:
            return max(age, 0.0)
    return None


def _event_count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    for value in (series.get("count"), event.get("count"), event.get("deprecatedCount")):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _newest(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


# --------------------------------------------------------------------------- logs


def choose_log_targets(pods: Sequence[PodInfo]) -> list[LogTarget]:
    """Containers worth showing logs for: at most one pod per distinct failure reason.

    Failing pods come first, then pods that are not ready but whose container has already run
    and crashed (useful on timeout). A container that never started (image pull, missing
    secret, still creating) has no log, so it is skipped unless an earlier instance crashed,
    whose log ``previous=True`` asks for.
    """
    candidates = [p for p in pods if p.failing] + [
        p for p in pods if not p.failing and not p.ready and p.last_termination
    ]
    targets: list[LogTarget] = []
    seen_reasons: set[str] = set()
    for info in candidates:
        if info.container is None or info.status == "Terminating":
            continue
        reason = info.failure_kind or info.status
        if reason in seen_reasons:
            continue
        bare_status = (
            info.status.split(":", 1)[1] if info.status.startswith("Init:") else info.status
        )
        previous = (
            info.last_termination is not None
            and info.restarts > 0
            and not _is_terminated_status(bare_status)
        )
        if not previous and bare_status in _NEVER_RAN:
            continue
        seen_reasons.add(reason)
        targets.append(LogTarget(info.name, info.container, previous))
    return targets


def _is_terminated_status(status: str) -> bool:
    """True when the status names a container that is stopped now (its current log is the crash)."""
    return status in _TERMINATED_STATUSES or status.startswith(("ExitCode:", "Signal:"))
