"""Real kubectl 1.37 and the plugin side by side on the official control plane: the plugin's
restart is the same change as `kubectl rollout restart`, and both tools read a rollout the
same way (`rollout status`, `rollout undo`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import run_plugin

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def kubectl(cluster, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", cluster.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cluster.workdir)},
    )


def plugin(cluster, checkout, *args):
    return run_plugin([*args, "--kubeconfig", cluster.kubeconfig], cwd=checkout)


def restart_fields(cluster, namespace: str, manager: str) -> dict:
    deployment = cluster.get("deployments", namespace, "backend")
    (entry,) = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == manager]
    return entry["fieldsV1"]


def test_kubectl_rollout_restart_and_status_then_the_plugin_agrees(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    done = kubectl(real_cluster, "rollout", "restart", "deployment/backend", "-n", ns)
    assert done.returncode == 0, done.stderr
    status = kubectl(
        real_cluster, "rollout", "status", "deployment/backend", "-n", ns, "--timeout=60s"
    )
    assert status.returncode == 0, status.stderr
    assert 'deployment "backend" successfully rolled out' in status.stdout
    run = plugin(real_cluster, real_checkout, "status")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for backend" in run.stdout


def test_the_plugins_restart_writes_what_kubectl_rollout_restart_writes(
    real_cluster, real_checkout
):
    by_kubectl, by_plugin = real_cluster.ns("kubectl"), real_cluster.ns()
    real_cluster.create_deployment(by_kubectl, "backend")
    real_cluster.link(by_plugin)
    done = kubectl(real_cluster, "rollout", "restart", "deployment/backend", "-n", by_kubectl)
    assert done.returncode == 0, done.stderr
    run = plugin(real_cluster, real_checkout)
    assert run.exit_code == 0, run.output
    # The API server's record of each writer's fields: the same single annotation, one Update.
    fields = restart_fields(real_cluster, by_plugin, "kubectl-restart-backend")
    assert fields == restart_fields(real_cluster, by_kubectl, "kubectl-rollout")
    assert fields == {
        "f:spec": {
            "f:template": {"f:metadata": {"f:annotations": {".": {}, f"f:{RESTARTED_AT}": {}}}}
        }
    }
    real_cluster.wait_for_rollout(by_kubectl, "backend")
    for ns in (by_kubectl, by_plugin):
        history = kubectl(real_cluster, "rollout", "history", "deployment/backend", "-n", ns)
        revisions = [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()]
        assert revisions == ["1", "2"], history.stdout


def test_kubectl_rollout_undo_repairs_what_the_plugin_reported(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    run = plugin(real_cluster, real_checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    undo_hint = f"kubectl rollout undo deployment/backend -n {ns}"
    assert undo_hint in run.stdout
    done = kubectl(real_cluster, *undo_hint.split()[1:])
    assert done.returncode == 0, done.stderr
    status = kubectl(
        real_cluster, "rollout", "status", "deployment/backend", "-n", ns, "--timeout=60s"
    )
    assert status.returncode == 0, status.stderr
    template = real_cluster.get("deployments", ns, "backend")["spec"]["template"]
    assert RESTARTED_AT not in (template["metadata"].get("annotations") or {})
    after = plugin(real_cluster, real_checkout, "status")
    assert after.exit_code == 0, after.output


def test_kubectl_and_the_plugin_both_fail_on_the_progress_deadline(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns, progress_deadline_seconds=2)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    assert (
        kubectl(real_cluster, "rollout", "restart", "deployment/backend", "-n", ns).returncode == 0
    )
    status = kubectl(
        real_cluster, "rollout", "status", "deployment/backend", "-n", ns, "--timeout=60s"
    )
    assert status.returncode == 1, status.stdout + status.stderr
    assert 'deployment "backend" exceeded its progress deadline' in status.stderr
    run = plugin(real_cluster, real_checkout, "status", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "progress deadline exceeded" in run.stdout


def test_kubectl_refuses_a_paused_deployment_like_the_plugin(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns, paused=True)
    done = kubectl(real_cluster, "rollout", "restart", "deployment/backend", "-n", ns)
    assert done.returncode == 1
    assert "can't restart paused deployment (run rollout resume first)" in done.stderr
    run = plugin(real_cluster, real_checkout)
    assert run.exit_code == 5, run.output
    assert "kubectl rollout resume deployment/backend" in run.stderr
