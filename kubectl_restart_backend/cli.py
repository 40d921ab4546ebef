"""The command line: flags in, exit code out.

The only module that prints errors and maps verdicts to exit codes. Heavy modules (the
kubernetes client, the watcher) are imported inside the commands, so ``--help`` and
``--version`` start in tens of milliseconds.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional

import click

from kubectl_restart_backend import __version__
from kubectl_restart_backend.errors import ExitCode, PluginError

EXIT_CODES_HELP = """\b
Exit codes:
  0  restart complete (or --no-wait / --dry-run done)
  1  rollout failed (the reason and the pods' details are printed)
  2  usage or bad input (flags, git checkout, kubeconfig, config file)
  3  timed out waiting (the rollout may still finish)
  4  no matching Deployment (none, or more than one)
  5  refused or API error (paused, forbidden, unreachable, authentication)
  130 interrupted (Ctrl-C)"""

OUTPUT_FORMATS = ("text", "json", "yaml")


class DurationType(click.ParamType):
    """kubectl-style durations: 90s, 2m, 1m30s (a bare number is seconds)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        from kubectl_restart_backend.durations import parse_duration

        try:
            return parse_duration(str(value))
        except PluginError as err:
            self.fail(f"{err.message}. {err.hint}".strip(), param, ctx)


DURATION = DurationType()


def connection_options(func: Callable) -> Callable:
    """kubectl's standard flags (given after the plugin name, as kubectl passes them)."""
    options = [
        click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file."),
        click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
        click.option("--cluster", metavar="NAME", help="The kubeconfig cluster to use."),
        click.option("--user", metavar="NAME", help="The kubeconfig user to use."),
        click.option(
            "-n",
            "--namespace",
            metavar="NS",
            help="Look only in this namespace (default: all namespaces).",
        ),
        click.option(
            "--request-timeout",
            type=DURATION,
            metavar="DURATION",
            help="Timeout of each API request (e.g. 10s; 0 means none).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def target_options(func: Callable) -> Callable:
    options = [
        click.option("--repo", metavar="OWNER/NAME", help="Repository (default: git origin)."),
        click.option("--branch", metavar="NAME", help="Branch (default: the current branch)."),
        click.option(
            "--deployment",
            metavar="NAME",
            help="Restart this Deployment by name (with -n), skipping the label lookup.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def watch_options(func: Callable) -> Callable:
    options = [
        click.option(
            "--timeout",
            type=DURATION,
            default="2m",
            show_default=True,
            metavar="DURATION",
            help="How long to wait for the rollout (e.g. 90s, 5m).",
        ),
        click.option(
            "--unschedulable-grace",
            type=DURATION,
            default="30s",
            show_default=True,
            metavar="DURATION",
            help="How long a new pod may stay unschedulable before the restart counts as failed.",
        ),
        click.option(
            "--logs",
            type=click.IntRange(min=0),
            default=20,
            show_default=True,
            metavar="N",
            help="Log lines to show per failing container (0: none).",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Choice(OUTPUT_FORMATS),
            default="text",
            show_default=True,
            help="Output format; json/yaml print one document at the end.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(
    invoke_without_command=True,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@target_options
@connection_options
@watch_options
@click.option("--no-wait", is_flag=True, help="Trigger the restart and exit without watching.")
@click.option("--dry-run", is_flag=True, help="Show what would be restarted; change nothing.")
@click.option(
    "--undo-on-failure",
    is_flag=True,
    help="When the restart fails, roll the pod template back so the old pods keep serving.",
)
@click.version_option(__version__, "--version", prog_name="kubectl restart-backend")
@click.pass_context
def main_group(ctx: click.Context, **flags: Any) -> None:
    """Rolling-restart the Deployment linked to this git repo and branch, and report whether
    it came back.

    \b
    Examples:
      kubectl restart-backend                      # repo and branch from this checkout
      kubectl restart-backend --timeout 5m -n shop
      kubectl restart-backend --deployment api -n shop --no-wait
      kubectl restart-backend -o json
    """
    if ctx.invoked_subcommand is None:
        sys.exit(run_restart_command(flags))


def run_restart_command(flags: dict) -> int:
    """Resolve, restart, watch and print; returns the exit code."""
    from kubectl_restart_backend.console import Console

    console = Console.for_output(flags["output"])
    try:
        outcome = _restart(flags, console)
    except PluginError as err:
        console.error(err)
        return int(err.exit_code)
    except KeyboardInterrupt:
        console.line_break()
        console.error(PluginError("interrupted before the restart: nothing was changed"))
        return int(ExitCode.INTERRUPTED)
    code = exit_code_for(outcome.verdict)
    console.outcome(outcome, code)
    return int(code)


def _restart(flags: dict, console: Any) -> Any:
    import time

    from kubectl_restart_backend.restart import RestartOptions, WatchOptions, run_restart
    from kubectl_restart_backend.session import ConnectOptions, TargetQuery, open_session

    env = dict(os.environ)
    connect = ConnectOptions(
        kubeconfig=flags["kubeconfig"],
        context=flags["context"],
        cluster=flags["cluster"],
        user=flags["user"],
        namespace=flags["namespace"],
        request_timeout=flags["request_timeout"] or None,
    )
    query = TargetQuery(
        cwd=os.getcwd(),
        env=env,
        repo=flags["repo"],
        branch=flags["branch"],
        deployment=flags["deployment"],
        namespace=flags["namespace"],
    )
    watch = WatchOptions(
        timeout=flags["timeout"],
        unschedulable_grace=flags["unschedulable_grace"],
        logs=flags["logs"],
        undo_on_failure=flags["undo_on_failure"],
    )
    options = RestartOptions(
        query=query, watch=watch, wait=not flags["no_wait"], dry_run=flags["dry_run"]
    )
    deadline = time.monotonic() + flags["timeout"] + 30.0
    session = open_session(connect, env, deadline=deadline, on_retry=console.notice)
    return run_restart(session, options, console)


def exit_code_for(verdict: Any) -> ExitCode:
    from kubectl_restart_backend.outcome import Verdict

    return {
        Verdict.COMPLETE: ExitCode.OK,
        Verdict.NO_PODS: ExitCode.OK,
        Verdict.TRIGGERED: ExitCode.OK,
        Verdict.DRY_RUN: ExitCode.OK,
        Verdict.FAILED: ExitCode.ROLLOUT_FAILED,
        Verdict.TIMEOUT: ExitCode.TIMEOUT,
        Verdict.INTERRUPTED: ExitCode.INTERRUPTED,
    }[verdict]


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point (``kubectl-restart_backend``)."""
    try:
        main_group.main(args=argv, prog_name="kubectl restart-backend", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - click turns it into Abort normally
        sys.exit(int(ExitCode.INTERRUPTED))
