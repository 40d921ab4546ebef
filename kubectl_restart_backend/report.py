"""Fetch what explains a verdict: events and logs on failure, URLs on success.

Everything here is optional: a user who may not read events, logs or Ingresses still gets
the restart and the verdict, with a line saying what could not be looked at.
"""

from __future__ import annotations

import threading
from typing import Any

from kubectl_restart_backend.diagnosis import choose_log_targets, summarize_events
from kubectl_restart_backend.errors import ApiError
from kubectl_restart_backend.kinds import DEPLOYMENT, Kind
from kubectl_restart_backend.outcome import LogExcerpt, Verdict
from kubectl_restart_backend.rollout import RolloutState
from kubectl_restart_backend.urls import describe_no_urls, discover_urls


class UrlPrefetch:
    """Look up the URLs while the rollout runs, so success is printed the moment it happens.

    What routes to a workload does not change because its pods restart, so the answer
    fetched at the start is the one to print at the end; on failure it is simply not used.
    """

    def __init__(self, session: Any, workload: dict) -> None:
        self._result: dict = {}
        self._thread = threading.Thread(
            target=self._fetch, args=(session, workload), name="urls", daemon=True
        )
        self._thread.start()

    def _fetch(self, session: Any, workload: dict) -> None:
        try:
            self._result = gather_urls(session, workload)
        except Exception as err:  # noqa: BLE001 - optional data must never break the verdict
            self._result = {"urls_note": f"unknown (could not look: {err})"}

    def result(self, timeout: float = 30.0) -> dict:
        self._thread.join(timeout)
        if self._thread.is_alive():
            return {"urls_note": "unknown (the lookup did not answer in time)"}
        return self._result


def gather_report(
    session: Any,
    state: RolloutState,
    verdict: Verdict,
    workload: dict,
    watch_options: Any,
    urls: UrlPrefetch | None = None,
    kind: Kind = DEPLOYMENT,
) -> dict:
    if verdict is Verdict.COMPLETE:
        return urls.result() if urls is not None else gather_urls(session, workload)
    if verdict in (Verdict.FAILED, Verdict.TIMEOUT):
        return {
            **gather_events(session, state, workload, kind),
            "logs": gather_logs(session, state, workload, watch_options.logs),
        }
    return {}


def gather_urls(session: Any, workload: dict) -> dict:
    """URLs from the annotation, else from what routes to the pods; each source optional."""
    meta = workload["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    annotated = discover_urls(workload, [], [], [])
    if annotated:
        return {"urls": tuple(annotated)}
    try:
        services = session.api.list("services", namespace).items
    except ApiError as err:  # every source routes through a Service: nothing to match
        return {"urls_note": f"unknown (could not look: {err.message})"}
    unseen = []
    sources = {"ingresses": (), "httproutes": ()}
    for resource, fetch in (
        ("ingresses", lambda: session.api.list("ingresses", namespace).items),
        ("httproutes", lambda: session.api.list_httproutes(namespace)),
    ):
        try:
            sources[resource] = fetch()
        except ApiError as err:
            unseen.append(f"{resource}: {err.message}")
    urls = discover_urls(workload, services, sources["ingresses"], sources["httproutes"])
    if urls:
        return {"urls": tuple(urls)}
    if unseen:
        return {"urls_note": f"none found (could not look at {'; '.join(unseen)})"}
    return {"urls_note": describe_no_urls(name)}


def gather_events(
    session: Any, state: RolloutState, workload: dict, kind: Kind = DEPLOYMENT
) -> dict:
    """Warning events of the pods that are not ready, their ReplicaSet and the workload (a
    StatefulSet's or DaemonSet's FailedCreate is about the workload itself)."""
    meta = workload["metadata"]
    involved = {(kind.name, meta["name"])}
    if state.new_replicaset and kind.replicasets:
        involved.add(("ReplicaSet", state.new_replicaset))
    involved |= {("Pod", pod.name) for pod in state.pods if not pod.ready}
    try:
        events = session.api.list("events", meta["namespace"]).items
    except ApiError as err:
        return {"events_note": f"could not look: {err.message}"}
    return {"events": tuple(summarize_events(events, now=session.now(), involved=involved))}


def gather_logs(session: Any, state: RolloutState, workload: dict, tail: int) -> tuple:
    if tail <= 0:
        return ()
    namespace = workload["metadata"]["namespace"]
    excerpts = []
    for target in choose_log_targets(state.pods):
        try:
            text = session.api.read_pod_log(
                namespace,
                target.pod,
                container=target.container,
                previous=target.previous,
                tail=tail,
            )
            lines = tuple(text.splitlines()[-tail:])
            excerpts.append(LogExcerpt(target.pod, target.container or "", target.previous, lines))
        except ApiError as err:
            excerpts.append(
                LogExcerpt(target.pod, target.container or "", target.previous, (), err.message)
            )
    return tuple(excerpts)
