"""Did the restarted pods stay healthy? The settle window after a complete rollout, judged.

``kubectl rollout status`` is satisfied the moment every new pod is ready once; a restart
that picked up a broken Secret can pass readiness and crash a minute later (kubernetes#31319).
With ``--settle 30s`` the plugin keeps watching the new pods that long, and a pod that
restarts (its container crashed: restartCount rose, or it exited and waits for its restart)
or stops being ready inside the window fails the restart, naming the pod and what happened.

Pure: the pods are the rollout rule's own ``PodInfo`` rows (``rollout.compute_rollout_state``)
at completion and now; the kinds and their why are rows of the trouble table
(``trouble.py``, where ``SETTLING``). Pods that are being deleted (a scale-down, a drain) or
are gone are not judged: leaving is not failing. The shell (``verification.py``) feeds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

from kubectl_restart_backend.diagnosis import PodInfo, format_age
from kubectl_restart_backend.trouble import RESTARTED, UNREADY, Where, rule_for

_NOT_JUDGED = ("Terminating", "Unknown")  # being deleted, or its node is lost


@dataclass(frozen=True)
class Unsettled:
    """The first thing that broke the window: which pod, the trouble row, the sentence."""

    pod: str
    kind: str  # RestartedWhileSettling | ReadinessLost
    sentence: str


def judge_settle(
    at_completion: Sequence[PodInfo],
    now: Sequence[PodInfo],
    *,
    seconds_after: float,
    window: float,
) -> Optional[Unsettled]:
    """The pod that did not stay healthy since the rollout completed (``seconds_after`` ago,
    in a window of ``window`` seconds), or None. A crash is named before a readiness loss,
    then pods by name."""
    current = {pod.name: pod for pod in now}
    found: list[tuple[int, str, Unsettled]] = []
    when = f"{format_age(seconds_after)} after the rollout completed, inside the " + (
        f"{format_age(window)} settle window"
    )
    for before in at_completion:
        pod = current.get(before.name)
        if not before.is_new or pod is None or pod.status in _NOT_JUDGED:
            continue
        if _crashed(before, pod):
            what = pod.last_termination or pod.status
            verb = "restarted" if pod.restarts > before.restarts else "exited"
            where = f" (container {pod.container})" if pod.container else ""
            sentence = f"pod {pod.name}{where} {verb} {when}: {what}"
            found.append((0, pod.name, Unsettled(pod.name, _kind(RESTARTED), sentence)))
        elif before.ready and not pod.ready:
            what = pod.status + (f": {pod.message}" if pod.message else "")
            sentence = f"pod {pod.name} stopped being ready {when} ({what})"
            found.append((1, pod.name, Unsettled(pod.name, _kind(UNREADY), sentence)))
    return min(found)[2] if found else None


def describe_settling(left: float, ready: int, replicas: int) -> str:
    """The progress line while the window runs: that it settles, how long is left."""
    return f"Settling: {left:.0f}s left, {ready}/{replicas} ready, no restarts so far"


def mark_unsettled(pods: Sequence[PodInfo], unsettled: Unsettled) -> tuple[PodInfo, ...]:
    """The pods with the one that broke the window marked failing (its sentence, its kind),
    first: the report's pod table and the log excerpts then explain it like any failure."""
    marked = [
        dataclasses.replace(
            pod, failing=True, failure=unsettled.sentence, failure_kind=unsettled.kind
        )
        for pod in pods
        if pod.name == unsettled.pod
    ]
    return tuple(marked + [pod for pod in pods if pod.name != unsettled.pod])


def _crashed(before: PodInfo, now: PodInfo) -> bool:
    """Its container restarted, or exited and is not running yet (the restart to come)."""
    if now.restarts > before.restarts:
        return True
    return not now.ready and now.status != "Running" and now.last_termination is not None


def _kind(reason: str) -> str:
    """The trouble table's name for what the window saw (its SETTLING rows)."""
    rule = rule_for(Where.SETTLING, reason)
    assert rule is not None, f"no SETTLING row for {reason!r}"
    return rule.kind
