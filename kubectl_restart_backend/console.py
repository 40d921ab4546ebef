"""Where text goes: progress and verdicts to the terminal, documents to stdout.

The one place that knows about terminals: whether to update the progress line in place (and
how wide it may be), whether colour and symbols are allowed, that in ``-o json|yaml`` mode
stdout carries only the document (progress moves to stderr), how to ask a question, and what
to do when the reader of our output goes away (``| head -1``): stop writing, carry on.

Machines listen too: what the console is told also goes to its listeners
(``event_stream.py``: the ``-o ndjson`` event stream, GitHub Actions' commands and summary).
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
import threading
from typing import IO, Any, Callable, Optional, Sequence

from kubectl_restart_backend.diagnosis import one_line
from kubectl_restart_backend.errors import PluginError, worst_exit_code
from kubectl_restart_backend.render import (
    Style,
    choose_style,
    fit_to_width,
    outcome_document,
    render_document,
    render_progress,
    render_progress_row,
    render_run,
    render_targets,
    render_triggered,
    run_document,
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
        self._block: list[str] = []  # the progress rows last written in place (several)
        self._cluster_rows: dict[str, str] = {}  # every cluster's rows, in the order first seen
        self._awaiting_verdict = False
        self.waiting = True  # False with --no-wait: nothing will wait for the pods
        self.known: dict[str, Any] = {}  # the target, as far as known (for error documents)
        self.notes: list[str] = []  # every notice said, for error documents
        self.restart_triggered = False  # the restart was sent (errors after it must say so)
        self.found: dict[str, Any] = {}  # how the targets were found (by, repoFrom, branchFrom)
        self.listeners = _listeners(self, env)
        self._lock = threading.RLock()  # several clusters report from their own threads
        # One workload's exit code (the CLI's mapping; None: no verdict is told before the
        # run's end, as the listeners then have no exit code to tell with it).
        self.exit_code_of: Optional[Callable[[Any], int]] = None

    @classmethod
    def for_output(cls, output: str) -> Console:
        for stream in (sys.stdout, sys.stderr):
            write_unencodable_as_utf8(stream)
        return cls(output, sys.stdout, sys.stderr, dict(os.environ))

    # -- Reporter ------------------------------------------------------------------------

    def notice(self, message: str) -> None:
        self.notes.append(message)
        self._say(f"note: {message}")

    def restarting(self, targets, context: str) -> None:
        """Before the patch: which workloads, in which namespaces and context."""
        self._about(targets, context)
        self._tell("on_targets", "Restarting", targets, context)
        self._say(render_targets("Restarting", targets, context))

    def watching(self, targets, context: str) -> None:
        """``status``: which workloads' rollouts are watched."""
        self._about(targets, context)
        self._tell("on_targets", "Watching", targets, context)
        self._say(render_targets("Watching", targets, context))

    def triggered(self, restarted_at: str = "", patch: Optional[dict] = None) -> None:
        """The patch was sent (``restarted_at``: the annotation's value, in ``patch``)."""
        self.restart_triggered = True
        self._tell("on_triggered", restarted_at, patch)
        self._say(render_triggered(self.waiting))

    def judged(self, label: str, state, workload: Optional[dict], kind) -> None:
        """Every judged state of a workload being watched (``label``: ``deployment/api``);
        people see the progress lines, listeners decide what is news."""
        self._tell("on_judged", label, state, workload, kind)

    def progress(self, state) -> None:
        self._progress_line(render_progress(state))

    def verifying(self, line: str) -> None:
        """The smoke check's and the settle window's progress, shown like the rollout's."""
        self._progress_line(one_line(line, limit=1000))

    def _progress_line(self, line: str) -> None:
        if self._in_place:
            line = fit_to_width(line, self._chatter.columns(), self._style.unicode)
            self._block = []  # below the rows: a block that follows is written anew
            self._open_line = self._chatter_write(f"\r\033[K{line}")
        else:
            self._say(line)

    def progress_many(self, rows) -> None:
        """One line per workload: rewritten in place on a terminal (each fitted to its
        width, so none wraps), else the lines that changed (all of them when none did: the
        periodic reminder that the run is alive)."""
        lines = [render_progress_row(label, state) for label, state in rows]
        if self._in_place:
            self._rewrite_block(lines)
            return
        changed = [line for line in lines if line not in self._block] or lines
        self._block = lines
        for line in changed:
            self._say(line, keep_block=True)

    def _rewrite_block(self, lines: list[str]) -> None:
        """Write ``lines`` over the block of progress rows last written (in place)."""
        width = self._chatter.columns()
        lines = [fit_to_width(line, width, self._style.unicode) for line in lines]
        self.line_break()
        # Back to the block's first row (a block that grew, because another workload's
        # watch reported, is rewritten whole, not left behind), and erase what a block
        # that shrank leaves below.
        up = f"\033[{len(self._block)}F" if self._block else ""
        text = "".join(f"\033[K{line}\n" for line in lines)
        if len(lines) < len(self._block):
            text += "\033[J"
        if self._chatter_write(up + text):
            self._block = lines

    def concluded(self, outcome) -> None:
        """One workload of a run of several is done: its outcome is final (its smoke check
        and any rollback are over), though the others are still watched."""
        if self.exit_code_of is not None:
            self._tell("on_concluded", outcome_document(outcome, self.exit_code_of(outcome)))

    # -- several clusters ----------------------------------------------------------------

    @property
    def in_place(self) -> bool:
        """Progress is rewritten in place (a terminal that understands it)."""
        return self._in_place

    def cluster_progress(self, rows: dict[str, str]) -> None:
        """On a terminal, one block for every cluster's progress rows (``rows``: this
        cluster's, each keyed by its own prefix and workload), rewritten in place: with
        three clusters of two workloads, six rows that change, not a scrolling stream.
        A line said meanwhile (a note, a verdict) ends up above the block, which is then
        written anew below it."""
        with self._lock:
            self._cluster_rows.update(rows)
            self._rewrite_block(list(self._cluster_rows.values()))

    def for_cluster(self, context: str) -> ClusterLines:
        """The Reporter of one cluster of a run of several (its lines start with it; with
        ``-o ndjson``, its events carry its context: each cluster has its own stream state,
        all writing whole lines to stdout under one lock)."""
        listeners = [x.for_cluster() for x in self.listeners if hasattr(x, "for_cluster")]
        return ClusterLines(self, context, listeners)

    def cluster_wave(self, wave, total: int) -> None:
        """Before a cluster wave starts: which clusters it restarts."""
        contexts = ", ".join(one_line(c) for c in wave.contexts)
        self._clusters_start(f"Cluster wave {wave.number} of {total}: {contexts}")

    def clusters_watched(self, wave, total: int) -> None:
        """``status`` of several clusters (one wave of all of them): which ones."""
        contexts = ", ".join(one_line(c) for c in wave.contexts)
        self._clusters_start(f"Status of {len(wave.contexts)} clusters: {contexts}")

    def _clusters_start(self, line: str) -> None:
        """A wave's first line; listeners hear it too (GitHub Actions: a group per wave, since
        the clusters of one report at once and groups cannot interleave)."""
        with self._lock:
            self._cluster_rows = {}  # the earlier wave's rows stay above, as they last were
            self._tell("on_clusters_start", line)
            self._say(line)

    def say(self, line: str) -> None:
        """One whole line of chatter (threads may call it at once)."""
        with self._lock:
            self._say(line)

    def clusters_outcome(self, outcome, workload_codes, cluster_codes, exit_code: int) -> None:
        """The report of a run of several clusters (``cluster_report.py``)."""
        from kubectl_restart_backend.cluster_report import clusters_document, render_clusters

        self.line_break()
        self._awaiting_verdict = False
        document = clusters_document(outcome, workload_codes, cluster_codes, exit_code)
        self._tell("on_clusters", outcome, document, exit_code)
        if self.output == "text":
            self._out.write(render_clusters(outcome, self._style, workload_codes, cluster_codes))
        elif self.output in DOCUMENT_FORMATS:
            self._out.write(render_document(document, self.output))

    # -- results -------------------------------------------------------------------------

    def outcome(self, run, exit_codes, exit_code: int) -> None:
        """The verdicts (``run``: a ``RunOutcome``; ``exit_codes``: one per workload)."""
        self.line_break()
        self._awaiting_verdict = False
        document = run_document(run, exit_codes, exit_code)
        self._tell("on_outcome", run, document, exit_code)
        if self.output == "text":
            self._out.write(render_run(run, self._style, exit_codes))
        elif self.output in DOCUMENT_FORMATS:
            self._out.write(render_document(document, self.output))

    def write(self, text: str) -> None:
        """Command output (tables, documents): always stdout."""
        self.line_break()
        self._out.write(text)

    def error(self, err: PluginError, document: Optional[dict] = None) -> None:
        """The error on stderr; its ``document`` (``render.error_document``) to the
        listeners, and on stdout with ``-o json|yaml``."""
        self.line_break()
        self._awaiting_verdict = False
        self._err.write(f"error: {err.message}\n" + (f"hint: {err.hint}\n" if err.hint else ""))
        if document is None:
            return
        self._tell("on_error", document)
        if self.output in DOCUMENT_FORMATS:
            self._out.write(render_document(document, self.output))

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

    def _tell(self, hook: str, *args: Any) -> None:
        """Pass what the console was told on to the listeners that want it."""
        for listener in self.listeners:
            method = getattr(listener, hook, None)
            if method is not None:
                method(*args)

    def _about(self, targets, context: str) -> None:
        """What error documents name as the target: the workload, when there is one."""
        if len(targets) == 1:
            kind, namespace, name = targets[0]
            self.known.update(appName=name, kind=kind.name, namespace=namespace)
        else:
            self.known.update(appName=None, kind=None)
            namespaces = {namespace for _kind, namespace, _name in targets}
            self.known["namespace"] = namespaces.pop() if len(namespaces) == 1 else None
        self.known["context"] = context or None
        self._awaiting_verdict = True

    def _say(self, line: str, keep_block: bool = False) -> None:
        self.line_break()
        if not keep_block:
            self._block = []  # the rows are no longer the last lines: write them anew
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


DOCUMENT_FORMATS = ("json", "yaml")  # one document at the end; ndjson: events as they happen


def _listeners(console: Console, env: dict) -> list:
    """The event stream (``-o ndjson``) and GitHub Actions (``GITHUB_ACTIONS=true``), when
    asked for; events go to stdout, workflow commands where the progress goes."""
    if console.output != "ndjson" and env.get("GITHUB_ACTIONS") != "true":
        return []
    from kubectl_restart_backend.event_stream import listeners_for

    return listeners_for(
        console.output,
        env,
        write_out=console._out.write,
        say=console._say,
        known=console.known,
        found=console.found,
    )


class ClusterLines:
    """The Reporter of one cluster in a run of several: each line starts with the context
    (``[prod-eu] Pods: 2/3 ready, ...``). Clusters report at once, from their own threads:
    progress rows go to the console's one block of all clusters on a terminal
    (``Console.cluster_progress``), every other line is written whole."""

    def __init__(self, console: Console, context: str, listeners: Sequence[Any] = ()) -> None:
        self.console = console
        self.context = context
        self.prefix = f"[{one_line(context)}] "
        self.restart_sent = False
        self._rows: dict[str, str] = {}  # progress last said, by workload ("" for one)
        self._listeners = list(listeners)  # this cluster's own (the event stream's state)

    def notice(self, message: str) -> None:
        self.console.notes.append(f"{self.context}: {message}")
        self._line(f"note: {message}")

    def verifying(self, line: str) -> None:
        self._line(one_line(line, limit=1000))

    def restarting(self, targets, context: str) -> None:
        self._tell("on_targets", "Restarting", targets, context)
        self._line(render_targets("Restarting", targets, context))

    def watching(self, targets, context: str) -> None:
        self._tell("on_targets", "Watching", targets, context)
        self._line(render_targets("Watching", targets, context))

    def triggered(self, restarted_at: str = "", patch: Optional[dict] = None) -> None:
        self.restart_sent = True
        self.console.restart_triggered = True
        self._tell("on_triggered", restarted_at, patch)
        self._line(render_triggered(self.console.waiting))

    def judged(self, label: str, state, workload: Optional[dict], kind) -> None:
        self._tell("on_judged", label, state, workload, kind)

    def concluded(self, outcome) -> None:
        """One of this cluster's workloads is done (its run has several)."""
        code_of = self.console.exit_code_of
        if code_of is not None:
            self._tell("on_concluded", outcome_document(outcome, code_of(outcome)))

    def ran(self, result) -> None:
        """This cluster's run reached its verdicts (the others may still be running): its
        document, as the run's ``clusters`` will show it (``cluster_report``)."""
        code_of = self.console.exit_code_of
        if code_of is None or result.run is None:
            return
        from kubectl_restart_backend.cluster_report import cluster_document

        codes = [code_of(outcome) for outcome in result.run.outcomes]
        self._tell("on_ran", cluster_document(result, codes, worst_exit_code(codes)))

    def progress(self, state) -> None:
        self.progress_many([("", state)])

    def progress_many(self, rows) -> None:
        """The lines that changed (all of them when none did: the reminder that it lives)."""
        lines = {
            label: render_progress_row(label, state) if label else render_progress(state)
            for label, state in rows
        }
        if self.console.in_place:
            self.console.cluster_progress(
                {self.prefix + label: self.prefix + line for label, line in lines.items()}
            )
            return
        changed = [line for label, line in lines.items() if self._rows.get(label) != line]
        self._rows.update(lines)
        for line in changed or list(lines.values()):
            self._line(line)

    def _line(self, text: str) -> None:
        self.console.say(self.prefix + text)

    def _tell(self, hook: str, *args: Any) -> None:
        for listener in self._listeners:
            method = getattr(listener, hook, None)
            if method is not None:
                method(*args)


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
