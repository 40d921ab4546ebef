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

Healing: real clusters are full of trouble that clears up by itself, so each kind of trouble
can stop after a while (``failures``: crash N times, fail N pulls, then work; ``unready_for``:
fail readiness for T seconds, then pass). A Behaviour with ``failures=None`` misbehaves forever.

Time: durations in a Behaviour that describe the *workload* (``unready_for``) are in kubelet
seconds, the same seconds as the kubelet's back-off schedule (10 s, doubling, capped at 300 s),
so a runner that scales its clock scales them alike and the ratios stay real.

This module is the one behaviour vocabulary shared by the simulated cluster's kubelet
(``tests/cluster/kubelet.py``) and the fake kubelet that drives the official control plane in
the real test tier: a scenario reads the same on both, and both write the registry's words
from ``PULL_ERRORS``.

Serving: a running container answers HTTP requests that the API server proxies to it
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``, ``pods/NAME:PORT/proxy``), by
behaviour: healthy ones ``200 ok``; ``broken`` ones pass readiness but answer ``http_status``
(default 500) with ``http_body``; any behaviour may answer slowly (``answer_delay``);
``crash_after_ready`` passes readiness, then exits ``crash_after`` kubelet seconds later (and
again after each restart), the restart a readiness probe never sees coming. These fields were
added for the smoke check and settle window (issue 15); the fields above them are unchanged:

- ``http_status`` (int, default 200): what a ``broken`` container answers (100-599);
- ``http_body`` (str or None): its body; None: ``ok`` for 2xx and 3xx, else a line naming the
  status (``500 Internal Server Error: the backend is broken``);
- ``answer_delay`` (kubelet seconds, default 0): time before each answer (a slow backend);
- ``crash_after`` (kubelet seconds or None): ``crash_after_ready``'s time from passing
  readiness to exiting.

``failures=N`` heals these too: a ``broken`` container answers badly N times, then 200; a
``crash_after_ready`` one crashes N times, then stays up. Annotations ask for them by the
names ``broken`` and ``crashafterready``, with ``.../http-status``, ``.../http-body``,
``.../answer-delay`` and ``.../crash-after``.

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
from http import HTTPStatus
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
    "BROKEN",
    "CRASH_AFTER_READY",
    "PULL_ERRORS",
    "pull_error_message",
]

_KNOWN_STATUSES = frozenset(int(s) for s in HTTPStatus)

ANNOTATION_PREFIX = "sim.restart-backend.dev/"
ANNOTATION = ANNOTATION_PREFIX + "behaviour"
MISSING_IMAGE_TAG = "doesnotexist"

HEALTHY = "healthy"
CRASH_LOOP = "crashloop"
OOM_KILLED = "oomkilled"
IMAGE_PULL_BACKOFF = "imagepullbackoff"
NEVER_READY = "neverready"
UNSCHEDULABLE = "unschedulable"
BROKEN = "broken"  # ready, but answers requests with an error status
CRASH_AFTER_READY = "crashafterready"  # passes readiness, then exits

_KINDS = (
    HEALTHY,
    CRASH_LOOP,
    OOM_KILLED,
    IMAGE_PULL_BACKOFF,
    NEVER_READY,
    UNSCHEDULABLE,
    BROKEN,
    CRASH_AFTER_READY,
)

_DEFAULT_CRASH_LOG = (
    "Starting application",
    "Loading configuration from /etc/app/config.yaml",
    "FATAL: cannot connect to database at db:5432: connection refused",
)
_DEFAULT_CRASH_AFTER_READY_LOG = (
    "Starting application",
    "Listening on :8080",
    "FATAL: lost the connection to the database: connection reset by peer",
)
_DEFAULT_OOM_LOG = (
    "Starting application",
    "Warming cache: loading 2500000 entries",
)


# What a registry answers, as containerd reports it in the ErrImagePull message (the kubelet
# prefixes `Failed to pull image "<image>": ` in its event). `{ref}` is the fully qualified
# reference (docker.io/library/nginx:1), `{registry}` its host, `{path}` the rest without tag.
# Permanent answers first; whether an answer is permanent is for the plugin to decide.
PULL_ERRORS: dict[str, str] = {
    "not_found": (
        'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
        'failed to resolve reference "{ref}": {ref}: not found'
    ),
    "unauthorized": (
        'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
        'failed to resolve reference "{ref}": pull access denied, repository does not exist '
        "or may require authorization: server message: insufficient_scope: authorization failed"
    ),
    "unavailable": (
        'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
        'failed to resolve reference "{ref}": unexpected status from HEAD request to '
        "https://{registry}/v2/{path}/manifests/{tag}: 503 Service Unavailable"
    ),
    "rate_limited": (
        'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
        "failed to copy: httpReadSeeker: failed open: unexpected status code "
        "https://{registry}/v2/{path}/manifests/{tag}: 429 Too Many Requests - Server message: "
        "toomanyrequests: You have reached your pull rate limit."
    ),
    "timeout": (
        'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
        'failed to resolve reference "{ref}": failed to do request: Head '
        '"https://{registry}/v2/{path}/manifests/{tag}": dial tcp 203.0.113.7:443: i/o timeout'
    ),
}


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
    # healing (crash loop, OOMKilled, image pull): how many times the misbehaving container
    # fails (exits, or fails a pull) before it works; None: it never does
    failures: int | None = None
    # image pull: what the registry answers, a key of PULL_ERRORS
    pull_error: str = "not_found"
    # never ready: kubelet seconds of failing readiness after the start, then it passes;
    # None: it never passes
    unready_for: float | None = None
    # serving (added for issue 15; see the module docstring): what a broken container
    # answers, a slow answer's delay (kubelet seconds), and when a crash_after_ready
    # container exits after passing readiness (kubelet seconds)
    http_status: int = 200
    http_body: str | None = None
    answer_delay: float = 0.0
    crash_after: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}; known: {', '.join(_KINDS)}")
        if self.pull_error not in PULL_ERRORS:
            known = ", ".join(PULL_ERRORS)
            raise ValueError(f"unknown pull error {self.pull_error!r}; known: {known}")
        if self.failures is not None and self.failures < 0:
            raise ValueError("failures must be >= 0 (or None: forever)")
        if not 100 <= self.http_status <= 599:
            raise ValueError(f"http_status must be 100-599, not {self.http_status}")
        if self.answer_delay < 0 or (self.crash_after is not None and self.crash_after < 0):
            raise ValueError("answer_delay and crash_after must be >= 0")

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
        failures: int | None = None,
    ) -> Behaviour:
        """Exits with `exit_code` shortly after each start (reason Error), then
        CrashLoopBackOff; the last log line explains why. With `failures=N` it crashes N
        times, then starts and becomes ready (a dependency that was still starting)."""
        return cls(
            CRASH_LOOP,
            container=container,
            exit_code=exit_code,
            log_lines=log_lines,
            run_seconds=run_seconds,
            failures=failures,
        )

    @classmethod
    def oom_killed(
        cls,
        *,
        container: str | None = None,
        log_lines: tuple[str, ...] | None = None,
        failures: int | None = None,
    ) -> Behaviour:
        """Killed for exceeding its memory limit (reason OOMKilled, exit code 137); with
        `failures=N`, N times, then it fits (a warm-up spike)."""
        return cls(
            OOM_KILLED, container=container, exit_code=137, log_lines=log_lines, failures=failures
        )

    @classmethod
    def image_pull_backoff(
        cls,
        *,
        container: str | None = None,
        pull_error: str = "not_found",
        failures: int | None = None,
    ) -> Behaviour:
        """Its image pulls fail with the registry answer `pull_error` (ErrImagePull, then
        ImagePullBackOff with the kubelet's image back-off); with `failures=N` the pull after
        N failed ones succeeds (a registry hiccup)."""
        return cls(
            IMAGE_PULL_BACKOFF, container=container, pull_error=pull_error, failures=failures
        )

    @classmethod
    def never_ready(
        cls,
        *,
        probe_message: str | None = None,
        container: str | None = None,
        unready_for: float | None = None,
    ) -> Behaviour:
        """Runs but its readiness probe fails (Unhealthy events); forever, or for
        `unready_for` kubelet seconds after the start and then passes (a slow warm-up)."""
        return cls(
            NEVER_READY,
            container=container,
            probe_message=probe_message or cls.probe_message,
            unready_for=unready_for,
        )

    @classmethod
    def unschedulable(cls, *, message: str | None = None) -> Behaviour:
        """No node fits it (PodScheduled False, reason Unschedulable; FailedScheduling)."""
        return cls(UNSCHEDULABLE, scheduling_message=message)

    @classmethod
    def broken(
        cls,
        *,
        status: int = 500,
        body: str | None = None,
        container: str | None = None,
        failures: int | None = None,
        answer_delay: float = 0.0,
    ) -> Behaviour:
        """Starts and passes readiness like a healthy container, but answers every request
        with `status` (a readiness probe that ignores the database, a Secret with a wrong
        password); with `failures=N` the first N answers, then 200."""
        return cls(
            BROKEN,
            container=container,
            http_status=status,
            http_body=body,
            failures=failures,
            answer_delay=answer_delay,
        )

    @classmethod
    def slow(cls, *, answer_delay: float, ready_delay: float | None = None) -> Behaviour:
        """Healthy, but each answer takes `answer_delay` kubelet seconds."""
        return cls(HEALTHY, answer_delay=answer_delay, ready_delay=ready_delay)

    @classmethod
    def crash_after_ready(
        cls,
        *,
        after: float,
        exit_code: int = 1,
        log_lines: tuple[str, ...] | None = None,
        container: str | None = None,
        failures: int | None = None,
    ) -> Behaviour:
        """Passes readiness, then exits with `exit_code` `after` kubelet seconds later, and
        again after each restart (kubernetes#31319: `rollout status` passed, the pods crash
        afterwards); with `failures=N`, N times, then it stays up."""
        return cls(
            CRASH_AFTER_READY,
            container=container,
            exit_code=exit_code,
            log_lines=log_lines,
            crash_after=after,
            failures=failures,
        )

    def default_log(self) -> tuple[str, ...]:
        """The lines the misbehaving container prints, crash explanation last."""
        if self.log_lines is not None:
            return self.log_lines
        if self.kind == OOM_KILLED:
            return _DEFAULT_OOM_LOG
        if self.kind == CRASH_AFTER_READY:
            return _DEFAULT_CRASH_AFTER_READY_LOG
        return _DEFAULT_CRASH_LOG

    def answer(self, misbehaving: bool) -> tuple[int, str]:
        """(status, body) of one HTTP answer of a running container: the error while a broken
        container still misbehaves (`misbehaving`), else 200."""
        status = self.http_status if self.kind == BROKEN and misbehaving else 200
        if self.http_body is not None and status == self.http_status:
            return status, self.http_body
        if status < 400:
            return status, "ok\n"
        phrase = HTTPStatus(status).phrase if status in _KNOWN_STATUSES else "Error"
        return status, f"{status} {phrase}: the backend is broken\n"


BEHAVIOURS: dict[str, Behaviour] = {
    HEALTHY: Behaviour.healthy(),
    CRASH_LOOP: Behaviour.crash_loop(),
    OOM_KILLED: Behaviour.oom_killed(),
    IMAGE_PULL_BACKOFF: Behaviour.image_pull_backoff(),
    NEVER_READY: Behaviour.never_ready(),
    UNSCHEDULABLE: Behaviour.unschedulable(),
    BROKEN: Behaviour.broken(),
    CRASH_AFTER_READY: Behaviour.crash_after_ready(after=30.0),
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
    for key, field in (
        ("start-delay", "start_delay"),
        ("ready-delay", "ready_delay"),
        ("unready-for", "unready_for"),
        ("answer-delay", "answer_delay"),
        ("crash-after", "crash_after"),
    ):
        if ANNOTATION_PREFIX + key in annotations:
            changes[field] = float(annotations[ANNOTATION_PREFIX + key])
    if ANNOTATION_PREFIX + "failures" in annotations:
        changes["failures"] = int(annotations[ANNOTATION_PREFIX + "failures"])
    if ANNOTATION_PREFIX + "pull-error" in annotations:
        changes["pull_error"] = annotations[ANNOTATION_PREFIX + "pull-error"]
    if ANNOTATION_PREFIX + "http-status" in annotations:
        changes["http_status"] = int(annotations[ANNOTATION_PREFIX + "http-status"])
    if ANNOTATION_PREFIX + "http-body" in annotations:
        changes["http_body"] = annotations[ANNOTATION_PREFIX + "http-body"]
    return replace(behaviour, **changes) if changes else behaviour


def pull_error_message(kind: str, ref: str) -> str:
    """The containerd message for pulling the fully qualified `ref` with registry answer
    `kind` (a key of PULL_ERRORS)."""
    registry, _, rest = ref.partition("/")
    path, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    registry_host = "registry-1.docker.io" if registry == "docker.io" else registry
    return PULL_ERRORS[kind].format(ref=ref, registry=registry_host, path=path, tag=tag or "latest")


def image_pull_fails(image: str) -> bool:
    """True for images that do not exist in any registry: tag `doesnotexist`."""
    last = image.rsplit("/", 1)[-1]
    name = last.split("@", 1)[0]
    return ":" in name and name.rsplit(":", 1)[1] == MISSING_IMAGE_TAG
