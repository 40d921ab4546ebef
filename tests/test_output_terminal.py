"""Issue 16, output items that need a real process: a closed stdout, a narrow terminal, the
link prompt's Ctrl-C and Ctrl-D, an ASCII locale. The console script runs against the
simulated cluster; terminals are real pseudo-terminals of a given size."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Callable

import pytest

from kubectl_restart_backend.render import display_width
from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import CONSOLE_SCRIPT, link, make_checkout, patches


def environment(cluster, home: Path, **extra: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "KUBECONFIG": cluster.kubeconfig,
        "NO_COLOR": "1",
        **extra,
    }


# -- item 7: a closed stdout is not a failed rollout ------------------------------------------


def run_with_closed_stdout(cluster, checkout: Path, *args: str) -> tuple[int, str]:
    """Run with stdout a pipe nobody reads any more (``| head -0``): exit code and stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args],
            cwd=checkout,
            env=environment(cluster, checkout),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stderr


@pytest.mark.parametrize("output", [[], ["-o", "json"]], ids=["text", "json"])
def test_a_closed_stdout_keeps_the_verdict_for_the_exit_code(cluster, checkout, output):
    link(cluster)
    code, stderr = run_with_closed_stdout(cluster, checkout, "--timeout", "60s", *output)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert len(patches(cluster)) == 1
    cluster.wait_for_rollout("shop", "backend")
    if not output:  # the text went to stdout: say once why nothing more comes
        assert stderr.splitlines() == [
            "note: stdout was closed; the run goes on without output, and its exit code tells "
            "the verdict"
        ]


def test_a_closed_stdout_still_exits_1_for_a_failed_rollout(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    code, stderr = run_with_closed_stdout(cluster, checkout, "--timeout", "60s")
    assert code == 1, stderr
    assert stderr.startswith("note: stdout was closed; the run goes on"), stderr
    assert "Traceback" not in stderr


# -- a real terminal --------------------------------------------------------------------------


class Terminal:
    """The plugin on a pseudo-terminal ``columns`` wide: stdin, stdout and stderr all on it."""

    def __init__(self, args: list[str], cwd: Path, env: dict, *, columns: int = 80) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.output = b""

    def read_until(self, done: Callable[[bytes], bool], timeout: float = 120.0) -> bytes:
        """Read what the plugin writes until ``done(output)`` or it exits (then all of it)."""
        deadline = time.monotonic() + timeout
        while not done(self.output):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; output so far: {self.output!r}"
            readable, _, _ = select.select([self.master], [], [], remaining)
            if not readable:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the last writer (the plugin) closed the terminal
                chunk = b""
            if not chunk:
                break
            self.output += chunk
        return self.output

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self) -> tuple[int, str]:
        self.read_until(lambda _: False)
        try:
            code = self.process.wait(timeout=60)
        finally:
            self.process.kill()
            os.close(self.master)
        return code, self.output.decode("utf-8", "replace").replace("\r\n", "\n")


# -- item 17: the in-place progress line fits the terminal ------------------------------------

IN_PLACE = re.compile(r"\r\x1b\[K([^\r\n]*)")


@pytest.mark.parametrize("columns", [30, 52])
def test_the_progress_line_never_wraps_on_a_narrow_terminal(cluster, checkout, columns):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.healthy(ready_delay=0.5))
    env = environment(cluster, checkout, TERM="xterm")
    terminal = Terminal(["--timeout", "60s"], checkout, env, columns=columns)
    code, output = terminal.finish()
    assert code == 0, output
    updates = IN_PLACE.findall(output)
    assert updates, output
    assert all(display_width(line) <= columns - 1 for line in updates), updates
    assert any(line.startswith("Pods: ") for line in updates)


ROWS = re.compile(r"\x1b\[K([^\r\n\x1b]*)\n")


def test_several_workloads_progress_one_line_each_rewritten_in_place(cluster, checkout):
    for name in ("api", "worker"):
        link(cluster, "shop", name)
        # Slow enough for several rewrites even when the plugin starts late on a busy machine.
        cluster.set_behaviour("shop", name, Behaviour.healthy(ready_delay=2.0))
    env = environment(cluster, checkout, TERM="xterm")
    terminal = Terminal(["--all", "--timeout", "60s"], checkout, env, columns=40)
    code, output = terminal.finish()
    assert code == 0, output
    rows = ROWS.findall(output)
    assert {row.split(":")[0] for row in rows} == {"deployment/api", "deployment/worker"}, output
    assert all(display_width(row) <= 39 for row in rows), rows
    # Every move goes back exactly to the first row of the block written before it (one row
    # high until the second workload's watch has reported, on a loaded machine).
    moves = block_moves(output)
    assert moves and 2 in [move for move, _rows in moves], output
    assert all(move == rows for move, rows in moves), moves


TOKENS = re.compile(r"\x1b\[(\d+)F|\x1b\[J|(\x1b\[K)[^\r\n\x1b]*\n|[^\n]*\n")


def block_moves(output: str) -> list[tuple[int, int]]:
    """(rows moved up, rows of the block written just before) for every move: a line said
    between two blocks (a note) starts a new block, which is then written without a move."""
    moves, rows = [], 0
    for token in TOKENS.finditer(output):
        if token.group(1):
            moves.append((int(token.group(1)), rows))
            rows = 0
        elif token.group(2):
            rows += 1
        elif token.group(0) != "\x1b[J":
            rows = 0
    return moves


def test_several_clusters_progress_in_one_block_rewritten_in_place(fleet, checkout):
    for cluster in fleet:
        link(cluster)
        cluster.set_behaviour("shop", "backend", Behaviour.healthy(ready_delay=1.0))
    (checkout / ".restart-backend.yaml").write_text(
        "waves:\n- contexts: [staging]\n- contexts: [prod-eu, prod-us]\n"
    )
    env = environment(fleet["staging"], checkout, TERM="xterm", KUBECONFIG=fleet.kubeconfig)
    terminal = Terminal(["--timeout", "60s", "--no-verify"], checkout, env, columns=60)
    code, output = terminal.finish()
    assert code == 0, output
    rows = [row for row in ROWS.findall(output) if " ready" in row]
    assert {row.split(" ")[0] for row in rows} == {"[staging]", "[prod-eu]", "[prod-us]"}, output
    assert all(display_width(row) <= 59 for row in rows), rows
    first, second = output.split("Cluster wave 2 of 2: prod-eu, prod-us")
    assert "[staging] Pods: " in first and "[prod-eu]" not in first
    second = second.split("== staging")[0]  # the progress, before the report
    # Both clusters of the second wave share one block, moved over as a whole (two rows),
    # and the first wave's row is not dragged along into it.
    assert "\x1b[2F" in second, second
    assert "[staging]" not in second, second


# -- item 20: Ctrl-C and Ctrl-D at the link/unlink prompt -------------------------------------

PROMPT = b"Go ahead? [y/N]: "


def prompt_for(cluster, checkout: Path, *args: str) -> Terminal:
    terminal = Terminal(list(args), checkout, environment(cluster, checkout))
    terminal.read_until(lambda out: PROMPT in out)
    return terminal


def test_ctrl_c_at_the_link_prompt_exits_130_with_one_line(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    terminal = prompt_for(cluster, checkout, "link", "backend", "-n", "shop")
    terminal.process.send_signal(signal.SIGINT)  # what the terminal does on Ctrl-C
    code, output = terminal.finish()
    assert code == 130, output
    after = output.split(PROMPT.decode(), 1)[1]
    assert after == "\nerror: interrupted: nothing was changed\n"
    assert not patches(cluster)


@pytest.mark.parametrize(
    "command", [["link", "backend", "-n", "shop"], ["unlink", "backend", "-n", "shop"]]
)
def test_ctrl_d_at_the_prompt_is_no(cluster, checkout, command):
    if command[0] == "unlink":
        link(cluster, "shop", "backend")
    else:
        cluster.create_deployment("shop", "backend")
    terminal = prompt_for(cluster, checkout, *command)
    terminal.type(b"\x04")  # Ctrl-D: end of input
    code, output = terminal.finish()
    assert code == 5, output
    assert output.split(PROMPT.decode(), 1)[1] == "\nerror: cancelled: nothing was changed\n"
    assert not patches(cluster)


def test_yes_at_the_prompt_links(cluster, checkout):
    cluster.create_deployment("shop", "backend")
    terminal = prompt_for(cluster, checkout, "link", "backend", "-n", "shop")
    terminal.type(b"y\n")
    code, output = terminal.finish()
    assert code == 0, output
    assert output.endswith("deployment shop/backend linked to acme/shop@main\n")
    assert len(patches(cluster)) == 1


# -- item 21: an ASCII locale keeps the copy-paste hint exact ---------------------------------

ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


@pytest.mark.parametrize("source", ["--branch", "git"])
def test_an_ascii_locale_prints_the_branch_in_the_hint_as_typed(cluster, tmp_path, source):
    branch = "fix-Ü"
    checkout = make_checkout(tmp_path / "shop", branch="main" if source == "--branch" else branch)
    args = ["--branch", branch] if source == "--branch" else []
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=checkout,
        env=environment(cluster, checkout, **ASCII_LOCALE),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 4, done.stderr
    assert f"No workload found for acme/shop@{branch} ".encode() in done.stderr
    assert f"'restart-backend/branch={branch}'".encode() in done.stderr
    assert b"\\x" not in done.stderr and b"\\u" not in done.stderr
