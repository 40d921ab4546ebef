"""Which proxy reaches the API server (pure): the kubeconfig's proxy-url, else the
environment's as Go's http.ProxyFromEnvironment reads it, which is what kubectl does."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.proxies import (
    bypassed,
    choose_proxy,
    parse_proxy,
    proxy_from_environment,
)

PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("server", "env", "expected"),
    [
        ("https://k8s.corp:6443", {"HTTPS_PROXY": PROXY}, (PROXY, "HTTPS_PROXY")),
        ("https://k8s.corp:6443", {"https_proxy": PROXY}, (PROXY, "https_proxy")),
        ("https://k8s.corp:6443", {"HTTPS_PROXY": PROXY, "https_proxy": "http://x:1"},
         (PROXY, "HTTPS_PROXY")),
        # Go never falls back from HTTPS_PROXY to HTTP_PROXY for an https:// server ...
        ("https://k8s.corp:6443", {"HTTP_PROXY": PROXY}, None),
        # ... and uses HTTP_PROXY only for http://
        ("http://k8s.corp:8080", {"HTTP_PROXY": PROXY, "HTTPS_PROXY": "http://x:1"},
         (PROXY, "HTTP_PROXY")),
        ("https://k8s.corp:6443", {"HTTPS_PROXY": "  "}, None),
        # loopback is never proxied
        ("https://127.0.0.1:6443", {"HTTPS_PROXY": PROXY}, None),
        ("https://127.8.9.1:6443", {"HTTPS_PROXY": PROXY}, None),
        ("https://localhost:6443", {"HTTPS_PROXY": PROXY}, None),
        ("https://[::1]:6443", {"HTTPS_PROXY": PROXY}, None),
        # NO_PROXY (upper case first)
        ("https://k8s.corp:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "k8s.corp"}, None),
        ("https://k8s.corp:6443", {"HTTPS_PROXY": PROXY, "no_proxy": "k8s.corp"}, None),
        ("https://k8s.corp:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "other", "no_proxy": "*"},
         (PROXY, "HTTPS_PROXY")),
    ],
    ids=["https", "https-lower", "upper-first", "no-http-fallback", "http", "blank",
         "loopback", "loopback-net", "localhost", "loopback-v6", "no-proxy", "no-proxy-lower",
         "no-proxy-upper-first"],
)  # fmt: skip
def test_the_environment_proxy_applies_as_go_reads_it(server, env, expected):
    assert proxy_from_environment(server, env) == expected


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("k8s.corp", 443, "*", True),
        ("k8s.corp", 443, "k8s.corp", True),
        ("api.k8s.corp", 443, "k8s.corp", True),  # a domain covers its subdomains
        ("xk8s.corp", 443, "k8s.corp", False),  # not a suffix at a dot
        ("k8s.corp", 443, ".k8s.corp", False),  # a leading dot: subdomains only
        ("api.k8s.corp", 443, ".k8s.corp", True),
        ("api.k8s.corp", 443, "*.k8s.corp", True),
        ("k8s.corp", 6443, "k8s.corp:6443", True),  # with a port: that port only
        ("k8s.corp", 443, "k8s.corp:6443", False),
        ("10.1.2.3", 443, "10.0.0.0/8", True),  # CIDR
        ("10.1.2.3", 443, "192.168.0.0/16, 10.1.2.3", True),  # IP, spaces around commas
        ("10.1.2.4", 443, "10.1.2.3", False),
        ("fd00::5", 443, "fd00::/64", True),
        ("k8s.corp", 443, " , ,", False),
    ],
)
def test_no_proxy_entries(host, port, no_proxy, expected):
    assert bypassed(host, port, no_proxy) is expected


def test_the_kubeconfig_proxy_url_wins_over_the_environment():
    chosen = choose_proxy("https://k8s.corp", "http://kube-proxy:8080", {"HTTPS_PROXY": PROXY})
    assert chosen is not None and (chosen.url, chosen.source) == ("http://kube-proxy:8080",
                                                                  "proxy-url")  # fmt: skip
    env_only = choose_proxy("https://k8s.corp", None, {"HTTPS_PROXY": "proxy.corp:3128"})
    assert env_only is not None and env_only.url == "http://proxy.corp:3128"  # Go adds http://
    assert env_only.shown == "http://proxy.corp:3128 (HTTPS_PROXY)"
    assert env_only.hint.startswith("check HTTPS_PROXY and that the proxy is running")
    assert chosen.hint.startswith("check the cluster's proxy-url in the kubeconfig")
    assert choose_proxy("https://127.0.0.1:6443", None, {"HTTPS_PROXY": PROXY}) is None


def test_proxy_credentials_become_a_header_and_never_part_of_the_url():
    proxy = parse_proxy("http://dev%40corp:s3cr%3At@proxy.corp:3128", "HTTPS_PROXY")
    assert proxy.url == "http://proxy.corp:3128"
    assert proxy.basic_auth == "dev@corp:s3cr:t"
    assert "s3cr" not in repr(proxy) and "s3cr" not in proxy.shown


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("socks5://user:s3cret@proxy.corp:1080", "socks proxies are not supported"),
        ("http://", "write it as http://HOST:PORT"),
        ("http://proxy.corp:99999", "write it as http://HOST:PORT"),
    ],
)
def test_a_proxy_we_cannot_use_is_refused_without_its_credentials(value, words):
    with pytest.raises(UsageError) as refused:
        parse_proxy(value, "HTTPS_PROXY")
    assert refused.value.message.startswith("HTTPS_PROXY is not an http(s) proxy URL")
    assert words in refused.value.hint
    assert "s3cret" not in refused.value.message + refused.value.hint
