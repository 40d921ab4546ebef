"""GitHub Actions' words (``github_actions.py``): escaping as the runner unescapes, the
annotations of each verdict, the step summary (several clusters in one table) and outputs."""

from __future__ import annotations

import pytest

from kubectl_restart_backend import github_actions as gha
from kubectl_restart_backend.render import error_document


@pytest.mark.parametrize(
    "text, data, prop",
    [
        ("plain", "plain", "plain"),
        ("100%", "100%25", "100%25"),
        ("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"),
        ("title: a, b", "title: a, b", "title%3A a%2C b"),
        ("%0A", "%250A", "%250A"),  # an escape in the text stays text
    ],
)
def test_escaping_follows_the_runners_rules(text, data, prop):
    assert gha.escape_data(text) == data
    assert gha.escape_property(text) == prop


def test_a_message_can_never_start_another_command():
    line = gha.workflow_command("error", "boom\n::add-mask::x\n", title="a::b")
    assert "\n" not in line
    assert line == "::error title=a%3A%3Ab::boom%0A::add-mask::x%0A"


def test_commands_without_properties_or_message():
    assert gha.workflow_command("endgroup") == "::endgroup::"
    assert gha.workflow_command("group", "restarting x") == "::group::restarting x"
    assert gha.workflow_command("warning", "m", title="") == "::warning::m"


def doc(verdict="complete", name="backend", **extra):
    base = {
        "appName": name,
        "kind": "Deployment",
        "namespace": "shop",
        "context": "prod-eu",
        "verdict": verdict,
        "ready": verdict == "complete",
        "failureReason": None,
        "readyReplicas": 3,
        "replicas": 3,
        "pods": [],
        "deployedUrls": [],
        "events": [],
        "logs": [],
        "durationSeconds": 7.25,
        "supersededBy": None,
        "exitCode": {"complete": 0, "failed": 1, "timeout": 3, "superseded": 6}.get(verdict, 0),
    }
    base.update(extra)
    return base


CRASHING = {
    "name": "backend-6d5f7-x2x",
    "new": True,
    "ready": False,
    "failing": True,
    "status": "CrashLoopBackOff",
    "restarts": 2,
    "container": "app",
    "message": "back-off 20s restarting failed container",
    "lastTermination": "Error (exit code 1)",
}
FAILED = doc(
    "failed",
    failureReason="pod backend-6d5f7-x2x (container app) is in CrashLoopBackOff: exit code 1",
    readyReplicas=0,
    pods=[CRASHING, {**CRASHING, "name": "backend-old-1", "new": False, "ready": True}],
    events=[
        {"object": "Pod/backend-6d5f7-x2x", "reason": "BackOff", "message": "Back-off", "count": 3}
    ],
    logs=[
        {
            "pod": "backend-6d5f7-x2x",
            "container": "app",
            "previous": True,
            "lines": ["FATAL: db down", "```not a fence```", "</details><script>x</script>"],
            "error": None,
        }
    ],
)


def test_a_failure_is_an_error_annotation_naming_the_pod_and_reason():
    (line,) = gha.annotations([("prod-eu", FAILED)])
    assert line == (
        "::error title=Restart failed%3A deployment shop/backend (context prod-eu)::"
        "pod backend-6d5f7-x2x (container app) is in CrashLoopBackOff: exit code 1"
    )


@pytest.mark.parametrize(
    "document, start",
    [
        (
            doc("timeout", readyReplicas=1, pods=[{**CRASHING, "status": "Running"}]),
            "::warning title=Restart timeout%3A deployment shop/backend (context prod-eu)::1/3 new "
            "pods ready when --timeout ran out; the rollout goes on in the cluster; not ready: "
            "backend-6d5f7-x2x (Running)",
        ),
        (
            doc("superseded", supersededBy="superseded by a newer change: image 3.0 -> 4.0"),
            "::warning title=Restart superseded%3A deployment shop/backend (context prod-eu)::"
            "superseded by a newer change: image 3.0 -> 4.0; not a failure",
        ),
        (doc("interrupted"), "::warning title=Restart interrupted%3A"),
    ],
)
def test_a_timeout_superseded_or_interrupted_run_is_a_warning(document, start):
    (line,) = gha.annotations([("prod-eu", document)])
    assert line.startswith(start)


@pytest.mark.parametrize("verdict", ["complete", "no-pods", "triggered", "dry-run", "not-started"])
def test_nothing_to_annotate_when_nothing_went_wrong(verdict):
    assert gha.annotations([("prod-eu", doc(verdict))]) == []


def test_an_error_is_annotated_with_its_hint():
    document = error_document("No workload found for acme/shop@main", "link one", 4, {})
    assert gha.error_annotation(document) == (
        "::error title=restart-backend%3A error (exit code 4)::"
        "No workload found for acme/shop@main (hint: link one)"
    )


def test_the_summary_is_one_table_over_clusters_and_workloads():
    rows = [
        ("staging", doc(deployedUrls=["https://staging.example.com"], context="staging")),
        ("prod-eu", doc(durationSeconds=75.4)),
        ("prod-us", FAILED),
    ]
    text = gha.render_step_summary(rows)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table == [
        "| cluster (context) | workload | verdict | duration | URLs |",
        "| staging | deployment shop/backend | ✅ complete | 7.2 s | "
        "[https://staging.example.com](https://staging.example.com) |",
        "| prod-eu | deployment shop/backend | ✅ complete | 1 min 15 s | - |",
        "| prod-us | deployment shop/backend | ❌ failed | 7.2 s | - |",
        "| pod | container | status | restarts | detail |",
        "| backend-6d5f7-x2x | app | CrashLoopBackOff | 2 | back-off 20s restarting failed "
        "container; last terminated: Error (exit code 1) |",
    ]
    assert "#### ❌ deployment shop/backend (context prod-us): failed" in text
    assert "backend-old-1" not in text  # old pods never fail a restart


def test_events_and_logs_are_folded_and_cannot_break_out_of_their_block():
    text = gha.render_step_summary([("prod-eu", FAILED)])
    start = text.index("<details><summary>Last events and log lines</summary>")
    block = text[start:]
    assert "````text" in block  # a fence longer than any run of backticks in the lines
    assert "FATAL: db down" in block and "BackOff Pod/backend-6d5f7-x2x: Back-off (x3)" in block
    assert block.rstrip().endswith("</details>")
    assert block.count("````") == 2


def test_cluster_text_cannot_break_a_table_cell_or_inject_html():
    rows = [("a|b", doc(name="x|<img src=y>"))]
    (row,) = [line for line in gha.render_step_summary(rows).splitlines() if "a\\|b" in line]
    assert row.startswith("| a\\|b | deployment shop/x\\|&lt;img src=y&gt; |")


def test_a_url_that_is_not_plain_http_is_not_made_a_link():
    text = gha.render_step_summary([("c", doc(deployedUrls=["javascript:alert(1)"]))])
    assert "](javascript" not in text


def test_the_error_summary_says_what_and_what_to_do():
    document = error_document("cannot watch pods", "ask for list/watch", 5, {}, triggered=True)
    text = gha.render_error_summary(document)
    assert "❌ **error** (exit code 5): cannot watch pods" in text
    assert "hint: ask for list/watch" in text
    assert "goes on in the cluster" in text


@pytest.mark.parametrize(
    "verdict, code, ready, text",
    [
        ("complete", 0, True, "verdict=complete\nexit-code=0\nready=true\n"),
        ("failed", 1, False, "verdict=failed\nexit-code=1\nready=false\n"),
        ("error", 4, False, "verdict=error\nexit-code=4\nready=false\n"),
    ],
)
def test_the_step_outputs(verdict, code, ready, text):
    assert gha.render_outputs(verdict, code, ready) == text


def test_a_cluster_waves_group_is_titled_by_the_waves_first_line():
    assert gha.clusters_group_title("Cluster wave 2 of 2: prod-eu, prod-us") == (
        "restart-backend: cluster wave 2 of 2: prod-eu, prod-us"
    )
    assert gha.clusters_group_title("Status of 2 clusters: a, b") == (
        "restart-backend: status of 2 clusters: a, b"
    )
