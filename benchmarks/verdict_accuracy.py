"""Benchmark 7: verdict accuracy on rollouts that are doomed and rollouts that heal.

A corpus of rollouts whose outcome is known in advance: each kind of doom (a container that
keeps crashing, OOM after OOM, an image that does not exist, a registry that refuses the
credentials, a registry that stays down, a Secret that never comes, no room for the pods,
quota that never frees, one doomed pod among two that heal) and each kind of heal (a crash
or two while a dependency starts, one OOM at warm-up, registry 503/429/timeouts that pass,
a Secret created seconds after the pod, slow readiness, quota freed by the old pods, pods
that each heal from something else). Each rollout is judged by the plugin with its defaults,
by the plugin with --fail-fast (the old first-sign behaviour) and by `kubectl rollout status`.

Reported: the confusion matrix per tool (false failures: a healing rollout called failed;
missed failures: a doomed rollout called complete or left to time out) and the detection
latency per class, measured from marks recorded inside the simulated store's writes:

- doomed, "named after": from the moment the default tolerance is used up (the third exit of
  a crashing container; the third failed pull; first sign + the 30 s grace) to the exit;
- doomed, "after first sign": from the first new pod showing the trouble to the exit;
- healed: from the rollout's completion to the exit.

The full run uses the kubelet's real time scale (10 s back-offs are 10 s), so the numbers read
in real seconds. kubectl fails only on ProgressDeadlineExceeded: its Deployments get a
shortened progressDeadlineSeconds (stated; with the default 600 s it would wait ~600 s), ours
keep the default (so our verdicts are our own, not the deadline's).

Targets (issue 11): zero false and zero missed failures with the defaults; an image that does
not exist named within 2 s; a container that keeps crashing named within 2 s after the
tolerance is used up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import common as c

NAME = "backend"
SECRET_ENV = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "url"}}}]
TROUBLE_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "InvalidImageName",
    }
)
GRACE = 30.0  # the default --config-grace and --unschedulable-grace
RESTARTS, PULLS = 2, 2  # the default --max-restarts and --max-pull-failures


@dataclass
class Case:
    name: str
    doomed: bool
    kind: str  # crash | pull | grace | now | heal: how "tolerance used up" is marked
    behaviours: tuple[Callable[[], Any], ...] = ()  # in pod creation order, the last repeats
    uses_secret: bool = False  # the pods read Secret shop-db, deleted before the restart
    secret_after: Optional[float] = None  # ... and re-created this long after a pod needs it
    max_unavailable: Optional[int] = None  # a pod quota of 3 with this rolling update
    quick: bool = False


def _corpus() -> list[Case]:
    from tests.cluster.behaviours import Behaviour as B

    def pulls(answer: str, failures: Optional[int] = None) -> Callable[[], Any]:
        return lambda: B.image_pull_backoff(pull_error=answer, failures=failures)

    return [
        # -- doomed
        Case("crash loop", True, "crash", (B.crash_loop,), quick=True),
        Case("OOM after OOM", True, "crash", (B.oom_killed,)),
        Case("image not found", True, "now", (pulls("not_found"),), quick=True),
        Case("registry refuses credentials", True, "now", (pulls("unauthorized"),)),
        Case("registry down (503)", True, "pull", (pulls("unavailable"),)),
        Case("Secret never created", True, "grace", uses_secret=True),
        Case("unschedulable", True, "grace", (B.unschedulable,)),
        Case("quota never freed", True, "grace", max_unavailable=0),
        Case(
            "1 doomed pod, 2 that heal",
            True,
            "crash",
            (
                lambda: B.crash_loop(failures=1),
                pulls("unavailable", 1),
                lambda: B.crash_loop(exit_code=7),
            ),
        ),
        # -- heals
        Case("crash once", False, "heal", (lambda: B.crash_loop(failures=1),), quick=True),
        Case("crash twice", False, "heal", (lambda: B.crash_loop(failures=2),)),
        Case("OOM once", False, "heal", (lambda: B.oom_killed(failures=1),)),
        Case("registry 503 once", False, "heal", (pulls("unavailable", 1),), quick=True),
        Case("registry 429 twice", False, "heal", (pulls("rate_limited", 2),)),
        Case("registry timeout once", False, "heal", (pulls("timeout", 1),)),
        Case("Secret created 5 s late", False, "heal", uses_secret=True, secret_after=5.0),
        Case("readiness failing 20 s", False, "heal", (lambda: B.never_ready(unready_for=20),)),
        Case("quota freed by old pods", False, "heal", max_unavailable=1),
        Case(
            "3 pods, each heals",
            False,
            "heal",
            (lambda: B.crash_loop(failures=1), pulls("timeout", 1), B.healthy),
        ),
    ]


# --------------------------------------------------------------------------- marks


class TroubleMarks:
    """When (in this process's monotonic clock, inside the store's writes) a new pod first
    showed trouble, when the default tolerance was used up, and when the rollout completed."""

    def __init__(self, cluster: Any, namespace: str, kind: str) -> None:
        self.namespace, self.kind = namespace, kind
        self.old_pods = {p["metadata"]["name"] for p in cluster.list("pods", namespace)}
        self.first_sign: Optional[float] = None
        self.used_up: Optional[float] = None
        self._pull_entries: dict[str, int] = {}
        self._last_reason: dict[str, str] = {}
        self.rollout = c.RolloutMarks(cluster, namespace, NAME)
        self._unsubscribe = cluster.store.subscribe(self._on_change)

    def _on_change(self, event: Any) -> None:
        now = time.monotonic()
        meta = event.obj.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return
        if event.resource == "replicasets":
            failing = any(
                cond.get("type") == "ReplicaFailure" and cond.get("status") == "True"
                for cond in (event.obj.get("status") or {}).get("conditions") or []
            )
            if failing and self.first_sign is None:
                self.first_sign = now
            return
        if event.resource != "pods" or meta.get("name") in self.old_pods:
            return
        if event.type == "DELETED":
            return
        status = event.obj.get("status") or {}
        unschedulable = any(
            cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable"
            for cond in status.get("conditions") or []
        )
        for cs in status.get("containerStatuses") or []:
            key = f"{meta.get('name')}/{cs.get('name')}"
            state = cs.get("state") or {}
            reason = (state.get("waiting") or {}).get("reason") or ""
            down = reason == "CrashLoopBackOff" or "terminated" in state
            if (reason in TROUBLE_WAITING or down or unschedulable) and self.first_sign is None:
                self.first_sign = now
            if self.used_up is not None:
                continue
            if self.kind == "crash" and down and int(cs.get("restartCount") or 0) >= RESTARTS:
                self.used_up = now
            if reason == "ErrImagePull" and self._last_reason.get(key) != reason:
                self._pull_entries[key] = self._pull_entries.get(key, 0) + 1
                if self.kind == "pull" and self._pull_entries[key] > PULLS:
                    self.used_up = now
            self._last_reason[key] = reason
        if unschedulable and self.first_sign is None:
            self.first_sign = now

    def close(self) -> None:
        self._unsubscribe()
        self.rollout.close()

    def decidable(self) -> Optional[float]:
        """When the defaults could first call the rollout doomed."""
        if self.kind == "now":
            return self.first_sign
        if self.kind == "grace":
            return None if self.first_sign is None else self.first_sign + GRACE
        return self.used_up


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    case: str
    tool: str
    doomed: bool
    verdict: str  # failed | complete | timeout
    wall: float
    after_decidable: Optional[float] = None
    after_first_sign: Optional[float] = None
    after_complete: Optional[float] = None
    notes: list[str] = field(default_factory=list)


TOOLS = ("plugin (defaults)", "plugin --fail-fast", "kubectl rollout status")


def run_case(cluster, sandbox, case: Case, tool: str, serial: int, deadline: int) -> Result:
    """Prepare a healthy linked Deployment that the restart will take into `case`, run
    `tool` on the restart, and say what it called the rollout and when."""
    namespace = f"acc-{serial}"
    for old in cluster.list("deployments"):
        if old["metadata"]["namespace"].startswith("acc-"):
            cluster.delete("deployments", old["metadata"]["namespace"], old["metadata"]["name"])
    kubectl = tool.startswith("kubectl")
    shape: dict = {"progress_deadline_seconds": deadline if kubectl else 600}
    if case.uses_secret:
        cluster.create_secret(namespace, "shop-db", {"url": "postgres://db"})
        shape["containers"] = [{"name": "api", "image": "acme/shop:1", "env": SECRET_ENV}]
    if case.max_unavailable is not None:
        surge = {"maxSurge": 1, "maxUnavailable": case.max_unavailable}
        shape["strategy"] = {"type": "RollingUpdate", "rollingUpdate": surge}
    c.link_deployment(cluster, namespace, NAME, **shape)
    if case.uses_secret:
        cluster.delete("secrets", namespace, "shop-db")
        if case.secret_after is not None:
            data = {"url": "postgres://db"}
            cluster.create_secret(namespace, "shop-db", data, after=case.secret_after)
    if case.max_unavailable is not None:
        cluster.set_pod_quota(namespace, 3)
    if case.behaviours:
        cluster.set_behaviours(namespace, NAME, [make() for make in case.behaviours])
    marks = TroubleMarks(cluster, namespace, case.kind)
    home = sandbox.home()
    try:
        if kubectl:
            c.restart_in_cluster(cluster, namespace, NAME)
            argv = c.kubectl_command(
                cluster.kubeconfig, home / "cache", "rollout", "status",
                f"deployment/{NAME}", "-n", namespace, "--timeout=300s",
            )  # fmt: skip
        else:
            flags = ["--timeout", "5m"] + (["--fail-fast"] if "fail-fast" in tool else [])
            argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig, *flags)
        proc = c.run(argv, env=sandbox.env(home), cwd=home, timeout=400)
    finally:
        marks.close()
    verdict = _verdict(proc, kubectl)
    result = Result(case.name, tool, case.doomed, verdict, proc.wall)
    if marks.first_sign is not None:
        result.after_first_sign = proc.ended - marks.first_sign
    decidable = marks.decidable()
    if decidable is not None:
        result.after_decidable = proc.ended - decidable
    if marks.rollout.complete is not None and verdict == "complete":
        result.after_complete = proc.ended - marks.rollout.complete
    if verdict == "error":
        raise SystemExit(f"{case.name} / {tool}: exit {proc.returncode}\n{proc.output[-3000:]}")
    return result


def _verdict(proc: c.Proc, kubectl: bool) -> str:
    if proc.returncode == 0:
        return "complete"
    if kubectl:
        if "exceeded its progress deadline" in proc.output:
            return "failed"
        if "timed out waiting" in proc.output:
            return "timeout"
        return "error"
    return {1: "failed", 3: "timeout"}.get(proc.returncode, "error")


# --------------------------------------------------------------------------- report


def confusion(results: list[Result], tool: str) -> list[list[str]]:
    rows = []
    for truth, label in ((True, "doomed"), (False, "heals")):
        mine = [r for r in results if r.tool == tool and r.doomed is truth]
        counts = {
            v: sum(1 for r in mine if r.verdict == v) for v in ("failed", "complete", "timeout")
        }
        rows.append([tool, label, counts["failed"], counts["complete"], counts["timeout"]])
    return rows


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    cases = [case for case in _corpus() if case.quick or not args.quick]
    time_scale = 0.02 if args.quick else 1.0
    deadline = 4 if args.quick else 60
    report = c.Report("Verdict accuracy (benchmark 7)", args.quick)
    sandbox = c.Sandbox()
    cluster = c.start_cluster(sim_config=c.sim_config(time_scale=time_scale))
    serial = iter(range(1, 1_000_000))
    results: list[Result] = []
    try:
        for case in cases:
            for _rep in range(c.reps(args, full=1, quick=1)):
                for tool in TOOLS:
                    results.append(run_case(cluster, sandbox, case, tool, next(serial), deadline))
                    print(f"  {case.name:<28} {tool:<24} {results[-1].verdict}", flush=True)
    finally:
        cluster.stop()
        sandbox.close()
    add_report(report, results, cases, time_scale, deadline)
    c.finish(report, args)


def add_report(report, results, cases, time_scale: float, deadline: int) -> None:
    doomed = sum(1 for case in cases if case.doomed)
    report.note(
        f"Corpus: {len(cases)} rollouts ({doomed} doomed, {len(cases) - doomed} that heal), "
        f"3 replicas each, kubelet time scale {time_scale:g} (1 = real back-offs: 10 s, 20 s, "
        f"...). kubectl's Deployments: progressDeadlineSeconds = {deadline} (the default 600 "
        "would make each of its doomed verdicts ~600 s); the plugin's: 600."
    )
    report.table(
        ["tool", "truth", "called failed", "called complete", "timed out"],
        [row for tool in TOOLS for row in confusion(results, tool)],
    )
    summary = []
    for tool in TOOLS:
        mine = [r for r in results if r.tool == tool]
        false_failures = sum(1 for r in mine if not r.doomed and r.verdict == "failed")
        missed = sum(1 for r in mine if r.doomed and r.verdict != "failed")
        summary.append([tool, false_failures, missed])
    report.table(["tool", "false failures", "missed failures"], summary)
    rows = []
    for case in cases:
        row = [case.name, "doomed" if case.doomed else "heals"]
        for tool in TOOLS:
            (r,) = [x for x in results if x.case == case.name and x.tool == tool][:1]
            row.append(_cell(r))
        rows.append(row)
    report.table(["case", "truth", *TOOLS], rows)
    ours = [r for r in results if r.tool == TOOLS[0] and r.doomed and r.after_decidable is not None]
    theirs = [r for r in results if r.tool == TOOLS[2] and r.doomed and r.after_first_sign]
    ours_sign = [r.after_first_sign for r in results if r.tool == TOOLS[0] and r.doomed]
    med_ours = c.median(ours_sign)
    med_theirs = c.median(r.after_first_sign for r in theirs)
    report.note(
        "Latency, doomed: median after the tolerance was used up "
        f"{c.fmt_seconds(c.median(r.after_decidable for r in ours))} (max "
        f"{c.fmt_seconds(max((r.after_decidable for r in ours), default=None))}); median after "
        f"the first sign: ours {c.fmt_seconds(med_ours)}, kubectl {c.fmt_seconds(med_theirs)}. "
        f"Ratio (ours / kubectl, medians after the first sign): "
        f"**{c.fmt_ratio(c.ratio(med_ours, med_theirs))}**."
    )
    healed = [r.after_complete for r in results if r.tool == TOOLS[0] and not r.doomed]
    report.note(
        "Latency, heals: median from the rollout's completion to our exit "
        f"{c.fmt_seconds(c.median(healed))}. Cells: verdict, then for doomed rollouts the "
        "seconds after the tolerance was used up / after the first sign, for healing ones the "
        "seconds after completion."
    )


def _cell(r: Result) -> str:
    if r.doomed:
        times = "/".join(c.fmt_seconds(t) for t in (r.after_decidable, r.after_first_sign))
    else:
        times = c.fmt_seconds(r.after_complete)
    mark = "" if (r.verdict == "failed") == r.doomed else " **wrong**"
    return f"{r.verdict} {times}{mark}"


if __name__ == "__main__":
    main()
