"""The simulated StatefulSet controller against pkg/controller/statefulset (Kubernetes 1.37).

The pure rules are tables; the controller runs in a Simulation stepped by a manual clock, with
objects created and patched through the API semantics (defaults, validation, generation), and
a store subscriber watching every single change (which Pod went when, and what the others
looked like at that moment).
"""

from __future__ import annotations

import pytest

from tests.cluster.apiserver import ApiError
from tests.cluster.behaviours import Behaviour
from tests.cluster.resources import by_plural
from tests.cluster.revisions import hash_revision, template_patch
from tests.cluster.rollout_status import rollout_complete
from tests.cluster.statefulset_controller import (
    complete_rolling_update,
    creation_revision,
    max_unavailable,
    parent_and_ordinal,
    plan_statefulset,
    replica_counts,
    statefulset_status,
)
from tests.sim_world import NS, WorkloadWorld, is_ready

IMAGE = "registry.example.com/acme/db:1.0.0"


# ----------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web-0", ("web", 0)),
        ("web-12", ("web", 12)),
        ("my-db-3", ("my-db", 3)),
        ("web", ("", -1)),
        ("web-x", ("", -1)),
        ("web-99999999999", ("web", -1)),  # beyond int32: not an ordinal
    ],
)
def test_pod_names_give_parent_and_ordinal(name, expected):
    assert parent_and_ordinal(name) == expected


def _sts(strategy=None, replicas=3, status=None, policy="OrderedReady", generation=1):
    strategy = strategy or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": NS, "generation": generation},
        "spec": {"replicas": replicas, "podManagementPolicy": policy, "updateStrategy": strategy},
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("strategy", "current_replicas", "ordinal", "expected"),
    [
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, 3, 0, "update"),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, 0, 1, "current"),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}, 0, 2, "update"),
        ({"type": "RollingUpdate"}, 2, 1, "current"),  # no parameters: below currentReplicas
        ({"type": "RollingUpdate"}, 2, 2, "update"),
        ({"type": "OnDelete"}, 3, 0, "update"),  # a deleted Pod comes back at the new template
    ],
)
def test_new_pods_take_the_revision_newVersionedStatefulSetPod_picks(
    strategy, current_replicas, ordinal, expected
):
    sts = _sts(strategy, status={"currentReplicas": current_replicas})
    assert creation_revision(sts, ordinal) == expected


@pytest.mark.parametrize(
    ("rolling", "replicas", "expected"),
    [(None, 3, 1), ({}, 3, 1), ({"maxUnavailable": 2}, 3, 2), ({"maxUnavailable": "50%"}, 4, 2),
     ({"maxUnavailable": "10%"}, 3, 1), ({"maxUnavailable": "100%"}, 5, 5)],
)  # fmt: skip
def test_max_unavailable_rounds_down_to_at_least_one(rolling, replicas, expected):
    strategy = {"type": "RollingUpdate"}
    if rolling is not None:
        strategy["rollingUpdate"] = rolling
    assert max_unavailable(_sts(strategy, replicas=replicas)) == expected


def _pod(ordinal, revision="web-old", ready=True, phase="Running", terminating=False):
    meta = {
        "name": f"web-{ordinal}",
        "namespace": NS,
        "labels": {"app": "web", "controller-revision-hash": revision},
        "creationTimestamp": "2027-01-15T08:00:00Z",
    }
    if terminating:
        meta["deletionTimestamp"] = "2027-01-15T08:00:30Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2027-01-15T08:00:00Z"}]  # fmt: skip
    return {"metadata": meta, "spec": {}, "status": {"phase": phase, "conditions": conditions}}


NOW = 1_800_000_000.0
ROLLING_2 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}
PARTITION_2 = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}


@pytest.mark.parametrize(
    ("sts", "pods", "actions"),
    [
        # OrderedReady: one Pod at a time, in ordinal order, each after its predecessor is ready
        (_sts(), [], [("create", 0, "update")]),
        (_sts(), [_pod(0, "web-new", ready=False)], []),
        (_sts(), [_pod(0, "web-new")], [("create", 1, "update")]),
        (_sts(policy="Parallel"), [],
         [("create", 0, "update"), ("create", 1, "update"), ("create", 2, "update")]),
        # RollingUpdate: the highest ordinal not at the update revision, only when all are ready
        (_sts(), [_pod(0), _pod(1), _pod(2)], [("delete", "web-2")]),
        (_sts(), [_pod(0), _pod(1), _pod(2, "web-new")], [("delete", "web-1")]),
        (_sts(), [_pod(0), _pod(1), _pod(2, "web-new", ready=False)], []),  # crash loop: stuck
        (_sts(), [_pod(0), _pod(1), _pod(2, terminating=True)], []),  # waits for termination
        (_sts(), [_pod(0), _pod(1)], [("create", 2, "update")]),
        (_sts(PARTITION_2), [_pod(0), _pod(1), _pod(2, "web-new")], []),  # partition reached
        (_sts(ROLLING_2), [_pod(0), _pod(1), _pod(2)], [("delete", "web-2"), ("delete", "web-1")]),
        (_sts({"type": "OnDelete"}), [_pod(0), _pod(1), _pod(2)], []),
        # Parallel updates within maxUnavailable too, so a crash-looping Pod stops it as well
        (_sts(policy="Parallel"), [_pod(0), _pod(1), _pod(2)], [("delete", "web-2")]),
        (_sts(policy="Parallel"), [_pod(0), _pod(1), _pod(2, "web-new", ready=False)], []),
        # scale down: highest ordinal first, blocked by an unhealthy lower Pod
        (_sts(replicas=2), [_pod(0, "web-new"), _pod(1, "web-new"), _pod(2, "web-new")],
         [("delete", "web-2")]),
        (_sts(replicas=1), [_pod(0, "web-new", ready=False), _pod(1, "web-new")], []),
        (_sts(replicas=1, policy="Parallel"), [_pod(0, "web-new"), _pod(1, "web-new"),
         _pod(2, "web-new")], [("delete", "web-2"), ("delete", "web-1")]),
        # a failed Pod is deleted, to be recreated once it is gone
        (_sts(), [_pod(0, "web-new", phase="Failed", ready=False)], [("delete", "web-0")]),
    ],
)  # fmt: skip
def test_one_sync_plans_what_updateStatefulSet_does(sts, pods, actions):
    assert plan_statefulset(sts, pods, "web-old", "web-new", 0, NOW).actions == actions


def test_status_omits_zero_counts_but_keeps_replicas_available_and_collisions():
    counts = replica_counts([_pod(0, "web-new", ready=False)], 0, "web-old", "web-new", NOW)
    status = statefulset_status(_sts(generation=4), counts, "web-old", "web-new", 0)
    assert status == {
        "observedGeneration": 4,
        "replicas": 1,
        "updatedReplicas": 1,
        "currentRevision": "web-old",
        "updateRevision": "web-new",
        "collisionCount": 0,
        "availableReplicas": 0,
    }


@pytest.mark.parametrize(
    ("strategy", "updated", "ready", "current_revision"),
    [
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, 3, 3, "web-new"),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, 3, 2, "web-old"),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}, 2, 3, "web-old"),
        ({"type": "OnDelete"}, 3, 3, "web-old"),  # OnDelete never completes an update
    ],
)
def test_current_revision_moves_only_when_a_rolling_update_completes(
    strategy, updated, ready, current_revision
):
    status = {"replicas": 3, "readyReplicas": ready, "updatedReplicas": updated,
              "currentRevision": "web-old", "updateRevision": "web-new"}  # fmt: skip
    assert complete_rolling_update(_sts(strategy), status)["currentRevision"] == current_revision


# ----------------------------------------------------------------------------- the controller


class World(WorkloadWorld):
    resource, kind, name, image = "statefulsets", "StatefulSet", "web", IMAGE

    def create(self, name="web", replicas=3, **spec) -> dict:
        return super().create(name, replicas=replicas, serviceName=name, **spec)

    def sts(self, name="web") -> dict:
        return self.get(name)

    def pods(self) -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in self.store.list("pods", NS)}

    def revision_of(self, pod: str) -> str | None:
        found = self.store.get_shared("pods", NS, pod)
        return found["metadata"]["labels"]["controller-revision-hash"] if found else None


class PodLog:
    """Every Pod creation and deletion (deletionTimestamp set) in order, with how many of the
    other live Pods were Running and Ready at that moment."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.entries: list[tuple[str, str, int, int]] = []  # (verb, pod, ready others, others)
        self._terminating: set[str] = set()
        world.store.subscribe(self._on_change)

    def _on_change(self, event) -> None:
        if event.resource != "pods":
            return
        name = event.obj["metadata"]["name"]
        if event.type == "ADDED":
            verb = "create"
        elif event.obj["metadata"].get("deletionTimestamp") and (
            event.obj["metadata"]["uid"] not in self._terminating
        ):
            self._terminating.add(event.obj["metadata"]["uid"])
            verb = "delete"
        else:
            return
        others = [p for p in self.world.store.select("pods", NS) if p["metadata"]["name"] != name
                  and not p["metadata"].get("deletionTimestamp")]  # fmt: skip
        ready = [p for p in others if p["status"].get("phase") == "Running" and is_ready(p)]
        self.entries.append((verb, name, len(ready), len(others)))

    def verbs(self) -> list[tuple[str, str]]:
        return [(verb, name) for verb, name, _ready_count, _count in self.entries]


@pytest.fixture
def world() -> World:
    return World()


def test_api_defaults_a_statefulset_like_the_api_server(world):
    sts = world.create()
    assert sts["metadata"]["generation"] == 1
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0, "maxUnavailable": 1},
    }
    assert sts["spec"]["revisionHistoryLimit"] == 10
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Retain"}  # fmt: skip
    assert sts["spec"]["serviceName"] == "web"
    assert sts["status"] == {"replicas": 0, "availableReplicas": 0}


def test_api_rejects_a_selector_that_does_not_match_the_template(world):
    with pytest.raises(ApiError) as failure:
        world.create(selector={"matchLabels": {"app": "other"}})
    assert failure.value.code == 422
    assert "`selector` does not match template `labels`" in failure.value.message


def test_generation_moves_with_the_spec_only(world):
    world.create()
    world.settle()
    assert world.restart()["metadata"]["generation"] == 2
    patched = world.api.patch(by_plural("statefulsets"), NS, "web",
                              {"metadata": {"labels": {"team": "a"}}}, "merge")  # fmt: skip
    assert patched["metadata"]["generation"] == 2


def test_ordered_ready_creates_each_pod_after_the_previous_is_running_and_ready(world):
    log = PodLog(world)
    world.create()
    sts = world.settle()
    assert log.entries == [("create", "web-0", 0, 0), ("create", "web-1", 1, 1),
                           ("create", "web-2", 2, 2)]  # fmt: skip
    revision = sts["status"]["updateRevision"]
    assert sts["status"] == {
        "observedGeneration": 1,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
        "availableReplicas": 3,
    }


def test_parallel_creates_all_pods_without_waiting(world):
    log = PodLog(world)
    world.create(podManagementPolicy="Parallel")
    world.settle()
    assert log.entries == [("create", "web-0", 0, 0), ("create", "web-1", 0, 1),
                           ("create", "web-2", 0, 2)]  # fmt: skip


def test_pods_have_the_stable_identity_and_revision_label(world):
    world.create()
    sts = world.settle()
    pod = world.pods()["web-1"]
    assert pod["metadata"]["labels"] == {
        "app": "web",
        "controller-revision-hash": sts["status"]["currentRevision"],
        "statefulset.kubernetes.io/pod-name": "web-1",
        "apps.kubernetes.io/pod-index": "1",
    }
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-1", "web")
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("StatefulSet", "web", True)


def test_controller_revision_is_named_and_labelled_as_the_history_package_does(world):
    created = world.create()
    sts = world.settle()
    hash_ = hash_revision(template_patch(created), 0)
    (revision,) = world.revisions().values()
    assert revision["metadata"]["name"] == f"web-{hash_}" == sts["status"]["currentRevision"]
    assert revision["metadata"]["labels"] == {"app": "web", "controller.kubernetes.io/hash": hash_}
    assert revision["revision"] == 1
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]


def test_rolling_restart_replaces_pods_from_the_highest_ordinal_one_at_a_time(world):
    world.create()
    before = world.settle()
    log = PodLog(world)
    world.restart()
    after = world.settle()
    assert log.verbs() == [(verb, f"web-{i}") for i in (2, 1, 0) for verb in ("delete", "create")]
    deletions = [(ready, others) for verb, _n, ready, others in log.entries if verb == "delete"]
    assert deletions == [(2, 2)] * 3, "each deletion waited for every other Pod to be ready"
    new = after["status"]["updateRevision"]
    assert new != before["status"]["currentRevision"]
    assert after["status"]["currentRevision"] == new
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in world.pods().values()} == {
        new
    }
    assert world.revisions()[new]["revision"] == 2
    assert world.events("SuccessfulDelete") == [
        "Delete Pod web-2 in StatefulSet web successful",
        "Delete Pod web-1 in StatefulSet web successful",
        "Delete Pod web-0 in StatefulSet web successful",
    ]
    assert world.events("SuccessfulCreate")[0] == "Create Pod web-0 in StatefulSet web successful"


def test_a_crash_looping_new_pod_blocks_the_rollout_for_good(world):
    world.create()
    before = world.settle()
    world.sim.set_behaviour(NS, "statefulset/web", Behaviour.crash_loop())
    world.restart()
    world.run(limit=300.0)
    sts = world.sts()
    pods = world.pods()
    new = sts["status"]["updateRevision"]
    assert pods["web-2"]["metadata"]["labels"]["controller-revision-hash"] == new
    assert pods["web-2"]["status"]["containerStatuses"][0]["restartCount"] >= 3
    old = before["status"]["currentRevision"]
    assert [pods[f"web-{i}"]["metadata"]["labels"]["controller-revision-hash"] for i in (0, 1)] == [
        old, old]  # fmt: skip
    status = sts["status"]
    counts = (status["readyReplicas"], status["updatedReplicas"], status["currentReplicas"])
    assert (status["currentRevision"], counts) == (old, (2, 1, 2))
    assert not rollout_complete(sts)


def test_partition_leaves_lower_ordinals_at_the_current_revision(world):
    world.create(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    before = world.settle()
    world.restart()
    sts = world.settle()
    old, new = before["status"]["currentRevision"], sts["status"]["updateRevision"]
    revisions = {n: p["metadata"]["labels"]["controller-revision-hash"]
                 for n, p in world.pods().items()}  # fmt: skip
    assert revisions == {"web-0": old, "web-1": old, "web-2": new}
    assert (sts["status"]["currentRevision"], sts["status"]["updatedReplicas"]) == (old, 1)


def test_max_unavailable_replaces_that_many_pods_at_once(world):
    world.create(
        replicas=4,
        updateStrategy={"type": "RollingUpdate",
                        "rollingUpdate": {"partition": 0, "maxUnavailable": 2}},
    )  # fmt: skip
    world.settle()
    log = PodLog(world)
    world.restart()
    world.settle()
    assert log.verbs()[:2] == [("delete", "web-3"), ("delete", "web-2")]


def test_on_delete_moves_only_the_update_revision_until_pods_are_deleted(world):
    world.create(updateStrategy={"type": "OnDelete"})
    assert world.run(lambda: world.sts()["status"].get("availableReplicas") == 3)
    before = world.sts()
    log = PodLog(world)
    world.restart()
    world.run(limit=30.0)
    sts = world.sts()
    old, new = before["status"]["currentRevision"], sts["status"]["updateRevision"]
    assert new != old and log.entries == []
    assert (sts["status"]["currentRevision"], sts["status"].get("updatedReplicas")) == (old, None)
    world.sim.delete_pod(NS, "web-1")
    assert world.run(lambda: world.revision_of("web-1") == new and is_ready(world.pods()["web-1"]))
    for name in ("web-0", "web-2"):
        world.sim.delete_pod(NS, name)
    assert world.run(lambda: world.sts()["status"].get("updatedReplicas") == 3
                     and world.sts()["status"].get("readyReplicas") == 3)  # fmt: skip
    assert world.sts()["status"]["currentRevision"] == old, "OnDelete never completes an update"


def test_undo_brings_the_old_revision_back_with_the_next_number(world):
    world.create()
    first = world.settle()["status"]["currentRevision"]
    world.patch({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": IMAGE.replace("1.0.0", "2.0.0")}]}}}})  # fmt: skip
    second = world.settle()["status"]["currentRevision"]
    world.patch(world.revisions()[first]["data"])  # what `kubectl rollout undo` sends
    third = world.settle()["status"]["currentRevision"]
    assert third == first != second
    assert {n: r["revision"] for n, r in world.revisions().items()} == {first: 3, second: 2}


def test_revision_history_limit_truncates_old_revisions(world):
    world.create(revisionHistoryLimit=1)
    world.settle()
    for stamp in ("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"):
        world.restart(stamp)
        world.settle()
    assert sorted(r["revision"] for r in world.revisions().values()) == [3, 4]


def test_scale_down_removes_the_highest_ordinals_first(world):
    world.create(replicas=4)
    world.settle()
    log = PodLog(world)
    world.patch({"spec": {"replicas": 2}})
    world.settle()
    assert [e for e in log.verbs() if e[0] == "delete"] == [
        ("delete", "web-3"),
        ("delete", "web-2"),
    ]
    assert sorted(world.pods()) == ["web-0", "web-1"]


def test_min_ready_seconds_delays_available_replicas(world):
    world.create(replicas=1, minReadySeconds=5)
    assert world.run(lambda: world.sts()["status"].get("readyReplicas") == 1)
    assert world.sts()["status"]["availableReplicas"] == 0
    assert world.run(lambda: world.sts()["status"]["availableReplicas"] == 1, limit=10.0)


def test_quota_failure_is_a_failed_create_event_and_is_retried(world):
    world.sim.set_pod_quota(NS, 1)
    world.create()
    assert world.run(lambda: world.events("FailedCreate"))
    assert world.events("FailedCreate")[0] == (
        'Create Pod web-1 in StatefulSet web failed error: pods "web-1" is forbidden: exceeded '
        "quota: pod-quota, requested: pods=1, used: pods=1, limited: pods=1"
    )
    world.sim.set_pod_quota(NS, None)
    world.settle()
    assert sorted(world.pods()) == ["web-0", "web-1", "web-2"]


def test_deleting_a_statefulset_collects_its_pods_and_revisions(world):
    world.create()
    world.settle()
    world.api.delete(by_plural("statefulsets"), NS, "web")
    assert world.run(lambda: not world.pods() and not world.revisions())
