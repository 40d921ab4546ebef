"""The real tier: the plugin against the official kube-apiserver and kube-controller-manager.

Deployments are rolled out by the real deployment and ReplicaSet controllers, RBAC is the real
authorizer's, `--undo-on-failure` meets the real controller's revision handling, logs come
through the API server's kubelet proxy. Pods are run by our fake kubelet with the behaviours of
the simulated cluster (tests/cluster/behaviours.py), so a scenario here reads like one in
test_restart_e2e.py. Each test has its own namespaces and repo on the shared control plane.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster.behaviours import Behaviour
from tests.controlplane.differential import pod_waiting
from tests.controlplane.rbac import optional_rules, read_only_rules, readme_role, required_rules
from tests.plugin_runner import run_plugin, start_console_script

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MANAGER = "kubectl-restart-backend"


def restart(cluster, checkout, *args, kubeconfig=None):
    return run_plugin([*args, "--kubeconfig", kubeconfig or cluster.kubeconfig], cwd=checkout)


def failure_line(run) -> str:
    lines = [line for line in run.stdout.splitlines() if line.startswith("✗")]
    assert lines, run.output
    return lines[0]


def template_annotations(cluster, namespace, name="backend") -> dict:
    deployment = cluster.get("deployments", namespace, name)
    return deployment["spec"]["template"]["metadata"].get("annotations") or {}


def test_restart_completes_through_the_real_controllers(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    before = {p["metadata"]["name"] for p in real_cluster.list("pods", ns)}
    run = restart(real_cluster, real_checkout)
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[:2] == [
        f"Restarting deployment {ns}/backend (context real)",
        "Rolling restart triggered. Waiting for pods to restart...",
    ]
    assert "✓ Rolling restart complete for backend" in lines
    assert "All pods healthy: 3/3 ready" in lines
    deployment = real_cluster.get("deployments", ns, "backend")
    assert deployment["status"]["updatedReplicas"] == 3
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    running = [
        p for p in real_cluster.list("pods", ns) if not p["metadata"].get("deletionTimestamp")
    ]
    after = {p["metadata"]["name"] for p in running}
    assert len(after) == 3 and not after & before  # the real controller replaced every pod


def test_the_restart_writes_one_annotation_and_nothing_else(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    before = real_cluster.get("deployments", ns, "backend")
    run = restart(real_cluster, real_checkout)
    assert run.exit_code == 0, run.output
    after = real_cluster.get("deployments", ns, "backend")
    # The API server's own record of who wrote which field (managedFields).
    ours = [m for m in after["metadata"]["managedFields"] if m["manager"] == MANAGER]
    assert [(m["operation"], m.get("subresource")) for m in ours] == [("Update", None)]
    annotation = f"f:{RESTARTED_AT}"
    assert ours[0]["fieldsV1"] == {
        "f:spec": {"f:template": {"f:metadata": {"f:annotations": {".": {}, annotation: {}}}}}
    }
    after["spec"]["template"]["metadata"].pop("annotations")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_crash_loop_fails_with_the_reason_and_the_logs_through_the_api_proxy(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    log = ("Starting", "FATAL: DATABASE_URL unset")
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop(exit_code=3, log_lines=log))
    run = restart(real_cluster, real_checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert failure_line(run).startswith("✗ Restart failed: pod backend-"), run.stdout
    assert "CrashLoopBackOff" in run.stdout
    assert "| FATAL: DATABASE_URL unset" in run.stdout  # read with ?previous=true via the proxy
    assert "BackOff" in run.stdout  # the kubelet's Warning event


def test_image_that_does_not_exist_fails(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.image_pull_backoff())
    run = restart(real_cluster, real_checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "Image" in failure_line(run)
    assert "not found" in run.stdout


def test_missing_secret_that_never_comes_fails_naming_it(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.create_secret(ns, "shop-db", {"url": "postgres://db"})
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
    real_cluster.link(ns, containers=[{"name": "api", "image": "acme/shop:1", "env": env}])
    real_cluster.delete("secrets", ns, "shop-db")
    run = restart(real_cluster, real_checkout, "--config-grace", "1s", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "CreateContainerConfigError" in run.stdout
    assert 'secret "shop-db" not found' in run.stdout
    deployment = real_cluster.get("deployments", ns, "backend")
    assert deployment["status"].get("readyReplicas", 0) >= 2  # the old pods keep serving


def test_never_ready_times_out_with_the_current_count(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    run = restart(real_cluster, real_checkout, "--timeout", "3s")
    assert run.exit_code == 3, run.output
    lines = run.stdout.splitlines()
    assert "⚠ Restart timeout - pods may still be cycling" in lines
    assert "Current: 0/3 ready (new pods; 3 old pods still ready)" in lines


def test_unschedulable_fails_after_the_grace(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.unschedulable())
    run = restart(real_cluster, real_checkout, "--unschedulable-grace", "1s", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "unschedulable" in run.stdout.lower()
    assert "Insufficient cpu" in run.stdout


def test_progress_deadline_set_by_the_real_controller_fails(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns, progress_deadline_seconds=2)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    run = restart(real_cluster, real_checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "progress deadline exceeded" in run.stdout


def test_quota_that_blocks_the_surge_pod_fails_with_the_replicaset_reason(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_pod_quota(ns, 3)  # the surge pod of the rolling update is over quota
    run = restart(real_cluster, real_checkout, "--config-grace", "1s", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert failure_line(run).startswith("✗ Restart failed: ReplicaSet could not create pods")
    assert "exceeded quota" in run.stdout
    # (The FailedCreate Event may not be there yet: controllers post Events asynchronously,
    # after the ReplicaFailure condition the verdict comes from.)


def test_paused_deployment_is_refused_and_left_alone(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns, paused=True)
    run = restart(real_cluster, real_checkout)
    assert run.exit_code == 5, run.output
    assert "paused" in run.stderr and "kubectl rollout resume" in run.stderr
    after = real_cluster.get("deployments", ns, "backend")
    assert after["metadata"]["generation"] == 1
    assert RESTARTED_AT not in template_annotations(real_cluster, ns)


def test_the_readmes_minimal_role_is_enough_and_falls_back_to_its_namespace(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    kubeconfig = real_cluster.add_user("dev", required_rules(), namespace=ns)
    run = restart(real_cluster, real_checkout, kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    assert f"searched namespace {ns}" in run.stdout
    assert "✓ Rolling restart complete for backend" in run.stdout


def test_the_readmes_role_restarts_every_kind_and_replaces_on_delete_pods(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    linked = {
        "labels": {**real_cluster.link_labels, "app": "db"},
        "annotations": dict(real_cluster.link_annotations),
    }
    real_cluster.link(ns, "api")
    real_cluster.create_statefulset(ns, "db", update_strategy="OnDelete", **linked)
    before = {p["metadata"]["uid"] for p in real_cluster.list("pods", ns, label_selector="app=db")}
    kubeconfig = real_cluster.add_user("dev", readme_role()["rules"], namespace=ns)
    run = restart(
        real_cluster, real_checkout, "--all", "--delete-pods", "--timeout", "90s", "-o", "json",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert [(w["kind"], w["verdict"]) for w in doc["workloads"]] == [
        ("Deployment", "complete"),
        ("StatefulSet", "complete"),
    ]
    assert doc["workloads"][1]["deletedPods"] == ["db-2", "db-1", "db-0"]
    after = {p["metadata"]["uid"] for p in real_cluster.list("pods", ns, label_selector="app=db")}
    assert len(after) == 3 and not after & before  # the real controller replaced each one


def test_the_readmes_whole_role_gives_the_full_report(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    kubeconfig = real_cluster.add_user("dev", readme_role()["rules"], namespace=ns)
    run = restart(real_cluster, real_checkout, "--timeout", "60s", kubeconfig=kubeconfig)
    assert run.exit_code == 1, run.output
    assert "could not look" not in run.stdout
    assert "| FATAL: cannot connect to database" in run.stdout
    assert "BackOff" in run.stdout


def test_without_the_optional_rules_the_report_says_what_it_could_not_read(
    real_cluster, real_checkout
):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    kubeconfig = real_cluster.add_user("dev", required_rules(), namespace=ns)
    run = restart(real_cluster, real_checkout, "--timeout", "60s", kubeconfig=kubeconfig)
    assert run.exit_code == 1, run.output
    assert "CrashLoopBackOff" in failure_line(run)
    assert "Events: could not look" in run.stdout


def test_forbidden_patch_is_refused_with_the_real_authorizers_words(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    kubeconfig = real_cluster.add_user("viewer", read_only_rules(), namespace=ns)
    run = restart(real_cluster, real_checkout, kubeconfig=kubeconfig)
    assert run.exit_code == 5, run.output
    assert 'cannot patch resource "deployments" in API group "apps"' in run.stderr
    assert "Traceback" not in run.output
    assert RESTARTED_AT not in template_annotations(real_cluster, ns)


def test_dry_run_asks_the_real_server_which_rights_there_are(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    viewer = real_cluster.add_user("viewer", read_only_rules(), namespace=ns)
    dev = real_cluster.add_user("dev", readme_role()["rules"], namespace=ns)
    as_viewer = restart(real_cluster, real_checkout, "--dry-run", "-n", ns, kubeconfig=viewer)
    as_dev = restart(real_cluster, real_checkout, "--dry-run", "-n", ns, kubeconfig=dev)
    assert as_viewer.exit_code == 0 and as_dev.exit_code == 0, as_viewer.output + as_dev.output
    assert f"Dry run: would restart deployment {ns}/backend" in as_dev.stdout
    assert "patch deployments: yes" in as_dev.stdout
    assert "patch deployments: no" in as_viewer.stdout
    assert RESTARTED_AT not in template_annotations(real_cluster, ns)


def test_json_output_has_the_spec_fields(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    run = restart(real_cluster, real_checkout, "-o", "json")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "complete" and doc["exitCode"] == 0
    assert doc["ready"] is True and doc["failed"] is False and doc["rolloutInProgress"] is False
    assert (doc["readyReplicas"], doc["replicas"]) == (3, 3)
    assert doc["appName"] == "backend" and doc["namespace"] == ns
    assert doc["repo"] == real_cluster.repo and doc["branch"] == "main"
    new = [p for p in doc["pods"] if p["new"]]
    assert len(new) == 3 and all(p["ready"] and p["node"].startswith("sim-node-") for p in new)
    assert doc["restartedAt"] == template_annotations(real_cluster, ns)[RESTARTED_AT]


def test_json_output_of_a_failure(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    run = restart(real_cluster, real_checkout, "-o", "json", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "failed" and doc["failed"] is True and doc["exitCode"] == 1
    assert "CrashLoopBackOff" in doc["failureReason"]
    failing = [p for p in doc["pods"] if p["failing"]]
    assert failing and failing[0]["lastTermination"] == "Error (exit code 1)"
    assert any(e["reason"] == "BackOff" for e in doc["events"])
    assert any("FATAL" in line for entry in doc["logs"] for line in entry["lines"])


def test_undo_on_failure_rolls_back_with_the_real_controller(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    run = restart(real_cluster, real_checkout, "--undo-on-failure", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "Rolled back to revision 1: 3/3 pods ready" in run.stdout
    deployment = real_cluster.get("deployments", ns, "backend")
    assert RESTARTED_AT not in template_annotations(real_cluster, ns)
    # The real controller gives the restored template a new revision number.
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert deployment["status"]["readyReplicas"] == 3


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(Behaviour.crash_loop(failures=1), id="crash-once-then-ready"),
        pytest.param(
            Behaviour.image_pull_backoff(pull_error="unavailable", failures=1),
            id="registry-503-once",
        ),
        pytest.param(Behaviour.never_ready(unready_for=20), id="slow-warm-up"),
    ],
)
def test_start_ups_that_heal_complete(real_cluster, real_checkout, behaviour):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", behaviour)
    # Healing takes a few scaled kubelet back-offs: seconds, not minutes.
    run = restart(real_cluster, real_checkout, "--timeout", "30s")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for backend" in run.stdout


def test_a_secret_created_while_watching_heals_the_restart(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.create_secret(ns, "shop-db", {"url": "postgres://db"})
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
    real_cluster.link(ns, containers=[{"name": "api", "image": "acme/shop:1", "env": env}])
    real_cluster.delete("secrets", ns, "shop-db")
    process = start_console_script(real_cluster, real_checkout, "--timeout", "30s")
    try:
        real_cluster.wait_for(
            lambda: (
                pod_waiting(real_cluster, ns, "CreateContainerConfigError")
                or process.poll() is not None
            ),
            60,
            "no pod ever missed the Secret",
        )
        real_cluster.create_secret(ns, "shop-db", {"url": "postgres://db"})
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stdout + stderr
    assert "✓ Rolling restart complete for backend" in stdout


def test_deleting_the_deployment_mid_rollout_is_reported(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.never_ready())
    process = start_console_script(real_cluster, real_checkout, "--timeout", "60s")
    try:
        real_cluster.wait_for(
            lambda: (
                RESTARTED_AT in template_annotations(real_cluster, ns) or process.poll() is not None
            ),
            30,
            "the plugin never patched",
        )
        real_cluster.delete("deployments", ns, "backend")
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, stdout + stderr
    assert "deleted" in stdout


def test_urls_from_an_ingress_and_a_load_balancer(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.create_service(ns, "backend", {"app": "backend"})
    backend = {"service": {"name": "backend", "port": {"number": 80}}}
    rules = [
        {
            "host": "shop.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
        }
    ]
    real_cluster.create_ingress(
        ns, "backend", rules=rules, tls=[{"hosts": ["shop.example.com"], "secretName": "tls"}]
    )
    real_cluster.create_service(
        ns,
        "backend-lb",
        {"app": "backend"},
        type="LoadBalancer",
        ports=[{"port": 8443, "targetPort": 8080}],
        load_balancer_ingress=["203.0.113.7"],
    )
    run = restart(real_cluster, real_checkout)
    assert run.exit_code == 0, run.output
    urls = [line for line in run.stdout.splitlines() if line.startswith("URLs: ")]
    assert urls and "https://shop.example.com" in urls[0] and "http://203.0.113.7:8443" in urls[0]


def test_no_linked_deployment_says_how_to_link_one(real_cluster, real_checkout):
    real_cluster.create_deployment(real_cluster.ns(), "backend")
    run = restart(real_cluster, real_checkout)
    assert run.exit_code == 4, run.output
    assert f"No workload found for {real_cluster.repo}@main" in run.stderr
    assert "kubectl label deployment" in run.stderr


def test_link_status_list_unlink_round_trip(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.create_deployment(ns, "backend")

    def plugin(*args):
        return restart(real_cluster, real_checkout, *args)

    run = plugin("link", "backend", "-n", ns, "--yes")
    assert run.exit_code == 0, run.output
    labels = real_cluster.get("deployments", ns, "backend")["metadata"]["labels"]
    assert {k: labels[k] for k in real_cluster.link_labels} == real_cluster.link_labels
    listed = plugin("list", "-n", ns, "-o", "json")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)["items"]
    assert [(i["namespace"], i["name"], i["repo"]) for i in items] == [
        (ns, "backend", real_cluster.repo)
    ]
    assert plugin("--no-wait").exit_code == 0
    status = plugin("status")
    assert status.exit_code == 0, status.output
    assert "✓ Rolling restart complete for backend" in status.stdout
    run = plugin("unlink", "backend", "-n", ns, "--yes")
    assert run.exit_code == 0, run.output
    assert plugin("--dry-run").exit_code == 4


def test_status_reports_a_failing_rollout_someone_else_started(real_cluster, real_checkout):
    ns = real_cluster.ns()
    real_cluster.link(ns)
    real_cluster.set_behaviour(ns, "backend", Behaviour.crash_loop())
    real_cluster.patch(
        "deployments",
        ns,
        "backend",
        {
            "spec": {
                "template": {"metadata": {"annotations": {RESTARTED_AT: "2026-11-30T06:00:00Z"}}}
            }
        },
    )
    run = restart(real_cluster, real_checkout, "status", "-o", "json", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "CrashLoopBackOff" in json.loads(run.stdout)["failureReason"]


def test_optional_rules_are_the_readmes_remainder():
    # Guards the README parsing the other tests rely on.
    assert [r["resources"] for r in required_rules()] == [
        ["deployments", "statefulsets", "daemonsets"],
        ["replicasets"],
        ["pods"],
    ]
    optional = [r["resources"] for r in optional_rules()]
    assert ["pods/log"] in optional and ["controllerrevisions"] in optional
