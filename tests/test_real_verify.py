"""The real tier: the smoke check meets the official kube-apiserver's Service proxy.

The fake pods of this tier cannot answer proxied requests (their IPs are the simulated
kubelet's, nothing listens there, and no endpoints controller runs: tests/cluster/README.md),
so what is checked here is the API server's own side: its RBAC on `services/proxy` with the
README's Role, its 403 wording, and its 503 Status for a Service without endpoints, all read
by the plugin as the simulated API server's are.
"""

from __future__ import annotations

import re

from tests.controlplane.rbac import readme_role
from tests.plugin_runner import HTTP_SERVICE_PORTS, PROBED, run_plugin


def backend(real_cluster) -> str:
    ns = real_cluster.ns()
    real_cluster.link(ns, containers=PROBED)
    real_cluster.create_service(ns, "backend", {"app": "backend"}, ports=HTTP_SERVICE_PORTS)
    return ns


def restart(real_cluster, checkout, kubeconfig, *args):
    argv = ["--kubeconfig", kubeconfig, "--timeout", "60s", "--verify-timeout", "1s", *args]
    return run_plugin(argv, cwd=checkout)


def test_without_the_readmes_proxy_rule_the_real_403_skips_the_check(real_cluster, real_checkout):
    ns = backend(real_cluster)
    rules = [r for r in readme_role()["rules"] if r["resources"] != ["services/proxy"]]
    kubeconfig = real_cluster.add_user("dev", rules, namespace=ns)
    run = restart(real_cluster, real_checkout, kubeconfig)
    assert run.exit_code == 0, run.output
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("Verification skipped: ")]
    words = (
        r'Verification skipped: not allowed: services "backend:http" is forbidden: User "dev\S*" '
        rf'cannot get resource "services/proxy" in API group "" in the namespace "{ns}"'
    )
    assert re.fullmatch(words, line), line


def test_with_the_readmes_role_the_real_proxy_is_asked_and_its_503_read(
    real_cluster, real_checkout
):
    ns = backend(real_cluster)
    kubeconfig = real_cluster.add_user("dev", readme_role()["rules"], namespace=ns)
    run = restart(real_cluster, real_checkout, kubeconfig)
    assert run.exit_code == 1, run.output
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("✗ Restart failed: ")]
    assert line.startswith(
        f"✗ Restart failed: the backend does not serve: GET /healthz through service "
        f"{ns}/backend:http answered 503 Service Unavailable from the API server: no "
        'endpoints available for service "backend" ('
    ), line
