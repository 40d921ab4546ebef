"""The simulated DaemonSet controller against pkg/controller/daemon (Kubernetes 1.37).

Pure rules as tables; the controller in a Simulation stepped by a manual clock over the
simulation's three nodes, objects created and patched through the API semantics, and a store
subscriber logging every Pod creation and deletion in order.
"""

from __future__ import annotations

import pytest

from tests.cluster.apiserver import ApiError
from tests.cluster.behaviours import Behaviour
from tests.cluster.controllers import pod_template_hash
from tests.cluster.daemonset_controller import (
    daemonset_status,
    is_pod_updated,
    plan_rolling_update,
    surge_count,
    target_node,
    unavailable_count,
)
from tests.cluster.resources import by_plural
from tests.cluster.rollout_status import rollout_complete
from tests.cluster.simulation import SimConfig
from tests.sim_world import NS, WorkloadWorld, is_ready

IMAGE = "registry.example.com/acme/agent:1.0.0"
NODES = [(f"sim-node-{i}", {"kubernetes.io/hostname": f"sim-node-{i}"}) for i in (1, 2, 3)]
NOW = 1_800_000_000.0


# ----------------------------------------------------------------------------- pure rules


def _affinity(node: str) -> dict:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "node"),
    [
        ({"nodeName": "sim-node-2", "affinity": _affinity("sim-node-1")}, "sim-node-2"),
        ({"affinity": _affinity("sim-node-3")}, "sim-node-3"),
        ({}, None),
    ],
)
def test_a_daemon_pod_belongs_to_its_bound_node_or_its_affinity_node(spec, node):
    assert target_node({"spec": spec}) == node


@pytest.mark.parametrize(
    ("labels", "hash_", "generation", "updated"),
    [
        ({"controller-revision-hash": "abc"}, "abc", 2, True),
        ({"controller-revision-hash": "old", "pod-template-generation": "2"}, "abc", 2, True),
        ({"controller-revision-hash": "old", "pod-template-generation": "1"}, "abc", 2, False),
        ({}, "abc", None, False),
    ],
)
def test_a_pod_is_updated_by_hash_or_by_template_generation(labels, hash_, generation, updated):
    assert is_pod_updated({"metadata": {"labels": labels}}, hash_, generation) is updated


def _ds(rolling=None, kind="RollingUpdate", generation=1, node_selector=None):
    strategy = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = rolling or {"maxUnavailable": 1, "maxSurge": 0}
    template_spec = {"nodeSelector": node_selector} if node_selector else {}
    return {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": NS, "generation": generation},
        "spec": {"updateStrategy": strategy, "template": {"spec": template_spec}},
        "status": {},
    }


@pytest.mark.parametrize(
    ("rolling", "nodes", "surge", "unavailable"),
    [
        ({"maxUnavailable": 1, "maxSurge": 0}, 3, 0, 1),
        ({"maxUnavailable": "50%", "maxSurge": 0}, 3, 0, 2),  # rounded up
        ({"maxUnavailable": 0, "maxSurge": "10%"}, 3, 1, 0),
    ],
)
def test_surge_and_unavailability_are_percentages_of_nodes_rounded_up(
    rolling, nodes, surge, unavailable
):
    ds = _ds(rolling)
    assert (surge_count(ds, nodes), unavailable_count(ds, nodes)) == (surge, unavailable)


def _pod(node, hash_="old", ready=True, terminating=False, name=None, created="08:00:00"):
    meta = {
        "name": name or f"agent-{node[-1]}{hash_}",
        "labels": {"controller-revision-hash": hash_},
        "creationTimestamp": f"2027-01-15T{created}Z",
    }
    if terminating:
        meta["deletionTimestamp"] = "2027-01-15T09:00:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2027-01-15T08:00:00Z"}]  # fmt: skip
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": conditions}}  # fmt: skip


def _on_nodes(*pods):
    result: dict[str, list[dict]] = {}
    for pod in pods:
        result.setdefault(pod["spec"]["nodeName"], []).append(pod)
    return result


N1, N2, N3 = "sim-node-1", "sim-node-2", "sim-node-3"


@pytest.mark.parametrize(
    ("ds", "pods", "plan"),
    [
        # no surge: delete old Pods while unavailable ones stay within maxUnavailable
        (_ds(), [_pod(N1), _pod(N2), _pod(N3)], (["agent-1old"], [])),
        (_ds(), [_pod(N1, "new"), _pod(N2), _pod(N3)], (["agent-2old"], [])),
        (_ds(), [_pod(N1, "new", ready=False), _pod(N2), _pod(N3)], ([], [])),  # crash loop
        (_ds(), [_pod(N1, terminating=True), _pod(N2), _pod(N3)], ([], [])),  # still going
        (_ds(), [_pod(N1), _pod(N2, ready=False), _pod(N3)], (["agent-2old"], [])),
        (_ds({"maxUnavailable": 2, "maxSurge": 0}), [_pod(N1), _pod(N2), _pod(N3)],
         (["agent-1old", "agent-2old"], [])),
        # surge: a new Pod beside an available old one; the old one goes once the new is up
        (_ds({"maxUnavailable": 0, "maxSurge": 1}), [_pod(N1), _pod(N2), _pod(N3)], ([], [N1])),
        (_ds({"maxUnavailable": 0, "maxSurge": 1}),
         [_pod(N1), _pod(N1, "new", ready=False), _pod(N2), _pod(N3)], ([], [])),
        (_ds({"maxUnavailable": 0, "maxSurge": 1}),
         [_pod(N1), _pod(N1, "new"), _pod(N2), _pod(N3)], (["agent-1old"], [N2])),
    ],
)  # fmt: skip
def test_one_rolling_update_step_is_what_rollingUpdate_decides(ds, pods, plan):
    assert plan_rolling_update(ds, NODES, _on_nodes(*pods), "new", NOW) == plan


def test_status_judges_the_oldest_pod_per_node_and_omits_zero_optional_counts():
    ds = _ds(generation=3)
    younger = _pod(N2, "new", name="b", created="08:00:05")
    pods = _on_nodes(_pod(N1, "new"), _pod(N2, ready=False), younger)
    assert daemonset_status(ds, NODES, pods, "new", NOW) == {
        "currentNumberScheduled": 2,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 3,
        "numberReady": 1,
        "observedGeneration": 3,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
    }


def test_pods_on_nodes_the_selector_excludes_are_misscheduled():
    ds = _ds(node_selector={"kubernetes.io/hostname": N1})
    status = daemonset_status(ds, NODES, _on_nodes(_pod(N1, "new"), _pod(N2, "new")), "new", NOW)
    assert (status["desiredNumberScheduled"], status["numberMisscheduled"]) == (1, 1)


# ----------------------------------------------------------------------------- the controller


class World(WorkloadWorld):
    resource, kind, name, image = "daemonsets", "DaemonSet", "agent", IMAGE

    def ds(self, name="agent") -> dict:
        return self.get(name)

    def pods(self) -> list[dict]:
        return self.store.list("pods", NS)


class PodLog:
    """Pod creations, deletions (deletionTimestamp set) and removals, in order, by node, with
    how many Pods were available at each deletion."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.entries: list[tuple[str, str]] = []
        self.available_at_deletion: list[int] = []
        self._terminating: set[str] = set()
        world.store.subscribe(self._on_change)

    def _on_change(self, event) -> None:
        if event.resource != "pods":
            return
        meta, node = event.obj["metadata"], target_node(event.obj)
        if event.type == "ADDED":
            self.entries.append(("create", node))
        elif event.type == "DELETED":
            self.entries.append(("gone", node))
        elif meta.get("deletionTimestamp") and meta["uid"] not in self._terminating:
            self._terminating.add(meta["uid"])
            self.entries.append(("delete", node))
            live = [p for p in self.world.store.select("pods", NS)
                    if not p["metadata"].get("deletionTimestamp") and is_ready(p)]  # fmt: skip
            self.available_at_deletion.append(len(live))


def _rolling_update(max_unavailable: int, max_surge: int) -> dict:
    rolling = {"maxUnavailable": max_unavailable, "maxSurge": max_surge}
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


@pytest.fixture
def world() -> World:
    return World()


def test_api_defaults_a_daemonset_and_keeps_its_template_generation(world):
    ds = world.create()
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert ds["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    assert ds["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                            "desiredNumberScheduled": 0, "numberReady": 0}  # fmt: skip
    restarted = world.restart()
    assert restarted["metadata"]["generation"] == 2
    assert restarted["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    resized = world.patch({"spec": {"minReadySeconds": 1}})
    assert resized["metadata"]["generation"] == 3
    assert resized["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


def test_api_rejects_zero_surge_with_zero_unavailability(world):
    with pytest.raises(ApiError) as failure:
        world.create(updateStrategy=_rolling_update(0, 0))
    assert failure.value.code == 422
    assert "may not be 0 when `maxSurge` is 0" in failure.value.message


def test_one_pod_runs_on_each_node_pinned_there_by_affinity(world):
    created = world.create()
    ds = world.settle()
    hash_ = pod_template_hash(created["spec"]["template"])
    pods = world.pods()
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["sim-node-1", "sim-node-2", "sim-node-3"]
    for pod in pods:
        assert pod["metadata"]["name"].startswith("agent-") and len(pod["metadata"]["name"]) == 11
        assert pod["metadata"]["labels"] == {"app": "agent", "pod-template-generation": "1",
                                             "controller-revision-hash": hash_}  # fmt: skip
        assert (
            target_node({"spec": {"affinity": pod["spec"]["affinity"]}}) == pod["spec"]["nodeName"]
        )
        assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute"} in pod["spec"]["tolerations"]  # fmt: skip
    scheduled = [e["message"] for e in world.store.list("events", NS) if e["reason"] == "Scheduled"]
    assert len(scheduled) == 3 and all(" to sim-node-" in m for m in scheduled)
    assert ds["status"] == {
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 3,
        "numberReady": 3,
        "observedGeneration": 1,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
    }
    (revision,) = world.revisions().values()
    assert revision["metadata"]["name"] == f"agent-{hash_}"
    assert revision["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_}
    assert revision["revision"] == 1
    assert sorted(world.events("SuccessfulCreate")) == sorted(
        f"Created pod: {p['metadata']['name']}" for p in pods
    )


def test_node_selector_limits_the_nodes_by_their_labels():
    world = World(SimConfig(node_labels={"sim-node-2": {"disk": "ssd"}}))
    world.create(pod_spec={"nodeSelector": {"disk": "ssd"}})
    ds = world.settle()
    assert [p["spec"]["nodeName"] for p in world.pods()] == ["sim-node-2"]
    assert ds["status"]["desiredNumberScheduled"] == 1


def test_rolling_restart_goes_node_by_node_waiting_for_each_new_pod(world):
    world.create()
    world.settle()
    log = PodLog(world)
    world.restart()
    world.settle()
    assert log.entries == [
        (verb, node)
        for node in ("sim-node-1", "sim-node-2", "sim-node-3")
        for verb in ("delete", "gone", "create")
    ]
    assert log.available_at_deletion == [2, 2, 2], "each deletion waited for the new Pod"
    hash_ = ds_hash(world)
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in world.pods()} == {hash_}
    assert sorted(r["revision"] for r in world.revisions().values()) == [1, 2]
    assert len(world.events("SuccessfulDelete")) == 3


def ds_hash(world: World) -> str:
    return pod_template_hash(world.ds()["spec"]["template"])


def test_a_crash_looping_new_pod_blocks_the_rollout_for_good(world):
    world.create()
    world.settle()
    world.sim.set_behaviour(NS, "daemonset/agent", Behaviour.crash_loop())
    world.restart()
    world.run(limit=300.0)
    hash_ = ds_hash(world)
    new = [p for p in world.pods() if p["metadata"]["labels"]["controller-revision-hash"] == hash_]
    assert len(new) == 1 and new[0]["status"]["containerStatuses"][0]["restartCount"] >= 3
    status = world.ds()["status"]
    assert (status["updatedNumberScheduled"], status["numberAvailable"]) == (1, 2)
    assert not rollout_complete(world.ds())


def test_max_unavailable_two_replaces_two_nodes_at_once(world):
    world.create(updateStrategy=_rolling_update(2, 0))
    world.settle()
    log = PodLog(world)
    world.restart()
    world.settle()
    assert log.entries[:2] == [("delete", "sim-node-1"), ("delete", "sim-node-2")]


def test_max_surge_starts_the_new_pod_before_the_old_one_goes(world):
    world.create(updateStrategy=_rolling_update(0, 1))
    world.settle()
    log = PodLog(world)
    world.restart()
    world.settle()
    assert log.entries[:3] == [("create", "sim-node-1"), ("delete", "sim-node-1"),
                               ("create", "sim-node-2")]  # fmt: skip
    assert min(log.available_at_deletion) == 3, "never fewer available Pods than nodes"


def test_on_delete_replaces_only_pods_someone_deletes(world):
    world.create(updateStrategy={"type": "OnDelete"})
    assert world.run(lambda: world.ds()["status"].get("numberAvailable") == 3)
    log = PodLog(world)
    world.restart()
    world.run(limit=30.0)
    assert log.entries == []
    assert "updatedNumberScheduled" not in world.ds()["status"]
    victim = world.pods()[0]
    world.sim.delete_pod(NS, victim["metadata"]["name"])
    assert world.run(lambda: world.ds()["status"].get("updatedNumberScheduled") == 1
                     and world.ds()["status"].get("numberAvailable") == 3)  # fmt: skip
    assert log.entries == [("delete", victim["spec"]["nodeName"]),
                           ("gone", victim["spec"]["nodeName"]),
                           ("create", victim["spec"]["nodeName"])]  # fmt: skip


def test_undo_bumps_the_old_revision(world):
    world.create()
    first = world.settle()
    world.restart()
    world.settle()
    (old,) = [r for r in world.revisions().values() if r["revision"] == 1]
    world.patch(old["data"])  # what `kubectl rollout undo daemonset/agent` sends
    ds = world.settle()
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "3"
    assert {n: r["revision"] for n, r in world.revisions().items()}[old["metadata"]["name"]] == 3
    assert ds_hash(world) == pod_template_hash(first["spec"]["template"])


def test_revision_history_limit_drops_old_revisions(world):
    world.create(revisionHistoryLimit=1)
    world.settle()
    for stamp in ("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"):
        world.restart(stamp)
        world.settle()
    assert sorted(r["revision"] for r in world.revisions().values()) == [3, 4]


def test_deleting_a_daemonset_collects_its_pods_and_revisions(world):
    world.create()
    world.settle()
    world.api.delete(by_plural("daemonsets"), NS, "agent")
    assert world.run(lambda: not world.pods() and not world.revisions())
