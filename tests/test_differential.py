"""Differential fidelity: each scenario runs on the simulated cluster and on the official
control plane, and the plugin must give the same verdict, exit code and key lines on both
(tests/controlplane/differential.py says which lines and what is normalized).

A mismatch means the simulated cluster is wrong (the official components are the reference):
fix the simulator, and say in tests/cluster/README.md what was learned. The expected outcome
is asserted as well, so a scenario where both clusters agree on a wrong verdict still fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from tests.cluster.behaviours import Behaviour
from tests.cluster.managed_fields import HARNESS_MANAGER
from tests.cluster.simulation import SimConfig
from tests.controlplane.differential import RealSide, Side, SimSide, normalize, pod_waiting
from tests.controlplane.rbac import read_only_rules, required_rules

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DB_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]


@dataclass(frozen=True)
class Scenario:
    """Arrange on a side, run the plugin with `args` (optionally changing the cluster while
    it watches), expect `exit_code` and a verdict line starting with `verdict` (None: no
    verdict line, e.g. a refusal or a dry run) and, if given, a `summary` line."""

    arrange: Callable[[Side], Any]
    exit_code: int
    verdict: str | None
    args: tuple[str, ...] = ("--timeout", "60s")
    summary: str | None = None
    user: Callable[[Side], str] | None = None  # the kubeconfig to run with
    during: tuple[Callable[[Side], bool], Callable[[Side], None]] | None = None


def linked(behaviour: Behaviour | None = None, **link: Any) -> Callable[[Side], None]:
    def arrange(side: Side) -> None:
        side.link(**link)
        if behaviour is not None:
            side.cluster.set_behaviour(side.ns, "backend", behaviour)

    return arrange


def secret_deleted_after_linking(side: Side) -> None:
    side.cluster.create_secret(side.ns, "shop-db", {"url": "postgres://db"})
    side.link(containers=[{"name": "api", "image": "acme/shop:1", "env": DB_ENV}])
    side.cluster.delete("secrets", side.ns, "shop-db")


def configmap_key_removed_after_linking(side: Side) -> None:
    side.cluster.create_configmap(side.ns, "shop-config", {"mode": "fast"})
    env = [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "shop-config",
                                                              "key": "mode"}}}]  # fmt: skip
    side.link(containers=[{"name": "api", "image": "acme/shop:1", "env": env}])
    side.cluster.patch("configmaps", side.ns, "shop-config", {"data": {"mode": None}}, "merge")


def quota_of(limit: int) -> Callable[[Side], None]:
    def arrange(side: Side) -> None:
        side.link()
        side.cluster.set_pod_quota(side.ns, limit)

    return arrange


def config_error_shows(side: Side) -> bool:
    return pod_waiting(side.cluster, side.ns, "CreateContainerConfigError")


def create_the_secret(side: Side) -> None:
    side.cluster.create_secret(side.ns, "shop-db", {"url": "postgres://db"})


def our_restart_applied(workload: str) -> Callable[[Side], bool]:
    """The plugin's PATCH is in the live `workload` (KIND/NAME)."""
    kind, name = workload.split("/")

    def applied(side: Side) -> bool:
        live = side.cluster.get(kind, side.ns, name) or {}
        template = (live.get("spec") or {}).get("template") or {}
        return RESTARTED_AT in ((template.get("metadata") or {}).get("annotations") or {})

    return applied


def colleague_sets_the_image(workload: str) -> Callable[[Side], None]:
    """What `kubectl set image KIND/NAME app=...:2.0-hotfix` sends, as its field manager."""
    kind, name = workload.split("/")

    def set_image(side: Side) -> None:
        hotfix = [{"name": "app", "image": f"registry.example.com/acme/{name}:2.0-hotfix"}]
        patch = {"spec": {"template": {"spec": {"containers": hotfix}}}}
        side.cluster.patch(kind, side.ns, name, patch, field_manager="kubectl-set")

    return set_image


def colleague_pauses(side: Side) -> None:
    """What `kubectl rollout pause deployment/backend` sends."""
    side.cluster.patch("deployments", side.ns, "backend", {"spec": {"paused": True}},
                       field_manager="kubectl-rollout")  # fmt: skip


def with_urls(side: Side) -> None:
    side.link()
    side.cluster.create_service(side.ns, "backend", {"app": "backend"})
    backend = {"service": {"name": "backend", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    side.cluster.create_ingress(
        side.ns,
        "backend",
        rules=[{"host": "shop.example.com", "http": {"paths": [path]}}],
        tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
    )
    side.cluster.create_service(
        side.ns,
        "backend-lb",
        {"app": "backend"},
        type="LoadBalancer",
        ports=[{"port": 8443, "targetPort": 8080}],
        load_balancer_ingress=["203.0.113.7"],
    )


def restarted_by_someone_else(side: Side) -> None:
    side.link()
    side.cluster.set_behaviour(side.ns, "backend", Behaviour.crash_loop())
    annotations = {RESTARTED_AT: "2026-11-30T06:00:00Z"}
    patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
    side.cluster.patch("deployments", side.ns, "backend", patch)


def unlinked(side: Side) -> None:
    side.cluster.create_deployment(side.ns, "backend")


def read_only_user(side: Side) -> str:
    return side.user("viewer", read_only_rules())


def minimal_user(side: Side) -> str:
    return side.user("dev", required_rules())


def statefulset(behaviour: Behaviour | None = None, **kwargs: Any) -> Callable[[Side], None]:
    def arrange(side: Side) -> None:
        side.link_statefulset(**kwargs)
        if behaviour is not None:
            side.cluster.set_behaviour(side.ns, "statefulset/db", behaviour)

    return arrange


def daemonset(behaviour: Behaviour | None = None, **kwargs: Any) -> Callable[[Side], None]:
    def arrange(side: Side) -> None:
        side.link_daemonset(**kwargs)
        if behaviour is not None:
            side.cluster.set_behaviour(side.ns, "daemonset/agent", behaviour)

    return arrange


def three_kinds(failing: str | None = None) -> Callable[[Side], None]:
    """Deployment api, StatefulSet db, DaemonSet agent, all linked; `failing` crash-loops."""

    def arrange(side: Side) -> None:
        side.link("api")
        side.link_statefulset()
        side.link_daemonset()
        if failing is not None:
            side.cluster.set_behaviour(side.ns, failing, Behaviour.crash_loop())

    return arrange


def ordered_pair_whose_first_fails(side: Side) -> None:
    (side.checkout / ".restart-backend.yaml").write_text("order: [db, api]\n")
    side.link("api")
    side.link_statefulset()
    side.cluster.set_behaviour(side.ns, "statefulset/db", Behaviour.crash_loop())


CRASH_LOG = ("Starting", "FATAL: DATABASE_URL unset")
# Healing takes a few (scaled) kubelet back-offs; a wrong verdict must not cost two long
# timeouts.
HEALING = ("--timeout", "20s")
# A missing Secret or a full quota may be fixed in time (default grace 30 s); these scenarios
# never fix them, so a short grace keeps them short.
CONFIG_GRACE = ("--config-grace", "1s", "--timeout", "60s")
SCENARIOS = {
    "healthy": Scenario(linked(), 0, "✓ Rolling restart complete for backend"),
    "crash-loop": Scenario(
        linked(Behaviour.crash_loop(exit_code=3, log_lines=CRASH_LOG)), 1, "✗ Restart failed"
    ),
    "oom-killed": Scenario(linked(Behaviour.oom_killed()), 1, "✗ Restart failed"),
    "image-not-found": Scenario(linked(Behaviour.image_pull_backoff()), 1, "✗ Restart failed"),
    "missing-secret-never-created": Scenario(
        secret_deleted_after_linking, 1, "✗ Restart failed", CONFIG_GRACE
    ),
    "missing-configmap-key": Scenario(
        configmap_key_removed_after_linking, 1, "✗ Restart failed", CONFIG_GRACE
    ),
    "never-ready-times-out": Scenario(
        linked(Behaviour.never_ready()), 3, "⚠ Restart timeout", ("--timeout", "3s")
    ),
    "unschedulable": Scenario(
        linked(Behaviour.unschedulable()),
        1,
        "✗ Restart failed",
        ("--unschedulable-grace", "1s", "--timeout", "60s"),
    ),
    "progress-deadline": Scenario(
        linked(Behaviour.never_ready(), progress_deadline_seconds=2), 1, "✗ Restart failed"
    ),
    "paused": Scenario(linked(paused=True), 5, None, ()),
    "forbidden-patch": Scenario(linked(), 5, None, (), user=read_only_user),
    "minimal-role": Scenario(linked(), 0, "✓ Rolling restart complete", (), user=minimal_user),
    "pod-quota": Scenario(
        quota_of(3), 1, "✗ Restart failed: ReplicaSet could not create pods", CONFIG_GRACE
    ),
    "undo-on-failure": Scenario(
        linked(Behaviour.crash_loop()),
        1,
        "✗ Restart failed",
        ("--undo-on-failure", "--timeout", "60s"),
    ),
    "zero-replicas": Scenario(linked(replicas=0), 0, "✓ Rolling restart complete", ()),
    "urls-from-ingress-and-load-balancer": Scenario(
        with_urls, 0, "✓", (), "URLs: https://shop.example.com, http://203.0.113.7:8443"
    ),
    "dry-run-as-the-minimal-role": Scenario(
        linked(),
        0,
        None,
        ("--dry-run",),
        "Dry run: would restart deployment shop/backend (context <context>)",
        user=minimal_user,
    ),
    "status-of-a-failing-rollout-started-elsewhere": Scenario(
        restarted_by_someone_else, 1, "✗ Restart failed", ("status", "--timeout", "60s")
    ),
    "nothing-linked": Scenario(unlinked, 4, None, ()),
    # Start-ups that heal: the restart is complete (truthful before fast).
    "crash-once-then-ready": Scenario(
        linked(Behaviour.crash_loop(failures=1)), 0, "✓ Rolling restart complete", HEALING
    ),
    "registry-503-once": Scenario(
        linked(Behaviour.image_pull_backoff(pull_error="unavailable", failures=1)),
        0,
        "✓ Rolling restart complete",
        HEALING,
    ),
    "slow-warm-up": Scenario(
        linked(Behaviour.never_ready(unready_for=30)), 0, "✓ Rolling restart complete", HEALING
    ),
    # StatefulSets and DaemonSets: the real statefulset and daemonset controllers.
    "statefulset-healthy": Scenario(statefulset(), 0, "✓ Rolling restart complete for db"),
    "statefulset-crash-loop": Scenario(
        statefulset(Behaviour.crash_loop(exit_code=3, log_lines=CRASH_LOG)), 1, "✗ Restart failed"
    ),
    # Undo through ControllerRevisions. Unlike a Deployment's, whose old pods never stopped,
    # a StatefulSet's or DaemonSet's rollback recreates the pods the restart replaced, and a
    # cause outside the template (here: every new pod of the workload crashes) fails them
    # again: both clusters must say the rollback did not finish, and name the pod. (A
    # StatefulSet's broken pod is not replaced by its controller after a rollback, so
    # --delete-pods does it.)
    "statefulset-undo-on-failure": Scenario(
        statefulset(Behaviour.crash_loop()),
        1,
        "✗ Restart failed",
        ("--undo-on-failure", "--delete-pods", "--timeout", "90s"),
        "Rollback failed: rollback to revision 1 did not finish: pod db-2 (container app) is "
        "in CrashLoopBackOff",
    ),
    "statefulset-crash-once-then-ready": Scenario(
        statefulset(Behaviour.crash_loop(failures=1)),
        0,
        "✓ Rolling restart complete",
        ("--timeout", "60s"),
    ),
    "statefulset-on-delete": Scenario(
        statefulset(update_strategy="OnDelete"),
        0,
        None,
        (),
        "Restart sent to statefulset shop/db, but no pod was replaced: it uses the OnDelete "
        "update strategy, so its pods take the new template only when they are deleted.",
    ),
    "statefulset-on-delete-deleting-pods": Scenario(
        statefulset(update_strategy="OnDelete"),
        0,
        "✓ Rolling restart complete",
        ("--delete-pods", "--timeout", "60s"),
        "Deleted pods (--delete-pods): db-2, db-1, db-0",
    ),
    "daemonset-healthy": Scenario(daemonset(), 0, "✓ Rolling restart complete for agent"),
    "daemonset-crash-loop": Scenario(
        daemonset(Behaviour.crash_loop(log_lines=CRASH_LOG)), 1, "✗ Restart failed"
    ),
    "daemonset-undo-on-failure": Scenario(
        daemonset(Behaviour.crash_loop()),
        1,
        "✗ Restart failed",
        ("--undo-on-failure", "--timeout", "60s"),
        "Rollback failed: rollback to revision 1 did not finish: pod agent-<pod> (container "
        "app) is in CrashLoopBackOff",
    ),
    "daemonset-crash-once-then-ready": Scenario(
        daemonset(Behaviour.crash_loop(failures=1)),
        0,
        "✓ Rolling restart complete",
        ("--timeout", "60s"),
    ),
    "daemonset-on-delete-deleting-pods": Scenario(
        daemonset(update_strategy="OnDelete"),
        0,
        "✓ Rolling restart complete",
        ("--delete-pods", "--timeout", "60s"),
    ),
    "all-three-kinds": Scenario(
        three_kinds(), 0, "✓ Rolling restart complete for daemonset/agent", ("--all",)
    ),
    "all-three-kinds-one-failing": Scenario(
        three_kinds("statefulset/db"),
        1,
        "✓ Rolling restart complete for daemonset/agent",
        ("--all", "--timeout", "60s"),
    ),
    "ordered-pair-whose-first-fails": Scenario(
        ordered_pair_whose_first_fails,
        1,
        "✗ Restart failed: statefulset/db: pod db-2",
        ("--all", "--timeout", "60s"),
        "Not restarted: deployment shop/api (its wave comes after statefulset/db failed; "
        "nothing was sent to it)",
    ),
    # Someone else's change while we watch: superseded (exit 6), named, never undone.
    "image-set-mid-rollout": Scenario(
        linked(Behaviour.never_ready()),
        6,
        "⚠ Restart superseded by a newer change: image 1.0.0 -> 2.0-hotfix (manager: kubectl-set)",
        ("--undo-on-failure", "--timeout", "60s"),
        during=(
            our_restart_applied("deployments/backend"),
            colleague_sets_the_image("deployments/backend"),
        ),
    ),  # fmt: skip
    "paused-mid-rollout": Scenario(
        linked(Behaviour.never_ready()),
        6,
        "⚠ Restart paused during the rollout (manager: kubectl-rollout)",
        ("--undo-on-failure", "--timeout", "60s"),
        during=(our_restart_applied("deployments/backend"), colleague_pauses),
    ),
    "statefulset-image-set-mid-rollout": Scenario(
        statefulset(Behaviour.never_ready()),
        6,
        "⚠ Restart superseded by a newer change: image 1.0.0 -> 2.0-hotfix (manager: kubectl-set)",
        ("--undo-on-failure", "--timeout", "60s"),
        during=(
            our_restart_applied("statefulsets/db"),
            colleague_sets_the_image("statefulsets/db"),
        ),
    ),  # fmt: skip
    "daemonset-image-set-mid-rollout": Scenario(
        daemonset(Behaviour.never_ready()),
        6,
        "⚠ Restart superseded by a newer change: image 1.0.0 -> 2.0-hotfix (manager: kubectl-set)",
        ("--undo-on-failure", "--timeout", "60s"),
        during=(
            our_restart_applied("daemonsets/agent"),
            colleague_sets_the_image("daemonsets/agent"),
        ),
    ),  # fmt: skip
    "secret-created-while-watching": Scenario(
        secret_deleted_after_linking,
        0,
        "✓ Rolling restart complete",
        HEALING,
        during=(config_error_shows, create_the_secret),
    ),
}


def play(side: Side, scenario: Scenario):
    scenario.arrange(side)
    kubeconfig = scenario.user(side) if scenario.user else None
    if scenario.during is None:
        return side.run(*scenario.args, kubeconfig=kubeconfig)
    when, then = scenario.during
    assert kubeconfig is None
    return side.run_while(scenario.args, lambda: when(side), lambda: then(side))


@pytest.fixture
def sides(make_cluster, checkout, real_cluster, real_checkout) -> tuple[Side, Side]:
    """The simulated cluster runs with the fake kubelet's timing, so both run pods alike."""
    cluster = make_cluster(sim_config=SimConfig(**real_cluster.plane.sim))
    simulated = SimSide("simulated", cluster, "shop", checkout)
    real = RealSide("official", real_cluster, real_cluster.ns(), real_checkout,
                    suffix=real_cluster.suffix)  # fmt: skip
    return simulated, real


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_clusters_give_the_same_answer(sides, name):
    scenario = SCENARIOS[name]
    simulated, real = sides
    keys = {side.name: side.keys(play(side, scenario)) for side in (simulated, real)}
    # Events are read after the verdict: one side may have recorded the next step already
    # (ImagePullBackOff after ErrImagePull); the Events either side saw must be the other's.
    events = {name: k.pop("events") for name, k in keys.items()}
    assert keys["simulated"] == keys["official"]
    assert events["simulated"] <= events["official"] or events["official"] <= events["simulated"]
    outcome = keys["official"]
    assert outcome["exit code"] == scenario.exit_code, outcome
    if scenario.verdict is None:
        assert outcome["verdict"] is None, outcome
    else:
        assert (outcome["verdict"] or "").startswith(scenario.verdict), outcome
    if scenario.summary is not None:
        assert any(line.startswith(scenario.summary) for line in outcome["summary"]), outcome


def stable_document(doc: dict, suffix: str | None) -> dict:
    """The JSON result without what depends on when the plugin looked."""
    pods = sorted(
        (p["status"], p["failing"], p["new"], p["ready"], p["lastTermination"], p["container"])
        for p in doc["pods"]
    )
    return json.loads(normalize(json.dumps({
        "verdict": doc["verdict"], "exitCode": doc["exitCode"], "failed": doc["failed"],
        "ready": doc["ready"], "failureReason": doc["failureReason"],
        "readyReplicas": doc["readyReplicas"], "replicas": doc["replicas"],
        "pods": pods, "events": sorted({e["reason"] for e in doc["events"]}),
        "logs": [(entry["previous"], entry["lines"]) for entry in doc["logs"]],
        "namespace": doc["namespace"], "repo": doc["repo"],
    }), suffix))  # fmt: skip


def test_both_clusters_give_the_same_json_for_a_crash_loop(sides):
    documents = {}
    for side in sides:
        side.link()
        side.cluster.set_behaviour(side.ns, "backend", Behaviour.crash_loop(log_lines=CRASH_LOG))
        run = side.run("-o", "json", "--timeout", "60s")
        assert run.exit_code == 1, run.output
        documents[side.name] = stable_document(json.loads(run.stdout), side.suffix)
    assert documents["simulated"] == documents["official"]


def test_both_clusters_record_the_same_restart_annotation_shape(sides):
    templates = {}
    for side in sides:
        side.link()
        assert side.run().exit_code == 0
        deployment = side.cluster.get("deployments", side.ns, "backend")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        templates[side.name] = (
            sorted(annotations),
            deployment["metadata"]["generation"],
            deployment["metadata"]["annotations"].get("deployment.kubernetes.io/revision"),
            deployment["status"]["observedGeneration"],
            # who wrote the object (status writers left out: the simulator records none)
            sorted(
                (m["manager"], m["operation"])
                for m in deployment["metadata"]["managedFields"]
                if not m.get("subresource")
            ),
        )
    assert templates["simulated"] == templates["official"]
    assert templates["official"][-1] == [
        ("kubectl-restart-backend", "Update"),
        (HARNESS_MANAGER, "Update"),  # the test, which created it
    ]
