"""Benchmark 3: API cost of one restart.

HTTP requests and watch streams the plugin opens per restart, counted from the simulated
cluster's request log, for 1, 10, 100 and 500 replicas and for rollouts of ~5 s and ~60 s,
vs the 5-second poll loop of get-deployment + list-pods the spec describes: its cost is
computed from each measured rollout duration (lookup + patch + 2 requests per poll, a poll
at once and every 5 s until one sees the rollout complete), and the loop is also run for
real (poll_loop.py, a subprocess) on one case to check that arithmetic.

Target (issue 7): constant (no growth with replicas or duration), <= 12 requests + <= 3
watches.
"""

from __future__ import annotations

import math
from pathlib import Path

import common as c

NS, NAME = "shop", "backend"
POLL = 5.0
SELECTOR = "restart-backend/repo=acme-shop,restart-backend/branch=main"


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("API cost per restart (benchmark 3)", args.quick)
    if args.quick:
        cases = [(1, None), (10, None)]
        real_case = (3, None)
    else:
        cases = [(1, None), (10, None), (100, None), (500, None), (3, 1.5), (3, 19.5)]
        real_case = (3, 1.5)
    sandbox = c.Sandbox()
    rows, real_row = [], None
    try:
        for replicas, ready_delay in cases:
            rows.append(measure(sandbox, replicas, ready_delay, plugin=True))
        real_row = measure(sandbox, *real_case, plugin=False)
    finally:
        sandbox.close()
    report.table(
        ["replicas", "rollout", "ours: requests", "ours: watches", "ours: total",
         "poll loop (computed): requests", "ratio ours/poll", "our peak RSS"],
        [
            [r["replicas"], c.fmt_seconds(r["rollout"]), r["requests"], r["watches"],
             r["requests"] + r["watches"], r["poll_requests"],
             c.fmt_ratio(c.ratio(r["requests"] + r["watches"], r["poll_requests"])),
             f"{r['rss']:.0f} MB"]
            for r in rows
        ],
    )  # fmt: skip
    if real_row is not None:
        report.note(
            f"Poll loop run for real ({real_row['replicas']} replicas, rollout "
            f"{c.fmt_seconds(real_row['rollout'])}): {real_row['requests']} requests, "
            f"{real_row['watches']} watches, {real_row['polls']} polls; the arithmetic for that "
            f"duration says {real_row['poll_requests']} requests."
        )
    kinds = sorted({k for r in rows for k in r["kinds"]})
    report.note(
        "Our requests by kind (same in every case unless listed): "
        + "; ".join(f"{k} x{rows[0]['kinds'].get(k, 0)}" for k in kinds)
        + "".join(
            f"\n- {r['replicas']} replicas / {c.fmt_seconds(r['rollout'])}: {r['kinds']}"
            for r in rows[1:]
            if r["kinds"] != rows[0]["kinds"]
        )
    )
    report.note(
        "Poll loop, computed: 2 + 2 x (ceil(T / 5 s) + 1) for a rollout of T seconds; each of "
        "its pod LISTs also grows with the replicas (every poll re-sends every pod), which a "
        "request count does not show. Ours: requests and watch streams from the request log, "
        "one restart per row, rollouts of 3 replicas slowed with a per-pod readiness delay."
    )
    c.finish(report, args)


def measure(sandbox: c.Sandbox, replicas: int, ready_delay, *, plugin: bool) -> dict:
    """One restart in a fresh cluster; the request log tells what it cost."""
    config = c.sim_config(record_events=False) if replicas > 100 else None
    cluster = c.start_cluster(sim_config=config)
    try:
        behaviour = c.healthy(ready_delay=ready_delay) if ready_delay else None
        c.link_deployment(cluster, NS, NAME, replicas=replicas, behaviour=behaviour)
        c.wait_settled(cluster, NS, NAME)
        marks = c.RolloutMarks(cluster, NS, NAME)
        cluster.clear_requests()
        home = sandbox.home()
        if plugin:
            argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig, "--timeout", "5m")
        else:
            script = Path(__file__).with_name("poll_loop.py")
            argv = [c.sys.executable, str(script), cluster.kubeconfig, SELECTOR, str(POLL)]
        try:
            proc = c.run(argv, env=sandbox.env(home), cwd=home, timeout=600)
        finally:
            marks.close()
        c.check(proc, 0, f"restart of {replicas} replicas")
        log = [r for r in cluster.requests if not r.path.startswith("/version")]
    finally:
        cluster.stop()
    watches = [r for r in log if r.is_watch]
    kinds: dict[str, int] = {}
    for r in log:
        kind = f"{'WATCH' if r in watches else r.method} {_resource(r.path)}"
        kinds[kind] = kinds.get(kind, 0) + 1
    rollout = marks.rollout_seconds or 0.0
    return {
        "replicas": replicas,
        "rollout": rollout,
        "requests": len(log) - len(watches),
        "watches": len(watches),
        "kinds": kinds,
        "poll_requests": 2 + 2 * (math.ceil(rollout / POLL) + 1),
        "polls": proc.stdout.strip() if not plugin else None,
        "rss": proc.maxrss_mb,
    }


def _resource(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[-1:]
    return "/".join(rest[:1] + (["{name}"] if len(rest) > 1 else []) + rest[2:])


if __name__ == "__main__":
    main()
