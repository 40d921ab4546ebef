"""The simulated Deployment and ReplicaSet controllers against documented Kubernetes behaviour.

Driven through the Store with a manual clock, so every step of a rollout is observed exactly:
a store subscriber records each ScalingReplicaSet occurrence and checks the surge and
availability bounds after every single change.
"""

from __future__ import annotations

import pytest

from tests.cluster.behaviours import Behaviour
from tests.cluster.controllers import (
    parse_timestamp,
    pod_template_hash,
    resolve_fenceposts,
    strategy_errors,
    templates_equal_ignoring_hash,
)
from tests.cluster.simulation import ManualClock, SimConfig, Simulation, run_until
from tests.cluster.store import Store, format_timestamp

NS = "shop"
IMAGE = "registry.example.com/acme/web:1.0.0"


# ----------------------------------------------------------------------------- fixtures


class World:
    """A store, a manual clock and a simulation, with the few helpers the tests share."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.clock = ManualClock()
        self.store = Store(clock=self.clock)
        self.sim = Simulation(self.store, config or SimConfig(), clock=self.clock)
        self.store.create("namespaces", {"metadata": {"name": NS}})

    def create_deployment(self, name: str = "web", replicas: int = 3, **spec) -> dict:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": IMAGE}]},
                },
                **spec,
            },
        }
        return self.store.create("deployments", body)

    def deployment(self, name: str = "web") -> dict:
        return self.store.get("deployments", NS, name)

    def change(self, name: str = "web", edit=None) -> dict:
        d = self.deployment(name)
        edit(d)
        return self.store.update("deployments", d)

    def restart(self, name: str = "web", stamp: str = "2027-01-01T00:00:00Z") -> dict:
        def edit(d: dict) -> None:
            meta = d["spec"]["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = stamp

        return self.change(name, edit)

    def scale(self, replicas: int, name: str = "web") -> dict:
        return self.change(name, lambda d: d["spec"].__setitem__("replicas", replicas))

    def replicasets(self) -> dict[str, dict]:
        return {rs["metadata"]["name"]: rs for rs in self.store.list("replicasets", NS)}

    def pods(self) -> list[dict]:
        return self.store.list("pods", NS)

    def run(self, predicate=None, limit: float = 60.0) -> bool:
        return run_until(self.sim, self.clock, predicate, limit=limit)

    def settle(self, name: str = "web") -> dict:
        assert self.run(lambda: complete(self.deployment(name))), self.deployment(name)
        self.run(limit=2.0)  # let terminating pods go
        return self.deployment(name)

    def events(self, reason: str | None = None) -> list[dict]:
        events = self.store.list("events", NS)
        return [e for e in events if reason is None or e["reason"] == reason]


def complete(d: dict) -> bool:
    """kubectl rollout status's success rule."""
    status, replicas = d.get("status") or {}, d["spec"].get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) >= replicas
        and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
        and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
    )


class Recorder:
    """Records ScalingReplicaSet occurrences in order and checks pod counts on every change."""

    def __init__(self, world: World, max_total: int | None = None, min_ready: int | None = None):
        self.world = world
        self.max_total = max_total
        self.min_ready = min_ready
        self.scalings: list[str] = []
        self.violations: list[str] = []
        self.pod_log: list[tuple[str, str]] = []  # (rs name, event type) for Recreate checks
        self._counts: dict[str, int] = {}
        world.store.subscribe(self._on_change)

    def _on_change(self, event) -> None:
        obj = event.obj
        if event.resource == "events" and obj.get("reason") == "ScalingReplicaSet":
            name = obj["metadata"]["name"]
            if self._counts.get(name) != obj["count"]:
                self._counts[name] = obj["count"]
                self.scalings.append(obj["message"])
        if event.resource != "pods":
            return
        self.pod_log.append((obj["metadata"]["ownerReferences"][0]["name"], event.type))
        if self.max_total is None and self.min_ready is None:
            return
        pods = self.world.store.select("pods", NS)
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in active if _ready(p)]
        if self.max_total is not None and len(active) > self.max_total:
            self.violations.append(f"{len(active)} pods > {self.max_total}")
        if self.min_ready is not None and len(ready) < self.min_ready:
            self.violations.append(f"{len(ready)} ready < {self.min_ready}")


def _ready(pod: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _names(world: World) -> tuple[str, str]:
    """(old, new) ReplicaSet names, oldest first."""
    rss = sorted(
        world.replicasets().values(),
        key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
    )
    return rss[0]["metadata"]["name"], rss[-1]["metadata"]["name"]


@pytest.fixture
def world() -> World:
    return World()


# ----------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 3, (1, 0)),  # surge rounds up, unavailable rounds down
        ("25%", "25%", 10, (3, 2)),
        ("25%", "25%", 1, (1, 0)),
        (3, 0, 10, (3, 0)),
        (0, 0, 10, (0, 1)),  # both zero: unavailable becomes 1 so a rollout can progress
        ("0%", "10%", 5, (0, 1)),  # 0.5 rounds down to 0 -> both zero -> 1
        ("50%", "50%", 5, (3, 2)),
        (None, None, 4, (0, 1)),
    ],
)
def test_fenceposts_round_surge_up_and_unavailable_down(surge, unavailable, desired, expected):
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(
    ("strategy", "errors"),
    [
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, []),
        ({"type": "Recreate"}, []),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            [
                (
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "Invalid value: 0: may not be 0 when `maxSurge` is 0",
                )
            ],
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}},
            [
                (
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "Invalid value: 0%: may not be 0 when `maxSurge` is 0",
                )
            ],
        ),
    ],
)
def test_strategy_validation_rejects_zero_surge_with_zero_unavailable(strategy, errors):
    assert strategy_errors({"spec": {"strategy": strategy}}) == errors


def test_template_hash_is_stable_safe_and_ignores_the_hash_label():
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}}
    labelled = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}},
        "spec": {"containers": [{"name": "a"}]},
    }
    value = pod_template_hash(template)
    assert value == pod_template_hash(labelled)
    assert set(value) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(value) <= 10
    assert pod_template_hash(template, 1) != value
    assert templates_equal_ignoring_hash(template, labelled)
    assert not templates_equal_ignoring_hash(
        template, {**template, "spec": {"containers": [{"name": "b"}]}}
    )


# ----------------------------------------------------------------------------- creation


def test_new_deployment_gets_a_hashed_owned_replicaset_and_kubernetes_status(world):
    world.create_deployment(replicas=3)
    start = world.clock.now
    d = world.settle()

    (rs,) = world.replicasets().values()
    meta = rs["metadata"]
    template_hash = meta["labels"]["pod-template-hash"]
    assert meta["name"] == f"web-{template_hash}"
    assert meta["labels"] == {"app": "web", "pod-template-hash": template_hash}
    assert rs["spec"]["selector"]["matchLabels"] == {
        "app": "web",
        "pod-template-hash": template_hash,
    }
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == template_hash
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": d["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert rs["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "terminatingReplicas": 0,
        "observedGeneration": 1,
    }
    assert all(p["metadata"]["name"].startswith(f"web-{template_hash}-") for p in world.pods())
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    stamp = format_timestamp(start)  # everything happened within the first second
    status = d["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "terminatingReplicas": 0,
    }
    assert status["conditions"] == [
        {
            "type": "Available",
            "status": "True",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": "NewReplicaSetAvailable",
            "message": f'ReplicaSet "{meta["name"]}" has successfully progressed.',
        },
    ]
    assert [e["message"] for e in world.events("ScalingReplicaSet")] == [
        f"Scaled up replica set {meta['name']} from 0 to 3"
    ]
    assert len(world.events("SuccessfulCreate")) == 3


def test_status_mid_rollout_counts_all_replicasets(world):
    world.create_deployment(replicas=3)
    world.settle()
    world.restart()
    world.run(lambda: len(world.pods()) == 4, limit=5)
    world.sim.step()
    d = world.deployment()
    status = d["status"]
    assert status["observedGeneration"] == 2
    assert status["replicas"] == 4
    assert status["updatedReplicas"] == 1
    assert status["readyReplicas"] == 3
    assert status["availableReplicas"] == 3
    assert status["unavailableReplicas"] == 1
    _old, new = _names(world)
    progressing = [c for c in status["conditions"] if c["type"] == "Progressing"][0]
    assert progressing["status"] == "True"
    assert progressing["reason"] == "ReplicaSetUpdated"
    assert progressing["message"] == f'ReplicaSet "{new}" is progressing.'
    available = [c for c in status["conditions"] if c["type"] == "Available"][0]
    assert available["reason"] == "MinimumReplicasAvailable"


def test_new_deployment_is_unavailable_until_minimum_availability(world):
    world.create_deployment(replicas=3, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}})  # fmt: skip
    world.run(lambda: "status" in world.deployment(), limit=1)
    available = [c for c in world.deployment()["status"]["conditions"] if c["type"] == "Available"]
    assert available[0]["status"] == "False"
    assert available[0]["reason"] == "MinimumReplicasUnavailable"
    assert available[0]["message"] == "Deployment does not have minimum availability."


# ----------------------------------------------------------------------------- rolling updates


def test_rolling_update_3_replicas_25_percent_goes_one_pod_at_a_time(world):
    """maxSurge 25% of 3 rounds up to 1, maxUnavailable rounds down to 0: never more than 4
    pods, never fewer than 3 ready; the documented event sequence."""
    world.create_deployment(replicas=3)
    world.settle()
    recorder = Recorder(world, max_total=4, min_ready=3)
    world.restart()
    world.settle()
    old, new = _names(world)
    assert recorder.scalings == [
        f"Scaled up replica set {new} from 0 to 1",
        f"Scaled down replica set {old} from 3 to 2",
        f"Scaled up replica set {new} from 1 to 2",
        f"Scaled down replica set {old} from 2 to 1",
        f"Scaled up replica set {new} from 2 to 3",
        f"Scaled down replica set {old} from 1 to 0",
    ]
    assert recorder.violations == []
    rss = world.replicasets()
    assert rss[old]["spec"]["replicas"] == 0
    assert rss[new]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert world.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert len(world.pods()) == 3


def test_rolling_update_10_replicas_surge_3_unavailable_0_moves_three_at_a_time(world):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 0}}
    world.create_deployment(replicas=10, strategy=strategy)
    world.settle()
    recorder = Recorder(world, max_total=13, min_ready=10)
    world.restart()
    world.settle()
    old, new = _names(world)
    assert recorder.scalings == [
        f"Scaled up replica set {new} from 0 to 3",
        f"Scaled down replica set {old} from 10 to 7",
        f"Scaled up replica set {new} from 3 to 6",
        f"Scaled down replica set {old} from 7 to 4",
        f"Scaled up replica set {new} from 6 to 9",
        f"Scaled down replica set {old} from 4 to 1",
        f"Scaled up replica set {new} from 9 to 10",
        f"Scaled down replica set {old} from 1 to 0",
    ]
    assert recorder.violations == []


def test_recreate_scales_old_to_zero_and_waits_for_its_pods_to_be_gone(world):
    world.create_deployment(replicas=3, strategy={"type": "Recreate"})
    world.settle()
    recorder = Recorder(world)
    world.restart()
    world.settle()
    old, new = _names(world)
    assert recorder.scalings == [
        f"Scaled down replica set {old} from 3 to 0",
        f"Scaled up replica set {new} from 0 to 3",
    ]
    first_new = next(i for i, (rs, kind) in enumerate(recorder.pod_log) if rs == new)
    old_deleted = [
        i for i, (rs, kind) in enumerate(recorder.pod_log) if rs == old and kind == "DELETED"
    ]
    assert len(old_deleted) == 3 and max(old_deleted) < first_new
    rss = world.replicasets()
    assert rss[new]["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "3"


def test_old_pods_are_terminating_before_they_are_gone(world):
    world.create_deployment(replicas=3)
    world.settle()
    world.restart()

    def terminating() -> list[dict]:
        return [p for p in world.pods() if p["metadata"].get("deletionTimestamp")]

    assert world.run(lambda: terminating(), limit=5)
    (pod,) = terminating()
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    old, _new = _names(world)
    assert world.replicasets()[old]["status"]["terminatingReplicas"] == 1
    assert world.deployment()["status"]["terminatingReplicas"] == 1
    killing = [
        e for e in world.events("Killing") if e["involvedObject"]["name"] == pod["metadata"]["name"]
    ]
    assert killing[0]["message"] == "Stopping container app"
    assert world.run(lambda: world.store.get("pods", NS, pod["metadata"]["name"]) is None, limit=5)


# ----------------------------------------------------------------------------- conditions


def _progressing_history(world: World) -> list[tuple[float, dict]]:
    """(clock, Progressing condition) for every change of that condition, in order."""
    history: list[tuple[float, dict]] = []

    def on_change(event) -> None:
        if event.resource != "deployments":
            return
        conditions = (event.obj.get("status") or {}).get("conditions") or []
        condition = next((c for c in conditions if c["type"] == "Progressing"), None)
        if condition and (not history or history[-1][1] != condition):
            history.append((world.clock.now, condition))

    world.store.subscribe(on_change)
    return history


def test_progress_deadline_exceeded_when_new_pods_never_become_ready(world):
    world.create_deployment(replicas=2, progressDeadlineSeconds=3)
    world.settle()
    history = _progressing_history(world)
    world.sim.set_behaviour(NS, "web", Behaviour.never_ready())
    world.restart()

    assert world.run(lambda: history and history[-1][1]["status"] == "False", limit=30)
    _old, new = _names(world)
    (stuck_at, stuck), (failed_at, failed) = history[-2:]
    assert (stuck["status"], stuck["reason"]) == ("True", "ReplicaSetUpdated")
    assert failed["reason"] == "ProgressDeadlineExceeded"
    assert failed["message"] == f'ReplicaSet "{new}" has timed out progressing.'
    assert failed["lastTransitionTime"] == failed["lastUpdateTime"] == format_timestamp(failed_at)
    # flagged at the first moment lastUpdateTime + deadline lies in the past, not before
    deadline = parse_timestamp(stuck["lastUpdateTime"]) + 3
    assert deadline < failed_at <= deadline + 0.01
    status = world.deployment()["status"]
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"  # the old pods still serve
    assert (status["updatedReplicas"], status["availableReplicas"]) == (1, 2)


def test_paused_deployment_is_not_rolled_until_resumed(world):
    world.create_deployment(replicas=2)
    world.settle()
    history = _progressing_history(world)
    world.change(edit=lambda d: d["spec"].__setitem__("paused", True))
    world.restart()
    world.run(limit=3)
    d = world.deployment()
    assert len(world.replicasets()) == 1
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    progressing = history[-1][1]
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )

    world.change(edit=lambda d: d["spec"].__setitem__("paused", False))
    d = world.settle()
    _old, new = _names(world)
    seen: list[tuple] = []
    for _at, c in history:  # lastUpdateTime moves with each bit of progress: compare the rest
        if not seen or seen[-1] != (c["status"], c["reason"], c["message"]):
            seen.append((c["status"], c["reason"], c["message"]))
    assert seen[1:] == [  # [0]: the condition as it was before pausing
        ("Unknown", "DeploymentPaused", "Deployment is paused"),
        ("Unknown", "DeploymentResumed", "Deployment is resumed"),
        ("True", "NewReplicaSetCreated", f'Created new replica set "{new}"'),
        ("True", "ReplicaSetUpdated", f'ReplicaSet "{new}" is progressing.'),
        ("True", "NewReplicaSetAvailable", f'ReplicaSet "{new}" has successfully progressed.'),
    ]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_replicas_changed_mid_rollout_are_spread_proportionally(world):
    """The documented example: 10 replicas, maxSurge 3, maxUnavailable 2, stuck on a bad
    image at 8 old + 5 new; scaling to 15 adds 3 to the old and 2 to the new ReplicaSet."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    world.create_deployment(replicas=10, strategy=strategy)
    world.settle()
    world.change(edit=lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__(
        "image", "registry.example.com/acme/web:doesnotexist"))  # fmt: skip
    world.run(limit=5)
    old, new = _names(world)
    sizes = {name: rs["spec"]["replicas"] for name, rs in world.replicasets().items()}
    assert sizes == {old: 8, new: 5}

    recorder = Recorder(world)
    world.scale(15)
    world.run(limit=5)
    sizes = {name: rs["spec"]["replicas"] for name, rs in world.replicasets().items()}
    assert sizes == {old: 11, new: 7}
    assert recorder.scalings == [
        f"Scaled up replica set {old} from 8 to 11",
        f"Scaled up replica set {new} from 5 to 7",
    ]
    for rs in world.replicasets().values():
        annotations = rs["metadata"]["annotations"]
        assert annotations["deployment.kubernetes.io/desired-replicas"] == "15"
        assert annotations["deployment.kubernetes.io/max-replicas"] == "18"


def test_scaling_a_settled_deployment_scales_its_one_replicaset(world):
    world.create_deployment(replicas=3)
    world.settle()
    recorder = Recorder(world)
    world.scale(5)
    d = world.settle()
    (name,) = world.replicasets()
    assert recorder.scalings == [f"Scaled up replica set {name} from 3 to 5"]
    assert d["status"]["availableReplicas"] == 5


def test_min_ready_seconds_delays_availability(world):
    world.create_deployment(replicas=1, minReadySeconds=5)

    def ready_not_available() -> bool:
        status = world.deployment().get("status") or {}
        return status.get("readyReplicas") == 1 and not status.get("availableReplicas")

    assert world.run(ready_not_available, limit=5)
    ready_at = world.clock.now
    assert world.run(lambda: world.deployment()["status"].get("availableReplicas") == 1, limit=10)
    assert world.clock.now - ready_at >= 4  # whole-second timestamps: 5 s after the ready second
    assert world.replicasets()[_names(world)[1]]["spec"]["minReadySeconds"] == 5


def test_undo_brings_the_old_replicaset_back_with_the_next_revision(world):
    world.create_deployment(replicas=2)
    world.settle()
    first_template = world.deployment()["spec"]["template"]
    world.change(edit=lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__(
        "image", "registry.example.com/acme/web:2.0.0"))  # fmt: skip
    world.settle()
    old, new = _names(world)
    recorder = Recorder(world)

    world.change(edit=lambda d: d["spec"].__setitem__("template", first_template))  # rollout undo
    world.settle()
    rss = world.replicasets()
    assert len(rss) == 2
    assert rss[old]["spec"]["replicas"] == 2 and rss[new]["spec"]["replicas"] == 0
    annotations = rss[old]["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "3"
    assert annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert rss[new]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert world.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert recorder.scalings == [
        f"Scaled up replica set {old} from 0 to 1",
        f"Scaled down replica set {new} from 2 to 1",
        f"Scaled up replica set {old} from 1 to 2",
        f"Scaled down replica set {new} from 1 to 0",
    ]


def test_revision_history_limit_deletes_the_oldest_empty_replicasets(world):
    world.create_deployment(replicas=1, revisionHistoryLimit=1)
    world.settle()
    for stamp in ("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", "2027-01-03T00:00:00Z"):
        world.restart(stamp=stamp)
        world.settle()
    world.run(limit=2)
    revisions = sorted(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in world.replicasets().values()
    )
    assert revisions == ["3", "4"]


def test_quota_exceeded_is_a_replica_failure_until_lifted(world):
    world.create_deployment(replicas=3)
    world.settle()
    world.sim.set_pod_quota(NS, 3, name="compute-resources")
    world.restart()

    def conditions() -> dict:
        return {c["type"]: c for c in world.deployment()["status"]["conditions"]}

    assert world.run(lambda: "ReplicaFailure" in conditions(), limit=5)
    _old, new = _names(world)
    failure = conditions()["ReplicaFailure"]
    assert failure["status"] == "True" and failure["reason"] == "FailedCreate"
    assert failure["message"].startswith(f'pods "{new}-')
    assert failure["message"].endswith(
        '" is forbidden: exceeded quota: compute-resources, requested: pods=1, '
        "used: pods=3, limited: pods=3"
    )
    events = world.events("FailedCreate")  # one per attempt: each names another pod
    assert {e["type"] for e in events} == {"Warning"}
    assert {e["involvedObject"]["name"] for e in events} == {new}
    assert f"Error creating: {failure['message']}" in [e["message"] for e in events]
    rs_failure = world.replicasets()[new]["status"]["conditions"][0]
    assert (rs_failure["type"], rs_failure["reason"]) == ("ReplicaFailure", "FailedCreate")

    world.sim.set_pod_quota(NS, None)
    world.settle()
    assert "ReplicaFailure" not in conditions()


def test_scale_down_removes_not_ready_pods_first(world):
    world.create_deployment(replicas=3)
    world.settle()
    ready_names = {p["metadata"]["name"] for p in world.pods()}
    world.sim.set_behaviour(NS, "web", Behaviour.never_ready())
    world.scale(5)
    world.run(lambda: len(world.pods()) == 5, limit=5)
    world.run(limit=1)
    world.scale(3)
    world.run(limit=3)
    assert {p["metadata"]["name"] for p in world.pods()} == ready_names
    deleted = [e["message"] for e in world.events("SuccessfulDelete")]
    assert len(deleted) == 2 and all(m.split(": ")[1] not in ready_names for m in deleted)


def test_deleting_a_deployment_collects_its_replicasets_and_pods(world):
    world.create_deployment(replicas=2)
    world.settle()
    world.store.delete("deployments", NS, "web")
    world.run(limit=3)
    assert world.replicasets() == {}
    assert world.pods() == []


def test_pods_created_before_set_behaviour_keep_theirs(world):
    world.create_deployment(replicas=1)
    world.settle()
    world.sim.set_behaviour(NS, "web", Behaviour.crash_loop())
    world.run(limit=2)
    (pod,) = world.pods()
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert _ready(pod)


def test_500_replica_rollout_stays_within_surge_and_completes(world):
    """25%/25% of 500: at most 625 pods wanted, never below 375 available."""
    world.create_deployment(replicas=500)
    world.settle()
    recorder = Recorder(world)
    world.restart()
    d = world.settle()
    old, new = _names(world)
    sizes = {old: 500, new: 0}
    for message in recorder.scalings:
        words = message.split()  # Scaled up replica set NAME from A to B
        sizes[words[4]] = int(words[8])
        assert sum(sizes.values()) <= 625, message
    assert sizes == {old: 0, new: 500}
    assert recorder.scalings[0] == f"Scaled up replica set {new} from 0 to 125"
    assert recorder.scalings[1] == f"Scaled down replica set {old} from 500 to 375"
    assert d["status"]["availableReplicas"] == 500 and len(world.pods()) == 500


def test_scaling_to_zero_removes_all_pods_and_omits_zero_counts(world):
    world.create_deployment(replicas=2)
    world.settle()
    world.scale(0)
    world.run(limit=3)
    status = world.deployment()["status"]
    assert world.pods() == []
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 2,
        "terminatingReplicas": 0,
    }
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"
