"""Turn states and outcomes into the spec's words, or into JSON/YAML.

Pure: every function returns text; the CLI decides where it goes. The spec's sentences are
kept verbatim (they are our contract); what we add (pod table, events, logs) comes after them.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from kubectl_restart_backend.diagnosis import (
    cut_log_line,
    describe_recovery,
    format_age,
    one_line,
    safe_text,
)
from kubectl_restart_backend.errors import severity
from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, Kind
from kubectl_restart_backend.outcome import LockReport, Outcome, Rollback, RunOutcome, Sent, Verdict
from kubectl_restart_backend.rollout import Phase, PodInfo, RolloutState
from kubectl_restart_backend.verify import AFTER_COMPLETE_REASONS, Verification

_GREEN, _RED, _YELLOW, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[1m", "\033[0m"


@dataclass(frozen=True)
class Style:
    """How the terminal can show things: unicode symbols and colour, or neither."""

    unicode: bool = True
    colour: bool = False

    def mark(self, verdict: Verdict) -> str:
        symbols = {
            Verdict.COMPLETE: "✓",
            Verdict.FAILED: "✗",
            Verdict.TIMEOUT: "⚠",
            Verdict.SUPERSEDED: "⚠",
        }
        words = {
            Verdict.COMPLETE: "OK",
            Verdict.FAILED: "FAILED",
            Verdict.TIMEOUT: "TIMEOUT",
            Verdict.SUPERSEDED: "SUPERSEDED",
        }
        colours = {
            Verdict.COMPLETE: _GREEN,
            Verdict.FAILED: _RED,
            Verdict.TIMEOUT: _YELLOW,
            Verdict.SUPERSEDED: _YELLOW,
        }
        text = (symbols if self.unicode else words)[verdict]
        return f"{colours[verdict]}{_BOLD}{text}{_RESET}" if self.colour else text


def choose_style(encoding: Optional[str], is_tty: bool, env: dict) -> Style:
    """Symbols only where the encoding can write them; colour only on a terminal, never
    with NO_COLOR (https://no-color.org) or TERM=dumb."""
    try:
        "✓✗⚠↩".encode(encoding or "ascii")
        unicode = True
    except (LookupError, UnicodeEncodeError):
        unicode = False
    colour = is_tty and "NO_COLOR" not in env and env.get("TERM") != "dumb"
    return Style(unicode=unicode, colour=colour)


# -- progress ------------------------------------------------------------------------------


def render_target(
    action: str, namespace: str, name: str, context: str, kind: Kind = DEPLOYMENT
) -> str:
    """Which workload, where: said before anything is sent, the last chance to notice the
    wrong cluster (``action``: Restarting, Watching)."""
    return render_targets(action, [(kind, namespace, name)], context)


def render_targets(action: str, targets: Sequence[tuple[Kind, str, str]], context: str) -> str:
    """``Restarting deployment shop/api, statefulset shop/cache (context prod-eu)``."""
    where = f" (context {one_line(context)})" if context else ""
    names = ", ".join(f"{kind.word} {one_line(ns)}/{one_line(name)}" for kind, ns, name in targets)
    return f"{action} {names}{where}"


def render_triggered(waiting: bool = True) -> str:
    """The spec's line; with --no-wait only its first sentence (nothing waits)."""
    if not waiting:
        return "Rolling restart triggered."
    return "Rolling restart triggered. Waiting for pods to restart..."


def render_progress(state: RolloutState) -> str:
    """The spec's progress line, plus what is still awaited when the count does not tell.

    ``3/3 ready`` while the rollout goes on (old pods still terminating, minReadySeconds,
    the controller not there yet) would read like a hang; the state's message says why.
    """
    line = f"Pods: {state.ready_replicas}/{state.replicas} ready, rollout in progress..."
    count_explains = state.phase is Phase.PROGRESSING and state.ready_replicas < state.replicas
    if count_explains or not state.message or state.message == state.reason:
        return line
    return f"{line} ({one_line(state.message)})"


def render_progress_row(label: str, state: RolloutState) -> str:
    """One workload's progress line in a run of several: ``statefulset/db: Pods: 1/3 ...``."""
    return f"{one_line(label)}: {render_progress(state)}"


def fit_to_width(line: str, width: Optional[int], unicode: bool = True) -> str:
    """Cut ``line`` to fit a terminal ``width`` columns wide, marking the cut.

    A line updated in place must never wrap: ``\\r`` only returns to the start of the last
    row, so every update would leave the wrapped part behind. One column stays free, since
    some terminals wrap as soon as the last column is written.
    """
    if not width or width <= 1:
        return line
    room = width - 1
    if display_width(line) <= room:
        return line
    mark = "…" if unicode else "..."
    kept, used = [], display_width(mark)
    for char in line:
        used += display_width(char)
        if used > room:
            break
        kept.append(char)
    return "".join(kept) + mark if room >= display_width(mark) else "".join(kept)


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide East Asian characters take two, combining
    marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


# -- outcome as text -----------------------------------------------------------------------


def render_outcome(outcome: Outcome, style: Style, several: bool = False) -> str:
    """One workload's verdict in the spec's words; ``several``: it is one of a run's
    workloads, so the workload is named (``statefulset/db``) where the spec says appName,
    and a failure's reason starts with it."""
    renderers = {
        Verdict.COMPLETE: _complete,
        Verdict.FAILED: _failed,
        Verdict.TIMEOUT: _timeout,
        Verdict.TRIGGERED: _triggered,
        Verdict.NO_PODS: _no_pods,
        Verdict.DRY_RUN: _dry_run,
        Verdict.INTERRUPTED: _interrupted,
        Verdict.SUPERSEDED: _superseded,
        Verdict.NOT_STARTED: _not_started,
    }
    view = _View(outcome, several)
    return "\n".join(renderers[outcome.verdict](view, style)) + "\n"


def render_run(run: RunOutcome, style: Style, exit_codes: Sequence[int]) -> str:
    """A run of several workloads: each one's verdict (workload named first), then one line
    that sums them up; a single workload reads exactly as it always did."""
    if run.single:
        return render_outcome(run.outcomes[0], style)
    parts = [render_outcome(outcome, style, several=True) for outcome in run.outcomes]
    return "\n".join(parts) + "\n" + render_summary(run, style, exit_codes) + "\n"


def render_summary(run: RunOutcome, style: Style, exit_codes: Sequence[int]) -> str:
    """``✗ 1 of 3 workloads failed: statefulset/cache; complete: deployment/api, ...``."""
    groups: dict[str, list[str]] = {}
    for outcome in run.outcomes:
        groups.setdefault(_SUMMARY_WORDS[outcome.verdict], []).append(outcome.label)
    worst = min(range(len(run.outcomes)), key=lambda i: severity(exit_codes[i]))
    verdict = run.outcomes[worst].verdict
    total = len(run.outcomes)
    order = [w for w in _SUMMARY_ORDER if w in groups]
    head = f"{len(groups[order[0]])} of {total} workloads {order[0]}"
    rest = "; ".join(f"{word}: {', '.join(groups[word])}" for word in order)
    mark = style.mark(verdict) if verdict in _MARKED else style.mark(Verdict.COMPLETE)
    return f"{mark} {head} ({rest})"


_SUMMARY_WORDS = {
    Verdict.COMPLETE: "complete",
    Verdict.NO_PODS: "complete",
    Verdict.FAILED: "failed",
    Verdict.TIMEOUT: "timed out",
    Verdict.SUPERSEDED: "superseded",
    Verdict.INTERRUPTED: "interrupted",
    Verdict.TRIGGERED: "triggered",
    Verdict.DRY_RUN: "checked (dry run)",
    Verdict.NOT_STARTED: "not started",
}


def summary_word(verdict: Verdict) -> str:
    """How a summary line counts a verdict: complete, failed, timed out, not started, ..."""
    return _SUMMARY_WORDS[verdict]


_SUMMARY_ORDER = (
    "interrupted", "failed", "timed out", "superseded", "not started", "triggered",
    "checked (dry run)", "complete",
)  # fmt: skip
_MARKED = (Verdict.COMPLETE, Verdict.FAILED, Verdict.TIMEOUT, Verdict.SUPERSEDED)


@dataclass(frozen=True)
class _View:
    """An outcome and how it is named: by its name alone (one workload, the spec's appName)
    or as ``kind/name`` (one of several)."""

    outcome: Outcome
    several: bool

    @property
    def title(self) -> str:
        return self.outcome.label if self.several else self.outcome.app_name

    @property
    def lead(self) -> str:
        """Put before a failure reason: the workload, when there are several."""
        return f"{self.outcome.label}: " if self.several else ""

    @property
    def who(self) -> str:
        """``statefulset shop/db``."""
        o = self.outcome
        return f"{o.kind.word} {o.namespace}/{o.app_name}"


def _complete(view: _View, style: Style) -> list[str]:
    outcome = view.outcome
    state = outcome.state
    assert state is not None
    title = f"{style.mark(Verdict.COMPLETE)} Rolling restart complete for {view.title}"
    if state.replicas == 0:  # scaled to 0 while we watched: "healthy: 0/0" would say nothing
        why = (
            "has no node to run on"
            if outcome.kind is DAEMONSET
            else "was scaled to 0 replicas during the restart"
        )
        return [title, f"No pods running: {view.who} {why}"]
    urls = ", ".join(outcome.urls) if outcome.urls else (outcome.urls_note or "none")
    return (
        [title, f"All pods healthy: {state.ready_replicas}/{state.replicas} ready", f"URLs: {urls}"]
        + render_verification(outcome.verification)
        + _deleted(outcome)
        + [f"Recovered: {one_line(line)}" for line in recoveries(outcome)]
    )


def render_verification(verification: Optional[Verification]) -> list[str]:
    """The smoke check's and the settle window's lines after a success (a failure says its
    reason in the failure line)."""
    if verification is None:
        return []
    lines = []
    if verification.status == "passed":
        answer = verification.answers[-1] if verification.answers else "as expected"
        streak = f" ({verification.successes} times in a row)" if verification.successes > 1 else ""
        lines.append(f"Verified: {verification.check} answered {answer}{streak}")
    elif verification.status == "skipped":
        lines.append(f"Verification skipped: {one_line(verification.reason, limit=1000)}")
    elif verification.status == "interrupted":
        lines.append("Verification interrupted: the rollout itself is complete")
    if verification.settle == "passed":
        window = format_age(verification.settle_seconds)
        lines.append(f"Settled: no restart and no pod lost readiness in {window}")
    return lines


def _deleted(outcome: Outcome) -> list[str]:
    if not outcome.deleted_pods:
        return []
    return [f"Deleted pods (--delete-pods): {', '.join(outcome.deleted_pods)}"]


def recoveries(outcome: Outcome) -> list[str]:
    """One sentence per new pod that had trouble on the way and is healthy now."""
    if outcome.state is None or outcome.verdict is not Verdict.COMPLETE:
        return []
    found = (describe_recovery(pod) for pod in outcome.state.pods if pod.is_new)
    return [line for line in found if line]


def _superseded(view: _View, style: Style) -> list[str]:
    """Someone else's change took over: not our failure, nothing undone, how to follow it."""
    outcome = view.outcome
    state = outcome.state
    assert state is not None
    of = f" of {outcome.label}" if view.several else ""
    lines = [
        f"{style.mark(Verdict.SUPERSEDED)} Restart{of} {one_line(state.message, limit=1000)}",
        "Not a failure of the restart, and nothing was rolled back: the newest change is not ours.",
    ]
    if state.reason == "Paused":
        lines.append(
            f"To continue it: kubectl rollout resume {outcome.label} -n {outcome.namespace}"
        )
    else:
        lines.append(f"To follow the newer rollout: {_status_command(outcome)}")
    return lines


def _failed(view: _View, style: Style) -> list[str]:
    outcome = view.outcome
    state = outcome.state
    assert state is not None
    reason = one_line(state.failure_reason or state.reason, limit=1000)
    lines = [f"{style.mark(Verdict.FAILED)} Restart failed: {view.lead}{reason}"]
    new_pods = [pod for pod in state.pods if pod.is_new] or list(state.pods)
    lines += ["Pod details:"] + _pod_details(new_pods, failing_only=False)
    lines += _events_and_logs(outcome)
    if outcome.interrupted == "explaining the failure":
        lines.append(
            "Interrupted while the failure was being explained (events and logs may be "
            "missing). The restart goes on in the cluster; the old pods keep serving."
        )
    lines += _deleted(outcome)
    lines += _rollback_or_hint(outcome, style)
    return lines


def _timeout(view: _View, style: Style) -> list[str]:
    outcome = view.outcome
    state = outcome.state
    assert state is not None
    of = f" for {outcome.label}" if view.several else ""
    lines = [
        f"{style.mark(Verdict.TIMEOUT)} Restart timeout{of} - pods may still be cycling",
        _current(state),
        "Check pod status manually or try again",
    ]
    holding = [pod for pod in state.pods if not pod.ready]
    if holding:
        lines += ["Pod details:"] + _pod_details(holding, failing_only=False)
    lines += _events_and_logs(outcome)
    lines += _deleted(outcome)
    lines.append(f"The rollout goes on in the cluster: {_status_command(outcome)}")
    return lines


def _current(state: RolloutState) -> str:
    """The spec's ``Current:`` line, saying whose pods are counted: ``0/3 ready`` alone reads
    like an outage while the old pods still serve."""
    old_ready = sum(
        1 for pod in state.pods if not pod.is_new and pod.ready and pod.status != "Terminating"
    )
    old = f"; {old_ready} old pod{'' if old_ready == 1 else 's'} still ready" if old_ready else ""
    return f"Current: {state.ready_replicas}/{state.replicas} ready (new pods{old})"


def _triggered(view: _View, style: Style) -> list[str]:
    outcome = view.outcome
    if outcome.on_delete:
        return [
            f"Restart sent to {view.who}, but no pod was replaced: it uses the OnDelete update "
            "strategy, so its pods take the new template only when they are deleted.",
            "To replace them one at a time, each after the previous is ready: "
            f"{_command(outcome, 'kubectl restart-backend')} --delete-pods",
        ]
    return [f"Not waiting (--no-wait). Follow it with: {_status_command(outcome)}"]


def _no_pods(view: _View, style: Style) -> list[str]:
    return [
        f"{style.mark(Verdict.COMPLETE)} Rolling restart complete for {view.title}",
        f"No pods to restart: {view.who} has 0 replicas",
    ]


def _not_started(view: _View, style: Style) -> list[str]:
    return [
        f"Not restarted: {view.who} (its wave comes after {view.outcome.not_started}; nothing "
        "was sent to it)"
    ]


def _interrupted(view: _View, style: Style) -> list[str]:
    return [
        "Interrupted. The restart goes on in the cluster; to keep watching run:",
        f"  {_status_command(view.outcome)}",
    ]


def _dry_run(view: _View, style: Style) -> list[str]:
    outcome = view.outcome
    plan = outcome.plan
    lines = [f"Dry run: would restart {view.who} (context {outcome.context})"]
    if outcome.repo and outcome.branch:
        lines.append(f"Linked to: {outcome.repo}@{outcome.branch}")
    elif outcome.repo:
        lines.append(f"Linked to: {outcome.repo} (no branch)")
    else:
        lines.append("Linked to: no repo (chosen by name)")
    if outcome.update_strategy == "OnDelete":
        lines.append(
            "Update strategy: OnDelete (the patch replaces no pod; --delete-pods deletes them "
            "one at a time)"
        )
    lines += [
        f"PATCH {plan.get('path')} ({plan.get('contentType')})",
        f"  {json.dumps(plan.get('patch'), sort_keys=True)}",
        "Permissions:",
    ]
    for check, allowed in (plan.get("permissions") or {}).items():
        answer = "yes" if allowed is True else ("no" if allowed is False else str(allowed))
        lines.append(f"  {check}: {answer}")
    lines.append("Nothing was changed.")
    return lines


def _pod_details(pods: Sequence[PodInfo], *, failing_only: bool) -> list[str]:
    rows = [("NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE")]
    for pod in pods:
        rows.append(
            (
                pod.name,
                f"{pod.ready_containers}/{pod.total_containers}",
                pod.status,
                str(pod.restarts),
                format_age(pod.age_seconds) if pod.age_seconds is not None else "<unknown>",
                pod.node or "<none>",
            )
        )
    if len(rows) == 1:
        return ["  (no pods)"]
    lines = render_table(rows)
    for pod in pods:
        if failing_only and not pod.failing:
            continue
        detail = [d for d in (pod.message, _last_state(pod)) if d]
        if detail and not pod.ready:
            where = f" (container {one_line(pod.container)})" if pod.container else ""
            lines.append(f"  {one_line(pod.name)}{where}: {'; '.join(one_line(d) for d in detail)}")
    return lines


def render_table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows as aligned columns, the first row the header; every cell one line (cluster text
    is data)."""
    cells = [tuple(one_line(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells
    ]


def _last_state(pod: PodInfo) -> Optional[str]:
    return f"last terminated: {pod.last_termination}" if pod.last_termination else None


def _events_and_logs(outcome: Outcome) -> list[str]:
    lines: list[str] = []
    if outcome.events_note:
        lines.append(f"Events: {outcome.events_note}")
    if outcome.events:
        lines.append("Events:")
        for event in outcome.events:
            count = f" (x{event.count})" if event.count > 1 else ""
            age = format_age(event.age_seconds) if event.age_seconds is not None else "?"
            lines.append(
                f"  {age:>4}  {event.reason:<18} {event.object_kind.lower()}/{event.object_name}: "
                f"{safe_text(event.message)}{count}"
            )
    for excerpt in outcome.logs:
        which = "previous instance" if excerpt.previous else "current instance"
        lines.append(f"--- logs of {excerpt.pod} (container {excerpt.container}, {which}) ---")
        if excerpt.error:
            lines.append(f"  (could not read logs: {excerpt.error})")
        elif not excerpt.lines:
            lines.append("  (no log lines)")
        lines += [f"  | {cut_log_line(safe_text(line))}" for line in excerpt.lines]
        lines.append("--- end of logs ---")
    return lines


def _rollback_or_hint(outcome: Outcome, style: Style) -> list[str]:
    rollback = outcome.rollback
    if rollback is None:
        return _undo_hint(outcome)
    revision = f" to revision {rollback.revision}" if rollback.revision else ""
    if outcome.interrupted:
        said = {
            Sent.NO: "was not sent",
            Sent.UNKNOWN: "was on its way: it may have been applied",
            Sent.YES: "was sent and goes on in the cluster",
        }[rollback.sent]
        lines = [f"Interrupted while {outcome.interrupted}: the rollback{revision} {said}."]
        if rollback.sent is not Sent.NO:
            lines.append(f"To see where it is: {_status_command(outcome)}")
        return lines
    if rollback.refused:
        return [f"Not rolled back: {rollback.error}"]
    if rollback.sent is Sent.UNKNOWN:
        return [
            f"The rollback{revision} may have been applied: {rollback.error}",
            f"To see where it is: {_status_command(outcome)}",
        ]
    if rollback.error:
        return [f"Rollback failed: {rollback.error}"]
    state = rollback.state
    arrow = "↩" if style.unicode else "<-"
    counts = f": {state.ready_replicas}/{state.replicas} pods ready" if state else ""
    return [f"{arrow} Rolled back to revision {rollback.revision}{counts}"]


def _undo_hint(outcome: Outcome) -> list[str]:
    """Advice after a failure: undo is suggested only for our own restart, whose revision is
    the newest (``status`` watches whoever's rollout it is, and accepts no --undo-on-failure)."""
    state = outcome.state
    first = "The old pods keep serving while the new ones fail."
    if state is not None and state.reason == "Deleted":
        return []
    if state is not None and state.reason in AFTER_COMPLETE_REASONS:
        first = "The new pods have replaced the old ones."
    where = f"-n {outcome.namespace}" + (f" --context {outcome.context}" if outcome.context else "")
    if not outcome.own_restart:
        return [
            f"{first} Fix the cause above; the revisions are listed by: kubectl rollout "
            f"history {outcome.label} {where}"
        ]
    return [
        f"{first} To roll back: kubectl rollout undo {outcome.label} {where} (or run again "
        "with --undo-on-failure)"
    ]


def _status_command(outcome: Outcome) -> str:
    """The command that keeps watching this very rollout (same cluster, same workload)."""
    return status_command(outcome.kind, outcome.app_name, outcome.namespace, outcome.context)


def status_command(kind: Kind, name: str, namespace: str, context: str) -> str:
    """The command that keeps watching the rollout of this workload (the lock's hint too)."""
    return workload_command("kubectl restart-backend status", kind, name, namespace, context)


def _command(outcome: Outcome, command: str) -> str:
    return workload_command(
        command, outcome.kind, outcome.app_name, outcome.namespace, outcome.context
    )


def workload_command(command: str, kind: Kind, name: str, namespace: str, context: str) -> str:
    """``command`` aimed at this very workload: ``--deployment NAME`` (as it always was) or
    ``-w KIND/NAME``, its namespace and context."""
    where = f" --context {context}" if context else ""
    which = f"--deployment {name}" if kind is DEPLOYMENT else f"-w {kind.ref(name)}"
    return f"{command} {which} -n {namespace}{where}"


# -- outcome as data -----------------------------------------------------------------------


def outcome_document(outcome: Outcome, exit_code: int) -> dict[str, Any]:
    """The machine-readable result; its schema is documented in README and pinned by a test."""
    state = outcome.state
    replicasets = outcome.kind.replicasets
    return {
        "appName": outcome.app_name,
        "kind": outcome.kind.name,
        "namespace": outcome.namespace,
        "context": outcome.context,
        "repo": outcome.repo,
        "branch": outcome.branch,
        "verdict": outcome.verdict.value,
        "ready": outcome.verdict in (Verdict.COMPLETE, Verdict.NO_PODS),
        "rolloutInProgress": outcome.verdict
        in (Verdict.TIMEOUT, Verdict.TRIGGERED, Verdict.INTERRUPTED),
        "failed": outcome.verdict is Verdict.FAILED,
        "failureReason": state.failure_reason if state and state.phase.value == "Failed" else None,
        "timedOut": outcome.verdict is Verdict.TIMEOUT,
        "readyReplicas": state.ready_replicas if state else 0,
        "replicas": state.replicas if state else 0,
        "pods": [_pod_document(pod, replicasets) for pod in (state.pods if state else ())],
        "deployedUrls": list(outcome.urls),
        "events": [
            {
                "object": f"{e.object_kind}/{e.object_name}",
                "reason": e.reason,
                "message": e.message,
                "count": e.count,
                "ageSeconds": e.age_seconds,
            }
            for e in outcome.events
        ],
        "logs": [
            {
                "pod": x.pod,
                "container": x.container,
                "previous": x.previous,
                "lines": list(x.lines),
                "error": x.error or None,
            }
            for x in outcome.logs
        ],
        "restartedAt": outcome.restarted_at,
        "durationSeconds": round(outcome.duration_seconds, 3),
        "notes": list(outcome.notes)
        + ([f"events: {outcome.events_note}"] if outcome.events_note else [])
        + ([f"URLs: {outcome.urls_note}"] if outcome.urls_note and not outcome.urls else []),
        "exitCode": int(exit_code),
        "error": None,
        "supersededBy": state.message if state and state.superseded else None,
        "recovered": recoveries(outcome),
        "rollback": _rollback_document(outcome.rollback),
        "interrupted": outcome.interrupted or None,
        "verification": _verification_document(outcome.verification),
        "updateStrategy": outcome.update_strategy,
        "deletedPods": list(outcome.deleted_pods),
        "lock": _lock_document(outcome.lock),
    }


def run_document(run: RunOutcome, exit_codes: Sequence[int], exit_code: int) -> dict[str, Any]:
    """The document of a run: one workload's document as it always was; for several, the
    same keys summed up over the workloads (README, "JSON / YAML output") and ``workloads``,
    one document per workload."""
    documents = [outcome_document(o, c) for o, c in zip(run.outcomes, exit_codes)]
    if run.single:
        return documents[0]
    return {**combine_documents(documents, run.notes, exit_code), "workloads": documents}


def combine_documents(
    documents: Sequence[dict[str, Any]],
    notes: Sequence[str],
    exit_code: int,
    *,
    label: Optional[Callable[[dict[str, Any]], str]] = None,
    rank: Callable[[int], int] = severity,
) -> dict[str, Any]:
    """The top-level keys of a run of several workloads (or clusters: ``label`` names each
    document, ``rank`` orders exit codes worst first).

    The verdict is the worst workload's (by exit code severity), ``ready`` only when every
    workload is; counts are sums, lists are concatenated, and what names one workload
    (appName, kind, updateStrategy, supersededBy, rollback, ...) is null unless every
    workload shares it; a failure reason starts with the workload it is about.
    """
    _label = label or _workload_label
    worst = min(documents, key=lambda d: rank(d["exitCode"]))

    def shared(key: str) -> Any:
        values = {json.dumps(d[key], sort_keys=True) for d in documents}
        return documents[0][key] if len(values) == 1 else None

    def first(key: str, prefix: bool = False) -> Any:
        for d in documents:
            if d[key]:
                return f"{_label(d)}: {d[key]}" if prefix else d[key]
        return None

    def joined(key: str, prefix: bool = False) -> list:
        return [f"{_label(d)}: {x}" if prefix else x for d in documents for x in d[key]]

    return {
        "appName": None,
        "kind": None,
        "namespace": shared("namespace"),
        "context": shared("context"),
        "repo": shared("repo"),
        "branch": shared("branch"),
        "verdict": worst["verdict"],
        "ready": all(d["ready"] for d in documents),
        "rolloutInProgress": any(d["rolloutInProgress"] for d in documents),
        "failed": any(d["failed"] for d in documents),
        "failureReason": first("failureReason", prefix=True),
        "timedOut": any(d["timedOut"] for d in documents),
        "readyReplicas": sum(d["readyReplicas"] for d in documents),
        "replicas": sum(d["replicas"] for d in documents),
        "pods": joined("pods"),
        "deployedUrls": list(dict.fromkeys(joined("deployedUrls"))),
        "events": joined("events"),
        "logs": joined("logs"),
        "restartedAt": first("restartedAt"),
        "durationSeconds": max(d["durationSeconds"] for d in documents),
        "notes": list(notes) + joined("notes", prefix=True),
        "exitCode": int(exit_code),
        "error": None,
        "supersededBy": first("supersededBy", prefix=True),
        "recovered": joined("recovered", prefix=True),
        "rollback": None,
        "interrupted": first("interrupted", prefix=True),
        "verification": None,  # each workload's is in workloads
        "updateStrategy": shared("updateStrategy"),
        "deletedPods": joined("deletedPods"),
        "lock": _combined_lock(documents),
    }


def _workload_label(document: dict[str, Any]) -> str:
    return f"{str(document['kind']).lower()}/{document['appName']}"


def error_document(
    message: str,
    hint: str,
    exit_code: int,
    known: Mapping[str, Any],
    *,
    triggered: bool = False,
    duration_seconds: float = 0.0,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The document for a run that ended in an error instead of a verdict (any exit code).

    Same keys as ``outcome_document``, so a machine reads every run alike: ``verdict`` is
    ``error``, ``error`` says what and what to do, the target is filled in as far as it was
    known (``known``: appName, namespace, context, repo, branch). ``triggered``: the restart
    was sent before the error (e.g. watching was forbidden), so the rollout goes on.
    """
    return {
        "appName": known.get("appName"),
        "kind": known.get("kind"),
        "namespace": known.get("namespace"),
        "context": known.get("context"),
        "repo": known.get("repo"),
        "branch": known.get("branch"),
        "verdict": "error",
        "ready": False,
        "rolloutInProgress": triggered,
        "failed": False,
        "failureReason": None,
        "timedOut": False,
        "readyReplicas": 0,
        "replicas": 0,
        "pods": [],
        "deployedUrls": [],
        "events": [],
        "logs": [],
        "restartedAt": None,
        "durationSeconds": round(duration_seconds, 3),
        "notes": list(notes),
        "exitCode": int(exit_code),
        "error": {"message": message, "hint": hint or None},
        "supersededBy": None,
        "recovered": [],
        "rollback": None,
        "interrupted": None,
        "verification": None,
        "updateStrategy": None,
        "deletedPods": [],
        "lock": None,
    }


def _rollback_document(rollback: Optional[Rollback]) -> Optional[dict[str, Any]]:
    if rollback is None:
        return None
    state = rollback.state
    return {
        "revision": rollback.revision,
        "sent": rollback.sent.value,
        "refused": rollback.refused,
        "complete": bool(state is not None and state.ready and not rollback.error),
        "readyReplicas": state.ready_replicas if state else None,
        "error": rollback.error or None,
    }


def _verification_document(verification: Optional[Verification]) -> Optional[dict[str, Any]]:
    if verification is None:
        return None
    settle = None
    if verification.settle_seconds:
        settle = {
            "seconds": verification.settle_seconds,
            "status": verification.settle or None,
            "problem": verification.settle_problem or None,
        }
    return {
        "status": verification.status,
        "check": verification.check or None,
        "method": verification.method or None,
        "expect": verification.expect or None,
        "successes": verification.successes,
        "attempts": verification.attempts,
        "answers": list(verification.answers),
        "reason": verification.reason or None,
        "durationSeconds": verification.seconds,
        "settle": settle,
    }


def _lock_document(lock: Optional[LockReport]) -> Optional[dict[str, Any]]:
    if lock is None:
        return None
    return {
        "lease": lock.lease,
        "held": lock.held,
        "waitedSeconds": round(lock.waited_seconds, 3),
        "waitedFor": lock.waited_for or None,
    }


def _combined_lock(documents: Sequence[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The locks of several workloads summed up (each workload's own is in ``workloads``):
    no one Lease, held only if every lock taken was, the seconds waited in all, and the
    first other run waited for; null when no lock was taken (a dry run)."""
    locks = [d["lock"] for d in documents if d["lock"]]
    if not locks:
        return None
    return {
        "lease": None,
        "held": all(lock["held"] for lock in locks),
        "waitedSeconds": round(sum(lock["waitedSeconds"] for lock in locks), 3),
        "waitedFor": next((lock["waitedFor"] for lock in locks if lock["waitedFor"]), None),
    }


def _pod_document(pod: PodInfo, replicasets: bool = True) -> dict[str, Any]:
    """One pod; its group is a ReplicaSet (Deployments) or a revision (StatefulSets: the
    ControllerRevision's name, DaemonSets: its hash), as its controller-revision-hash says."""
    return {
        "name": pod.name,
        "ready": pod.ready,
        "readyContainers": pod.ready_containers,
        "totalContainers": pod.total_containers,
        "status": pod.status,
        "restarts": pod.restarts,
        "ageSeconds": pod.age_seconds,
        "node": pod.node,
        "failing": pod.failing,
        "container": pod.container,
        "message": pod.message,
        "lastTermination": pod.last_termination,
        "replicaSet": pod.replicaset if replicasets else None,
        "revision": None if replicasets else pod.replicaset,
        "new": pod.is_new,
        "lastExitAgeSeconds": pod.last_exit_age,
        "failedPulls": pod.failed_pulls,
        "trouble": pod.trouble,
        "doom": pod.doom,
        "tolerance": pod.tolerance,
        "failure": pod.failure,
        "seen": list(pod.seen),
    }


def render_document(document: dict, output: str) -> str:
    if output == "json":
        return json.dumps(document, indent=2, sort_keys=False) + "\n"
    import yaml

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
