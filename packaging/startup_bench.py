"""Measure onefile against onedir (and the venv): size, start-up, a real restart.

Usage (from the repo root): ``.venv/bin/python packaging/startup_bench.py [--runs N]``.
Builds both modes through binary_build (cached), starts a simulated cluster in-process and
prints a Markdown table for benchmarks/RESULTS.md. Medians of N runs, after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import binary_build

ROOT = binary_build.ROOT
sys.path.insert(0, str(ROOT))

from tests.cluster.cluster import SimCluster  # noqa: E402
from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS  # noqa: E402


def median_seconds(command: Sequence[str], env: dict, runs: int, before: Callable = None) -> float:
    """Median wall time of ``command``; ``before`` runs untimed ahead of each run."""
    times = []
    for index in range(runs + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
        if index:  # the first run warms the page cache (and, for onefile, nothing else)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args(argv)

    commands = {"venv (console script)": Path(sys.executable).with_name("kubectl-restart_backend")}
    sizes: dict[str, tuple[int, int]] = {}
    build_seconds: dict[str, float] = {}
    for mode in ("onefile", "onedir"):
        start = time.perf_counter()
        built = binary_build.built_release(mode)
        build_seconds[mode] = time.perf_counter() - start
        commands[mode] = built.binary
        sizes[mode] = (tree_size(built.build_root), built.archive.stat().st_size)

    work = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "KUBECONFIG": ""}
    cluster = SimCluster(workdir=work / "cluster").start()
    try:
        cluster.create_deployment(
            "shop", "backend", labels={**LINK_LABELS, "app": "backend"},
            annotations=dict(LINK_ANNOTATIONS),
        )  # fmt: skip
        target = ["--kubeconfig", cluster.kubeconfig, "--repo", "acme/shop", "--branch", "main"]
        rows = []
        for name, binary in commands.items():
            version = median_seconds([str(binary), "--version"], env, args.runs)
            dry_run = median_seconds([str(binary), *target, "--dry-run"], env, args.runs)
            restart = median_seconds(
                [str(binary), *target],
                env,
                max(3, args.runs // 2),
                before=lambda: cluster.wait_for_rollout("shop", "backend", timeout=120),
            )
            rows.append((name, version, dry_run, restart))
    finally:
        cluster.stop()

    print("| build | on disk | archive (.tar.gz) | build time |")
    print("|---|---|---|---|")
    for mode, (disk, archive) in sizes.items():
        print(f"| {mode} | {disk / 1e6:.1f} MB | {archive / 1e6:.1f} MB | "
              f"{build_seconds[mode]:.0f} s |")  # fmt: skip
    print()
    print("| command | `--version` | `--dry-run` (connect, list, no patch) | full restart |")
    print("|---|---|---|---|")
    for name, version, dry_run, restart in rows:
        print(f"| {name} | {version * 1000:.0f} ms | {dry_run * 1000:.0f} ms | "
              f"{restart:.2f} s |")  # fmt: skip
    print(f"\nmedians of {args.runs} runs ({max(3, args.runs // 2)} for the restart), "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
