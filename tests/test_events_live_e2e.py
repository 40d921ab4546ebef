"""``-o ndjson`` writes each workload's verdict the moment it is final, not when the whole run
is done: a real process is read line by line while the test holds another workload (or
cluster) back (its new pods never ready), so the quick one's verdict can only have been
written before the slow one finished; an ordered run shows each wave's verdicts before the
next wave starts. Every line is checked against docs/events.md, and every verdict is written
exactly once."""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from typing import Callable

import pytest

from tests.cluster.behaviours import Behaviour
from tests.events_schema import load_schema, parse_stream, problems, stream_problems
from tests.plugin_runner import link, make_checkout, run_plugin, start_console_script

SCHEMA = load_schema()


class LiveStream:
    """The events of a running plugin, each read and checked against the schema as it comes."""

    def __init__(self, process) -> None:
        self.process = process
        self.seen: list[dict] = []
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, wanted: Callable[[dict], bool]) -> dict:
        """Read up to the first event that is ``wanted`` (generous timeout: a hang, not a
        speed, is what it catches)."""
        while True:
            line = self._lines.get(timeout=120)
            assert line is not None, f"the stream ended before the event: {self.types()}"
            event = json.loads(line)
            assert problems(event, SCHEMA) == [], event
            self.seen.append(event)
            if wanted(event):
                return event

    def finish(self) -> int:
        """Read everything left; the exit code."""
        while (line := self._lines.get(timeout=120)) is not None:
            event = json.loads(line)
            assert problems(event, SCHEMA) == [], event
            self.seen.append(event)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        assert stream_problems(self.seen) == []
        return code

    def types(self) -> list[tuple[str, str, str]]:
        return [(e["type"], e["context"], e["workload"]) for e in self.seen]


@pytest.fixture
def live():
    started: list = []

    def start(cluster, checkout, *args: str, kubeconfig=None) -> LiveStream:
        process = start_console_script(
            cluster, checkout, "-o", "ndjson", *args, kubeconfig=kubeconfig
        )
        started.append(process)
        return LiveStream(process)

    yield start
    for process in started:
        process.kill()


def verdict_of(workload: str, context: str = "sim") -> Callable[[dict], bool]:
    return lambda e: (
        e["type"] == "verdict"
        and (e["context"], e["workload"])
        == (
            context,
            workload,
        )
    )


def index_of(stream: list[dict], wanted: Callable[[dict], bool]) -> int:
    return next(i for i, event in enumerate(stream) if wanted(event))


def held_back(cluster, prefix: str) -> list[dict]:
    """The pods of ``prefix`` that are not ready (only new ones: the old ones stay ready)."""
    return [
        pod
        for pod in cluster.list("pods", "shop")
        if pod["metadata"]["name"].startswith(prefix)
        and not any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (pod.get("status") or {}).get("conditions") or ()
        )
    ]


def release(cluster, name: str) -> None:
    """Let a held-back rollout finish: healthy pods from now on, the held ones replaced."""
    cluster.wait_for(lambda: held_back(cluster, f"{name}-"), message=f"no {name} pod held back")
    cluster.set_behaviour("shop", name, Behaviour.healthy())
    for pod in held_back(cluster, f"{name}-"):
        cluster.delete("pods", "shop", pod["metadata"]["name"])


def once_each(stream: list[dict]) -> Counter:
    return Counter((e["context"], e["workload"]) for e in stream if e["type"] == "verdict")


def test_a_quick_workload_s_verdict_is_written_while_a_slow_one_still_rolls(
    cluster, tmp_path, live
):
    checkout = make_checkout(tmp_path / "shop")
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    cluster.set_behaviour("shop", "worker", Behaviour.never_ready())
    stream = live(cluster, checkout, "--all", "--timeout", "120s")
    api = stream.until(verdict_of("deployment/api"))
    assert (api["verdict"], api["exitCode"]) == ("complete", 0)
    assert stream.process.poll() is None  # the worker is held back: the run goes on
    assert not any(e["type"] == "verdict" for e in stream.seen[:-1])
    release(cluster, "worker")
    assert stream.finish() == 0
    seen = stream.seen
    after = seen[index_of(seen, verdict_of("deployment/api")) + 1 :]
    assert any(e["type"] == "progress" and e["workload"] == "deployment/worker" for e in after)
    assert once_each(seen) == {("sim", "deployment/api"): 1, ("sim", "deployment/worker"): 1}
    assert seen[-1]["type"] == "run" and seen[-1]["exitCode"] == 0
    entries = {w["appName"]: w for w in seen[-1]["document"]["workloads"]}
    assert entries["api"] == api["document"]  # the run's document tells the same verdict
    worker = seen[index_of(seen, verdict_of("deployment/worker"))]
    assert entries["worker"] == worker["document"]


def test_an_ordered_run_writes_the_first_wave_s_verdict_before_the_second_wave_starts(
    cluster, checkout
):
    (checkout / ".restart-backend.yaml").write_text("order: [api, worker]\n")
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    run = run_plugin(
        ["-o", "ndjson", "--all", "--timeout", "60s", "--kubeconfig", cluster.kubeconfig],
        cwd=checkout,
    )
    assert run.exit_code == 0, run.output
    stream = parse_stream(run.stdout)
    first = index_of(stream, verdict_of("deployment/api"))
    second = index_of(
        stream, lambda e: e["type"] == "resolved" and e["workload"] == "deployment/worker"
    )
    assert first < second < index_of(stream, verdict_of("deployment/worker"))
    assert [e["workload"] for e in stream if e["type"] == "triggered"] == [
        "deployment/api",
        "deployment/worker",
    ]
    assert once_each(stream) == {("sim", "deployment/api"): 1, ("sim", "deployment/worker"): 1}
    assert stream[-1]["type"] == "run"


def test_a_failure_blocking_the_next_wave_writes_its_not_started_verdict_once(cluster, checkout):
    (checkout / ".restart-backend.yaml").write_text("order: [api, worker]\n")
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    cluster.set_behaviour("shop", "api", Behaviour.crash_loop())
    run = run_plugin(
        ["-o", "ndjson", "--all", "--timeout", "60s", "--kubeconfig", cluster.kubeconfig],
        cwd=checkout,
    )
    assert run.exit_code == 1, run.output
    stream = parse_stream(run.stdout)
    verdicts = [e for e in stream if e["type"] == "verdict"]
    assert [(e["workload"], e["verdict"]) for e in verdicts] == [
        ("deployment/api", "failed"),
        ("deployment/worker", "not-started"),
    ]
    assert (stream[-1]["type"], stream[-1]["exitCode"]) == ("run", 1)
    assert [e["document"] for e in verdicts] == stream[-1]["document"]["workloads"]


def test_a_failed_verdict_with_undo_on_failure_is_written_once_with_its_rollback(
    cluster, tmp_path, live
):
    """The rollback follows the failure before the verdict is final: the verdict is written
    after it, with it, while another workload of the run still rolls."""
    checkout = make_checkout(tmp_path / "shop")
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    cluster.set_behaviour("shop", "api", Behaviour.crash_loop())
    cluster.set_behaviour("shop", "worker", Behaviour.never_ready())
    stream = live(cluster, checkout, "--all", "--undo-on-failure", "--timeout", "120s")
    api = stream.until(verdict_of("deployment/api"))
    assert (api["verdict"], api["exitCode"]) == ("failed", 1)
    rollback = api["document"]["rollback"]
    assert (rollback["sent"], rollback["complete"], rollback["error"]) == ("yes", True, None)
    assert stream.process.poll() is None  # the worker is held back: the run goes on
    release(cluster, "worker")
    assert stream.finish() == 1
    seen = stream.seen
    assert once_each(seen) == {("sim", "deployment/api"): 1, ("sim", "deployment/worker"): 1}
    at = index_of(seen, verdict_of("deployment/api"))
    assert not [
        e for e in seen[at + 1 :] if e["workload"] == "deployment/api" and e["type"] != "run"
    ]  # the rollback's progress came before the verdict: nothing of api after it
    assert any(e["type"] == "trouble" for e in seen[:at])
    entries = {w["appName"]: w for w in seen[-1]["document"]["workloads"]}
    assert entries["api"] == api["document"]
    assert entries["worker"]["verdict"] == "complete"


@pytest.fixture
def two_clusters(make_fleet):
    fleet = make_fleet(("staging", "prod-eu"))
    for cluster in fleet:
        link(cluster)
    return fleet


def test_each_cluster_s_verdict_is_written_as_that_cluster_finishes(two_clusters, tmp_path, live):
    """One cluster wave of two clusters (a thread each): the quick cluster's verdict is out
    while the other's rollout is held back."""
    fleet = two_clusters
    checkout = make_checkout(tmp_path / "shop")
    (checkout / ".restart-backend.yaml").write_text("waves:\n- contexts: [staging, prod-eu]\n")
    fleet["prod-eu"].set_behaviour("shop", "backend", Behaviour.never_ready())
    stream = live(fleet["staging"], checkout, "--timeout", "120s", kubeconfig=fleet.kubeconfig)
    staging = stream.until(verdict_of("deployment/backend", "staging"))
    assert (staging["verdict"], staging["exitCode"]) == ("complete", 0)
    assert stream.process.poll() is None  # prod-eu is held back: the run goes on
    release(fleet["prod-eu"], "backend")
    assert stream.finish() == 0
    seen = stream.seen
    after = seen[index_of(seen, verdict_of("deployment/backend", "staging")) + 1 :]
    assert any(e["type"] == "progress" and e["context"] == "prod-eu" for e in after)
    assert once_each(seen) == {
        ("staging", "deployment/backend"): 1,
        ("prod-eu", "deployment/backend"): 1,
    }
    assert (seen[-1]["type"], seen[-1]["context"], seen[-1]["exitCode"]) == ("run", None, 0)
    clusters = {c["context"]: c for c in seen[-1]["document"]["clusters"]}
    assert clusters["staging"] == staging["document"]  # the cluster's document, its wave too


def test_cluster_waves_write_the_first_cluster_s_verdict_before_the_next_starts(
    two_clusters, checkout
):
    fleet = two_clusters
    run = run_plugin(
        ["-o", "ndjson", "--context", "staging", "--context", "prod-eu"]
        + ["--timeout", "60s", "--kubeconfig", fleet.kubeconfig],
        cwd=checkout,
    )
    assert run.exit_code == 0, run.output
    stream = parse_stream(run.stdout)
    first = index_of(stream, verdict_of("deployment/backend", "staging"))
    second = index_of(stream, lambda e: e["type"] == "resolved" and e["context"] == "prod-eu")
    assert first < second < index_of(stream, verdict_of("deployment/backend", "prod-eu"))
    assert once_each(stream) == {
        ("staging", "deployment/backend"): 1,
        ("prod-eu", "deployment/backend"): 1,
    }
    assert stream[-1]["type"] == "run"
