"""Benchmark 10: a restart across three clusters in two cluster waves (issue 14).

Wall time of one `kubectl restart-backend` with `waves: [{contexts: [staging]}, {contexts:
[prod-eu, prod-us]}]` on a simulated fleet (three API servers, one kubeconfig with a context
each) against the baseline a pipeline would otherwise script: the single-cluster command
three times in sequence (`--context staging`, then prod-eu, then prod-us), measured in the
same run, alternating. And the API requests and watches each cluster receives: a cluster of
a wave must cost what a single-cluster run costs (flat), not more.

Expected: the waves run pays one start-up instead of three and overlaps prod-eu with prod-us,
so about two rollouts' time instead of three.
"""

from __future__ import annotations

from collections import Counter

import common as c

CONTEXTS = ("staging", "prod-eu", "prod-us")
WAVES = "waves:\n- contexts: [staging]\n- contexts: [prod-eu, prod-us]\n"


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("Cluster waves: two waves, three clusters (benchmark 10)", args.quick)
    ready_delay = 0.3 if args.quick else 1.0
    count = c.reps(args, full=5, quick=1)
    sandbox = c.Sandbox()
    fleet = start_fleet(ready_delay)
    try:
        checkout = make_checkout(sandbox)
        waves_runs, sequence_runs = c.alternate(
            count,
            [lambda _rep: waves(fleet, sandbox, checkout),
             lambda _rep: in_sequence(fleet, sandbox, checkout)],
        )  # fmt: skip
    finally:
        fleet.stop()
        sandbox.close()
    ours = c.median(r["wall"] for r in waves_runs)
    theirs = c.median(r["wall"] for r in sequence_runs)
    report.table(
        ["run", "wall (median)", "min", "ratio (waves / three in sequence)", "reps"],
        [
            ["one run, two cluster waves", c.fmt_seconds(ours),
             c.fmt_seconds(min(r["wall"] for r in waves_runs)), c.fmt_ratio(c.ratio(ours, theirs)),
             count],
            ["three single-cluster runs in sequence", c.fmt_seconds(theirs),
             c.fmt_seconds(min(r["wall"] for r in sequence_runs)), "1.00x", count],
        ],
    )  # fmt: skip
    report.table(
        ["cluster", "waves run: requests", "waves run: watches", "single run: requests",
         "single run: watches", "ratio waves/single (requests + watches)"],
        [
            [context, _median_of(waves_runs, context, "requests"),
             _median_of(waves_runs, context, "watches"),
             _median_of(sequence_runs, context, "requests"),
             _median_of(sequence_runs, context, "watches"),
             c.fmt_ratio(c.ratio(_cost(waves_runs, context), _cost(sequence_runs, context)))]
            for context in CONTEXTS
        ],
    )  # fmt: skip
    report.note(
        f"Each cluster: Deployment shop/backend, 3 replicas, 25%/25% RollingUpdate, pods ready "
        f"{ready_delay:g} s after they start (SimConfig default otherwise). Ours: "
        "`.restart-backend.yaml` with the two waves, one process. Baseline: the same command "
        "with `--context NAME`, three processes one after the other (their summed wall, "
        "start-ups included). Requests per cluster from each cluster's request log (medians); "
        "what differs between the two, by resource: "
        + (_difference(waves_runs[-1], sequence_runs[-1]) or "nothing")
        + "."
    )
    c.finish(report, args)


def start_fleet(ready_delay: float):
    from tests.cluster import SimFleet

    fleet = SimFleet(CONTEXTS).start()
    for cluster in fleet:
        c.link_deployment(cluster, behaviour=c.healthy(ready_delay=ready_delay))
    return fleet


def make_checkout(sandbox: c.Sandbox):
    from tests.plugin_runner import make_checkout as checkout_of

    checkout = checkout_of(sandbox.home() / "shop")
    (checkout / ".restart-backend.yaml").write_text(WAVES)
    return checkout


def waves(fleet, sandbox: c.Sandbox, checkout) -> dict:
    """One run, the two waves of the config file."""
    _clear(fleet)
    proc = c.run(_command(fleet), env=sandbox.env(sandbox.home()), cwd=checkout, timeout=600)
    c.check(proc, 0, "the two-wave restart")
    return {"wall": proc.wall, **_costs(fleet)}


def in_sequence(fleet, sandbox: c.Sandbox, checkout) -> dict:
    """The single-cluster command three times, one after the other, as a script would."""
    _clear(fleet)
    wall = 0.0
    for context in CONTEXTS:
        argv = _command(fleet, "--context", context)
        proc = c.run(argv, env=sandbox.env(sandbox.home()), cwd=_plain(checkout), timeout=600)
        c.check(proc, 0, f"the restart of {context}")
        wall += proc.wall
    return {"wall": wall, **_costs(fleet)}


def _command(fleet, *args: str) -> list[str]:
    return [str(c.PLUGIN), "--kubeconfig", fleet.kubeconfig, "--no-verify", *args]


def _plain(checkout):
    """The same repo without the waves: (a checkout of its own beside it)."""
    plain = checkout.parent / "shop-one-cluster"
    if not plain.exists():
        from tests.plugin_runner import make_checkout as checkout_of

        checkout_of(plain)
    return plain


def _clear(fleet) -> None:
    for cluster in fleet:
        cluster.clear_requests()


def _costs(fleet) -> dict:
    costs = {}
    for context in CONTEXTS:
        log = [r for r in fleet[context].requests if not r.path.startswith("/version")]
        watches = [r for r in log if r.is_watch]
        costs[context] = {
            "requests": len(log) - len(watches),
            "watches": len(watches),
            "by": Counter(f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in log),
        }
    return costs


def _median_of(runs: list[dict], context: str, what: str) -> str:
    return c.fmt_num(c.median(r[context][what] for r in runs), 0)


def _cost(runs: list[dict], context: str) -> float:
    return c.median(r[context]["requests"] + r[context]["watches"] for r in runs) or 0.0


def _difference(waves_run: dict, single_run: dict) -> str:
    parts = []
    for context in CONTEXTS:
        more = waves_run[context]["by"] - single_run[context]["by"]
        fewer = single_run[context]["by"] - waves_run[context]["by"]
        if more or fewer:
            said = [f"+{n} {k}" for k, n in more.items()] + [f"-{n} {k}" for k, n in fewer.items()]
            parts.append(f"{context}: {', '.join(said)}")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
