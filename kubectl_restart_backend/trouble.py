"""Which pod trouble dooms a rollout, and when: the classification, as data.

A restart is judged by the pods of its new ReplicaSet, and real clusters are full of trouble
that clears up by itself: a dependency still starting makes the first run crash, a registry
answers 503 once, an operator creates the Secret a few seconds after the pod, a readiness
probe fails for the first 20 s. Calling those failures (and rolling back a healthy restart)
is the worst mistake the plugin can make; waiting ten minutes for the progress deadline when
the image does not exist is the second worst.

So every kind of trouble is a row of ``TROUBLE`` (first match wins), in the spirit of
kstatus's and krane's rule tables: what it is about (a waiting container, a container that
exited, a Failed pod, the scheduler, the ReplicaSet), the reasons and message pattern it
matches, and its doom:

- ``NOW``: doomed at first sight (the registry says the image does not exist);
- ``AFTER_RESTARTS``: doomed when the container is down again after using up the restarts a
  pod may have (``Tolerance.restarts``);
- ``AFTER_PULLS``: doomed when more pulls failed than ``Tolerance.pull_failures``;
- ``AFTER_SECONDS``: doomed once it has lasted a grace (``config_grace`` or
  ``unschedulable_grace``);
- ``RECOVERING``: never doomed on its own; the timeout or the progress deadline speak for it.

Each row carries the one-line why, which README and ``--help`` print as they are.

Counting failed pulls needs memory: a pod's status says what the kubelet is doing now, not
how often a pull failed. ``Memory`` is a value folded over the pod updates the watch
delivers (``observe_pod``) and over the verdicts (``remember_troubles``: since when a
time-based trouble has lasted); it never decides anything itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Mapping, Optional


class Doom(str, Enum):
    """When a trouble dooms the rollout."""

    NOW = "now"
    AFTER_RESTARTS = "after-restarts"
    AFTER_PULLS = "after-pulls"
    AFTER_SECONDS = "after-seconds"
    RECOVERING = "recovering"


class Where(str, Enum):
    """What a row is about, i.e. where its reason comes from."""

    WAITING = "waiting"  # a container's state.waiting.reason (and message)
    EXITED = "exited"  # a container that stopped: its termination reason (and message)
    POD_FAILED = "pod-failed"  # status.phase Failed: status.reason
    UNSCHEDULABLE = "unschedulable"  # PodScheduled False, reason Unschedulable
    NOT_READY = "not-ready"  # running, readiness not passing
    REPLICA_FAILURE = "replica-failure"  # the ReplicaFailure condition's message
    DEPLOYMENT = "deployment"  # the Deployment controller's own verdict
    SETTLING = "settling"  # after completion, inside the --settle window (settle.py)


@dataclass(frozen=True)
class Tolerance:
    """How much trouble a new pod may have before the restart counts as failed.

    The defaults let ordinary start-up races heal. With the kubelet's schedule (the first
    restart at once, then back-offs of 10 s, 20 s, ... counted from each exit), 2 restarts
    name a container that keeps crashing at its third exit: about 10 s plus three runs after
    it first started. With the image back-off (10 s, 20 s, ...), 2 failed pulls name a
    registry that keeps failing at the third failed pull, about 30 s after the first.
    """

    restarts: int = 2
    pull_failures: int = 2
    config_grace: float = 30.0
    unschedulable_grace: float = 30.0

    def fail_fast(self) -> Tolerance:
        """The first sign of trouble fails the restart (the unschedulable grace stays: a
        brief FailedScheduling is part of every busy cluster's rollouts)."""
        return replace(self, restarts=0, pull_failures=0, config_grace=0.0)

    def grace(self, name: str) -> float:
        return self.unschedulable_grace if name == "unschedulable" else self.config_grace


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Rule:
    """One row of the classification."""

    kind: str  # CamelCase name of the trouble (the JSON's and README's word for it)
    where: Where
    reasons: frozenset[str]  # reasons it matches; empty: any
    pattern: Optional[re.Pattern[str]]  # searched in the message; None: any message
    doom: Doom
    why: str
    shows: str = ""  # what the message pattern looks for, in words (README, --help)
    grace: str = "config"  # AFTER_SECONDS: which grace ("config" or "unschedulable")


def _rule(
    kind: str,
    where: Where,
    reasons: Iterable[str],
    pattern: Optional[str],
    doom: Doom,
    why: str,
    shows: str = "",
    grace: str = "config",
) -> Rule:
    compiled = re.compile(pattern, re.IGNORECASE) if pattern else None
    return Rule(kind, where, frozenset(reasons), compiled, doom, why, shows, grace)


PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "RegistryUnavailable"})
# What settle.py sees a pod do inside the settle window (the reasons of the SETTLING rows).
RESTARTED = "restartCount rose"
UNREADY = "Ready True -> False (not terminating)"

# What registries answer, as containerd/CRI-O report it in ErrImagePull (and, since kubelet
# 1.33, after "ErrImagePull: " in the ImagePullBackOff message).
_NOT_FOUND = (
    r": not found\b|manifest unknown|name unknown|\b404 Not Found\b|repository .*not found"
    r"|code = NotFound"
)
_DENIED = (
    r"unauthorized|\b401\b|\b403 Forbidden\b|access (is )?denied|pull access denied"
    r"|requested access to the resource is denied|authorization failed|authentication required"
    r"|no basic auth credentials|insufficient_scope"
)
_TRANSIENT = (
    r"\b5\d\d [A-Z]|service unavailable|bad gateway|gateway time-?out|internal server error"
    r"|timeout|timed out|deadline exceeded|connection reset|connection refused|broken pipe"
    r"|\bEOF\b|no such host|temporary failure|TLS handshake|\b429\b|toomanyrequests"
    r"|too many requests|rate limit"
)
_MISSING_CONFIG = (
    r'\b(secret|configmap) "[^"]*" not found|couldn\'t find key \S+ in (Secret|ConfigMap)'
)
_URLS_AND_QUOTES = re.compile(r'"[^"]*"|\bhttps?://\S+')
_CACHE_SYNC = r"failed to sync \S+ cache"
_RUN_AS_ROOT = r"runAsNonRoot and image will run as root|non-numeric user|runAsNonRoot"
_NO_COMMAND = (
    r"executable file not found|no such file or directory|no command specified"
    r"|permission denied|not a directory"
)
_DISPLACED = (
    "Evicted",
    "Preempting",
    "NodeShutdown",
    "Terminated",
    "Shutdown",
    "NodeAffinity",
    "NodeLost",
    "UnexpectedAdmissionError",
    "OutOfcpu",
    "OutOfmemory",
    "OutOfpods",
    "OutOfephemeral-storage",
)

TROUBLE: tuple[Rule, ...] = (
    # -- images
    _rule(
        "InvalidImageName", Where.WAITING, ["InvalidImageName"], None, Doom.NOW,
        "the image reference cannot be parsed; no retry changes it",
    ),
    _rule(
        "ImageNeverPulled", Where.WAITING, ["ErrImageNeverPull"], None, Doom.NOW,
        "imagePullPolicy is Never and the node does not have the image",
    ),
    _rule(
        "ImageSignatureRefused", Where.WAITING, ["SignatureValidationFailed"], None, Doom.NOW,
        "the image's signature is refused; pulling again gets the same image",
    ),
    _rule(
        "ImageNotFound", Where.WAITING, PULL_REASONS, _NOT_FOUND, Doom.NOW,
        "the registry says the image or tag does not exist; retrying will not create it",
        "not found, manifest unknown, 404",
    ),
    _rule(
        "ImagePullDenied", Where.WAITING, PULL_REASONS, _DENIED, Doom.NOW,
        "the registry refuses the credentials; the kubelet retries with the same ones",
        "unauthorized, denied, 401, 403",
    ),
    _rule(
        "RegistryHiccup", Where.WAITING, PULL_REASONS, _TRANSIENT, Doom.AFTER_PULLS,
        "5xx, timeouts, resets and rate limits usually pass by the kubelet's next pull",
        "5xx, timeout, connection reset/refused, 429, toomanyrequests",
    ),
    _rule(
        "ImagePullFailed", Where.WAITING, PULL_REASONS, None, Doom.AFTER_PULLS,
        "an answer not recognised is judged like a hiccup: by the number of failed pulls",
        "any other answer",
    ),
    # -- creating the container
    _rule(
        "ConfigCacheSyncing", Where.WAITING, ["CreateContainerConfigError"], _CACHE_SYNC,
        Doom.RECOVERING,
        "the kubelet's Secret/ConfigMap cache is still syncing; it clears by itself",
        "failed to sync ... cache",
    ),
    _rule(
        "MissingConfig", Where.WAITING, ["CreateContainerConfigError"], _MISSING_CONFIG,
        Doom.AFTER_SECONDS,
        "a Secret or ConfigMap is often created moments after the pod (an operator, a CI step)",
        'secret/configmap "x" not found, couldn\'t find key',
    ),
    _rule(
        "RunAsRootRefused", Where.WAITING, ["CreateContainerConfigError"], _RUN_AS_ROOT,
        Doom.NOW,
        "runAsNonRoot forbids an image that runs as root; only a new image or template helps",
        "runAsNonRoot",
    ),
    _rule(
        "ContainerConfigError", Where.WAITING, ["CreateContainerConfigError"], None,
        Doom.AFTER_SECONDS,
        "other configuration errors are given the same grace as a missing Secret",
        "any other message",
    ),
    _rule(
        "CommandNotFound", Where.WAITING, ["CreateContainerError", "RunContainerError"],
        _NO_COMMAND, Doom.NOW,
        "the container's command cannot run in this image; every retry fails the same way",
        "executable file not found, no such file, permission denied",
    ),
    _rule(
        "CreateContainerError", Where.WAITING, ["CreateContainerError"], None,
        Doom.AFTER_SECONDS,
        "often a runtime race (a name still reserved, a deadline) that the next try clears",
    ),
    _rule(
        "RunContainerError", Where.WAITING, ["RunContainerError"], None, Doom.AFTER_RESTARTS,
        "the runtime could not start it; each retry counts as a restart",
    ),
    # -- containers that exited (CrashLoopBackOff, or terminated and not restarted yet)
    _rule(
        "CommandNotFound", Where.EXITED, ["StartError", "ContainerCannotRun"], _NO_COMMAND,
        Doom.NOW,
        "the container's command cannot run in this image; every retry fails the same way",
        "executable file not found, no such file, permission denied",
    ),
    _rule(
        "OOMKilled", Where.EXITED, ["OOMKilled"], None, Doom.AFTER_RESTARTS,
        "a start-up memory spike can pass; killed again and again, the limit is too low",
    ),
    _rule(
        "CrashLoop", Where.EXITED, [], None, Doom.AFTER_RESTARTS,
        "first runs crash while a dependency starts; crashing past the tolerance is no race",
    ),
    # -- pods
    _rule(
        "PodDisplaced", Where.POD_FAILED, _DISPLACED, None, Doom.RECOVERING,
        "pushed out by its node or the scheduler, not broken: the ReplicaSet replaces it",
    ),
    _rule(
        "PodFailed", Where.POD_FAILED, [], None, Doom.NOW,
        "a Deployment's pod that failed never runs again",
    ),
    _rule(
        "Unschedulable", Where.UNSCHEDULABLE, [], None, Doom.AFTER_SECONDS,
        "room may come (old pods leaving, the cluster autoscaler); past the grace it will not",
        grace="unschedulable",
    ),
    _rule(
        "NotReady", Where.NOT_READY, [], None, Doom.RECOVERING,
        "warming up is normal; the timeout (or the progress deadline) says when it is too slow",
    ),
    # -- the ReplicaSet cannot create pods
    _rule(
        "QuotaExceeded", Where.REPLICA_FAILURE, [], r"exceeded quota", Doom.AFTER_SECONDS,
        "old pods free quota as they go; counted only while none of them is terminating",
        "exceeded quota",
    ),
    _rule(
        "PodRefused", Where.REPLICA_FAILURE, [],
        r"violates PodSecurity|is invalid:|denied the request", Doom.NOW,
        "admission refuses the pod template itself: every new pod is refused alike",
        "violates PodSecurity, is invalid, denied the request",
    ),
    _rule(
        "ReplicaFailure", Where.REPLICA_FAILURE, [], None, Doom.AFTER_SECONDS,
        "a webhook or a service account can be late; past the grace it is not",
    ),
    # -- the Deployment controller
    _rule(
        "ProgressDeadlineExceeded", Where.DEPLOYMENT, ["ProgressDeadlineExceeded"], None,
        Doom.NOW,
        "the Deployment controller itself gave up (progressDeadlineSeconds)",
    ),
    # -- after completion, while the user asked it to stay healthy (--settle)
    _rule(
        "RestartedWhileSettling", Where.SETTLING, [RESTARTED], None, Doom.NOW,
        "a restart after every pod was ready is the crash rollout status never sees",
    ),
    _rule(
        "ReadinessLost", Where.SETTLING, [UNREADY], None, Doom.NOW,
        "a pod that stops being ready stops getting requests: it did not stay healthy",
    ),
)  # fmt: skip


def rule_for(where: Where, reason: Optional[str], message: Optional[str] = None) -> Optional[Rule]:
    """The first row about ``where`` matching ``reason`` and ``message``; None when no row
    applies (e.g. a waiting reason such as ContainerCreating, which is no trouble at all).

    A pull error names the image and the registry URL; a repository called ``unauthorized``
    or ``timeout`` must not decide the verdict, so quoted references and URLs are left out
    before a pull error is matched.
    """
    if reason in PULL_REASONS and message:
        message = _URLS_AND_QUOTES.sub("-", message)
    for rule in TROUBLE:
        if rule.where is not where:
            continue
        if rule.reasons and (reason or "") not in rule.reasons:
            continue
        if rule.pattern is not None and not rule.pattern.search(message or ""):
            continue
        return rule
    return None


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Evidence:
    """What is known of one trouble: how often the container stopped (restarts so far plus
    the exit it is down from now), how many of its pulls failed, how long it has lasted."""

    crashes: int = 0
    failed_pulls: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Judgement:
    """A rule applied to its evidence: doomed or not, and how much tolerance is left."""

    rule: Rule
    doomed: bool
    progress: str  # e.g. "3 crashes, 2 restarts tolerated"; "" for NOW and RECOVERING


def judge(rule: Rule, evidence: Evidence, tolerance: Tolerance) -> Judgement:
    """Doomed or not, by the row's doom and the user's tolerance."""
    if rule.doom is Doom.NOW:
        return Judgement(rule, True, "")
    if rule.doom is Doom.AFTER_RESTARTS:
        allowed = tolerance.restarts
        text = f"{_count(evidence.crashes, 'exit')}, {_count(allowed, 'restart')} tolerated"
        return Judgement(rule, evidence.crashes > allowed, text)
    if rule.doom is Doom.AFTER_PULLS:
        allowed = tolerance.pull_failures
        text = f"{_count(evidence.failed_pulls, 'failed pull')}, {allowed} tolerated"
        return Judgement(rule, evidence.failed_pulls > allowed, text)
    if rule.doom is Doom.AFTER_SECONDS:
        grace = tolerance.grace(rule.grace)
        text = f"for {evidence.seconds:.0f}s, {grace:.0f}s tolerated"
        return Judgement(rule, evidence.seconds >= grace, text)
    return Judgement(rule, False, "")


def waiting_words(kind: str, tolerance: Tolerance) -> str:
    """How long the trouble ``kind`` is waited out, for the note said when a pod first
    shows it: ``up to 2 restarts are tolerated (--max-restarts)``."""
    rule = next((r for r in TROUBLE if r.kind == kind), None)
    if rule is None or rule.doom in (Doom.NOW, Doom.RECOVERING):
        return ""
    if rule.doom is Doom.AFTER_RESTARTS:
        return f"up to {_count(tolerance.restarts, 'restart')} tolerated (--max-restarts)"
    if rule.doom is Doom.AFTER_PULLS:
        allowed = _count(tolerance.pull_failures, "failed pull")
        return f"up to {allowed} tolerated (--max-pull-failures)"
    grace = tolerance.grace(rule.grace)
    return f"tolerated for {grace:.0f}s (--{rule.grace}-grace)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """What earlier pod updates and verdicts taught: failed pulls per container, the last
    pull error seen, since when time-based troubles last, and what each pod went through."""

    pulls: Mapping[str, int] = field(default_factory=dict)  # "pod/container" -> failed pulls
    pull_errors: Mapping[str, str] = field(default_factory=dict)  # "pod/container" -> message
    waiting: Mapping[str, str] = field(default_factory=dict)  # "pod/container" -> last reason
    since: Mapping[str, float] = field(default_factory=dict)  # trouble key -> epoch seconds
    seen: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # pod -> troubles seen

    def failed_pulls(self, pod: str, container: Optional[str] = None) -> int:
        """Failed pulls of one container, or of all the pod's containers."""
        if container is not None:
            return self.pulls.get(f"{pod}/{container}", 0)
        prefix = f"{pod}/"
        return sum(count for key, count in self.pulls.items() if key.startswith(prefix))

    def pull_error(self, pod: str, container: str) -> Optional[str]:
        return self.pull_errors.get(f"{pod}/{container}")

    def lasted(self, key: str, now: datetime) -> float:
        """Seconds the trouble ``key`` has lasted (0 when it is new)."""
        start = self.since.get(key)
        return 0.0 if start is None else max(0.0, _epoch(now) - start)


NO_MEMORY = Memory()
_MAX_SEEN = 5  # troubles remembered per pod, for the success report


def observe_pod(memory: Memory, pod: Mapping[str, Any]) -> Memory:
    """Fold one pod update into the memory: count a failed pull each time a container goes
    into ErrImagePull (or RegistryUnavailable) from another state, keep the last pull error,
    and note each trouble the pod shows (for "... and recovered" on success).

    A watch may coalesce updates, so a count can only be low, never high: a slower verdict,
    never a false one.
    """
    meta = pod.get("metadata") or {}
    name = meta.get("name") or ""
    status = pod.get("status") or {}
    pulls, errors, waiting = dict(memory.pulls), dict(memory.pull_errors), dict(memory.waiting)
    seen = list(memory.seen.get(name, ()))
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        key = f"{name}/{cs.get('name') or ''}"
        state = (cs.get("state") or {}).get("waiting") or {}
        reason, message = state.get("reason") or "", state.get("message") or ""
        if reason in ("ErrImagePull", "RegistryUnavailable"):
            if waiting.get(key) != reason:
                pulls[key] = pulls.get(key, 0) + 1
            errors[key] = message
        elif reason == "ImagePullBackOff":
            pulls[key] = max(pulls.get(key, 0), 1)  # at least one pull failed before it
            detail = message.partition(": ErrImagePull: ")[2]
            if detail:
                errors[key] = detail
        if reason and rule_for(Where.WAITING, reason, message) is not None:
            note = f"{reason}: {' '.join(message.split())}" if message else reason
            if reason != "ImagePullBackOff" and note not in seen:
                seen.append(note)
        if reason:
            waiting[key] = reason
        else:
            waiting.pop(key, None)
    seen_map = dict(memory.seen)
    if seen:
        seen_map[name] = tuple(seen[:_MAX_SEEN])
    return replace(memory, pulls=pulls, pull_errors=errors, waiting=waiting, seen=seen_map)


def remember_troubles(memory: Memory, keys: Iterable[str], now: datetime) -> Memory:
    """Keep the start time of each time-based trouble present now; forget the others (a
    trouble that went away and came back starts again)."""
    current = set(keys)
    since = {key: start for key, start in memory.since.items() if key in current}
    stamp = _epoch(now)
    for key in current:
        since.setdefault(key, stamp)
    if since == memory.since:
        return memory
    return replace(memory, since=since)


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# --------------------------------------------------------------------------- the table as text


DOOM_WORDS = {
    Doom.NOW: "fails at once",
    Doom.AFTER_RESTARTS: "fails after the tolerated restarts",
    Doom.AFTER_PULLS: "fails after the tolerated failed pulls",
    Doom.AFTER_SECONDS: "fails after the grace",
    Doom.RECOVERING: "never fails on its own",
}

WHERE_WORDS = {
    Where.WAITING: "waiting",
    Where.EXITED: "exited",
    Where.POD_FAILED: "pod Failed",
    Where.UNSCHEDULABLE: "unschedulable",
    Where.NOT_READY: "not ready",
    Where.REPLICA_FAILURE: "ReplicaFailure",
    Where.DEPLOYMENT: "Deployment",
    Where.SETTLING: "settle window",
}


def describe_rule(rule: Rule) -> tuple[str, str, str, str]:
    """(trouble, what it matches, verdict, why), in words, for README and --help."""
    reasons = ", ".join(sorted(rule.reasons)) if rule.reasons else "any reason"
    matches = f"{WHERE_WORDS[rule.where]}: {reasons}"
    if rule.shows:
        matches += f"; message: {rule.shows}"
    verdict = DOOM_WORDS[rule.doom]
    if rule.doom is Doom.AFTER_SECONDS:
        verdict = f"fails after --{rule.grace}-grace"
    return rule.kind, matches, verdict, rule.why


def render_markdown_table() -> str:
    """The README's table (a test keeps README and this table the same)."""
    lines = ["| trouble | matches | verdict | why |", "|---|---|---|---|"]
    for rule in TROUBLE:
        kind, matches, verdict, why = describe_rule(rule)
        lines.append(f"| {kind} | {matches} | {verdict} | {why} |")
    return "\n".join(lines)


def render_help_table() -> str:
    """The table in --help: one line per row, the trouble, its verdict and why."""
    lines = [f"  {k}: {verdict}; {why}" for k, _m, verdict, why in map(describe_rule, TROUBLE)]
    return "\n".join(dict.fromkeys(lines))  # a row that repeats for another source: once
