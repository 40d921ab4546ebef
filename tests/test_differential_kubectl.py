"""Differential fidelity through real kubectl 1.37: the same commands against the simulated
cluster and the official control plane print the same thing (names that are random by nature
normalized, columns that depend on timing or placement left out).

This is where the simulated cluster was found wrong twice (tests/cluster/README.md, "What
the official control plane taught us"): its Events were not aggregated the way client-go's
recorder aggregates them, and its pod Table lacked two wide columns.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.controlplane.differential import normalize

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
# Columns whose values depend on when or where, not on what.
TIMING_COLUMNS = {"AGE", "LAST SEEN", "IP", "NODE"}


def table(text: str) -> list[tuple[str, ...]]:
    """A kubectl table as rows of cells, timing columns dropped (header kept)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = re.split(r"\s{2,}", lines[0].strip())
    keep = [i for i, name in enumerate(header) if name not in TIMING_COLUMNS]
    rows = []
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        rows.append(tuple(cells[i] for i in keep if i < len(cells)))
    return rows


def progress(text: str) -> tuple[str, frozenset[str]]:
    """rollout status: its last line, and the kinds of waiting lines before it (counts
    blanked). Which intermediate statuses kubectl's watch happens to see, how often and in
    which order depends on timing, so `assert_same` only asks one side's kinds to be among
    the other's."""
    lines = [re.sub(r"\b\d+\b", "<n>", line) for line in text.splitlines()]
    return lines[-1], frozenset(lines[:-1])


def assert_same(simulated: dict, official: dict) -> None:
    def split(seen: dict) -> tuple[dict, dict]:
        progress = {k: v for k, v in seen.items() if isinstance(v, tuple)}
        return {k: v for k, v in seen.items() if k not in progress}, progress

    sim_rest, sim_progress = split(simulated)
    real_rest, real_progress = split(official)
    assert sim_rest == real_rest
    assert sim_progress.keys() == real_progress.keys()
    for key, (sim_last, sim_kinds) in sim_progress.items():
        real_last, real_kinds = real_progress[key]
        assert sim_last == real_last, key
        assert sim_kinds <= real_kinds or real_kinds <= sim_kinds, (key, sim_kinds, real_kinds)


def session(cluster, namespace: str, suffix: str | None):
    home = cluster.workdir / f"kubectl-home-{suffix or 'sim'}"
    home.mkdir(parents=True, exist_ok=True)

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", cluster.kubeconfig, "-n", namespace, *args],
            capture_output=True,
            text=True,
            timeout=90,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        )
        assert done.returncode == 0, done.stderr
        return normalize(done.stdout, suffix)

    return kubectl


def restart_and_undo(cluster, namespace: str, suffix: str | None) -> dict:
    cluster.create_deployment(namespace, "backend")
    kubectl = session(cluster, namespace, suffix)
    seen = {"restart": kubectl("rollout", "restart", "deployment/backend")}
    seen["status"] = progress(kubectl("rollout", "status", "deployment/backend", "--timeout=60s"))
    seen["undo"] = kubectl("rollout", "undo", "deployment/backend")
    after_undo = kubectl("rollout", "status", "deployment/backend", "--timeout=60s")
    seen["status after undo"] = progress(after_undo)
    seen["history"] = kubectl("rollout", "history", "deployment/backend")
    events = kubectl("get", "events", "--field-selector", "involvedObject.kind=Deployment")
    seen["deployment events"] = table(events)
    seen["deployment"] = table(kubectl("get", "deployment", "backend", "-o", "wide"))
    pods = table(kubectl("get", "pods", "-o", "wide", "--field-selector", "status.phase=Running"))
    seen["pods"] = pods[:1] + sorted(set(pods[1:]))
    return seen


def test_kubectl_sees_a_restart_and_an_undo_the_same_on_both(cluster, real_cluster, tmp_path):
    cluster.workdir = tmp_path / "sim"  # where the kubectl home goes
    simulated = restart_and_undo(cluster, "shop", None)
    official = restart_and_undo(real_cluster, real_cluster.ns(), real_cluster.suffix)
    assert_same(simulated, official)
    assert official["deployment events"][-1][-1].startswith("(combined from similar events): ")


def restart_workload(cluster, namespace: str, suffix: str | None, kind: str) -> dict:
    create = {"sts": cluster.create_statefulset, "ds": cluster.create_daemonset}[kind]
    create(namespace, "web")
    run = session(cluster, namespace, suffix)

    def kubectl(*args: str) -> str:  # a DaemonSet's pods are named web-<5 random characters>
        return re.sub(r"\bweb-[a-z0-9]{5}\b", "web-<pod>", run(*args))

    target = f"{kind}/web"
    seen = {"restart": kubectl("rollout", "restart", target)}
    seen["status"] = progress(kubectl("rollout", "status", target, "--timeout=60s"))
    seen["history"] = kubectl("rollout", "history", target)
    seen["workload"] = table(kubectl("get", target, "-o", "wide"))
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=web")
    seen["events"] = table(events)
    pods = table(kubectl("get", "pods", "-o", "wide", "--field-selector", "status.phase=Running"))
    seen["pods"] = pods[:1] + sorted(set(pods[1:]))
    return seen


@pytest.mark.parametrize("kind", ["sts", "ds"])
def test_kubectl_sees_a_statefulset_or_daemonset_restart_the_same_on_both(
    cluster, real_cluster, kind
):
    simulated = restart_workload(cluster, "shop", None, kind)
    official = restart_workload(real_cluster, real_cluster.ns(), real_cluster.suffix, kind)
    assert_same(simulated, official)
