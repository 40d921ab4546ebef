"""Run the plugin in-process against a simulated cluster, as a user would from a checkout.

The plugin is driven through its real click entry point and talks HTTPS to the simulated
cluster through the real kubernetes client; only stdout/stderr are captured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from click.testing import CliRunner

from kubectl_restart_backend.cli import main_group

LINK_LABELS = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}
LINK_ANNOTATIONS = {"restart-backend/repo": "acme/shop", "restart-backend/branch": "main"}


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_plugin(args: list[str], *, cwd: Path, env: Optional[dict] = None) -> Run:
    """Invoke ``kubectl restart-backend ARGS`` in ``cwd`` and return exit code and output."""
    base_env = {"HOME": str(cwd), "KUBECONFIG": "", "NO_COLOR": "1"}
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME"):
        base_env[name] = ""
    base_env.update(env or {})
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        result = _runner().invoke(
            main_group, args, env=base_env, prog_name="kubectl restart-backend"
        )
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def _runner() -> CliRunner:
    """stdout and stderr apart: click >= 8.2 always, 8.1 (Python 3.9) when asked."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def make_checkout(
    root: Path, origin: str = "https://github.com/acme/shop.git", branch: str = "main"
) -> Path:
    """A real git checkout with an origin remote and one commit on ``branch``."""
    root.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q", "-b", branch)
    git("config", "user.email", "dev@example.invalid")
    git("config", "user.name", "Dev")
    git("remote", "add", "origin", origin)
    (root / "README").write_text("shop\n")
    git("add", "README")
    git("commit", "-q", "-m", "init")
    return root


# A backend the smoke check can ask by default: an HTTP readiness probe on the named port
# "http", and the Service port that leads to it (the simulated and the real tier, benchmarks).
PROBED = [
    {
        "name": "app",
        "image": "registry.example.com/acme/backend:1.0.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
    }
]
HTTP_SERVICE_PORTS = [{"name": "http", "port": 80, "targetPort": "http"}]


def link(cluster, namespace: str = "shop", name: str = "backend", **kwargs) -> dict:
    """A Deployment linked to acme/shop@main (labels and exact-value annotations)."""
    kwargs.setdefault("labels", {**LINK_LABELS, "app": name})
    kwargs.setdefault("annotations", dict(LINK_ANNOTATIONS))
    return cluster.create_deployment(namespace, name, **kwargs)


def patches(cluster) -> list:
    """The PATCH requests the cluster has seen (the plugin's writes)."""
    return [r for r in cluster.requests if r.method == "PATCH"]


CONSOLE_SCRIPT = Path(sys.executable).parent / "kubectl-restart_backend"


def start_console_script(cluster, checkout: Path, *args: str, kubeconfig=None, env=None):
    """The installed console script as a real process (for signals and exit codes)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(checkout),
        "KUBECONFIG": str(kubeconfig or cluster.kubeconfig),
        "NO_COLOR": "1",
        **(env or {}),
    }
    return subprocess.Popen(
        [str(CONSOLE_SCRIPT), *args],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt_when(
    cluster, process, ready: Callable[[], bool], *, timeout: float = 60.0, sig=signal.SIGINT
) -> tuple[int, str, str]:
    """Ctrl-C ``process`` (or send it ``sig``) once ``ready()`` holds (or it has exited); its
    code and output.

    The condition is re-checked on every change in the cluster (``cluster.wait_for``): no
    fixed sleep stands in for it.
    """
    try:
        cluster.wait_for(
            lambda: process.poll() is not None or ready(),
            timeout=timeout,
            message="the plugin never reached the point to interrupt",
        )
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    return process.returncode, stdout, stderr


class LiveOutput:
    """A running plugin process whose output is read as it comes, so a test can wait for a
    line (``saw``) before acting; ``finish`` waits for the exit and returns everything."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True)
            for name in ("stdout", "stderr")
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.process, name):
            self._lines[name].append(line)

    def saw(self, text: str) -> bool:
        """Whether ``text`` appeared in the output so far (or the process has exited)."""
        if self.process.poll() is not None:
            return True
        return any(text in line for lines in self._lines.values() for line in list(lines))

    def finish(self, timeout: float = 120.0) -> Run:
        try:
            self.process.wait(timeout)
        finally:
            self.process.kill()
        for reader in self._readers:
            reader.join(10)
        return Run(
            self.process.returncode,
            "".join(self._lines["stdout"]),
            "".join(self._lines["stderr"]),
        )
