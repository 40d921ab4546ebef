"""The benchmark scripts keep working: each runs in --quick mode and prints its ratios.

No timing is asserted (benchmarks are not tests); only that every script finishes, exits 0,
prints a report with a table and, where it compares with a baseline, a ratio, and appends
nothing to RESULTS.md in smoke mode.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = {
    "startup": "vs kubectl",
    "verdict_latency": "Ratio (ours / kubectl, medians)",
    "failure_detection": "Ratio (ours / kubectl, medians)",
    "verdict_accuracy": "Ratio (ours / kubectl, medians after the first sign)",
    "api_cost": "ratio ours/poll",
    "workload_cost": "ratio ours/poll",
    "end_to_end": "| ratio |",
    "scale": "Ratio (ours / kubectl",
    "verification": "Ratio (with check / without, median walls)",
    "cluster_waves": "ratio (waves / three in sequence)",
    "interruption": "signal -> exit (median)",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_benchmark_runs_in_quick_mode_and_prints_its_ratio(name, tmp_path):
    results = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "(quick)" in result.stdout
    assert "|---|" in result.stdout
    assert SCRIPTS[name] in result.stdout
    assert "Machine: " in result.stdout
    assert not results.exists()
