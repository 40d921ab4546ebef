"""Benchmark 8: the smoke check and the settle window (issue 15).

Two questions:

1. What do they cost a healthy restart? The plugin restarts a linked 3-replica Deployment
   with an HTTP readiness probe and a Service, alternating: with `--no-verify`, with the
   default check, and with the check plus `--settle`. Reported: median wall times, the
   check's own duration (the `verification.durationSeconds` the plugin reports: listing the
   Services and the GET through the Service proxy), and what the window adds beyond its
   length. Target: the check alone under 0.5 s.
2. What do they catch? A corpus of restarts whose pods pass readiness but do not serve
   (every answer 500; every answer 503 with a body; a crash some seconds after becoming
   ready), with healthy and healing controls, judged by `kubectl rollout status` and by the
   plugin (`--settle`). Reported: the share of "ready but broken" restarts kubectl calls
   successful and the plugin calls failed, false failures on the controls, and when the
   plugin said so (seconds after the rollout completed).

The full run uses the kubelet's real time scale (a crash "60 s after ready" happens 60 s
after), so the settle window's numbers read in real seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import common as c

NAME = "backend"


def deploy(cluster: Any, namespace: str, **kwargs: Any) -> None:
    """The linked Deployment with its probe, and the Service in front of it."""
    from tests.plugin_runner import HTTP_SERVICE_PORTS, PROBED

    c.link_deployment(cluster, namespace, NAME, containers=PROBED, **kwargs)
    cluster.create_service(namespace, NAME, {"app": NAME}, ports=HTTP_SERVICE_PORTS)


# --------------------------------------------------------------------------- 1. the cost


def measure_cost(args: Any, settle: float) -> dict:
    sandbox = c.Sandbox()
    cluster = c.start_cluster()
    namespace = "shop"
    try:
        deploy(cluster, namespace, behaviour=c.healthy(ready_delay=0.3))
        c.wait_settled(cluster, namespace, NAME)

        def runner(*flags: str) -> Callable[[int], dict]:
            def run(_rep: int) -> dict:
                home = sandbox.home()
                argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig, "-n", namespace,
                                        "-o", "json", *flags)  # fmt: skip
                marks = c.RolloutMarks(cluster, namespace, NAME)
                try:
                    proc = c.run(argv, env=sandbox.env(home), cwd=home)
                finally:
                    marks.close()
                c.check(proc, 0, f"plugin {' '.join(flags)}")
                c.wait_settled(cluster, namespace, NAME)
                verification = json.loads(proc.stdout).get("verification") or {}
                return {
                    "wall": proc.wall,
                    "after_complete": proc.ended - marks.complete if marks.complete else None,
                    "check": verification.get("durationSeconds"),
                    "status": verification.get("status"),
                }

            return run

        count = c.reps(args, full=5, quick=1)
        off, check, settled = c.alternate(
            count, [runner("--no-verify"), runner(), runner("--settle", f"{settle:g}s")]
        )
    finally:
        cluster.stop()
        sandbox.close()
    for result in check + settled:
        if result["status"] != "passed":
            raise SystemExit(f"the check did not pass on a healthy restart: {result}")
    return {"off": off, "check": check, "settled": settled, "runs": count}


def report_cost(report: c.Report, cost: dict, settle: float) -> None:
    off, check, settled = cost["off"], cost["check"], cost["settled"]
    named = (("off", off), ("check", check), ("settled", settled))
    wall = {name: c.median(r["wall"] for r in runs) for name, runs in named}
    tail = {
        name: c.median(r["after_complete"] for r in runs if r["after_complete"] is not None)
        for name, runs in named
    }
    check_alone = c.median(r["check"] for r in check)
    report.table(
        ["run", "median wall", "rollout complete -> exit (median)", "check (plugin's own time)"],
        [
            ["--no-verify", c.fmt_seconds(wall["off"]), c.fmt_seconds(tail["off"]), "-"],
            ["default check", c.fmt_seconds(wall["check"]), c.fmt_seconds(tail["check"]),
             c.fmt_seconds(check_alone)],
            [f"check + --settle {settle:g}s", c.fmt_seconds(wall["settled"]),
             c.fmt_seconds(tail["settled"]),
             c.fmt_seconds(c.median(r["check"] for r in settled))],
        ],
    )  # fmt: skip
    added = _minus(tail["check"], tail["off"])
    window = _minus(tail["settled"], tail["check"])
    beyond = None if window is None else window - settle
    report.note(
        f"Measured from the rollout's completion (in the cluster) to the exit, so the "
        f"rollout's own length does not blur it: the check adds {c.fmt_seconds(added)} "
        f"(its own time, Services listed + GET through the Service proxy: "
        f"{c.fmt_seconds(check_alone)}; target < 0.5 s); the {settle:g} s window adds "
        f"{c.fmt_seconds(window)}, {c.fmt_seconds(beyond)} beyond its length. Ratio (with "
        f"check / without, median walls): **{c.fmt_ratio(c.ratio(wall['check'], wall['off']))}"
        f"**. {cost['runs']} run(s) each, alternating; 3 replicas, ~1 s rollouts, console script."
    )


def _minus(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b


# --------------------------------------------------------------------------- 2. the catch


@dataclass
class Case:
    name: str
    broken: bool  # the pods are ready, but the backend does not serve (or stay up)
    behaviour: Callable[[], Any]
    quick: bool = False


def corpus(crash_after: float) -> list[Case]:
    from tests.cluster.behaviours import Behaviour as B

    return [
        Case("every answer 500", True, lambda: B.broken(status=500), quick=True),
        Case("every answer 503 + body", True,
             lambda: B.broken(status=503, body="database unreachable")),
        Case(f"crash {crash_after:g} s after ready", True,
             lambda: B.crash_after_ready(after=crash_after), quick=True),
        Case("healthy", False, B.healthy, quick=True),
        Case("503 once, then 200", False, lambda: B.broken(status=503, failures=1)),
        Case("slow answers (2 s)", False, lambda: B.slow(answer_delay=2.0)),
    ]  # fmt: skip


@dataclass
class Verdict:
    case: str
    tool: str
    broken: bool
    verdict: str  # complete | failed | timeout | error
    after_complete: Optional[float]


TOOLS = ("kubectl rollout status", "plugin --settle")


def run_case(cluster, sandbox, case: Case, tool: str, serial: int, plugin_flags) -> Verdict:
    namespace = f"ver-{serial}"
    deploy(cluster, namespace)
    cluster.set_behaviour(namespace, NAME, case.behaviour())
    home = sandbox.home()
    marks = c.RolloutMarks(cluster, namespace, NAME)
    kubectl = tool.startswith("kubectl")
    try:
        if kubectl:
            c.restart_in_cluster(cluster, namespace, NAME)
            argv = c.kubectl_command(cluster.kubeconfig, home / "cache", "rollout", "status",
                                     f"deployment/{NAME}", "-n", namespace)  # fmt: skip
        else:
            argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig, "-n", namespace, "--timeout",
                                    "2m", *plugin_flags)  # fmt: skip
        proc = c.run(argv, env=sandbox.env(home), cwd=home, timeout=300)
    finally:
        marks.close()
    verdict = {0: "complete", 1: "failed", 3: "timeout"}.get(proc.returncode, "error")
    if kubectl and proc.returncode != 0:
        verdict = "timeout" if "timed out" in proc.output else "error"
    if verdict == "error":
        raise SystemExit(f"{case.name} / {tool}: exit {proc.returncode}\n{proc.output[-3000:]}")
    after = proc.ended - marks.complete if marks.complete is not None else None
    return Verdict(case.name, tool, case.broken, verdict, after)


def report_catch(report: c.Report, results: list[Verdict], cases: list[Case], flags) -> None:
    rows = []
    for case in cases:
        row = [case.name, "ready but broken" if case.broken else "serves"]
        for tool in TOOLS:
            (r,) = [x for x in results if x.case == case.name and x.tool == tool][:1]
            wrong = (r.verdict == "failed") != case.broken
            row.append(f"{r.verdict} {c.fmt_seconds(r.after_complete)}"
                       + (" **wrong**" if wrong else ""))  # fmt: skip
        rows.append(row)
    report.table(["case", "truth", *TOOLS], rows)
    broken = [case.name for case in cases if case.broken]
    kubectl_ok = {r.case for r in results if r.tool == TOOLS[0] and r.verdict == "complete"}
    ours_failed = {r.case for r in results if r.tool == TOOLS[1] and r.verdict == "failed"}
    caught = [name for name in broken if name in kubectl_ok and name in ours_failed]
    false_failures = [
        r.case for r in results if r.tool == TOOLS[1] and not r.broken and r.verdict == "failed"
    ]
    report.note(
        f"Ready but broken: kubectl rollout status called {len(kubectl_ok & set(broken))} of "
        f"{len(broken)} successful; the plugin ({' '.join(flags)}) called "
        f"{len(ours_failed & set(broken))} of {len(broken)} failed: "
        f"**{len(caught)}/{len(broken)}** of the broken restarts kubectl passes are caught. "
        f"False failures on the {len(cases) - len(broken)} controls: {len(false_failures)}"
        + (f" ({', '.join(false_failures)})" if false_failures else "")
        + ". Cells: verdict, seconds from the rollout's completion to the exit."
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("Smoke check and settle window (benchmark 8)", args.quick)
    settle = 1.0 if args.quick else 5.0
    report_cost(report, measure_cost(args, settle), settle)

    time_scale = 0.02 if args.quick else 1.0
    crash_after = 100.0 if args.quick else 10.0  # kubelet seconds: 2 s (quick), 10 s
    window = "5s" if args.quick else "30s"
    flags = ("--settle", window, "--verify-timeout", "3s" if args.quick else "10s")
    cases = [case for case in corpus(crash_after) if case.quick or not args.quick]
    sandbox = c.Sandbox()
    cluster = c.start_cluster(sim_config=c.sim_config(time_scale=time_scale))
    serial = iter(range(1, 1_000_000))
    results: list[Verdict] = []
    try:
        for case in cases:
            for tool in TOOLS:
                results.append(run_case(cluster, sandbox, case, tool, next(serial), flags))
                print(f"  {case.name:<28} {tool:<24} {results[-1].verdict}", flush=True)
    finally:
        cluster.stop()
        sandbox.close()
    report.note(
        f"Corpus: {len(cases)} restarts, 3 replicas each, an HTTP readiness probe and a "
        f"Service; kubelet time scale {time_scale:g} (1: real seconds)."
    )
    report_catch(report, results, cases, flags)
    c.finish(report, args)


if __name__ == "__main__":
    main()
