"""Where text goes: progress and verdicts to the terminal, documents to stdout.

The one place that knows about terminals: whether to update the progress line in place,
whether colour and symbols are allowed, and that in ``-o json|yaml`` mode stdout carries only
the document (progress moves to stderr).
"""

from __future__ import annotations

import os
import sys
from typing import IO, Optional

from kubectl_restart_backend.errors import PluginError
from kubectl_restart_backend.render import (
    Style,
    choose_style,
    outcome_document,
    render_document,
    render_outcome,
    render_progress,
    render_triggered,
)


class Console:
    """Implements the ``Reporter`` protocol of ``restart.py`` and prints the outcome."""

    def __init__(self, output: str, out: IO[str], err: IO[str], env: dict) -> None:
        self.output = output
        self._out = out
        self._err = err
        self._chatter = err if output != "text" else out  # progress and notices
        is_tty = _isatty(self._chatter)
        self._in_place = is_tty and env.get("TERM") != "dumb"
        self._style: Style = choose_style(getattr(out, "encoding", None), _isatty(out), env)
        self._open_line = False

    @classmethod
    def for_output(cls, output: str) -> Console:
        return cls(output, sys.stdout, sys.stderr, dict(os.environ))

    # -- Reporter ------------------------------------------------------------------------

    def notice(self, message: str) -> None:
        self._say(f"note: {message}")

    def triggered(self, namespace: str, name: str) -> None:
        self._say(render_triggered())

    def progress(self, state) -> None:
        line = render_progress(state)
        if self._in_place:
            self._chatter.write(f"\r\033[K{line}")
            self._chatter.flush()
            self._open_line = True
        else:
            self._say(line)

    # -- results -------------------------------------------------------------------------

    def outcome(self, outcome, exit_code: int) -> None:
        self.line_break()
        if self.output == "text":
            self._out.write(render_outcome(outcome, self._style))
        else:
            self._out.write(render_document(outcome_document(outcome, exit_code), self.output))
        self._out.flush()

    def write(self, text: str) -> None:
        """Command output (tables, documents): always stdout."""
        self.line_break()
        self._out.write(text)
        self._out.flush()

    def error(self, err: PluginError) -> None:
        self.line_break()
        self._err.write(f"error: {err.message}\n")
        if err.hint:
            self._err.write(f"hint: {err.hint}\n")
        self._err.flush()

    def line_break(self) -> None:
        if self._open_line:
            self._chatter.write("\n")
            self._open_line = False

    def _say(self, line: str) -> None:
        self.line_break()
        self._chatter.write(line + "\n")
        self._chatter.flush()


def _isatty(stream: Optional[IO[str]]) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False
