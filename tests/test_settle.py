"""The settle window, judged: a restart or a readiness loss of a new pod after completion fails
it; trouble before the window, pods leaving and old pods do not. Pure, tables."""

from __future__ import annotations

import dataclasses

import pytest

from kubectl_restart_backend.diagnosis import PodInfo
from kubectl_restart_backend.settle import Unsettled, judge_settle, mark_unsettled
from kubectl_restart_backend.trouble import TROUBLE, Doom, Where


def pod(name="backend-1", *, ready=True, restarts=0, status="Running", new=True,
        last=None, message=None, container="app"):  # fmt: skip
    return PodInfo(
        name=name, ready_containers=1 if ready else 0, total_containers=1, status=status,
        restarts=restarts, age_seconds=10.0, node="sim-node-1", ready=ready, failing=False,
        container=container, message=message, last_termination=last, replicaset="backend-6d5f7",
        is_new=new,
    )  # fmt: skip


WINDOW = dict(seconds_after=3.0, window=30.0)
WHEN = "3s after the rollout completed, inside the 30s settle window"


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        ([pod()], [pod()], None),
        ([pod(restarts=1, last="Error (exit code 1)")],
         [pod(restarts=1, last="Error (exit code 1)")], None),
        ([pod()], [pod(restarts=1, last="Error (exit code 1)")],
         Unsettled("backend-1", "RestartedWhileSettling",
                   f"pod backend-1 (container app) restarted {WHEN}: Error (exit code 1)")),
        ([pod()], [pod(ready=False, status="Error", last="Error (exit code 1)")],
         Unsettled("backend-1", "RestartedWhileSettling",
                   f"pod backend-1 (container app) exited {WHEN}: Error (exit code 1)")),
        ([pod()], [pod(ready=False, restarts=2, status="CrashLoopBackOff",
                       last="OOMKilled (exit code 137)")],
         Unsettled("backend-1", "RestartedWhileSettling",
                   f"pod backend-1 (container app) restarted {WHEN}: OOMKilled (exit code 137)")),
        ([pod()], [pod(ready=False, message="Readiness probe failed: HTTP 503")],
         Unsettled("backend-1", "ReadinessLost",
                   f"pod backend-1 stopped being ready {WHEN} "
                   "(Running: Readiness probe failed: HTTP 503)")),
        ([pod()], [pod(ready=False, status="Terminating")], None),
        ([pod()], [], None),
        ([pod(new=False)], [pod(new=False, restarts=3)], None),
        ([pod("a"), pod("b")], [pod("a", ready=False), pod("b", restarts=1, last="Error")],
         Unsettled("b", "RestartedWhileSettling",
                   f"pod b (container app) restarted {WHEN}: Error")),
        ([pod("a"), pod("b")], [pod("a"), pod("b"), pod("c", ready=False)], None),
    ],
    ids=["steady", "restarted-before-the-window", "restarted", "exited-restart-to-come",
         "crash-looping", "readiness-lost", "terminating-is-leaving", "gone-is-leaving",
         "old-pods-are-not-judged", "a-crash-before-a-readiness-loss", "pods-that-came-later"],
)  # fmt: skip
def test_a_new_pod_that_restarts_or_stops_being_ready_in_the_window_breaks_it(
    before, now, expected
):
    assert judge_settle(before, now, **WINDOW) == expected


def test_the_culprit_is_marked_failing_and_listed_first():
    unsettled = Unsettled("b", "RestartedWhileSettling", "pod b restarted")
    marked = mark_unsettled([pod("a"), pod("b")], unsettled)
    assert [p.name for p in marked] == ["b", "a"]
    assert marked[0] == dataclasses.replace(
        pod("b"), failing=True, failure="pod b restarted", failure_kind="RestartedWhileSettling"
    )
    assert not marked[1].failing


def test_the_window_s_rules_are_rows_of_the_trouble_table_that_fail_at_once():
    rows = {rule.kind: rule for rule in TROUBLE if rule.where is Where.SETTLING}
    assert set(rows) == {"RestartedWhileSettling", "ReadinessLost"}
    assert all(rule.doom is Doom.NOW for rule in rows.values())
