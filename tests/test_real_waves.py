"""Cluster waves on the official control plane: two independent clusters (the run's control
plane as context `canary`, a second one of this module's own as `prod`: separate etcd, API
server, controller-manager, fake kubelet, CA and credentials) restarted by the plugin one
cluster wave at a time through one kubeconfig, as tests/test_cluster_waves_e2e.py does on the
simulated fleet. The real controllers make the new ReplicaSets; the second API server's audit
log is its own record of every request the plugin sent it.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import run_plugin

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MANAGER = "kubectl-restart-backend"
CANARY_FIRST = ("--context", "canary", "--context", "prod")  # one cluster wave per --context


@pytest.fixture
def linked(real_fleet):
    """backend linked to the test's repo on both clusters, first rollouts awaited together."""
    ns = real_fleet["canary"].ns()
    for cluster in real_fleet:
        cluster.link(ns, wait_ready=False)
    for cluster in real_fleet:
        cluster.wait_for_rollout(ns, "backend")
    return real_fleet


def restart(fleet, checkout, *args):
    return run_plugin(["--kubeconfig", fleet.kubeconfig, *CANARY_FIRST, *args], cwd=checkout)


def restarted_at(cluster) -> str | None:
    template = cluster.get("deployments", cluster.ns(), "backend")["spec"]["template"]
    return (template["metadata"].get("annotations") or {}).get(RESTARTED_AT)


def restarted_by_us(cluster) -> None:
    """Checked through the API: our field manager set restartedAt, the real controller made
    a second ReplicaSet for it, and that one's pods are all Ready."""
    ns = cluster.ns()
    deployment = cluster.get("deployments", ns, "backend")
    assert restarted_at(cluster), deployment["spec"]["template"]
    ours = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == MANAGER]
    assert [m["operation"] for m in ours] == ["Update"], deployment["metadata"]["managedFields"]
    revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert revision == "2"
    sets = {rs["metadata"]["name"]: rs for rs in cluster.list("replicasets", ns)}
    assert len(sets) == 2, sorted(sets)
    [new] = [rs for rs in sets.values() if _revision(rs) == revision]
    pods = [p for p in cluster.list("pods", ns) if _owner(p) == new["metadata"]["name"]]
    assert len(pods) == 3 and all(_ready(p) for p in pods), [p["status"] for p in pods]


def untouched(cluster) -> bool:
    """Through the API: the first generation's template (no restartedAt), no write of ours
    (managedFields), still one ReplicaSet."""
    ns = cluster.ns()
    deployment = cluster.get("deployments", ns, "backend")
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    return (
        deployment["metadata"]["generation"] == 1
        and restarted_at(cluster) is None
        and MANAGER not in managers
        and len(cluster.list("replicasets", ns)) == 1
    )


def writes(fleet, name: str) -> list[tuple[str, str]]:
    """(verb, URI) of each write the plugin sent to cluster `name`, from its audit log."""
    reads = ("get", "list", "watch")
    return [(e["verb"], e["requestURI"]) for e in fleet.requests_to(name) if e["verb"] not in reads]


def _revision(obj: dict) -> str:
    return (obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "")


def _owner(pod: dict) -> str:
    return next((o["name"] for o in pod["metadata"].get("ownerReferences") or []), "")


def _ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def table(text: str) -> dict[str, list[str]]:
    """The rows of the combined report's table, by context."""
    lines = text.split("\nClusters:\n", 1)[1].splitlines()
    return {row[1]: row for row in (line.split() for line in lines[1:] if line.startswith("  "))}


def test_two_waves_restart_the_canary_then_the_other_cluster(linked, real_checkout):
    fleet = linked
    ns = fleet["canary"].ns()
    run = restart(fleet, real_checkout)
    assert run.exit_code == 0, run.output
    for cluster in fleet:
        restarted_by_us(cluster)
    patch = ("patch", f"/apis/apps/v1/namespaces/{ns}/deployments/backend?fieldManager={MANAGER}")
    assert [w for w in writes(fleet, "prod") if w[0] == "patch"] == [patch], writes(fleet, "prod")
    out = run.stdout
    assert out.index("Cluster wave 1 of 2: canary") < out.index("Cluster wave 2 of 2: prod")
    assert f"[prod] Restarting deployment {ns}/backend (context prod)" in out
    assert "== canary (cluster wave 1 of 2)\n" in out and "== prod (cluster wave 2 of 2)\n" in out
    assert out.count("✓ Rolling restart complete for backend") == 2
    rows = table(out)
    assert rows["canary"][:5] == ["1", "canary", ns, "deployment/backend", "complete"]
    assert rows["prod"][:5] == ["2", "prod", ns, "deployment/backend", "complete"]
    assert "✓ 2 of 2 clusters complete (complete: canary, prod)" in out


def test_a_failing_canary_leaves_the_other_cluster_untouched(linked, real_checkout):
    fleet = linked
    ns = fleet["canary"].ns()
    fleet["canary"].set_behaviour(ns, "backend", Behaviour.crash_loop())
    run = restart(fleet, real_checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert restarted_at(fleet["canary"])
    assert untouched(fleet["prod"])
    assert fleet.requests_to("prod") == []  # not a read either: nothing was sent
    out = run.stdout
    assert "Cluster wave 1 of 2: canary" in out and "Cluster wave 2 of 2" not in out
    assert "== canary (cluster wave 1 of 2)\n✗ Restart failed: pod backend-" in out
    assert "CrashLoopBackOff" in out
    assert (
        "== prod (cluster wave 2 of 2)\nNot restarted: its cluster wave comes after canary "
        "failed; nothing was sent to prod\n"
    ) in out
    rows = table(out)
    assert rows["canary"][3:5] == ["deployment/backend", "failed"]
    assert rows["prod"][2:5] == ["-", "-", "not-started"]
    assert "✗ 1 of 2 clusters failed (failed: canary; not started: prod)" in out


@pytest.mark.parametrize(
    "canary, verdicts, code",
    [
        pytest.param(None, ["complete", "complete"], 0, id="both-complete"),
        pytest.param(Behaviour.crash_loop(), ["failed", "not-started"], 1, id="canary-fails"),
    ],
)
def test_the_json_document_names_both_clusters_and_their_verdicts(
    linked, real_checkout, canary, verdicts, code
):
    fleet = linked
    ns = fleet["canary"].ns()
    if canary is not None:
        fleet["canary"].set_behaviour(ns, "backend", canary)
    run = restart(fleet, real_checkout, "-o", "json", "--timeout", "60s")
    assert run.exit_code == code, run.output
    document = json.loads(run.stdout)
    assert document["exitCode"] == code and document["context"] is None
    assert document["verdict"] == ("complete" if code == 0 else "failed")
    assert document["waves"] == [["canary"], ["prod"]]
    clusters = document["clusters"]
    assert [(c["context"], c["wave"], c["verdict"]) for c in clusters] == [
        ("canary", 1, verdicts[0]),
        ("prod", 2, verdicts[1]),
    ]
    canary_doc, prod_doc = clusters
    assert canary_doc["namespace"] == ns and canary_doc["appName"] == "backend"
    assert canary_doc["restartedAt"] == restarted_at(fleet["canary"])
    if code == 0:
        restarted_by_us(fleet["prod"])
        assert prod_doc["restartedAt"] == restarted_at(fleet["prod"])
    else:
        assert canary_doc["failureReason"].startswith("pod backend-")
        assert document["failureReason"].startswith("canary: pod backend-")
        assert prod_doc["notes"] == ["not restarted: its cluster wave comes after canary failed"]
        assert untouched(fleet["prod"]) and fleet.requests_to("prod") == []


def test_a_failing_canary_is_rolled_back_and_the_other_cluster_never_contacted(
    linked, real_checkout
):
    fleet = linked
    ns = fleet["canary"].ns()
    fleet["canary"].set_behaviour(ns, "backend", Behaviour.crash_loop())
    run = restart(fleet, real_checkout, "--undo-on-failure", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "Rolled back to revision 1: 3/3 pods ready" in run.stdout
    canary = fleet["canary"].get("deployments", ns, "backend")
    assert restarted_at(fleet["canary"]) is None  # the template of revision 1 again ...
    assert _revision(canary) == "3"  # ... which the real controller numbers anew
    assert untouched(fleet["prod"]) and fleet.requests_to("prod") == []
    rows = table(run.stdout)
    assert rows["canary"][3:5] == ["deployment/backend", "failed"]
    assert rows["prod"][2:5] == ["-", "-", "not-started"]


def test_status_of_both_clusters_watches_them_together_and_names_the_failing_one(
    linked, real_checkout
):
    fleet = linked
    ns = fleet["canary"].ns()
    fleet["canary"].set_behaviour(ns, "backend", Behaviour.crash_loop())
    # Someone else's restart of the canary (kubectl rollout restart's patch): status follows it.
    stamp = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "elsewhere"}}}}}
    fleet["canary"].patch("deployments", ns, "backend", stamp, field_manager="kubectl-rollout")
    run = run_plugin(
        ["status", "--kubeconfig", fleet.kubeconfig, *CANARY_FIRST, "--timeout", "60s"],
        cwd=real_checkout,
    )
    assert run.exit_code == 1, run.output
    out = run.stdout
    assert "Status of 2 clusters: canary, prod" in out and "cluster wave" not in out
    assert "== canary\n✗ Restart failed: pod backend-" in out and "CrashLoopBackOff" in out
    rows = table(out)
    assert rows["canary"][3:5] == ["deployment/backend", "failed"]
    assert rows["prod"][3:5] == ["deployment/backend", "complete"]
    assert untouched(fleet["prod"])
    assert [e for e in fleet.requests_to("prod") if e["verb"] not in ("get", "list", "watch")] == []
