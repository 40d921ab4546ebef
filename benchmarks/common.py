"""Shared machinery of the benchmarks: timed subprocesses, the simulated cluster, statistics,
and the report each script prints and appends to RESULTS.md.

Why this shape: every benchmark compares the plugin with a baseline measured in the same
process run, alternating, several repetitions, and reports medians and the ratio. Keeping
that in one place makes the scripts short and the numbers comparable. The simulated cluster
runs in this process (threads); the plugin, kubectl and any baseline run as subprocesses,
exactly as a user would start them, with HOME (and kubectl's cache dir) in a fresh temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the scripts run as files; tests.cluster lives at the root
    sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
PLUGIN = BIN / "kubectl-restart_backend"
KUBECTL = BIN / "kubectl"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BINARIES = {
    "onedir": ROOT / "dist/onedir/kubectl-restart_backend/kubectl-restart_backend",
    "onefile": ROOT / "dist/onefile/kubectl-restart_backend",
}
REPO_ARGS = ("--repo", "acme/shop", "--branch", "main")
LINK_LABELS = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}
LINK_ANNOTATIONS = {"restart-backend/repo": "acme/shop", "restart-backend/branch": "main"}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


# --------------------------------------------------------------------------- subprocesses


@dataclass
class Proc:
    """A finished subprocess: exit code, output, and when it started and ended."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    started: float  # time.monotonic() just before the fork
    ended: float  # time.monotonic() when the wait returned
    maxrss_mb: float  # peak resident set of the process (and of children it waited for)
    cpu_s: float  # user + system CPU time

    @property
    def wall(self) -> float:
        return self.ended - self.started

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Running:
    """A started subprocess whose exit is caught by a thread at once (not when we get to it),
    with its own resource usage from wait4 (RUSAGE_CHILDREN would mix all children)."""

    def __init__(self, argv: Sequence[str], *, env: dict, cwd: str | Path, timeout: float):
        self.argv = [str(a) for a in argv]
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.started = time.monotonic()
        self._proc = subprocess.Popen(
            self.argv, env=env, cwd=str(cwd), stdout=self._out, stderr=self._err
        )
        self._result: Optional[Proc] = None
        self._done = threading.Event()
        self._timer = threading.Timer(timeout, self._proc.kill)
        self._timer.daemon = True
        self._timer.start()
        threading.Thread(target=self._reap, daemon=True).start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _reap(self) -> None:
        _pid, status, usage = os.wait4(self._proc.pid, 0)
        ended = time.monotonic()
        self._timer.cancel()
        self._proc.returncode = os.waitstatus_to_exitcode(status)
        self._out.seek(0)
        self._err.seek(0)
        self._result = Proc(
            self.argv,
            self._proc.returncode,
            self._out.read().decode(errors="replace"),
            self._err.read().decode(errors="replace"),
            self.started,
            ended,
            usage.ru_maxrss / 1024.0,
            usage.ru_utime + usage.ru_stime,
        )
        self._out.close()
        self._err.close()
        self._done.set()

    def wait(self) -> Proc:
        self._done.wait()
        assert self._result is not None
        return self._result


def run(argv: Sequence[str], *, env: dict, cwd: str | Path, timeout: float = 300) -> Proc:
    """Run to completion (killed after `timeout`) and return what happened."""
    return Running(argv, env=env, cwd=cwd, timeout=timeout).wait()


class Sandbox:
    """A fresh HOME (and TMPDIR, kubectl cache dir) per run: nobody starts warm by accident."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rb-bench-"))

    def home(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="home-", dir=self.root))
        return path

    def env(self, home: Path, **extra: str) -> dict:
        env = {
            "PATH": f"{BIN}{os.pathsep}{SYSTEM_PATH}",
            "HOME": str(home),
            "TMPDIR": str(home),
            "NO_COLOR": "1",
            "KUBECONFIG": "",
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def plugin_command(executable: Path | str, kubeconfig: str, *args: str) -> list[str]:
    """The plugin as a user runs it for the linked repo, pointed at the simulated cluster."""
    return [str(executable), "--kubeconfig", kubeconfig, *REPO_ARGS, *args]


def kubectl_command(kubeconfig: str, cache_dir: Path | str, *args: str) -> list[str]:
    return [str(KUBECTL), "--kubeconfig", kubeconfig, "--cache-dir", str(cache_dir), *args]


def available_binaries() -> dict[str, Path]:
    """The PyInstaller builds present in dist/ (scripts/build-binary makes them)."""
    override = os.environ.get("RB_BENCH_BINARY")
    if override:
        return {"binary": Path(override)}
    return {kind: path for kind, path in BINARIES.items() if os.access(path, os.X_OK)}


# --------------------------------------------------------------------------- the cluster


def start_cluster(**options: Any):
    """A started SimCluster (HTTPS, simulation running unless told otherwise)."""
    from tests.cluster import SimCluster

    return SimCluster(**options).start()


def sim_config(**overrides: Any):
    from tests.cluster.simulation import SimConfig

    return SimConfig(**overrides)


def healthy(*, ready_delay: float | None = None, start_delay: float | None = None):
    from tests.cluster.behaviours import Behaviour

    return Behaviour.healthy(ready_delay=ready_delay, start_delay=start_delay)


def link_deployment(cluster: Any, namespace: str = "shop", name: str = "backend", **kwargs: Any):
    """A Deployment labelled and annotated for acme/shop@main (what the plugin looks for)."""
    kwargs.setdefault("labels", {**LINK_LABELS, "app": name})
    kwargs.setdefault("annotations", dict(LINK_ANNOTATIONS))
    kwargs.setdefault("timeout", 120.0)
    return cluster.create_deployment(namespace, name, **kwargs)


def restart_in_cluster(cluster: Any, namespace: str, name: str) -> None:
    """What `kubectl rollout restart` sends, applied in-process (for baselines that only
    watch: the trigger is not what they measure)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    cluster.patch("deployments", namespace, name, patch)


def wait_settled(cluster: Any, namespace: str, name: str, timeout: float = 300.0) -> None:
    """Wait until the rollout is complete and no pod of the Deployment is terminating, so the
    next repetition starts from the same quiet state."""
    deployment = cluster.wait_for_rollout(namespace, name, timeout=timeout)
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    replicas = deployment["spec"]["replicas"]
    cluster.wait_for(
        lambda: len(cluster.list("pods", namespace, label_selector=selector)) == replicas,
        timeout=timeout,
        message=f"old pods of {namespace}/{name} still terminating",
    )


class RolloutMarks:
    """Store subscriber recording, in this process's monotonic clock, when the simulated
    cluster (1) accepted a new pod template, (2) first had a new pod waiting with one of
    `failure_reasons`, and (3) first reported the rollout complete by kubectl's rule.

    The callback runs synchronously inside the store's write, so the times are those of the
    changes themselves, not of anyone noticing them.
    """

    def __init__(
        self, cluster: Any, namespace: str, name: str, failure_reasons: Iterable[str] = ()
    ) -> None:
        from tests.cluster import rollout_complete

        self._complete_rule = rollout_complete
        self.namespace, self.name = namespace, name
        self.failure_reasons = frozenset(failure_reasons)
        deployment = cluster.get("deployments", namespace, name)
        self.generation = deployment["metadata"]["generation"]
        self.old_pods = {p["metadata"]["name"] for p in cluster.list("pods", namespace)}
        self.patched: Optional[float] = None
        self.complete: Optional[float] = None
        self.failure: Optional[float] = None
        self.failure_pod: Optional[str] = None
        self._unsubscribe = cluster.store.subscribe(self._on_change)

    def _on_change(self, event: Any) -> None:
        now = time.monotonic()
        meta = event.obj.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return
        if event.resource == "deployments" and meta.get("name") == self.name:
            if meta.get("generation", 0) <= self.generation:
                return
            if self.patched is None:
                self.patched = now
            if self.complete is None and self._complete_rule(event.obj):
                self.complete = now
        elif event.resource == "pods" and self.failure is None and self.failure_reasons:
            if meta.get("name") in self.old_pods:
                return
            if waiting_reasons(event.obj) & self.failure_reasons:
                self.failure, self.failure_pod = now, meta.get("name")

    def close(self) -> None:
        self._unsubscribe()

    @property
    def rollout_seconds(self) -> Optional[float]:
        if self.patched is None or self.complete is None:
            return None
        return self.complete - self.patched


def waiting_reasons(pod: dict) -> set[str]:
    status = pod.get("status") or {}
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    return {
        ((s.get("state") or {}).get("waiting") or {}).get("reason", "")
        for s in statuses
        if (s.get("state") or {}).get("waiting")
    }


# --------------------------------------------------------------------------- statistics


def median(values: Iterable[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(ours: Optional[float], theirs: Optional[float]) -> Optional[float]:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def fmt_seconds(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def fmt_ratio(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x (1/{1 / value:.0f})"


def fmt_num(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    """What a benchmark found: tables and notes, printed and (in full mode) appended."""

    title: str
    quick: bool
    blocks: list[str] = field(default_factory=list)

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = [[str(c) for c in row] for row in rows]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def note(self, text: str) -> None:
        self.blocks.append(text)

    def markdown(self, info: dict) -> str:
        mode = " (quick)" if self.quick else ""
        head = [f"## {self.title}{mode}: {info['date']}", "", machine_line(info)]
        return "\n".join(head) + "\n\n" + "\n\n".join(self.blocks) + "\n"


def machine_info() -> dict:
    """Date, machine and versions: what RESULTS.md needs to make a number mean something."""
    from importlib import metadata

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    kubectl = "unknown"
    try:
        out = subprocess.run(
            [str(KUBECTL), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        kubectl = json.loads(out)["clientVersion"]["gitVersion"]
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "kubectl_restart_backend"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kubernetes": metadata.version("kubernetes"),
        "kubectl": kubectl,
        "plugin": metadata.version("kubectl-restart-backend"),
        "commit": commit + ("+uncommitted plugin changes" if dirty else ""),
    }


def machine_line(info: dict) -> str:
    return (
        f"Machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}; "
        f"kubernetes client {info['kubernetes']}; kubectl {info['kubectl']}; "
        f"plugin {info['plugin']} at {info['commit']}."
    )


def parse_args(description: str, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: one or two small repetitions, seconds in all",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append to RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="file to append to")
    return parser.parse_args(argv)


def reps(args: argparse.Namespace, full: int, quick: int = 1) -> int:
    if args.reps is not None:
        return max(1, args.reps)
    return quick if args.quick else full


def finish(report: Report, args: argparse.Namespace) -> None:
    """Print the report; append it to RESULTS.md unless this is a smoke run."""
    text = report.markdown(machine_info())
    print(text)
    record = args.record if args.record is not None else not args.quick
    if record:
        if not args.results.exists():
            args.results.write_text(
                "# Benchmark results\n\nAppended by `benchmarks/run`; "
                "newest last. See benchmarks/README.md.\n"
            )
        with args.results.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
        print(f"(appended to {args.results})")


def alternate(count: int, runners: Sequence[Callable[[int], Any]]) -> list[list[Any]]:
    """Run each runner `count` times, interleaved and with the order rotated every
    repetition, so drift (a warming page cache, a busy neighbour) hits all of them alike."""
    results: list[list[Any]] = [[] for _ in runners]
    for rep in range(count):
        order = list(range(len(runners)))
        shift = rep % len(runners)
        order = order[shift:] + order[:shift]
        for index in order:
            results[index].append(runners[index](rep))
    return results


def check(proc: Proc, expected: int, what: str) -> None:
    """A benchmark run that did not do what it should is not a data point: stop loudly."""
    if proc.returncode != expected:
        raise SystemExit(
            f"{what}: exit {proc.returncode}, expected {expected}\n$ {' '.join(proc.argv)}\n"
            f"{proc.output[-3000:]}"
        )
