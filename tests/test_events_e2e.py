"""``-o ndjson`` end to end against the simulated cluster: every line parses and matches the
schema of docs/events.md, in the documented order, for each way a run can end; and a real
process writes each event as it happens (the ``triggered`` line is read while the rollout
is still held back by the test)."""

from __future__ import annotations

import json
import queue
import signal
import threading

from tests.cluster.behaviours import Behaviour
from tests.events_schema import load_schema, parse_stream, problems
from tests.plugin_runner import (
    interrupt_when,
    link,
    make_checkout,
    patches,
    run_plugin,
    start_console_script,
)


def ndjson(cluster, cwd, *args):
    return run_plugin(["-o", "ndjson", *args, "--kubeconfig", cluster.kubeconfig], cwd=cwd)


def types(stream):
    return [event["type"] for event in stream]


def assert_no_heartbeat(stream):
    """Each progress event of a workload says something its previous one did not."""
    last = {}
    for event in stream:
        if event["type"] != "progress":
            continue
        counts = tuple(
            event[k] for k in ("phase", "reason", "updated", "ready", "available", "replicas")
        )
        previous = last.get(event["workload"])
        assert counts != previous or event["pods"] or event["gone"], event
        last[event["workload"]] = counts


def test_a_successful_restart_streams_resolved_triggered_progress_verdict_run(cluster, checkout):
    link(cluster)
    run = ndjson(cluster, checkout)
    assert run.exit_code == 0, run.output
    stream = parse_stream(run.stdout)
    kinds = types(stream)
    assert kinds[:2] == ["resolved", "triggered"]
    assert kinds[-2:] == ["verdict", "run"]
    assert "progress" in kinds and "trouble" not in kinds
    resolved, triggered = stream[0], stream[1]
    assert (resolved["workload"], resolved["namespace"], resolved["context"]) == (
        "deployment/backend",
        "shop",
        "sim",
    )
    assert (resolved["repo"], resolved["branch"], resolved["foundBy"], resolved["branchFrom"]) == (
        "acme/shop",
        "main",
        "labels",
        "git",
    )
    (patch,) = patches(cluster)
    assert triggered["patch"] == patch.json
    assert (
        triggered["restartedAt"]
        == patch.json["spec"]["template"]["metadata"]["annotations"][
            "kubectl.kubernetes.io/restartedAt"
        ]
    )
    assert stream[-2]["verdict"] == "complete" and stream[-1]["exitCode"] == 0
    assert_no_heartbeat(stream)
    assert "Restarting deployment shop/backend (context sim)" in run.stderr  # people: stderr
    assert "\x1b" not in run.stderr


def test_the_verdict_carries_exactly_the_json_document(cluster, checkout):
    link(cluster)
    streamed = parse_stream(ndjson(cluster, checkout).stdout)
    document = json.loads(
        run_plugin(["-o", "json", "--kubeconfig", cluster.kubeconfig], cwd=checkout).stdout
    )
    verdict = streamed[-2]["document"]
    assert list(verdict) == list(document)
    assert streamed[-1]["document"] == verdict
    for key in ("appName", "kind", "namespace", "context", "repo", "branch", "verdict", "exitCode"):
        assert verdict[key] == document[key]


def test_a_crash_loop_streams_trouble_then_the_failed_verdict(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = ndjson(cluster, checkout)
    assert run.exit_code == 1, run.output
    stream = parse_stream(run.stdout)
    troubles = [e for e in stream if e["type"] == "trouble"]
    assert troubles, types(stream)
    assert {e["trouble"] for e in troubles} == {"CrashLoop"}
    doomed = [e for e in troubles if e["classification"] == "doomed"]
    assert doomed and doomed[-1]["failure"].startswith(f"pod {doomed[-1]['pod']} (container app)")
    verdict = stream[types(stream).index("verdict")]
    assert types(stream).index("trouble") < types(stream).index("verdict")
    assert (verdict["verdict"], verdict["exitCode"]) == ("failed", 1)
    assert verdict["document"]["failureReason"] == doomed[-1]["failure"]
    assert (stream[-1]["type"], stream[-1]["exitCode"]) == ("run", 1)
    assert_no_heartbeat(stream)


def test_a_timeout_streams_the_timeout_verdict_and_exit_code_3(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    run = ndjson(cluster, checkout, "--timeout", "2s")
    assert run.exit_code == 3, run.output
    stream = parse_stream(run.stdout)
    assert [(e["verdict"], e["exitCode"]) for e in stream if e["type"] in ("verdict", "run")] == [
        ("timeout", 3),
        ("timeout", 3),
    ]
    assert "trouble" not in types(stream)  # not ready is warming up, not trouble
    assert_no_heartbeat(stream)


def test_several_workloads_stream_each_then_one_run_with_the_combined_document(cluster, checkout):
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    cluster.set_behaviour("shop", "worker", Behaviour.crash_loop())
    run = ndjson(cluster, checkout, "--all", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    stream = parse_stream(run.stdout)
    by_type = {}
    for event in stream:
        by_type.setdefault(event["type"], []).append(event["workload"])
    assert sorted(by_type["resolved"]) == ["deployment/api", "deployment/worker"]
    assert sorted(by_type["triggered"]) == ["deployment/api", "deployment/worker"]
    assert {w for w in by_type["progress"]} == {"deployment/api", "deployment/worker"}
    assert {w for w in by_type["trouble"]} == {"deployment/worker"}
    verdicts = {e["workload"]: e["verdict"] for e in stream if e["type"] == "verdict"}
    assert verdicts == {"deployment/api": "complete", "deployment/worker": "failed"}
    last = stream[-1]
    assert (last["type"], last["workload"], last["verdict"], last["exitCode"]) == (
        "run",
        None,
        "failed",
        1,
    )
    assert [w["appName"] for w in last["document"]["workloads"]] == ["api", "worker"]
    assert {e["foundBy"] for e in stream if e["type"] == "resolved"} == {"labels-all"}


def test_bad_input_is_one_error_event_and_exit_2(cluster, tmp_path):
    run = run_plugin(["-o", "ndjson", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    (event,) = parse_stream(run.stdout)
    assert (event["type"], event["exitCode"], event["workload"]) == ("error", 2, None)
    assert "Not a git checkout" in event["message"]
    assert event["document"]["verdict"] == "error"
    assert run.stderr.startswith("error: Not a git checkout")
    assert not cluster.requests


def test_a_flag_mistake_is_one_error_event_and_exit_2(tmp_path):
    run = run_plugin(["-o", "ndjson", "--timeout", "soon"], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    (event,) = parse_stream(run.stdout)
    assert (event["type"], event["exitCode"]) == ("error", 2)
    assert "soon" in event["message"] and "--help" in event["hint"]


def test_no_workload_found_is_one_error_event_after_nothing_was_sent(cluster, checkout):
    run = ndjson(cluster, checkout)
    assert run.exit_code == 4, run.output
    (event,) = parse_stream(run.stdout)
    assert event["type"] == "error" and event["message"].startswith("No workload found")
    assert (event["context"], event["document"]["repo"]) == ("sim", "acme/shop")
    assert patches(cluster) == []


def test_status_streams_resolved_as_status_and_no_triggered(cluster, checkout):
    link(cluster)
    run = run_plugin(["status", "-o", "ndjson", "--kubeconfig", cluster.kubeconfig], cwd=checkout)
    assert run.exit_code == 0, run.output
    stream = parse_stream(run.stdout)
    assert stream[0]["type"] == "resolved" and stream[0]["action"] == "status"
    assert "triggered" not in types(stream) and types(stream)[-1] == "run"


def held_back(cluster):
    """The pods that are not ready (only new ones: the old ones stay ready)."""
    return [
        pod
        for pod in cluster.list("pods", "shop")
        if not any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (pod.get("status") or {}).get("conditions") or ()
        )
    ]


def test_a_real_process_writes_each_event_as_it_happens(cluster, tmp_path):
    """The rollout is held back (new pods never ready) until the test has read the
    ``triggered`` line: that line cannot have been buffered until the verdict."""
    checkout = make_checkout(tmp_path / "shop")
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    process = start_console_script(cluster, checkout, "-o", "ndjson", "--timeout", "60s")
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(x) for x in process.stdout] + [lines.put(None)]
    )
    reader.start()
    schema = load_schema()
    seen = []
    try:
        while not seen or seen[-1]["type"] != "triggered":
            line = lines.get(timeout=60)
            assert line is not None, f"the stream ended before triggered: {seen}"
            seen.append(json.loads(line))
        assert process.poll() is None  # still watching: the verdict cannot be out yet
        cluster.wait_for(lambda: held_back(cluster), message="no new pod held back")
        cluster.set_behaviour("shop", "backend", Behaviour.healthy())  # pods from now on
        for pod in held_back(cluster):  # those made before: replaced by healthy ones
            cluster.delete("pods", "shop", pod["metadata"]["name"])
        while True:
            line = lines.get(timeout=60)
            if line is None:
                break
            seen.append(json.loads(line))
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        process.kill()
        reader.join(timeout=10)
    for event in seen:
        assert problems(event, schema) == [], event
    assert types(seen)[:2] == ["resolved", "triggered"]
    assert types(seen)[-2:] == ["verdict", "run"]
    assert seen[-1]["verdict"] == "complete"


SECRET_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]


def test_start_up_trouble_that_heals_is_streamed_as_tolerated_never_doomed(cluster, checkout):
    """A Secret created two seconds after the new pod needs it: the trouble lasts long enough
    to be seen in a judged state (a crash that comes and goes between two looks shows as a
    restart count instead, docs/events.md)."""
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    link(cluster, containers=[{"name": "api", "image": "acme/shop:1", "env": SECRET_ENV}])
    cluster.delete("secrets", "shop", "shop-db")
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"}, after=2.0)
    run = ndjson(cluster, checkout, "--timeout", "60s")
    assert run.exit_code == 0, run.output
    stream = parse_stream(run.stdout)
    troubles = [e for e in stream if e["type"] == "trouble"]
    assert troubles, types(stream)
    assert {(e["trouble"], e["classification"], e["doom"]) for e in troubles} == {
        ("MissingConfig", "tolerated", "after-seconds")
    }
    assert {e["reason"] for e in troubles} == {"CreateContainerConfigError"}
    assert stream[-1]["verdict"] == "complete"
    assert stream[-1]["document"]["recovered"]


def test_no_wait_and_dry_run_stream_what_docs_events_md_promises(cluster, checkout):
    link(cluster)
    no_wait = parse_stream(ndjson(cluster, checkout, "--no-wait").stdout)
    assert types(no_wait) == ["resolved", "triggered", "verdict", "run"]
    assert no_wait[-1]["verdict"] == "triggered"
    dry_run = parse_stream(ndjson(cluster, checkout, "--dry-run").stdout)
    assert types(dry_run) == ["verdict", "run"]
    assert dry_run[-1]["verdict"] == "dry-run"
    assert len(patches(cluster)) == 1  # --no-wait's; the dry run sent nothing


def test_a_cancelled_job_still_ends_the_stream_with_the_run_and_its_exit_code(cluster, tmp_path):
    """SIGTERM (a cancelled CI job) while watching: the verdict is ``interrupted``, and the
    last line says so with the process's exit code."""
    checkout = make_checkout(tmp_path / "shop")
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    process = start_console_script(cluster, checkout, "-o", "ndjson", "--timeout", "60s")

    def watching() -> bool:  # the watches start after the triggered line is written
        return any(r.is_watch for r in cluster.requests)

    code, stdout, _stderr = interrupt_when(
        cluster, process, lambda: watching() and bool(held_back(cluster)), sig=signal.SIGTERM
    )
    assert code == 143, stdout
    stream = parse_stream(stdout)
    assert types(stream)[:2] == ["resolved", "triggered"]
    assert (stream[-1]["type"], stream[-1]["verdict"], stream[-1]["exitCode"]) == (
        "run",
        "interrupted",
        143,
    )
