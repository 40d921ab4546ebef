"""The real tier: one restart at a time per workload, with real Leases and the official
kube-apiserver's optimistic concurrency, as tests/test_lock_e2e.py does on the simulated
cluster. The first run's new pods wait for a Secret the test creates once the second run is
seen waiting: no timing decides anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubectl_restart_backend.lease import format_micro_time
from tests.controlplane.rbac import required_rules
from tests.plugin_runner import LiveOutput, run_plugin, start_console_script

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
LEASE = "restart-backend.deployment.backend"
SECRET_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]


def restarted_at(cluster, ns) -> str | None:
    template = cluster.get("deployments", ns, "backend")["spec"]["template"]
    return (template["metadata"].get("annotations") or {}).get(RESTARTED_AT)


def test_two_runs_restart_one_at_a_time_on_the_real_api_server(real_cluster, real_checkout):
    ns = real_cluster.ns()
    waiting = f"deployment {ns}/backend is being restarted by"
    real_cluster.create_secret(ns, "shop-db", {"url": "postgres://db"})
    real_cluster.link(ns, containers=[{"name": "api", "image": "acme/shop:1", "env": SECRET_ENV}])
    real_cluster.delete("secrets", ns, "shop-db")
    first = LiveOutput(
        start_console_script(real_cluster, real_checkout, "--config-grace", "5m", "--timeout", "3m")
    )
    real_cluster.wait_for(
        lambda: first.process.poll() is not None or restarted_at(real_cluster, ns),
        60,
        "the first run never patched",
    )
    first_restart = restarted_at(real_cluster, ns)
    holder = real_cluster.get("leases", ns, LEASE)["spec"]["holderIdentity"]
    assert f"(pid {first.process.pid}, kubectl-restart-backend, run " in holder
    refused = run_plugin(
        ["--no-wait-lock", "--kubeconfig", real_cluster.kubeconfig], cwd=real_checkout
    )
    assert refused.exit_code == 5, refused.output
    assert f"error: {waiting} {holder} since " in refused.stderr
    second = LiveOutput(start_console_script(real_cluster, real_checkout, "--timeout", "3m"))
    real_cluster.wait_for(lambda: second.saw(waiting), 60, "the second run never said it waits")
    assert restarted_at(real_cluster, ns) == first_restart  # nobody patched while it waits
    real_cluster.create_secret(ns, "shop-db", {"url": "postgres://db"})
    first_run, second_run = first.finish(180), second.finish(180)
    # Not superseded: nothing changed the template while the first run watched.
    assert first_run.exit_code == 0, first_run.output
    assert second_run.exit_code == 0, second_run.output
    assert f"note: {waiting} {holder} since " in second_run.stdout
    assert "✓ Rolling restart complete for backend" in second_run.stdout
    deployment = real_cluster.get("deployments", ns, "backend")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert restarted_at(real_cluster, ns) != first_restart
    spec = real_cluster.get("leases", ns, LEASE)["spec"]
    assert "holderIdentity" not in spec and spec["leaseTransitions"] == 1


def test_the_expired_lease_of_a_dead_holder_is_taken_over_on_the_real_api_server(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    stamp = format_micro_time(datetime.now(timezone.utc) - timedelta(hours=1))
    real_cluster.create("leases", {"metadata": {"name": LEASE, "namespace": ns}, "spec": {
        "holderIdentity": "bob@old-ci (pid 4242, kubectl-restart-backend, run dead00)",
        "leaseDurationSeconds": 30, "acquireTime": stamp, "renewTime": stamp}})  # fmt: skip
    run = run_plugin(["--kubeconfig", real_cluster.kubeconfig], cwd=real_checkout)
    assert run.exit_code == 0, run.output
    assert f"note: taking over the lock of deployment {ns}/backend from bob@old-ci" in run.stdout
    assert "holderIdentity" not in real_cluster.get("leases", ns, LEASE)["spec"]


def test_without_lease_rights_the_real_rbac_gives_one_note_and_the_restart(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    kubeconfig = real_cluster.add_user("dev", required_rules(), namespace=ns)
    run = run_plugin(["--kubeconfig", kubeconfig], cwd=real_checkout)
    assert run.exit_code == 0, run.output
    notes = [line for line in run.stdout.splitlines() if "without the lock" in line]
    assert notes == [
        f"note: restarting deployment {ns}/backend without the lock (not allowed to get leases "
        f"in namespace {ns}): another run could restart it at the same time (README, 'One "
        "restart at a time')"
    ]
    assert "✓ Rolling restart complete for backend" in run.stdout
