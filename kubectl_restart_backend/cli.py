"""The command line: flags in, exit code out.

The only module that prints errors and maps verdicts to exit codes. Heavy modules (the
kubernetes client, the watcher) are imported inside the commands, so ``--help`` and
``--version`` start in tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from typing import Any, Callable, Iterator, Optional

import click

from kubectl_restart_backend import __version__
from kubectl_restart_backend.errors import ExitCode, PluginError, UsageError, worst_exit_code

EXIT_CODES_HELP = """\b
Exit codes:
  0  restart complete (or --no-wait / --dry-run done)
  1  rollout failed (the reason and the pods' details are printed)
  2  usage or bad input (flags, git checkout, kubeconfig, config file)
  3  timed out waiting (the rollout may still finish)
  4  no matching workload (none, or more than one without --all)
  5  refused or API error (paused, forbidden, unreachable, authentication; another
     run restarting it: --no-wait-lock, or waited --timeout in vain)
  6  superseded: someone else changed or paused the workload mid-rollout (never undone)
  130 interrupted (Ctrl-C); 143 SIGTERM, 129 SIGHUP, handled the same way; a failure
      already known is still printed
  Several workloads: the worst of their codes, in this order: 130 > 1 > 3 > 6 > 0.
  Several clusters (--context repeated, waves:): the worst cluster's; a cluster that ended
  in an error (2, 4, 5) ranks after a failure: 130 > 1 > 5/4/2 > 3 > 6 > 0."""


def _trouble_help() -> str:
    from kubectl_restart_backend.trouble import render_help_table

    return (
        "\b\nWhen trouble of a new pod fails the restart (defaults: --max-restarts 2,\n"
        "--max-pull-failures 2, --config-grace 30s, --unschedulable-grace 30s; --fail-fast:\n"
        "at the first sign):\n" + render_help_table()
    )


OUTPUT_FORMATS = ("text", "json", "yaml", "ndjson")
LIST_FORMATS = ("text", "json", "yaml")


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


class ExpectType(click.ParamType):
    """Statuses that count as serving: 200, 2xx, 200-299, or a list (200,204)."""

    name = "codes"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from kubectl_restart_backend.verify import parse_expectation

        try:
            return parse_expectation(value).text
        except ValueError as err:
            self.fail(str(err), param, ctx)


class VerifyUrlType(click.ParamType):
    """An http(s) URL without credentials, or ``auto``."""

    name = "url"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        from kubectl_restart_backend.verify import url_problem

        problem = url_problem(str(value))
        if problem:
            self.fail(problem, param, ctx)
        return str(value)


class VerbosityType(click.IntRange):
    """kubectl's ``-v``/``--v``: ``-v 6``, ``-v6``, ``-v=6``, ``--v=6``."""

    name = "level"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            value = value.lstrip("=")
        return super().convert(value, param, ctx)


VERBOSITY = VerbosityType(min=0)


def connection_options(func: Callable) -> Callable:
    """kubectl's standard flags (given after the plugin name, as kubectl passes them)."""
    options = [
        click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file."),
        click.option(
            "--context",
            metavar="NAME",
            multiple=True,
            help="The kubeconfig context to use. The restart takes it repeated: several "
            "clusters, one after the other, each only if the one before succeeded (cluster "
            "waves; waves: in .restart-backend.yaml restarts some together).",
        ),
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
        click.option(
            "--token",
            metavar="TOKEN",
            help="Bearer token to use instead of the kubeconfig user's credentials.",
        ),
        click.option(
            "--as", "impersonate_user", metavar="USER", help="Act as this user (impersonation)."
        ),
        click.option(
            "--as-group",
            "impersonate_groups",
            metavar="GROUP",
            multiple=True,
            help="Act as a member of this group (repeatable; needs --as).",
        ),
        click.option(
            "-v",
            "--v",
            "verbosity",
            type=VERBOSITY,
            default=0,
            metavar="LEVEL",
            help="Trace API calls on stderr: 6 requests, 7 headers, 8 bodies (credentials masked).",
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
            "-w",
            "--workload",
            metavar="KIND/NAME",
            multiple=True,
            help="This workload by name (with -n), skipping the label lookup: deployment/api, "
            "statefulset/db, daemonset/agent (sts, ds); repeatable.",
        ),
        click.option(
            "--deployment",
            metavar="NAME",
            help="Same as -w deployment/NAME.",
        ),
        click.option(
            "--all",
            "all_linked",
            is_flag=True,
            help="Every workload linked to the repo and branch, not only the backend.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def output_option(func: Callable) -> Callable:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUT_FORMATS),
        default="text",
        show_default=True,
        help="Output format; json/yaml print one document at the end, ndjson one event per "
        "line as things happen (docs/events.md).",
    )(func)


def watch_options(func: Callable) -> Callable:
    options = [
        click.option(
            "--timeout",
            type=DURATION,
            metavar="DURATION",
            help="How long to wait for the rollout (e.g. 90s, 5m; 0: no limit).  [default: 2m]",
        ),
        click.option(
            "--max-restarts",
            type=click.IntRange(min=0),
            metavar="N",
            help="Restarts a new pod's container may have; its next crash fails the restart "
            "(with the kubelet's back-off, 2 restarts name a crash loop ~10s after it "
            "began).  [default: 2]",
        ),
        click.option(
            "--max-pull-failures",
            type=click.IntRange(min=0),
            metavar="N",
            help="Image pulls of a new pod that may fail with a passing registry error "
            "(5xx, timeout, 429); the next failure fails the restart.  [default: 2]",
        ),
        click.option(
            "--config-grace",
            type=DURATION,
            metavar="DURATION",
            help="How long a new pod may miss a Secret or ConfigMap (or hit quota) before "
            "the restart counts as failed.  [default: 30s]",
        ),
        click.option(
            "--unschedulable-grace",
            type=DURATION,
            metavar="DURATION",
            help="How long a new pod may stay unschedulable before the restart counts as "
            "failed.  [default: 30s]",
        ),
        click.option(
            "--fail-fast/--no-fail-fast",
            default=None,
            help="Fail at the first sign of trouble (no restarts, failed pulls or grace "
            "tolerated); for start-ups that never race.",
        ),
        click.option(
            "--logs",
            type=click.IntRange(min=0),
            metavar="N",
            help="Log lines to show per failing container (0: none).  [default: 20]",
        ),
        click.option(
            "--verify/--no-verify",
            default=None,
            help="Once the rollout is complete, GET the backend through its Service (the API "
            "server's proxy) and fail the restart if it does not answer as expected; skipped, "
            "with a note, when there is nothing to ask or no permission.  [default: on]",
        ),
        click.option(
            "--verify-path",
            metavar="PATH",
            help="Path to GET (default: the container's HTTP readiness probe's path).",
        ),
        click.option(
            "--verify-url",
            type=VerifyUrlType(),
            metavar="URL",
            help="GET this public URL instead of going through the Service ('auto': the first "
            "URL the report shows).",
        ),
        click.option(
            "--verify-expect",
            type=ExpectType(),
            metavar="CODES",
            help="Statuses that count as serving: 200, 2xx, 200-299, 200,204.  [default: 2xx,3xx]",
        ),
        click.option(
            "--verify-successes",
            type=click.IntRange(min=1),
            metavar="N",
            help="Good answers in a row the check needs.  [default: 1]",
        ),
        click.option(
            "--verify-timeout",
            type=DURATION,
            metavar="DURATION",
            help="How long a check that fails may take to pass (within --timeout).  [default: 30s]",
        ),
        click.option(
            "--settle",
            type=DURATION,
            metavar="DURATION",
            help="After success, keep watching the new pods this long: a restart, a pod "
            "that stops being ready or a check that keeps failing fails the restart.  "
            "[default: 0s]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return output_option(func)


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PlainUsageError(click.ClickException):
    """A flag mistake said like every other error: one ``error:`` line, one ``hint:`` line;
    with ``-o json|yaml`` among the arguments, the error document on stdout too."""

    exit_code = int(ExitCode.USAGE)

    def __init__(self, err: click.UsageError, args: list[str]) -> None:
        super().__init__(err.format_message())
        self.command_path = err.ctx.command_path if err.ctx else "kubectl restart-backend"
        self.output = requested_output(args)
        self.document = "list" if err.ctx and err.ctx.info_name == "list" else "outcome"

    def show(self, file: Any = None) -> None:
        from kubectl_restart_backend.console import Console

        hint = f"see '{self.command_path} --help'"
        output = self.output if self.document == "outcome" or self.output != "ndjson" else "text"
        console = Console.for_output(output)
        document = _error_document(
            console, self.format_message(), hint, self.exit_code, self.document, 0.0
        )
        console.error(UsageError(self.format_message(), hint), document)


def requested_output(args: list[str]) -> str:
    """The ``-o`` value among raw arguments (for errors before Click has parsed them)."""
    output, tokens = "text", iter(args)
    for token in tokens:
        if token == "--":
            break
        if token in ("-o", "--output"):
            output = next(tokens, "text")
        elif token.startswith("--output="):
            output = token.split("=", 1)[1]
        elif token.startswith("-o") and not token.startswith("--"):
            output = token[2:].lstrip("=")
    return output if output in OUTPUT_FORMATS else "text"


class PluginGroup(click.Group):
    """Click's group, with its usage errors (and its subcommands') in the plugin's shape."""

    def make_context(self, info_name: Any, args: list[str], *rest: Any, **kwargs: Any) -> Any:
        given = list(args)
        try:
            ctx = super().make_context(info_name, args, *rest, **kwargs)
        except click.UsageError as err:
            raise PlainUsageError(err, given) from None
        ctx.meta["restart_backend.args"] = given
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise PlainUsageError(err, ctx.meta.get("restart_backend.args", [])) from None


@click.group(
    cls=PluginGroup,
    invoke_without_command=True,
    epilog=_trouble_help() + "\n\n" + EXIT_CODES_HELP,
    context_settings=CONTEXT_SETTINGS,
)
@target_options
@connection_options
@watch_options
@click.option("--no-wait", is_flag=True, help="Trigger the restart and exit without watching.")
@click.option(
    "--delete-pods/--no-delete-pods",
    default=None,
    help="Replace the pods a controller will not: under the OnDelete update strategy "
    "(and a rolled-back StatefulSet's broken pods), delete them one at a time, each after the "
    "previous replacement is ready, stopping at the first that fails.",
)
@click.option(
    "--from-wave",
    metavar="N",
    type=click.IntRange(min=1),
    help="Cluster waves: start at wave N (counted from 1), leaving the waves before it "
    "untouched, e.g. after fixing the cluster that stopped a run.",
)
@click.option(
    "--no-wait-lock",
    is_flag=True,
    help="When another run is restarting the same workload (it holds its lock), refuse "
    "(exit 5) instead of waiting for it (at most --timeout).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the target, the patch and whether you may send it; change nothing.",
)
@click.option(
    "--undo-on-failure",
    is_flag=True,
    help="When the restart fails (a failure of ours, never a change of someone else's), "
    "roll the pod template back so the old pods keep serving.",
)
@click.version_option(__version__, "--version", prog_name="kubectl restart-backend")
@click.pass_context
def main_group(ctx: click.Context, **flags: Any) -> None:
    """Rolling-restart the workload (Deployment, StatefulSet, DaemonSet) linked to this git
    repo and branch, and report whether it came back.

    \b
    Examples:
      kubectl restart-backend                      # repo and branch from this checkout
      kubectl restart-backend --timeout 5m -n shop
      kubectl restart-backend --all                # every workload linked to this branch
      kubectl restart-backend -w statefulset/db -w deployment/api -n shop
      kubectl restart-backend --deployment api -n shop --no-wait
      kubectl restart-backend -o json
      kubectl restart-backend status               # watch the current rollout, no restart
      kubectl restart-backend list                 # workloads linked to this repo
      kubectl restart-backend link sts/db -n shop  # link a StatefulSet to this repo+branch
    """
    if ctx.invoked_subcommand is None:
        sys.exit(_run(flags, _restart))


@main_group.command(
    "status", epilog=_trouble_help() + "\n\n" + EXIT_CODES_HELP, context_settings=CONTEXT_SETTINGS
)
@target_options
@connection_options
@watch_options
def status_command(**flags: Any) -> None:
    """Watch the current rollout of the repo's workload without restarting it.

    With --context repeated (or waves: in .restart-backend.yaml), every one of those
    clusters is watched at once."""
    flags.update(
        undo_on_failure=False, no_wait=False, dry_run=False, delete_pods=False, from_wave=None
    )
    sys.exit(_run(flags, _status))


@main_group.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--repo", metavar="OWNER/NAME", help="Repository (default: git origin).")
@click.option("--all-repos", is_flag=True, help="Every linked workload, of any repo.")
@click.option(
    "-A",
    "--all-namespaces",
    is_flag=True,
    help="Look in all namespaces (the default, as for the restart; wins over -n).",
)
@connection_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(LIST_FORMATS),
    default="text",
    show_default=True,
    help="Output format; json/yaml print one document.",
)
def list_command(**flags: Any) -> None:
    """List the workloads (Deployments, StatefulSets, DaemonSets) linked to this repo (all
    branches), in all namespaces like the restart's search (-n: one namespace). Works on a
    detached HEAD, and with --repo outside a checkout."""
    flags.update(branch=None, deployment=None)
    need_git = not flags["all_repos"]
    sys.exit(_run(flags, _list, need_git=need_git, need_branch=False, document="list"))


KIND_OPTION = click.option(
    "--kind",
    metavar="KIND",
    help="The kind of a plain NAME: deployment (the default), statefulset (sts), daemonset (ds).",
)


@main_group.command("link", context_settings=CONTEXT_SETTINGS)
@click.argument("workload_name", metavar="WORKLOAD")
@KIND_OPTION
@click.option("--repo", metavar="OWNER/NAME", help="Repository (default: git origin).")
@click.option("--branch", metavar="NAME", help="Branch (default: the current branch).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force", is_flag=True, help="Move the link from another workload linked to this branch."
)
@click.option(
    "--add",
    is_flag=True,
    help="Link it beside the workloads already linked to this branch (restart them together "
    "with --all).",
)
@connection_options
def link_command(**flags: Any) -> None:
    """Label WORKLOAD (NAME for a Deployment, or KIND/NAME: statefulset/db, ds/agent) as the
    backend of this repo and branch."""
    flags.update(deployment=None)
    sys.exit(_run(flags, _link))


@main_group.command("unlink", context_settings=CONTEXT_SETTINGS)
@click.argument("workload_name", metavar="WORKLOAD")
@KIND_OPTION
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@connection_options
def unlink_command(**flags: Any) -> None:
    """Remove the repo/branch labels and annotations from WORKLOAD (NAME or KIND/NAME)."""
    flags.update(repo=None, branch=None, deployment=None, force=False)
    sys.exit(_run(flags, _unlink, need_git=False))


# -- running a command ---------------------------------------------------------------------


def _run(
    flags: dict,
    command: Callable[[Any, Any], int],
    *,
    need_git: bool = True,
    need_branch: bool = True,
    document: str = "outcome",
) -> int:
    """Prepare settings, run ``command``, and turn any ``PluginError`` into its exit code.

    ``document``: the shape of the ``-o json|yaml`` answer written on an error (``outcome``
    for the restart and ``status``, ``list`` for ``list``), so machines always get one.
    """
    import time

    from kubectl_restart_backend.console import Console

    started = time.monotonic()
    console = Console.for_output(flags.get("output") or "text")
    console.exit_code_of = workload_exit_code  # a verdict told before the run's end has it
    console.known.update(_known_target(flags, None))
    with signals_as_interrupts():
        try:
            settings = _settings(flags, need_git=need_git, need_branch=need_branch)
            console.known.update(_known_target(flags, settings))
            console.found.update(_how_found(settings))
            return command(settings, console)
        except PluginError as err:
            if err.exit_code == ExitCode.INTERRUPTED:
                err.exit_code = interrupted_exit_code()
            return _fail(console, err, document, time.monotonic() - started)
        except KeyboardInterrupt:
            console.line_break()
            if console.restart_triggered:
                state = "the restart was triggered and goes on in the cluster"
                hint = "follow it with: kubectl restart-backend status"
            else:
                state, hint = "nothing was changed", ""  # one line, as for Ctrl-C at a prompt
            interrupted = PluginError(f"{_interruption()}: {state}", hint)
            interrupted.exit_code = interrupted_exit_code()
            return _fail(console, interrupted, document, time.monotonic() - started)
        except BrokenPipeError:
            raise  # a closed pipe (| head) is the console's to handle (OutputStream)
        except OSError as err:  # only writing our own output can get here: all else is translated
            return _output_failed(err, console)


def _fail(console: Any, err: PluginError, document: str, duration: float) -> int:
    """Say the error (stderr) and, with ``-o json|yaml``, write its document (stdout)."""
    code = int(err.exit_code)
    error = _error_document(console, err.message, err.hint, code, document, duration)
    console.error(err, error)
    return code


def _error_document(
    console: Any, message: str, hint: str, code: int, document: str, duration: float
) -> dict:
    from kubectl_restart_backend.render import error_document

    if document == "list":
        return {"items": [], "exitCode": code, "error": {"message": message, "hint": hint or None}}
    return error_document(
        message,
        hint,
        code,
        console.known,
        triggered=console.restart_triggered,
        duration_seconds=duration,
        notes=console.notes,
    )


def _known_target(flags: dict, settings: Optional[dict]) -> dict:
    """The target as far as the flags, the config file and git tell, before the cluster does."""
    source = settings if settings is not None else flags
    git = settings.get("git") if settings is not None else None
    named = list(source.get("workloads") or source.get("workload") or ())
    known = {
        "appName": source.get("deployment"),
        "kind": "Deployment" if source.get("deployment") else None,
        "namespace": source.get("namespace"),
        "context": _single(source.get("context")),
        "repo": str(git.repo) if git else flags.get("repo"),
        "branch": (git.branch or None) if git else flags.get("branch"),
    }
    if len(named) == 1 and not source.get("deployment") and "/" in str(named[0]):
        kind, _, name = str(named[0]).partition("/")
        known.update(appName=name, kind=_kind_name(kind))
    return {key: value for key, value in known.items() if value is not None}


def _how_found(settings: dict) -> dict:
    """How the targets are chosen (the event stream's ``resolved``): by name (-w,
    --deployment, the config file's workloads:) or by the repo/branch labels (the backend,
    or every linked workload with --all); and where the repo and branch came from."""
    git = settings.get("git")
    if settings.get("workloads") or settings.get("deployment"):
        by = "name"
    else:
        by = "labels-all" if settings.get("all_linked") else "labels"
    return {
        "by": by,
        "repoFrom": git.repo_source if git else None,
        "branchFrom": (git.branch_source or None) if git else None,
    }


def _single(context: Any) -> Optional[str]:
    """The one context given (None for several: error documents then name none)."""
    if isinstance(context, (tuple, list)):
        return context[0] if len(context) == 1 else None
    return context


def _kind_name(word: str) -> Optional[str]:
    from kubectl_restart_backend.errors import PluginError
    from kubectl_restart_backend.kinds import kind_named

    try:
        return kind_named(word).name
    except PluginError:
        return None


def _output_failed(err: OSError, console: Any) -> int:
    """Standard output cannot be written (a full disk, /dev/full): say so on stderr, once.

    Nothing more is written to stdout (it is pointed at /dev/null, so the final flush cannot
    fail again); the message says whether the restart had already been sent.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    state = (
        "the restart was triggered and goes on in the cluster"
        if console.restart_triggered
        else "the restart was not sent"
    )
    reason = err.strerror or type(err).__name__
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"error: cannot write to standard output ({reason}): {state}\n")
        sys.stderr.write("hint: check where standard output goes (a full disk, /dev/full)\n")
        sys.stderr.flush()
    return int(ExitCode.USAGE)


# -- signals: SIGTERM and SIGHUP are Ctrl-C by other means ---------------------------------

_HANDLED_SIGNALS = ("SIGTERM", "SIGHUP")  # a cancelled CI job, `timeout`, a closed terminal
_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP: every place that handles Ctrl-C handles it the same way, so the
    user learns the same things (nothing sent yet / may have been applied / still rolling)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM/SIGHUP raise ``Terminated`` in the main thread.

    Only the first signal raises: a second one while the first is being handled must not
    cut the explanation short. The previous handlers come back afterwards (tests run the
    CLI in-process).
    """
    _received.clear()

    def handler(signum: int, _frame: Any) -> None:
        _received.append(signum)
        if len(_received) == 1:
            raise Terminated(signum)

    previous = {}
    for name in _HANDLED_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:  # no SIGHUP on Windows
            continue
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave signals alone
            continue
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def interrupted_exit_code() -> int:
    """130 for Ctrl-C; 128 + N for signal N (143 SIGTERM, 129 SIGHUP), as shells report."""
    return 128 + _received[0] if _received else int(ExitCode.INTERRUPTED)


def _interruption() -> str:
    if not _received:
        return "interrupted"
    return f"interrupted by {signal.Signals(_received[0]).name}"


DEFAULTS = {
    "timeout": 120.0,
    "logs": 20,
    "max_restarts": 2,
    "max_pull_failures": 2,
    "config_grace": 30.0,
    "unschedulable_grace": 30.0,
    "fail_fast": False,
    "verify": True,
    "verify_expect": "2xx,3xx",
    "verify_successes": 1,
    "verify_timeout": 30.0,
    "settle": 0.0,
    "delete_pods": False,
    "workloads": (),
    "order": (),
}
VERIFY_KEYS = (
    "verify",
    "verify_path",
    "verify_url",
    "verify_expect",
    "verify_successes",
    "verify_timeout",
    "settle",
)
TOLERANCE_KEYS = (
    "max_restarts",
    "max_pull_failures",
    "config_grace",
    "unschedulable_grace",
    "fail_fast",
)


def _settings(flags: dict, *, need_git: bool, need_branch: bool = True) -> dict:
    """Flags > the config file's branch entry > its top level > defaults."""
    from kubectl_restart_backend.config_file import (
        expand_verify,
        load_repo_config,
        merge_settings,
    )
    from kubectl_restart_backend.gitrepo import read_git_context

    env = dict(os.environ)
    contexts = _flag_contexts(flags)
    flags = {**flags, "context": contexts[0] if len(contexts) == 1 else None}
    git = git_error = None
    if need_git or flags.get("repo"):
        try:
            git = read_git_context(
                _current_directory(flags, need_branch),
                env,
                flags.get("repo"),
                flags.get("branch"),
                need_branch=need_branch,
            )
        except PluginError as err:
            git_error = err
    file_settings: dict = {}
    context_from = waves_from = None
    if git is not None and git.root:
        config = load_repo_config(git.root)
        if config is not None:
            file_settings = config.settings_for(git.branch) if git.branch else dict(config.settings)
            if flags.get("context") is None and file_settings.get("context"):
                context_from = config.where("context", git.branch)
            if file_settings.get("waves"):
                waves_from = config.where("waves", git.branch) or config.path
    file_settings = {key.replace("-", "_"): value for key, value in file_settings.items()}
    file_settings = expand_verify(file_settings)
    if flags.get("workload") or flags.get("deployment") or flags.get("all_linked"):
        file_settings.pop("deployment", None)  # names on the command line win over the file's
        file_settings.pop("workloads", None)
    given = {key: flags.get(key) for key in ("context", "namespace", "deployment", "timeout")}
    given.update(logs=flags.get("logs"), delete_pods=flags.get("delete_pods"))
    given.update(workloads=tuple(flags.get("workload") or ()) or None)
    given.update({key: flags.get(key) for key in TOLERANCE_KEYS})
    given.update({key: flags.get(key) for key in VERIFY_KEYS})
    settings = merge_settings(given, file_settings, DEFAULTS)
    if isinstance(settings.get("logs"), bool):
        settings["logs"] = DEFAULTS["logs"] if settings["logs"] else 0
    if settings.get("timeout") == 0:  # as kubectl's --timeout=0: no timeout, wait for a verdict
        settings["timeout"] = math.inf
    return {
        **flags,
        **settings,
        "env": env,
        "git": git,
        "git_error": git_error,
        "context_from": context_from,
        "contexts": contexts,
        "waves_from": waves_from,
    }


def _flag_contexts(flags: dict) -> tuple[str, ...]:
    """``--context`` as given: once (kubectl's flag), repeated (cluster waves), or not."""
    given = flags.get("context")
    if given is None:
        return ()
    return (given,) if isinstance(given, str) else tuple(given)


def _current_directory(flags: dict, need_branch: bool = True) -> Optional[str]:
    """The working directory; None when it was deleted and --repo (with --branch, unless
    no branch is needed) makes it moot."""
    try:
        return os.getcwd()
    except OSError:
        if flags.get("repo") and (flags.get("branch") or not need_branch):
            return None
        raise UsageError(
            "The current directory no longer exists (it was deleted or moved)",
            "cd into the checkout again, or pass --repo OWNER/NAME and --branch NAME",
        ) from None


def _session(
    settings: dict,
    console: Any,
    *,
    timeout: float = 120.0,
    notice: Optional[Callable[[str], None]] = None,
) -> Any:
    """The one cluster's session (``notice``: a cluster's own Reporter in a run of several,
    which then names no single context in error documents)."""
    import time

    from kubectl_restart_backend.session import ConnectOptions, open_session

    if len(settings.get("contexts") or ()) > 1:
        raise UsageError(
            f"--context is given {len(settings['contexts'])} times: only the restart "
            "and status run on several clusters",
            "pass one --context",
        )
    connect = ConnectOptions(
        kubeconfig=settings.get("kubeconfig"),
        context=settings.get("context"),
        cluster=settings.get("cluster"),
        user=settings.get("user"),
        namespace=settings.get("namespace"),
        request_timeout=settings.get("request_timeout"),
        token=settings.get("token"),
        impersonate_user=settings.get("impersonate_user"),
        impersonate_groups=tuple(settings.get("impersonate_groups") or ()),
        verbosity=settings.get("verbosity") or 0,
    )
    deadline = time.monotonic() + timeout
    try:
        session = open_session(
            connect, settings["env"], deadline=deadline, on_retry=notice or console.notice
        )
    except UsageError as err:
        context, where = settings.get("context"), settings.get("context_from")
        if where and context and context in err.message:
            err.message = f"{err.message} (context {context!r} is set in {where})"
            err.hint = f"{err.hint}; or fix {where}".lstrip("; ")
        raise
    if notice is None:
        console.known["context"] = session.context or None  # the one in use, for errors
        _say_one_of_the_waves(settings, session.context, console)
    return session


def _say_one_of_the_waves(settings: dict, context: str, console: Any) -> None:
    """``list``, ``link`` and ``unlink`` work on one cluster even where the config file
    names several (``waves:``): say which one, since it may not be the meant one."""
    waves = settings.get("waves") or ()
    if sum(len(wave) for wave in waves) > 1 and not settings.get("contexts"):
        console.notice(
            f"waves: in {settings.get('waves_from') or 'the config file'} names several "
            f"clusters; this command works on one: context {context} (--context picks another)"
        )


def _query(settings: dict) -> Any:
    from kubectl_restart_backend.session import TargetQuery

    if settings.get("all_linked") and (settings.get("workloads") or settings.get("deployment")):
        raise UsageError(
            "--all takes every linked workload; -w/--deployment name some",
            "drop --all, or drop -w/--deployment",
        )
    return TargetQuery(
        git=settings["git"],
        git_error=settings["git_error"],
        deployment=settings.get("deployment"),
        namespace=settings.get("namespace"),
        selector=settings.get("selector"),
        workloads=tuple(settings.get("workloads") or ()),
        all=bool(settings.get("all_linked")),
        order=tuple(settings.get("order") or ()),
    )


def _watch(settings: dict) -> Any:
    from kubectl_restart_backend.restart import WatchOptions
    from kubectl_restart_backend.trouble import Tolerance
    from kubectl_restart_backend.verify import VerifySettings, parse_expectation

    tolerance = Tolerance(
        restarts=settings["max_restarts"],
        pull_failures=settings["max_pull_failures"],
        config_grace=settings["config_grace"],
        unschedulable_grace=settings["unschedulable_grace"],
    )
    if settings.get("fail_fast"):
        tolerance = tolerance.fail_fast()
    return WatchOptions(
        timeout=settings["timeout"],
        tolerance=tolerance,
        logs=settings["logs"],
        undo_on_failure=settings.get("undo_on_failure", False),
        verify=VerifySettings(
            enabled=bool(settings["verify"]),
            path=settings.get("verify_path"),
            url=settings.get("verify_url"),
            expect=parse_expectation(settings["verify_expect"]),
            successes=settings["verify_successes"],
            budget=settings["verify_timeout"],
            settle=settings["settle"],
        ),
        delete_pods=bool(settings.get("delete_pods")),
    )


def _restart(settings: dict, console: Any) -> int:
    from kubectl_restart_backend.restart import run_restart

    if settings["no_wait"] and settings.get("undo_on_failure"):
        raise UsageError(
            "--undo-on-failure needs to watch the rollout, and --no-wait does not watch",
            "drop one of them (kubectl restart-backend status can watch later, without undo)",
        )
    console.waiting = not settings["no_wait"]
    waves = _cluster_waves(settings, console, doing="restart")
    from_wave = settings.get("from_wave")
    if from_wave is not None:
        from kubectl_restart_backend.cluster_waves import check_from_wave, skipped_waves_note

        if not waves and settings.get("git_error") is not None:
            raise settings["git_error"]  # the waves may be in the file of a branch unknown
        check_from_wave(waves, from_wave)
        for note in skipped_waves_note(waves, from_wave):
            console.notice(note)
    if waves:
        if settings["no_wait"] and len(waves) > 1:
            raise UsageError(
                "--no-wait cannot keep cluster waves (each starts when the one before "
                "succeeded, which only watching tells)",
                "drop --no-wait, or restart one cluster wave at a time",
            )
        return _restart_clusters(settings, console, waves)
    options = _restart_options(settings)
    session = _session(settings, console, timeout=settings["timeout"])
    return _finish(console, run_restart(session, options, console))


def _restart_options(settings: dict) -> Any:
    """What a restart does, on one cluster or on each of several."""
    from kubectl_restart_backend.lock import LockOptions
    from kubectl_restart_backend.restart import RestartOptions

    return RestartOptions(
        query=_query(settings),
        watch=_watch(settings),
        wait=not settings["no_wait"],
        dry_run=settings["dry_run"],
        lock=LockOptions(wait=not settings.get("no_wait_lock"), timeout=settings["timeout"]),
    )


def _cluster_waves(settings: dict, console: Any, *, doing: str) -> Any:
    """The cluster waves of a restart or a status (empty for one cluster: then
    ``settings["context"]`` names it, as it always did)."""
    from kubectl_restart_backend.cluster_waves import (
        context_of_single_wave,
        flags_replace_waves,
        plan_cluster_waves,
    )

    contexts, file_waves = settings["contexts"], settings.get("waves") or ()
    replaced = flags_replace_waves(contexts, file_waves, settings.get("waves_from"))
    if replaced:
        console.notice(replaced)
    single = context_of_single_wave(contexts, file_waves)
    if single is not None:
        settings.update(context=single, context_from=settings.get("waves_from"))
        return ()
    waves = plan_cluster_waves(contexts, file_waves, file_where=settings.get("waves_from"))
    if not waves:
        return ()
    for flag, key in (("--token", "token"), ("--cluster", "cluster"), ("--user", "user")):
        if settings.get(key):
            raise UsageError(
                f"{flag} applies to one cluster, and this {doing} runs on several "
                f"({', '.join(c for w in waves for c in w.contexts)})",
                f"drop {flag}: each context uses its own cluster and credentials from the "
                "kubeconfig",
            )
    return waves


def _restart_clusters(settings: dict, console: Any, waves: Any) -> int:
    """The restart on several clusters, cluster wave after cluster wave (``cluster_run``)."""
    from kubectl_restart_backend.restart import run_restart

    options = _restart_options(settings)
    return _run_clusters(
        settings,
        console,
        waves,
        lambda session, reporter: run_restart(session, options, reporter),
        announce=console.cluster_wave,
        from_wave=settings.get("from_wave") or 1,
    )


def _run_clusters(
    settings: dict,
    console: Any,
    waves: Any,
    one: Callable[[Any, Any], Any],
    *,
    announce: Callable[[Any, int], None],
    from_wave: int = 1,
) -> int:
    """``one`` (a restart or a status) on each cluster, wave after wave (``cluster_run``),
    from wave ``from_wave`` on."""
    from kubectl_restart_backend.cluster_run import run_cluster_waves

    console.known["context"] = None
    where = None if settings.get("contexts") else settings.get("waves_from")  # flags win

    def open_one(context: str, reporter: Any) -> Any:
        its = {**settings, "context": context, "contexts": (context,), "context_from": where}
        return _session(its, console, timeout=settings["timeout"], notice=reporter.notice)

    outcome = run_cluster_waves(
        waves,
        open_session=open_one,
        restart=one,
        reporter_for=console.for_cluster,
        announce=announce,
        notice=console.notice,
        timeout=settings["timeout"],
        from_wave=from_wave,
    )
    return _finish_clusters(console, outcome)


def _finish_clusters(console: Any, outcome: Any) -> int:
    """Each cluster's exit code (an error's own, else its workloads' worst) and the run's:
    the worst of them (``cluster_waves.cluster_severity``)."""
    from kubectl_restart_backend.cluster_waves import worst_cluster_code

    interrupted = interrupted_exit_code()

    def signalled(code: int) -> int:  # Ctrl-C, or the signal received (143, 129)
        return interrupted if code == ExitCode.INTERRUPTED else code

    workload_codes = [
        [signalled(_outcome_code(o)) for o in r.run.outcomes] if r.run is not None else []
        for r in outcome.clusters
    ]
    cluster_codes = [
        signalled(r.error.exit_code) if r.error is not None else worst_exit_code(codes)
        for r, codes in zip(outcome.clusters, workload_codes)
    ]
    code = worst_cluster_code(cluster_codes)
    if code > 128 and _received:
        console.notice(_interruption())
    console.clusters_outcome(outcome, workload_codes, cluster_codes, code)
    return code


def _status(settings: dict, console: Any) -> int:
    from kubectl_restart_backend.restart import run_status

    waves = _cluster_waves(settings, console, doing="status")
    if waves:
        return _status_clusters(settings, console, waves)
    session = _session(settings, console, timeout=settings["timeout"])
    return _finish(console, run_status(session, _query(settings), _watch(settings), console))


def _status_clusters(settings: dict, console: Any, waves: Any) -> int:
    """``status`` of every cluster a restart would touch, watched together: it changes
    nothing, so no cluster waits for another (one wave of all of them, in their order)."""
    from kubectl_restart_backend.cluster_waves import ClusterWave
    from kubectl_restart_backend.restart import run_status

    every = ClusterWave(1, tuple(context for wave in waves for context in wave.contexts))
    query, watch = _query(settings), _watch(settings)
    return _run_clusters(
        settings,
        console,
        (every,),
        lambda session, reporter: run_status(session, query, watch, reporter),
        announce=console.clusters_watched,
    )


def _finish(console: Any, run: Any) -> int:
    """Each workload's exit code, and the run's: the worst of them (``SEVERITY``)."""
    codes = [_outcome_code(outcome) for outcome in run.outcomes]
    code = worst_exit_code(codes)
    if code == ExitCode.INTERRUPTED:
        code = interrupted_exit_code()
        codes = [code if c == ExitCode.INTERRUPTED else c for c in codes]
        if _received:
            console.notice(_interruption())
    console.outcome(run, codes, code)
    return code


def workload_exit_code(outcome: Any) -> int:
    """One workload's exit code as the run's document gives it (Ctrl-C: 130, or 128 + N for
    the signal received)."""
    code = _outcome_code(outcome)
    return interrupted_exit_code() if code == ExitCode.INTERRUPTED else code


def _outcome_code(outcome: Any) -> int:
    if outcome.interrupted:  # a signal after the verdict: it is printed, the exit says so
        return int(ExitCode.INTERRUPTED)
    return int(exit_code_for(outcome.verdict))


def _list(settings: dict, console: Any) -> int:
    from kubectl_restart_backend.commands import list_linked

    if settings["git"] is None and not settings.get("all_repos"):
        err = settings["git_error"]
        err.hint = (
            "run it inside the repo's checkout, pass --repo OWNER/NAME, or --all-repos for "
            "every linked Deployment"
        )
        raise err
    session = _session(settings, console)
    return list_linked(session, settings, console)


def _link(settings: dict, console: Any) -> int:
    from kubectl_restart_backend.commands import link

    if settings["git"] is None:
        raise settings["git_error"]
    return link(_session(settings, console), settings, console)


def _unlink(settings: dict, console: Any) -> int:
    from kubectl_restart_backend.commands import unlink

    return unlink(_session(settings, console), settings, console)


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
        Verdict.SUPERSEDED: ExitCode.SUPERSEDED,
        Verdict.NOT_STARTED: ExitCode.OK,  # the wave before it carries the failure's code
    }[verdict]


COMPLETE_VAR = "_KUBECTL_RESTART_BACKEND_COMPLETE"


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point (``kubectl-restart_backend``).

    Usage text says ``kubectl restart-backend`` (how people call it); Click's own shell
    completion must name the real executable instead, so the name depends on the mode.
    """
    prog = "kubectl-restart_backend" if os.environ.get(COMPLETE_VAR) else "kubectl restart-backend"
    try:
        main_group.main(args=argv, prog_name=prog, complete_var=COMPLETE_VAR, standalone_mode=True)
    except SystemExit as done:
        if "kubernetes" not in sys.modules:
            raise
        _exit_now(done.code)


def _exit_now(code: Any) -> None:
    """Exit without the interpreter's slow teardown once the verdict is out.

    Tearing down the kubernetes client's ~700 modules and the watch threads' sockets costs
    0.1-0.3 s after the answer is printed (measured in benchmarks/verdict_latency.py); the
    user waits for the prompt. atexit handlers still run: the client removes the temporary
    certificate files it wrote there.
    """
    import atexit

    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    atexit._run_exitfuncs()
    os._exit(int(code or 0))
