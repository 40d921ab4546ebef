"""End to end: defects found in review, each pinned by the run that showed it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import link, patches

CONSOLE_SCRIPT = Path(sys.executable).parent / "kubectl-restart_backend"
EVENTS_LIST = r"/namespaces/shop/events"


def start_console_script(cluster, checkout, *args):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(checkout),
        "KUBECONFIG": str(cluster.kubeconfig),
        "NO_COLOR": "1",
    }
    return subprocess.Popen(
        [str(CONSOLE_SCRIPT), *args],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_while_the_failure_is_explained_does_not_say_nothing_was_changed(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour(kind="crashloop"))
    # The events list keeps failing, so the report is still being gathered when Ctrl-C comes.
    cluster.faults.fail_next(100_000, "GET", EVENTS_LIST, status=503)
    process = start_console_script(cluster, checkout, "--timeout", "60s")
    try:
        cluster.wait_for(
            lambda: (
                process.poll() is not None
                or any(r.status == 503 and "/events" in r.path for r in cluster.requests)
            ),
            timeout=60,
            message="the plugin never asked for the events",
        )
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stdout + stderr
    assert len(patches(cluster)) == 1
    assert "nothing was changed" not in stdout + stderr
    assert "restart goes on in the cluster" in stdout
    assert "Traceback" not in stdout + stderr
