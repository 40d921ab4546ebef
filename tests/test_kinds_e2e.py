"""End to end: StatefulSets, DaemonSets and several workloads in one restart, through the real
client against the simulated cluster (and through real kubectl, which runs the plugin and
confirms the verdicts with its own ``rollout status``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS, link, patches, run_plugin

pytestmark = pytest.mark.timeout(120)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KUBECTL = Path(sys.executable).parent / "kubectl"


def linked(name: str) -> dict:
    return {"labels": {**LINK_LABELS, "app": name}, "annotations": dict(LINK_ANNOTATIONS)}


def link_sts(cluster, name: str = "db", **kwargs) -> dict:
    return cluster.create_statefulset("shop", name, **linked(name), **kwargs)


def link_ds(cluster, name: str = "agent", **kwargs) -> dict:
    return cluster.create_daemonset("shop", name, **linked(name), **kwargs)


def restart(cluster, checkout, *args):
    """The plugin with ARGS (a subcommand first, if any), against the cluster."""
    return run_plugin([*args, "--kubeconfig", cluster.kubeconfig], cwd=checkout)


def through_kubectl(cluster, checkout, *args, timeout: float = 90):
    """``kubectl restart-backend ARGS``: real kubectl finds our console script on PATH."""
    env = {
        "PATH": f"{KUBECTL.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(checkout),
        "KUBECONFIG": cluster.kubeconfig,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(KUBECTL), "restart-backend", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def kubectl_rollout_status(cluster, checkout, ref: str, wait: str = "30s"):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(checkout),
           "KUBECONFIG": cluster.kubeconfig}  # fmt: skip
    return subprocess.run(
        [str(KUBECTL), "rollout", "status", ref, "-n", "shop", f"--timeout={wait}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def deletes(cluster) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in cluster.requests if r.method == "DELETE"]


def revisions(cluster, name: str) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"]
        for p in cluster.list("pods", "shop", label_selector=f"app={name}")
    }


def write_config(checkout: Path, text: str) -> None:
    (checkout / ".restart-backend.yaml").write_text(text)


# -- StatefulSets ----------------------------------------------------------------------------


def test_a_statefulset_restarts_with_kubectls_patch_and_completes_on_its_new_pods(
    cluster, checkout
):
    link_sts(cluster)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[:2] == [
        "Restarting statefulset shop/db (context sim)",
        "Rolling restart triggered. Waiting for pods to restart...",
    ]
    assert "✓ Rolling restart complete for db" in lines
    assert "All pods healthy: 3/3 ready" in lines
    [patch] = patches(cluster)
    assert patch.path == "/apis/apps/v1/namespaces/shop/statefulsets/db"
    assert patch.content_type == "application/strategic-merge-patch+json"
    annotations = patch.json["spec"]["template"]["metadata"]["annotations"]
    assert patch.json == {"spec": {"template": {"metadata": {"annotations": annotations}}}}
    assert list(annotations) == [RESTARTED_AT]
    sts = cluster.get("statefulsets", "shop", "db")
    assert set(revisions(cluster, "db").values()) == {sts["status"]["updateRevision"]}
    status = kubectl_rollout_status(cluster, checkout, "sts/db")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "partitioned roll out complete: 3 new pods have been updated..."
    )


def test_a_crash_looping_statefulset_fails_fast_where_kubectl_waits(cluster, checkout):
    link_sts(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop(exit_code=3))
    run = through_kubectl(cluster, checkout, "--timeout", "60s")
    assert run.returncode == 1, run.stdout + run.stderr
    [failed] = [line for line in run.stdout.splitlines() if line.startswith("✗")]
    assert failed.startswith("✗ Restart failed: pod db-2 (container app) "), run.stdout
    assert "exit code 3" in failed and "(2 tolerated)" in failed
    assert "Pod details:" in run.stdout
    assert "kubectl rollout undo statefulset/db -n shop" in run.stdout
    status = kubectl_rollout_status(cluster, checkout, "sts/db", wait="2s")
    assert status.returncode == 1, "kubectl keeps waiting on the same rollout"
    assert status.stderr.strip() == "error: timed out waiting for the condition"


def test_a_statefulset_whose_new_pods_crash_then_heal_succeeds(cluster, checkout):
    link_sts(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop(failures=2))
    run = restart(cluster, checkout, "--timeout", "90s")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for db" in run.stdout
    assert "Recovered: pod db-2 restarted twice" in run.stdout


def test_undo_on_failure_rolls_a_statefulset_back_and_deletes_its_broken_pod_when_asked(
    cluster, checkout
):
    link_sts(cluster)
    before = cluster.get("statefulsets", "shop", "db")["spec"]["template"]
    cluster.set_behaviours("shop", "statefulset/db", [Behaviour.crash_loop(), Behaviour.healthy()])
    run = restart(cluster, checkout, "--undo-on-failure", "--delete-pods", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "✗ Restart failed: pod db-2" in run.stdout
    assert "↩ Rolled back to revision 1: 3/3 pods ready" in run.stdout
    assert deletes(cluster) == ["db-2"], "only the broken pod of our failed revision"
    after = cluster.get("statefulsets", "shop", "db")["spec"]["template"]
    assert after == before


def test_without_delete_pods_a_rolled_back_statefulset_says_which_pod_to_delete(cluster, checkout):
    link_sts(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--undo-on-failure", "--timeout", "10s")
    assert run.exit_code == 1, run.output
    assert "Rollback failed: rollback to revision 1 did not finish: timed out; the " in run.stdout
    assert "kubectl delete pod db-2 -n shop" in run.stdout
    assert deletes(cluster) == []


# -- DaemonSets ------------------------------------------------------------------------------


def test_a_daemonset_restarts_through_kubectl_and_completes_on_every_node(cluster, checkout):
    link_ds(cluster)
    run = through_kubectl(cluster, checkout, "-o", "json")
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert (doc["verdict"], doc["kind"], doc["appName"]) == ("complete", "DaemonSet", "agent")
    assert (doc["readyReplicas"], doc["replicas"]) == (3, 3)
    assert sorted(p["node"] for p in doc["pods"]) == ["sim-node-1", "sim-node-2", "sim-node-3"]
    assert all(p["new"] and p["revision"] and p["replicaSet"] is None for p in doc["pods"])
    [patch] = patches(cluster)
    assert patch.path == "/apis/apps/v1/namespaces/shop/daemonsets/agent"
    status = kubectl_rollout_status(cluster, checkout, "ds/agent")
    assert status.stdout.splitlines()[-1] == 'daemon set "agent" successfully rolled out'


def test_a_crash_looping_daemonset_fails_with_the_pod_and_its_node(cluster, checkout):
    link_ds(cluster)
    cluster.set_behaviour("shop", "daemonset/agent", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--timeout", "60s", "-o", "json")
    assert run.exit_code == 1, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "failed"
    assert "CrashLoopBackOff" in doc["failureReason"]
    failing = [p for p in doc["pods"] if p["failing"]]
    assert len(failing) == 1 and failing[0]["new"] and failing[0]["node"] == "sim-node-1"


def test_a_daemonset_whose_new_pod_crashes_then_heals_succeeds(cluster, checkout):
    link_ds(cluster)
    cluster.set_behaviour("shop", "daemonset/agent", Behaviour.crash_loop(failures=1))
    run = restart(cluster, checkout, "--timeout", "90s")
    assert run.exit_code == 0, run.output
    assert "✓ Rolling restart complete for agent" in run.stdout
    assert "Recovered: pod agent-" in run.stdout


# -- OnDelete --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
def test_on_delete_without_the_opt_in_says_so_and_deletes_nothing(cluster, checkout, kind):
    if kind == "statefulset":
        link_sts(cluster, update_strategy="OnDelete")
        ref = "statefulset/db"
    else:
        link_ds(cluster, update_strategy="OnDelete")
        ref = "daemonset/agent"
    pods_before = {p["metadata"]["uid"] for p in cluster.list("pods", "shop")}
    run = restart(cluster, checkout, "-o", "json")
    assert run.exit_code == 0, run.output
    assert "uses the OnDelete update strategy: the restart patch replaces no pod" in run.stderr
    doc = json.loads(run.stdout)
    assert (doc["verdict"], doc["updateStrategy"], doc["deletedPods"]) == (
        "triggered",
        "OnDelete",
        [],
    )
    assert any("OnDelete" in note for note in doc["notes"])
    assert [r.method for r in cluster.requests].count("DELETE") == 0
    assert len(patches(cluster)) == 1
    assert {p["metadata"]["uid"] for p in cluster.list("pods", "shop")} == pods_before
    text = restart(cluster, checkout)
    assert "no pod was replaced: it uses the OnDelete update strategy" in text.stdout
    assert f"kubectl restart-backend -w {ref} -n shop --context sim --delete-pods" in text.stdout


def test_on_delete_with_delete_pods_replaces_a_statefulset_highest_ordinal_first(cluster, checkout):
    link_sts(cluster, update_strategy="OnDelete")
    seen: list[dict] = []

    def record() -> None:  # just before each DELETE: every new pod ready, none terminating
        sts = cluster.get("statefulsets", "shop", "db")
        pods = cluster.list("pods", "shop", label_selector="app=db")
        seen.append(
            {
                "terminating": [p["metadata"]["name"] for p in pods
                                if p["metadata"].get("deletionTimestamp")],
                "new_not_ready": [
                    p["metadata"]["name"] for p in pods
                    if p["metadata"]["labels"]["controller-revision-hash"]
                    == sts["status"]["updateRevision"]
                    and not any(c["type"] == "Ready" and c["status"] == "True"
                                for c in p["status"].get("conditions") or [])
                ],
                "pods": len(pods),
            }
        )  # fmt: skip

    cluster.faults.before("DELETE", r"/pods/", action=record, n=3)
    run = restart(cluster, checkout, "--delete-pods", "--timeout", "60s")
    assert run.exit_code == 0, run.output
    assert deletes(cluster) == ["db-2", "db-1", "db-0"]
    assert seen == [{"terminating": [], "new_not_ready": [], "pods": 3}] * 3
    sts = cluster.get("statefulsets", "shop", "db")
    assert set(revisions(cluster, "db").values()) == {sts["status"]["updateRevision"]}
    assert "Deleted pods (--delete-pods): db-2, db-1, db-0" in run.stdout
    delete = next(r for r in cluster.requests if r.method == "DELETE")
    assert delete.json["preconditions"]["uid"]


def test_on_delete_with_delete_pods_replaces_a_daemonset_node_by_node(cluster, checkout):
    link_ds(cluster, update_strategy="OnDelete")
    nodes = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in cluster.list("pods", "shop")}
    run = restart(cluster, checkout, "--delete-pods", "--timeout", "60s")
    assert run.exit_code == 0, run.output
    assert [nodes[name] for name in deletes(cluster)] == ["sim-node-1", "sim-node-2",
                                                          "sim-node-3"]  # fmt: skip
    assert "All pods healthy: 3/3 ready" in run.stdout


def test_on_delete_with_delete_pods_stops_at_the_first_doomed_replacement(cluster, checkout):
    write_config(checkout, "delete-pods: true\n")  # the config key opts in like the flag
    link_sts(cluster, update_strategy="OnDelete")
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert deletes(cluster) == ["db-2"], "nothing more is deleted once a replacement is doomed"
    assert "✗ Restart failed: pod db-2" in run.stdout


def test_on_delete_with_delete_pods_waits_out_a_replacement_that_heals(cluster, checkout):
    link_sts(cluster, update_strategy="OnDelete")
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop(failures=2))
    run = restart(cluster, checkout, "--delete-pods", "--timeout", "90s")
    assert run.exit_code == 0, run.output
    assert deletes(cluster) == ["db-2", "db-1", "db-0"]


# -- several workloads -----------------------------------------------------------------------


def mixed_trio(cluster) -> None:
    link(cluster, "shop", "api")
    link_sts(cluster)
    link_ds(cluster)


def test_two_linked_workloads_are_refused_without_all(cluster, checkout):
    mixed_trio(cluster)
    run = restart(cluster, checkout)
    assert run.exit_code == 4, run.output
    assert run.stderr.splitlines()[0] == (
        "error: 3 workloads are linked to acme/shop@main: daemonset shop/agent, deployment "
        "shop/api, statefulset shop/db"
    )
    assert "--all" in run.stderr
    assert patches(cluster) == []


def test_all_restarts_three_workloads_of_mixed_kinds_together(cluster, checkout):
    mixed_trio(cluster)
    run = restart(cluster, checkout, "--all")
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "Restarting daemonset shop/agent, deployment shop/api, statefulset shop/db (context sim)"
    )
    for name in ("daemonset/agent", "deployment/api", "statefulset/db"):
        assert f"✓ Rolling restart complete for {name}" in lines
    assert lines[-1] == (
        "✓ 3 of 3 workloads complete (complete: daemonset/agent, deployment/api, statefulset/db)"
    )
    assert sorted(p.path.split("/")[-2] for p in patches(cluster)) == [
        "daemonsets",
        "deployments",
        "statefulsets",
    ]


def test_json_for_several_workloads_keeps_the_top_level_and_adds_workloads(cluster, checkout):
    mixed_trio(cluster)
    single = json.loads(restart(cluster, checkout, "-w", "sts/db", "-n", "shop", "-o", "json")
                        .stdout)  # fmt: skip
    cluster.set_behaviour("shop", "daemonset/agent", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--all", "-o", "json", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    doc = json.loads(run.stdout)
    assert list(doc) == [*single, "workloads"]
    assert [list(w) for w in doc["workloads"]] == [list(single)] * 3
    assert (doc["verdict"], doc["exitCode"], doc["failed"], doc["ready"]) == (
        "failed",
        1,
        True,
        False,
    )
    assert doc["failureReason"].startswith("daemonset/agent: pod agent-")
    verdicts = {
        f"{w['kind']}/{w['appName']}": (w["verdict"], w["exitCode"]) for w in doc["workloads"]
    }
    assert verdicts == {
        "DaemonSet/agent": ("failed", 1),
        "Deployment/api": ("complete", 0),
        "StatefulSet/db": ("complete", 0),
    }
    assert doc["replicas"] == sum(w["replicas"] for w in doc["workloads"])
    dry = restart(cluster, checkout, "-w", "ds/agent", "-w", "sts/db", "-n", "shop", "--dry-run",
                  "-o", "yaml")  # fmt: skip
    assert yaml.safe_load(dry.stdout)["verdict"] == "dry-run"


def test_a_failure_among_several_is_named_first_and_decides_the_exit_code(cluster, checkout):
    mixed_trio(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--all", "--timeout", "60s")
    assert run.exit_code == 1, run.output
    assert "✗ Restart failed: statefulset/db: pod db-2 (container app) is in " in run.stdout
    assert "✓ Rolling restart complete for deployment/api" in run.stdout
    assert run.stdout.splitlines()[-1].startswith(
        "✗ 1 of 3 workloads failed (failed: statefulset/db;"
    )


def test_an_ordered_pair_whose_first_fails_never_touches_the_second(cluster, checkout):
    write_config(checkout, "order: [db, api]\n")
    link(cluster, "shop", "api")
    link_sts(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop())
    run = restart(cluster, checkout, "--all", "--timeout", "60s", "-o", "json")
    assert run.exit_code == 1, run.output
    assert [p.path for p in patches(cluster)] == ["/apis/apps/v1/namespaces/shop/statefulsets/db"]
    doc = json.loads(run.stdout)
    assert [(w["appName"], w["verdict"]) for w in doc["workloads"]] == [
        ("db", "failed"),
        ("api", "not-started"),
    ]
    api = cluster.get("deployments", "shop", "api")
    assert RESTARTED_AT not in (api["spec"]["template"]["metadata"].get("annotations") or {})
    assert doc["workloads"][1]["notes"][-1] == "not restarted: statefulset/db failed first"


def test_an_ordered_pair_whose_first_heals_restarts_both_in_order(cluster, checkout):
    write_config(checkout, "workloads: [deployment/api, statefulset/db]\norder: [db, api]\n")
    link(cluster, "shop", "api")
    link_sts(cluster)
    cluster.set_behaviour("shop", "statefulset/db", Behaviour.crash_loop(failures=2))
    run = restart(cluster, checkout, "-n", "shop", "--timeout", "90s")
    assert run.exit_code == 0, run.output
    assert [p.path.rsplit("/", 1)[1] for p in patches(cluster)] == ["db", "api"]
    assert run.stdout.splitlines()[0] == "Restarting statefulset shop/db (context sim)"


# -- link, list, status and --dry-run for every kind ------------------------------------------


@pytest.mark.parametrize(
    "args", [("statefulset/db",), ("sts/db",), ("db", "--kind", "statefulset")],
    ids=["kind-slash-name", "short-name", "kind-flag"],
)  # fmt: skip
def test_link_a_statefulset_then_restart_it_by_its_labels(cluster, checkout, args):
    cluster.create_statefulset("shop", "db")
    run = restart(cluster, checkout, "link", *args, "-n", "shop", "--yes")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[-1] == "statefulset shop/db linked to acme/shop@main"
    [patch] = patches(cluster)
    assert patch.path == "/apis/apps/v1/namespaces/shop/statefulsets/db"
    assert set(patch.json["metadata"]) == {"labels", "annotations"}
    done = restart(cluster, checkout)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == "Restarting statefulset shop/db (context sim)"


def test_link_add_keeps_both_links_and_list_shows_their_kinds(cluster, checkout):
    link(cluster, "shop", "api")
    cluster.create_daemonset("shop", "agent")
    refused = restart(cluster, checkout, "link", "ds/agent", "-n", "shop", "--yes")
    assert refused.exit_code == 5, refused.output
    assert "--add" in refused.stderr
    added = restart(cluster, checkout, "link", "ds/agent", "-n", "shop", "--yes", "--add")
    assert added.exit_code == 0, added.output
    listed = restart(cluster, checkout, "list", "-o", "json")
    assert [(i["kind"], i["name"], i["readyReplicas"], i["replicas"])
            for i in json.loads(listed.stdout)["items"]] == [
        ("DaemonSet", "agent", 3, 3), ("Deployment", "api", 3, 3)
    ]  # fmt: skip
    unlinked = restart(cluster, checkout, "unlink", "daemonset/agent", "-n", "shop", "--yes")
    assert unlinked.stdout.splitlines()[-1] == "daemonset shop/agent unlinked"


def test_status_watches_a_statefulset_rollout_someone_else_started(cluster, checkout):
    link_sts(cluster)
    cluster.patch("statefulsets", "shop", "db",
                  {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}})  # fmt: skip
    run = restart(cluster, checkout, "status", "-w", "sts/db", "-n", "shop")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[0] == "Watching statefulset shop/db (context sim)"
    assert "✓ Rolling restart complete for db" in run.stdout
    assert patches(cluster) == []


def test_dry_run_asks_for_the_permissions_of_each_kind(cluster, checkout):
    link_sts(cluster, update_strategy="OnDelete")
    run = restart(cluster, checkout, "--dry-run", "--delete-pods", "-o", "json")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert doc["updateStrategy"] == "OnDelete"
    text = restart(cluster, checkout, "--dry-run", "--delete-pods")
    assert "Dry run: would restart statefulset shop/db (context sim)" in text.stdout
    assert "PATCH /apis/apps/v1/namespaces/shop/statefulsets/db" in text.stdout
    for check in ("patch statefulsets: yes", "watch statefulsets: yes", "watch pods: yes",
                  "delete pods: yes"):  # fmt: skip
        assert f"  {check}" in text.stdout
    assert "replicasets" not in text.stdout
    assert [r for r in cluster.requests if r.method in ("PATCH", "DELETE")] == []


# -- every failure path has a healing twin, for StatefulSets and DaemonSets too ---------------

SECRET_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
WITH_SECRET = [{"name": "app", "image": "acme/shop:1", "env": SECRET_ENV}]


def create(cluster, kind: str, **kwargs) -> str:
    """The linked StatefulSet db or DaemonSet agent; its KIND/NAME."""
    if kind == "statefulset":
        link_sts(cluster, **kwargs)
        return "statefulset/db"
    link_ds(cluster, **kwargs)
    return "daemonset/agent"


def registry(answer_failures):
    def arrange(cluster, kind):
        ref = create(cluster, kind)
        pulls = Behaviour.image_pull_backoff(pull_error="unavailable", failures=answer_failures)
        cluster.set_behaviour("shop", ref, pulls)

    return arrange


def secret(after):
    def arrange(cluster, kind):
        cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
        create(cluster, kind, containers=WITH_SECRET)
        cluster.delete("secrets", "shop", "shop-db")
        if after is not None:
            cluster.create_secret("shop", "shop-db", {"url": "postgres://db"}, after=after)

    return arrange


def readiness(unready_for):
    def arrange(cluster, kind):
        ref = create(cluster, kind)
        cluster.set_behaviour("shop", ref, Behaviour.never_ready(unready_for=unready_for))

    return arrange


TWINS = [
    pytest.param(registry(None), registry(1), "(3 failed pulls, 2 tolerated)", id="registry-503"),
    pytest.param(
        secret(None),
        secret(1.0),
        'secret "shop-db" not found (for 2s, 2s tolerated)',
        id="missing-secret",
    ),  # fmt: skip
]


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
@pytest.mark.parametrize("doomed, heals, words", TWINS)
def test_trouble_that_never_ends_fails_and_its_twin_that_heals_succeeds(
    make_cluster, checkout, kind, doomed, heals, words
):
    args = ("--timeout", "60s", "--config-grace", "2s")
    failing = make_cluster()
    doomed(failing, kind)
    run = restart(failing, checkout, *args)
    assert run.exit_code == 1, run.output
    [line] = [x for x in run.stdout.splitlines() if x.startswith("✗")]
    assert words in line, line
    healing = make_cluster()
    heals(healing, kind)
    run = restart(healing, checkout, *args)
    assert run.exit_code == 0, run.output
    assert [x for x in run.stdout.splitlines() if x.startswith("Recovered: ")], run.stdout


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
def test_slow_readiness_is_waited_out_not_failed(cluster, checkout, kind):
    readiness(2.0)(cluster, kind)
    run = restart(cluster, checkout, "--timeout", "60s")
    assert run.exit_code == 0, run.output


@pytest.mark.parametrize("kind", ["statefulset", "daemonset"])
def test_a_colleagues_image_mid_rollout_supersedes_ours_and_is_never_undone(
    cluster, checkout, kind
):
    ref = create(cluster, kind)
    cluster.set_behaviour("shop", ref, Behaviour.never_ready())
    resource = f"{ref.split('/')[0]}s"
    name = ref.split("/")[1]
    containers = [{"name": "app", "image": "acme/shop:4.0-hotfix"}]
    hotfix = {"spec": {"template": {"spec": {"containers": containers}}}}

    def colleague() -> None:
        cluster.patch(resource, "shop", name, hotfix, field_manager="kubectl-set")

    cluster.faults.before("GET", r"/pods\?.*(?i:watch=true)", action=colleague)
    run = restart(cluster, checkout, "--undo-on-failure", "--timeout", "60s")
    assert run.exit_code == 6, run.output
    [verdict] = [line for line in run.stdout.splitlines() if line.startswith("⚠")]
    assert verdict.startswith("⚠ Restart superseded by a newer change: image ")
    assert verdict.endswith("-> acme/shop:4.0-hotfix (manager: kubectl-set)")
    assert len(patches(cluster)) == 1, "ours only: nothing undone"
