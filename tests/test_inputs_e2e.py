"""Inputs that used to break the plugin, end to end against the simulated cluster: odd
branch names and remotes, credentials in URLs and files, signals, impersonation, tracing."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import (
    interrupt_when,
    link,
    make_checkout,
    patches,
    run_plugin,
    start_console_script,
)
from tests.test_faults_e2e import LosePatchAnswer, relayed_kubeconfig, watches_after_patch


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


# -- signals and credential files ----------------------------------------------------------


def private_tmpdir(tmp_path):
    """TMPDIR for the plugin process: whatever it leaves behind is seen here."""
    directory = tmp_path / "process-tmp"
    directory.mkdir()
    return directory


def leftovers(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"]
)
def test_a_signal_mid_watch_says_the_restart_goes_on_and_leaves_no_client_key(
    cluster, checkout, tmp_path, sig, code
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    kubeconfig = cluster.write_kubeconfig(user="admin", client_certificate=True)
    tmpdir = private_tmpdir(tmp_path)
    process = start_console_script(
        cluster, checkout, "--timeout", "60s", kubeconfig=kubeconfig, env={"TMPDIR": str(tmpdir)}
    )
    returncode, stdout, stderr = interrupt_when(
        cluster, process, lambda: len(watches_after_patch(cluster)) >= 3, sig=sig
    )
    assert returncode == code, stdout + stderr
    assert f"interrupted by {sig.name}" in stdout
    assert "restart goes on in the cluster" in stdout
    assert "Traceback" not in stdout + stderr
    assert {r.user for r in cluster.requests} == {"admin"}  # the certificate authenticated
    assert len(patches(cluster)) == 1
    assert leftovers(tmpdir) == []


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"]
)
def test_a_signal_before_the_patch_says_nothing_was_changed(cluster, checkout, tmp_path, sig, code):
    link(cluster)
    cluster.faults.fail_next(1000, "GET", r"/apis/apps/v1/deployments\?", status=503)
    kubeconfig = cluster.write_kubeconfig(user="admin", client_certificate=True)
    tmpdir = private_tmpdir(tmp_path)
    process = start_console_script(
        cluster, checkout, "--timeout", "60s", kubeconfig=kubeconfig, env={"TMPDIR": str(tmpdir)}
    )
    returncode, stdout, stderr = interrupt_when(
        cluster, process, lambda: any(r.status == 503 for r in cluster.requests), sig=sig
    )
    assert returncode == code, stdout + stderr
    assert stderr.splitlines()[-1] == f"error: interrupted by {sig.name}: nothing was changed"
    assert "Traceback" not in stdout + stderr
    assert not patches(cluster)
    assert leftovers(tmpdir) == []


def test_sigterm_while_the_patch_is_unanswered_says_it_may_have_been_applied(
    make_cluster, checkout
):
    cluster = make_cluster(tls=False)
    link(cluster)
    relay = LosePatchAnswer(cluster.port, hang=True)
    kubeconfig = relayed_kubeconfig(cluster, relay, checkout.parent)
    process = start_console_script(cluster, checkout, "--timeout", "60s", kubeconfig=kubeconfig)
    try:
        returncode, stdout, stderr = interrupt_when(
            cluster, process, relay.swallowed.is_set, sig=signal.SIGTERM
        )
    finally:
        relay.close()
    assert returncode == 143, stdout + stderr
    assert "the restart may have been applied" in stderr
    assert "Traceback" not in stdout + stderr


def test_a_finished_run_leaves_no_credential_file(cluster, checkout, tmp_path):
    link(cluster)
    kubeconfig = cluster.write_kubeconfig(user="admin", client_certificate=True)
    tmpdir = private_tmpdir(tmp_path)
    process = start_console_script(
        cluster, checkout, "--timeout", "60s", kubeconfig=kubeconfig, env={"TMPDIR": str(tmpdir)}
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stdout + stderr
    assert leftovers(tmpdir) == []
