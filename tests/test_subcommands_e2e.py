"""status, list, link, unlink and the per-repo config file, against the simulated cluster."""

from __future__ import annotations

import json

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS, patches, run_plugin

REPO_LABEL, BRANCH_LABEL = "restart-backend/repo", "restart-backend/branch"


def link(cluster, namespace="shop", name="backend", branch="main", repo="acme/shop", **kwargs):
    labels = {REPO_LABEL: repo.replace("/", "-"), BRANCH_LABEL: branch, "app": name}
    annotations = {REPO_LABEL: repo, BRANCH_LABEL: branch}
    return cluster.create_deployment(
        namespace, name, labels=labels, annotations=annotations, **kwargs
    )


def plugin(cluster, checkout, *args):
    return run_plugin([*args, "--kubeconfig", cluster.kubeconfig], cwd=checkout)


def test_status_watches_a_rollout_someone_else_started(cluster, checkout):
    link(cluster)
    assert plugin(cluster, checkout, "--no-wait").exit_code == 0
    cluster.clear_requests()
    run = plugin(cluster, checkout, "status")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for backend" in run.stdout
    assert not patches(cluster)


def test_status_reports_a_failing_rollout_with_exit_1(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    assert plugin(cluster, checkout, "--no-wait").exit_code == 0
    run = plugin(cluster, checkout, "status", "-o", "json")
    assert run.exit_code == 1, run.output
    doc = json.loads(run.stdout)
    assert doc["failed"] is True and "CrashLoopBackOff" in doc["failureReason"]


def test_list_shows_every_branch_of_this_repo(cluster, checkout):
    link(cluster, "shop", "backend", "main")
    link(cluster, "shop", "backend-feature", "feature-x")
    link(cluster, "shop", "other", "main", repo="acme/other")
    run = plugin(cluster, checkout, "list", "-n", "shop")
    assert run.exit_code == 0, run.output
    header, *rows = run.stdout.splitlines()
    assert header.split() == [
        "NAMESPACE", "KIND", "NAME", "REPO", "BRANCH", "READY", "RESTARTED", "AGE"
    ]  # fmt: skip
    assert [row.split()[2] for row in rows] == ["backend", "backend-feature"]
    assert rows[0].split()[1] == "deployment"
    assert rows[0].split()[5] == "3/3"


def test_list_all_repos_in_all_namespaces_as_json(cluster, checkout):
    link(cluster, "shop", "backend")
    link(cluster, "billing", "api", repo="acme/billing")
    run = plugin(cluster, checkout, "list", "--all-repos", "-A", "-o", "json")
    assert run.exit_code == 0, run.output
    items = json.loads(run.stdout)["items"]
    assert {(i["namespace"], i["name"], i["repo"]) for i in items} == {
        ("shop", "backend", "acme/shop"),
        ("billing", "api", "acme/billing"),
    }


def test_link_then_restart_round_trip(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes")
    assert run.exit_code == 0, run.output
    assert "+ label restart-backend/repo=acme-shop" in run.stdout
    meta = cluster.get("deployments", "shop", "backend")["metadata"]
    assert {k: meta["labels"][k] for k in LINK_LABELS} == LINK_LABELS
    assert {k: meta["annotations"][k] for k in LINK_ANNOTATIONS} == LINK_ANNOTATIONS
    run = plugin(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for backend" in run.stdout


def test_link_without_a_terminal_refuses_unless_yes(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop")
    assert run.exit_code == 2, run.output
    assert "--yes" in run.stderr
    assert not patches(cluster)


def test_link_refuses_when_another_deployment_is_linked_unless_forced(cluster, checkout):
    link(cluster, "shop", "old-backend")
    cluster.create_deployment("shop", "backend")
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes")
    assert run.exit_code == 5, run.output
    assert "shop/old-backend is already linked" in run.stderr
    assert not patches(cluster)
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes", "--force")
    assert run.exit_code == 0, run.output
    old = cluster.get("deployments", "shop", "old-backend")["metadata"]
    assert REPO_LABEL not in old["labels"]
    assert plugin(cluster, checkout, "--no-wait").exit_code == 0


def test_unlink_removes_the_link(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "unlink", "backend", "-n", "shop", "--yes")
    assert run.exit_code == 0, run.output
    meta = cluster.get("deployments", "shop", "backend")["metadata"]
    assert REPO_LABEL not in meta["labels"] and REPO_LABEL not in meta.get("annotations", {})
    run = plugin(cluster, checkout)
    assert run.exit_code == 4, run.output
    assert "kubectl restart-backend link" in run.stderr or "kubectl label" in run.stderr


CONFIG = """\
namespace: shop
timeout: 90s
branches:
  main:
    deployment: api
  "release/*":
    namespace: staging
"""


def test_config_file_picks_namespace_and_deployment_for_the_branch(cluster, checkout):
    cluster.create_deployment("shop", "api")
    (checkout / ".restart-backend.yaml").write_text(CONFIG)
    run = plugin(cluster, checkout, "-o", "json")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert (doc["namespace"], doc["appName"]) == ("shop", "api")


def test_flags_win_over_the_config_file(cluster, checkout):
    cluster.create_deployment("shop", "api")
    cluster.create_deployment("shop", "worker")
    (checkout / ".restart-backend.yaml").write_text(CONFIG)
    run = plugin(cluster, checkout, "--deployment", "worker", "--no-wait")
    assert run.exit_code == 0, run.output
    assert [p.path.rsplit("/", 1)[-1] for p in patches(cluster)] == ["worker"]


def test_malformed_config_file_names_file_line_and_key(cluster, checkout):
    (checkout / ".restart-backend.yaml").write_text("namespace: shop\ntimout: 2m\n")
    run = plugin(cluster, checkout)
    assert run.exit_code == 2, run.output
    assert ".restart-backend.yaml" in run.stderr and "line 2" in run.stderr
    assert "timout" in run.stderr
    assert not patches(cluster)


def test_list_outside_a_checkout_says_so_and_names_all_repos(cluster, tmp_path):
    run = run_plugin(["list", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    assert run.stderr.startswith("error: ") and "\nhint: " in run.stderr


def test_status_of_a_paused_deployment_is_refused_like_a_restart(cluster, checkout):
    link(cluster, paused=True)
    run = plugin(cluster, checkout, "status")
    assert run.exit_code == 5, run.output
    assert "is paused" in run.stderr and "kubectl rollout resume" in run.stderr


def test_link_refuses_when_a_deployment_in_another_namespace_is_linked(cluster, checkout):
    link(cluster, "shop-old", "backend")
    cluster.create_deployment("shop", "backend")
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes")
    assert run.exit_code == 5, run.output
    assert "shop-old/backend is already linked" in run.stderr
    run = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes", "--force")
    assert run.exit_code == 0, run.output
    assert REPO_LABEL not in cluster.get("deployments", "shop-old", "backend")["metadata"]["labels"]
    run = plugin(cluster, checkout, "--no-wait")
    assert run.exit_code == 0, run.output  # exactly one linked Deployment left
