"""The machine-facing listeners of the console: the ``-o ndjson`` event stream and GitHub
Actions' commands, step summary and step outputs.

``Console`` tells its listeners what the ``Reporter`` is told (targets, the patch, each
judged state, the outcome, the error) and goes on printing for people (on stderr in
``-o ndjson`` mode). What to say is decided in ``events.py`` and ``github_actions.py``; here
it is only written: each event as one line on stdout, flushed, as it happens; workflow
commands where the progress goes; the summary and outputs appended to the files the runner
names. Several threads may report at once (a run over several clusters): every stream of a
run writes under one lock, each batch of lines whole.

Each workload's ``verdict`` is written once, as soon as it is final: in a run of several
workloads when the workload is concluded (``on_concluded``: its smoke check, settle window
and any rollback are over, while the others are still watched); in a run over several
clusters, at the latest when its cluster's run is done (``on_ran``); whatever is left, at the
end, before the ``run`` line.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

from kubectl_restart_backend import events, github_actions
from kubectl_restart_backend.kinds import Kind

Clock = Callable[[], datetime]
Target = tuple[Kind, str, str]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class EventStream:
    """``-o ndjson``: one JSON object per line on ``write`` (stdout), as things happen."""

    def __init__(
        self,
        write: Callable[[str], Any],
        known: Mapping[str, Any],
        found: Mapping[str, Any],
        clock: Clock = utc_now,
        *,
        shared: Optional[_Shared] = None,
    ) -> None:
        self._write = write
        self._known = known  # the console's: repo and branch as the cli resolved them
        self._found = found  # how the targets were found (by, repoFrom, branchFrom)
        self._clock = clock
        self._shared = shared or _Shared()
        self._lock = self._shared.lock
        self._targets: list[Target] = []
        self._context = ""
        self._seen: dict[str, events.Seen] = {}

    def on_targets(self, action: str, targets: Sequence[Target], context: str) -> None:
        self._targets, self._context = list(targets), context
        verb = "restart" if action == "Restarting" else "status"
        self._emit(
            events.resolved_events(
                targets, context, self._clock(), action=verb, known=self._known, found=self._found
            )
        )

    def on_triggered(self, restarted_at: str, patch: Optional[dict]) -> None:
        self._emit(
            events.triggered_events(
                self._targets, self._context, self._clock(), restarted_at=restarted_at, patch=patch
            )
        )

    def on_judged(self, label: str, state: Any, workload: Optional[dict], kind: Kind) -> None:
        seen = self._seen.get(label, events.Seen())
        seen, said = events.track(
            seen,
            state,
            self._clock(),
            context=self._context,
            workload=label,
            available=events.available_of(workload, kind),
        )
        self._seen[label] = seen
        self._emit(said)

    def on_concluded(self, document: dict) -> None:
        """One workload of a run of several is done (``document``: its report): its verdict
        is final now, whatever the others still do."""
        self._tell_verdicts([document])

    def on_ran(self, document: dict) -> None:
        """One cluster's run is done (``document``: the cluster's, as in the run's
        ``clusters``): the verdicts of its workloads not written yet."""
        self._tell_verdicts(events.workload_documents(document))

    def on_outcome(self, run: Any, document: dict, exit_code: int) -> None:
        """The run's end: the verdicts not written yet, then ``run``."""
        self._tell_verdicts(events.workload_documents(document), end=document)

    def on_error(self, document: dict) -> None:
        self._emit([events.error_event(document, self._clock())])

    def on_clusters(self, outcome: Any, document: dict, exit_code: int) -> None:
        """The end of a run of several clusters (``cluster_report.clusters_document``): the
        verdicts of each cluster's workloads not written yet (a cluster that ended in an
        error or was not started has none), then one ``run`` with the whole document."""
        documents = [
            workload
            for cluster in document["clusters"]
            if cluster["verdict"] not in ("error", "not-started")
            for workload in events.workload_documents(cluster)
        ]
        self._tell_verdicts(documents, end=document)

    def for_cluster(self) -> EventStream:
        """The stream of one cluster of a run of several: its own state (what it told of
        each rollout), the same stdout, lock and verdicts told."""
        return EventStream(self._write, self._known, self._found, self._clock, shared=self._shared)

    def _tell_verdicts(self, documents: Sequence[dict], end: Optional[dict] = None) -> None:
        now = self._clock()
        with self._lock:  # told and written at once: two threads never write one verdict
            said, self._shared.told = events.untold_verdicts(documents, self._shared.told, now)
            if end is not None:
                said.append(events.run_event(end, now))
            self._write_lines(said)

    def _emit(self, said: Sequence[dict]) -> None:
        if said:
            with self._lock:
                self._write_lines(said)

    def _write_lines(self, said: Sequence[dict]) -> None:
        for event in said:
            self._write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")


class _Shared:
    """What the streams of one run share: the lock around writing (each line whole, and
    flushed: ``console.OutputStream``), and the verdicts already told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.told: frozenset[events.VerdictKey] = frozenset()


class GitHubActions:
    """``GITHUB_ACTIONS=true``: the progress in a collapsible group, annotations for what went
    wrong, a Markdown step summary and the step outputs ``verdict``, ``exit-code``, ``ready``.

    ``say`` writes a line where the progress goes (stdout in text mode; stderr when stdout
    carries a document or events; the runner reads commands from both).
    """

    def __init__(self, say: Callable[[str], Any], env: Mapping[str, str]) -> None:
        self._say = say
        self._summary_path = env.get("GITHUB_STEP_SUMMARY") or ""
        self._output_path = env.get("GITHUB_OUTPUT") or ""
        self._lock = threading.Lock()
        self._grouped = False

    def on_targets(self, action: str, targets: Sequence[Target], context: str) -> None:
        names = [f"{kind.word} {namespace}/{name}" for kind, namespace, name in targets]
        title = github_actions.group_title(action.lower(), names, context)
        with self._lock:
            self._end_group()
            self._say(github_actions.workflow_command("group", title))
            self._grouped = True

    def on_clusters_start(self, line: str) -> None:
        """A cluster wave (or the clusters of a status) starts: a group of its own."""
        with self._lock:
            self._end_group()
            title = github_actions.clusters_group_title(line)
            self._say(github_actions.workflow_command("group", title))
            self._grouped = True

    def on_outcome(self, run: Any, document: dict, exit_code: int) -> None:
        rows = [(doc.get("context"), doc) for doc in document.get("workloads") or [document]]
        with self._lock:
            self._end_group()
            for line in github_actions.annotations(rows):
                self._say(line)
        self._append(self._summary_path, github_actions.render_step_summary(rows))
        outputs = github_actions.render_outputs(
            document["verdict"], exit_code, bool(document["ready"])
        )
        self._append(self._output_path, outputs)

    def on_clusters(self, outcome: Any, document: dict, exit_code: int) -> None:
        """A run of several clusters: one step summary and one set of annotations over every
        cluster's workloads (an error of a cluster annotated as such, naming it)."""
        rows = cluster_rows(document)
        with self._lock:
            self._end_group()
            for line in github_actions.annotations(rows):
                self._say(line)
            for cluster in document["clusters"]:
                if cluster["verdict"] == "error":
                    error = dict(cluster["error"] or {})
                    error["message"] = f"{cluster['context']}: {error.get('message')}"
                    self._say(github_actions.error_annotation({**cluster, "error": error}))
        self._append(self._summary_path, github_actions.render_step_summary(rows))
        outputs = github_actions.render_outputs(
            document["verdict"], exit_code, bool(document["ready"])
        )
        self._append(self._output_path, outputs)

    def on_error(self, document: dict) -> None:
        with self._lock:
            self._end_group()
            self._say(github_actions.error_annotation(document))
        self._append(self._summary_path, github_actions.render_error_summary(document))
        self._append(
            self._output_path, github_actions.render_outputs("error", document["exitCode"], False)
        )

    def _end_group(self) -> None:
        if self._grouped:
            self._say(github_actions.workflow_command("endgroup"))
            self._grouped = False

    def _append(self, path: str, text: str) -> None:
        """Append to a file the runner named; one that cannot be written is said, once per
        file, as a warning (the verdict and exit code stand)."""
        if not path:
            return
        try:
            with open(path, "a", encoding="utf-8") as file:
                file.write(text)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            message = f"could not write {path}: {reason}"
            self._say(github_actions.workflow_command("warning", message))


def cluster_rows(document: Mapping[str, Any]) -> list[tuple[Any, dict]]:
    """(context, workload document) for every workload of every cluster of a run of several
    (a cluster that ended in an error or was not started: its own document)."""
    return [
        (cluster.get("context"), workload)
        for cluster in document["clusters"]
        for workload in cluster.get("workloads") or [cluster]
    ]


def listeners_for(
    output: str,
    env: Mapping[str, str],
    *,
    write_out: Callable[[str], Any],
    say: Callable[[str], Any],
    known: Mapping[str, Any],
    found: Mapping[str, Any],
) -> list[Any]:
    """The listeners a console needs: the event stream for ``-o ndjson``, GitHub Actions'
    when the runner says so (``GITHUB_ACTIONS=true``, as GitHub sets it)."""
    chosen: list[Any] = []
    if output == "ndjson":
        chosen.append(EventStream(write_out, known, found))
    if env.get("GITHUB_ACTIONS") == "true":
        chosen.append(GitHubActions(say, env))
    return chosen
