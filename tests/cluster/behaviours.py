"""How a simulated Pod behaves, as data (in the spirit of kwok's Stages).

A `Behaviour` says what the kubelet simulation does with a Pod's containers: start and become
ready (healthy), crash over and over (crash loop, OOMKilled), never get its image, never pass
its readiness probe, or never be scheduled. Timings left as None come from `SimConfig`.

How a Pod gets its behaviour, first match wins:

1. `Simulation.set_behaviour(namespace, deployment, behaviour)`: Pods created afterwards for
   that Deployment.
2. Annotations on the Pod (so on the Deployment's pod template), e.g.::

       sim.restart-backend.dev/behaviour: crashloop     # a name from BEHAVIOURS
       sim.restart-backend.dev/container: migrate       # which container misbehaves
       sim.restart-backend.dev/exit-code: "3"
       sim.restart-backend.dev/crash-log: "FATAL: config file /etc/app.yaml missing"

3. Otherwise healthy.

Independently of the behaviour, two things fail the way a real kubelet fails them:

- an image whose tag is `doesnotexist` (e.g. `nginx:doesnotexist`) can never be pulled
  (ErrImagePull, then ImagePullBackOff);
- an env/envFrom reference to a Secret or ConfigMap (or a key) that does not exist gives
  CreateContainerConfigError (decided in kubelet.py from the store's contents).

To add a behaviour: add a kind constant, a constructor and a BEHAVIOURS entry here, then teach
`kubelet.Kubelet` what the kind does (see `_after_start` and `_on_exit` there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

__all__ = [
    "Behaviour",
    "BEHAVIOURS",
    "ANNOTATION",
    "ANNOTATION_PREFIX",
    "MISSING_IMAGE_TAG",
    "behaviour_from_annotations",
    "image_pull_fails",
    "HEALTHY",
    "CRASH_LOOP",
    "OOM_KILLED",
    "IMAGE_PULL_BACKOFF",
    "NEVER_READY",
    "UNSCHEDULABLE",
]

ANNOTATION_PREFIX = "sim.restart-backend.dev/"
ANNOTATION = ANNOTATION_PREFIX + "behaviour"
MISSING_IMAGE_TAG = "doesnotexist"

HEALTHY = "healthy"
CRASH_LOOP = "crashloop"
OOM_KILLED = "oomkilled"
IMAGE_PULL_BACKOFF = "imagepullbackoff"
NEVER_READY = "neverready"
UNSCHEDULABLE = "unschedulable"

_KINDS = (HEALTHY, CRASH_LOOP, OOM_KILLED, IMAGE_PULL_BACKOFF, NEVER_READY, UNSCHEDULABLE)

_DEFAULT_CRASH_LOG = (
    "Starting application",
    "Loading configuration from /etc/app/config.yaml",
    "FATAL: cannot connect to database at db:5432: connection refused",
)
_DEFAULT_OOM_LOG = (
    "Starting application",
    "Warming cache: loading 2500000 entries",
)


@dataclass(frozen=True)
class Behaviour:
    """What the simulated kubelet does with a Pod. Construct with the class methods."""

    kind: str = HEALTHY
    # The misbehaving container (an app or init container name); None: the first app container.
    container: str | None = None
    # crash loop / OOMKilled
    exit_code: int = 1
    log_lines: tuple[str, ...] | None = None  # what the container prints; None: a default
    run_seconds: float | None = None  # how long a crashing container runs before it exits
    # every kind
    start_delay: float | None = None  # extra time before containers start (a slow start)
    ready_delay: float | None = None  # time from start to passing readiness
    # never ready
    probe_message: str = "HTTP probe failed with statuscode: 503"
    # unschedulable; None: "0/<nodes> nodes are available: <nodes> Insufficient cpu."
    scheduling_message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}; known: {', '.join(_KINDS)}")

    @classmethod
    def healthy(
        cls,
        *,
        start_delay: float | None = None,
        ready_delay: float | None = None,
        log_lines: tuple[str, ...] | None = None,
    ) -> Behaviour:
        """Starts, logs a couple of lines, becomes ready."""
        return cls(HEALTHY, start_delay=start_delay, ready_delay=ready_delay, log_lines=log_lines)

    @classmethod
    def crash_loop(
        cls,
        *,
        exit_code: int = 1,
        log_lines: tuple[str, ...] | None = None,
        container: str | None = None,
        run_seconds: float | None = None,
    ) -> Behaviour:
        """Exits with `exit_code` shortly after each start (reason Error), then
        CrashLoopBackOff; the last log line explains why."""
        return cls(
            CRASH_LOOP,
            container=container,
            exit_code=exit_code,
            log_lines=log_lines,
            run_seconds=run_seconds,
        )

    @classmethod
    def oom_killed(
        cls, *, container: str | None = None, log_lines: tuple[str, ...] | None = None
    ) -> Behaviour:
        """Killed for exceeding its memory limit (reason OOMKilled, exit code 137)."""
        return cls(OOM_KILLED, container=container, exit_code=137, log_lines=log_lines)

    @classmethod
    def image_pull_backoff(cls, *, container: str | None = None) -> Behaviour:
        """Its image can never be pulled (ErrImagePull, then ImagePullBackOff)."""
        return cls(IMAGE_PULL_BACKOFF, container=container)

    @classmethod
    def never_ready(
        cls, *, probe_message: str | None = None, container: str | None = None
    ) -> Behaviour:
        """Runs but its readiness probe never passes (Unhealthy events)."""
        return cls(
            NEVER_READY, container=container, probe_message=probe_message or cls.probe_message
        )

    @classmethod
    def unschedulable(cls, *, message: str | None = None) -> Behaviour:
        """No node fits it (PodScheduled False, reason Unschedulable; FailedScheduling)."""
        return cls(UNSCHEDULABLE, scheduling_message=message)

    def default_log(self) -> tuple[str, ...]:
        """The lines the misbehaving container prints, crash explanation last."""
        if self.log_lines is not None:
            return self.log_lines
        if self.kind == OOM_KILLED:
            return _DEFAULT_OOM_LOG
        return _DEFAULT_CRASH_LOG


BEHAVIOURS: dict[str, Behaviour] = {
    HEALTHY: Behaviour.healthy(),
    CRASH_LOOP: Behaviour.crash_loop(),
    OOM_KILLED: Behaviour.oom_killed(),
    IMAGE_PULL_BACKOFF: Behaviour.image_pull_backoff(),
    NEVER_READY: Behaviour.never_ready(),
    UNSCHEDULABLE: Behaviour.unschedulable(),
}


def behaviour_from_annotations(annotations: Mapping[str, str] | None) -> Behaviour | None:
    """The behaviour a Pod's `sim.restart-backend.dev/*` annotations ask for, or None.

    Unknown names and malformed numbers raise ValueError: a typo in a test should be loud.
    """
    annotations = annotations or {}
    name = annotations.get(ANNOTATION)
    if not name:
        return None
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {name!r} in {ANNOTATION}; known: {', '.join(_KINDS)}")
    behaviour = BEHAVIOURS[name]
    changes: dict = {}
    if ANNOTATION_PREFIX + "container" in annotations:
        changes["container"] = annotations[ANNOTATION_PREFIX + "container"]
    if ANNOTATION_PREFIX + "exit-code" in annotations:
        changes["exit_code"] = int(annotations[ANNOTATION_PREFIX + "exit-code"])
    if ANNOTATION_PREFIX + "crash-log" in annotations:
        changes["log_lines"] = tuple(annotations[ANNOTATION_PREFIX + "crash-log"].splitlines())
    for key, field in (("start-delay", "start_delay"), ("ready-delay", "ready_delay")):
        if ANNOTATION_PREFIX + key in annotations:
            changes[field] = float(annotations[ANNOTATION_PREFIX + key])
    return replace(behaviour, **changes) if changes else behaviour


def image_pull_fails(image: str) -> bool:
    """True for images that do not exist in any registry: tag `doesnotexist`."""
    last = image.rsplit("/", 1)[-1]
    name = last.split("@", 1)[0]
    return ":" in name and name.rsplit(":", 1)[1] == MISSING_IMAGE_TAG
