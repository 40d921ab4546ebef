"""Exit codes and the plugin's error hierarchy.

Only the CLI layer turns these into exit codes and printed lines; everything below it raises
(or returns verdict values). Every error carries a one-line ``message`` (what is wrong) and a
one-line ``hint`` (what to do), so no caller ever needs to print a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, ``--help``)."""

    OK = 0
    ROLLOUT_FAILED = 1
    USAGE = 2
    TIMEOUT = 3
    NOT_FOUND = 4
    REFUSED = 5
    SUPERSEDED = 6  # someone else's change took over the rollout: not a failure of ours
    INTERRUPTED = 130


SEVERITY = (
    ExitCode.INTERRUPTED,  # the user stopped the run: nothing after it is known
    ExitCode.ROLLOUT_FAILED,  # a restart of ours failed: act now
    ExitCode.TIMEOUT,  # not known yet: it may still fail
    ExitCode.SUPERSEDED,  # someone else's change took over: not ours to fix
    ExitCode.OK,
)  # the exit codes of verdicts, worst first: a run of several workloads exits with the worst


def severity(code: int) -> int:
    """Rank of an exit code in ``SEVERITY`` (0: worst); a signal's 128+N counts as Ctrl-C."""
    try:
        return SEVERITY.index(ExitCode(code))
    except ValueError:
        return 0 if code > 128 else len(SEVERITY)


def worst_exit_code(codes: list[int]) -> int:
    """The exit code of a run of several workloads: the most severe of theirs."""
    return int(min(codes, key=severity)) if codes else int(ExitCode.OK)


class PluginError(Exception):
    """A failure the user can act on: said in two lines, never with a traceback."""

    exit_code: ExitCode = ExitCode.REFUSED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(PluginError):
    """Bad flags, bad local input (git checkout, kubeconfig file, config file)."""

    exit_code = ExitCode.USAGE


class NotFoundError(PluginError):
    """No Deployment, or more than one, matches the repo and branch."""

    exit_code = ExitCode.NOT_FOUND


class RefusedError(PluginError):
    """We will not act (paused Deployment) or the API server would not let us."""

    exit_code = ExitCode.REFUSED


class ApiError(RefusedError):
    """The API server answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        status: int | None = None,
        reason: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.reason = reason
        # True when trying again later may succeed (429, 5xx, connection refused).
        self.retryable = retryable


SHOWN_CHARS = 100


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A user-supplied value as it may appear in a message: one line, bounded length.

    Strings are trimmed before quoting (``repr`` of a huge or deeply shared value could take
    forever); containers are named, not printed.
    """
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 1] + "…"
        return repr(text)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large number"  # repr of a huge int is slow, or refused (3.11+)
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"
