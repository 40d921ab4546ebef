"""Benchmark 4: start-up.

`kubectl-restart_backend --version` and `--help`, as the console script and as the
PyInstaller binaries found in dist/ (scripts/build-binary), vs `kubectl version --client`
and `python -c pass`, all alternating round-robin with a fresh HOME/TMPDIR each run (the
onefile binary unpacks itself into TMPDIR every time, as it would on a user's machine).

Targets (issue 7): console script <= 100 ms, binary <= 350 ms (medians, this machine).
"""

from __future__ import annotations

import sys

import common as c

binaries = c.available_binaries


def commands() -> dict[str, list[str]]:
    found = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "kubectl version --client": [str(c.KUBECTL), "version", "--client"],
        "console script --version": [str(c.PLUGIN), "--version"],
        "console script --help": [str(c.PLUGIN), "--help"],
        # not a target: what every restart pays before its first request (the client import)
        "python -c 'import kubernetes'": [sys.executable, "-c", "import kubernetes"],
    }
    for kind, path in c.available_binaries().items():
        found[f"binary ({kind}) --version"] = [str(path), "--version"]
        found[f"binary ({kind}) --help"] = [str(path), "--help"]
    return found


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    count = c.reps(args, full=21, quick=2)
    report = c.Report("Start-up (benchmark 4)", args.quick)
    sandbox = c.Sandbox()
    table = commands()

    def runner(argv: list[str]):
        def one(_rep: int) -> c.Proc:
            home = sandbox.home()
            proc = c.run(argv, env=sandbox.env(home), cwd=home, timeout=60)
            c.check(proc, 0, " ".join(argv))
            return proc

        return one

    try:
        results = c.alternate(count, [runner(argv) for argv in table.values()])
    finally:
        sandbox.close()
    medians = {name: c.median(p.wall for p in procs) for name, procs in zip(table, results)}
    kubectl = medians["kubectl version --client"]
    python = medians["python -c pass"]
    rows = []
    for (name, procs), med in zip(zip(table, results), medians.values()):
        target = "<= 100 ms" if name.startswith("console") else (
            "<= 350 ms" if name.startswith("binary") else "")  # fmt: skip
        rows.append([name, c.fmt_seconds(med), c.fmt_seconds(min(p.wall for p in procs)),
                     c.fmt_ratio(c.ratio(med, kubectl)), c.fmt_ratio(c.ratio(med, python)),
                     f"{c.median(p.maxrss_mb for p in procs):.0f} MB", target])  # fmt: skip
    report.table(
        ["command", "median", "min", "vs kubectl", "vs python -c pass", "peak RSS", "target"],
        rows,
    )
    built = [f"{k}: {p.relative_to(c.ROOT)} (built {_mtime(p)})" for k, p in binaries().items()]
    found = ", ".join(built) or "none found in dist/ (run scripts/build-binary)"
    report.note(f"{count} runs each, round-robin. Binaries: {found}.")
    c.finish(report, args)


def _mtime(path) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M")


if __name__ == "__main__":
    main()
