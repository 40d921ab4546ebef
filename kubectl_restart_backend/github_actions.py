"""GitHub Actions' words: workflow commands, the step summary and the step outputs.

Pure: everything here returns text from report documents (``render.outcome_document``,
``render.error_document``); ``event_stream.GitHubActions`` writes it where the runner reads
it. Workflow commands are escaped as the runner unescapes them (actions/toolkit's
``command.ts``): ``%``, ``\\r``, ``\\n`` in the message; also ``:`` and ``,`` in properties,
so a pod's message can never end a command early or inject another one.

``render_step_summary`` takes (context, workload document) rows, so a run over several
clusters gives one table with a row per cluster and workload.
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping, Optional, Sequence

from kubectl_restart_backend.diagnosis import cut_log_line, one_line, safe_text

Row = tuple[Optional[str], Mapping[str, Any]]  # (context, one workload's document)

_MARKS = {
    "complete": "✅",
    "no-pods": "✅",
    "triggered": "▶️",
    "dry-run": "🔍",
    "failed": "❌",
    "timeout": "⚠️",
    "superseded": "⚠️",
    "interrupted": "⛔",
    "not-started": "⏭️",
    "error": "❌",
}


def escape_data(text: str) -> str:
    """A command's message: the three characters the runner unescapes."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value (title, file): also ``:`` and ``,``, which end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, message: str = "", **properties: Optional[str]) -> str:
    """``::name key=value,key=value::message`` (one line, escaped)."""
    props = ",".join(
        f"{key}={escape_property(value)}" for key, value in properties.items() if value
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def group_title(action: str, targets: Sequence[str], context: Optional[str]) -> str:
    """``restart-backend: restarting deployment shop/backend (context prod-eu)``."""
    where = f" (context {context})" if context else ""
    return one_line(f"restart-backend: {action} {', '.join(targets)}{where}", limit=200)


def clusters_group_title(line: str) -> str:
    """``restart-backend: cluster wave 1 of 2: staging`` (from the wave's first line)."""
    return one_line(f"restart-backend: {line[:1].lower()}{line[1:]}", limit=200)


# -- annotations -----------------------------------------------------------------------------


def annotations(rows: Sequence[Row]) -> list[str]:
    """One ``::error`` per failed workload (naming the pod and the reason), one
    ``::warning`` per timeout, superseded or interrupted one; nothing for successes."""
    lines = []
    for context, doc in rows:
        verdict = doc.get("verdict")
        who = _who(doc, context)
        if verdict == "failed":
            reason = doc.get("failureReason") or "the rollout failed"
            lines.append(workflow_command("error", reason, title=f"Restart failed: {who}"))
        elif verdict == "timeout":
            waiting = _not_ready_pods(doc)
            message = (
                f"{doc.get('readyReplicas', 0)}/{doc.get('replicas', 0)} new pods ready when "
                f"--timeout ran out; the rollout goes on in the cluster{waiting}"
            )
            lines.append(workflow_command("warning", message, title=f"Restart timeout: {who}"))
        elif verdict == "superseded":
            message = doc.get("supersededBy") or "a newer change took over the rollout"
            message += "; not a failure of the restart, nothing was rolled back"
            lines.append(workflow_command("warning", message, title=f"Restart superseded: {who}"))
        elif verdict == "interrupted":
            message = "interrupted before the verdict: the restart goes on in the cluster"
            lines.append(workflow_command("warning", message, title=f"Restart interrupted: {who}"))
    return lines


def error_annotation(document: Mapping[str, Any]) -> str:
    """A run that ended in an error instead of a verdict: what and what to do."""
    error = document.get("error") or {}
    message = str(error.get("message") or "error")
    if error.get("hint"):
        message += f" (hint: {error['hint']})"
    title = f"restart-backend: error (exit code {document.get('exitCode')})"
    return workflow_command("error", message, title=title)


def _who(doc: Mapping[str, Any], context: Optional[str]) -> str:
    return _workload(doc) + (f" (context {context})" if context else "")


def _not_ready_pods(doc: Mapping[str, Any]) -> str:
    pods = [p for p in doc.get("pods") or () if p.get("new") and not p.get("ready")]
    if not pods:
        return ""
    named = ", ".join(f"{p['name']} ({p.get('status')})" for p in pods[:5])
    return f"; not ready: {named}"


# -- the step summary ------------------------------------------------------------------------


def render_step_summary(rows: Sequence[Row], *, title: str = "kubectl restart-backend") -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: a table of cluster × workload × verdict ×
    duration × URLs, then each failed workload's pods (reason), last events and log lines
    folded in ``<details>``."""
    lines = [
        f"### {_cell(title)}",
        "",
        "| cluster (context) | workload | verdict | duration | URLs |",
        "|---|---|---|---|---|",
    ]
    for context, doc in rows:
        verdict = str(doc.get("verdict"))
        urls = " ".join(_link(url) for url in doc.get("deployedUrls") or ()) or "-"
        lines.append(
            f"| {_cell(context or '-')} | {_cell(_workload(doc))} | "
            f"{_MARKS.get(verdict, '')} {_cell(verdict)} | "
            f"{_duration(doc.get('durationSeconds'))} | {urls} |"
        )
    for context, doc in rows:
        if doc.get("verdict") in ("failed", "timeout"):
            lines += [""] + _trouble_section(context, doc)
    return "\n".join(lines) + "\n"


def render_error_summary(
    document: Mapping[str, Any], *, title: str = "kubectl restart-backend"
) -> str:
    """A run that ended in an error: what and what to do, as the terminal said it."""
    error = document.get("error") or {}
    lines = [
        f"### {_cell(title)}",
        "",
        f"❌ **error** (exit code {document.get('exitCode')}): {_cell(str(error.get('message')))}",
    ]
    if error.get("hint"):
        lines += ["", f"hint: {_cell(str(error['hint']))}"]
    if document.get("rolloutInProgress"):
        lines += ["", "The restart was triggered before the error and goes on in the cluster."]
    return "\n".join(lines) + "\n"


def _trouble_section(context: Optional[str], doc: Mapping[str, Any]) -> list[str]:
    verdict = str(doc.get("verdict"))
    where = f" (context {_cell(context)})" if context else ""
    head = f"#### {_MARKS[verdict]} {_cell(_workload(doc))}{where}: {verdict}"
    lines = [head, ""]
    if doc.get("failureReason"):
        lines += [_cell(str(doc["failureReason"])), ""]
    pods = [
        p
        for p in doc.get("pods") or ()
        if p.get("new") and (p.get("failing") or not p.get("ready"))
    ]
    if pods:
        lines += ["| pod | container | status | restarts | detail |", "|---|---|---|---|---|"]
        for pod in pods:
            last = pod.get("lastTermination")
            details = [pod.get("message"), f"last terminated: {last}" if last else None]
            reason = "; ".join(d for d in details if d)
            lines.append(
                f"| {_cell(pod['name'])} | {_cell(pod.get('container') or '-')} | "
                f"{_cell(str(pod.get('status')))} | {pod.get('restarts', 0)} | {_cell(reason)} |"
            )
        lines.append("")
    detail = _events_and_logs(doc)
    if detail:
        lines += [
            "<details><summary>Last events and log lines</summary>",
            "",
            *detail,
            "",
            "</details>",
        ]
    return lines


def _events_and_logs(doc: Mapping[str, Any]) -> list[str]:
    text: list[str] = []
    for event in doc.get("events") or ():
        count = f" (x{event['count']})" if event.get("count", 1) > 1 else ""
        message = one_line(event.get("message"), limit=500)
        text.append(f"{event.get('reason')} {event.get('object')}: {message}{count}")
    for log in doc.get("logs") or ():
        which = "previous" if log.get("previous") else "current"
        text.append(f"--- logs of {log.get('pod')} (container {log.get('container')}, {which}) ---")
        if log.get("error"):
            text.append(f"(could not read logs: {one_line(log['error'])})")
        text += [cut_log_line(safe_text(line)) for line in log.get("lines") or ()]
    if not text:
        return []
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return [fence + "text", *text, fence]


def _longest_backtick_run(lines: Sequence[str]) -> int:
    runs = [len(run) for line in lines for run in re.findall(r"`+", line)]
    return max(runs, default=0)


def _workload(doc: Mapping[str, Any]) -> str:
    if not doc.get("appName"):  # a cluster that ended in an error or was not started
        return "-"
    kind = str(doc.get("kind") or "workload").lower()
    return f"{kind} {doc.get('namespace')}/{doc.get('appName')}"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"


def _cell(text: str) -> str:
    """Cluster text in a Markdown table cell: one line, no HTML, no cell break."""
    return html.escape(one_line(text, limit=500), quote=False).replace("|", "\\|")


def _link(url: str) -> str:
    if not re.match(r"^https?://[^\s<>()\[\]]+$", url):
        return _cell(url)
    return f"[{_cell(url)}]({url})"


# -- step outputs ----------------------------------------------------------------------------


def render_outputs(verdict: str, exit_code: int, ready: bool) -> str:
    """Lines for ``$GITHUB_OUTPUT``: ``verdict``, ``exit-code``, ``ready``."""
    values = {
        "verdict": verdict,
        "exit-code": str(int(exit_code)),
        "ready": str(bool(ready)).lower(),
    }
    return "".join(f"{key}={one_line(value)}\n" for key, value in values.items())
