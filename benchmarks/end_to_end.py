"""Benchmark 5: a whole restart, end to end.

Wall time of the plugin restarting a linked 3-replica Deployment (label lookup, patch,
watch, verdict) vs `kubectl rollout restart deployment/backend` followed by
`kubectl rollout status deployment/backend` on the same kind of rollout, alternating. kubectl
gets a fresh cache dir per repetition, shared by its two commands (the first pays for API
discovery, the second starts warm), as on a machine that has not talked to this cluster.

Target (issue 7): <= 1.1x kubectl's wall time for a ~10 s rollout; the ratio for a ~2 s
rollout, where start-up weighs most, is reported too.
"""

from __future__ import annotations

import common as c

NS, NAME = "shop", "backend"


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("End-to-end restart (benchmark 5)", args.quick)
    if args.quick:
        cases = [(0.3, c.reps(args, full=1, quick=1))]
    else:
        cases = [(3.2, c.reps(args, full=3)), (0.55, c.reps(args, full=5))]
    rows = []
    for ready_delay, count in cases:
        rows.append(measure(ready_delay, count))
    report.table(
        ["rollout (median)", "ours: median wall", "kubectl restart + status: median wall",
         "ratio", "ours: wall - rollout", "kubectl: wall - rollout", "runs"],
        [[c.fmt_seconds(r["rollout"]), c.fmt_seconds(r["ours"]), c.fmt_seconds(r["theirs"]),
          f"**{c.fmt_ratio(c.ratio(r['ours'], r['theirs']))}**",
          c.fmt_seconds(r["ours_overhead"]), c.fmt_seconds(r["theirs_overhead"]), r["runs"]]
         for r in rows],
    )  # fmt: skip
    report.note(
        "Wall = first process start to last process exit. 'wall - rollout' is what each tool "
        "adds to the rollout itself (start-up, lookup, patch, noticing the end, exit): the "
        "rollout is timed by the simulated cluster from the accepted patch to kubectl's "
        "completion rule. Target: ratio <= 1.1x for the ~10 s rollout. Console script."
    )
    c.finish(report, args)


def measure(ready_delay: float, count: int) -> dict:
    sandbox = c.Sandbox()
    cluster = c.start_cluster()
    try:
        c.link_deployment(cluster, NS, NAME, behaviour=c.healthy(ready_delay=ready_delay))
        c.wait_settled(cluster, NS, NAME)

        def timed(steps) -> dict:
            marks = c.RolloutMarks(cluster, NS, NAME)
            try:
                procs = steps()
            finally:
                marks.close()
            c.wait_settled(cluster, NS, NAME)
            wall = procs[-1].ended - procs[0].started
            return {"wall": wall, "rollout": marks.rollout_seconds}

        def plugin(_rep: int) -> dict:
            home = sandbox.home()
            argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig)

            def steps() -> list:
                proc = c.run(argv, env=sandbox.env(home), cwd=home)
                c.check(proc, 0, "plugin restart")
                return [proc]

            return timed(steps)

        def kubectl(_rep: int) -> dict:
            home = sandbox.home()
            env = sandbox.env(home)

            def steps() -> list:
                procs = []
                for verb in ("restart", "status"):
                    argv = c.kubectl_command(cluster.kubeconfig, home / "cache", "rollout",
                                             verb, f"deployment/{NAME}", "-n", NS)  # fmt: skip
                    procs.append(c.run(argv, env=env, cwd=home))
                    c.check(procs[-1], 0, f"kubectl rollout {verb}")
                return procs

            return timed(steps)

        ours, theirs = c.alternate(count, [plugin, kubectl])
    finally:
        cluster.stop()
        sandbox.close()
    ours_wall = c.median(r["wall"] for r in ours)
    theirs_wall = c.median(r["wall"] for r in theirs)
    return {
        "rollout": c.median(r["rollout"] for r in ours + theirs),
        "ours": ours_wall,
        "theirs": theirs_wall,
        "ours_overhead": c.median(r["wall"] - r["rollout"] for r in ours),
        "theirs_overhead": c.median(r["wall"] - r["rollout"] for r in theirs),
        "runs": f"{len(ours)} + {len(theirs)}",
    }


if __name__ == "__main__":
    main()
