"""A run of several clusters in words (each cluster's own report, then one table of cluster x
workload x verdict x duration and a summary line) or as one JSON/YAML document (``clusters``:
each cluster's ordinary document plus its ``wave``; the top-level keys summed up).

Pure: every function returns text or a dict. Exit codes come in from the CLI, which alone
maps verdicts to them: ``workload_codes[i]`` are cluster i's workloads' codes (empty for a
cluster that ended in an error or was not started), ``cluster_codes[i]`` its own.
"""

from __future__ import annotations

from typing import Any, Sequence

from kubectl_restart_backend.cluster_waves import (
    ClusterResult,
    ClustersOutcome,
    ClusterStatus,
    cluster_severity,
)
from kubectl_restart_backend.diagnosis import one_line
from kubectl_restart_backend.outcome import Verdict
from kubectl_restart_backend.render import (
    Style,
    combine_documents,
    error_document,
    render_run,
    render_table,
    run_document,
    summary_word,
)

_ORDER = (
    "interrupted", "failed", "error", "timed out", "superseded", "not started", "triggered",
    "checked (dry run)", "complete",
)  # fmt: skip
_VERBS = {"error": "ended in an error", "superseded": "were superseded"}  # the summary's head
_BAD = ("interrupted", "failed", "error")
_UNSURE = ("timed out", "superseded")


def render_clusters(
    outcome: ClustersOutcome,
    style: Style,
    workload_codes: Sequence[Sequence[int]],
    cluster_codes: Sequence[int],
) -> str:
    """Each cluster's report under its name (and wave, if there are several), then the table
    and the summary."""
    total = len(outcome.waves)
    parts = []
    for result, codes in zip(outcome.clusters, workload_codes):
        head = f"== {one_line(result.context)}"
        if total > 1:
            head += f" (cluster wave {result.wave} of {total})"
        parts.append(f"{head}\n{_cluster_body(result, style, codes)}")
    table = "\n".join(["Clusters:", *render_table(cluster_rows(outcome))])
    summary = render_clusters_summary(outcome, style, workload_codes, cluster_codes)
    return "\n".join(parts) + "\n" + table + "\n" + summary + "\n"


def _cluster_body(result: ClusterResult, style: Style, codes: Sequence[int]) -> str:
    if result.run is not None:
        return render_run(result.run, style, codes)
    if result.error is not None:
        hint = f"hint: {one_line(result.error.hint, limit=1000)}\n" if result.error.hint else ""
        message = one_line(result.error.message, limit=1000)
        return f"{style.mark(Verdict.FAILED)} {one_line(result.context)}: {message}\n{hint}"
    return (
        f"Not restarted: its cluster wave comes after {result.not_started}; nothing was sent "
        f"to {one_line(result.context)}\n"
    )


def cluster_rows(outcome: ClustersOutcome) -> list[tuple[str, ...]]:
    """WAVE, CONTEXT, NAMESPACE, WORKLOAD, VERDICT, DURATION: one row per workload of each
    cluster (one per cluster that ended in an error or was not started)."""
    rows = [("WAVE", "CONTEXT", "NAMESPACE", "WORKLOAD", "VERDICT", "DURATION")]
    for result in outcome.clusters:
        wave = str(result.wave)
        if result.run is not None:
            for o in result.run.outcomes:
                took = _seconds(o.duration_seconds) if o.verdict is not Verdict.NOT_STARTED else "-"
                rows.append((wave, result.context, o.namespace, o.label, o.verdict.value, took))
        elif result.error is not None:
            took = _seconds(result.duration_seconds)
            word = "interrupted" if result.error.exit_code > 128 else "error"
            rows.append((wave, result.context, "-", "-", word, took))
        else:
            rows.append((wave, result.context, "-", "-", "not-started", "-"))
    return rows


def _seconds(value: float) -> str:
    return f"{value:.1f}s"


def cluster_word(result: ClusterResult, codes: Sequence[int]) -> str:
    """How the summary counts a cluster: its worst workload's word, ``error`` or ``not
    started``."""
    if result.status is ClusterStatus.ERROR:
        return "interrupted" if result.error and result.error.exit_code > 128 else "error"
    if result.run is None:
        return "not started"
    worst = min(range(len(codes)), key=lambda i: cluster_severity(codes[i])) if codes else 0
    return summary_word(result.run.outcomes[worst].verdict)


def render_clusters_summary(
    outcome: ClustersOutcome,
    style: Style,
    workload_codes: Sequence[Sequence[int]],
    cluster_codes: Sequence[int],
) -> str:
    """``✗ 1 of 3 clusters failed (failed: prod-us; complete: staging, prod-eu)``."""
    groups: dict[str, list[str]] = {}
    for result, codes in zip(outcome.clusters, workload_codes):
        groups.setdefault(cluster_word(result, codes), []).append(one_line(result.context))
    order = [word for word in _ORDER if word in groups]
    verb = _VERBS.get(order[0], order[0])
    head = f"{len(groups[order[0]])} of {len(outcome.clusters)} clusters {verb}"
    rest = "; ".join(f"{word}: {', '.join(groups[word])}" for word in order)
    took = f" in {_seconds(outcome.duration_seconds)}"
    if order[0] in _BAD:
        mark = style.mark(Verdict.FAILED)
    elif order[0] in _UNSURE:
        mark = style.mark(Verdict.TIMEOUT)
    else:
        mark = style.mark(Verdict.COMPLETE)
    return f"{mark} {head} ({rest}){took}"


def clusters_document(
    outcome: ClustersOutcome,
    workload_codes: Sequence[Sequence[int]],
    cluster_codes: Sequence[int],
    exit_code: int,
) -> dict[str, Any]:
    """One document for the run: the keys of a single cluster's, summed up over the clusters
    (``render.combine_documents``, the worst verdict by ``cluster_severity``), then
    ``clusters`` (each cluster's document plus ``wave``) and ``waves`` (the contexts of each)."""
    documents = [
        cluster_document(result, codes, code)
        for result, codes, code in zip(outcome.clusters, workload_codes, cluster_codes)
    ]
    top = combine_documents(
        documents, (), exit_code, label=lambda d: str(d["context"]), rank=cluster_severity
    )
    worst = min(documents, key=lambda d: cluster_severity(d["exitCode"]))
    error = None
    if worst["error"] is not None:
        error = {**worst["error"], "message": f"{worst['context']}: {worst['error']['message']}"}
    top.update(durationSeconds=round(outcome.duration_seconds, 3), error=error)
    top["waves"] = [list(wave.contexts) for wave in outcome.waves]
    top["fromWave"] = outcome.from_wave
    top["clusters"] = documents
    return top


def cluster_document(result: ClusterResult, codes: Sequence[int], code: int) -> dict[str, Any]:
    """A cluster's own document (as a run on that context alone prints it), plus ``wave``."""
    known = {"context": result.context}
    if result.run is not None:
        document = run_document(result.run, codes, code)
    elif result.error is not None:
        document = error_document(
            result.error.message,
            result.error.hint,
            result.error.exit_code,
            known,
            triggered=result.error.triggered,
            duration_seconds=result.duration_seconds,
        )
    else:
        note = f"not restarted: its cluster wave comes after {result.not_started}"
        document = error_document("", "", 0, known, notes=[note])
        document.update(verdict=Verdict.NOT_STARTED.value, error=None)
    return {**document, "context": result.context, "wave": result.wave}
