"""The command line itself: help of every command, version, exit-code docs, start-up imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kubectl_restart_backend import __version__
from kubectl_restart_backend.cli import main_group

COMMANDS = [[], ["status"], ["list"], ["link"], ["unlink"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "restart")
def test_every_command_has_help_that_says_kubectl_restart_backend(command):
    result = CliRunner().invoke(
        main_group, [*command, "--help"], prog_name="kubectl restart-backend"
    )
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: kubectl restart-backend {' '.join(command)}".rstrip())


@pytest.mark.parametrize("command", [[], ["status"]], ids=["restart", "status"])
def test_help_documents_every_exit_code(command):
    output = CliRunner().invoke(main_group, [*command, "--help"]).output
    for code in ("0", "1", "2", "3", "4", "5", "130"):
        assert f"\n    {code} " in output


def test_version():
    result = CliRunner().invoke(main_group, ["--version"], prog_name="kubectl restart-backend")
    assert result.output == f"kubectl restart-backend, version {__version__}\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--timeout", "soon"], "--timeout"),
        (["--timeout", "-5s"], "--timeout"),
        (["-o", "xml"], "'xml' is not one of"),
        (["--logs", "-1"], "--logs"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_flags_exit_2_without_touching_anything(args, message, tmp_path):
    result = CliRunner().invoke(main_group, args, env={"HOME": str(tmp_path), "KUBECONFIG": ""})
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["status", "--help"]])
def test_help_and_version_do_not_import_the_kubernetes_client(argv):
    probe = (
        "import sys\n"
        "from kubectl_restart_backend.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'urllib3', 'yaml')]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_click_completion_script_names_the_real_executable():
    env = {**os.environ, "_KUBECTL_RESTART_BACKEND_COMPLETE": "bash_source"}
    script = os.path.join(os.path.dirname(sys.executable), "kubectl-restart_backend")
    out = subprocess.run([script], env=env, capture_output=True, text=True, check=True)
    assert (
        "complete -o nosort -F _kubectl_restart_backend_completion kubectl-restart_backend"
        in out.stdout
    )
