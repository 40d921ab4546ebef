"""End to end: defects found in review, each pinned by the run that showed it."""

from __future__ import annotations

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import interrupt_when, link, patches, start_console_script

EVENTS_LIST = r"/namespaces/shop/events"


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
    assert "restart goes on in the cluster" in stdout
    assert "Traceback" not in stdout + stderr
