"""Issue 16, output items, end to end against the simulated cluster (in-process runs)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.cluster import rule
from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import link, make_checkout, patches, run_plugin


def plugin(cluster, cwd, *args, kubeconfig=None):
    return run_plugin([*args, "--kubeconfig", kubeconfig or cluster.kubeconfig], cwd=cwd)


# -- item 4: --timeout 0 means no timeout ---------------------------------------------------


def test_timeout_zero_watches_until_the_verdict(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--timeout", "0")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for backend" in run.stdout
    assert len(patches(cluster)) == 1


def test_timeout_zero_in_the_config_file_watches_until_the_verdict(cluster, checkout):
    link(cluster)
    (checkout / ".restart-backend.yaml").write_text("timeout: 0s\n")
    run = plugin(cluster, checkout)
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for backend" in run.stdout


def test_timeout_zero_still_reports_a_failure(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = plugin(cluster, checkout, "--timeout", "0")
    assert run.exit_code == 1, run.output
    assert "✗ Restart failed" in run.stdout


# -- item 15: which Deployment, in which namespace and context --------------------------------


def test_text_mode_names_the_target_before_the_specs_triggered_line(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--no-wait")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[:2] == [
        "Restarting deployment shop/backend (context sim)",
        "Rolling restart triggered.",
    ]


def test_status_names_the_deployment_it_watches(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "status")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[0] == "Watching deployment shop/backend (context sim)"


def test_json_mode_names_the_target_on_stderr_only(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "-o", "json", "--no-wait")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verdict"] == "triggered"
    assert "Restarting deployment shop/backend (context sim)" in run.stderr.splitlines()


# -- item 21: --no-wait wording, --no-wait with --undo-on-failure -----------------------------


def test_no_wait_never_says_it_waits(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--no-wait")
    assert run.exit_code == 0, run.output
    assert "Waiting for pods" not in run.output
    assert run.stdout.splitlines()[-1].startswith("Not waiting (--no-wait). Follow it with: ")


def test_no_wait_with_undo_on_failure_is_refused_before_anything_is_sent(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--no-wait", "--undo-on-failure")
    assert run.exit_code == 2, run.output
    assert run.stderr.startswith("error: --undo-on-failure needs to watch the rollout")
    assert "\nhint: drop one of them" in run.stderr
    assert not cluster.requests


# -- item 14: errors are documents in -o json|yaml --------------------------------------------


def load(fmt, text):
    return json.loads(text) if fmt == "json" else yaml.safe_load(text)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_no_deployment_found_writes_an_error_document(cluster, checkout, fmt):
    run = plugin(cluster, checkout, "-o", fmt)
    assert run.exit_code == 4, run.output
    doc = load(fmt, run.stdout)
    assert doc["verdict"] == "error" and doc["exitCode"] == 4
    assert doc["error"]["message"].startswith("No workload found for acme/shop@main")
    assert "kubectl restart-backend link" in doc["error"]["hint"]
    assert (doc["repo"], doc["branch"], doc["context"]) == ("acme/shop", "main", "sim")
    assert run.stderr.startswith("error: No workload found")


def test_a_refused_restart_writes_an_error_document_with_the_target(cluster, checkout):
    link(cluster, paused=True)
    run = plugin(cluster, checkout, "-o", "json")
    assert run.exit_code == 5, run.output
    doc = json.loads(run.stdout)
    assert doc["exitCode"] == 5 and "is paused" in doc["error"]["message"]
    assert doc["rolloutInProgress"] is False


def test_bad_input_writes_an_error_document(cluster, tmp_path):
    run = run_plugin(["-o", "json", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "error" and doc["exitCode"] == 2
    assert "Not a git checkout" in doc["error"]["message"]


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "json", "--timeout", "soon"],
        ["--output=json", "--no-such-flag"],
        ["status", "-ojson", "--logs", "-1"],
    ],
)
def test_a_flag_mistake_writes_an_error_document(tmp_path, args):
    run = run_plugin(args, cwd=tmp_path)
    assert run.exit_code == 2, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "error" and doc["exitCode"] == 2
    assert doc["error"]["hint"].startswith("see 'kubectl restart-backend")
    assert run.stderr.startswith("error: ")


def test_list_errors_write_a_list_shaped_document(cluster, tmp_path):
    run = run_plugin(["list", "-o", "yaml", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    doc = yaml.safe_load(run.stdout)
    assert doc["items"] == [] and doc["exitCode"] == 2
    assert "--repo" in doc["error"]["hint"]


def test_an_error_after_the_restart_was_sent_says_the_rollout_goes_on(cluster, checkout):
    link(cluster)
    cluster.add_user(
        "patcher",
        "patcher-token",
        [
            rule(["get", "list", "watch", "patch"], ["deployments"], "apps", namespaces=None),
            rule(["list", "watch"], ["replicasets"], "apps", namespaces=None),
        ],
    )
    kubeconfig = cluster.write_kubeconfig(user="patcher", context="patcher", namespace="shop")
    run = plugin(cluster, checkout, "-o", "json", kubeconfig=kubeconfig)
    assert run.exit_code == 5, run.output
    assert len(patches(cluster)) == 1
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "error" and doc["rolloutInProgress"] is True
    assert (doc["appName"], doc["namespace"], doc["context"]) == ("backend", "shop", "patcher")
    assert "the restart was triggered" in doc["error"]["hint"]


# -- item 21: a Deployment chosen by name says what it is linked to ---------------------------


def test_dry_run_of_a_config_file_deployment_says_the_branch_it_is_linked_to(cluster, checkout):
    link(
        cluster,
        "shop",
        "backend-release",
        labels={"restart-backend/repo": "acme-shop", "restart-backend/branch": "release"},
        annotations={"restart-backend/repo": "acme/shop", "restart-backend/branch": "release"},
    )
    (checkout / ".restart-backend.yaml").write_text(
        "namespace: shop\ndeployment: backend-release\n"
    )
    run = plugin(cluster, checkout, "--dry-run")
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert "Linked to: acme/shop@release" in lines
    assert "Linked to: acme/shop@main" not in lines
    assert (
        "note: deployment shop/backend-release is linked to acme/shop@release, not to this "
        "checkout's acme/shop@main"
    ) in lines


def test_a_named_deployment_linked_to_this_checkout_gets_no_note(cluster, checkout):
    link(cluster)
    run = plugin(cluster, checkout, "--dry-run", "--deployment", "backend", "-n", "shop")
    assert run.exit_code == 0, run.output
    assert "Linked to: acme/shop@main" in run.stdout.splitlines()
    assert "note:" not in run.output


# -- item 10 and 21: list works without a branch, and looks where the restart looks ----------


def test_list_with_repo_works_outside_a_checkout(cluster, tmp_path):
    link(cluster)
    run = run_plugin(
        ["list", "--repo", "acme/shop", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path
    )
    assert run.exit_code == 0, run.output
    assert [row.split()[:5] for row in run.stdout.splitlines()[1:]] == [
        ["shop", "deployment", "backend", "acme/shop", "main"]
    ]


def test_list_works_on_a_detached_head(cluster, checkout):
    link(cluster)
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=checkout, check=True)
    run = plugin(cluster, checkout, "list")
    assert run.exit_code == 0, run.output
    assert "backend" in run.stdout


def test_list_outside_a_checkout_hints_at_flags_list_accepts(cluster, tmp_path):
    run = run_plugin(["list", "--kubeconfig", cluster.kubeconfig], cwd=tmp_path)
    assert run.exit_code == 2, run.output
    hint = run.stderr.splitlines()[1]
    assert hint.startswith("hint: ") and "--repo OWNER/NAME" in hint and "--all-repos" in hint
    assert "--branch" not in hint


def test_list_looks_in_all_namespaces_like_the_restart(cluster, checkout):
    link(cluster, "shop", "backend")  # the context's namespace is "default"
    run = plugin(cluster, checkout, "list")
    assert run.exit_code == 0, run.output
    assert [row.split()[:3] for row in run.stdout.splitlines()[1:]] == [
        ["shop", "deployment", "backend"]
    ]
    restart = plugin(cluster, checkout, "--dry-run")
    assert "would restart deployment shop/backend" in restart.stdout


def test_list_falls_back_to_the_context_namespace_when_all_are_forbidden(cluster, checkout):
    link(cluster, "shop", "backend")
    link(cluster, "billing", "backend")
    cluster.add_user(
        "dev", "dev-token", [rule(["list"], ["deployments"], "apps", namespaces="shop")]
    )
    kubeconfig = cluster.write_kubeconfig(user="dev", context="dev", namespace="shop")
    run = plugin(cluster, checkout, "list", kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    assert "not allowed to list deployments in all namespaces" in run.stdout
    assert "not allowed to list statefulsets or daemonsets in namespace shop" in run.stdout
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NAMESPACE"))
    assert [row.split()[:3] for row in lines[header + 1 :]] == [["shop", "deployment", "backend"]]


def test_list_with_n_looks_in_one_namespace(cluster, checkout):
    link(cluster, "shop", "backend")
    link(cluster, "billing", "backend")
    run = plugin(cluster, checkout, "list", "-n", "billing", "-o", "json")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert [i["namespace"] for i in doc["items"]] == ["billing"]
    assert (doc["exitCode"], doc["error"]) == (0, None)


# -- item 21: where a bad context and an empty kubeconfig come from ---------------------------


def test_a_context_from_the_config_file_is_named_with_file_and_line(cluster, checkout):
    (checkout / ".restart-backend.yaml").write_text("namespace: shop\ncontext: prod-eu\n")
    run = plugin(cluster, checkout)
    assert run.exit_code == 2, run.output
    error, hint = run.stderr.splitlines()
    where = f"{checkout}/.restart-backend.yaml, line 2"
    assert error == (
        f"error: Context 'prod-eu' is not in the kubeconfig (context 'prod-eu' is set in {where})"
    )
    assert hint.endswith(f"; or fix {where}")
    assert not cluster.requests


def test_an_empty_kubeconfig_is_called_empty_not_missing(tmp_path):
    home = make_checkout(tmp_path / "shop")
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("")
    run = run_plugin(["--dry-run"], cwd=home)
    assert run.exit_code == 2, run.output
    assert "No kubeconfig found" not in run.stderr
    assert run.stderr.startswith(
        f"error: The kubeconfig {home}/.kube/config has no clusters, users or contexts"
    )
