"""End to end: one restart at a time per workload (the restart lock, a coordination.k8s.io/v1
Lease), through the real client against the simulated cluster, with real processes where two
runs meet. No sleeps: the first run's new pods wait for a Secret the test creates once the
second run is seen waiting.
"""

from __future__ import annotations

import json
import signal
from datetime import datetime, timedelta, timezone

import pytest

from kubectl_restart_backend.kinds import DEPLOYMENT
from kubectl_restart_backend.lease import format_micro_time
from tests.cluster.auth import ADMIN_RULES
from tests.cluster.behaviours import Behaviour
from tests.controlplane.rbac import required_rules
from tests.plugin_runner import (
    LINK_ANNOTATIONS,
    LINK_LABELS,
    LiveOutput,
    interrupt_when,
    link,
    patches,
    run_plugin,
    start_console_script,
)

LEASE = "restart-backend.deployment.backend"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/shop/leases/{LEASE}"
SECRET_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
WAITING = "deployment shop/backend is being restarted by"
ALICE = "alice@laptop (pid 7, kubectl-restart-backend, run 0a0a0a)"
WITH_SECRET = [{"name": "app", "image": "acme/shop:1", "env": SECRET_ENV}]


def restart(cluster, checkout, *args, kubeconfig=None):
    return run_plugin(["--kubeconfig", kubeconfig or cluster.kubeconfig, *args], cwd=checkout)


def pipeline(cluster, name: str) -> str:
    """A kubeconfig of its own (user ``name``), so the request log tells the runs apart."""
    cluster.add_user(name, f"{name}-token", ADMIN_RULES)
    return cluster.write_kubeconfig(user=name)


def first_run_holding_the_lock(cluster, checkout, *args) -> LiveOutput:
    """Run ``first`` as a process; return once it has patched (it holds the lock and waits
    for the Secret)."""
    first = LiveOutput(
        start_console_script(
            cluster, checkout, "--config-grace", "5m", *args, kubeconfig=pipeline(cluster, "first")
        )
    )
    cluster.wait_for(
        lambda: first.process.poll() is not None or by(cluster, "first", "PATCH"),
        30,
        "the first run never patched",
    )
    return first


def by(cluster, user: str, method: str, path_end: str = "") -> list[int]:
    """Indexes in the request log of ``user``'s ``method`` requests (path ending so)."""
    return [
        i
        for i, r in enumerate(cluster.requests)
        if r.user == user and r.method == method and r.path.endswith(path_end) and r.status < 400
    ]


def lease_spec(cluster) -> dict:
    return cluster.get("leases", "shop", LEASE)["spec"]


def hold_lease(
    cluster, holder: str, renewed: datetime, duration: int = 30, name: str = LEASE
) -> None:
    stamp = format_micro_time(renewed)
    cluster.create(
        "leases",
        {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 4},
        },
    )  # fmt: skip


def linked(name: str) -> dict:
    return {"labels": {**LINK_LABELS, "app": name}, "annotations": dict(LINK_ANNOTATIONS)}


def link_kind(cluster, kind: str, name: str, **kwargs) -> None:
    """A linked Deployment, StatefulSet or DaemonSet in shop (linked to acme/shop@main)."""
    create = {"deployment": cluster.create_deployment, "statefulset": cluster.create_statefulset,
              "daemonset": cluster.create_daemonset}[kind]  # fmt: skip
    create("shop", name, **linked(name), **kwargs)


def waiting_for_secret(cluster, *workloads: tuple[str, str]) -> None:
    """Linked workloads (kind, name) whose restarted pods wait for the Secret shop-db."""
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    for kind, name in workloads:
        link_kind(cluster, kind, name, containers=WITH_SECRET)
    cluster.delete("secrets", "shop", "shop-db")


def lease_holder(cluster, name: str):
    return (cluster.get("leases", "shop", name) or {}).get("spec", {}).get("holderIdentity")


# -- two runs on one workload ----------------------------------------------------------------


def test_a_second_run_waits_for_the_first_and_then_restarts_once_more(cluster, checkout):
    waiting_for_secret(cluster, ("deployment", "backend"))
    first = first_run_holding_the_lock(cluster, checkout)
    second = LiveOutput(
        start_console_script(cluster, checkout, kubeconfig=pipeline(cluster, "second"))
    )
    cluster.wait_for(lambda: second.saw(WAITING), 30, "the second run never said it waits")
    assert len(patches(cluster)) == 1  # while the first restart goes on, nobody else patches
    holder = lease_spec(cluster)["holderIdentity"]
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    first_run, second_run = first.finish(), second.finish()
    assert first_run.exit_code == 0, first_run.output  # not superseded: nobody patched meanwhile
    assert second_run.exit_code == 0, second_run.output
    assert "✓ Rolling restart complete for backend" in first_run.stdout
    assert "✓ Rolling restart complete for backend" in second_run.stdout
    # The request log: the second PATCH comes after the first run gave the lock back.
    (first_patch,), (second_patch,) = by(cluster, "first", "PATCH"), by(cluster, "second", "PATCH")
    first_release = by(cluster, "first", "PUT", LEASE)[-1]
    assert cluster.requests[first_release].json["spec"].get("holderIdentity") is None
    assert first_patch < first_release < second_patch
    # What the second run said: who holds it, since when, that it waits, and when it is its turn.
    lines = second_run.stdout.splitlines()
    (waiting,) = [line for line in lines if WAITING in line]
    assert waiting.startswith(f"note: {WAITING} {holder} since ")
    assert f"(pid {first.process.pid}, kubectl-restart-backend, run " in holder
    assert waiting.endswith("waiting for it to finish (up to 2m, --timeout; --no-wait-lock "
                            "refuses instead)")  # fmt: skip
    ours = next(
        i for i, line in enumerate(lines) if "lock of deployment shop/backend is ours" in line
    )
    assert lines[ours + 1] == "Restarting deployment shop/backend (context sim)"
    deployment = cluster.get("deployments", "shop", "backend")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "holderIdentity" not in lease_spec(cluster)  # given back at the end


@pytest.mark.parametrize(
    "kind, name", [("deployment", "backend"), ("statefulset", "db"), ("daemonset", "agent")]
)
def test_with_no_wait_lock_the_second_run_refuses_and_changes_nothing(
    cluster, checkout, kind, name
):
    waiting_for_secret(cluster, (kind, name))
    first = first_run_holding_the_lock(cluster, checkout)
    second = LiveOutput(
        start_console_script(
            cluster, checkout, "--no-wait-lock", kubeconfig=pipeline(cluster, "second")
        )
    )
    second_run = second.finish(60)
    assert lease_holder(cluster, f"restart-backend.{kind}.{name}").endswith(")")  # still held
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    first_run = first.finish()
    assert second_run.exit_code == 5, second_run.output
    error, hint = second_run.stderr.splitlines()[-2:]
    assert error.startswith(f"error: {kind} shop/{name} is being restarted by ")
    assert f"(pid {first.process.pid}, kubectl-restart-backend, run " in error
    assert error.endswith(": nothing was changed")
    assert hint == (
        "hint: run again once it is done, or without --no-wait-lock to wait for it (at most "
        "--timeout)"
    )
    assert not by(cluster, "second", "PATCH") and not by(cluster, "second", "PUT")
    # One restart: the first run's.
    assert [p.path for p in patches(cluster)] == [f"/apis/apps/v1/namespaces/shop/{kind}s/{name}"]
    assert first_run.exit_code == 0, first_run.output
    assert f"✓ Rolling restart complete for {name}" in first_run.stdout
    assert lease_holder(cluster, f"restart-backend.{kind}.{name}") is None  # given back


@pytest.mark.parametrize(
    "kind, name, follow",
    [
        ("deployment", "backend", "--deployment backend"),
        ("statefulset", "db", "-w statefulset/db"),
        ("daemonset", "agent", "-w daemonset/agent"),
    ],
)
def test_waiting_is_bounded_by_the_timeout(cluster, checkout, kind, name, follow):
    link_kind(cluster, kind, name)
    lease = f"restart-backend.{kind}.{name}"
    hold_lease(cluster, ALICE, datetime.now(timezone.utc), duration=3600, name=lease)
    run = restart(cluster, checkout, "--timeout", "1s", "-o", "json")
    assert run.exit_code == 5, run.output
    doc = json.loads(run.stdout)
    assert doc["error"]["message"].startswith(
        f"{kind} shop/{name} is being restarted by {ALICE} since "
    )
    assert "gave up waiting after 1s: nothing was changed" in doc["error"]["message"]
    assert doc["error"]["hint"] == (
        f"follow that restart with: kubectl restart-backend status {follow} -n shop "
        "--context sim; or wait longer with --timeout"
    )
    assert not patches(cluster)
    assert lease_holder(cluster, lease) == ALICE


# -- a holder that is gone -------------------------------------------------------------------


def test_the_expired_lease_of_a_dead_holder_is_taken_over(cluster, checkout):
    link(cluster)
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    hold_lease(cluster, "bob@old-ci (pid 4242, kubectl-restart-backend, run dead00)", an_hour_ago)
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    (note,) = [line for line in run.stdout.splitlines() if "taking over" in line]
    assert note.startswith(
        "note: taking over the lock of deployment shop/backend from bob@old-ci (pid 4242, "
        "kubectl-restart-backend, run dead00): not renewed since "
    )
    assert note.endswith("(60m ago), its holder is gone")
    assert len(patches(cluster)) == 1
    spec = lease_spec(cluster)
    assert "holderIdentity" not in spec and spec["leaseTransitions"] == 5


def test_a_terminated_run_gives_the_lock_back(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    process = start_console_script(cluster, checkout, "--timeout", "60s")
    code, stdout, stderr = interrupt_when(
        cluster, process, lambda: bool(patches(cluster)), sig=signal.SIGTERM
    )
    assert code == 143, stdout + stderr
    assert "holderIdentity" not in lease_spec(cluster)


# -- without the lock ------------------------------------------------------------------------


def test_without_lease_permissions_one_note_and_the_restart_goes_on(cluster, checkout):
    link(cluster)
    cluster.add_user("dev", "dev-token", required_rules())  # the README's Role without leases
    run = restart(cluster, checkout, "-o", "json", kubeconfig=cluster.write_kubeconfig(user="dev"))
    assert run.exit_code == 0, run.output
    said = [line for line in run.stderr.splitlines() if "lock" in line]
    assert said == [
        "note: restarting deployment shop/backend without the lock (not allowed to get leases "
        "in namespace shop): another run could restart it at the same time (README, 'One "
        "restart at a time')"
    ]
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "complete" and len(patches(cluster)) == 1
    assert doc["lock"] == {
        "lease": f"shop/{LEASE}", "held": False, "waitedSeconds": doc["lock"]["waitedSeconds"],
        "waitedFor": None,
    }  # fmt: skip
    assert said[0][len("note: ") :] in doc["notes"]


def test_dry_run_lists_the_lease_permissions(cluster, checkout):
    link(cluster)
    cluster.add_user("dev", "dev-token", required_rules())
    run = restart(cluster, checkout, "--dry-run", kubeconfig=cluster.write_kubeconfig(user="dev"))
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    for verb in ("get", "create", "update"):
        assert f"  {verb} leases: no" in lines
    admin = restart(cluster, checkout, "--dry-run")
    assert "  update leases: yes" in admin.stdout.splitlines()
    assert cluster.get("leases", "shop", LEASE) is None  # a dry run takes no lock


# -- the lock and the verdicts -----------------------------------------------------------------


def test_a_colleagues_change_while_we_hold_the_lock_is_still_superseded(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    process = LiveOutput(start_console_script(cluster, checkout, "--timeout", "60s", "-o", "json"))
    cluster.wait_for(
        lambda: process.process.poll() is not None or len(_watches_after_patch(cluster)) >= 3,
        30,
        "the plugin never started watching",
    )
    hotfix = [{"name": "app", "image": "registry.example.com/acme/backend:4.0-hotfix"}]
    cluster.patch("deployments", "shop", "backend",
                  {"spec": {"template": {"spec": {"containers": hotfix}}}},
                  field_manager="kubectl-set")  # fmt: skip
    run = process.finish()
    assert run.exit_code == 6, run.output
    doc = json.loads(run.stdout)
    assert doc["verdict"] == "superseded" and "manager: kubectl-set" in doc["supersededBy"]
    assert doc["lock"]["held"] is True and doc["lock"]["waitedFor"] is None
    assert "holderIdentity" not in lease_spec(cluster)


def test_the_json_document_says_whom_we_waited_for(cluster, checkout):
    waiting_for_secret(cluster, ("deployment", "backend"))
    first = first_run_holding_the_lock(cluster, checkout)
    second = LiveOutput(
        start_console_script(cluster, checkout, "-o", "json", kubeconfig=pipeline(cluster, "2nd"))
    )
    cluster.wait_for(lambda: second.saw(WAITING), 30, "the second run never said it waits")
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    assert first.finish().exit_code == 0
    run = second.finish()
    assert run.exit_code == 0, run.output
    lock = json.loads(run.stdout)["lock"]
    assert lock["held"] is True
    assert f"(pid {first.process.pid}, kubectl-restart-backend, run " in lock["waitedFor"]
    assert lock["waitedSeconds"] > 0


def _watches_after_patch(cluster):
    log = cluster.requests
    first = next((i for i, r in enumerate(log) if r.method == "PATCH"), None)
    if first is None:
        return []
    return [r for r in log[first:] if r.is_watch]


# -- the lock itself, through the real client ------------------------------------------------


def open_lock(cluster, **options):
    from kubectl_restart_backend.lock import LockOptions, RestartLock
    from kubectl_restart_backend.session import ConnectOptions, open_session

    session = open_session(ConnectOptions(kubeconfig=cluster.kubeconfig), {}, deadline=None)
    said: list[str] = []
    lock = RestartLock(session, DEPLOYMENT, "shop", "backend", LockOptions(), said.append,
                       **options)  # fmt: skip
    return lock, said


def test_the_lock_is_renewed_while_held_then_given_back(cluster):
    cluster.create_namespace("shop")
    lock, said = open_lock(cluster, renew_every=0.05)
    lock.acquire()
    first = lease_spec(cluster)["renewTime"]
    cluster.wait_for(lambda: lease_spec(cluster)["renewTime"] != first, 10, "never renewed")
    assert lease_spec(cluster)["holderIdentity"] == lock.identity
    lock.release()
    assert "holderIdentity" not in lease_spec(cluster)
    assert said == []


def test_a_lock_taken_over_while_held_is_said_once_and_left_to_its_new_holder(cluster):
    cluster.create_namespace("shop")
    lock, said = open_lock(cluster, renew_every=0.05)
    lock.acquire()
    carol = "carol@ci (pid 9, kubectl-restart-backend, run cccccc)"
    cluster.patch("leases", "shop", LEASE, {"spec": {"holderIdentity": carol}}, "merge")
    cluster.wait_for(lambda: said, 10, "the lost lock was never said")
    lock.release()
    assert said == [
        "the lock of deployment shop/backend was taken by carol@ci (pid 9, "
        "kubectl-restart-backend, run cccccc) (our renewals did not reach the API server in "
        "time); another run may restart it meanwhile"
    ]
    assert lease_spec(cluster)["holderIdentity"].startswith("carol@ci")


def test_a_failed_renewal_is_said_once_and_tried_again(cluster):
    cluster.create_namespace("shop")
    lock, said = open_lock(cluster, renew_every=0.05)
    cluster.faults.fail_next(3, "PUT", r"/leases/", status=500)
    lock.acquire()
    cluster.wait_for(
        lambda: any(r.method == "PUT" and r.status == 200 for r in cluster.requests),
        10,
        "never renewed after the failures",
    )
    lock.release()
    assert said == [
        "could not renew the lock of deployment shop/backend (Internal error occurred: "
        "injected fault); trying again in 0s (it expires 30s after the last renewal)"
    ]
    assert "holderIdentity" not in lease_spec(cluster)


def test_a_cluster_without_the_lease_api_gets_one_note_and_the_restart(cluster, checkout):
    link(cluster)
    cluster.faults.fail_next(2, None, r"/coordination.k8s.io/", status=404)  # GET, then POST
    run = restart(cluster, checkout)
    assert run.exit_code == 0, run.output
    notes = [line for line in run.stdout.splitlines() if "lock" in line]
    assert notes == [
        "note: restarting deployment shop/backend without the lock (this cluster serves no "
        "coordination.k8s.io/v1 Leases): another run could restart it at the same time (README, "
        "'One restart at a time')"
    ]
    assert len(patches(cluster)) == 1


def test_ctrl_c_while_waiting_for_the_lock_changes_nothing(cluster, checkout):
    link(cluster)
    hold_lease(cluster, ALICE, datetime.now(timezone.utc), duration=3600)
    waiting = LiveOutput(start_console_script(cluster, checkout))
    cluster.wait_for(lambda: waiting.saw(WAITING), 30, "it never said it waits")
    waiting.process.send_signal(signal.SIGINT)
    run = waiting.finish(30)
    assert run.exit_code == 130, run.output
    assert run.stderr.splitlines()[-1] == "error: interrupted: nothing was changed"
    assert not patches(cluster)
    assert lease_spec(cluster)["holderIdentity"].startswith("alice@laptop")


def test_no_wait_holds_the_lock_only_for_the_patch(cluster, checkout):
    link(cluster)
    run = restart(cluster, checkout, "--no-wait", "-o", "json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["lock"]["held"] is True
    writes = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cluster.requests if r.method != "GET"]
    assert writes == [("POST", "leases"), ("PATCH", "backend"), ("PUT", LEASE)]
    assert "holderIdentity" not in lease_spec(cluster)


# -- every kind, several workloads -------------------------------------------------------------


@pytest.mark.parametrize(
    "second_args",
    [("--all",), ("-w", "statefulset/db", "-w", "deployment/api", "-n", "shop")],
    ids=["both-all", "second-names-them-in-the-other-order"],
)
def test_two_runs_over_a_deployment_and_a_statefulset_both_finish_one_after_the_other(
    cluster, checkout, second_args
):
    waiting_for_secret(cluster, ("deployment", "api"), ("statefulset", "db"))
    runs = {
        "one": LiveOutput(start_console_script(cluster, checkout, "--all", "--config-grace",
                                               "5m", kubeconfig=pipeline(cluster, "one"))),
        "two": LiveOutput(start_console_script(cluster, checkout, *second_args, "--config-grace",
                                               "5m", kubeconfig=pipeline(cluster, "two"))),
    }  # fmt: skip
    cluster.wait_for(
        lambda: any(run.saw("is being restarted by") for run in runs.values()),
        60,
        "neither run waited for the other",
    )
    cluster.create_secret("shop", "shop-db", {"url": "postgres://db"})
    done = {user: run.finish() for user, run in runs.items()}
    for user, run in done.items():
        assert run.exit_code == 0, (user, run.output)
        assert run.stdout.splitlines()[-1].startswith("✓ 2 of 2 workloads complete"), run.stdout
    waited = [user for user, run in done.items() if "is being restarted by" in run.stdout]
    assert len(waited) == 1, {user: run.stdout for user, run in done.items()}
    (waiter,) = waited
    (holder,) = set(done) - {waiter}
    # The waiter waited, holding nothing, for the first lock of the one order (kind, name).
    (note,) = [x for x in done[waiter].stdout.splitlines() if "is being restarted by" in x]
    assert note.startswith("note: deployment shop/api is being restarted by "), note
    # One restart after the other: the holder's two PATCHes, its locks given back, then the
    # waiter's two.
    log = [(r.user, r.path.rsplit("/", 1)[-1]) for r in patches(cluster)]
    assert [user for user, _name in log] == [holder, holder, waiter, waiter]
    releases = [i for i in by(cluster, holder, "PUT")
                if "holderIdentity" not in cluster.requests[i].json["spec"]]  # fmt: skip
    assert len(releases) == 2
    assert max(releases) < min(by(cluster, waiter, "PATCH"))
    for lease in ("restart-backend.deployment.api", "restart-backend.statefulset.db"):
        assert lease_holder(cluster, lease) is None


def refused_over_api_and_db(cluster, checkout, held: str) -> str:
    """``--all --no-wait-lock`` over deployment/api and statefulset/db while alice holds the
    Lease of ``held``: refused, nothing patched; its error line."""
    link_kind(cluster, "deployment", "api")
    link_kind(cluster, "statefulset", "db")
    hold_lease(cluster, ALICE, datetime.now(timezone.utc), duration=3600,
               name=f"restart-backend.{held.replace('/', '.')}")  # fmt: skip
    run = restart(cluster, checkout, "--all", "--no-wait-lock")
    assert run.exit_code == 5, run.output
    assert not patches(cluster)
    error = run.stderr.splitlines()[-2]
    assert error.endswith(": nothing was changed")
    return error


def test_with_no_wait_lock_a_wave_is_refused_before_any_of_it_is_patched(cluster, checkout):
    error = refused_over_api_and_db(cluster, checkout, "statefulset/db")
    assert error.startswith(f"error: statefulset shop/db is being restarted by {ALICE} since ")
    # The Deployment's lock (first in the order) was taken, then given back.
    assert lease_holder(cluster, "restart-backend.deployment.api") is None
    assert lease_holder(cluster, "restart-backend.statefulset.db") == ALICE


def test_an_ordered_run_takes_every_lock_before_its_first_wave(cluster, checkout):
    (checkout / ".restart-backend.yaml").write_text("order: [db, api]\n")
    error = refused_over_api_and_db(cluster, checkout, "deployment/api")
    assert error.startswith(f"error: deployment shop/api is being restarted by {ALICE} since ")
    # Nothing patched: not even the first wave's statefulset/db.


def test_each_wave_gives_its_locks_back_when_it_ends(cluster, checkout):
    (checkout / ".restart-backend.yaml").write_text("order: [db, api]\n")
    link_kind(cluster, "deployment", "api")
    link_kind(cluster, "statefulset", "db")
    run = restart(cluster, checkout, "--all")
    assert run.exit_code == 0, run.output
    given_back = [r for r in cluster.requests
                  if r.method == "PUT" and "holderIdentity" not in r.json["spec"]]  # fmt: skip
    writes = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cluster.requests
              if r.method in ("POST", "PATCH") or r in given_back]  # fmt: skip
    assert writes == [
        ("POST", "leases"),  # deployment/api first: the one order is kind, then name
        ("POST", "leases"),
        ("PATCH", "db"),  # the first wave
        ("PUT", "restart-backend.statefulset.db"),  # given back when its wave ended
        ("PATCH", "api"),
        ("PUT", "restart-backend.deployment.api"),
    ]
    posts = [r.json["metadata"]["name"] for r in cluster.requests if r.method == "POST"]
    assert posts == ["restart-backend.deployment.api", "restart-backend.statefulset.db"]


def test_without_lease_permissions_a_run_of_several_says_so_once(cluster, checkout):
    link_kind(cluster, "deployment", "api")
    link_kind(cluster, "statefulset", "db")
    cluster.add_user("dev", "dev-token", required_rules())  # the README's Role without leases
    kubeconfig = cluster.write_kubeconfig(user="dev")
    run = restart(cluster, checkout, "--all", "-o", "json", kubeconfig=kubeconfig)
    assert run.exit_code == 0, run.output
    said = [line for line in run.stderr.splitlines() if "lock" in line]
    assert said == [
        "note: restarting the workloads without their locks (not allowed to get leases in "
        "namespace shop): another run could restart them at the same time (README, 'One "
        "restart at a time')"
    ]
    asked = [r for r in cluster.requests if "/leases" in r.path]
    assert len(asked) == 1  # the one 403 answers for the namespace: not asked again
    doc = json.loads(run.stdout)
    assert len(patches(cluster)) == 2 and doc["verdict"] == "complete"
    waited = round(sum(w["lock"]["waitedSeconds"] for w in doc["workloads"]), 3)
    assert doc["lock"] == {"lease": None, "held": False, "waitedSeconds": waited, "waitedFor": None}
    assert [(w["appName"], w["lock"]["held"], w["lock"]["lease"]) for w in doc["workloads"]] == [
        ("api", False, "shop/restart-backend.deployment.api"),
        ("db", False, "shop/restart-backend.statefulset.db"),
    ]


def test_the_json_of_several_sums_up_their_locks(cluster, checkout):
    link_kind(cluster, "deployment", "api")
    link_kind(cluster, "statefulset", "db")
    run = restart(cluster, checkout, "--all", "-o", "json")
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    assert doc["lock"]["lease"] is None and doc["lock"]["held"] is True
    assert doc["lock"]["waitedFor"] is None
    assert {w["lock"]["lease"]: w["lock"]["held"] for w in doc["workloads"]} == {
        "shop/restart-backend.deployment.api": True,
        "shop/restart-backend.statefulset.db": True,
    }
    holders = {
        r.json["spec"]["holderIdentity"] for r in cluster.requests if r.method == "POST"
        and r.path.endswith("/leases")
    }  # fmt: skip
    assert len(holders) == 1  # one holder for all of a run's locks
