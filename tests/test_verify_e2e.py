"""End to end: after the rollout completes, the plugin asks the backend through the API
server's Service proxy (the readiness probe's path) and, with --settle, keeps watching the new
pods. Through the real client against the simulated cluster, whose pods answer per behaviour.

Every failure rule has its healing twin: a check that fails once and then passes within its
budget is a success; a pod that restarted before the window opened is fine.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import (
    HTTP_SERVICE_PORTS,
    PROBED,
    interrupt_when,
    link,
    patches,
    run_plugin,
    start_console_script,
)

pytestmark = pytest.mark.timeout(120)

CHECK = "GET /healthz through service shop/backend:http"


def restart(cluster, checkout, *args, kubeconfig=None):
    config = kubeconfig or cluster.kubeconfig
    return run_plugin(["--kubeconfig", config, "--timeout", "60s", *args], cwd=checkout)


@pytest.fixture
def backend(cluster):
    """acme/shop's backend with an HTTP readiness probe, and the Service in front of it."""
    link(cluster, containers=PROBED)
    cluster.create_service("shop", "backend", {"app": "backend"}, ports=HTTP_SERVICE_PORTS)
    return cluster


def proxied(cluster):
    return [r for r in cluster.requests if "/proxy/" in r.path]


def failure_line(run):
    return next(line for line in run.stdout.splitlines() if line.startswith("✗ Restart failed"))


# -- the check -----------------------------------------------------------------------------------


def test_a_healthy_backend_passes_the_check(backend, checkout):
    run = restart(backend, checkout)
    assert run.exit_code == 0, run.output
    assert f"Verified: {CHECK} answered 200 OK" in run.stdout.splitlines()
    (get,) = proxied(backend)
    assert get.method == "GET" and get.user == "admin" and get.status == 200
    assert get.path == "/api/v1/namespaces/shop/services/backend:http/proxy/healthz"
    assert len(patches(backend)) == 1


def test_a_500_fails_the_restart_with_the_status_and_the_first_line_of_the_body(backend, checkout):
    body = "database unreachable: postgres://app:s3cret@db:5432/shop\nTraceback ..."
    backend.set_behaviour("shop", "backend", Behaviour.broken(status=500, body=body))
    run = restart(backend, checkout, "--verify-timeout", "2s")
    assert run.exit_code == 1, run.output
    line = failure_line(run)
    assert line.startswith(
        f"✗ Restart failed: the backend does not serve: {CHECK} answered 500 Internal Server "
        "Error: database unreachable: postgres://app:***@db:5432/shop ("
    ), line
    assert "expected 2xx or 3xx)" in line and "s3cret" not in run.output
    assert "The new pods have replaced the old ones." in run.stdout
    assert len(proxied(backend)) >= 2  # retried within its budget


def test_a_check_that_fails_once_and_then_passes_within_its_budget_is_a_success(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.broken(status=503, failures=1))
    run = restart(backend, checkout, "--verify-timeout", "20s")
    assert run.exit_code == 0, run.output
    assert f"Verified: {CHECK} answered 200 OK" in run.stdout
    assert "answered 503 Service Unavailable" in run.stdout  # the retry was said
    assert [r.status for r in proxied(backend)][-1] == 200


def test_several_successes_in_a_row_are_asked_for(backend, checkout):
    run = restart(backend, checkout, "--verify-successes", "3")
    assert run.exit_code == 0, run.output
    assert "answered 200 OK (3 times in a row)" in run.stdout
    assert [r.status for r in proxied(backend)] == [200, 200, 200]


def test_a_slow_backend_that_answers_within_the_budget_passes(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.slow(answer_delay=25))  # 0.5 s
    run = restart(backend, checkout)
    assert run.exit_code == 0, run.output
    assert f"Verified: {CHECK} answered 200 OK" in run.stdout


def test_an_expected_status_other_than_2xx_is_honoured(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.broken(status=418, body="teapot"))
    run = restart(backend, checkout, "--verify-expect", "418")
    assert run.exit_code == 0, run.output
    assert f"Verified: {CHECK} answered 418 I'm a Teapot" in run.stdout


def test_a_configured_path_is_asked_instead_of_the_probes(backend, checkout):
    run = restart(backend, checkout, "--verify-path", "/api/ping?deep=1")
    assert run.exit_code == 0, run.output
    (get,) = proxied(backend)
    assert (get.path, get.query) == (
        "/api/v1/namespaces/shop/services/backend:http/proxy/api/ping",
        {"deep": "1"},
    )


def test_the_config_file_sets_the_check_and_flags_win(backend, checkout):
    (checkout / ".restart-backend.yaml").write_text(
        "verify: {path: /ready, expect: 200, successes: 2, timeout: 5s}\n"
    )
    run = restart(backend, checkout)
    assert run.exit_code == 0, run.output
    assert "Verified: GET /ready through service shop/backend:http answered 200 OK" in run.stdout
    assert len(proxied(backend)) == 2
    run = restart(backend, checkout, "--verify-path", "/other")
    assert "Verified: GET /other through" in run.stdout


def test_no_verify_asks_nothing(backend, checkout):
    (checkout / ".restart-backend.yaml").write_text("verify: false\n")
    run = restart(backend, checkout)
    assert run.exit_code == 0, run.output
    assert "Verif" not in run.output and not proxied(backend)
    run = restart(backend, checkout, "--verify", "--no-verify")
    assert not proxied(backend)


# -- skipped, never failed ----------------------------------------------------------------------


def test_without_services_proxy_permission_the_check_is_skipped_with_a_note(backend, checkout):
    backend.add_user("dev", "dev-token", [
        rule(["get", "list", "watch", "patch"], ["deployments"], "apps", "shop"),
        rule(["list", "watch"], ["replicasets"], "apps", "shop"),
        rule(["list", "watch"], ["pods"], "", "shop"),
        rule(["list"], ["services", "events"], "", "shop"),
    ])  # fmt: skip
    kubeconfig = backend.write_kubeconfig(user="dev", namespace="shop")
    run = restart(backend, checkout, kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    (note,) = [line for line in run.output.splitlines() if "skipped" in line]
    assert note.startswith(
        'Verification skipped: not allowed: services "backend:http" is '
        'forbidden: User "dev" cannot get resource "services/proxy"'
    ), note
    assert [r.status for r in proxied(backend)] == [403]  # asked once, then said once


def test_no_http_readiness_probe_skips_the_check_without_a_request(cluster, checkout):
    link(cluster)
    cluster.create_service("shop", "backend", {"app": "backend"})
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "Verification skipped: no container has an HTTP readiness probe" in run.stdout
    assert not proxied(cluster)


def test_a_service_without_a_matching_port_is_a_skip(cluster, checkout):
    link(cluster, containers=PROBED)
    metrics = [{"name": "metrics", "port": 9090, "targetPort": 9090}]
    cluster.create_service("shop", "backend", {"app": "backend"}, ports=metrics)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert (
        "Verification skipped: no port of service backend leads to the probe's port 8080 (http)"
    ) in run.stdout
    assert not proxied(cluster)


def test_dry_run_lists_the_proxy_permission(backend, checkout):
    run = restart(backend, checkout, "--dry-run")
    assert run.exit_code == 0, run.output
    assert "  get services/proxy: yes" in run.stdout.splitlines()
    assert not proxied(backend)


# -- the settle window ---------------------------------------------------------------------------


def test_a_crash_after_ready_inside_the_settle_window_fails_naming_the_pod(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.crash_after_ready(after=60))  # 1.2 s
    run = restart(backend, checkout, "--settle", "10s")
    assert run.exit_code == 1, run.output
    line = failure_line(run)
    assert " after the rollout completed, inside the 10s settle window: Error (exit code 1)" in (
        line
    ), line
    assert line.startswith("✗ Restart failed: pod backend-")
    assert "Settling: " in run.stdout and "s left" in run.stdout
    assert "| FATAL: lost the connection to the database" in run.stdout


def test_a_pod_that_restarted_before_the_window_but_not_inside_it_settles(backend, checkout):
    backend.set_behaviours("shop", "backend", [Behaviour.crash_loop(failures=1),
                                               Behaviour.healthy()])  # fmt: skip
    run = restart(backend, checkout, "--settle", "2s")
    assert run.exit_code == 0, run.output
    assert "Settled: no restart and no pod lost readiness in 2s" in run.stdout
    assert "restarted once" in run.stdout  # the Recovered line still tells the story


def test_a_crash_after_the_window_is_not_the_windows(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.crash_after_ready(after=1000))  # 20 s
    run = restart(backend, checkout, "--settle", "2s")
    assert run.exit_code == 0, run.output
    assert "Settled: " in run.stdout


def test_settle_is_a_config_key_too(backend, checkout):
    (checkout / ".restart-backend.yaml").write_text("settle: 1s\n")
    run = restart(backend, checkout)
    assert run.exit_code == 0, run.output
    assert "Settled: no restart and no pod lost readiness in 1s" in run.stdout


def test_ctrl_c_in_the_settle_window_keeps_the_complete_verdict_and_says_so(backend, checkout):
    process = start_console_script(backend, checkout, "--timeout", "60s", "--settle", "60s")

    def settling():  # the check passed and the window's three watches are open
        watches = [r for r in backend.requests if r.is_watch]
        return proxied(backend) and len(watches) >= 6

    code, stdout, stderr = interrupt_when(backend, process, settling)
    assert code == 130, stdout + stderr
    assert "✓ Rolling restart complete for backend" in stdout
    assert "Verification interrupted: the rollout itself is complete" in stdout
    assert "Traceback" not in stderr


# -- undo -----------------------------------------------------------------------------------------


def test_undo_on_failure_rolls_back_a_failed_verification(backend, checkout):
    broken = Behaviour.broken(status=500, body="config error")
    backend.set_behaviours("shop", "backend", [broken] * 3 + [Behaviour.healthy()])
    run = restart(backend, checkout, "--undo-on-failure", "--verify-timeout", "2s")
    assert run.exit_code == 1, run.output
    assert "answered 500 Internal Server Error: config error" in failure_line(run)
    ours, rollback = patches(backend)
    assert rollback.content_type == "application/json-patch+json"
    assert "↩ Rolled back to revision 1: 3/3 pods ready" in run.stdout
    template = backend.get("deployments", "shop", "backend")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in template["metadata"].get("annotations", {})


def test_undo_on_failure_rolls_back_a_restart_that_did_not_settle(backend, checkout):
    crash = Behaviour.crash_after_ready(after=60)
    backend.set_behaviours("shop", "backend", [crash] * 3 + [Behaviour.healthy()])
    run = restart(backend, checkout, "--undo-on-failure", "--settle", "10s")
    assert run.exit_code == 1, run.output
    assert "settle window" in failure_line(run)
    assert len(patches(backend)) == 2 and "↩ Rolled back to revision 1" in run.stdout


# -- the document ---------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_the_document_carries_the_verification(backend, checkout, output):
    run = restart(backend, checkout, "-o", output, "--settle", "1s")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout) if output == "json" else yaml.safe_load(run.stdout)
    assert doc["verification"] == {
        "status": "passed",
        "check": CHECK,
        "method": "service-proxy",
        "expect": "2xx,3xx",
        "successes": 1,
        "attempts": doc["verification"]["attempts"],
        "answers": ["200 OK"],
        "reason": None,
        "durationSeconds": doc["verification"]["durationSeconds"],
        "settle": {"seconds": 1.0, "status": "passed", "problem": None},
    }
    assert doc["verification"]["attempts"] >= 1


def test_a_failed_check_is_a_failure_in_the_document(backend, checkout):
    backend.set_behaviour("shop", "backend", Behaviour.broken(status=503, body="warming up"))
    run = restart(backend, checkout, "-o", "json", "--verify-timeout", "1s")
    assert run.exit_code == 1, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "failed" and doc["failed"] is True
    assert "answered 503 Service Unavailable: warming up" in doc["failureReason"]
    assert doc["verification"]["status"] == "failed"
    assert doc["verification"]["answers"] == ["503 Service Unavailable: warming up"]


# -- a public URL ---------------------------------------------------------------------------------


@pytest.fixture
def public_backend():
    """A plain HTTP server standing in for the backend's public address."""
    answers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            status = 503 if self.path == "/down" else 200
            body = b"maintenance\n" if status == 503 else b"ok\n"
            answers.append((self.path, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def test_a_public_url_is_asked_from_here(backend, checkout, public_backend):
    url, answers = public_backend
    run = restart(backend, checkout, "--verify-url", f"{url}/healthz")
    assert run.exit_code == 0, run.output
    assert f"Verified: GET {url}/healthz answered 200 OK" in run.stdout
    assert answers == [("/healthz", 200)] and not proxied(backend)
    run = restart(backend, checkout, "--verify-url", f"{url}/down", "--verify-timeout", "1s")
    assert run.exit_code == 1, run.output
    assert "answered 503 Service Unavailable: maintenance" in failure_line(run)


def test_a_verify_url_with_credentials_is_refused_before_anything_is_sent(backend, checkout):
    run = restart(backend, checkout, "--verify-url", "https://user:pw@shop.example.com/")
    assert run.exit_code == 2, run.output
    assert "must not carry credentials" in run.stderr and "pw@" not in run.output
    assert not patches(backend)
