"""End to end: defects found in review, each pinned by the run that showed it."""

from __future__ import annotations

import threading

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import interrupt_when, link, patches, start_console_script

EVENTS_LIST = r"/namespaces/shop/events"
DEPLOYMENT = r"/namespaces/shop/deployments/backend"


def test_ctrl_c_while_the_failure_is_explained_does_not_say_nothing_was_changed(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    # The events list keeps failing, so the report is still being gathered when Ctrl-C comes.
    cluster.faults.fail_next(100_000, "GET", EVENTS_LIST, status=503)
    process = start_console_script(cluster, checkout, "--timeout", "60s")
    code, stdout, stderr = interrupt_when(
        cluster,
        process,
        lambda: any(r.status == 503 and "/events" in r.path for r in cluster.requests),
    )
    assert code == 130, stdout + stderr
    assert len(patches(cluster)) == 1
    assert "nothing was changed" not in stdout + stderr
    assert "✗ Restart failed: pod backend-" in stdout  # the known verdict is kept
    assert "restart goes on in the cluster" in stdout
    assert "Traceback" not in stdout + stderr


def crash_looping_restart_with_undo(cluster, checkout, *then):
    """Start a restart that will fail, asking for --undo-on-failure; `then`: `faults.before`
    rules (method, path, keywords) for the requests after our restart's PATCH."""
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    cluster.faults.before("PATCH", DEPLOYMENT)  # our restart itself passes untouched
    for method, path, options in then:
        cluster.faults.before(method, path, **options)
    return start_console_script(cluster, checkout, "--undo-on-failure", "--timeout", "60s")


def test_ctrl_c_before_the_rollback_is_sent_keeps_the_failure_and_says_not_sent(cluster, checkout):
    arrived = threading.Event()
    # the failure is being explained (events read) when Ctrl-C comes: no rollback follows
    held = {"action": arrived.set, "delay": 5}
    process = crash_looping_restart_with_undo(cluster, checkout, ("GET", EVENTS_LIST, held))
    code, stdout, stderr = interrupt_when(cluster, process, arrived.is_set)
    assert code == 130, stdout + stderr
    assert "✗ Restart failed: pod backend-" in stdout
    assert "Interrupted while explaining the failure: the rollback was not sent." in stdout
    assert len(patches(cluster)) == 1
    assert "Traceback" not in stdout + stderr


def test_ctrl_c_while_the_rollback_is_on_its_way_keeps_the_failure_and_says_so(cluster, checkout):
    arrived = threading.Event()
    held = {"action": arrived.set, "delay": 5}  # the rollback's PATCH
    process = crash_looping_restart_with_undo(cluster, checkout, ("PATCH", DEPLOYMENT, held))
    code, stdout, stderr = interrupt_when(cluster, process, arrived.is_set)
    assert code == 130, stdout + stderr
    assert "✗ Restart failed: pod backend-" in stdout
    assert (
        "Interrupted while rolling back: the rollback to revision 1 was on its way: "
        "it may have been applied."
    ) in stdout
    assert "kubectl restart-backend status --deployment backend -n shop" in stdout
    assert "Traceback" not in stdout + stderr


def test_ctrl_c_after_the_rollback_was_sent_keeps_the_failure_and_says_it_goes_on(
    cluster, checkout
):
    arrived = threading.Event()

    def hold_the_next_replicaset_list():
        cluster.faults.before("GET", r"/replicasets", action=arrived.set, delay=5)

    after_rollback = {"action": hold_the_next_replicaset_list}
    process = crash_looping_restart_with_undo(
        cluster, checkout, ("PATCH", DEPLOYMENT, after_rollback)
    )
    code, stdout, stderr = interrupt_when(cluster, process, arrived.is_set)
    assert code == 130, stdout + stderr
    assert "✗ Restart failed: pod backend-" in stdout
    assert (
        "Interrupted while rolling back: the rollback to revision 1 was sent and goes on in "
        "the cluster."
    ) in stdout
    rollback = [p for p in patches(cluster) if p.content_type == "application/json-patch+json"]
    assert len(rollback) == 1 and rollback[0].status == 200
    assert "Traceback" not in stdout + stderr
