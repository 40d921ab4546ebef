"""The event stream's pure core (``events.py``): what each judged state deserves to say, and
that every event it builds matches the schema documented in docs/events.md."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubectl_restart_backend import events
from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, STATEFULSET
from kubectl_restart_backend.outcome import Outcome, RunOutcome, Verdict
from kubectl_restart_backend.render import error_document, run_document
from kubectl_restart_backend.rollout import Phase, PodInfo, RolloutState
from tests.events_schema import load_schema, problems, stream_problems

T0 = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=timezone.utc)
SCHEMA = load_schema()


def pod(name="backend-new-1", **overrides):
    values = dict(
        name=name,
        ready_containers=0,
        total_containers=1,
        status="ContainerCreating",
        restarts=0,
        age_seconds=1.0,
        node="node-1",
        ready=False,
        failing=False,
        container=None,
        message=None,
        last_termination=None,
        replicaset="backend-new",
        is_new=True,
    )
    values.update(overrides)
    return PodInfo(**values)


def state(
    *pods, phase=Phase.PROGRESSING, ready=0, updated=1, replicas=3, reason="UpdatingReplicas"
):
    return RolloutState(
        phase=phase,
        reason=reason,
        message="rolling",
        ready_replicas=ready,
        replicas=replicas,
        updated_replicas=updated,
        failure_reason=None,
        pods=tuple(pods),
        new_replicaset="backend-new",
    )


def track(seen, st, available=3):
    return events.track(
        seen, st, T0, context="sim", workload="deployment/backend", available=available
    )


def crash(restarts, failing=False, **extra):
    return pod(
        status="CrashLoopBackOff" if restarts else "Error",
        restarts=restarts,
        container="app",
        last_termination="Error (exit code 1)",
        trouble="CrashLoop",
        doom="after-restarts",
        failing=failing,
        tolerance=None if failing else f"{restarts + 1} exits, 2 restarts tolerated",
        failure="pod backend-new-1 (container app) is in CrashLoopBackOff" if failing else None,
        **extra,
    )


# -- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, text",
    [
        (T0, "2026-11-30T09:00:00.123Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05.000Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.999Z",
        ),
    ],
)
def test_times_are_rfc3339_utc_with_milliseconds(moment, text):
    assert events.format_time(moment) == text


# -- progress: changes, never a heartbeat -----------------------------------------------------


def test_the_first_state_is_progress_with_every_pod():
    seen, said = track(events.Seen(), state(pod()))
    assert [e["type"] for e in said] == ["progress"]
    assert said[0]["pods"] == [
        {
            "name": "backend-new-1",
            "new": True,
            "status": "ContainerCreating",
            "ready": False,
            "restarts": 0,
        }
    ]
    assert (said[0]["updated"], said[0]["ready"], said[0]["available"], said[0]["replicas"]) == (
        1,
        0,
        3,
        3,
    )


def test_the_same_state_again_says_nothing():
    seen, _ = track(events.Seen(), state(pod()))
    assert track(seen, state(pod()))[1] == []


def test_a_count_that_moves_is_progress_without_pods():
    seen, _ = track(events.Seen(), state(pod()))
    _, said = track(seen, state(pod(), updated=2))
    assert [(e["type"], e["updated"], e["pods"], e["gone"]) for e in said] == [
        ("progress", 2, [], [])
    ]


def test_only_the_pods_that_changed_are_named_and_those_that_left_are_gone():
    seen, _ = track(
        events.Seen(), state(pod(), pod("old-1", is_new=False, ready=True, status="Running"))
    )
    ready = pod(status="Running", ready=True, ready_containers=1)
    _, said = track(seen, state(ready, ready=1))
    (progress,) = said
    assert [p["name"] for p in progress["pods"]] == ["backend-new-1"]
    assert progress["gone"] == ["old-1"]


def test_the_available_count_is_news_too():
    seen, _ = track(events.Seen(), state(pod()), available=3)
    assert [e["available"] for e in track(seen, state(pod()), available=2)[1]] == [2]


@pytest.mark.parametrize(
    "kind, status, available",
    [
        (DEPLOYMENT, {"availableReplicas": 2}, 2),
        (STATEFULSET, {"availableReplicas": 1}, 1),
        (DAEMONSET, {"numberAvailable": 4}, 4),
        (DEPLOYMENT, {}, 0),
    ],
)
def test_available_is_read_where_each_controller_writes_it(kind, status, available):
    assert events.available_of({"status": status}, kind) == available
    assert events.available_of(None, kind) is None


# -- trouble: when it starts, grows, or dooms ------------------------------------------------


def test_trouble_of_a_new_pod_comes_before_the_progress_it_led_to():
    _, said = track(events.Seen(), state(crash(0)))
    assert [e["type"] for e in said] == ["trouble", "progress"]
    trouble = said[0]
    assert (trouble["pod"], trouble["container"], trouble["trouble"], trouble["reason"]) == (
        "backend-new-1",
        "app",
        "CrashLoop",
        "Error",
    )
    assert (trouble["classification"], trouble["doom"], trouble["restarts"]) == (
        "tolerated",
        "after-restarts",
        0,
    )


def test_trouble_is_told_again_only_when_it_grows_or_dooms():
    seen, _ = track(events.Seen(), state(crash(1)))
    assert [e["type"] for e in track(seen, state(crash(1)))[1]] == []
    seen, said = track(seen, state(crash(2)))
    assert [(e["type"], e.get("restarts")) for e in said] == [("trouble", 2), ("progress", None)]
    _, said = track(
        seen, state(crash(2, failing=True), phase=Phase.FAILED, reason="CrashLoopBackOff")
    )
    doomed = [e for e in said if e["type"] == "trouble"]
    assert [(e["classification"], e["failure"]) for e in doomed] == [
        ("doomed", "pod backend-new-1 (container app) is in CrashLoopBackOff")
    ]


@pytest.mark.parametrize(
    "the_pod",
    [
        pod(trouble="NotReady", doom="recovering", status="Running"),  # warming up
        crash(3, is_new=False),  # old pods never fail a restart: not ours to tell
        pod(),  # no trouble at all
    ],
)
def test_no_trouble_event_for_warming_up_old_pods_or_no_trouble(the_pod):
    _, said = track(events.Seen(), state(the_pod))
    assert [e["type"] for e in said] == ["progress"]


@pytest.mark.parametrize(
    "the_pod, word",
    [
        (crash(2, failing=True), "doomed"),
        (crash(1), "tolerated"),
        (pod(trouble="PodDisplaced", doom="recovering", status="Evicted"), "recovering"),
        (pod(trouble="RegistryHiccup", doom="after-pulls", failed_pulls=1), "tolerated"),
    ],
)
def test_classification_says_what_the_trouble_means_now(the_pod, word):
    assert events.classification(the_pod) == word


# -- outcomes --------------------------------------------------------------------------------


def outcome(name="backend", verdict=Verdict.COMPLETE, **extra):
    st = state(
        pod(status="Running", ready=True),
        phase=Phase.COMPLETE,
        ready=3,
        updated=3,
        reason="Complete",
    )
    return Outcome(verdict, app_name=name, namespace="shop", context="sim", state=st, **extra)


def test_one_workload_gives_its_verdict_with_the_document_the_run_carries_too():
    run = RunOutcome((outcome(),))
    document = run_document(run, [0], 0)
    said, told = events.untold_verdicts(events.workload_documents(document), frozenset(), T0)
    said.append(events.run_event(document, T0))
    assert [e["type"] for e in said] == ["verdict", "run"]
    assert said[0]["document"] == said[1]["document"] == document
    assert (said[0]["workload"], said[1]["workload"], said[1]["exitCode"]) == (
        "deployment/backend",
        None,
        0,
    )
    assert told == {("sim", "shop", "Deployment", "backend")}


def test_several_workloads_give_a_verdict_each_then_the_combined_run():
    run = RunOutcome((outcome("api"), outcome("db", Verdict.FAILED, kind=STATEFULSET)))
    document = run_document(run, [0, 1], 1)
    said, _ = events.untold_verdicts(events.workload_documents(document), frozenset(), T0)
    said.append(events.run_event(document, T0))
    assert [(e["type"], e["workload"], e["exitCode"]) for e in said] == [
        ("verdict", "deployment/api", 0),
        ("verdict", "statefulset/db", 1),
        ("run", None, 1),
    ]
    assert said[1]["document"] == document["workloads"][1]
    assert said[-1]["document"] == document


def test_a_verdict_told_as_soon_as_it_was_final_is_not_told_again_at_the_end():
    from kubectl_restart_backend.render import outcome_document
    from kubectl_restart_backend.verify import Verification

    checked = Verification(status="skipped", reason="no Service")
    api = outcome_document(outcome("api", verification=checked), 0)
    early, told = events.untold_verdicts([api], frozenset(), T0)
    assert [(e["type"], e["workload"]) for e in early] == [
        ("verification", "deployment/api"),
        ("verdict", "deployment/api"),
    ]
    run = RunOutcome((outcome("api", verification=checked), outcome("db", kind=STATEFULSET)))
    document = run_document(run, [0, 0], 0)
    late, told = events.untold_verdicts(events.workload_documents(document), told, T0)
    assert [(e["type"], e["workload"]) for e in late] == [("verdict", "statefulset/db")]
    again, _ = events.untold_verdicts(events.workload_documents(document), told, T0)
    assert again == []


def test_the_same_workload_on_another_cluster_is_another_verdict():
    eu = outcome_document_of(outcome(), context="prod-eu")
    us = outcome_document_of(outcome(), context="prod-us")
    said, told = events.untold_verdicts([eu, us], frozenset(), T0)
    assert [(e["context"], e["workload"]) for e in said] == [
        ("prod-eu", "deployment/backend"),
        ("prod-us", "deployment/backend"),
    ]
    assert len(told) == 2


def outcome_document_of(the_outcome, **changes):
    from dataclasses import replace

    from kubectl_restart_backend.render import outcome_document

    return outcome_document(replace(the_outcome, **changes), 0)


def test_an_error_is_one_event_with_the_error_document():
    document = error_document(
        "No workload found", "link one", 4, {"context": "sim", "repo": "acme/shop"}
    )
    event = events.error_event(document, T0)
    assert (event["type"], event["message"], event["hint"], event["exitCode"]) == (
        "error",
        "No workload found",
        "link one",
        4,
    )
    assert event["document"] == document and event["context"] == "sim"


# -- the schema (docs/events.md) -----------------------------------------------------------


def every_kind_of_event() -> list[dict]:
    from kubectl_restart_backend.verify import Verification

    targets = [(DEPLOYMENT, "shop", "backend")]
    found = {"by": "labels", "repoFrom": "origin", "branchFrom": "git"}
    said = events.resolved_events(
        targets,
        "sim",
        T0,
        action="restart",
        known={"repo": "acme/shop", "branch": "main"},
        found=found,
    )
    said += events.triggered_events(
        targets, "sim", T0, restarted_at="2026-11-30T09:00:00Z", patch={"spec": {}}
    )
    said += track(events.Seen(), state(crash(2, failing=True)))[1]
    checked = Verification(
        status="passed",
        check="GET /healthz",
        method="service-proxy",
        expect="2xx,3xx",
        successes=1,
        attempts=1,
        answers=("200 OK",),
        seconds=0.1,
    )
    document = run_document(RunOutcome((outcome(verification=checked),)), [0], 0)
    said += events.verdict_events(document, T0) + [events.run_event(document, T0)]
    said.append(events.error_event(error_document("bad", "", 2, {}), T0))
    return said


def test_every_event_type_the_core_builds_matches_the_documented_schema():
    said = every_kind_of_event()
    assert {e["type"] for e in said} == set(SCHEMA) - {"*"}
    for event in said:
        assert problems(event, SCHEMA) == [], event


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda e: e.pop("exitCode"), "run: missing field 'exitCode'"),
        (lambda e: e.update(surprise=1), "run: undocumented field 'surprise'"),
        (lambda e: e.update(exitCode="0"), "run: exitCode='0' is not integer"),
        (lambda e: e.update(exitCode=True), "run: exitCode=True is not integer"),
        (lambda e: e.update(context=3), "run: context=3 is not string or null"),
        (lambda e: e.update(type="nope"), "undocumented event type 'nope'"),
        (
            lambda e: e.update(time="2026-11-30T09:00:00Z"),
            "run: time '2026-11-30T09:00:00Z' is not RFC 3339 UTC with ms",
        ),
    ],
)
def test_the_schema_checker_catches_what_it_must(change, problem):
    event = every_kind_of_event()[-2]
    assert event["type"] == "run"
    change(event)
    assert problem in problems(event, SCHEMA)


def test_the_stream_checker_catches_a_verdict_written_twice_and_lines_after_the_run():
    said = every_kind_of_event()[:-1]  # ... verdict, run
    verdict, run = said[-2], said[-1]
    assert stream_problems(said) == []
    assert stream_problems([*said[:-1], verdict, run]) == [
        f"line {len(said)}: a second verdict for ('sim', 'shop', 'deployment/backend') "
        f"(line {len(said) - 1})"
    ]
    assert f"line {len(said)}: run is not the last line" in stream_problems([*said, verdict])


def test_the_schema_checker_reads_array_items_too():
    (progress,) = track(events.Seen(), state(pod()))[1]
    progress["pods"][0]["extra"] = 1
    assert problems(progress, SCHEMA) == ["progress: pods[] undocumented fields ['extra']"]
    progress["pods"][0].pop("extra")
    progress["pods"][0]["ready"] = "yes"
    assert problems(progress, SCHEMA) == ["progress: pods[].ready='yes' is not boolean"]
