"""Never undo what is not ours, on the official control plane: a colleague's real `kubectl`
(`set image`, `rollout pause`) changes the Deployment while the plugin watches its restart.

The attribution ("manager: kubectl-set") comes from the managedFields the real API server
writes, and the guard of the undo is the real server's JSON-patch `test`; the simulated
cluster's twins of these tests are in test_verdicts_e2e.py.
"""

from __future__ import annotations

import time

from tests.cluster.behaviours import Behaviour
from tests.test_faults_e2e import Background
from tests.test_real_kubectl import kubectl
from tests.test_verdicts_e2e import assert_superseded_by_the_hotfix_and_not_undone

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
API_3_0 = [{"name": "api", "image": "acme/shop:3.0"}]


def wait_for_our_restart(cluster, namespace: str, run: Background) -> str:
    """Block until our PATCH is in the live Deployment; returns its restartedAt stamp."""

    def stamp() -> str | None:
        template = cluster.get("deployments", namespace, "backend")["spec"]["template"]
        return (template["metadata"].get("annotations") or {}).get(RESTARTED_AT)

    cluster.wait_for(lambda: run.done or stamp(), 60, "the plugin never patched the Deployment")
    found = stamp()
    assert found, f"the plugin ended without restarting: {run.join().output}"
    return found


def images(cluster, namespace: str) -> list[str]:
    spec = cluster.get("deployments", namespace, "backend")["spec"]["template"]["spec"]
    return [c["image"] for c in spec["containers"]]


def test_a_colleagues_kubectl_set_image_mid_rollout_is_superseded_and_not_undone(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns, containers=API_3_0)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    run = Background(real_cluster, real_checkout, "--undo-on-failure", "--timeout", "60s")
    wait_for_our_restart(real_cluster, ns, run)
    done = kubectl(real_cluster, "set", "image", "deployment/backend", "api=acme/shop:4.0-hotfix",
                   "-n", ns)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_superseded_by_the_hotfix_and_not_undone(run.join())
    assert images(real_cluster, ns) == ["acme/shop:4.0-hotfix"]
    # (No revision number is asserted: the real controller may see our change and the
    # colleague's as one, and then makes no ReplicaSet for ours.)


def test_a_colleagues_kubectl_rollout_pause_mid_rollout_is_superseded_and_not_undone(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    run = Background(real_cluster, real_checkout, "--undo-on-failure", "--timeout", "60s")
    stamp = wait_for_our_restart(real_cluster, ns, run)
    done = kubectl(real_cluster, "rollout", "pause", "deployment/backend", "-n", ns)
    assert done.returncode == 0, done.stderr
    result = run.join()
    assert result.exit_code == 6, result.output
    assert "⚠ Restart paused during the rollout (manager: kubectl-rollout)" in result.stdout
    assert f"kubectl rollout resume deployment/backend -n {ns}" in result.stdout
    # Not undone: our template stays. (Its revision is 1 or 2: a pause that lands before the
    # real controller saw our change stops it from making the new ReplicaSet at all.)
    template = real_cluster.get("deployments", ns, "backend")["spec"]["template"]
    assert template["metadata"]["annotations"][RESTARTED_AT] == stamp


def test_the_real_server_refuses_an_undo_whose_template_guard_no_longer_holds(
    real_cluster, real_checkout
):
    """The rollback's JSON patch `test`s the whole template our restart produced (with every
    default the real server filled in): it applies while nobody changed it (the undo test of
    test_real_e2e.py), and the real server refuses it once a colleague has, with a bare 422
    ("the server rejected our request due to an error in our request": no word of the
    `test`, which is why restart.undo_restart reads the workload again to say why)."""
    from kubectl_restart_backend.errors import ApiError
    from kubectl_restart_backend.restart_patch import build_undo_patch
    from kubectl_restart_backend.session import ConnectOptions, open_session

    ns = real_cluster.ns()
    real_cluster.link(ns, containers=API_3_0)
    done = kubectl(real_cluster, "rollout", "restart", "deployment/backend", "-n", ns)
    assert done.returncode == 0, done.stderr
    real_cluster.wait_for_rollout(ns, "backend")
    ours = real_cluster.get("deployments", ns, "backend")["spec"]["template"]
    (previous,) = [
        rs
        for rs in real_cluster.list("replicasets", ns)
        if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    ]
    _revision, ops = build_undo_patch(previous, ours)
    done = kubectl(real_cluster, "set", "image", "deployment/backend", "api=acme/shop:4.0-hotfix",
                   "-n", ns)  # fmt: skip
    assert done.returncode == 0, done.stderr
    session = open_session(
        ConnectOptions(kubeconfig=real_cluster.kubeconfig), {}, deadline=time.monotonic() + 30
    )
    try:
        session.api.patch_workload("deployments", ns, "backend", ops)
    except ApiError as err:
        refused = err
    else:
        raise AssertionError("the real server applied a rollback over a colleague's change")
    assert (refused.status, refused.reason) == (422, "Invalid"), refused.message
    assert images(real_cluster, ns) == ["acme/shop:4.0-hotfix"]


def test_scaling_mid_rollout_is_followed_not_called_someone_elses_change(
    real_cluster, real_checkout
):
    """`kubectl scale` (or an HPA) bumps the generation without touching the template: the
    rollout is still ours, and it is done when the new count is ready."""
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.healthy(ready_delay=3.0))
    run = Background(real_cluster, real_checkout, "--timeout", "60s")
    wait_for_our_restart(real_cluster, ns, run)
    done = kubectl(real_cluster, "scale", "deployment/backend", "--replicas=5", "-n", ns)
    assert done.returncode == 0, done.stderr
    result = run.join()
    assert result.exit_code == 0, result.output
    assert "✓ Rolling restart complete for backend" in result.stdout
    assert "All pods healthy: 5/5 ready" in result.stdout
    assert "supersede" not in result.stdout.lower()
