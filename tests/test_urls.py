"""URL discovery as a table: Deployment + Services + Ingresses + HTTPRoutes in, URLs out."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_restart_backend.urls import describe_no_urls, discover_urls
from tests.k8s_objects import (
    deployment,
    httproute,
    ingress,
    ingress_rule,
    service,
)

DEP = deployment()


def case(
    id: str,
    expected: list,
    *,
    dep: dict = DEP,
    services: tuple = (),
    ingresses: tuple = (),
    routes: tuple = (),
) -> Any:
    return pytest.param(dep, list(services), list(ingresses), list(routes), expected, id=id)


def without_parents(route: dict) -> dict:
    route["spec"]["parentRefs"] = []
    return route


TABLE = [
    case("nothing-routes-here", []),
    case(
        "ingress-with-tls-is-https",
        ["https://shop.example.com"],
        services=[service()],
        ingresses=[
            ingress(
                rules=[ingress_rule("shop.example.com", ("/", "backend"))],
                tls=[["shop.example.com"]],
            )
        ],
    ),
    case(
        "ingress-without-tls-is-http",
        ["http://shop.example.com"],
        services=[service()],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))])],
    ),
    case(
        "tls-for-another-host-does-not-count",
        ["http://shop.example.com"],
        services=[service()],
        ingresses=[
            ingress(
                rules=[ingress_rule("shop.example.com", ("/", "backend"))],
                tls=[["admin.example.com"]],
            )
        ],
    ),
    case(
        "paths-are-kept",
        ["https://shop.example.com/api", "https://shop.example.com/v2"],
        services=[service()],
        ingresses=[
            ingress(
                rules=[ingress_rule("shop.example.com", ("/api", "backend"), ("/v2/", "backend"))],
                tls=[["shop.example.com"]],
            )
        ],
    ),
    case(
        "regex-path-keeps-its-literal-prefix",
        ["http://shop.example.com/api"],
        services=[service()],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/api(/|$)(.*)", "backend"))])],
    ),
    case(
        "wildcard-tls-covers-one-label",
        ["https://shop.example.com", "http://a.b.example.com"],
        services=[service()],
        ingresses=[
            ingress(
                rules=[
                    ingress_rule("shop.example.com", ("/", "backend")),
                    ingress_rule("a.b.example.com", ("/", "backend")),
                ],
                tls=[["*.example.com"]],
            )
        ],
    ),
    case(
        "tls-host-match-ignores-case",
        ["https://Shop.Example.com"],
        services=[service()],
        ingresses=[
            ingress(
                rules=[ingress_rule("Shop.Example.com", ("/", "backend"))],
                tls=[["shop.example.com"]],
            )
        ],
    ),
    case(
        "only-paths-to-our-service",
        ["http://shop.example.com/api"],
        services=[service(), service("frontend", selector={"app": "frontend"})],
        ingresses=[
            ingress(
                rules=[
                    ingress_rule("shop.example.com", ("/", "frontend"), ("/api", "backend")),
                ]
            )
        ],
    ),
    case(
        "service-not-selecting-the-pods-is-ignored",
        [],
        services=[service(selector={"app": "backend", "tier": "canary"})],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))])],
    ),
    case(
        "service-without-selector-is-ignored",
        [],
        services=[service(selector={})],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))])],
    ),
    case(
        "service-in-another-namespace-is-ignored",
        [],
        services=[service(namespace="other")],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))])],
    ),
    case(
        "ingress-in-another-namespace-is-ignored",
        [],
        services=[service()],
        ingresses=[
            ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))], namespace="other")
        ],
    ),
    case(
        "default-backend-names-no-host",
        [],
        services=[service()],
        ingresses=[ingress(default_backend="backend")],
    ),
    case(
        "rule-without-host-uses-the-ingress-address",
        ["http://203.0.113.7/api"],
        services=[service()],
        ingresses=[
            ingress(rules=[ingress_rule(None, ("/api", "backend"))], lb=[{"ip": "203.0.113.7"}])
        ],
    ),
    case(
        "wildcard-rule-host-names-no-address",
        [],
        services=[service()],
        ingresses=[ingress(rules=[ingress_rule("*.example.com", ("/", "backend"))])],
    ),
    case(
        "load-balancer-ip-port-80",
        ["http://203.0.113.10"],
        services=[service(type="LoadBalancer", lb=[{"ip": "203.0.113.10"}])],
    ),
    case(
        "load-balancer-hostname-and-ports",
        [
            "http://lb-1.elb.example.com:8080",
            "https://lb-1.elb.example.com",
        ],
        services=[
            service(
                type="LoadBalancer", ports=(8080, 443), lb=[{"hostname": "lb-1.elb.example.com"}]
            )
        ],
    ),
    case(
        "load-balancer-ipv6-in-brackets",
        ["http://[2001:db8::1]:8080"],
        services=[service(type="LoadBalancer", ports=(8080,), lb=[{"ip": "2001:db8::1"}])],
    ),
    case(
        "load-balancer-without-address-yet",
        [],
        services=[service(type="LoadBalancer")],
    ),
    case(
        "load-balancer-not-selecting-the-pods",
        [],
        services=[
            service(type="LoadBalancer", selector={"app": "other"}, lb=[{"ip": "203.0.113.10"}])
        ],
    ),
    case(
        "cluster-ip-service-alone-has-no-url",
        [],
        services=[service()],
    ),
    case(
        "httproute-is-https-by-default",
        ["https://shop.example.com"],
        services=[service()],
        routes=[httproute(hostnames=["shop.example.com"])],
    ),
    case(
        "httproute-on-an-http-listener-is-http",
        ["http://shop.example.com/api"],
        services=[service()],
        routes=[httproute(hostnames=["shop.example.com"], paths=["/api"], section="http")],
    ),
    case(
        "httproute-on-an-https-listener-is-https",
        ["https://shop.example.com"],
        services=[service()],
        routes=[httproute(hostnames=["shop.example.com"], section="https")],
    ),
    case(
        "httproute-without-parent-refs-is-https",
        ["https://shop.example.com"],
        services=[service()],
        routes=[without_parents(httproute(hostnames=["shop.example.com"]))],
    ),
    case(
        "httproute-to-another-service-is-ignored",
        [],
        services=[service()],
        routes=[httproute(hostnames=["shop.example.com"], backends=["frontend"])],
    ),
    case(
        "httproute-without-hostnames-names-no-address",
        [],
        services=[service()],
        routes=[httproute()],
    ),
    case(
        "all-sources-in-order-without-duplicates",
        ["https://shop.example.com", "https://api.example.com", "http://203.0.113.10"],
        services=[service(type="LoadBalancer", lb=[{"ip": "203.0.113.10"}])],
        ingresses=[
            ingress(
                rules=[ingress_rule("shop.example.com", ("/", "backend"))],
                tls=[["shop.example.com"]],
            ),
            ingress(
                "again",
                rules=[ingress_rule("shop.example.com", ("/", "backend"))],
                tls=[["shop.example.com"]],
            ),
        ],
        routes=[httproute(hostnames=["api.example.com", "shop.example.com"])],
    ),
    case(
        "annotation-wins",
        ["https://shop.acme.dev", "https://acme.dev/shop"],
        dep=deployment(
            annotations={"restart-backend/urls": " https://shop.acme.dev, ,https://acme.dev/shop,"}
        ),
        services=[service(type="LoadBalancer", lb=[{"ip": "203.0.113.10"}])],
        ingresses=[ingress(rules=[ingress_rule("shop.example.com", ("/", "backend"))])],
    ),
    case(
        "empty-annotation-falls-back",
        ["http://203.0.113.10"],
        dep=deployment(annotations={"restart-backend/urls": " , "}),
        services=[service(type="LoadBalancer", lb=[{"ip": "203.0.113.10"}])],
    ),
]


@pytest.mark.parametrize(("dep", "services", "ingresses", "routes", "expected"), TABLE)
def test_discover_urls(
    dep: dict, services: list, ingresses: list, routes: list, expected: list
) -> None:
    assert discover_urls(dep, services, ingresses, routes) == expected


def test_httproutes_are_optional() -> None:
    assert discover_urls(DEP, [], []) == []


def test_describe_no_urls_names_the_deployment() -> None:
    assert describe_no_urls("backend") == (
        "none (no Ingress, HTTPRoute or LoadBalancer Service routes to backend)"
    )
