"""End to end through an HTTP CONNECT proxy (tests/cluster/connect_proxy.py), as behind a
corporate proxy: the kubeconfig's proxy-url, the same with credentials, and HTTPS_PROXY /
NO_PROXY from the environment, each beside real kubectl on the same setup.

The cluster is named `kubernetes.default.svc` (a name its certificate carries) where only
the proxy can resolve it, so a request that bypassed the proxy could not connect at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.connect_proxy import ConnectProxy
from tests.plugin_runner import link, patches, run_plugin

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
NAME = "kubernetes.default.svc"  # in the simulated cluster's certificate; not in any DNS here


def kubeconfig_via(cluster, tmp_path: Path, *, server: str, proxy_url: str | None = None) -> str:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = config["clusters"][0]["cluster"]
    entry["server"] = server
    if proxy_url:
        entry["proxy-url"] = proxy_url
    path = tmp_path / f"kubeconfig-{len(list(tmp_path.glob('kubeconfig-*')))}"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def restart(kubeconfig: str, checkout: Path, env: dict | None = None, *args: str):
    return run_plugin(["--kubeconfig", kubeconfig, "--timeout", "60s", *args], cwd=checkout,
                      env=env)  # fmt: skip


def kubectl(kubeconfig: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path(kubeconfig).parent), **env},
    )


def test_the_kubeconfigs_proxy_url_carries_the_restart(cluster, checkout, tmp_path):
    link(cluster)
    with ConnectProxy({NAME: "127.0.0.1"}) as proxy:
        config = kubeconfig_via(cluster, tmp_path, server=f"https://{NAME}:{cluster.port}",
                                proxy_url=proxy.url)  # fmt: skip
        run = restart(config, checkout)
        assert run.exit_code == 0, run.output
        assert "✓ Rolling restart complete for backend" in run.stdout
        assert {t.target for t in proxy.tunnels} == {f"{NAME}:{cluster.port}"}
        assert all(t.status == 200 for t in proxy.tunnels)
        assert len(patches(cluster)) == 1


def test_proxy_credentials_are_sent_as_proxy_authorization_and_never_shown(
    cluster, checkout, tmp_path
):
    link(cluster)
    with ConnectProxy({NAME: "127.0.0.1"}, credentials="dev:s3cr3t-pw") as proxy:
        server = f"https://{NAME}:{cluster.port}"
        host = f"127.0.0.1:{proxy.port}"
        good = kubeconfig_via(cluster, tmp_path, server=server,
                              proxy_url=f"http://dev:s3cr3t-pw@{host}")  # fmt: skip
        run = restart(good, checkout)
        assert run.exit_code == 0, run.output
        assert proxy.tunnels and all(t.status == 200 for t in proxy.tunnels)
        wrong = kubeconfig_via(cluster, tmp_path, server=server,
                               proxy_url=f"http://dev:wr0ng-pw@{host}")  # fmt: skip
        refused = restart(wrong, checkout)
        assert refused.exit_code == 5, refused.output
        assert refused.stderr.splitlines() == [
            f"error: the proxy http://{host} (proxy-url) refused the connection to the API "
            f"server at https://{NAME}:{cluster.port}: 407 Proxy Authentication Required",
            "hint: check the user and password in the proxy URL (user:password@ before the host)",
        ]
        assert "pw" not in refused.output and "dev:" not in refused.output
        assert any(t.status == 407 for t in proxy.tunnels)
        assert len(patches(cluster)) == 1  # the first run's; the refused one sent nothing


def test_https_proxy_from_the_environment_is_used_as_kubectl_uses_it(cluster, checkout, tmp_path):
    link(cluster)
    with ConnectProxy({NAME: "127.0.0.1"}) as proxy:
        config = kubeconfig_via(cluster, tmp_path, server=f"https://{NAME}:{cluster.port}")
        env = {"HTTPS_PROXY": proxy.url}
        theirs = kubectl(config, env, "get", "deployments", "-A")
        assert theirs.returncode == 0, theirs.stderr
        run = restart(config, checkout, env, "-v", "6")
        assert run.exit_code == 0, run.output
        assert "✓ Rolling restart complete for backend" in run.stdout
        assert {t.target for t in proxy.tunnels} == {f"{NAME}:{cluster.port}"}
        said = f"trace: requests go through the proxy {proxy.url} (HTTPS_PROXY)"
        assert run.stderr.splitlines()[0] == said


@pytest.mark.parametrize("no_proxy", [NAME, ".default.svc", "*"])
def test_no_proxy_sends_the_requests_direct_as_kubectl_does(cluster, checkout, tmp_path, no_proxy):
    link(cluster)
    with ConnectProxy({NAME: "127.0.0.1"}) as proxy:
        config = kubeconfig_via(cluster, tmp_path, server=f"https://{NAME}:{cluster.port}")
        env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy}
        theirs = kubectl(config, env, "get", "deployments", "-A", "--request-timeout=10s")
        assert theirs.returncode != 0  # direct: the name resolves nowhere
        run = restart(config, checkout, env)
        assert run.exit_code == 5, run.output
        assert f"cannot reach the API server at https://{NAME}:{cluster.port}" in run.stderr
        assert proxy.tunnels == [] and patches(cluster) == []


def test_a_loopback_server_is_reached_direct_whatever_https_proxy_says(cluster, checkout):
    link(cluster)
    with ConnectProxy() as proxy:
        run = restart(cluster.kubeconfig, checkout, {"HTTPS_PROXY": proxy.url})
        assert run.exit_code == 0, run.output
        assert proxy.tunnels == []


def test_all_proxy_is_ignored_as_kubectl_ignores_it(cluster, checkout, tmp_path):
    """Go reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY only; the kubernetes client 37.x would
    also take ALL_PROXY (Python's rules) if we let it."""
    link(cluster)
    with ConnectProxy({NAME: "127.0.0.1"}) as proxy:
        config = kubeconfig_via(cluster, tmp_path, server=f"https://{NAME}:{cluster.port}")
        env = {"ALL_PROXY": proxy.url, "all_proxy": proxy.url}
        theirs = kubectl(config, env, "get", "deployments", "-A", "--request-timeout=10s")
        assert theirs.returncode != 0
        run = restart(config, checkout, env)
        assert run.exit_code == 5, run.output
        assert proxy.tunnels == [] and patches(cluster) == []


def test_a_socks_proxy_in_the_environment_is_refused_before_anything_is_sent(
    cluster, checkout, tmp_path
):
    link(cluster)
    config = kubeconfig_via(cluster, tmp_path, server=f"https://{NAME}:{cluster.port}")
    run = restart(config, checkout, {"HTTPS_PROXY": "socks5://dev:s3cr3t@127.0.0.1:1080"})
    assert run.exit_code == 2, run.output
    assert run.stderr.splitlines() == [
        "error: HTTPS_PROXY is not an http(s) proxy URL: socks5://***@127.0.0.1:1080",
        "hint: use an http:// or https:// proxy (socks proxies are not supported)",
    ]
    assert patches(cluster) == [] and cluster.requests == []
