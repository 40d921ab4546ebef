"""Faults a real cluster throws at a client, met end to end through the real client.

Each test injects one fault with the simulated cluster's fault switches (dropped watches,
expired history, 429/500/503, an API server restart, a lost PATCH answer, Ctrl-C, someone
else's change) and checks that the verdict is still the true one, that nothing was restarted
twice and that nothing leaked a traceback.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import interrupt_when, link, run_plugin, start_console_script

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CONSOLE_SCRIPT = Path(sys.executable).parent / "kubectl-restart_backend"
WATCH_TARGET = r"\?.*watch=true"


def slow_rollout(cluster):
    """Each new pod takes a while to get ready, so a rollout lasts a few seconds."""
    cluster.set_behaviour("shop", "backend", Behaviour.healthy(ready_delay=0.6))


def requests_of(cluster, method, suffix=""):
    return [r for r in cluster.requests if r.method == method and r.path.endswith(suffix)]


def patches(cluster):
    return requests_of(cluster, "PATCH")


def watches(cluster):
    return [r for r in cluster.requests if _is_watch(r)]


def _is_watch(record):
    return record.query.get("watch", "").lower() == "true"


def replicasets(cluster):
    return cluster.list("replicasets", "shop")


class Background:
    """The plugin run in a thread, so the test can inject faults while it watches."""

    def __init__(self, cluster, checkout, *args, kubeconfig=None):
        self.result = {}
        config = kubeconfig or cluster.kubeconfig
        argv = ["--kubeconfig", config, *args]
        self.thread = threading.Thread(
            target=lambda: self.result.update(run=run_plugin(argv, cwd=checkout)), daemon=True
        )
        self.thread.start()

    @property
    def done(self):
        return not self.thread.is_alive()

    def join(self, timeout=90):
        self.thread.join(timeout)
        assert "run" in self.result, "the plugin did not finish"
        return self.result["run"]


def wait_until_watching(cluster, run):
    """Block until the plugin has patched and opened its watches."""
    cluster.wait_for(
        lambda: run.done or (patches(cluster) and len(watches_after_patch(cluster)) >= 3),
        timeout=30,
        message="the plugin never started watching",
    )


def watches_after_patch(cluster):
    log = cluster.requests
    first = next((i for i, r in enumerate(log) if r.method == "PATCH"), None)
    if first is None:
        return []
    return [r for r in log[first:] if _is_watch(r)]


def assert_one_restart(cluster):
    deployment = cluster.get("deployments", "shop", "backend")
    assert RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    assert len(replicasets(cluster)) == 2  # the original and the restart's, nothing more
    values = {
        p.json["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        for p in patches(cluster)
    }
    assert len(values) == 1


def assert_clean(run):
    assert "Traceback" not in run.output


# -- dropped watches ---------------------------------------------------------------------


def test_watch_closed_once_mid_rollout_resumes_and_reports_success(cluster, checkout):
    link(cluster)
    slow_rollout(cluster)
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    cluster.faults.close_watches(after_events=2)
    result = run.join()
    assert result.exit_code == 0, result.output
    assert "Rolling restart complete for backend" in result.stdout
    resumed = [w for w in watches_after_patch(cluster)[3:] if w.query.get("resourceVersion")]
    assert resumed, "no watch resumed from a resourceVersion"
    assert_one_restart(cluster)
    assert_clean(result)


def close_watches_repeatedly(cluster, run, every_events=2):
    """Keep closing every watch after a few events until the run ends."""
    while not run.done:
        epoch = cluster.faults.watch_epoch
        cluster.faults.close_watches(after_events=every_events)
        cluster.wait_for(
            lambda epoch=epoch: run.done or cluster.faults.watch_epoch != epoch,
            timeout=90,
            message="watches never closed",
        )


@pytest.mark.parametrize(
    "behaviour, exit_code, words",
    [
        (Behaviour.healthy(ready_delay=0.3), 0, "Rolling restart complete for backend"),
        (Behaviour.crash_loop(), 1, "CrashLoopBackOff"),
    ],
    ids=["complete", "failed"],
)
def test_watch_closed_repeatedly_never_misses_the_verdict(
    cluster, checkout, behaviour, exit_code, words
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", behaviour)
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    close_watches_repeatedly(cluster, run)
    result = run.join()
    assert result.exit_code == exit_code, result.output
    assert words in result.stdout
    assert len(watches_after_patch(cluster)) > 3  # it really did lose its watches
    assert_one_restart(cluster)
    assert_clean(result)


@pytest.mark.parametrize("as_http", [True, False], ids=["http-410", "error-event-410"])
def test_expired_resume_relists_then_watches(cluster, checkout, as_http):
    link(cluster)
    # The first new pod warms up for ~4 s (200 kubelet seconds): the rollout is surely still
    # going when the history expires, however slowly a loaded machine starts the watches.
    warm_up = Behaviour.never_ready(unready_for=200)
    cluster.set_behaviours("shop", "backend", [warm_up, Behaviour.healthy(ready_delay=0.6)])
    cluster.faults.expired_watch_as_http = as_http
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    assert not run.done, run.join().output  # the scenario: it is watching when history goes
    before = len(cluster.requests)
    cluster.faults.expire_history()
    cluster.faults.close_watches()
    result = run.join()
    assert result.exit_code == 0, result.output
    assert "Rolling restart complete for backend" in result.stdout
    later = cluster.requests[before:]
    expired = [r for r in later if r.status == 410 or _is_watch(r)]
    relists = [
        r for r in later if r.method == "GET" and not _is_watch(r) and "watch" not in r.query
    ]
    assert any(r.status == 410 for r in later) if as_http else expired
    assert relists, "no list after the history expired"
    assert_one_restart(cluster)
    assert_clean(result)


# -- busy or failing API server ------------------------------------------------------------

ENDPOINTS = {
    "list": ("GET", r"/apis/apps/v1/deployments\?"),
    "get": ("GET", r"/namespaces/shop/deployments/backend$"),
    "watch": ("GET", r"(?i)/replicasets\?.*watch=true"),
}


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_transient_errors_are_retried_and_the_verdict_is_right(cluster, checkout, status, endpoint):
    link(cluster)
    if endpoint == "watch":  # a rollout slower than the retries: both are seen before the end
        cluster.set_behaviour("shop", "backend", Behaviour.healthy(ready_delay=1.5))
    method, path = ENDPOINTS[endpoint]
    cluster.faults.fail_next(
        2, method, path, status=status, retry_after=0 if status == 429 else None
    )
    args = ["--deployment", "backend", "-n", "shop"] if endpoint == "get" else []
    result = run_plugin(
        ["--kubeconfig", cluster.kubeconfig, "--timeout", "60s", *args], cwd=checkout
    )
    assert result.exit_code == 0, result.output
    assert "Rolling restart complete for backend" in result.stdout
    failed = [r for r in cluster.requests if r.status == status]
    assert len(failed) == 2
    assert_one_restart(cluster)
    assert_clean(result)


def test_retry_after_is_honoured_and_a_slow_retry_is_announced(cluster, checkout):
    link(cluster)
    cluster.faults.fail_next(3, "GET", ENDPOINTS["list"][1], status=429, retry_after=1)
    result = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "60s"], cwd=checkout)
    assert result.exit_code == 0, result.output
    assert "retrying" in result.stdout
    lists = [r for r in cluster.requests if r.path == "/apis/apps/v1/deployments"]
    assert [r.status for r in lists] == [429, 429, 429, 200]
    assert_clean(result)


@pytest.mark.parametrize("drops", [1, 2], ids=["first-connection", "two-connections"])
def test_a_tls_handshake_cut_short_is_retried_not_called_a_certificate_problem(
    cluster, checkout, drops
):
    """A load balancer whose API server restarts closes new connections before the
    handshake; the client sees an unexpected EOF. It is a broken connection (retried), not a
    certificate the user must fix (it once ended a healthy run with "TLS verification
    failed")."""
    link(cluster)
    cluster.faults.drop_handshakes(drops)
    result = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "60s"], cwd=checkout)
    assert result.exit_code == 0, result.output
    assert "Rolling restart complete for backend" in result.stdout
    assert "TLS verification failed" not in result.output
    assert cluster.faults.handshakes_dropped == drops
    assert_one_restart(cluster)
    assert_clean(result)


def test_api_server_restart_mid_watch_keeps_trying_and_the_verdict_is_right(cluster, checkout):
    link(cluster)
    slow_rollout(cluster)
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    cluster.restart(down_seconds=2.0)
    result = run.join()
    assert result.exit_code == 0, result.output
    assert "Rolling restart complete for backend" in result.stdout
    assert_one_restart(cluster)
    assert_clean(result)


# -- the PATCH itself ------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_patch_refused_before_storage_is_retried_once(cluster, checkout, status):
    link(cluster)
    cluster.faults.fail_next(1, "PATCH", status=status, retry_after=0 if status == 429 else None)
    result = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "60s"], cwd=checkout)
    assert result.exit_code == 0, result.output
    assert [p.status for p in patches(cluster)] == [status, 200]
    assert_one_restart(cluster)
    assert_clean(result)


def test_patch_answered_500_is_read_back_before_it_is_sent_again(cluster, checkout):
    link(cluster)
    cluster.faults.fail_next(1, "PATCH", status=500)
    result = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "60s"], cwd=checkout)
    assert result.exit_code == 0, result.output
    log = [r for r in cluster.requests if r.path.endswith("/deployments/backend")]
    assert [(r.method, r.status) for r in log[:3]] == [
        ("PATCH", 500),
        ("GET", 200),  # the read-back: the 500 may or may not have been applied
        ("PATCH", 200),
    ]
    assert_one_restart(cluster)
    assert_clean(result)


class LosePatchAnswer:
    """A TCP relay in front of a plain-HTTP cluster that forwards the first PATCH to the
    server but never hands the answer back: the change is applied, the client cannot know."""

    def __init__(self, upstream_port: int, *, hang: bool) -> None:
        self.upstream_port = upstream_port
        self.hang = hang  # True: keep the client waiting (its read times out); else hang up
        self.swallowed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            state = {"patch": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client, server, state) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if data.startswith(b"PATCH ") and not self.swallowed.is_set():
                    state["patch"] = True
                server.sendall(data)
        except OSError:
            pass
        finally:
            server.close()

    def _down(self, server, client, state) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                if state["patch"]:
                    self.swallowed.set()
                    if not self.hang:
                        client.shutdown(socket.SHUT_RDWR)
                        client.close()
                    return
                client.sendall(data)
        except OSError:
            pass
        finally:
            if not state["patch"]:
                client.close()


def relayed_kubeconfig(cluster, relay, directory):
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{relay.port}"
    kubeconfig = directory / "relayed-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    return kubeconfig


@pytest.mark.parametrize("hang", [False, True], ids=["connection-dropped", "read-timeout"])
def test_patch_whose_answer_is_lost_is_read_back_and_never_sent_twice(make_cluster, checkout, hang):
    cluster = make_cluster(tls=False)
    link(cluster)
    relay = LosePatchAnswer(cluster.port, hang=hang)
    kubeconfig = relayed_kubeconfig(cluster, relay, checkout.parent)
    try:
        result = run_plugin(
            ["--kubeconfig", str(kubeconfig), "--timeout", "60s", "--request-timeout", "2s"],
            cwd=checkout,
        )
    finally:
        relay.close()
    assert relay.swallowed.is_set()
    assert result.exit_code == 0, result.output
    assert len(patches(cluster)) == 1  # applied once; the read-back found it
    reads = requests_of(cluster, "GET", "/deployments/backend")
    assert reads, "the outcome was not read back"
    assert_one_restart(cluster)
    assert_clean(result)


# -- Ctrl-C ----------------------------------------------------------------------------


def test_ctrl_c_while_watching_says_how_to_keep_watching(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    process = start_console_script(cluster, checkout, "--timeout", "60s")
    code, stdout, stderr = interrupt_when(
        cluster, process, lambda: len(watches_after_patch(cluster)) >= 3
    )
    assert code == 130, stdout + stderr
    assert "restart goes on in the cluster" in stdout
    keep_watching = stdout.split("to keep watching run:", 1)[1].strip().splitlines()[0]
    assert (
        keep_watching == "kubectl restart-backend status --deployment backend -n shop --context sim"
    )
    assert "Traceback" not in stdout + stderr
    assert len(patches(cluster)) == 1


def test_ctrl_c_before_the_patch_changes_nothing(cluster, checkout):
    link(cluster)
    before = cluster.get("deployments", "shop", "backend")
    cluster.faults.fail_next(1000, "GET", ENDPOINTS["list"][1], status=503)
    process = start_console_script(cluster, checkout, "--timeout", "60s")
    code, stdout, stderr = interrupt_when(
        cluster, process, lambda: any(r.status == 503 for r in cluster.requests)
    )
    assert code == 130, stdout + stderr
    assert "nothing was changed" in stderr
    assert "Traceback" not in stdout + stderr
    assert not patches(cluster)
    after = cluster.get("deployments", "shop", "backend")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


# -- someone else acts mid-watch ---------------------------------------------------------------


def test_deployment_deleted_mid_watch_is_reported_not_waited_out(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    cluster.delete("deployments", "shop", "backend")
    result = run.join()
    assert result.exit_code == 1, result.output
    assert "deleted" in result.stdout
    assert "timeout" not in result.stdout.lower()
    assert_clean(result)


def test_template_changed_by_someone_else_mid_watch_is_superseded(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    run = Background(cluster, checkout, "--timeout", "60s")
    wait_until_watching(cluster, run)
    cluster.patch(
        "deployments",
        "shop",
        "backend",
        {"spec": {"template": {"metadata": {"annotations": {"someone/else": "deploy"}}}}},
    )
    result = run.join()
    assert result.exit_code == 6, result.output
    assert "superseded by a newer change: annotation someone/else" in result.stdout
    assert "timeout" not in result.stdout.lower() and "failed" not in result.stdout.lower()
    assert_clean(result)


def test_ctrl_c_while_the_patch_is_unanswered_says_it_may_have_been_applied(make_cluster, checkout):
    cluster = make_cluster(tls=False)
    link(cluster)
    relay = LosePatchAnswer(cluster.port, hang=True)
    kubeconfig = relayed_kubeconfig(cluster, relay, checkout.parent)
    process = start_console_script(cluster, checkout, "--timeout", "60s", kubeconfig=kubeconfig)
    try:
        code, stdout, stderr = interrupt_when(cluster, process, relay.swallowed.is_set)
    finally:
        relay.close()
    assert code == 130, stdout + stderr
    assert "the restart may have been applied" in stderr
    assert "nothing was changed" not in stderr
    assert "hint: check with: kubectl rollout status deployment/backend -n shop" in stderr
    assert "Traceback" not in stdout + stderr


# -- watches that end at once (a proxy cutting long requests) ------------------------------------


def lists_and_watches_per_resource(cluster) -> dict[str, int]:
    """GETs of each collection after our PATCH (lists and watches alike)."""
    log = cluster.requests
    first = next(i for i, r in enumerate(log) if r.method == "PATCH")
    counts: dict[str, int] = {}
    for record in log[first:]:
        if record.method == "GET" and record.path.rsplit("/", 1)[-1] in (
            "deployments",
            "replicasets",
            "pods",
        ):
            key = record.path.rsplit("/", 1)[-1]
            counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize(
    "behaviour, exit_code, words",
    [
        (Behaviour.healthy(ready_delay=0.3), 0, "Rolling restart complete for backend"),
        (Behaviour.crash_loop(), 1, "CrashLoopBackOff"),
    ],
    ids=["complete", "failed"],
)
def test_watches_that_end_at_once_never_hang_the_verdict(
    cluster, checkout, behaviour, exit_code, words
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", behaviour)
    cluster.faults.cut_watches = True
    started = time.monotonic()
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "60s"], cwd=checkout)
    elapsed = time.monotonic() - started
    assert run.exit_code == exit_code, run.output
    assert words in run.stdout
    for resource, count in lists_and_watches_per_resource(cluster).items():
        assert count <= 4 * elapsed + 6, f"{resource}: {count} requests in {elapsed:.1f}s"
    assert_one_restart(cluster)
    assert_clean(run)


def test_watches_that_keep_ending_at_once_fall_back_to_polling_at_a_bounded_rate(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    cluster.faults.cut_watches = True
    started = time.monotonic()
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "5s"], cwd=checkout)
    elapsed = time.monotonic() - started
    assert run.exit_code == 3, run.output
    assert "every watch of" in run.output and "listing every 1s instead" in run.output
    counts = lists_and_watches_per_resource(cluster)
    for resource, count in counts.items():
        # about one list per second once polling, plus the first few tries: never a hot loop
        assert count <= 2 * elapsed + 8, f"{resource}: {count} requests in {elapsed:.1f}s"
    assert counts["pods"] >= 4  # it did keep looking
    assert_clean(run)
