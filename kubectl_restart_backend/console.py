"""Where text goes: progress and verdicts to the terminal, documents to stdout.

The one place that knows about terminals: whether to update the progress line in place (and
how wide it may be), whether colour and symbols are allowed, that in ``-o json|yaml`` mode
stdout carries only the document (progress moves to stderr), how to ask a question, and what
to do when the reader of our output goes away (``| head -1``): stop writing, carry on.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
from typing import IO, Any, Optional

from kubectl_restart_backend.diagnosis import one_line
from kubectl_restart_backend.errors import PluginError
from kubectl_restart_backend.render import (
    Style,
    choose_style,
    fit_to_width,
    outcome_document,
    render_document,
    render_outcome,
    render_progress,
    render_target,
    render_triggered,
)

UTF8_FALLBACK = "kubectl-restart-backend-utf8"


class OutputStream:
    """One output stream whose reader may go away; then writing stops, quietly.

    A closed pipe (``kubectl restart-backend | head -1``) is not a failed rollout: the run
    goes on to its verdict and the exit code carries it (README, "Exit codes"). Other CLIs
    die of SIGPIPE there; we must not, since the verdict is what the user waits for.
    """

    def __init__(self, stream: Optional[IO[str]]) -> None:
        self.stream = stream
        self.closed = stream is None

    def write(self, text: str) -> bool:
        """Write and flush ``text``; False (and nothing more, ever) once the reader is gone."""
        if self.closed:
            return False
        assert self.stream is not None
        try:
            self.stream.write(text)
            self.stream.flush()
            return True
        except ValueError:  # the file object itself was closed
            self.closed = True
            return False
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise
            self._discard()
            return False

    def isatty(self) -> bool:
        try:
            return bool(self.stream is not None and self.stream.isatty())
        except (AttributeError, ValueError):
            return False

    def columns(self) -> Optional[int]:
        """The terminal's width now (it may have been resized), None if unknown."""
        try:
            assert self.stream is not None
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AssertionError, AttributeError, OSError, ValueError):
            return None
        return columns or None

    def _discard(self) -> None:
        """Point the descriptor at /dev/null: what is still buffered, and the interpreter's
        final flush, then go nowhere instead of failing again (Python's documented remedy)."""
        self.closed = True
        try:
            assert self.stream is not None
            descriptor = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, descriptor)
            os.close(null)
        except (AssertionError, AttributeError, OSError, ValueError):
            pass


class Console:
    """Implements the ``Reporter`` protocol of ``restart.py`` and prints the outcome."""

    def __init__(self, output: str, out: IO[str], err: IO[str], env: dict) -> None:
        self.output = output
        self._out = OutputStream(out)
        self._err = OutputStream(err)
        self._chatter = self._err if output != "text" else self._out  # progress, notices
        self._in_place = self._chatter.isatty() and env.get("TERM") != "dumb"
        self._style: Style = choose_style(getattr(out, "encoding", None), _isatty(out), env)
        self._open_line = False
        self._awaiting_verdict = False
        self.waiting = True  # False with --no-wait: nothing will wait for the pods
        self.known: dict[str, Any] = {}  # the target, as far as known (for error documents)
        self.notes: list[str] = []  # every notice said, for error documents
        self.restart_triggered = False  # the restart was sent (errors after it must say so)

    @classmethod
    def for_output(cls, output: str) -> Console:
        for stream in (sys.stdout, sys.stderr):
            write_unencodable_as_utf8(stream)
        return cls(output, sys.stdout, sys.stderr, dict(os.environ))

    # -- Reporter ------------------------------------------------------------------------

    def notice(self, message: str) -> None:
        self.notes.append(message)
        self._say(f"note: {message}")

    def restarting(self, namespace: str, name: str, context: str) -> None:
        """Before the patch: which Deployment, in which namespace and context."""
        self._about(namespace, name, context)
        self._say(render_target("Restarting", namespace, name, context))

    def watching(self, namespace: str, name: str, context: str) -> None:
        """``status``: which Deployment's rollout is watched."""
        self._about(namespace, name, context)
        self._say(render_target("Watching", namespace, name, context))

    def triggered(self, namespace: str, name: str) -> None:
        self.restart_triggered = True
        self._say(render_triggered(self.waiting))

    def progress(self, state) -> None:
        self._progress_line(render_progress(state))

    def verifying(self, line: str) -> None:
        """The smoke check's and the settle window's progress, shown like the rollout's."""
        self._progress_line(one_line(line, limit=1000))

    def _progress_line(self, line: str) -> None:
        if self._in_place:
            line = fit_to_width(line, self._chatter.columns(), self._style.unicode)
            self._open_line = self._chatter_write(f"\r\033[K{line}")
        else:
            self._say(line)

    # -- results -------------------------------------------------------------------------

    def outcome(self, outcome, exit_code: int) -> None:
        self.line_break()
        self._awaiting_verdict = False
        if self.output == "text":
            self._out.write(render_outcome(outcome, self._style))
        else:
            self._out.write(render_document(outcome_document(outcome, exit_code), self.output))

    def write(self, text: str) -> None:
        """Command output (tables, documents): always stdout."""
        self.line_break()
        self._out.write(text)

    def error(self, err: PluginError) -> None:
        self.line_break()
        self._awaiting_verdict = False
        self._err.write(f"error: {err.message}\n" + (f"hint: {err.hint}\n" if err.hint else ""))

    def ask(self, question: str, stdin: IO[str]) -> bool:
        """Ask a yes/no question on the terminal; only an explicit yes is yes.

        End of input (Ctrl-D) is no. Ctrl-C is left to the caller (exit 130, nothing
        changed): the line is broken first, so the error does not follow the question.
        """
        self.line_break()
        self._open_line = True  # before the write: Ctrl-C may come the moment it is shown
        self._open_line = self._out.write(question)
        answer = stdin.readline()
        if not answer:  # Ctrl-D: the terminal echoed nothing, end the question's line
            self.line_break()
            return False
        self._open_line = False  # the user's Enter ended the line
        return answer.strip().lower() in ("y", "yes")

    def line_break(self) -> None:
        if self._open_line:
            self._chatter_write("\n")
            self._open_line = False

    def _about(self, namespace: str, name: str, context: str) -> None:
        self.known.update(appName=name, namespace=namespace, context=context or None)
        self._awaiting_verdict = True

    def _say(self, line: str) -> None:
        self.line_break()
        self._chatter_write(line + "\n")

    def _chatter_write(self, text: str) -> bool:
        """Progress and notices; if their reader leaves mid-run, say once (on stderr) that
        the run goes on, since the verdict will only be in the exit code."""
        if self._chatter.write(text):
            return True
        if self._awaiting_verdict and self._chatter is self._out and not self._err.closed:
            self._awaiting_verdict = False
            self._err.write(
                "note: stdout was closed; the run goes on without output, and its exit code "
                "tells the verdict\n"
            )
        return False


def write_unencodable_as_utf8(stream: Any) -> None:
    """Let a stream whose encoding cannot write a character write its UTF-8 bytes instead.

    Under an ASCII locale (``LANG=C`` without UTF-8 coercion), Python would print a branch
    named ``fix-Ü`` as ``fix-\\xdc`` (stderr) or fail (stdout): a copy-paste hint with that in
    it labels the wrong branch. Terminals are UTF-8 in practice whatever the locale says, and
    bytes Python escaped on the way in (``\\udcXX``, from argv or the environment) go out as
    the very bytes that came in.
    """
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
    if encoding in ("utf-8", "utf8") or not hasattr(stream, "reconfigure"):
        return
    try:
        codecs.lookup_error(UTF8_FALLBACK)
    except LookupError:
        codecs.register_error(UTF8_FALLBACK, _utf8_bytes)
    try:
        stream.reconfigure(errors=UTF8_FALLBACK)
    except (AttributeError, ValueError, OSError):
        pass


def _utf8_bytes(err: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = bytearray()
    for char in err.object[err.start : err.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
            out.append(code - 0xDC00)
        else:
            out += char.encode("utf-8", "backslashreplace")
    return bytes(out), err.end


def _isatty(stream: Optional[IO[str]]) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False
