"""Cluster waves end to end: the same backend restarted on several simulated clusters (a
`SimFleet`: separate API servers, CAs and tokens, one kubeconfig with a context each), one
cluster wave at a time, through the real kubernetes client."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from kubectl_restart_backend.lease import format_micro_time
from tests.cluster import Behaviour
from tests.events_schema import load_schema, parse_stream, problems
from tests.plugin_runner import interrupt_when, link, patches, run_plugin, start_console_script

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TWO_WAVES = "waves:\n- contexts: [staging]\n- contexts: [prod-eu, prod-us]\n"


def restart(fleet, checkout: Path, *args: str):
    return run_plugin(["--kubeconfig", fleet.kubeconfig, *args], cwd=checkout)


def in_waves(checkout: Path, text: str = TWO_WAVES) -> None:
    (checkout / ".restart-backend.yaml").write_text(text)


def untouched(cluster) -> bool:
    """No PATCH, no restartedAt annotation, no second ReplicaSet: nothing was sent."""
    deployment = cluster.get("deployments", "shop", "backend")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    replicasets = cluster.list("replicasets", "shop")
    return not patches(cluster) and RESTARTED_AT not in annotations and len(replicasets) == 1


def never_contacted(cluster) -> bool:
    """Untouched, and not one request reached it: what the report says of a cluster whose
    wave was not started ("nothing was sent to prod-eu")."""
    return untouched(cluster) and not cluster.requests


def restarted_once(cluster) -> bool:
    deployment = cluster.get("deployments", "shop", "backend")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return len(patches(cluster)) == 1 and RESTARTED_AT in annotations


@pytest.fixture
def linked(fleet):
    for cluster in fleet:
        link(cluster)
    return fleet


def test_a_failing_cluster_of_the_second_wave_stops_the_run_there(linked, checkout):
    fleet = linked
    fleet["prod-us"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    in_waves(checkout)
    run = restart(fleet, checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert restarted_once(fleet["staging"]) and restarted_once(fleet["prod-eu"])
    assert restarted_once(fleet["prod-us"])
    out = run.stdout
    assert out.index("Cluster wave 1 of 2: staging") < out.index(
        "Cluster wave 2 of 2: prod-eu, prod-us"
    )
    assert "[prod-us] Restarting deployment shop/backend (context prod-us)" in out
    assert "== prod-us (cluster wave 2 of 2)\n✗ Restart failed: pod backend-" in out
    assert "CrashLoopBackOff" in out
    rows = table(out)
    assert rows["staging"][3:5] == ["deployment/backend", "complete"]
    assert rows["prod-eu"][3:5] == ["deployment/backend", "complete"]
    assert rows["prod-us"][3:5] == ["deployment/backend", "failed"]
    assert "✗ 1 of 3 clusters failed (failed: prod-us; complete: staging, prod-eu)" in out


def test_a_failing_first_wave_never_touches_the_second(linked, checkout):
    fleet = linked
    fleet["staging"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    in_waves(checkout)
    run = restart(fleet, checkout, "--timeout", "60s", "-o", "json")
    assert run.exit_code == 1, run.output
    assert restarted_once(fleet["staging"])
    assert never_contacted(fleet["prod-eu"]) and never_contacted(fleet["prod-us"])
    assert "Cluster wave 2" not in run.stderr
    document = json.loads(run.stdout)
    assert document["verdict"] == "failed" and document["exitCode"] == 1
    assert document["waves"] == [["staging"], ["prod-eu", "prod-us"]]
    assert [(c["context"], c["wave"], c["verdict"]) for c in document["clusters"]] == [
        ("staging", 1, "failed"),
        ("prod-eu", 2, "not-started"),
        ("prod-us", 2, "not-started"),
    ]
    staging = document["clusters"][0]
    assert staging["appName"] == "backend" and staging["failureReason"].startswith("pod backend-")
    assert document["failureReason"].startswith("staging: pod backend-")
    assert document["clusters"][1]["notes"] == [
        "not restarted: its cluster wave comes after staging failed"
    ]


def test_from_wave_resumes_after_a_fixed_failure_and_leaves_the_earlier_waves_alone(
    linked, checkout
):
    """The run stopped at prod-us; once it is fixed, --from-wave 2 restarts the second wave
    only: staging (done already) is neither restarted again nor contacted."""
    fleet = linked
    in_waves(checkout)
    run = restart(fleet, checkout, "--from-wave", "2", "--timeout", "60s", "-o", "json")
    assert run.exit_code == 0, run.output
    assert never_contacted(fleet["staging"])
    assert restarted_once(fleet["prod-eu"]) and restarted_once(fleet["prod-us"])
    assert "--from-wave 2: not restarting cluster wave 1 (staging)" in run.stderr
    assert "Cluster wave 2 of 2: prod-eu, prod-us" in run.stderr
    document = json.loads(run.stdout)
    assert document["verdict"] == "complete" and document["fromWave"] == 2
    assert document["waves"] == [["staging"], ["prod-eu", "prod-us"]]
    assert [(c["context"], c["wave"]) for c in document["clusters"]] == [
        ("prod-eu", 2),
        ("prod-us", 2),
    ]


def test_every_cluster_restarted_once_when_all_succeed(linked, checkout):
    fleet = linked
    run = restart(
        fleet, checkout, "--context", "staging", "--context", "prod-eu", "--context", "prod-us"
    )
    assert run.exit_code == 0, run.output
    assert all(restarted_once(cluster) for cluster in fleet)
    out = run.stdout
    for number, context in enumerate(fleet.names, 1):  # one wave per --context, in order
        assert f"Cluster wave {number} of 3: {context}\n" in out
    assert out.count("✓ Rolling restart complete for backend") == 3
    assert "✓ 3 of 3 clusters complete (complete: staging, prod-eu, prod-us)" in out
    assert [row[:2] for row in table(out).values()] == [["1", "staging"], ["2", "prod-eu"],
                                                         ["3", "prod-us"]]  # fmt: skip


def test_undo_on_failure_undoes_only_the_failed_cluster(linked, checkout):
    fleet = linked
    fleet["prod-us"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    in_waves(checkout)
    run = restart(fleet, checkout, "--undo-on-failure", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert [len(patches(fleet[name])) for name in fleet.names] == [1, 1, 2]  # restart, undo
    assert "[prod-us] note: rolling back deployment shop/backend to revision 1" in run.stdout
    assert "↩ Rolled back to revision 1" in run.stdout
    for name in ("staging", "prod-eu"):
        annotations = fleet[name].get("deployments", "shop", "backend")["spec"]["template"][
            "metadata"
        ]["annotations"]
        assert RESTARTED_AT in annotations  # kept: these succeeded
    undone = fleet["prod-us"].get("deployments", "shop", "backend")["spec"]["template"]
    assert RESTARTED_AT not in (undone["metadata"].get("annotations") or {})


def test_an_unreachable_cluster_fails_its_wave_with_one_clear_line(linked, checkout):
    fleet = linked
    fleet.make_unreachable("prod-eu")
    in_waves(checkout, "waves:\n- contexts: [prod-eu, prod-us]\n- contexts: [staging]\n")
    run = restart(fleet, checkout)
    assert run.exit_code == 5, run.output
    port = fleet["prod-eu"].port
    line = f"✗ prod-eu: cannot reach the API server at https://127.0.0.1:{port}"
    assert line in run.stdout
    assert "Traceback" not in run.output
    assert restarted_once(fleet["prod-us"])  # its wave-mate went ahead, and succeeded
    assert never_contacted(fleet["staging"])
    rows = table(run.stdout)
    assert rows["prod-eu"][4] == "error" and rows["staging"][4] == "not-started"
    assert "(error: prod-eu; not started: staging; complete: prod-us)" in run.stdout


def test_a_context_the_kubeconfig_does_not_have_changes_no_cluster(linked, checkout):
    fleet = linked
    in_waves(checkout, "waves:\n- contexts: [staging]\n- contexts: [prod-eu, prod-ap]\n")
    run = restart(fleet, checkout)
    assert run.exit_code == 2, run.output
    error, hint = run.stderr.splitlines()
    assert error.startswith("error: Context 'prod-ap' is not in the kubeconfig")
    assert error.endswith(".restart-backend.yaml, line 1)") and hint.startswith("hint: ")
    assert all(untouched(cluster) for cluster in fleet)


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["--context", "staging", "--context", "staging"], "",
         "error: context 'staging' is given twice in --context"),
        ([], "waves:\n- contexts: []\n",
         ".restart-backend.yaml: line 2: key 'waves': wave 1 must name at least one"),
        ([], "waves:\n- contexts: [staging]\n- contexts: [prod-eu, staging]\n",
         ".restart-backend.yaml: line 2: key 'waves': context 'staging' is in two waves"),
        ([], "context: staging\n" + TWO_WAVES,
         ".restart-backend.yaml: line 2: key 'waves': cannot be set beside 'context'"),
        (["--context", "staging", "--context", "prod-eu", "--token", "t0ken"], "",
         "error: --token applies to one cluster"),
        (["--context", "staging", "--context", "prod-eu", "--no-wait"], "",
         "error: --no-wait cannot keep cluster waves"),
        (["--context", "staging", "--context", "nowhere"], "",
         "error: Context 'nowhere' is not in the kubeconfig"),
        (["status", "--context", "staging", "--context", "prod-eu", "--token", "t0ken"], "",
         "error: --token applies to one cluster, and this status runs on several"),
        (["list", "--context", "staging", "--context", "prod-eu"], "",
         "error: --context is given 2 times: only the restart and status run on several"),
        (["--from-wave", "3"], TWO_WAVES,
         "error: --from-wave 3: there are only 2 cluster waves (staging; prod-eu, prod-us)"),
        (["--context", "staging", "--from-wave", "2"], "",
         "error: --from-wave 2 needs cluster waves, and this restart runs on one cluster"),
        (["--from-wave", "0"], TWO_WAVES, "Invalid value for '--from-wave'"),
    ],
    ids=["duplicate", "empty-wave", "twice-in-waves", "context-and-waves",
         "token", "no-wait", "unknown-context", "status-token", "list",
         "from-wave-past-the-last", "from-wave-of-one-cluster", "from-wave-zero"],
)  # fmt: skip
def test_bad_cluster_waves_are_refused_before_any_cluster_is_touched(
    linked, checkout, args, config, message
):
    if config:
        in_waves(checkout, config)
    subcommand = args[:1] if args[:1] in (["status"], ["list"]) else []
    run = run_plugin(
        [*subcommand, "--kubeconfig", linked.kubeconfig, *args[len(subcommand) :]], cwd=checkout
    )
    assert run.exit_code == 2, run.output
    lines = run.stderr.splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: ")
    assert lines[0].startswith("error: ") and message in lines[0]
    assert all(untouched(cluster) for cluster in linked)


def test_a_branch_entry_restarts_in_waves_where_the_top_level_names_one_context(linked, checkout):
    in_waves(checkout, "context: staging\nbranches:\n  main:\n    " + TWO_WAVES.replace(
        "\n", "\n    ").rstrip() + "\n")  # fmt: skip
    run = restart(linked, checkout, "--dry-run")
    assert run.exit_code == 0, run.output
    assert run.stdout.count("Nothing was changed.") == 3
    assert all(not patches(cluster) for cluster in linked)


def test_a_real_process_restarts_two_waves_and_exits_with_the_worst_code(linked, checkout):
    fleet = linked
    fleet["prod-eu"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    in_waves(checkout)
    process = start_console_script(
        fleet["staging"], checkout, "-o", "yaml", "--timeout", "60s", kubeconfig=fleet.kubeconfig
    )
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    document = yaml.safe_load(stdout)
    verdicts = {c["context"]: c["verdict"] for c in document["clusters"]}
    assert verdicts == {"staging": "complete", "prod-eu": "failed", "prod-us": "complete"}
    assert document["context"] is None and document["exitCode"] == 1
    assert "[prod-eu] Restarting deployment shop/backend (context prod-eu)" in stderr


def watching(cluster) -> bool:
    """The plugin has patched the cluster and opened its watches: it is waiting for pods."""
    return bool(patches(cluster)) and any(r.is_watch for r in cluster.requests)


def table(text: str) -> dict[str, list[str]]:
    """The rows of the combined report's table, by context."""
    lines = text.split("\nClusters:\n", 1)[1].splitlines()
    rows = [line.split() for line in lines[1:] if line.startswith("  ")]
    return {row[1]: row for row in rows}


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_during_a_wave_interrupts_its_clusters_and_starts_no_other(
    linked, checkout, sig, code
):
    fleet = linked
    fleet["prod-eu"].set_behaviour("shop", "backend", Behaviour.never_ready())
    in_waves(checkout, "waves:\n- contexts: [prod-eu, prod-us]\n- contexts: [staging]\n")
    process = start_console_script(
        fleet["prod-eu"], checkout, "--timeout", "5m", kubeconfig=fleet.kubeconfig
    )
    exit_code, stdout, stderr = interrupt_when(
        fleet["prod-eu"], process, lambda: watching(fleet["prod-eu"]), sig=sig
    )
    assert exit_code == code, stdout + stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    rows = table(stdout)
    assert rows["prod-eu"][4] == "interrupted" and rows["staging"][4] == "not-started"
    assert "Interrupted. The restart goes on in the cluster; to keep watching run:" in stdout
    assert "kubectl restart-backend status --deployment backend -n shop --context prod-eu" in stdout
    assert never_contacted(fleet["staging"])


def test_context_on_the_command_line_replaces_the_files_waves_and_says_so(linked, checkout):
    fleet = linked
    in_waves(checkout)
    run = restart(fleet, checkout, "--context", "prod-us")
    assert run.exit_code == 0, run.output
    note = next(line for line in run.output.splitlines() if line.startswith("note: --context"))
    assert note.startswith("note: --context prod-us replaces the cluster waves of waves: (")
    assert note.endswith(".restart-backend.yaml, line 1): staging, then prod-eu, prod-us")
    assert "Restarting deployment shop/backend (context prod-us)" in run.stdout
    assert "Cluster wave" not in run.stdout  # one cluster: the ordinary run
    assert restarted_once(fleet["prod-us"])
    assert untouched(fleet["staging"]) and untouched(fleet["prod-eu"])


def test_an_unknown_context_given_over_the_files_waves_is_blamed_on_the_flag(linked, checkout):
    in_waves(checkout)
    run = restart(linked, checkout, "--context", "staging", "--context", "nowhere")
    assert run.exit_code == 2, run.output
    error = next(line for line in run.stderr.splitlines() if line.startswith("error: "))
    assert "Context 'nowhere' is not in the kubeconfig" in error
    assert ".restart-backend.yaml" not in error  # the flag named it, not the file
    assert all(untouched(cluster) for cluster in linked)


def test_status_of_several_clusters_watches_them_together_and_changes_nothing(linked, checkout):
    run = run_plugin(
        ["status", "--kubeconfig", linked.kubeconfig, "--context", "prod-us", "--context",
         "staging"],
        cwd=checkout,
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    out = run.stdout
    assert "Status of 2 clusters: prod-us, staging" in out
    assert "[prod-us] Watching deployment shop/backend (context prod-us)" in out
    assert "== prod-us\n" in out and "== staging\n" in out and "cluster wave" not in out
    rows = table(out)
    assert rows["prod-us"][3:5] == ["deployment/backend", "complete"]
    assert rows["staging"][3:5] == ["deployment/backend", "complete"]
    assert "prod-eu" not in rows
    assert all(untouched(cluster) for cluster in linked)


def test_status_with_waves_in_the_file_watches_every_cluster_and_names_a_failed_one(
    linked, checkout
):
    fleet = linked
    fleet["prod-eu"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    broken = restart(fleet, checkout, "--context", "prod-eu", "--no-wait")
    assert broken.exit_code == 0, broken.output
    in_waves(checkout)
    run = run_plugin(
        ["status", "--kubeconfig", fleet.kubeconfig, "--timeout", "60s", "-o", "json"],
        cwd=checkout,
    )
    assert run.exit_code == 1, run.output
    document = json.loads(run.stdout)
    verdicts = {c["context"]: c["verdict"] for c in document["clusters"]}
    assert verdicts == {"staging": "complete", "prod-eu": "failed", "prod-us": "complete"}
    assert "CrashLoopBackOff" in json.dumps(document["clusters"][1])
    assert untouched(fleet["staging"]) and untouched(fleet["prod-us"])
    assert len(patches(fleet["prod-eu"])) == 1  # the restart above; status sent nothing


def test_list_with_waves_in_the_file_says_which_one_cluster_it_lists(linked, checkout):
    in_waves(checkout)
    run = run_plugin(["list", "--kubeconfig", linked.kubeconfig], cwd=checkout)
    assert run.exit_code == 0, run.output
    assert "names several clusters; this command works on one: context staging" in run.output


def test_two_contexts_of_one_api_server_are_said_before_anything_is_sent(linked, checkout):
    config = yaml.safe_load(Path(linked.kubeconfig).read_text())
    staging = next(c for c in config["contexts"] if c["name"] == "staging")
    config["contexts"].append({"name": "staging-admin", "context": dict(staging["context"])})
    kubeconfig = checkout.parent / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    run = run_plugin(
        ["--kubeconfig", str(kubeconfig), "--context", "staging", "--context", "staging-admin"],
        cwd=checkout,
    )
    assert run.exit_code == 0, run.output
    note = "note: contexts staging, staging-admin reach the same API server (https://127.0.0.1:"
    assert run.stdout.index(note) < run.stdout.index("Cluster wave 1 of 2: staging")
    assert len(patches(linked["staging"])) == 2  # said, not refused: both waves ran


def test_each_cluster_takes_its_own_lock_and_one_held_elsewhere_fails_its_wave(linked, checkout):
    fleet = linked
    now = format_micro_time(datetime.now(timezone.utc))
    fleet["prod-eu"].create("leases", {
        "metadata": {"name": "restart-backend.deployment.backend", "namespace": "shop"},
        "spec": {"holderIdentity": "ci@runner-7 (pid 42, kubectl-restart-backend, run 1a2b3c)",
                 "leaseDurationSeconds": 30, "acquireTime": now, "renewTime": now},
    })  # fmt: skip
    in_waves(checkout, "waves:\n- contexts: [staging]\n- contexts: [prod-eu, prod-us]\n")
    run = restart(linked, checkout, "--no-wait-lock")
    assert run.exit_code == 5, run.output
    assert "✗ prod-eu: deployment shop/backend is being restarted by ci@runner-7" in run.stdout
    assert restarted_once(fleet["staging"]) and restarted_once(fleet["prod-us"])
    assert not patches(fleet["prod-eu"])
    for name in ("staging", "prod-us"):  # each given back its own Lease
        lease = fleet[name].get("leases", "shop", "restart-backend.deployment.backend")
        assert "holderIdentity" not in lease["spec"]


def test_the_event_stream_of_several_clusters_names_each_ones_context(linked, checkout):
    fleet = linked
    fleet["prod-us"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    in_waves(checkout)
    run = restart(fleet, checkout, "-o", "ndjson", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    stream = parse_stream(run.stdout)
    schema = load_schema()
    for event in stream:
        assert problems(event, schema) == [], event
    by_context: dict = {}
    for event in stream[:-1]:
        by_context.setdefault(event["context"], []).append(event["type"])
    assert set(by_context) == {"staging", "prod-eu", "prod-us"}
    for context, kinds in by_context.items():
        assert kinds[:2] == ["resolved", "triggered"], (context, kinds)
        assert kinds[-1] == "verdict" and "progress" in kinds
    assert "trouble" in by_context["prod-us"]
    verdicts = {e["context"]: e["verdict"] for e in stream if e["type"] == "verdict"}
    assert verdicts == {"staging": "complete", "prod-eu": "complete", "prod-us": "failed"}
    last = stream[-1]
    assert last["type"] == "run" and last["exitCode"] == 1 and last["context"] is None
    assert [c["context"] for c in last["document"]["clusters"]] == list(fleet.names)
    assert "[prod-us] Restarting deployment shop/backend (context prod-us)" in run.stderr


def test_github_actions_get_one_summary_and_annotations_over_every_cluster(
    linked, checkout, tmp_path
):
    fleet = linked
    fleet["prod-us"].set_behaviour("shop", "backend", Behaviour.crash_loop())
    fleet.make_unreachable("prod-eu")
    in_waves(checkout)
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
              "GITHUB_OUTPUT": str(output)}  # fmt: skip
    run = run_plugin(
        ["--kubeconfig", fleet.kubeconfig, "--timeout", "60s"], cwd=checkout, env=github
    )
    assert run.exit_code == 1, run.output
    text = summary.read_text()
    assert "| staging | deployment shop/backend | ✅ complete |" in text
    assert "| prod-eu | - | ❌ error |" in text
    assert "| prod-us | deployment shop/backend | ❌ failed |" in text
    assert "::error title=Restart failed%3A deployment shop/backend (context prod-us)::" in (
        run.stdout
    )
    assert "::error title=restart-backend%3A error (exit code 5)::prod-eu: cannot reach" in (
        run.stdout
    )
    assert "verdict=failed" in output.read_text() and "exit-code=1" in output.read_text()
    # One group per cluster wave (the clusters of a wave report at once: no group per cluster).
    commands = [line for line in run.stdout.splitlines() if line.startswith("::")]
    groups = [line for line in commands if line.startswith(("::group::", "::endgroup::"))]
    assert groups == [
        "::group::restart-backend: cluster wave 1 of 2: staging",
        "::endgroup::",
        "::group::restart-backend: cluster wave 2 of 2: prod-eu, prod-us",
        "::endgroup::",
    ], commands
    assert commands.index("::endgroup::") < commands.index(groups[2])
