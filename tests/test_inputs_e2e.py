"""Inputs that used to break the plugin, end to end against the simulated cluster: odd
branch names and remotes, credentials in URLs and files, signals, impersonation, tracing."""

from __future__ import annotations

import subprocess

from tests.plugin_runner import make_checkout, patches, run_plugin


def plugin(cluster, cwd, *args, kubeconfig=None, env=None):
    config = str(kubeconfig or cluster.kubeconfig)
    return run_plugin([*args, "--kubeconfig", config], cwd=cwd, env=env)


def test_a_branch_of_only_non_latin_letters_can_be_linked_and_restarted(cluster, tmp_path):
    branch = "日本語ブランチ"
    checkout = make_checkout(tmp_path / "shop", branch=branch)
    cluster.create_deployment("shop", "backend")
    linked = plugin(cluster, checkout, "link", "backend", "-n", "shop", "--yes")
    assert linked.exit_code == 0, linked.output
    labels = cluster.get("deployments", "shop", "backend")["metadata"]["labels"]
    assert labels["restart-backend/branch"].isalnum()  # the hash form: 8 hex digits
    run = plugin(cluster, checkout, "--timeout", "30s")
    assert run.exit_code == 0, run.output
    assert "Rolling restart complete for backend" in run.stdout
    assert len(patches(cluster)) == 2  # the link, then the restart


def test_bitbucket_server_remotes_name_the_same_repo(cluster, tmp_path):
    cluster.create_deployment(
        "shop",
        "backend",
        labels={"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"},
        annotations={"restart-backend/repo": "acme/shop", "restart-backend/branch": "main"},
    )
    for number, origin in enumerate(
        [
            "https://bitbucket.example.com/scm/acme/shop.git",
            "ssh://git@bitbucket.example.com:7999/ACME/shop.GIT",
        ]
    ):
        checkout = make_checkout(tmp_path / f"shop-{number}", origin=origin)
        run = plugin(cluster, checkout, "--no-wait")
        assert run.exit_code == 0, run.output
    assert len(patches(cluster)) == 2


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)
