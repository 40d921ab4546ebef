"""The rollout verdict for StatefulSets and DaemonSets as tables: the generic checks and the
trouble table apply unchanged; which pods are new and when the rollout is complete are the
kind's (kubectl's status viewers, plus ready new pods)."""

from __future__ import annotations

from typing import Optional

import pytest

from kubectl_restart_backend.kind_rules import (
    daemonset_progress,
    group_daemonset,
    group_statefulset,
    ordinal,
    statefulset_progress,
)
from kubectl_restart_backend.kinds import DAEMONSET, STATEFULSET
from kubectl_restart_backend.rollout import Phase, compute_rollout_state
from kubectl_restart_backend.trouble import DEFAULT_TOLERANCE
from tests.k8s_objects import (
    NEW_DS_HASH,
    NEW_REV,
    NOW,
    OLD_REV,
    daemonset,
    ds_pod,
    set_pod,
    statefulset,
    template,
)

OURS = 2  # the generation our PATCH returned
CRASH = ("CrashLoopBackOff", "back-off 40s restarting failed container=api")


def sts_pods(*revisions: str, **state) -> list[dict]:
    """db-0, db-1, ... at these revisions, healthy unless ``state`` says otherwise."""
    return [set_pod(f"db-{i}", revision=rev, **state) for i, rev in enumerate(revisions)]


def crashing(name: str, revision: str = NEW_REV, restarts: int = 3) -> dict:
    return set_pod(
        name, revision=revision, waiting=CRASH, last_terminated=("Error", 1), restarts=restarts
    )


STS_CASES = [
    pytest.param(
        statefulset(), sts_pods(NEW_REV, NEW_REV, NEW_REV),
        Phase.COMPLETE, "Complete", 3, 3, id="complete",
    ),
    pytest.param(
        statefulset(generation=2, observed=1, update_revision=OLD_REV, updated=3),
        [*sts_pods(OLD_REV, OLD_REV), crashing("db-2", OLD_REV, restarts=9)],
        Phase.WAITING, "WaitingForObservation", 0, 3, id="before-observation-old-pods-never-new",
    ),
    pytest.param(
        statefulset(updated=1, ready=2),
        [*sts_pods(OLD_REV, OLD_REV), crashing("db-2")],
        Phase.FAILED, "CrashLoopBackOff", 0, 3, id="new-pod-crash-loop-fails",
    ),
    pytest.param(
        statefulset(updated=1, ready=2),
        [*sts_pods(OLD_REV, OLD_REV), crashing("db-2", restarts=1)],
        Phase.PROGRESSING, "UpdatingReplicas", 0, 3, id="first-crash-is-tolerated",
    ),
    pytest.param(
        statefulset(updated=2, ready=2),
        [crashing("db-0", OLD_REV, restarts=9), set_pod("db-1"), set_pod("db-2")],
        Phase.PROGRESSING, "UpdatingReplicas", 2, 3, id="old-pod-crash-loop-never-fails",
    ),
    pytest.param(
        statefulset(updated=2, ready=2),
        [set_pod("db-0", revision=OLD_REV), set_pod("db-1", revision=NEW_REV),
         set_pod("db-2", revision=NEW_REV)],
        Phase.PROGRESSING, "UpdatingReplicas", 2, 3, id="updating",
    ),
    pytest.param(
        statefulset(ready=2),
        [*sts_pods(NEW_REV, NEW_REV), set_pod("db-2", revision=NEW_REV, ready=False)],
        Phase.PROGRESSING, "WaitingForReadyPods", 2, 3, id="waiting-for-ready",
    ),
    pytest.param(
        statefulset(),
        [*sts_pods(NEW_REV, NEW_REV), set_pod("db-2", revision=NEW_REV, ready=False)],
        Phase.PROGRESSING, "WaitingForReadyPods", 2, 3, id="status-ahead-of-the-pods",
    ),
    pytest.param(
        statefulset(available=2), sts_pods(NEW_REV, NEW_REV, NEW_REV),
        Phase.PROGRESSING, "WaitingForAvailableReplicas", 3, 3, id="min-ready-seconds",
    ),
    pytest.param(
        statefulset(partition=1, updated=2, current_revision=OLD_REV),
        sts_pods(OLD_REV, NEW_REV, NEW_REV),
        Phase.COMPLETE, "Complete", 2, 2, id="partition-keeps-low-ordinals",
    ),
    pytest.param(
        statefulset(partition=None), sts_pods(NEW_REV, NEW_REV, NEW_REV),
        Phase.COMPLETE, "Complete", 3, 3, id="no-rolling-update-parameters",
    ),
    pytest.param(
        statefulset(partition=None, current_revision=OLD_REV), sts_pods(NEW_REV, NEW_REV, NEW_REV),
        Phase.PROGRESSING, "WaitingForRevision", 3, 3, id="current-revision-behind",
    ),
    pytest.param(
        statefulset(strategy="OnDelete", updated=0, current_revision=OLD_REV),
        sts_pods(OLD_REV, OLD_REV, OLD_REV),
        Phase.PROGRESSING, "WaitingForPodDeletion", 0, 3, id="on-delete-waits-for-deletion",
    ),
    pytest.param(
        statefulset(strategy="OnDelete", updated=3, current_revision=OLD_REV),
        sts_pods(NEW_REV, NEW_REV, NEW_REV),
        Phase.COMPLETE, "Complete", 3, 3, id="on-delete-all-replaced",
    ),
    pytest.param(
        None, [], Phase.FAILED, "Deleted", 0, 0, id="deleted",
    ),
    pytest.param(
        statefulset(deleting=True), sts_pods(NEW_REV),
        Phase.FAILED, "Deleted", 0, 0, id="being-deleted",
    ),
    pytest.param(
        statefulset(updated=2, ready=2),
        [*sts_pods(OLD_REV, NEW_REV, NEW_REV),
         {**crashing("other-0"), "metadata": {**crashing("other-0")["metadata"],
                                              "ownerReferences": []}}],
        Phase.PROGRESSING, "UpdatingReplicas", 2, 3, id="pods-of-another-owner-are-not-ours",
    ),
    pytest.param(
        statefulset(replicas=0, updated=0), [],
        Phase.COMPLETE, "Complete", 0, 0, id="zero-replicas",
    ),
]  # fmt: skip


@pytest.mark.parametrize("sts, pods, phase, reason, ready, replicas", STS_CASES)
def test_statefulset_verdicts(
    sts: Optional[dict], pods: list, phase: Phase, reason: str, ready: int, replicas: int
) -> None:
    state = compute_rollout_state(
        sts, [], pods, generation=OURS, now=NOW, tolerance=DEFAULT_TOLERANCE, kind=STATEFULSET
    )
    assert (state.phase, state.reason) == (phase, reason), state.message
    assert (state.ready_replicas, state.replicas) == (ready, replicas)


def test_a_statefulset_failure_names_the_new_pod_and_its_crashes():
    state = compute_rollout_state(
        statefulset(updated=1, ready=2),
        [],
        [*sts_pods(OLD_REV, OLD_REV), crashing("db-2")],
        generation=OURS,
        now=NOW,
        kind=STATEFULSET,
    )
    assert state.failure_reason == (
        "pod db-2 (container api) is in CrashLoopBackOff: exit code 1, 3 restarts (2 tolerated)"
    )
    assert state.new_replicaset == NEW_REV
    assert [p.name for p in state.pods if p.is_new] == ["db-2"]


def test_a_partitioned_statefulset_says_what_kept_the_old_template():
    state = compute_rollout_state(
        statefulset(partition=1, updated=2, current_revision=OLD_REV),
        [],
        sts_pods(OLD_REV, NEW_REV, NEW_REV),
        generation=OURS,
        now=NOW,
        kind=STATEFULSET,
    )
    assert state.message == (
        'statefulset "db" successfully rolled out (2/2 pods ready); partition 1: pods below '
        "ordinal 1 keep the old template"
    )


def test_someone_elses_template_supersedes_a_statefulset_rollout():
    theirs = template(image="shop/api:2.0")
    state = compute_rollout_state(
        statefulset(generation=3, observed=3, pod_template=theirs),
        [],
        sts_pods(NEW_REV, NEW_REV, NEW_REV),
        generation=OURS,
        now=NOW,
        template=template(),
        kind=STATEFULSET,
    )
    assert (state.phase, state.reason) == (Phase.SUPERSEDED, "Superseded")
    assert state.message == "superseded by a newer change: image 1.4 -> 2.0"


DS_CASES = [
    pytest.param(
        daemonset(), [ds_pod(f"agent-{c}") for c in "abc"],
        Phase.COMPLETE, "Complete", 3, 3, id="complete",
    ),
    pytest.param(
        daemonset(observed=1),
        [ds_pod("agent-a", new=False), ds_pod("agent-b", new=False),
         {**ds_pod("agent-c", new=False, waiting=CRASH, last_terminated=("Error", 1),
                   restarts=9)}],
        Phase.WAITING, "WaitingForObservation", 0, 3, id="not-observed",
    ),
    pytest.param(
        daemonset(updated=1, available=2),
        [ds_pod("agent-a", new=False), ds_pod("agent-b", new=False),
         ds_pod("agent-c", waiting=CRASH, last_terminated=("Error", 1), restarts=3)],
        Phase.FAILED, "CrashLoopBackOff", 0, 3, id="new-pod-crash-loop-fails",
    ),
    pytest.param(
        daemonset(updated=1, available=2),
        [ds_pod("agent-a", new=False, waiting=CRASH, last_terminated=("Error", 1), restarts=9),
         ds_pod("agent-b", new=False), ds_pod("agent-c")],
        Phase.PROGRESSING, "UpdatingPods", 1, 3, id="old-pod-crash-loop-never-fails",
    ),
    pytest.param(
        daemonset(updated=1, available=2),
        [ds_pod("agent-a", new=False), ds_pod("agent-b", new=False), ds_pod("agent-c")],
        Phase.PROGRESSING, "UpdatingPods", 1, 3, id="updating",
    ),
    pytest.param(
        daemonset(available=2),
        [ds_pod("agent-a"), ds_pod("agent-b"), ds_pod("agent-c", ready=False)],
        Phase.PROGRESSING, "WaitingForAvailablePods", 2, 3, id="waiting-for-available",
    ),
    pytest.param(
        daemonset(),
        [ds_pod("agent-a"), ds_pod("agent-b"), ds_pod("agent-c", ready=False)],
        Phase.PROGRESSING, "WaitingForReadyPods", 2, 3, id="status-ahead-of-the-pods",
    ),
    pytest.param(
        daemonset(),
        [ds_pod("agent-a"), ds_pod("agent-b"), ds_pod("agent-c"), ds_pod("agent-z", new=False)],
        Phase.PROGRESSING, "OldPodsPendingTermination", 3, 3, id="surge-old-pod-still-runs",
    ),
    pytest.param(
        daemonset(),
        [ds_pod("agent-a"), ds_pod("agent-b"), ds_pod("agent-c"),
         ds_pod("agent-z", new=False, deleting=True)],
        Phase.COMPLETE, "Complete", 3, 3, id="terminating-old-pod-does-not-hold",
    ),
    pytest.param(
        daemonset(strategy="OnDelete", updated=0),
        [ds_pod(f"agent-{c}", new=False) for c in "abc"],
        Phase.PROGRESSING, "WaitingForPodDeletion", 0, 3, id="on-delete-waits-for-deletion",
    ),
    pytest.param(
        daemonset(desired=0, updated=0), [],
        Phase.COMPLETE, "Complete", 0, 0, id="no-nodes",
    ),
]  # fmt: skip


@pytest.mark.parametrize("ds, pods, phase, reason, ready, replicas", DS_CASES)
def test_daemonset_verdicts(
    ds: dict, pods: list, phase: Phase, reason: str, ready: int, replicas: int
) -> None:
    state = compute_rollout_state(
        ds, [], pods, generation=OURS, now=NOW, tolerance=DEFAULT_TOLERANCE, kind=DAEMONSET
    )
    assert (state.phase, state.reason) == (phase, reason), state.message
    assert (state.ready_replicas, state.replicas) == (ready, replicas)


def test_statefulset_new_pods_are_the_update_revisions_once_observed():
    pods = sts_pods(OLD_REV, NEW_REV)
    observed = group_statefulset(statefulset(), pods, observed=True)
    assert observed.new == NEW_REV
    assert observed.groups == {"db-0": OLD_REV, "db-1": NEW_REV}
    assert group_statefulset(statefulset(), pods, observed=False).new is None


def test_daemonset_new_pods_are_found_by_template_generation_then_hash():
    pods = [ds_pod("agent-a"), ds_pod("agent-b", new=False)]
    assert group_daemonset(daemonset(), pods).new == NEW_DS_HASH
    assert group_daemonset(daemonset(), [ds_pod("agent-b", new=False)]).new is None
    # a pod with the new hash but without the label is counted as the controller counts it
    unlabelled = ds_pod("agent-c")
    del unlabelled["metadata"]["labels"]["pod-template-generation"]
    grouping = group_daemonset(daemonset(), [ds_pod("agent-a"), unlabelled])
    assert grouping.groups["agent-c"] == grouping.new == NEW_DS_HASH


@pytest.mark.parametrize(
    "status, new_ready, old, expected",
    [
        ({}, 3, [], None),
        ({"updatedReplicas": 1}, 1, [], ("UpdatingReplicas", "1 of 3 new pods have been updated")),
        ({"readyReplicas": 2}, 2, [], ("WaitingForReadyPods", "2 of 3 pods are ready")),
        ({}, 3, ["db-4"], ("OldReplicasPendingTermination", "1 old pods are pending termination")),
    ],
    ids=["done", "updating", "ready", "old-pod-above-the-partition"],
)
def test_statefulset_progress_table(status, new_ready, old, expected):
    sts = statefulset()
    sts["status"].update(status)
    assert statefulset_progress(sts, new_ready=new_ready, old_active=old) == expected


@pytest.mark.parametrize(
    "status, new_ready, old, expected",
    [
        ({}, 3, [], None),
        (
            {"updatedNumberScheduled": 2},
            2,
            [],
            ("UpdatingPods", "2 of 3 new pods have been updated"),
        ),
        (
            {"numberAvailable": 1},
            3,
            [],
            ("WaitingForAvailablePods", "1 of 3 updated pods are available"),
        ),
    ],
    ids=["done", "updating", "available"],
)
def test_daemonset_progress_table(status, new_ready, old, expected):
    ds = daemonset()
    ds["status"].update(status)
    assert daemonset_progress(ds, new_ready=new_ready, old_active=old) == expected


def test_ordinal_of_statefulset_pod_names():
    assert [ordinal(n) for n in ("db-0", "db-12", "web-db-3", "nope")] == [0, 12, 3, -1]
