"""The smoke check, decided: which Service, port and path; which answers serve; when a check
passes, fails or is skipped. Pure functions, tables."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.verify import (
    CheckResult,
    CheckTrack,
    Judged,
    Kind,
    ProxyTarget,
    Reply,
    Skip,
    UrlTarget,
    VerifySettings,
    check_verdict,
    choose_target,
    describe_failure,
    first_line,
    judge_reply,
    next_pause,
    parse_expectation,
    record,
    scrub_credentials,
    url_problem,
)

NS = "shop"


def template(*containers, labels=None):
    return {"metadata": {"labels": labels or {"app": "backend"}},
            "spec": {"containers": list(containers)}}  # fmt: skip


def container(probe_port=None, path="/healthz", ports=(), scheme=None, name="app"):
    c = {"name": name, "image": "acme/backend:1"}
    if ports:
        c["ports"] = [dict(p) for p in ports]
    if probe_port is not None:
        http_get = {"path": path, "port": probe_port}
        if scheme:
            http_get["scheme"] = scheme
        c["readinessProbe"] = {"httpGet": http_get}
    return c


def service(name="backend", ports=None, selector=None, namespace=NS):
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": selector if selector is not None else {"app": "backend"},
            "ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                        "targetPort": 8080}],
        },
    }  # fmt: skip


HTTP = {"name": "http", "containerPort": 8080}
DEFAULT = VerifySettings()


# -- which Service, port and path --------------------------------------------------------------


@pytest.mark.parametrize(
    ("containers", "services", "expected"),
    [
        ([container(8080)], [service()],
         ProxyTarget(NS, "backend", "http", "/healthz", "", "readiness probe of container app")),
        ([container("http", ports=[HTTP])], [service()],
         ProxyTarget(NS, "backend", "http", "/healthz", "", "readiness probe of container app")),
        ([container(8080, ports=[HTTP])],
         [service(ports=[{"name": "web", "port": 80, "targetPort": "http"}])],
         ProxyTarget(NS, "backend", "web", "/healthz", "", "readiness probe of container app")),
        ([container(8080)], [service(ports=[{"port": 80, "targetPort": 8080}])],
         ProxyTarget(NS, "backend", "80", "/healthz", "", "readiness probe of container app")),
        ([container(8080)], [service(ports=[{"port": 8080}])],
         ProxyTarget(NS, "backend", "8080", "/healthz", "", "readiness probe of container app")),
        ([container(8443, scheme="HTTPS", path="ready")],
         [service(ports=[{"name": "tls", "port": 443, "targetPort": 8443}])],
         ProxyTarget(NS, "backend", "tls", "/ready", "https", "readiness probe of container app")),
        ([container(8080)],
         [service("metrics", ports=[{"name": "m", "port": 9090, "targetPort": 9090}]),
          service("web")],
         ProxyTarget(NS, "web", "http", "/healthz", "", "readiness probe of container app")),
        ([container(), container(8080, name="api")], [service()],
         ProxyTarget(NS, "backend", "http", "/healthz", "", "readiness probe of container api")),
    ],
    ids=["probe-port-number", "probe-port-name", "named-target-port", "unnamed-service-port",
         "target-port-defaults-to-port", "https-probe", "the-service-with-the-port",
         "second-container-probe"],
)  # fmt: skip
def test_the_target_is_the_readiness_probe_through_the_service_port_leading_to_it(
    containers, services, expected
):
    assert choose_target(NS, template(*containers), services, DEFAULT) == expected


def test_an_https_target_names_the_scheme_in_the_proxy_id():
    target = ProxyTarget(NS, "backend", "tls", "/ready", "https")
    assert target.proxy_id == "https:backend:tls"
    assert target.describe() == "GET /ready through service shop/backend:tls"


@pytest.mark.parametrize(
    ("containers", "services", "path", "expected"),
    [
        ([container(ports=[HTTP])], [service()], "/api/ping",
         ProxyTarget(NS, "backend", "http", "/api/ping", "", "--verify-path")),
        ([container()], [service(ports=[{"name": "web", "port": 80, "targetPort": 3000}])],
         "ping", ProxyTarget(NS, "backend", "web", "/ping", "", "--verify-path")),
        ([container(8080)], [service()], "/deep?full=1",
         ProxyTarget(NS, "backend", "http", "/deep?full=1", "", "--verify-path")),
    ],
    ids=["declared-port", "the-only-service-port", "over-the-probe"],
)  # fmt: skip
def test_a_configured_path_needs_no_probe(containers, services, path, expected):
    settings = VerifySettings(path=path)
    assert choose_target(NS, template(*containers), services, settings) == expected


@pytest.mark.parametrize(
    ("containers", "services", "words"),
    [
        ([container()], [service()], "no container has an HTTP readiness probe"),
        ([container(8080)], [], "no Service selects the pods"),
        ([container(8080)], [service(selector={"app": "other"})], "no Service selects the pods"),
        ([container(8080)], [service(selector={})], "no Service selects the pods"),
        ([container(8080)], [service(namespace="other")], "no Service selects the pods"),
        ([container(9090)], [service()],
         "no port of service backend leads to the probe's port 9090"),
        ([container("admin", ports=[HTTP])], [service()],
         "no port of service backend leads to the probe's port admin"),
    ],
    ids=["no-probe", "no-service", "other-selector", "no-selector", "other-namespace",
         "no-matching-port", "undeclared-port-name"],
)  # fmt: skip
def test_nothing_to_check_is_a_skip_with_its_reason(containers, services, words):
    found = choose_target(NS, template(*containers), services, DEFAULT)
    assert isinstance(found, Skip) and words in found.reason, found


@pytest.mark.parametrize(
    ("settings", "discovered", "expected"),
    [
        (VerifySettings(url="https://shop.example.com/healthz"), [],
         UrlTarget("https://shop.example.com/healthz")),
        (VerifySettings(url="auto"), ["https://shop.example.com", "http://203.0.113.10"],
         UrlTarget("https://shop.example.com/healthz")),
        (VerifySettings(url="auto", path="/ping"), ["https://shop.example.com/"],
         UrlTarget("https://shop.example.com/ping")),
        (VerifySettings(url="auto"), [], Skip("--verify-url auto: no URL was found (no Ingress, "
                                              "HTTPRoute or LoadBalancer)")),
    ],
    ids=["given", "auto-first-with-probe-path", "auto-with-path", "auto-none"],
)  # fmt: skip
def test_a_public_url_is_used_as_given_or_chosen_from_the_discovered_ones(
    settings, discovered, expected
):
    found = choose_target(NS, template(container(8080)), [service()], settings, discovered)
    assert found == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://shop.example.com/healthz", None),
        ("http://10.0.0.1:8080", None),
        ("auto", None),
        ("shop.example.com", "must be an http:// or https:// URL"),
        ("ftp://x", "must be an http:// or https:// URL"),
        ("https://user:secret@shop.example.com", "must not carry credentials"),
    ],
)
def test_verify_urls_are_http_without_credentials(url, problem):
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_a_url_target_never_shows_credentials_or_queries():
    assert UrlTarget("https://shop.example.com/h?token=abc").describe() == (
        "GET https://shop.example.com/h?***"
    )


# -- which answers serve ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "good", "bad"),
    [
        ("2xx,3xx", [200, 204, 301, 399], [199, 400, 500]),
        ("200", [200], [201, 204, 500]),
        (200, [200], [201]),
        ("200-204", [200, 204], [205]),
        ("200, 204", [200, 204], [201]),
        ("4XX", [404], [200]),
    ],
)
def test_expectations_are_statuses_classes_ranges_and_lists(text, good, bad):
    expect = parse_expectation(text)
    assert all(expect.accepts(s) for s in good) and not any(expect.accepts(s) for s in bad)


@pytest.mark.parametrize("text", ["", "ok", "20x", "600", "299-200", "2xx;3xx", "99"])
def test_malformed_expectations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="status|range"):
        parse_expectation(text)


EXPECT = parse_expectation("2xx,3xx")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, "ok"), Judged(Kind.GOOD, "200 OK", 200)),
        (Reply(302, ""), Judged(Kind.GOOD, "302 Found", 302)),
        (Reply(500, "\n  database unreachable: timeout  \nstack..."),
         Judged(Kind.BAD, "500 Internal Server Error: database unreachable: timeout", 500)),
        (Reply(503, "", api_reason=""), Judged(Kind.BAD, "503 Service Unavailable", 503)),
        (Reply(404, "Not Found"), Judged(Kind.BAD, "404 Not Found: Not Found", 404)),
        (Reply(599, "odd"), Judged(Kind.BAD, "599: odd", 599)),
        (Reply(503, 'no endpoints available for service "backend"',
               api_reason="ServiceUnavailable"),
         Judged(Kind.BAD, '503 Service Unavailable from the API server: no endpoints available '
                          'for service "backend"', 503)),
        (Reply(403, 'services "backend:http" is forbidden: User "dev" cannot get resource '
                    '"services/proxy"', api_reason="Forbidden"),
         Judged(Kind.SKIP, 'not allowed: services "backend:http" is forbidden: User "dev" cannot '
                           'get resource "services/proxy"', 403)),
        (Reply(401, "Unauthorized", api_reason="Unauthorized"),
         Judged(Kind.SKIP, "the API server did not accept the credentials", 401)),
        (Reply(404, 'services "backend" not found', api_reason="NotFound"),
         Judged(Kind.SKIP, 'the Service is gone: services "backend" not found', 404)),
        (Reply(400, "address not allowed", api_reason="BadRequest"),
         Judged(Kind.SKIP, "the API server refused to proxy: address not allowed", 400)),
        (Reply(429, "Too many requests", api_reason="TooManyRequests"),
         Judged(Kind.UNKNOWN, "429 Too Many Requests from the API server: Too many requests")),
        (Reply(None, error="connection refused"), Judged(Kind.UNKNOWN, "connection refused")),
        (Reply(None, error="timed out after 5s", timed_out=True),
         Judged(Kind.BAD, "no answer (timed out after 5s)")),
    ],
    ids=["200", "302", "500-first-line", "503-bare", "404-backend", "unnamed-status",
         "no-endpoints", "forbidden", "unauthorized", "service-gone", "not-proxyable", "api-busy",
         "api-unreachable", "backend-timeout"],
)  # fmt: skip
def test_replies_through_the_proxy_are_judged(reply, expected):
    assert judge_reply(reply, EXPECT, via_proxy=True) == expected


def test_a_public_url_answer_is_the_backend_s_whatever_its_body():
    reply = Reply(403, "Forbidden", api_reason="Forbidden")
    assert judge_reply(reply, EXPECT, via_proxy=False).kind is Kind.BAD
    assert judge_reply(Reply(None, error="timed out", timed_out=True), EXPECT,
                       via_proxy=False).kind is Kind.UNKNOWN  # fmt: skip


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot connect to postgres://app:s3cr3t@db:5432/shop",
         "cannot connect to postgres://app:***@db:5432/shop"),
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc", "Authorization: Bearer ***"),
        ('config {"password": "hunter22", "user": "app"}',
         'config {"password": "***", "user": "app"}'),
        ("token=abcdef&x=1", "token=***&x=1"),
        ("plain error", "plain error"),
    ],
)  # fmt: skip
def test_credentials_in_a_body_never_reach_the_report(text, shown):
    assert scrub_credentials(text) == shown


def test_the_first_line_is_one_safe_trimmed_line():
    assert first_line("\n\n  \x1b[31mred\x1b[0m alert\r\nsecond") == "red alert"
    assert len(first_line("x" * 1000)) < 260


# -- when a check passes, fails or is skipped ---------------------------------------------------

GOOD = Judged(Kind.GOOD, "200 OK", 200)
BAD = Judged(Kind.BAD, "500 Internal Server Error", 500)
UNKNOWN = Judged(Kind.UNKNOWN, "connection refused")
FORBIDDEN = Judged(Kind.SKIP, "not allowed: ...", 403)


def fold(replies, successes=1, budget=10.0):
    """The track after ``replies`` ((seconds, judged) pairs), started at 0."""
    track = CheckTrack.start(0.0, successes, budget)
    for at, judged in replies:
        track = record(track, judged, at)
    return track


@pytest.mark.parametrize(
    ("replies", "successes", "now", "result"),
    [
        ([(0.0, GOOD)], 1, 0.0, CheckResult.PASSED),
        ([(0.0, GOOD), (0.2, GOOD)], 3, 0.2, None),
        ([(0.0, GOOD), (0.2, GOOD), (0.4, GOOD)], 3, 0.4, CheckResult.PASSED),
        ([(0.0, GOOD), (0.2, BAD), (0.7, GOOD), (0.9, GOOD)], 3, 0.9, None),
        ([(0.0, BAD)], 1, 5.0, None),
        ([(0.0, BAD), (0.5, GOOD)], 1, 0.5, CheckResult.PASSED),
        ([(0.0, BAD), (4.0, BAD)], 1, 10.0, CheckResult.FAILED),
        ([(0.0, BAD), (9.0, UNKNOWN)], 1, 10.0, CheckResult.FAILED),
        ([(0.0, UNKNOWN), (5.0, UNKNOWN)], 1, 10.0, CheckResult.SKIPPED),
        ([(0.0, FORBIDDEN)], 1, 0.0, CheckResult.SKIPPED),
        ([], 1, 30.0, None),
    ],
    ids=["one-good", "streak-counting", "streak-done", "streak-broken", "bad-within-budget",
         "fails-once-then-passes", "bad-for-the-budget", "bad-then-unreachable",
         "never-reachable", "forbidden", "always-asks-once"],
)  # fmt: skip
def test_a_check_passes_on_a_streak_and_fails_only_after_its_budget(
    replies, successes, now, result
):
    assert check_verdict(fold(replies, successes), now) is result


def test_in_the_settle_window_a_blip_gets_the_budget_again():
    track = fold([(0.0, GOOD), (20.0, BAD)])  # passing, then a bad answer 20 s on
    assert check_verdict(track, 29.0) is None  # 9 s of failing: still within the budget
    assert check_verdict(record(track, GOOD, 25.0), 29.0) is CheckResult.PASSED
    assert check_verdict(record(track, BAD, 28.0), 30.0) is CheckResult.FAILED


def test_retries_back_off_and_a_streak_is_counted_quickly():
    assert next_pause(fold([(0.0, GOOD)], successes=3)) == 0.2
    assert [next_pause(fold([(0.0, BAD)] * n)) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]


def test_a_failure_says_what_was_asked_what_it_answered_and_how_hard_we_tried():
    track = fold([(0.0, BAD), (0.5, BAD), (1.5, BAD)], budget=10.0)
    words = describe_failure("GET /healthz through service shop/backend:http", track, EXPECT)
    assert words == (
        "the backend does not serve: GET /healthz through service shop/backend:http answered "
        "500 Internal Server Error (3 tries in 10s, expected 2xx or 3xx)"
    )
