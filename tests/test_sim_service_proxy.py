"""The simulated API server's Service and Pod proxy: kube-apiserver's routing rules (pure,
tables), and the answers of the simulated pods through the official client and kubectl."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.cluster.service_proxy import (
    ProxyRefused,
    ProxyTarget,
    pod_port,
    service_endpoints,
    split_proxy_id,
)
from tests.plugin_runner import HTTP_SERVICE_PORTS, PROBED

pytestmark = pytest.mark.timeout(60)

PROXY = "/api/v1/namespaces/shop/services/{}/proxy/healthz"


# -- routing, pure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy_id", "parts"),
    [
        ("backend", ("", "backend", "")),
        ("backend:http", ("", "backend", "http")),
        ("backend:80", ("", "backend", "80")),
        ("https:backend:443", ("https", "backend", "443")),
    ],
)
def test_proxy_ids_are_scheme_name_and_port(proxy_id, parts):
    assert split_proxy_id(proxy_id) == parts


@pytest.mark.parametrize("proxy_id", ["", "ftp:backend:80", "a:b:c:d", ":80"])
def test_malformed_proxy_ids_are_400(proxy_id):
    with pytest.raises(ProxyRefused) as refused:
        split_proxy_id(proxy_id)
    assert (refused.value.code, refused.value.message) == (
        400,
        f'invalid service request "{proxy_id}"',
    )


def _pod(name, *, ready=True, ip="10.244.1.2", terminating=False, labels=None, ports=None):
    meta = {"name": name, "labels": labels or {"app": "backend"}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "ports": ports or []}]},
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _service(ports, selector=None):
    return {"metadata": {"name": "backend"},
            "spec": {"selector": selector or {"app": "backend"}, "ports": ports}}  # fmt: skip


HTTP_PORT = [{"name": "http", "port": 80, "targetPort": 8080}]
NAMED_TARGET = [{"name": "web", "port": 80, "targetPort": "http"}]


@pytest.mark.parametrize(
    ("ports", "pods", "port", "expected"),
    [
        (HTTP_PORT, [_pod("a"), _pod("b", ip="10.244.2.3")], "http",
         [ProxyTarget("a", "10.244.1.2", 8080), ProxyTarget("b", "10.244.2.3", 8080)]),
        (HTTP_PORT, [_pod("a")], "80", [ProxyTarget("a", "10.244.1.2", 8080)]),
        (HTTP_PORT, [_pod("a", ready=False), _pod("b")], "http",
         [ProxyTarget("b", "10.244.1.2", 8080)]),
        (HTTP_PORT, [_pod("a", terminating=True), _pod("b")], "http",
         [ProxyTarget("b", "10.244.1.2", 8080)]),
        (HTTP_PORT, [_pod("a", labels={"app": "other"}), _pod("b")], "http",
         [ProxyTarget("b", "10.244.1.2", 8080)]),
        (NAMED_TARGET, [_pod("a", ports=[{"name": "http", "containerPort": 9000}]),
                        _pod("b", ports=[{"name": "metrics", "containerPort": 9090}])], "web",
         [ProxyTarget("a", "10.244.1.2", 9000)]),
        ([{"port": 8080}], [_pod("a")], "", [ProxyTarget("a", "10.244.1.2", 8080)]),
    ],
    ids=["by-name", "by-number", "ready-only", "not-terminating", "selected-only",
         "named-target-port", "unnamed-port"],
)  # fmt: skip
def test_service_endpoints_are_the_ready_selected_pods_at_the_target_port(
    ports, pods, port, expected
):
    assert service_endpoints(_service(ports), pods, port) == expected


@pytest.mark.parametrize(
    ("pods", "port", "message"),
    [
        ([_pod("a", ready=False)], "http", 'no endpoints available for service "backend"'),
        ([_pod("a")], "metrics", 'no endpoints available for service "backend"'),
        ([_pod("a")], "81", 'no service port 81 found for service "backend"'),
        ([_pod("a", ip="")], "http", 'no endpoints available for service "backend"'),
    ],
    ids=["none-ready", "unknown-port-name", "unknown-port-number", "no-ip-yet"],
)
def test_no_endpoint_is_the_api_servers_503(pods, port, message):
    with pytest.raises(ProxyRefused) as refused:
        service_endpoints(_service(HTTP_PORT), pods, port)
    assert (refused.value.code, refused.value.reason, refused.value.message) == (
        503,
        "ServiceUnavailable",
        message,
    )


def test_a_pod_proxy_goes_to_the_given_or_the_first_declared_port():
    pod = _pod("a", ports=[{"containerPort": 9000}])
    assert pod_port(pod, "") == ProxyTarget("a", "10.244.1.2", 9000)
    assert pod_port(pod, "8080") == ProxyTarget("a", "10.244.1.2", 8080)
    with pytest.raises(ProxyRefused, match="address not allowed"):
        pod_port(_pod("b", ip=""), "")


# -- over HTTP, through the official client ------------------------------------------------------


@pytest.fixture
def backend(cluster):
    """Deployment shop/backend (3 pods, port http 8080) and its Service (port http 80)."""
    cluster.create_deployment("shop", "backend", containers=PROBED)
    cluster.create_service("shop", "backend", {"app": "backend"}, ports=HTTP_SERVICE_PORTS)
    return cluster


def _client(cluster, kubeconfig=None):
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(kubeconfig or cluster.kubeconfig))


def _get(core, proxy_id, path="healthz"):
    """(status, body) of a Service proxy GET through the typed client method."""
    from kubernetes.client import ApiException

    try:
        answer = core.connect_get_namespaced_service_proxy_with_path(
            proxy_id, "shop", path, _preload_content=False
        )
        return answer.status, answer.data.decode()
    except ApiException as err:
        return err.status, err.body.decode() if isinstance(err.body, bytes) else err.body


def _restart_with(cluster, behaviour):
    cluster.set_behaviour("shop", "backend", behaviour)
    cluster.patch("deployments", "shop", "backend",
                  {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}})  # fmt: skip
    cluster.wait_for_rollout("shop", "backend")


@pytest.mark.parametrize("proxy_id", ["backend:http", "backend:80", "http:backend:http"])
def test_a_healthy_backend_answers_200_through_the_service(backend, proxy_id):
    assert _get(_client(backend), proxy_id) == (200, "ok\n")
    (request,) = [r for r in backend.requests if "/proxy/" in r.path]
    assert (request.method, request.status, request.user) == ("GET", 200, "admin")


def test_a_broken_backend_answer_is_passed_through_as_it_came(backend):
    _restart_with(backend, Behaviour.broken(status=503, body="database unreachable\nretry"))
    assert _get(_client(backend), "backend:http") == (503, "database unreachable\nretry")


def test_a_service_without_ready_pods_is_503_no_endpoints(backend):
    backend.set_behaviour("shop", "backend", Behaviour.never_ready())
    backend.patch("deployments", "shop", "backend", {"spec": {"replicas": 0}})
    backend.wait_for(lambda: not backend.list("pods", "shop"))
    backend.patch("deployments", "shop", "backend", {"spec": {"replicas": 1}})
    backend.wait_for(lambda: backend.list("pods", "shop"))
    status, body = _get(_client(backend), "backend:http")
    assert status == 503 and 'no endpoints available for service \\"backend\\"' in body


def test_an_unknown_service_is_404(backend):
    status, body = _get(_client(backend), "nope:http")
    assert status == 404 and 'services \\"nope\\" not found' in body


def test_the_proxy_needs_get_on_services_proxy(backend, tmp_path):
    reader = [rule(["get", "list", "watch"], ["services", "pods"], "", namespaces="shop")]
    backend.add_user("dev", "dev-token", reader)
    status, body = _get(_client(backend, backend.write_kubeconfig(user="dev")), "backend:http")
    assert status == 403
    assert (
        'services \\"backend:http\\" is forbidden: User \\"dev\\" cannot get resource '
        '\\"services/proxy\\" in API group \\"\\" in the namespace \\"shop\\"'
    ) in body
    backend.add_user("dev", "dev-token", [*reader, rule("get", "services/proxy", "", "shop")])
    assert _get(_client(backend, backend.write_kubeconfig(user="dev")), "backend:http")[0] == 200


def test_a_pod_answers_through_the_pod_proxy(backend):
    from kubernetes.client import ApiException

    _restart_with(backend, Behaviour.broken(status=500, body="boom"))
    pod = next(
        p["metadata"]["name"]
        for p in backend.list("pods", "shop")
        if (p["metadata"].get("annotations") or {}).get("v") == "2"
    )
    with pytest.raises(ApiException) as answer:
        _client(backend).connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:8080", "shop", "healthz", _preload_content=False
        )
    body = answer.value.body  # bytes up to client 33, text from 34
    assert (answer.value.status, body.decode() if isinstance(body, bytes) else body) == (
        500,
        "boom",
    )


@pytest.mark.kubectl
def test_kubectl_get_raw_reads_the_backend_through_the_service(backend, tmp_path):
    kubectl = Path(sys.executable).parent / "kubectl"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "KUBECONFIG": backend.kubeconfig}  # fmt: skip
    result = subprocess.run(
        [str(kubectl), "get", "--raw", PROXY.format("backend:http")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
