"""The spec's words, the terminal manners, and the machine-readable schema."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from kubectl_restart_backend.diagnosis import EventLine, PodInfo
from kubectl_restart_backend.errors import worst_exit_code
from kubectl_restart_backend.kinds import DAEMONSET, STATEFULSET
from kubectl_restart_backend.outcome import (
    LogExcerpt,
    Outcome,
    Rollback,
    RunOutcome,
    Sent,
    Verdict,
)
from kubectl_restart_backend.render import (
    Style,
    choose_style,
    outcome_document,
    render_document,
    render_outcome,
    render_progress,
    render_run,
    render_verification,
    run_document,
)
from kubectl_restart_backend.rollout import Phase, RolloutState
from kubectl_restart_backend.verify import Verification


def pod(name="backend-7d9f-x2x", **overrides):
    values = dict(
        name=name,
        ready_containers=0,
        total_containers=1,
        status="CrashLoopBackOff",
        restarts=3,
        age_seconds=42.0,
        node="node-1",
        ready=False,
        failing=True,
        container="api",
        message="back-off 10s restarting failed container",
        last_termination="Error (exit code 1)",
        replicaset="backend-7d9f",
        is_new=True,
    )
    values.update(overrides)
    return PodInfo(**values)


def state(
    phase=Phase.COMPLETE, ready=3, replicas=3, failure=None, pods=(), reason=None, message=""
):
    return RolloutState(
        phase=phase,
        reason=reason or ("Complete" if phase is Phase.COMPLETE else "CrashLoopBackOff"),
        message=message,
        ready_replicas=ready,
        replicas=replicas,
        updated_replicas=replicas,
        failure_reason=failure,
        pods=tuple(pods),
        new_replicaset="backend-7d9f",
    )


def outcome(verdict, st, **extra):
    return Outcome(verdict, app_name="backend", namespace="shop", context="sim", state=st, **extra)


PLAIN = Style(unicode=True, colour=False)


def test_progress_line_is_the_specs():
    assert render_progress(state(Phase.PROGRESSING, 1, 3)) == (
        "Pods: 1/3 ready, rollout in progress..."
    )


def test_success_is_worded_as_in_the_spec():
    text = render_outcome(outcome(Verdict.COMPLETE, state(), urls=("https://shop.example",)), PLAIN)
    assert text.splitlines() == [
        "✓ Rolling restart complete for backend",
        "All pods healthy: 3/3 ready",
        "URLs: https://shop.example",
    ]


def test_success_without_urls_says_why():
    note = "none (no Ingress, HTTPRoute or LoadBalancer Service routes to backend)"
    text = render_outcome(outcome(Verdict.COMPLETE, state(), urls_note=note), PLAIN)
    assert text.splitlines()[-1] == f"URLs: {note}"


def test_failure_names_reason_pod_table_message_events_and_logs():
    reason = "pod backend-7d9f-x2x (container api) is in CrashLoopBackOff: exit code 1, 3 restarts"
    events = (EventLine("Pod", "backend-7d9f-x2x", "BackOff", "Back-off restarting", 4, 3.0),)
    logs = (LogExcerpt("backend-7d9f-x2x", "api", True, ("boom: DATABASE_URL missing",)),)
    st = state(Phase.FAILED, 0, 3, reason, [pod()])
    lines = render_outcome(
        outcome(Verdict.FAILED, st, events=events, logs=logs, own_restart=True), PLAIN
    ).splitlines()
    assert lines[0] == f"✗ Restart failed: {reason}"
    assert lines[1] == "Pod details:"
    assert lines[2].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]
    assert lines[3].split() == ["backend-7d9f-x2x", "0/1", "CrashLoopBackOff", "3", "42s", "node-1"]
    body = "\n".join(lines)
    assert "last terminated: Error (exit code 1)" in body
    assert "BackOff" in body and "(x4)" in body
    assert "  | boom: DATABASE_URL missing" in body
    assert "--undo-on-failure" in body


def test_failure_with_rollback_reports_the_revision():
    st = state(Phase.FAILED, 0, 3, "x", [pod()])
    back = Rollback(4, state(Phase.COMPLETE, 3, 3))
    text = render_outcome(outcome(Verdict.FAILED, st, rollback=back), PLAIN)
    assert "↩ Rolled back to revision 4: 3/3 pods ready" in text


def test_timeout_is_worded_as_in_the_spec():
    st = state(Phase.PROGRESSING, 1, 3, pods=[pod(status="Running", failing=False)])
    lines = render_outcome(outcome(Verdict.TIMEOUT, st), PLAIN).splitlines()
    assert lines[:3] == [
        "⚠ Restart timeout - pods may still be cycling",
        "Current: 1/3 ready (new pods)",
        "Check pod status manually or try again",
    ]


def test_plain_words_replace_symbols_the_encoding_cannot_write():
    style = choose_style("ascii", False, {})
    assert style == Style(unicode=False, colour=False)
    text = render_outcome(outcome(Verdict.COMPLETE, state()), style)
    assert text.startswith("OK Rolling restart complete for backend")
    text.encode("ascii")


@pytest.mark.parametrize(
    "is_tty, env, colour",
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": ""}, False),
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_colour_only_on_a_terminal_without_no_color(is_tty, env, colour):
    assert choose_style("utf-8", is_tty, env).colour is colour


def test_no_ansi_codes_without_colour():
    text = render_outcome(outcome(Verdict.FAILED, state(Phase.FAILED, 0, 3, "x", [pod()])), PLAIN)
    assert "\033" not in text


SCHEMA_KEYS = [
    "appName", "kind", "namespace", "context", "repo", "branch", "verdict", "ready",
    "rolloutInProgress", "failed", "failureReason", "timedOut", "readyReplicas", "replicas",
    "pods", "deployedUrls", "events", "logs", "restartedAt", "durationSeconds", "notes",
    "exitCode", "error", "supersededBy", "recovered", "rollback", "interrupted",
    "verification", "updateStrategy", "deletedPods", "lock",
]  # fmt: skip


@pytest.mark.parametrize(
    "verdict, phase, expected",
    [
        (Verdict.COMPLETE, Phase.COMPLETE, (True, False, False, False)),
        (Verdict.FAILED, Phase.FAILED, (False, False, True, False)),
        (Verdict.TIMEOUT, Phase.PROGRESSING, (False, True, False, True)),
    ],
)
def test_document_schema_and_spec_booleans(verdict, phase, expected):
    doc = outcome_document(outcome(verdict, state(phase, 1, 3, "why", [pod()])), 7)
    assert list(doc) == SCHEMA_KEYS
    assert (doc["ready"], doc["rolloutInProgress"], doc["failed"], doc["timedOut"]) == expected
    assert doc["exitCode"] == 7
    assert doc["pods"][0]["name"] == "backend-7d9f-x2x"
    assert doc["failureReason"] == ("why" if verdict is Verdict.FAILED else None)


def test_document_renders_as_json_and_yaml_alike():
    doc = outcome_document(outcome(Verdict.COMPLETE, state()), 0)
    assert json.loads(render_document(doc, "json")) == yaml.safe_load(render_document(doc, "yaml"))


def test_pod_table_cells_from_the_cluster_cannot_inject_lines_or_escapes():
    hostile = pod(name="evil\x1b[2J\nfake-line", status="Running\r\nhint: pwned")
    text = render_outcome(outcome(Verdict.FAILED, state(Phase.FAILED, 0, 3, "x", [hostile])), PLAIN)
    assert "\x1b" not in text and "\r" not in text
    assert not any(line.startswith("hint:") for line in text.splitlines())


# -- what is said after a failure: undo only for our own restart ------------------------------


def test_status_of_someone_elses_rollout_never_suggests_an_undo():
    st = state(Phase.FAILED, 0, 3, "x", [pod()])
    text = render_outcome(outcome(Verdict.FAILED, st, own_restart=False), PLAIN)
    assert "rollout undo" not in text and "--undo-on-failure" not in text
    assert "kubectl rollout history deployment/backend -n shop" in text


def test_a_deleted_deployment_gets_no_rollback_advice():
    st = RolloutState(Phase.FAILED, "Deleted", "gone", 0, 0, 0, "gone", (), None)
    text = render_outcome(outcome(Verdict.FAILED, st, own_restart=True), PLAIN)
    assert "undo" not in text


def test_a_refused_rollback_says_why_in_words():
    st = state(Phase.FAILED, 0, 3, "x", [pod()])
    why = (
        "the pod template changed after our restart: image 3.0 -> 4.0-hotfix "
        "(manager: kubectl-set); nothing was changed: the newest change is not ours to undo"
    )
    back = Rollback(1, None, why, refused=True, sent=Sent.NO)
    text = render_outcome(outcome(Verdict.FAILED, st, rollback=back, own_restart=True), PLAIN)
    assert f"Not rolled back: {why}" in text
    assert "testing value" not in text and "Rolled back to" not in text


# -- superseded ---------------------------------------------------------------------------------


def superseded(reason="Superseded", message="superseded by a newer change: image 3.0 -> 4.0"):
    return RolloutState(Phase.SUPERSEDED, reason, message, 1, 3, 1, None, (pod(),), "b-1")


def test_superseded_is_its_own_verdict_not_a_failure():
    lines = render_outcome(outcome(Verdict.SUPERSEDED, superseded()), PLAIN).splitlines()
    assert lines[0] == "⚠ Restart superseded by a newer change: image 3.0 -> 4.0"
    assert "Not a failure of the restart, and nothing was rolled back" in lines[1]
    assert lines[2].startswith("To follow the newer rollout: kubectl restart-backend status")
    assert not any("undo" in line for line in lines)


def test_paused_mid_rollout_says_how_to_continue():
    st = superseded("Paused", "paused during the rollout (manager: kubectl-rollout)")
    text = render_outcome(outcome(Verdict.SUPERSEDED, st), Style(unicode=False))
    first = text.splitlines()[0]
    assert first == "SUPERSEDED Restart paused during the rollout (manager: kubectl-rollout)"
    assert "kubectl rollout resume deployment/backend -n shop" in text


def test_superseded_document_says_by_what():
    doc = outcome_document(outcome(Verdict.SUPERSEDED, superseded()), 6)
    assert doc["verdict"] == "superseded" and doc["exitCode"] == 6
    assert doc["failed"] is False and doc["ready"] is False
    assert doc["supersededBy"] == "superseded by a newer change: image 3.0 -> 4.0"


# -- recovered pods on success ------------------------------------------------------------------


def test_success_names_pods_that_hiccuped_and_recovered():
    healed = pod(
        "backend-7d9f-a",
        ready=True,
        failing=False,
        status="Running",
        restarts=1,
        last_termination="Error (exit code 1)",
        last_exit_age=12.4,
    )
    pulled = pod(
        "backend-7d9f-b",
        ready=True,
        failing=False,
        status="Running",
        restarts=0,
        last_termination=None,
        failed_pulls=2,
        seen=("ErrImagePull: rpc error: ... manifests/1.4: 503 Service Unavailable",),
    )
    waited = pod(
        "backend-7d9f-c",
        ready=True,
        failing=False,
        status="Running",
        restarts=0,
        last_termination=None,
        seen=('CreateContainerConfigError: secret "shop-db" not found',),
    )
    calm = pod("backend-7d9f-d", ready=True, failing=False, restarts=0, last_termination=None)
    st = state(pods=[healed, pulled, waited, calm])
    lines = render_outcome(outcome(Verdict.COMPLETE, st), PLAIN).splitlines()
    assert lines[:2] == ["✓ Rolling restart complete for backend", "All pods healthy: 3/3 ready"]
    assert lines[3:] == [
        "Recovered: pod backend-7d9f-a restarted once (Error (exit code 1), 12s ago) and recovered",
        "Recovered: pod backend-7d9f-b had 2 failed image pulls (503 Service Unavailable) and "
        "recovered",
        "Recovered: pod backend-7d9f-c was in CreateContainerConfigError "
        '(secret "shop-db" not found) and recovered',
    ]
    doc = outcome_document(outcome(Verdict.COMPLETE, st), 0)
    assert doc["recovered"] == [line.removeprefix("Recovered: ") for line in lines[3:]]
    assert doc["pods"][0]["restarts"] == 1 and doc["pods"][0]["lastExitAgeSeconds"] == 12.4
    assert doc["pods"][1]["failedPulls"] == 2


# -- Ctrl-C after the verdict -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent, words",
    [
        (Sent.NO, "the rollback to revision 4 was not sent."),
        (Sent.UNKNOWN, "the rollback to revision 4 was on its way: it may have been applied."),
        (Sent.YES, "the rollback to revision 4 was sent and goes on in the cluster."),
    ],
)
def test_ctrl_c_while_rolling_back_keeps_the_failure_and_says_if_it_was_sent(sent, words):
    st = state(Phase.FAILED, 0, 3, "why", [pod()])
    back = Rollback(4, None, sent=sent)
    done = outcome(Verdict.FAILED, st, rollback=back, interrupted="rolling back", own_restart=True)
    text = render_outcome(done, PLAIN)
    assert text.startswith("✗ Restart failed: why")
    assert f"Interrupted while rolling back: {words}" in text
    doc = outcome_document(done, 130)
    assert doc["verdict"] == "failed" and doc["interrupted"] == "rolling back"
    assert doc["rollback"]["sent"] == sent.value and doc["exitCode"] == 130


def test_ctrl_c_while_explaining_keeps_the_failure():
    st = state(Phase.FAILED, 0, 3, "why", [pod()])
    done = outcome(Verdict.FAILED, st, interrupted="explaining the failure", own_restart=True)
    text = render_outcome(done, PLAIN)
    assert text.startswith("✗ Restart failed: why")
    assert "Interrupted while the failure was being explained" in text
    assert "restart goes on in the cluster" in text


# -- the smoke check and the settle window ------------------------------------------------------

PASSED = Verification(
    "passed", check="GET /healthz through service shop/backend:http", method="service-proxy",
    expect="2xx,3xx", successes=1, attempts=1, answers=("200 OK",), seconds=0.04,
)  # fmt: skip


@pytest.mark.parametrize(
    ("verification", "lines"),
    [
        (None, []),
        (PASSED, ["Verified: GET /healthz through service shop/backend:http answered 200 OK"]),
        (dataclasses.replace(PASSED, successes=3, answers=("503 Service Unavailable", "200 OK")),
         ["Verified: GET /healthz through service shop/backend:http answered 200 OK "
          "(3 times in a row)"]),
        (Verification("skipped", reason="no Service selects the pods\n(nothing routes)"),
         ["Verification skipped: no Service selects the pods (nothing routes)"]),
        (Verification("interrupted"),
         ["Verification interrupted: the rollout itself is complete"]),
        (dataclasses.replace(PASSED, settle_seconds=30.0, settle="passed"),
         ["Verified: GET /healthz through service shop/backend:http answered 200 OK",
          "Settled: no restart and no pod lost readiness in 30s"]),
    ],
    ids=["none", "passed", "streak", "skipped", "interrupted", "settled"],
)  # fmt: skip
def test_a_success_says_what_the_check_and_the_window_found(verification, lines):
    assert render_verification(verification) == lines
    text = render_outcome(outcome(Verdict.COMPLETE, state(), verification=verification), PLAIN)
    assert text.splitlines()[3 : 3 + len(lines)] == lines


def test_a_failure_after_completion_does_not_say_the_old_pods_serve():
    failed = state(Phase.FAILED, failure="the backend does not serve: ...",
                   reason="VerificationFailed", pods=[pod(ready=True, failing=False)])  # fmt: skip
    text = render_outcome(outcome(Verdict.FAILED, failed, own_restart=True), PLAIN)
    assert "The new pods have replaced the old ones. To roll back: kubectl rollout undo" in text
    assert "old pods keep serving" not in text


def test_the_document_carries_the_verification_and_its_window():
    verification = dataclasses.replace(PASSED, settle_seconds=30.0, settle="failed",
                                       settle_problem="pod x restarted")  # fmt: skip
    doc = outcome_document(outcome(Verdict.COMPLETE, state(), verification=verification), 0)
    assert doc["verification"] == {
        "status": "passed", "check": "GET /healthz through service shop/backend:http",
        "method": "service-proxy", "expect": "2xx,3xx", "successes": 1, "attempts": 1,
        "answers": ["200 OK"], "reason": None, "durationSeconds": 0.04,
        "settle": {"seconds": 30.0, "status": "failed", "problem": "pod x restarted"},
    }  # fmt: skip
    assert outcome_document(outcome(Verdict.COMPLETE, state()), 0)["verification"] is None


# -- several workloads, one run ----------------------------------------------------------------


def several() -> RunOutcome:
    failing = pod(name="db-2", replicaset="db-7c5d9f")
    return RunOutcome(
        (
            Outcome(Verdict.COMPLETE, "api", "shop", "sim", state=state(), urls=("https://x",)),
            Outcome(
                Verdict.FAILED, "db", "shop", "sim", kind=STATEFULSET, own_restart=True,
                state=state(Phase.FAILED, 2, 3, "pod db-2 (container db) is in CrashLoopBackOff",
                            [failing]),
            ),
            Outcome(Verdict.NOT_STARTED, "agent", "shop", "sim", kind=DAEMONSET,
                    not_started="statefulset/db failed"),
        )
    )  # fmt: skip


def test_several_workloads_are_named_and_summed_up_in_one_line():
    lines = render_run(several(), PLAIN, [0, 1, 0]).splitlines()
    assert "✓ Rolling restart complete for deployment/api" in lines
    assert (
        "✗ Restart failed: statefulset/db: pod db-2 (container db) is in CrashLoopBackOff"
    ) in lines
    assert (
        "Not restarted: daemonset shop/agent (its wave comes after statefulset/db failed; "
        "nothing was sent to it)"
    ) in lines
    assert "kubectl rollout undo statefulset/db -n shop --context sim (or run again with " in (
        "\n".join(lines)
    )
    assert lines[-1] == (
        "✗ 1 of 3 workloads failed (failed: statefulset/db; not started: daemonset/agent; "
        "complete: deployment/api)"
    )


def test_one_workload_reads_as_it_always_did():
    run = RunOutcome((outcome(Verdict.COMPLETE, state(), urls=("https://x",)),))
    assert render_run(run, PLAIN, [0]) == render_outcome(run.outcomes[0], PLAIN)


def test_the_document_of_several_keeps_the_top_level_keys_and_lists_workloads():
    doc = run_document(several(), [0, 1, 0], 1)
    assert list(doc) == [*SCHEMA_KEYS, "workloads"]
    assert [list(w) for w in doc["workloads"]] == [SCHEMA_KEYS] * 3
    assert (doc["verdict"], doc["exitCode"], doc["ready"], doc["failed"]) == (
        "failed",
        1,
        False,
        True,
    )
    assert doc["failureReason"] == (
        "statefulset/db: pod db-2 (container db) is in CrashLoopBackOff"
    )
    assert (doc["appName"], doc["kind"], doc["namespace"]) == (None, None, "shop")
    assert doc["notes"] == []
    assert doc["workloads"][1]["pods"][0]["revision"] == "db-7c5d9f"
    assert doc["workloads"][1]["pods"][0]["replicaSet"] is None
    assert doc["readyReplicas"] == 3 + 2


def test_an_on_delete_trigger_says_no_pod_was_replaced_and_how_to_replace_them():
    on_delete = Outcome(Verdict.TRIGGERED, "db", "shop", "sim", kind=STATEFULSET,
                        on_delete=True, update_strategy="OnDelete")  # fmt: skip
    assert render_outcome(on_delete, PLAIN).splitlines() == [
        "Restart sent to statefulset shop/db, but no pod was replaced: it uses the OnDelete "
        "update strategy, so its pods take the new template only when they are deleted.",
        "To replace them one at a time, each after the previous is ready: kubectl "
        "restart-backend -w statefulset/db -n shop --context sim --delete-pods",
    ]


@pytest.mark.parametrize(
    "codes, worst",
    [([0, 0], 0), ([0, 6], 6), ([6, 3], 3), ([3, 1, 6], 1), ([1, 130], 130), ([0, 143], 143)],
)
def test_the_worst_exit_code_wins(codes, worst):
    assert worst_exit_code(codes) == worst


def test_a_daemonset_on_no_node_is_not_said_to_be_scaled_to_zero():
    empty = Outcome(Verdict.COMPLETE, "agent", "shop", "sim", kind=DAEMONSET, state=state(
        ready=0, replicas=0))  # fmt: skip
    assert render_outcome(empty, PLAIN).splitlines()[1] == (
        "No pods running: daemonset shop/agent has no node to run on"
    )
