"""Differential fidelity: one scenario, two clusters (simulated and official), one answer.

A `Side` hides the few things the two clusters do differently (how a Deployment is linked,
how a user with some rights is made, how a pod quota is set); scenarios are written once
against it. `key_lines` turns the plugin's text output into what must agree (verdict line,
summary lines, pod table without ages, failure details, event reasons, log lines, error
lines), with the names that are random by nature (pod and ReplicaSet hashes, UIDs, the real
tier's per-test suffix) replaced by placeholders and the durations that depend on when the
plugin looked (ages, event counts, back-off steps) left out.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS, Run, run_plugin

__all__ = ["Side", "SimSide", "RealSide", "key_lines", "normalize", "pod_waiting"]

_POD = re.compile(r"(?<![a-z0-9-])([a-z][a-z0-9-]*?)-[a-z0-9]{6,10}-[a-z0-9]{5}(?![a-z0-9])")
# a DaemonSet's pods: <ds>-<5 random characters> (the scenarios' DaemonSet is "agent")
_DAEMON_POD = re.compile(r"(?<![a-z0-9-])(agent)-[a-z0-9]{5}(?![a-z0-9])")
_REPLICASET = re.compile(r"(?<![a-z0-9-])(backend|api)-[a-z0-9]{6,10}(?![a-z0-9])")
_UID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_BACKOFF = re.compile(r"\bback-off \d+m?\d*s\b")
_CONTEXT_FLAG = re.compile(r"--context \S+")
_CONTEXT_NOTE = re.compile(r"\(context [^)]+\)")
_EVENT = re.compile(
    r"^\s+\S+\s+(?P<reason>\S+)\s+(?P<kind>[a-z]+)/\S+: (?P<message>.*?)(?: \(x\d+\))?$"
)
_MARKS = ("✓", "✗", "⚠")
_SUMMARY = (
    "All pods healthy:",
    "Current:",
    "No pods to restart",
    "↩ Rolled back",
    "Rollback failed",
    "URLs:",
    "Dry run:",
    "Check pod status",
    "The old pods keep serving",
    "The rollout goes on",
    "Not waiting",
    "Restart sent to",
    "Not restarted:",
    "Deleted pods",
)


def normalize(text: str, suffix: str | None = None) -> str:
    """Placeholders for what is random by nature; the real tier's suffix removed."""
    if suffix:
        text = text.replace(f"-{suffix}", "")
    text = _UID.sub("<uid>", text)
    text = _POD.sub(r"\1-<pod>", text)
    text = _DAEMON_POD.sub(r"\1-<pod>", text)
    text = _REPLICASET.sub(r"\1-<rs>", text)
    text = _BACKOFF.sub("back-off <t>", text)
    text = _CONTEXT_FLAG.sub("--context <context>", text)
    return _CONTEXT_NOTE.sub("(context <context>)", text)


def pod_waiting(cluster: Any, namespace: str, reason: str) -> bool:
    """Does a container of a pod in `namespace` wait with `reason` (either cluster)?"""
    for pod in cluster.list("pods", namespace):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if ((status.get("state") or {}).get("waiting") or {}).get("reason") == reason:
                return True
    return False


def key_lines(run: Run, suffix: str | None = None) -> dict[str, Any]:
    """What two clusters must agree on, from one run of the plugin in text mode."""
    lines = normalize(run.stdout, suffix).splitlines()
    errors = normalize(run.stderr, suffix).splitlines()
    keys: dict[str, Any] = {
        "exit code": run.exit_code,
        "verdict": next((line for line in lines if line.startswith(_MARKS)), None),
        "summary": [line for line in lines if line.startswith(_SUMMARY)],
        "errors": [line for line in errors if line.startswith(("error:", "hint:"))],
        "pods": [],
        "details": [],
        "events": set(),
        "logs": [line.strip() for line in lines if line.lstrip().startswith("| ")],
    }
    section = None
    for line in lines:
        if line in ("Pod details:", "Events:", "Permissions:"):
            section = line
            continue
        if not line.startswith("  "):
            section = None
            continue
        if section == "Pod details:":
            cells = line.split()
            if cells[0] == "NAME":
                continue
            if len(cells) == 6 and "/" in cells[1] and ":" not in line:
                keys["pods"].append(tuple(cells[:3]))  # name, ready, status (no restarts/age)
            else:
                keys["details"].append(line.strip())
        elif section == "Permissions:":
            keys["details"].append(line.strip())
        elif section == "Events:":
            match = _EVENT.match(line)
            if match:  # the same event, however often and however long ago it happened
                keys["events"].add((match["reason"], match["kind"], match["message"]))
    keys["pods"].sort()
    return keys


@dataclass
class Side:
    """One cluster in a differential scenario."""

    name: str
    cluster: Any
    ns: str
    checkout: Path
    suffix: str | None = None
    users: dict[str, str] = field(default_factory=dict)

    def link(self, name: str = "backend", **kwargs: Any) -> dict:
        raise NotImplementedError

    def link_statefulset(self, name: str = "db", **kwargs: Any) -> dict:
        """A StatefulSet linked to the side's repo (as `link` links a Deployment)."""
        return self.cluster.create_statefulset(self.ns, name, **self._linked(name), **kwargs)

    def link_daemonset(self, name: str = "agent", **kwargs: Any) -> dict:
        """A DaemonSet linked to the side's repo, one pod per node."""
        return self.cluster.create_daemonset(self.ns, name, **self._linked(name), **kwargs)

    def _linked(self, name: str) -> dict[str, Any]:
        return {"labels": {**LINK_LABELS, "app": name}, "annotations": dict(LINK_ANNOTATIONS)}

    def user(self, name: str, rules: list[Mapping[str, Any]]) -> str:
        """A kubeconfig for a user whose rights are `rules` in this side's namespace only."""
        raise NotImplementedError

    def run(self, *args: str, kubeconfig: str | None = None) -> Run:
        kubeconfig = kubeconfig or self.cluster.kubeconfig
        return run_plugin([*args, "--kubeconfig", kubeconfig], cwd=self.checkout)

    def run_while(
        self, args: tuple[str, ...], when: Callable[[], bool], then: Callable[[], None]
    ) -> Run:
        """Run the plugin; once `when()` holds, do `then()` (the cluster changes mid-watch)."""
        result: dict[str, Run] = {}
        thread = threading.Thread(target=lambda: result.update(run=self.run(*args)))
        thread.start()
        try:
            self.cluster.wait_for(lambda: when() or not thread.is_alive(), 60,
                                  "the condition to act on never came")  # fmt: skip
            then()
        finally:
            thread.join(120)
        return result["run"]

    def keys(self, run: Run) -> dict[str, Any]:
        return key_lines(run, self.suffix)


class SimSide(Side):
    def link(self, name: str = "backend", **kwargs: Any) -> dict:
        kwargs.setdefault("labels", {**LINK_LABELS, "app": name})
        kwargs.setdefault("annotations", dict(LINK_ANNOTATIONS))
        return self.cluster.create_deployment(self.ns, name, **kwargs)

    def user(self, name: str, rules: list[Mapping[str, Any]]) -> str:
        scoped = [{**rule, "namespaces": [self.ns]} for rule in rules]
        self.cluster.add_user(name, f"{name}-token", scoped)
        return self.cluster.write_kubeconfig(user=name, namespace=self.ns, context=name)


class RealSide(Side):
    def link(self, name: str = "backend", **kwargs: Any) -> dict:
        return self.cluster.link(self.ns, name, **kwargs)

    def _linked(self, name: str) -> dict[str, Any]:
        return {
            "labels": {**self.cluster.link_labels, "app": name},
            "annotations": dict(self.cluster.link_annotations),
        }

    def user(self, name: str, rules: list[Mapping[str, Any]]) -> str:
        return self.cluster.add_user(name, rules, namespace=self.ns)
