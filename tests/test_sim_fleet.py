"""The simulated fleet: several clusters at once, one kubeconfig with a context each, every
cluster with its own CA, users and tokens, and one of them unreachable on demand. What a
restart across clusters (waves) will be tested on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster import SimFleet, rule
from tests.plugin_runner import link, patches, run_plugin

KUBECTL = Path(sys.executable).parent / "kubectl"


def get(cluster, path: str, token: str, ca_pem: bytes | None = None) -> int:
    """The status of a GET to `cluster` with `token`, trusting `ca_pem` (default: its own)."""
    context = ssl.create_default_context(cadata=(ca_pem or cluster.ca_pem).decode())
    conn = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=context, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_one_kubeconfig_names_a_context_per_cluster(fleet):
    config = yaml.safe_load(Path(fleet.kubeconfig).read_text())
    assert config["current-context"] == "staging"
    assert [c["name"] for c in config["contexts"]] == ["staging", "prod-eu", "prod-us"]
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    assert contexts["prod-eu"] == {"cluster": "prod-eu", "user": "admin@prod-eu",
                                   "namespace": "default"}  # fmt: skip
    servers = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
    assert servers == {name: fleet[name].url for name in fleet.names}
    assert len(set(servers.values())) == 3


def test_each_cluster_has_its_own_objects_ca_and_tokens(fleet):
    staging, prod = fleet["staging"], fleet["prod-eu"]
    staging.create_namespace("only-on-staging")
    assert prod.get("namespaces", None, "only-on-staging") is None
    assert staging.token_of("admin") != prod.token_of("admin")
    assert get(prod, "/api/v1/namespaces", prod.token_of("admin")) == 200
    assert get(prod, "/api/v1/namespaces", staging.token_of("admin")) == 401
    with pytest.raises(ssl.SSLCertVerificationError):  # staging's CA does not vouch for prod
        get(prod, "/api/v1/namespaces", prod.token_of("admin"), ca_pem=staging.ca_pem)


def test_the_plugin_restarts_on_the_context_it_is_given_only(fleet, checkout):
    for cluster in fleet:
        link(cluster)
    run = run_plugin(["--kubeconfig", fleet.kubeconfig, "--context", "prod-eu"], cwd=checkout)
    assert run.exit_code == 0, run.output
    assert "Restarting deployment shop/backend (context prod-eu)" in run.stdout
    assert [len(patches(fleet[name])) for name in fleet.names] == [0, 1, 0]


def test_an_unreachable_cluster_refuses_connections_while_the_others_serve(fleet, checkout):
    for cluster in fleet:
        link(cluster)
    fleet.make_unreachable("prod-us")
    port = fleet["prod-us"].port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket() as other:  # the port stays reserved for the cluster's return
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    down = run_plugin(["--kubeconfig", fleet.kubeconfig, "--context", "prod-us"], cwd=checkout)
    assert down.exit_code == 5, down.output
    assert f"error: cannot reach the API server at https://127.0.0.1:{port}" in down.stderr
    up = run_plugin(["--kubeconfig", fleet.kubeconfig, "--context", "prod-eu"], cwd=checkout)
    assert up.exit_code == 0, up.output
    fleet.make_reachable("prod-us")
    again = run_plugin(["--kubeconfig", fleet.kubeconfig, "--context", "prod-us"], cwd=checkout)
    assert again.exit_code == 0, again.output  # same port, same state
    assert fleet["prod-us"].reachable and len(patches(fleet["prod-us"])) == 1


def test_a_user_gets_a_token_per_cluster_and_contexts_where_it_exists(fleet):
    tokens = fleet.add_user(
        "ci", [rule(["get", "list"], "deployments", "apps")], clusters=["staging", "prod-eu"]
    )
    assert set(tokens) == {"staging", "prod-eu"} and len(set(tokens.values())) == 2
    config = yaml.safe_load(Path(fleet.write_kubeconfig(user="ci")).read_text())
    assert [c["name"] for c in config["contexts"]] == ["staging", "prod-eu"]
    assert {u["name"]: u["user"]["token"] for u in config["users"]} == {
        "ci@staging": tokens["staging"],
        "ci@prod-eu": tokens["prod-eu"],
    }
    assert get(fleet["prod-eu"], "/apis/apps/v1/deployments", tokens["prod-eu"]) == 200
    assert get(fleet["prod-eu"], "/api/v1/pods", tokens["prod-eu"]) == 403


def test_fleet_names_must_be_distinct_dns_labels():
    for names in ([], ["eu", "eu"], ["Prod_EU"]):
        with pytest.raises(ValueError, match="distinct DNS labels"):
            SimFleet(names)


def test_dev_cluster_serves_a_seeded_fleet(tmp_path):
    """`python -m tests.cluster --clusters ...` (scripts/dev-cluster passes it through)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster", "--clusters", "eu,us", "--kubeconfig",
         str(kubeconfig)],
        cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == f"export KUBECONFIG={kubeconfig}\n"
        home = tmp_path / "home"
        home.mkdir()
        for context in ("eu", "us"):
            result = subprocess.run(
                [str(KUBECTL), "get", "deployments", "-n", "shop", "-o", "json", "--context",
                 context],
                env={"HOME": str(home), "KUBECONFIG": str(kubeconfig), "PATH": ""},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            names = [d["metadata"]["name"] for d in json.loads(result.stdout)["items"]]
            assert names == ["backend"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Simulated cluster eu serving at https://127.0.0.1:" in stderr
    assert "Simulated cluster stopped." in stderr
