"""Benchmark 11: SIGTERM mid-watch -> exit (a cancelled CI job, `timeout`), and what was said.

A pipeline that cancels a restart needs the process gone quickly and a word on what it left
behind. Measured from the signal to the process's exit, while the plugin watches a rollout
that never becomes ready: on one cluster (the signal handled in the main thread), and on a
cluster wave of two (the main thread asks each cluster's thread to stop: `cancellation.py`).
Baseline in the same run: `kubectl rollout status` on the same kind of rollout (it cancels
its watch on SIGTERM and exits 1).
"""

from __future__ import annotations

import os
import signal
import time

import common as c

CONTEXTS = ("prod-eu", "prod-us")
WAVE = "waves:\n- contexts: [prod-eu, prod-us]\n"


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("SIGTERM mid-watch -> exit (benchmark 11)", args.quick)
    count = c.reps(args, full=7, quick=1)
    sandbox = c.Sandbox()
    fleet = start_fleet()
    try:
        wave_checkout, plain_checkout = make_checkouts(sandbox)
        one, wave, kubectl = c.alternate(
            count,
            [lambda _rep: ours(fleet, sandbox, plain_checkout, "--context", "prod-eu"),
             lambda _rep: ours(fleet, sandbox, wave_checkout),
             lambda _rep: rollout_status(fleet, sandbox)],
        )  # fmt: skip
    finally:
        fleet.stop()
        sandbox.close()
    theirs = c.median(r["latency"] for r in kubectl)
    rows = []
    for name, runs, code in (
        ("plugin, one cluster", one, 143),
        ("plugin, a wave of two clusters", wave, 143),
        ("kubectl rollout status", kubectl, 1),
    ):
        latency = c.median(r["latency"] for r in runs)
        rows.append([
            name, c.fmt_seconds(latency), c.fmt_seconds(max(r["latency"] for r in runs)),
            c.fmt_ratio(c.ratio(latency, theirs)), code, runs[-1]["said"], count,
        ])  # fmt: skip
    report.table(
        ["run", "signal -> exit (median)", "max", "ratio (/ kubectl)", "exit", "says", "reps"],
        rows,
    )
    report.note(
        "Deployment shop/backend (3 replicas) whose new pods never become ready, one per "
        "cluster of a simulated fleet. The signal is sent once the process has its watches "
        "open (seen in the cluster's request log); exit is caught by a thread blocked in "
        "wait4. `says`: our line that names the interruption; kubectl's last line."
    )
    c.finish(report, args)


def start_fleet():
    from tests.cluster import Behaviour, SimFleet

    fleet = SimFleet(CONTEXTS).start()
    for cluster in fleet:
        c.link_deployment(cluster)  # healthy until now; its restarted pods never get ready
        cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    return fleet


def make_checkouts(sandbox: c.Sandbox):
    from tests.plugin_runner import make_checkout

    wave = make_checkout(sandbox.home() / "shop")
    (wave / ".restart-backend.yaml").write_text(WAVE)
    return wave, make_checkout(sandbox.home() / "shop-one-cluster")


def ours(fleet, sandbox: c.Sandbox, checkout, *args: str) -> dict:
    argv = [str(c.PLUGIN), "--kubeconfig", fleet.kubeconfig, "--no-verify", "--timeout", "5m"]
    contexts = [args[1]] if args else list(CONTEXTS)
    return _interrupted([*argv, *args], fleet, contexts, sandbox, checkout, 143, "goes on")


def rollout_status(fleet, sandbox: c.Sandbox) -> dict:
    cluster = fleet["prod-eu"]
    c.restart_in_cluster(cluster, "shop", "backend")
    home = sandbox.home()
    argv = c.kubectl_command(
        fleet.kubeconfig, home / "kube-cache", "--context", "prod-eu", "rollout", "status",
        "deployment/backend", "-n", "shop", "--timeout", "5m",
    )  # fmt: skip
    return _interrupted(argv, fleet, ["prod-eu"], sandbox, home, 1, "")


def _interrupted(argv, fleet, contexts, sandbox, cwd, expected: int, word: str) -> dict:
    for context in contexts:
        fleet[context].clear_requests()
    running = c.Running(argv, env=sandbox.env(sandbox.home()), cwd=cwd, timeout=300)
    for context in contexts:
        fleet[context].wait_for(
            lambda ctx=context: any(r.is_watch for r in fleet[ctx].requests),
            timeout=120,
            message=f"no watch on {context}",
        )
    sent = time.monotonic()
    os.kill(running.pid, signal.SIGTERM)
    proc = running.wait()
    c.check(proc, expected, " ".join(argv[:1] + argv[-4:]))
    lines = proc.output.splitlines()
    said = (
        next((line for line in lines if word in line), "") if word else (lines[-1] if lines else "")
    )
    return {"latency": proc.ended - sent, "said": _cell(said) or "(nothing)"}


def _cell(line: str) -> str:
    return line.replace("|", "/")[:90]


if __name__ == "__main__":
    main()
