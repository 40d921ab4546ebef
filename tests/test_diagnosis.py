"""Pod diagnosis tables: the STATUS column, failing pods, events, log targets, safe text."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import pytest

from kubectl_restart_backend.diagnosis import (
    EventLine,
    LogTarget,
    PodInfo,
    choose_log_targets,
    classify_pod,
    cut_log_line,
    format_age,
    one_line,
    parse_time,
    sanitize_log_text,
    summarize_events,
)
from kubectl_restart_backend.trouble import DEFAULT_TOLERANCE, NO_MEMORY, Memory, Tolerance
from tests.k8s_objects import NEW_RS, NOW, OLD_RS, container, event, pod

CRASH = ("CrashLoopBackOff", "back-off 40s restarting failed container=api")
SECRET = ("CreateContainerConfigError", 'secret "shop-db" not found')


def row(
    id: str,
    the_pod: dict,
    *,
    new_rs: Optional[str] = NEW_RS,
    allowed: Tolerance = DEFAULT_TOLERANCE,
    memory: Memory = NO_MEMORY,
    **expect: Any,
) -> Any:
    """One row: the pod (and the tolerance ``allowed``, the memory), then PodInfo fields."""
    return pytest.param(the_pod, new_rs, allowed, memory, expect, id=id)


CLASSIFY = [
    row(
        "running-and-ready",
        pod("p", created_ago=300),
        status="Running",
        ready=True,
        ready_containers=1,
        total_containers=1,
        restarts=0,
        age_seconds=300.0,
        node="node-1",
        failing=False,
        container=None,
        message=None,
        replicaset=NEW_RS,
        is_new=True,
    ),
    row(
        "running-not-ready-names-the-container",
        pod("p", ready=False),
        status="Running",
        ready=False,
        ready_containers=0,
        container="api",
        failing=False,
    ),
    row(
        "crash-loop",
        pod("p", waiting=CRASH, restarts=3, last_terminated=("Error", 1)),
        status="CrashLoopBackOff",
        container="api",
        restarts=3,
        last_termination="Error (exit code 1)",
        failing=True,
        failure_kind="CrashLoopBackOff",
        failure="pod p (container api) is in CrashLoopBackOff: exit code 1, 3 restarts "
        "(2 tolerated)",
        trouble="CrashLoop",
        doom="after-restarts",
        tolerance=None,
    ),
    row(
        "crash-loop-within-the-tolerance-is-not-failing-yet",
        pod("p", waiting=CRASH, restarts=1, last_terminated=("Error", 3)),
        failing=False,
        trouble="CrashLoop",
        tolerance="2 exits, 2 restarts tolerated",
    ),
    row(
        "crash-loop-with-one-restart-says-restart",
        pod("p", waiting=CRASH, restarts=1, last_terminated=("Error", 3)),
        allowed=Tolerance(restarts=0),
        failure="pod p (container api) is in CrashLoopBackOff: exit code 3, 1 restart "
        "(0 tolerated)",
    ),
    row(
        "oom-killed-now-after-its-tolerated-restarts",
        pod("p", terminated=("OOMKilled", 137), restarts=2),
        status="OOMKilled",
        last_termination="OOMKilled (exit code 137)",
        failing=True,
        trouble="OOMKilled",
        failure="pod p (container api) exited: OOMKilled (exit code 137), 2 restarts (2 tolerated)",
    ),
    row(
        "missing-secret-is-tolerated-at-first",
        pod("p", waiting=SECRET),
        status="CreateContainerConfigError",
        message='secret "shop-db" not found',
        failing=False,
        trouble="MissingConfig",
        trouble_key="p/api/MissingConfig",
        tolerance="for 0s, 30s tolerated",
    ),
    row(
        "missing-secret-past-the-grace",
        pod("p", waiting=SECRET),
        memory=Memory(since={"p/api/MissingConfig": NOW.timestamp() - 30}),
        failing=True,
        failure="pod p (container api) is in CreateContainerConfigError: "
        'secret "shop-db" not found (for 30s, 30s tolerated)',
    ),
    row(
        "image-pull-backoff-without-the-registrys-answer-waits-for-pulls",
        pod("p", waiting=("ImagePullBackOff", 'Back-off pulling image "shop/api:nope"')),
        status="ImagePullBackOff",
        message='Back-off pulling image "shop/api:nope"',
        failing=False,
        trouble="ImagePullFailed",
        failed_pulls=0,
    ),
    row(
        "image-not-found-fails-at-once",
        pod("p", waiting=("ErrImagePull", "docker.io/shop/api:nope: not found")),
        failing=True,
        trouble="ImageNotFound",
        doom="now",
        failure="pod p (container api) is in ErrImagePull: docker.io/shop/api:nope: not found",
    ),
    row(
        "container-creating",
        pod("p", waiting=("ContainerCreating", "")),
        status="ContainerCreating",
        message=None,
        failing=False,
    ),
    row(
        "pending-without-container-statuses",
        pod("p", containers=[], phase="Pending", node=None),
        status="Pending",
        node=None,
        failing=False,
    ),
    row(
        "unschedulable-shows-unschedulable-and-the-scheduler-message",
        pod("p", unschedulable=(45, "0/3 nodes are available: 3 Insufficient cpu."), node=None),
        status="Unschedulable",
        message="0/3 nodes are available: 3 Insufficient cpu.",
        failing=True,
        failure_kind="Unschedulable",
        failure="pod p has been unschedulable for 45s: "
        "0/3 nodes are available: 3 Insufficient cpu.",
    ),
    row(
        "unschedulable-briefly-is-not-failing",
        pod("p", unschedulable=(5, "0/3 nodes are available")),
        status="Unschedulable",
        failing=False,
    ),
    row(
        "terminating-wins-and-never-fails",
        pod("p", waiting=CRASH, restarts=3, deleting=True),
        status="Terminating",
        failing=False,
    ),
    row(
        "old-replicaset-pod-never-fails",
        pod("p", rs=OLD_RS, waiting=CRASH, restarts=3),
        status="CrashLoopBackOff",
        replicaset=OLD_RS,
        is_new=False,
        failing=False,
    ),
    row(
        "no-new-replicaset-known-means-nothing-is-new",
        pod("p", waiting=CRASH),
        new_rs=None,
        is_new=False,
        failing=False,
    ),
    row(
        "init-container-crash-loop",
        pod(
            "p",
            init=[container("migrate", waiting=CRASH, restarts=4, last_terminated=("Error", 2))],
        ),
        status="Init:CrashLoopBackOff",
        container="migrate",
        restarts=4,
        failing=True,
        failure="pod p (init container migrate) is in CrashLoopBackOff: exit code 2, 4 restarts "
        "(2 tolerated)",
    ),
    row(
        "init-container-running-shows-progress",
        pod("p", init=[container("migrate")]),
        status="Init:0/1",
        container="migrate",
        failing=False,
    ),
    row(
        "init-container-failed-once",
        pod("p", init=[container("migrate", terminated=("Error", 1))]),
        status="Init:Error",
        failing=False,
    ),
    row(
        "init-done-then-main-container-status",
        pod("p", init=[container("migrate", terminated=("Completed", 0))], waiting=SECRET),
        status="CreateContainerConfigError",
        container="api",
        trouble="MissingConfig",
    ),
    row(
        "worst-container-explains-the-pod",
        pod(
            "p",
            containers=[
                container("proxy", waiting=("ContainerCreating", "")),
                container("api", waiting=CRASH, restarts=2),
            ],
        ),
        status="CrashLoopBackOff",
        container="api",
        ready_containers=0,
        total_containers=2,
        restarts=2,
    ),
    row(
        "sidecar-restarted-once-running-shows-last-termination",
        pod(
            "p",
            containers=[
                container("api"),
                container("proxy", restarts=1, last_terminated=("Error", 1)),
            ],
        ),
        status="Running",
        ready=True,
        container="proxy",
        last_termination="Error (exit code 1)",
        restarts=1,
        failing=False,
    ),
    row(
        "failed-phase",
        pod("p", phase="Failed", ready=False, reason="DeadlineExceeded", message="too slow"),
        failing=True,
        failure_kind="PodFailed",
        failure="pod p failed: DeadlineExceeded: too slow",
    ),
    row(
        "failed-phase-without-reason-names-the-container",
        pod("p", phase="Failed", terminated=("Error", 1)),
        status="Error",
        failing=True,
        failure="pod p failed: container api Error (exit code 1)",
    ),
    row(
        "evicted-is-transient",
        pod("p", phase="Failed", ready=False, reason="Evicted", message="low on memory"),
        status="Evicted",
        message="low on memory",
        failing=False,
    ),
    row(
        "succeeded-is-completed",
        pod("p", phase="Succeeded", terminated=("Completed", 0)),
        status="Completed",
        failing=False,
    ),
    row(
        "exit-code-without-reason",
        pod("p", terminated=("", 2)),
        status="ExitCode:2",
    ),
    row(
        "cluster-text-is-flattened-and-safe",
        pod("p", waiting=("CreateContainerConfigError", "bad\x1b[31m thing\nhere\x07")),
        message="bad thing here?",
    ),
]


@pytest.mark.parametrize(("the_pod", "new_rs", "tolerance", "memory", "expect"), CLASSIFY)
def test_classify_pod(
    the_pod: dict, new_rs: Optional[str], tolerance: Tolerance, memory: Memory, expect: dict
) -> None:
    info = classify_pod(the_pod, now=NOW, new_rs=new_rs, tolerance=tolerance, memory=memory)
    assert {key: getattr(info, key) for key in expect} == expect


def test_classify_pod_grace_is_a_parameter() -> None:
    unschedulable = pod("p", unschedulable=(45, "no nodes"))
    longer, shorter = Tolerance(unschedulable_grace=60), Tolerance(unschedulable_grace=45)
    assert not classify_pod(unschedulable, now=NOW, new_rs=NEW_RS, tolerance=longer).failing
    assert classify_pod(unschedulable, now=NOW, new_rs=NEW_RS, tolerance=shorter).failing


def test_classify_pod_replicaset_override_for_label_matched_pods() -> None:
    orphan = pod("p", rs=None, waiting=CRASH, restarts=3)
    info = classify_pod(orphan, now=NOW, new_rs=NEW_RS, replicaset=NEW_RS)
    assert (info.replicaset, info.is_new, info.failing) == (NEW_RS, True, True)


# --------------------------------------------------------------------------- events

INVOLVED = {("Pod", "backend-new-p0"), ("ReplicaSet", NEW_RS), ("Deployment", "backend")}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [event("Pod", "backend-new-p0", "BackOff", "Back-off restarting", count=4, ago=5)],
            [EventLine("Pod", "backend-new-p0", "BackOff", "Back-off restarting", 4, 5.0)],
            id="one-warning",
        ),
        pytest.param(
            [event("Pod", "backend-new-p0", "Pulled", "pulled", type="Normal")],
            [],
            id="normal-events-dropped",
        ),
        pytest.param(
            [event("Pod", "someone-else", "BackOff", "x")],
            [],
            id="other-objects-dropped",
        ),
        pytest.param(
            [
                event("Pod", "backend-new-p0", "Unhealthy", "Readiness probe failed", ago=30),
                event(
                    "Pod", "backend-new-p0", "Unhealthy", "Readiness probe failed", count=2, ago=3
                ),
            ],
            [EventLine("Pod", "backend-new-p0", "Unhealthy", "Readiness probe failed", 3, 3.0)],
            id="duplicates-summed-with-newest-age",
        ),
        pytest.param(
            [
                event("ReplicaSet", NEW_RS, "FailedCreate", "exceeded quota", count=7, ago=40),
                event("Deployment", "backend", "Failed", "deadline", ago=2),
                event("Pod", "backend-new-p0", "FailedMount", "secret not found", ago=20),
            ],
            [
                EventLine("Deployment", "backend", "Failed", "deadline", 1, 2.0),
                EventLine("Pod", "backend-new-p0", "FailedMount", "secret not found", 1, 20.0),
                EventLine("ReplicaSet", NEW_RS, "FailedCreate", "exceeded quota", 7, 40.0),
            ],
            id="newest-first",
        ),
        pytest.param(
            [
                event(
                    "Pod",
                    "backend-new-p0",
                    "FailedScheduling",
                    "0/3 nodes",
                    count=3,
                    ago=8,
                    new_style=True,
                ),
                event("Pod", "backend-new-p0", "FailedScheduling", "0/3 nodes", ago=50),
            ],
            [EventLine("Pod", "backend-new-p0", "FailedScheduling", "0/3 nodes", 4, 8.0)],
            id="events-k8s-io-v1-series-merged-with-core-v1",
        ),
        pytest.param(
            [event("Pod", "backend-new-p0", "BackOff", "line one\nline\x1b[2J two")],
            [EventLine("Pod", "backend-new-p0", "BackOff", "line one line two", 1, 10.0)],
            id="messages-flattened-and-stripped",
        ),
    ],
)
def test_summarize_events(events: list, expected: list) -> None:
    assert summarize_events(events, now=NOW, involved=INVOLVED) == expected


# --------------------------------------------------------------------------- log targets


def info(name: str, status: str, **fields: Any) -> PodInfo:
    base: dict[str, Any] = dict(
        name=name,
        ready_containers=0,
        total_containers=1,
        status=status,
        restarts=0,
        age_seconds=60.0,
        node="node-1",
        ready=False,
        failing=False,
        container="api",
        message=None,
        last_termination=None,
        replicaset=NEW_RS,
        is_new=True,
    )
    base.update(fields)
    return PodInfo(**base)


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param(
            [
                info(
                    "a",
                    "CrashLoopBackOff",
                    failing=True,
                    failure_kind="CrashLoopBackOff",
                    restarts=3,
                    last_termination="Error (exit code 1)",
                ),
                info(
                    "b",
                    "CrashLoopBackOff",
                    failing=True,
                    failure_kind="CrashLoopBackOff",
                    restarts=3,
                    last_termination="Error (exit code 1)",
                ),
            ],
            [LogTarget("a", "api", True)],
            id="one-pod-per-failure-reason-previous-instance",
        ),
        pytest.param(
            [
                info(
                    "a",
                    "CreateContainerConfigError",
                    failing=True,
                    failure_kind="CreateContainerConfigError",
                ),
                info("b", "ImagePullBackOff", failing=True, failure_kind="ImagePullBackOff"),
            ],
            [],
            id="containers-that-never-ran-have-no-logs",
        ),
        pytest.param(
            [
                info(
                    "a",
                    "Init:CrashLoopBackOff",
                    container="migrate",
                    failing=True,
                    failure_kind="CrashLoopBackOff",
                    restarts=2,
                    last_termination="Error (exit code 2)",
                ),
                info("b", "OOMKilled", restarts=1, last_termination="OOMKilled (exit code 137)"),
            ],
            [LogTarget("a", "migrate", True), LogTarget("b", "api", False)],
            id="init-container-and-a-container-stopped-now",
        ),
        pytest.param(
            [info("a", "Running", ready=True), info("b", "Running")],
            [],
            id="healthy-or-merely-unready-pods-need-no-logs",
        ),
        pytest.param(
            [info("a", "Running", restarts=2, last_termination="Error (exit code 1)")],
            [LogTarget("a", "api", True)],
            id="unready-pod-that-crashed-before-on-timeout",
        ),
        pytest.param(
            [
                info(
                    "a", "Unschedulable", container=None, failing=True, failure_kind="Unschedulable"
                )
            ],
            [],
            id="no-container-no-logs",
        ),
        pytest.param(
            [info("a", "Terminating", restarts=2, last_termination="Error (exit code 1)")],
            [],
            id="terminating-pods-are-on-their-way-out",
        ),
    ],
)
def test_choose_log_targets(pods: list, expected: list) -> None:
    assert choose_log_targets(pods) == expected


# --------------------------------------------------------------------------- text and time


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "<unknown>"),
        (-0.5, "0s"),
        (-5, "<invalid>"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (4 * 3600 + 30 * 60, "4h30m"),
        (9 * 3600, "9h"),
        (2 * 86400, "2d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_format_age_like_kubectl(seconds: Optional[float], shown: str) -> None:
    assert format_age(seconds) == shown


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("plain log line", "plain log line"),
        ("\x1b[31mred\x1b[0m text", "red text"),
        ("title\x1b]0;pwned\x07 after", "title after"),
        ("link \x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\", "link here"),
        ("windows\r\nline", "windows\nline"),
        ("progress 10%\rprogress 100%", "progress 10%progress 100%"),
        ("bell\x07 null\x00 del\x7f", "bell? null? del?"),
        ("tab\tkept", "tab\tkept"),
        ("bidi \u202eevil", "bidi ?evil"),
        ("unicode é ✓ kept", "unicode é ✓ kept"),
    ],
)
def test_sanitize_log_text(text: str, safe: str) -> None:
    assert sanitize_log_text(text) == safe


@pytest.mark.parametrize(
    ("line", "limit", "cut"),
    [
        ("short", 300, "short"),
        ("x" * 300, 300, "x" * 300),
        ("x" * 310, 300, "x" * 300 + "... [10 more characters]"),
        ("abcdef", 3, "abc... [3 more characters]"),
    ],
)
def test_cut_log_line(line: str, limit: int, cut: str) -> None:
    assert cut_log_line(line, limit) == cut


def test_one_line_flattens_whitespace() -> None:
    assert one_line("  a\n\n b\t c  ") == "a b c"
    assert one_line(None) == ""


@pytest.mark.parametrize(
    ("stamp", "parsed"),
    [
        ("2026-11-03T12:00:00Z", datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)),
        (
            "2026-11-03T12:00:00.123456Z",
            datetime(2026, 11, 3, 12, 0, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2026-11-03T12:00:00.5Z", datetime(2026, 11, 3, 12, 0, 0, 500000, tzinfo=timezone.utc)),
        ("2026-11-03T14:00:00+02:00", datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_time(stamp: Any, parsed: Optional[datetime]) -> None:
    assert parse_time(stamp) == parsed
