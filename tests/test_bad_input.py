"""Bad input, met the same way every time: one ``error:`` line, one ``hint:`` line, the
documented exit code (README "Exit codes"), no traceback, and nothing patched.

Each case is a real situation: a real git checkout (or not), a real kubeconfig file, the
simulated cluster answering through the real client.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.cluster.certs import generate_certificates
from tests.plugin_runner import (
    LINK_LABELS,
    link,
    patches,
    run_plugin,
)

USAGE, NOT_FOUND, REFUSED, FAILED = 2, 4, 5, 1


def assert_refused(run, exit_code, *words, cluster=None):
    """The one shape every bad input gets."""
    assert run.exit_code == exit_code, run.output
    assert "Traceback" not in run.output
    lines = run.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    hints = [line for line in lines if line.startswith("hint: ")]
    assert len(errors) == 1, run.stderr
    assert len(hints) == 1, run.stderr
    for word in words:
        assert word in errors[0] + hints[0], run.stderr
    if cluster is not None:
        assert not patches(cluster)
    return errors[0], hints[0]


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def restart(cluster, cwd, *args, kubeconfig=None, env=None):
    config = kubeconfig or cluster.kubeconfig
    return run_plugin(["--kubeconfig", str(config), "--timeout", "20s", *args], cwd=cwd, env=env)


def edit_kubeconfig(cluster, directory, change, name="kubeconfig"):
    """A copy of the admin kubeconfig with ``change(config)`` applied."""
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    change(config)
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config))
    return path


# -- the checkout ----------------------------------------------------------------------


def test_not_a_git_repository(cluster, tmp_path):
    link(cluster)
    (tmp_path / "plain").mkdir()
    run = restart(cluster, tmp_path / "plain")
    assert_refused(run, USAGE, "git", cluster=cluster)


def test_no_origin_remote(cluster, checkout):
    link(cluster)
    git(checkout, "remote", "remove", "origin")
    run = restart(cluster, checkout)
    assert_refused(run, USAGE, "origin", "--repo", cluster=cluster)


@pytest.mark.parametrize("url", ["not a url", "https://github.com/", "git@github.com:"])
def test_origin_that_is_not_a_repository_url(cluster, checkout, url):
    link(cluster)
    git(checkout, "remote", "set-url", "origin", url)
    run = restart(cluster, checkout)
    assert_refused(run, USAGE, "--repo", cluster=cluster)


def test_detached_head_without_ci_variables(cluster, checkout):
    link(cluster)
    git(checkout, "checkout", "-q", "--detach")
    run = restart(cluster, checkout)
    assert_refused(run, USAGE, "detached", "--branch", cluster=cluster)


def test_empty_repository(cluster, tmp_path):
    link(cluster)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    git(empty, "remote", "add", "origin", "https://github.com/acme/shop.git")
    run = restart(cluster, empty)
    assert_refused(run, USAGE, "no commits", cluster=cluster)


@pytest.mark.parametrize("repo", ["shop", "acme/", "/shop", "a/b/c/d e", "--upload-pack=x"])
def test_malformed_repo_flag(cluster, checkout, repo):
    link(cluster)
    run = restart(cluster, checkout, f"--repo={repo}")
    assert_refused(run, USAGE, "--repo", cluster=cluster)


@pytest.mark.parametrize("branch", ["...", "-", "a b", "x.lock"])
def test_branch_git_would_never_allow(cluster, checkout, branch):
    link(cluster)
    run = restart(cluster, checkout, "--branch", branch)
    assert_refused(run, USAGE, "git allows", cluster=cluster)


# -- flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--timeout", "soon"], "--timeout"),
        (["--timeout", "-5s"], "--timeout"),
        (["--timeout", "1x"], "--timeout"),
        (["-o", "xml"], "xml"),
        (["--output=table"], "table"),
    ],
    ids=["timeout-word", "timeout-negative", "timeout-unit", "output-xml", "output-table"],
)
def test_malformed_flags(cluster, checkout, args, flag):
    link(cluster)
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, *args], cwd=checkout)
    assert_refused(run, USAGE, flag, "--help", cluster=cluster)


# -- the kubeconfig ----------------------------------------------------------------------


def test_missing_kubeconfig_file(cluster, checkout, tmp_path):
    link(cluster)
    run = restart(cluster, checkout, kubeconfig=tmp_path / "nowhere" / "config")
    assert_refused(run, USAGE, "nowhere", cluster=cluster)


def test_no_kubeconfig_at_all(cluster, checkout):
    link(cluster)
    run = run_plugin([], cwd=checkout, env={"KUBECONFIG": ""})  # HOME is the bare checkout
    assert_refused(run, USAGE, "kubeconfig", cluster=cluster)


@pytest.mark.parametrize(
    "text", ["{ not: [yaml", "\t- tabs: are\n\tnot: allowed", "just a string", "- a\n- list"]
)
def test_kubeconfig_that_is_not_yaml_or_not_a_mapping(cluster, checkout, tmp_path, text):
    link(cluster)
    bad = tmp_path / "bad-config"
    bad.write_text(text)
    run = restart(cluster, checkout, kubeconfig=bad)
    assert_refused(run, USAGE, "bad-config", cluster=cluster)


def test_kubeconfig_whose_current_context_is_missing(cluster, checkout, tmp_path):
    link(cluster)
    path = edit_kubeconfig(cluster, tmp_path, lambda c: c.update({"current-context": "gone"}))
    run = restart(cluster, checkout, kubeconfig=path)
    assert_refused(run, USAGE, "gone", cluster=cluster)


def test_unknown_context_flag(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout, "--context", "prod-typo")
    assert_refused(run, USAGE, "prod-typo", cluster=cluster)


# -- reaching the API server -------------------------------------------------------------


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server(cluster, checkout, tmp_path):
    link(cluster)
    port = closed_port()

    def to_closed_port(config):
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"

    path = edit_kubeconfig(cluster, tmp_path, to_closed_port)
    run = run_plugin(["--kubeconfig", str(path), "--timeout", "1s"], cwd=checkout)
    error, _hint = assert_refused(run, REFUSED, "cannot reach", cluster=cluster)
    assert f"127.0.0.1:{port}" in error


def test_tls_with_a_wrong_certificate_authority(cluster, checkout, tmp_path):
    link(cluster)
    other = generate_certificates(tmp_path / "other-pki")  # a CA that signed nothing we meet

    def wrong_ca(config):
        cluster_entry = config["clusters"][0]["cluster"]
        cluster_entry.pop("certificate-authority-data", None)
        cluster_entry["certificate-authority"] = str(other.ca_file)

    path = edit_kubeconfig(cluster, tmp_path, wrong_ca)
    run = restart(cluster, checkout, kubeconfig=path)
    error, hint = assert_refused(run, REFUSED, "TLS verification failed", cluster=cluster)
    assert "insecure" not in (error + hint).lower()


def test_tls_with_a_wrong_server_name(make_cluster, checkout, tmp_path):
    # The server's certificate names 127.0.0.1 and localhost; 127.0.0.2 is the same machine.
    cluster = make_cluster(host="127.0.0.2")
    link(cluster)
    run = restart(cluster, checkout)
    error, hint = assert_refused(run, REFUSED, "TLS verification failed", cluster=cluster)
    assert "127.0.0.2" in error
    assert "insecure" not in (error + hint).lower()


def test_wrong_token_is_401(cluster, checkout, tmp_path):
    link(cluster)

    def wrong_token(config):
        config["users"][0]["user"]["token"] = "expired-or-wrong"

    path = edit_kubeconfig(cluster, tmp_path, wrong_token)
    run = restart(cluster, checkout, kubeconfig=path)
    assert_refused(run, REFUSED, "Unauthorized", cluster=cluster)


# -- RBAC ------------------------------------------------------------------------------

FULL = {
    ("apps", "deployments"): ["get", "list", "watch", "patch"],
    ("apps", "replicasets"): ["list", "watch"],
    ("", "pods"): ["list", "watch"],
}


def user_without(cluster, verb, resource, group="apps"):
    """A user with the minimal Role in namespace shop, minus one verb on one resource."""
    rules = []
    for (grp, res), verbs in FULL.items():
        kept = [v for v in verbs if not (res == resource and grp == group and v == verb)]
        rules.append(rule(kept, [res], grp, namespaces="shop"))
    cluster.add_user("dev", "dev-token", rules)
    return cluster.write_kubeconfig(user="dev", namespace="shop", context="dev")


@pytest.mark.parametrize(
    "verb, resource, args",
    [
        ("list", "deployments", []),
        ("get", "deployments", ["--deployment", "backend", "-n", "shop"]),
        ("patch", "deployments", []),
        ("watch", "deployments", []),
        ("watch", "pods", []),
    ],
    ids=["list", "get", "patch", "watch-deployments", "watch-pods"],
)
def test_forbidden_says_which_permission_is_missing(cluster, checkout, verb, resource, args):
    link(cluster)
    group = "" if resource == "pods" else "apps"
    kubeconfig = user_without(cluster, verb, resource, group)
    run = restart(cluster, checkout, *args, kubeconfig=kubeconfig)
    error, hint = assert_refused(run, REFUSED, "forbidden", f"cannot {verb}")
    assert f'"{resource}"' in error
    assert verb in hint and resource in hint
    applied = [p for p in patches(cluster) if p.status == 200]
    if verb == "watch":
        # Watching is only tried after the PATCH: the restart was triggered and said so.
        assert "Rolling restart triggered" in run.stdout and len(applied) == 1
    else:
        assert not applied


# -- exec credential plugins -------------------------------------------------------------


def exec_user(command, args=()):
    def change(config):
        config["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": command,
                "args": list(args),
                "interactiveMode": "Never",
            }
        }

    return change


def test_exec_plugin_missing(cluster, checkout, tmp_path):
    link(cluster)
    path = edit_kubeconfig(cluster, tmp_path, exec_user("kubelogin-not-installed"))
    run = restart(cluster, checkout, kubeconfig=path)
    assert_refused(run, USAGE, "kubelogin-not-installed", cluster=cluster)


def test_exec_plugin_failing(cluster, checkout, tmp_path):
    link(cluster)
    script = tmp_path / "failing-login"
    script.write_text("#!/bin/sh\necho 'login expired: run sso login' >&2\nexit 1\n")
    script.chmod(0o755)
    path = edit_kubeconfig(cluster, tmp_path, exec_user(str(script)))
    run = restart(cluster, checkout, kubeconfig=path)
    assert_refused(run, REFUSED, "failing-login", cluster=cluster)


# -- the target --------------------------------------------------------------------------


def test_paused_deployment(cluster, checkout):
    link(cluster, paused=True)
    run = restart(cluster, checkout)
    assert_refused(run, REFUSED, "paused", "kubectl rollout resume", cluster=cluster)


def test_several_matches(cluster, checkout):
    link(cluster, "shop", "backend")
    link(cluster, "shop", "worker", labels={**LINK_LABELS, "app": "worker"})
    run = restart(cluster, checkout)
    error, hint = assert_refused(run, NOT_FOUND, cluster=cluster)
    assert "shop/backend" in run.stderr and "shop/worker" in run.stderr


def test_no_match(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    run = restart(cluster, checkout)
    assert_refused(run, NOT_FOUND, "kubectl label", cluster=cluster)


def test_deployment_whose_pods_cannot_be_created_fails_with_the_reason(cluster, checkout):
    # Nothing will ever match the selector: the quota forbids every new pod. The restart
    # happens (it is not bad input), and the verdict says why no pod came.
    link(cluster)
    cluster.set_pod_quota("shop", 3)
    run = restart(cluster, checkout)
    assert run.exit_code == FAILED, run.output
    assert "Traceback" not in run.output
    assert "quota" in run.stdout.lower()
    assert len(patches(cluster)) == 1


def test_unknown_deployment_name(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout, "--deployment", "frontend", "-n", "shop")
    assert_refused(run, NOT_FOUND, "frontend", cluster=cluster)


def test_crash_looping_new_pods_are_a_verdict_not_an_error(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = restart(cluster, checkout)
    assert run.exit_code == FAILED, run.output
    assert "error: " not in run.stderr
