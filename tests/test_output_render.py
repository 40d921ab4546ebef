"""Issue 16, output items, pure parts: wording, width, error documents, encodings, streams."""

from __future__ import annotations

import io
import json
import os

import pytest

from kubectl_restart_backend.cli import requested_output
from kubectl_restart_backend.config_file import parse_repo_config
from kubectl_restart_backend.console import OutputStream, write_unencodable_as_utf8
from kubectl_restart_backend.linking import is_linked_to, link_of
from kubectl_restart_backend.outcome import Outcome, Verdict
from kubectl_restart_backend.render import (
    Style,
    display_width,
    error_document,
    fit_to_width,
    outcome_document,
    render_outcome,
    render_progress,
    render_target,
    render_triggered,
)
from kubectl_restart_backend.repo_url import parse_repo_option
from kubectl_restart_backend.rollout import Phase
from tests.test_render import pod
from tests.test_render import state as render_state

PLAIN = Style(unicode=True, colour=False)


def state(phase, ready, replicas, *, reason="UpdatingReplicas", message="", pods=()):
    return render_state(phase, ready, replicas, pods=pods, reason=reason, message=message)


def outcome(verdict, st=None, **extra):
    return Outcome(verdict, app_name="backend", namespace="shop", context="sim", state=st, **extra)


# -- item 21: the progress line says what is awaited when the count does not ----------------


@pytest.mark.parametrize(
    ("st", "line"),
    [
        pytest.param(
            state(Phase.PROGRESSING, 1, 3, reason="WaitingForReadyPods", message="1 of 3 new"),
            "Pods: 1/3 ready, rollout in progress...",
            id="count-explains",
        ),
        pytest.param(
            state(
                Phase.PROGRESSING,
                3,
                3,
                reason="OldReplicasPendingTermination",
                message="2 old replicas are pending termination",
            ),
            "Pods: 3/3 ready, rollout in progress... (2 old replicas are pending termination)",
            id="all-ready-old-pods-left",
        ),
        pytest.param(
            state(
                Phase.PROGRESSING,
                3,
                3,
                reason="WaitingForAvailableReplicas",
                message="2 of 3 updated replicas are available",
            ),
            "Pods: 3/3 ready, rollout in progress... (2 of 3 updated replicas are available)",
            id="all-ready-min-ready-seconds",
        ),
        pytest.param(
            state(
                Phase.WAITING,
                0,
                3,
                reason="WaitingForObservation",
                message="waiting for the deployment controller to observe generation 4; "
                "last observed 3",
            ),
            "Pods: 0/3 ready, rollout in progress... (waiting for the deployment controller to "
            "observe generation 4; last observed 3)",
            id="controller-not-there-yet",
        ),
    ],
)
def test_progress_line_keeps_the_specs_words_and_says_what_is_awaited(st, line):
    assert render_progress(st) == line


# -- item 21: the timeout's Current line tells new pods from old ones ------------------------


def old(name, *, ready=True, status="Running"):
    return pod(name, is_new=False, ready=ready, failing=False, status=status, replicaset="old")


@pytest.mark.parametrize(
    ("pods", "current"),
    [
        pytest.param([], "Current: 0/3 ready (new pods)", id="no-old-pods"),
        pytest.param(
            [old("a"), old("b"), old("c")],
            "Current: 0/3 ready (new pods; 3 old pods still ready)",
            id="old-pods-serve",
        ),
        pytest.param(
            [old("a"), old("b", ready=False), old("c", status="Terminating")],
            "Current: 0/3 ready (new pods; 1 old pod still ready)",
            id="unready-and-terminating-old-pods-do-not-count",
        ),
    ],
)
def test_timeout_current_line_tells_new_pods_from_old_ones(pods, current):
    lines = render_outcome(
        outcome(Verdict.TIMEOUT, state(Phase.PROGRESSING, 0, 3, pods=pods)), PLAIN
    )
    assert lines.splitlines()[:3] == [
        "⚠ Restart timeout - pods may still be cycling",
        current,
        "Check pod status manually or try again",
    ]


# -- item 21: scaled to 0 mid-rollout, --no-wait ---------------------------------------------


def test_a_deployment_scaled_to_zero_mid_rollout_does_not_claim_healthy_pods():
    st = state(Phase.COMPLETE, 0, 0, reason="Complete")
    lines = render_outcome(outcome(Verdict.COMPLETE, st), PLAIN).splitlines()
    assert lines == [
        "✓ Rolling restart complete for backend",
        "No pods running: deployment shop/backend was scaled to 0 replicas during the restart",
    ]


def test_no_wait_says_triggered_without_waiting():
    assert render_triggered(waiting=False) == "Rolling restart triggered."
    assert render_triggered() == "Rolling restart triggered. Waiting for pods to restart..."


# -- item 15: which Deployment, where --------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "line"),
    [
        ("prod-eu", "Restarting deployment shop/backend (context prod-eu)"),
        ("", "Restarting deployment shop/backend"),
        ("evil\x1b[2Jctx", "Restarting deployment shop/backend (context evilctx)"),
    ],
)
def test_target_line_names_namespace_deployment_and_context(context, line):
    assert render_target("Restarting", "shop", "backend", context) == line


# -- item 17: the in-place line fits the terminal --------------------------------------------

LINE = "Pods: 1/3 ready, rollout in progress..."


@pytest.mark.parametrize(
    ("width", "unicode", "fitted"),
    [
        (None, True, LINE),
        (80, True, LINE),
        (len(LINE) + 1, True, LINE),
        (len(LINE), True, LINE[: len(LINE) - 2] + "…"),
        (20, True, "Pods: 1/3 ready, r…"),
        (20, False, "Pods: 1/3 ready,..."),
        (2, True, "…"),
        (1, True, LINE),  # no room at all: nothing sensible to cut to
    ],
)
def test_in_place_line_is_cut_to_the_terminal_width(width, unicode, fitted):
    assert fit_to_width(LINE, width, unicode) == fitted
    if width and width > 1:
        assert display_width(fit_to_width(LINE, width, unicode)) <= width - 1


def test_wide_characters_count_twice_when_fitting():
    line = "Pods: 1/3 ready (pod 日本語ブランチ)"
    fitted = fit_to_width(line, 25)
    assert display_width(fitted) == 24
    assert fitted.endswith("…") and fitted.startswith("Pods: 1/3 ready (pod 日")


# -- item 14: an error is a document too -----------------------------------------------------


@pytest.mark.parametrize("code", [2, 4, 5, 6, 130])
def test_error_document_has_the_outcome_keys_for_any_exit_code(code):
    known = {"appName": "backend", "namespace": "shop", "repo": "acme/shop", "branch": "main"}
    doc = error_document("it broke", "do this", code, known, notes=["n"], duration_seconds=0.25)
    reference = outcome_document(outcome(Verdict.COMPLETE, state(Phase.COMPLETE, 3, 3)), 0)
    assert list(doc) == list(reference)
    assert doc["verdict"] == "error" and doc["exitCode"] == code
    assert doc["error"] == {"message": "it broke", "hint": "do this"}
    assert (doc["appName"], doc["namespace"], doc["context"]) == ("backend", "shop", None)
    assert (doc["ready"], doc["failed"], doc["timedOut"], doc["rolloutInProgress"]) == (
        False,
        False,
        False,
        False,
    )
    assert doc["notes"] == ["n"] and doc["durationSeconds"] == 0.25
    assert reference["error"] is None
    json.dumps(doc)


def test_error_document_says_the_rollout_goes_on_when_the_restart_was_sent():
    doc = error_document("cannot watch pods", "", 5, {}, triggered=True)
    assert doc["rolloutInProgress"] is True
    assert doc["error"] == {"message": "cannot watch pods", "hint": None}


@pytest.mark.parametrize(
    ("args", "output"),
    [
        ([], "text"),
        (["-o", "json"], "json"),
        (["-ojson"], "json"),
        (["-o=yaml"], "yaml"),
        (["--output", "yaml", "--timeout", "x"], "yaml"),
        (["--output=json"], "json"),
        (["-o", "xml"], "text"),
        (["--", "-o", "json"], "text"),
        (["status", "-o", "json", "--nope"], "json"),
        (["-o"], "text"),
    ],
)
def test_requested_output_is_read_from_raw_arguments(args, output):
    assert requested_output(args) == output


# -- item 21: where a setting of the config file came from -----------------------------------

CONFIG = """\
context: prod-eu
namespace: shop
branches:
  "release/*":
    context: staging
  "feature/*":
    context: null
"""


@pytest.mark.parametrize(
    ("branch", "where"),
    [
        ("main", ".restart-backend.yaml, line 1"),
        ("release/1.4", ".restart-backend.yaml, line 5"),
        ("feature/x", None),
    ],
)
def test_config_file_says_which_line_set_a_value(branch, where):
    assert parse_repo_config(CONFIG).where("context", branch) == where


# -- item 21: what a Deployment chosen by name is linked to ----------------------------------

REPO = parse_repo_option("acme/shop")


def deployment(labels=None, annotations=None):
    return {"metadata": {"name": "api", "labels": labels or {}, "annotations": annotations or {}}}


@pytest.mark.parametrize(
    ("obj", "link", "linked_here"),
    [
        (deployment(), (None, None), False),
        (
            deployment(
                {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"},
                {"restart-backend/repo": "acme/shop", "restart-backend/branch": "main"},
            ),
            ("acme/shop", "main"),
            True,
        ),
        (
            deployment({"restart-backend/repo": "acme-shop", "restart-backend/branch": "release"}),
            ("acme-shop", "release"),
            False,
        ),
        (
            deployment(
                {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"},
                {"restart-backend/branch": "Main"},
            ),
            ("acme-shop", "Main"),
            False,
        ),
    ],
)
def test_link_of_a_deployment_and_whether_it_is_this_checkouts(obj, link, linked_here):
    assert link_of(obj) == link
    assert is_linked_to(obj, REPO, "main") is linked_here


def test_dry_run_of_an_unlinked_deployment_chosen_by_name_says_so():
    text = render_outcome(outcome(Verdict.DRY_RUN, plan={"permissions": {}}), PLAIN)
    assert "Linked to: no repo (chosen by name)" in text.splitlines()


# -- item 21: ASCII locales ------------------------------------------------------------------


def test_an_ascii_stream_writes_what_it_cannot_encode_as_utf8():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="backslashreplace")
    write_unencodable_as_utf8(stream)
    # from argv under an ASCII locale (surrogate-escaped bytes), and a real character
    stream.write("--branch=fix-\udcc3\udc9c annotate branch=fix-Ü\n")
    stream.flush()
    assert raw.getvalue() == "--branch=fix-Ü annotate branch=fix-Ü\n".encode()


# -- item 7: a reader that went away ---------------------------------------------------------


def test_writing_to_a_closed_pipe_stops_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w", encoding="utf-8")
    out = OutputStream(stream)
    assert out.write("Restarting deployment shop/backend\n") is False
    assert out.closed
    assert out.write("more\n") is False
    stream.write("still buffered\n")
    stream.close()  # flushes into /dev/null now: no BrokenPipeError at exit
