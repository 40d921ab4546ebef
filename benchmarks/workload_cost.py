"""Benchmark 9: API cost of restarting several workloads at once (issue 13).

HTTP requests and watch streams of one `kubectl restart-backend --all` over 1, 5 and 20
linked workloads (Deployments, StatefulSets and DaemonSets in turn) of 3 and 300 pods each,
counted from the simulated cluster's request log, against the spec's 5-second poll loop
(GET the workload + LIST its pods, per workload), computed from each measured rollout
duration as api_cost.py computes it.

Target (issue 13): a fixed number of requests and watches per workload, flat in replicas:
the search is one LIST per kind for the whole run; each workload adds its PATCH, one LIST of
its pods (and of its ReplicaSets for a Deployment), the three URL lookups, its lock (GET and
POST of its Lease, a PUT to give it back, and one renewal PUT per 10 s of watching) and two
watches (three for a Deployment), whatever its size and however long its rollout takes.
"""

from __future__ import annotations

import math
from collections import Counter

import common as c
from api_cost import _resource

NS = "shop"
POLL = 5.0
KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    report = c.Report("API cost per workload, several at once (benchmark 9)", args.quick)
    if args.quick:
        cases = [(1, 3), (5, 3)]
    else:
        cases = [(1, 3), (5, 3), (20, 3), (1, 300), (5, 300), (20, 300)]
    sandbox = c.Sandbox()
    rows = []
    try:
        for workloads, pods in cases:
            rows.append(measure(sandbox, workloads, pods))
    finally:
        sandbox.close()
    report.table(
        ["workloads", "pods each", "run (wall)", "requests", "watches", "lookup",
         "per workload: requests", "per workload: watches", "poll loop (computed): requests",
         "ratio ours/poll", "our peak RSS"],
        [
            [r["workloads"], r["pods"], c.fmt_seconds(r["rollout"]), r["requests"],
             r["watches"], r["lookup"], _per(r, "requests"), _per(r, "watches"),
             r["poll_requests"],
             c.fmt_ratio(c.ratio(r["requests"] + r["watches"], r["poll_requests"])),
             f"{r['rss']:.0f} MB"]
            for r in rows
        ],
    )  # fmt: skip
    report.note(
        "Per workload: (requests - lookup) / workloads and watches / workloads, for the mix "
        "in the run (kinds in turn: Deployment, StatefulSet, DaemonSet). By kind, per "
        "workload: "
        + "; ".join(f"{kind}: {_by_kind(rows[-1], kind)}" for kind in KINDS if _has(rows[-1], kind))
    )
    report.note(
        "Poll loop, computed per workload: 2 + 2 x (ceil(T / 5 s) + 1) for a rollout of T "
        "seconds, summed over the workloads (each of its pod LISTs also grows with the pods, "
        "which a request count does not show). Ours: the request log of one `--all` run. "
        "300-pod workloads: SimConfig.bulk() (no Events), StatefulSets with Parallel pod "
        "management and maxUnavailable 25%, DaemonSets on 300 nodes with maxUnavailable 25%."
    )
    c.finish(report, args)


def measure(sandbox: c.Sandbox, workloads: int, pods: int) -> dict:
    """One `--all` restart of `workloads` linked workloads of `pods` pods each."""
    big = pods > 3
    nodes = tuple(f"sim-node-{i + 1}" for i in range(pods if big else 3))
    config = c.sim_config(nodes=nodes) if not big else _bulk(nodes)
    cluster = c.start_cluster(sim_config=config)
    try:
        names = [_create(cluster, i, pods, big) for i in range(workloads)]
        cluster.clear_requests()
        home = sandbox.home()
        argv = c.plugin_command(c.PLUGIN, cluster.kubeconfig, "--all", "--timeout", "10m")
        proc = c.run(argv, env=sandbox.env(home), cwd=home, timeout=900)
        c.check(proc, 0, f"restart of {workloads} workloads of {pods} pods")
        log = [r for r in cluster.requests if not r.path.startswith("/version")]
    finally:
        cluster.stop()
    watches = [r for r in log if r.is_watch]
    lookup = [r for r in log if r not in watches and _is_lookup(r)]
    per_workload = {name: Counter() for _kind, name in names}
    for r in log:
        owner = _workload_of(r, per_workload)
        if owner is not None:
            verb = "WATCH" if r in watches else r.method
            per_workload[owner][f"{verb} {_resource(r.path)}"] += 1
    rollout = proc.wall  # the whole run: from the first request to the last verdict
    return {
        "workloads": workloads,
        "pods": pods,
        "rollout": rollout,
        "requests": len(log) - len(watches),
        "watches": len(watches),
        "lookup": len(lookup),
        "names": names,
        "per_workload": per_workload,
        "poll_requests": workloads * (2 + 2 * (math.ceil(rollout / POLL) + 1)),
        "rss": proc.maxrss_mb,
    }


def _is_lookup(request) -> bool:
    """The search for the linked workloads: a LIST by the repo/branch labels."""
    return request.method == "GET" and "restart-backend/repo" in str(
        request.query.get("labelSelector", "")
    )


def _bulk(nodes: tuple[str, ...]):
    from tests.cluster.simulation import SimConfig

    return SimConfig.bulk(nodes=nodes)


def _create(cluster, index: int, pods: int, big: bool) -> tuple[str, str]:
    """Workload `index`: Deployment, StatefulSet, DaemonSet in turn, linked, settled."""
    kind = KINDS[index % len(KINDS)]
    name = f"{kind.lower()}-{index}"
    linked = {"labels": {**c.LINK_LABELS, "app": name}, "annotations": dict(c.LINK_ANNOTATIONS)}
    wide = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}}
    if kind == "Deployment":
        cluster.create_deployment(NS, name, replicas=pods, timeout=600, **linked)
    elif kind == "StatefulSet":
        cluster.create_statefulset(
            NS, name, replicas=pods, timeout=600, **linked,
            **({"pod_management_policy": "Parallel", "update_strategy": wide} if big else {}),
        )  # fmt: skip
    else:
        cluster.create_daemonset(
            NS, name, timeout=600, **linked, **({"update_strategy": wide} if big else {})
        )
    return kind, name


def _per(row: dict, what: str) -> str:
    total = row["requests"] - row["lookup"] if what == "requests" else row["watches"]
    return c.fmt_num(total / row["workloads"], 1)


def _workload_of(request, names) -> str | None:
    """The workload a request is about: its name ends the path (or its Lease's,
    restart-backend.KIND.NAME), or selects it by name (fieldSelector) or by its pods' label
    (labelSelector app=NAME)."""
    last = request.path.rstrip("/").rsplit("/", 1)[-1]
    if last in names:
        return last
    if request.method == "POST" and last == "leases":  # the name is in the body
        last = str(((request.json or {}).get("metadata") or {}).get("name") or "")
    if last.startswith("restart-backend.") and last.split(".", 2)[-1] in names:
        return last.split(".", 2)[-1]
    field = str(request.query.get("fieldSelector", ""))
    labels = str(request.query.get("labelSelector", ""))
    for name in names:
        if field == f"metadata.name={name}" or labels == f"app={name}":
            return name
    return None


def _has(row: dict, kind: str) -> bool:
    return any(k == kind for k, _name in row["names"])


def _by_kind(row: dict, kind: str) -> str:
    """What each workload of this kind cost, when every one of them cost the same (else the
    spread), from the requests that name it (the URL lookups name none: 3 more each)."""
    seen = {
        tuple(sorted(row["per_workload"][name].items())) for k, name in row["names"] if k == kind
    }
    if len(seen) != 1:
        return f"{len(seen)} different costs"
    return ", ".join(f"{n} {what}" for what, n in next(iter(seen)))


if __name__ == "__main__":
    main()
