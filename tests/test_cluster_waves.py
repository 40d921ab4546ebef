"""The pure rules of cluster waves: which waves, whether the next may start, the exit code,
and how a run of several clusters is said (text and document)."""

from __future__ import annotations

import io

import pytest

from kubectl_restart_backend.cluster_report import (
    cluster_rows,
    clusters_document,
    render_clusters_summary,
)
from kubectl_restart_backend.cluster_waves import (
    ClusterError,
    ClusterResult,
    ClustersOutcome,
    ClusterStatus,
    ClusterWave,
    blocked_by,
    check_from_wave,
    context_of_single_wave,
    flags_replace_waves,
    not_started,
    plan_cluster_waves,
    shared_servers,
    skipped_waves_note,
    worst_cluster_code,
)
from kubectl_restart_backend.console import Console
from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.kinds import DEPLOYMENT
from kubectl_restart_backend.outcome import Outcome, RunOutcome, Verdict
from kubectl_restart_backend.render import Style
from kubectl_restart_backend.rollout import Phase, RolloutState

PLAIN = Style(unicode=True, colour=False)


@pytest.mark.parametrize(
    "flags, file_waves, expected",
    [
        ((), (), ()),
        (("prod-eu",), (), ()),  # one cluster: an ordinary run
        ((), (("staging",),), ()),
        (("staging", "prod-eu", "prod-us"), (),
         ((1, ("staging",)), (2, ("prod-eu",)), (3, ("prod-us",)))),  # one wave per flag
        ((), (("staging",), ("prod-eu", "prod-us")),
         ((1, ("staging",)), (2, ("prod-eu", "prod-us")))),
        ((), (("prod-eu", "prod-us"),), ((1, ("prod-eu", "prod-us")),)),
        (("prod-us",), (("staging",), ("prod-eu", "prod-us")), ()),  # the flag wins: one cluster
        (("b", "a"), (("a",), ("b",)), ((1, ("b",)), (2, ("a",)))),  # the flags' own waves
    ],
)  # fmt: skip
def test_cluster_waves_come_from_repeated_contexts_or_the_files_waves(flags, file_waves, expected):
    waves = plan_cluster_waves(flags, file_waves)
    assert [(w.number, w.contexts) for w in waves] == list(expected)


@pytest.mark.parametrize(
    "flags, file_waves, note",
    [
        ((), (("staging",), ("prod-eu", "prod-us")), ""),
        (("prod-us",), (), ""),
        (("prod-us",), (("staging",), ("prod-eu", "prod-us")),
         "--context prod-us replaces the cluster waves of waves: (F, line 3): staging, then "
         "prod-eu, prod-us"),
        (("a", "b"), (("b", "a"),),
         "--context a, b replaces the cluster waves of waves: (F, line 3): b, a"),
    ],
)  # fmt: skip
def test_context_flags_win_over_the_files_waves_and_say_which_order_they_skip(
    flags, file_waves, note
):
    assert flags_replace_waves(flags, file_waves, "F, line 3") == note


@pytest.mark.parametrize(
    "flags, file_waves, message",
    [
        (("a", "a"), (), "context 'a' is given twice in --context"),
        (("a", "b", "a"), (), "context 'a' is given twice in --context"),
        ((), (("a",), ("b", "a")), "context 'a' is given twice in waves: (F, line 3)"),
        ((), (("a",), ()), "cluster wave 2 of waves: (F, line 3) names no context"),
        (("a", ""), (), "an empty context name in --context"),
        (("a", " "), (), "an empty context name in --context"),
    ],
)
def test_bad_cluster_waves_are_usage_errors(flags, file_waves, message):
    with pytest.raises(UsageError) as caught:
        plan_cluster_waves(flags, file_waves, file_where="F, line 3")
    assert caught.value.message == message
    assert caught.value.hint


@pytest.mark.parametrize(
    "flags, file_waves, expected",
    [
        ((), (("staging",),), "staging"),
        ((), (("a", "b"),), None),
        (("a",), (("staging",),), None),  # both: planning refuses it
        ((), (), None),
    ],
)
def test_a_waves_key_naming_one_cluster_is_an_ordinary_run(flags, file_waves, expected):
    assert context_of_single_wave(flags, file_waves) == expected


def run_of(*verdicts: Verdict) -> RunOutcome:
    return RunOutcome(
        tuple(Outcome(v, app_name=f"app{i}", namespace="shop", context="c", duration_seconds=2.0)
              for i, v in enumerate(verdicts))
    )  # fmt: skip


def done(context: str, *verdicts: Verdict, wave: int = 1) -> ClusterResult:
    return ClusterResult(context, wave, run=run_of(*verdicts), duration_seconds=2.0)


def broken(context: str, code: int = 5, wave: int = 1) -> ClusterResult:
    error = ClusterError(f"cannot reach the API server at https://{context}", "check it", code)
    return ClusterResult(context, wave, error=error, duration_seconds=0.5)


@pytest.mark.parametrize(
    "wave, blocked",
    [
        ([done("a", Verdict.COMPLETE), done("b", Verdict.NO_PODS)], ""),
        ([done("a", Verdict.TRIGGERED), done("b", Verdict.DRY_RUN)], ""),
        ([done("a", Verdict.COMPLETE), done("b", Verdict.FAILED)], "b failed"),
        ([done("a", Verdict.TIMEOUT), done("b", Verdict.FAILED)], "a timed out"),
        ([done("a", Verdict.SUPERSEDED)], "a was superseded"),
        ([done("a", Verdict.COMPLETE, Verdict.FAILED, Verdict.NOT_STARTED)], "a failed"),
        ([done("a", Verdict.INTERRUPTED)], "a was interrupted"),
        ([done("a", Verdict.COMPLETE), broken("b")], "b ended in an error"),
        ([done("a", Verdict.COMPLETE), broken("b", code=130)], "b was interrupted"),
    ],
)
def test_the_next_wave_starts_only_when_every_cluster_of_this_one_succeeded(wave, blocked):
    assert blocked_by(wave) == blocked


def test_clusters_after_a_blocked_wave_are_not_started_with_the_reason():
    results = not_started(ClusterWave(3, ("x", "y")), "b failed")
    assert [(r.context, r.wave, r.status, r.not_started) for r in results] == [
        ("x", 3, ClusterStatus.NOT_STARTED, "b failed"),
        ("y", 3, ClusterStatus.NOT_STARTED, "b failed"),
    ]


@pytest.mark.parametrize(
    "codes, worst",
    [
        ([0, 0], 0),
        ([0, 6, 3], 3),
        ([3, 5], 5),  # an unreachable cluster (not restarted) is worse than a slow one
        ([5, 1], 1),  # a failed restart is the worst verdict
        ([4, 2, 0], 4),  # errors: the first of them
        ([1, 130], 130),
        ([1, 143], 143),
        ([], 0),
    ],
)
def test_the_run_exits_with_its_worst_cluster(codes, worst):
    assert worst_cluster_code(codes) == worst


def two_waves_second_failing() -> ClustersOutcome:
    return ClustersOutcome(
        (ClusterWave(1, ("staging",)), ClusterWave(2, ("prod-eu", "prod-us")),
         ClusterWave(3, ("prod-ap",))),
        (done("staging", Verdict.COMPLETE), done("prod-eu", Verdict.COMPLETE, wave=2),
         done("prod-us", Verdict.FAILED, wave=2),
         *not_started(ClusterWave(3, ("prod-ap",)), "prod-us failed")),
        duration_seconds=5.25,
    )  # fmt: skip


def test_the_table_has_a_row_per_cluster_and_workload():
    assert cluster_rows(two_waves_second_failing()) == [
        ("WAVE", "CONTEXT", "NAMESPACE", "WORKLOAD", "VERDICT", "DURATION"),
        ("1", "staging", "shop", "deployment/app0", "complete", "2.0s"),
        ("2", "prod-eu", "shop", "deployment/app0", "complete", "2.0s"),
        ("2", "prod-us", "shop", "deployment/app0", "failed", "2.0s"),
        ("3", "prod-ap", "-", "-", "not-started", "-"),
    ]


@pytest.mark.parametrize(
    "results, codes, line",
    [
        ([done("a", Verdict.COMPLETE), done("b", Verdict.COMPLETE)], [[0], [0]],
         "✓ 2 of 2 clusters complete (complete: a, b) in 1.0s"),
        ([done("a", Verdict.COMPLETE), done("b", Verdict.FAILED), *not_started(
            ClusterWave(2, ("c",)), "b failed")], [[0], [1], []],
         "✗ 1 of 3 clusters failed (failed: b; not started: c; complete: a) in 1.0s"),
        ([broken("a"), done("b", Verdict.TIMEOUT)], [[], [3]],
         "✗ 1 of 2 clusters ended in an error (error: a; timed out: b) in 1.0s"),
        ([done("a", Verdict.SUPERSEDED)], [[6]],
         "⚠ 1 of 1 clusters were superseded (superseded: a) in 1.0s"),
        ([broken("a", 130)], [[]], "✗ 1 of 1 clusters interrupted (interrupted: a) in 1.0s"),
    ],
)  # fmt: skip
def test_the_summary_line_counts_clusters_worst_first(results, codes, line):
    outcome = ClustersOutcome((), tuple(results), duration_seconds=1.0)
    cluster_codes = [r.error.exit_code if r.error else max(c, default=0)
                     for r, c in zip(results, codes)]  # fmt: skip
    assert render_clusters_summary(outcome, PLAIN, codes, cluster_codes) == line


def test_the_document_sums_up_the_clusters_and_keeps_each_ones_document():
    outcome = ClustersOutcome(
        (ClusterWave(1, ("staging",)), ClusterWave(2, ("prod-eu", "prod-us"))),
        (done("staging", Verdict.COMPLETE), broken("prod-eu", wave=2),
         done("prod-us", Verdict.COMPLETE, wave=2)),
        duration_seconds=3.5,
    )  # fmt: skip
    document = clusters_document(outcome, [[0], [], [0]], [0, 5, 0], 5)
    assert document["verdict"] == "error" and document["exitCode"] == 5
    assert document["error"] == {
        "message": "prod-eu: cannot reach the API server at https://prod-eu",
        "hint": "check it",
    }
    assert document["durationSeconds"] == 3.5 and document["context"] is None
    assert document["waves"] == [["staging"], ["prod-eu", "prod-us"]]
    assert [(c["context"], c["wave"], c["verdict"], c["exitCode"])
            for c in document["clusters"]] == [
        ("staging", 1, "complete", 0), ("prod-eu", 2, "error", 5), ("prod-us", 2, "complete", 0)
    ]  # fmt: skip
    assert set(document["clusters"][0]) - set(document) == {"wave"}  # the rest are summed up


class _Terminal(io.StringIO):
    def isatty(self) -> bool:  # in-place progress is allowed
        return True


def test_a_clusters_lines_start_with_its_context_and_say_progress_once_per_change():
    out = io.StringIO()  # a pipe, a CI log: whole lines
    console = Console("text", out, io.StringIO(), {"TERM": "xterm"})
    lines = console.for_cluster("prod-eu")
    lines.restarting([(DEPLOYMENT, "shop", "backend")], "prod-eu")
    lines.triggered()
    lines.progress(state(Phase.PROGRESSING, 1, 3))
    lines.progress(state(Phase.PROGRESSING, 1, 3))  # the 5 s reminder: said again
    lines.progress_many([("deployment/api", state(Phase.PROGRESSING, 2, 3)),
                         ("statefulset/db", state(Phase.PROGRESSING, 0, 3))])  # fmt: skip
    lines.progress_many([("deployment/api", state(Phase.PROGRESSING, 3, 3)),
                         ("statefulset/db", state(Phase.PROGRESSING, 0, 3))])  # fmt: skip
    lines.notice("pod db-0 is in Error")
    assert out.getvalue().splitlines() == [
        "[prod-eu] Restarting deployment shop/backend (context prod-eu)",
        "[prod-eu] Rolling restart triggered. Waiting for pods to restart...",
        "[prod-eu] Pods: 1/3 ready, rollout in progress...",
        "[prod-eu] Pods: 1/3 ready, rollout in progress...",
        "[prod-eu] deployment/api: Pods: 2/3 ready, rollout in progress...",
        "[prod-eu] statefulset/db: Pods: 0/3 ready, rollout in progress...",
        "[prod-eu] deployment/api: Pods: 3/3 ready, rollout in progress...",
        "[prod-eu] note: pod db-0 is in Error",
    ]
    assert lines.restart_sent and console.restart_triggered
    assert console.notes == ["prod-eu: pod db-0 is in Error"]


def test_on_a_terminal_the_clusters_progress_rows_share_one_block_rewritten_in_place():
    out = _Terminal()
    console = Console("text", out, io.StringIO(), {"TERM": "xterm"})
    eu, us = console.for_cluster("prod-eu"), console.for_cluster("prod-us")
    eu.progress(state(Phase.PROGRESSING, 1, 3))
    us.progress(state(Phase.PROGRESSING, 0, 3))
    eu.progress(state(Phase.PROGRESSING, 2, 3))
    us.notice("pod backend-1 is in Error")  # said above the block, which is written anew
    us.progress(state(Phase.PROGRESSING, 1, 3))
    assert out.getvalue() == (
        "\x1b[K[prod-eu] Pods: 1/3 ready, rollout in progress...\n"
        "\x1b[1F\x1b[K[prod-eu] Pods: 1/3 ready, rollout in progress...\n"
        "\x1b[K[prod-us] Pods: 0/3 ready, rollout in progress...\n"
        "\x1b[2F\x1b[K[prod-eu] Pods: 2/3 ready, rollout in progress...\n"
        "\x1b[K[prod-us] Pods: 0/3 ready, rollout in progress...\n"
        "[prod-us] note: pod backend-1 is in Error\n"
        "\x1b[K[prod-eu] Pods: 2/3 ready, rollout in progress...\n"
        "\x1b[K[prod-us] Pods: 1/3 ready, rollout in progress...\n"
    )


def state(phase: Phase, ready: int, replicas: int) -> RolloutState:
    return RolloutState(
        phase=phase, reason="UpdatingReplicas", message="", ready_replicas=ready,
        replicas=replicas, updated_replicas=ready, failure_reason=None, pods=(),
        new_replicaset="backend-7d9f",
    )  # fmt: skip


@pytest.mark.parametrize(
    "servers, said",
    [
        ({"a": "https://1", "b": "https://2"}, []),
        ({"a": "https://1", "b": "https://1", "c": "https://2"},
         ["contexts a, b reach the same API server (https://1)"]),
        ({"a": "", "b": ""}, []),  # not known: nothing to say
    ],
)  # fmt: skip
def test_contexts_reaching_the_same_api_server_are_said(servers, said):
    warnings = shared_servers(servers)
    assert len(warnings) == len(said) and all(w.startswith(s) for w, s in zip(warnings, said))


# -- --from-wave -----------------------------------------------------------------------------

THREE = (ClusterWave(1, ("staging",)), ClusterWave(2, ("prod-eu", "prod-us")),
         ClusterWave(3, ("prod-ap",)))  # fmt: skip


def test_from_wave_names_the_waves_it_leaves_out():
    assert skipped_waves_note(THREE, 1) == []
    assert skipped_waves_note(THREE, 3) == [
        "--from-wave 3: not restarting cluster wave 1 (staging); wave 2 (prod-eu, prod-us)"
    ]


@pytest.mark.parametrize(
    ("waves", "from_wave", "words"),
    [
        ((), 2, "--from-wave 2 needs cluster waves"),
        (THREE, 4, "--from-wave 4: there are only 3 cluster waves (staging; prod-eu, prod-us; "
                   "prod-ap)"),
    ],
    ids=["one-cluster", "past-the-last"],
)  # fmt: skip
def test_from_wave_outside_the_waves_is_refused(waves, from_wave, words):
    with pytest.raises(UsageError) as refused:
        check_from_wave(waves, from_wave)
    assert words in refused.value.message and refused.value.hint


def test_from_wave_within_the_waves_is_accepted():
    for number in (1, 2, 3):
        check_from_wave(THREE, number)
