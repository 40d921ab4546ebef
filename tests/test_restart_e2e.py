"""End to end: the plugin against the simulated cluster over HTTPS, through the real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import yaml

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import (
    LINK_ANNOTATIONS,
    LINK_LABELS,
    link,
    make_checkout,
    patches,
    run_plugin,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def restart(cluster, checkout, *args, env=None):
    return run_plugin(["--kubeconfig", cluster.kubeconfig, *args], cwd=checkout, env=env)


def test_restart_succeeds_and_reports_in_the_specs_words(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[:2] == [
        "Restarting deployment shop/backend (context sim)",
        "Rolling restart triggered. Waiting for pods to restart...",
    ]
    assert "✓ Rolling restart complete for backend" in lines
    assert "All pods healthy: 3/3 ready" in lines
    deployment = cluster.get("deployments", "shop", "backend")
    assert RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    assert deployment["status"]["updatedReplicas"] == 3


def test_restart_sends_exactly_one_strategic_merge_patch_of_one_annotation(cluster, checkout):
    link(cluster)
    before = cluster.get("deployments", "shop", "backend")
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    [patch] = patches(cluster)
    assert patch.path == "/apis/apps/v1/namespaces/shop/deployments/backend"
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.query.get("fieldManager") == "kubectl-restart-backend"
    annotations = patch.json["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == [RESTARTED_AT]
    assert patch.json == {"spec": {"template": {"metadata": {"annotations": annotations}}}}
    after = cluster.get("deployments", "shop", "backend")
    after["spec"]["template"]["metadata"].pop("annotations")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["labels"] == before["metadata"]["labels"]


def test_repo_and_branch_come_from_the_checkout(cluster, tmp_path):
    checkout = make_checkout(tmp_path / "co", "git@github.com:Acme/Shop.git", "feature/x")
    link(
        cluster,
        labels={"restart-backend/repo": "acme-shop", "restart-backend/branch": "feature-x"},
        annotations={"restart-backend/repo": "acme/shop", "restart-backend/branch": "feature/x"},
    )
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output


def test_stale_ready_status_before_our_generation_is_observed_is_not_success(
    make_cluster, checkout
):
    # No controllers: the status keeps saying 3/3 ready for generation 1 forever.
    cluster = make_cluster(simulation_factory=None)
    deployment = link(cluster)
    deployment["status"] = {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    cluster.update_status("deployments", deployment)
    run = restart(cluster, checkout, "--timeout", "2s")
    assert run.exit_code == 3, run.output
    assert "⚠ Restart timeout - pods may still be cycling" in run.stdout
    assert "Rolling restart complete" not in run.stdout


@pytest.mark.parametrize(
    "behaviour, expected",
    [
        (Behaviour(kind="crashloop", exit_code=3), "CrashLoopBackOff"),
        (Behaviour(kind="imagepullbackoff"), "Image"),
        (Behaviour(kind="oomkilled"), "OOMKilled"),
    ],
    ids=["crashloop", "image-pull", "oomkilled"],
)
def test_new_pods_failing_fail_the_restart_early_with_the_reason(
    cluster, checkout, behaviour, expected
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", behaviour)
    run = restart(cluster, checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    first = [line for line in run.stdout.splitlines() if line.startswith("✗")]
    assert first and first[0].startswith("✗ Restart failed: pod backend-"), run.stdout
    assert expected in run.stdout
    assert "Pod details:" in run.stdout


def test_crash_loop_report_shows_the_crashed_containers_log_lines(cluster, checkout):
    link(cluster)
    cluster.set_behaviour(
        "shop", "backend", Behaviour(kind="crashloop", log_lines=("FATAL: DATABASE_URL unset",))
    )
    run = restart(cluster, checkout)
    assert run.exit_code == 1, run.output
    assert "| FATAL: DATABASE_URL unset" in run.stdout
    assert "BackOff" in run.stdout  # the Warning event


def test_missing_secret_fails_after_the_grace_naming_the_secret(cluster, checkout):
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    env = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
    containers = [{"name": "api", "image": "acme/shop:1", "env": env}]
    link(cluster, containers=containers)
    cluster.delete("secrets", "shop", "shop-db")
    run = restart(cluster, checkout, "--config-grace", "1s")
    assert run.exit_code == 1, run.output
    assert "CreateContainerConfigError" in run.stdout
    assert 'secret "shop-db" not found' in run.stdout
    # the old pods keep serving
    old_ready = cluster.get("deployments", "shop", "backend")["status"].get("readyReplicas", 0)
    assert old_ready >= 2


def test_unschedulable_pods_fail_after_the_grace(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="unschedulable"))
    run = restart(cluster, checkout, "--unschedulable-grace", "1s")
    assert run.exit_code == 1, run.output
    assert "unschedulable" in run.stdout.lower()
    assert "Insufficient cpu" in run.stdout


def test_progress_deadline_exceeded_fails_the_restart(cluster, checkout):
    link(cluster, progress_deadline_seconds=2)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="neverready"))
    run = restart(cluster, checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "progress deadline exceeded" in run.stdout


def test_timeout_reports_the_current_count(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="neverready"))
    run = restart(cluster, checkout, "--timeout", "2s")
    assert run.exit_code == 3, run.output
    lines = run.stdout.splitlines()
    assert "⚠ Restart timeout - pods may still be cycling" in lines
    assert "Current: 0/3 ready (new pods; 3 old pods still ready)" in lines
    assert "Check pod status manually or try again" in lines


def test_deployment_deleted_mid_rollout_is_reported(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="neverready"))
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(run=restart(cluster, checkout, "--timeout", "60s"))
    )
    thread.start()
    cluster.wait_for(lambda: patches(cluster), timeout=30, message="no PATCH sent")
    cluster.delete("deployments", "shop", "backend")
    thread.join(60)
    run = result["run"]
    assert run.exit_code == 1, run.output
    assert "deleted" in run.stdout


def test_no_linked_deployment_says_how_to_link_one(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    run = restart(cluster, checkout)
    assert run.exit_code == 4, run.output
    assert "No workload found for acme/shop@main" in run.stderr
    assert "kubectl label deployment" in run.stderr
    assert "restart-backend/repo=acme-shop" in run.stderr
    assert not patches(cluster)


def test_several_linked_deployments_are_refused_with_a_list(cluster, checkout):
    link(cluster, "shop", "backend")
    link(cluster, "shop-staging", "backend")
    run = restart(cluster, checkout)
    assert run.exit_code == 4, run.output
    assert "shop/backend" in run.stderr and "shop-staging/backend" in run.stderr
    assert not patches(cluster)


def test_backend_component_label_breaks_the_tie(cluster, checkout):
    link(cluster, "shop", "worker", labels={**LINK_LABELS, "app": "worker"})
    backend = {**LINK_LABELS, "app": "api", "app.kubernetes.io/component": "backend"}
    link(cluster, "shop", "api", labels=backend)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for api" in run.stdout


def test_paused_deployment_is_refused_without_a_patch(cluster, checkout):
    link(cluster, paused=True)
    run = restart(cluster, checkout)
    assert run.exit_code == 5, run.output
    assert "paused" in run.stderr and "kubectl rollout resume" in run.stderr
    assert not patches(cluster)


def test_zero_replicas_patch_and_say_there_is_nothing_to_restart(cluster, checkout):
    link(cluster, replicas=0)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "No pods to restart" in run.stdout
    assert len(patches(cluster)) == 1


def test_no_wait_triggers_and_exits(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout, "--no-wait")
    assert run.exit_code == 0, run.output
    assert len(patches(cluster)) == 1
    assert "kubectl restart-backend status --deployment backend -n shop" in run.stdout


def test_dry_run_changes_nothing(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout, "--dry-run")
    assert run.exit_code == 0, run.output
    assert "Dry run: would restart deployment shop/backend" in run.stdout
    assert "patch deployments: yes" in run.stdout
    assert not patches(cluster)


def test_named_deployment_skips_the_label_lookup(cluster, tmp_path):
    cluster.create_deployment("shop", "api")
    run = run_plugin(
        ["--kubeconfig", cluster.kubeconfig, "--deployment", "api", "-n", "shop"], cwd=tmp_path
    )
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for api" in run.stdout


def test_namespace_fallback_when_listing_all_namespaces_is_forbidden(cluster, checkout):
    link(cluster)
    cluster.add_user("dev", "dev-token", NAMESPACED_ROLE)
    kubeconfig = cluster.write_kubeconfig(user="dev", namespace="shop", context="dev")
    run = run_plugin(["--kubeconfig", kubeconfig], cwd=checkout)
    assert run.exit_code == 0, run.output
    assert "searched namespace shop" in run.stdout


@pytest.mark.parametrize("fmt, load", [("json", json.loads), ("yaml", yaml.safe_load)])
def test_machine_readable_output_has_the_spec_fields(cluster, checkout, fmt, load):
    link(cluster)
    run = restart(cluster, checkout, "-o", fmt)
    assert run.exit_code == 0, run.output
    doc = load(run.stdout)
    assert doc["ready"] is True and doc["failed"] is False and doc["rolloutInProgress"] is False
    assert (doc["readyReplicas"], doc["replicas"]) == (3, 3)
    assert doc["appName"] == "backend" and doc["repo"] == "acme/shop" and doc["branch"] == "main"
    assert doc["exitCode"] == 0 and len(doc["pods"]) == 3
    assert "Pods:" in run.stderr or "Rolling restart triggered" in run.stderr


def test_undo_on_failure_brings_the_old_pods_back(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    run = restart(cluster, checkout, "--undo-on-failure")
    assert run.exit_code == 1, run.output
    assert "Rolled back to revision 1: 3/3 pods ready" in run.stdout
    deployment = cluster.get("deployments", "shop", "backend")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert RESTARTED_AT not in annotations
    assert deployment["status"]["readyReplicas"] == 3


def test_urls_from_an_ingress_with_tls_on_success(cluster, checkout):
    link(cluster)
    cluster.create_service("shop", "backend", {"app": "backend"})
    cluster.create_ingress(
        "shop",
        "backend",
        rules=[
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "backend", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
        tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
    )
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "URLs: https://shop.example.com" in run.stdout


def role_rule(group, resource, *verbs):
    return {
        "apiGroups": [group],
        "resources": [resource],
        "verbs": list(verbs),
        "namespaces": ["shop"],
    }


# The README's minimal Role, bound in namespace "shop" only.
NAMESPACED_ROLE = [
    role_rule("apps", "deployments", "get", "list", "watch", "patch"),
    role_rule("apps", "replicasets", "list", "watch"),
    role_rule("", "pods", "list", "watch"),
]


def run_console_script(cluster, checkout, *args, env):
    script = os.path.join(os.path.dirname(sys.executable), "kubectl-restart_backend")
    full_env = {"PATH": os.environ["PATH"], "HOME": str(checkout), **env}
    return subprocess.run(
        [script, "--kubeconfig", cluster.kubeconfig, *args],
        cwd=checkout,
        env=full_env,
        capture_output=True,
        timeout=120,
    )


def test_output_that_cannot_encode_symbols_uses_words(cluster, checkout):
    link(cluster)
    done = run_console_script(cluster, checkout, env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("ascii")
    assert "OK Rolling restart complete for backend" in text


def test_piped_output_has_no_ansi_codes_even_without_no_color(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    done = run_console_script(cluster, checkout, env={"PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 1
    assert b"\x1b[" not in done.stdout + done.stderr
    assert "✗ Restart failed" in done.stdout.decode()


def test_quota_that_blocks_new_pods_fails_with_the_replicaset_reason(cluster, checkout):
    link(cluster)
    cluster.set_pod_quota("shop", 3)  # the surge pod of the rolling update is over quota
    run = restart(cluster, checkout, "--timeout", "60s", "--config-grace", "1s")
    assert run.exit_code == 1, run.output
    assert "✗ Restart failed: ReplicaSet could not create pods" in run.stdout
    assert "quota" in run.stdout
    assert "FailedCreate" in run.stdout


def test_urls_from_a_load_balancer_service(cluster, checkout):
    link(cluster)
    cluster.create_service(
        "shop",
        "backend-lb",
        {"app": "backend"},
        type="LoadBalancer",
        ports=[{"port": 8443, "targetPort": 8080}],
        load_balancer_ingress=["203.0.113.7"],
    )
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "URLs: http://203.0.113.7:8443" in run.stdout


def test_urls_annotation_wins_over_discovery(cluster, checkout):
    annotations = {
        **LINK_ANNOTATIONS,
        "restart-backend/urls": "https://a.example, https://b.example",
    }
    link(cluster, annotations=annotations)
    lb = {"type": "LoadBalancer", "load_balancer_ingress": ["203.0.113.7"]}
    cluster.create_service("shop", "backend-lb", {"app": "backend"}, **lb)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "URLs: https://a.example, https://b.example" in run.stdout


@pytest.mark.parametrize("request_timeout, exit_code", [("0", 0), ("1s", 5)])
def test_request_timeout_zero_means_none_and_a_short_one_gives_up(
    cluster, checkout, request_timeout, exit_code
):
    link(cluster)
    cluster.faults.set_latency(1.5)  # every answer takes longer than 1s
    run = restart(cluster, checkout, "--request-timeout", request_timeout, "--timeout", "20s")
    assert run.exit_code == exit_code, run.output
    if exit_code:
        assert "error: " in run.stderr and "Traceback" not in run.output
        assert not patches(cluster)
