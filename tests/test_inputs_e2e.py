"""Inputs that used to break the plugin, end to end against the simulated cluster: odd
branch names and remotes, credentials in URLs and files, signals, impersonation, tracing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import (
    CONSOLE_SCRIPT,
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


# -- kubectl's flags: --token, --as/--as-group, -v ---------------------------------------------


def test_token_flag_replaces_the_kubeconfig_credentials(cluster, checkout, tmp_path):
    link(cluster)
    cluster.add_user("ci", "ci-token", [rule(["*"], "*", "*")])
    kubeconfig = cluster.write_kubeconfig(tmp_path / "stale", user="admin")
    stale = Path(kubeconfig).read_text().replace(cluster.token_of("admin"), "expired-token")
    Path(kubeconfig).write_text(stale)
    run = plugin(cluster, checkout, "--no-wait", "--token", "ci-token", kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    assert {r.user for r in cluster.requests if r.method == "PATCH"} == {"ci"}
    assert "ci-token" not in run.output


def test_as_and_as_group_restart_as_the_impersonated_user(cluster, checkout):
    link(cluster)
    cluster.add_user("jane", "jane-token", [rule(["*"], "*", "*")])
    cluster.add_user("dev", "dev-token", [
        rule(["impersonate"], "users", "", resource_names="jane"),
        rule(["impersonate"], "groups", "", resource_names=["ops", "oncall"]),
    ])  # fmt: skip
    kubeconfig = cluster.write_kubeconfig(user="dev")
    args = ("--timeout", "30s", "--as", "jane", "--as-group", "ops", "--as-group", "oncall")
    run = plugin(cluster, checkout, *args, kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    assert {(r.user, r.groups) for r in cluster.requests} == {
        ("jane", ("ops", "oncall", "system:authenticated"))
    }


def test_verbose_trace_shows_the_calls_and_never_a_credential(cluster, checkout):
    link(cluster)
    token = cluster.token_of("admin")
    run = plugin(cluster, checkout, "--timeout", "30s", "-v", "8")
    assert run.exit_code == 0, run.output
    trace = [line for line in run.stderr.splitlines() if line.startswith("trace: ")]
    # The client line decides how the query is escaped (34+ leaves '/' as it is).
    selector = "labelSelector=restart-backend/repo=acme-shop,restart-backend/branch=main"
    listed = f"trace: GET {cluster.url}/apis/apps/v1/deployments?{selector} 200 OK in "
    assert any(unquote(line).startswith(listed) for line in trace), trace
    assert any(line.startswith("trace: PATCH ") and " 200 " in line for line in trace)
    assert any("header authorization: <masked>" in line.lower() for line in trace)
    assert any('body: {"spec": {"template"' in line for line in trace)
    assert token not in run.output


def test_verbose_level_6_traces_requests_only(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--no-wait", "--v=6")
    assert run.exit_code == 0, run.output
    trace = [line for line in run.stderr.splitlines() if line.startswith("trace: ")]
    assert trace and all(" header " not in line and " body: " not in line for line in trace)


# -- exec credential plugins -------------------------------------------------------------------


def exec_kubeconfig(cluster, directory, script):
    plugin_path = directory / "credential-plugin"
    plugin_path.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n{script}\n")
    plugin_path.chmod(0o755)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin_path),
            "interactiveMode": "Never",
        }
    }
    path = directory / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_hanging_credential_plugin_is_killed_at_the_timeout(cluster, checkout, tmp_path):
    link(cluster)
    pid_file = tmp_path / "plugin.pid"
    kubeconfig = exec_kubeconfig(
        cluster, tmp_path, f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)"
    )
    run = plugin(cluster, checkout, "--timeout", "2s", kubeconfig=kubeconfig)
    assert run.exit_code == 5, run.output
    assert "credential-plugin" in run.stderr and "did not answer within 2s" in run.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert not patches(cluster)


def test_a_credential_plugin_may_answer_with_a_client_certificate(cluster, checkout, tmp_path):
    link(cluster)
    cert, key = cluster.client_certificate("admin")
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"clientCertificateData": cert.decode(), "clientKeyData": key.decode()},
    }
    kubeconfig = exec_kubeconfig(cluster, tmp_path, f"print(json.dumps({credential!r}))")
    run = plugin(cluster, checkout, "--no-wait", kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    assert {r.user for r in cluster.requests} == {"admin"}


def test_a_credential_plugin_gets_its_cluster_when_it_asks(cluster, checkout, tmp_path):
    link(cluster)
    seen = tmp_path / "exec-info.json"
    token = cluster.token_of("admin")
    kubeconfig = exec_kubeconfig(
        cluster,
        tmp_path,
        f"open({str(seen)!r}, 'w').write(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        f"'kind': 'ExecCredential', 'status': {{'token': {token!r}}}}}))",
    )
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"]["exec"]["provideClusterInfo"] = True
    kubeconfig.write_text(yaml.safe_dump(config))
    run = plugin(cluster, checkout, "--no-wait", kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    info = json.loads(seen.read_text())
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == cluster.url


# -- standard output that cannot be written ----------------------------------------------------


@pytest.mark.parametrize(
    "output, state, patched",
    [
        ("text", "the restart was not sent", 0),  # the target is named before the patch
        ("json", "the restart was triggered and goes on in the cluster", 1),  # document after
    ],
)
def test_an_unwritable_stdout_says_whether_the_restart_was_sent(cluster, checkout, output, state,
                                                                patched):  # fmt: skip
    link(cluster)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), "--no-wait", "-o", output, "--kubeconfig", cluster.kubeconfig],
            cwd=checkout,
            env={"PATH": os.environ["PATH"], "HOME": str(checkout), "NO_COLOR": "1"},
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-2:] == [
        f"error: cannot write to standard output (No space left on device): {state}",
        "hint: check where standard output goes (a full disk, /dev/full)",
    ]
    assert len(patches(cluster)) == patched
