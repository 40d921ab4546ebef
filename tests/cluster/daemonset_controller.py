"""The DaemonSet controller, after kube-controller-manager's (pkg/controller/daemon, 1.37).

One Pod per eligible node of the simulation (`SimConfig.nodes`, filtered by the template's
nodeSelector and required node affinity, as `NodeShouldRunDaemonPod` does); each Pod is named
`<ds>-<5 random characters>`, labelled `controller-revision-hash` and `pod-template-generation`,
carries the DaemonSet tolerations and a `matchFields metadata.name` node affinity for its node,
and the scheduler binds it there (`syncNodes`, `util.CreatePodTemplate`,
`ReplaceDaemonSetPodNodeNameNodeAffinity`). A node whose Pod is still terminating gets no new
one until it is gone.

RollingUpdate follows `rollingUpdate` in update.go: without surge, old Pods are deleted while
the unavailable ones (new Pods not yet available, nodes without a Pod) stay within
maxUnavailable, so a crash-looping new Pod stops the rollout; with maxSurge, a new Pod is
created beside an available old one and the old one goes once the new one is available.
OnDelete replaces nothing. Nodes are taken in name order (Go walks a map, in random order).

The history is a list of ControllerRevisions named `<ds>-<pod-template hash>` (`snapshot`,
`constructHistory`, `cleanupHistory`); the status is `updateDaemonSetStatus`'s. The API
server's `deprecated.daemonset.template.generation` annotation is kept by store.py.

The top half is pure; the controller class below reads the store, applies it and writes.
Deliberately not simulated: taints and tolerations, Node objects (nodes are names with labels),
the back-off before deleting a failed daemon Pod, expectations (an action in `manage` simply
defers the rolling update to the next sync, as unmet expectations do).
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Mapping

from .controllers import (
    _NAME_ALPHABET,
    _pod_from_template,
    is_pod_available,
    is_pod_ready,
    parse_timestamp,
    pod_template_hash,
    scaled_value,
)
from .events import NORMAL, WARNING
from .pod_owners import PodOwnerController
from .revisions import REVISION_LABEL, new_revision, patch_bytes, revision_number, template_patch
from .scheduling import node_fits, node_labels
from .store import Conflict, deep_copy

__all__ = [
    "DaemonSetController",
    "TEMPLATE_GENERATION_LABEL",
    "TEMPLATE_GENERATION_ANNOTATION",
    "template_generation",
    "is_pod_updated",
    "surge_count",
    "unavailable_count",
    "target_node",
    "daemon_pod_template",
    "node_should_run",
    "nodes_to_daemon_pods",
    "plan_manage",
    "plan_rolling_update",
    "daemonset_status",
]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"  # extensions.DaemonSetTemplateGenerationKey
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
_DAEMON_TOLERATIONS = (  # util.AddOrUpdateDaemonPodTolerations
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
_HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")

Node = tuple[str, Mapping[str, str]]  # (name, labels)


# ----------------------------------------------------------------------------- pods


def template_generation(ds: dict) -> int | None:
    """util.GetTemplateGeneration: the deprecated annotation as a number, or None."""
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(
        TEMPLATE_GENERATION_ANNOTATION
    )
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def is_pod_updated(pod: dict, hash_: str, generation: int | None) -> bool:
    """util.IsPodUpdated: the Pod carries the current revision's hash, or (for Pods made by
    old controllers) the current template generation."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    generation_matches = generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(
        generation
    )
    return (bool(hash_) and labels.get(REVISION_LABEL) == hash_) or generation_matches


def _rolling(ds: dict) -> dict | None:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate")


def surge_count(ds: dict, number: int) -> int:
    """util.SurgeCount: maxSurge of `number` nodes, rounded up (0 when not set)."""
    rolling = _rolling(ds)
    if rolling is None or rolling.get("maxSurge") is None:
        return 0
    return scaled_value(rolling["maxSurge"], number, True)


def unavailable_count(ds: dict, number: int) -> int:
    """util.UnavailableCount: maxUnavailable of `number` nodes, rounded up."""
    rolling = _rolling(ds)
    if rolling is None:
        return 0
    return scaled_value(rolling.get("maxUnavailable"), number, True)


def target_node(pod: dict) -> str | None:
    """util.GetTargetNodeName: spec.nodeName, or the node of the Pod's metadata.name node
    affinity while it waits for the scheduler."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                return values[0] if len(values) == 1 else None
    return None


def _add_tolerations(spec: dict) -> None:
    """AddOrUpdateDaemonPodTolerations: tolerate the node-condition taints."""
    wanted = list(_DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(_HOST_NETWORK_TOLERATION)
    tolerations = spec.setdefault("tolerations", [])
    for key, effect in wanted:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})


def daemon_pod_template(ds: dict, generation: int | None, hash_: str) -> dict:
    """util.CreatePodTemplate: the template plus tolerations and the revision labels."""
    template = deep_copy(((ds.get("spec") or {}).get("template")) or {})
    _add_tolerations(template.setdefault("spec", {}))
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        labels[REVISION_LABEL] = hash_
    return template


def _pin_to_node(template: dict, node: str) -> dict:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes one term
    selecting the node by name (other affinity is kept)."""
    template = deep_copy(template)
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    affinity = template["spec"].setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    required["nodeSelectorTerms"] = [term]
    return template


def node_should_run(ds: dict, name: str, labels: Mapping[str, str]) -> bool:
    """NodeShouldRunDaemonPod without taints: the template's nodeName, nodeSelector and
    required node affinity admit the node (shouldRun and shouldContinueRunning agree)."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    return node_fits(spec, name, labels)


def _by_creation_and_phase(pod: dict) -> tuple:
    """podByCreationTimestampAndPhase: scheduled Pods first, then oldest, then by name."""
    meta = pod["metadata"]
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    return (0 if scheduled else 1, parse_timestamp(meta.get("creationTimestamp")) or 0.0,
            meta["name"])  # fmt: skip


def nodes_to_daemon_pods(pods: Iterable[dict]) -> dict[str, list[dict]]:
    """getNodesToDaemonPods: the set's Pods by target node (terminating ones included, but
    not those both finished and deleted)."""
    result: dict[str, list[dict]] = {}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and pod["metadata"].get("deletionTimestamp"):
            continue
        node = target_node(pod)
        if node is not None:
            result.setdefault(node, []).append(pod)
    return result


# ----------------------------------------------------------------------------- decisions


def _min_ready(ds: dict) -> int:
    return int((ds.get("spec") or {}).get("minReadySeconds") or 0)


def _pods_should_be_on_node(
    ds: dict, node: Node, node_pods: dict[str, list[dict]], hash_: str, now: float
) -> tuple[list[str], list[str], list[str]]:
    """podsShouldBeOnNode: (nodes needing a Pod, Pods to delete, failed Pods found)."""
    name, labels = node
    should_run = node_should_run(ds, name, labels)
    pods = node_pods.get(name)
    if should_run and pods is None:
        return [name], [], []
    if not should_run:
        live = [
            p["metadata"]["name"] for p in pods or [] if not p["metadata"].get("deletionTimestamp")
        ]
        return [], live, []
    deletes: list[str] = []
    failed: list[str] = []
    running: list[dict] = []
    for pod in pods or []:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            failed.append(pod["metadata"]["name"])
            deletes.append(pod["metadata"]["name"])
        elif phase == "Succeeded":
            deletes.append(pod["metadata"]["name"])
        else:
            running.append(pod)
    running.sort(key=_by_creation_and_phase)
    if surge_count(ds, 1) <= 0:
        deletes.extend(p["metadata"]["name"] for p in running[1:])
        return [], deletes, failed
    if len(running) <= 1:
        return ([name] if not running else []), deletes, failed
    oldest_new = oldest_old = None
    for pod in running:
        is_new = ((pod["metadata"].get("labels") or {}).get(REVISION_LABEL)) == hash_
        if is_new and oldest_new is None:
            oldest_new = pod
        elif not is_new and oldest_old is None:
            oldest_old = pod
        else:
            deletes.append(pod["metadata"]["name"])
    if oldest_new is not None and oldest_old is not None:
        if not is_pod_ready(oldest_old) or is_pod_available(oldest_new, _min_ready(ds), now):
            deletes.append(oldest_old["metadata"]["name"])
    return [], deletes, failed


def plan_manage(
    ds: dict, nodes: list[Node], node_pods: dict[str, list[dict]], hash_: str, now: float
) -> tuple[list[str], list[str], list[str]]:
    """manage: (nodes needing a daemon Pod, Pods to delete, failed Pods among them); Pods
    bound by affinity to nodes that do not exist are deleted too."""
    creates: list[str] = []
    deletes: list[str] = []
    failed: list[str] = []
    for node in nodes:
        node_creates, node_deletes, node_failed = _pods_should_be_on_node(
            ds, node, node_pods, hash_, now
        )
        creates += node_creates
        deletes += node_deletes
        failed += node_failed
    existing = {name for name, _labels in nodes}
    for node_name, pods in sorted(node_pods.items()):
        if node_name not in existing:
            deletes += [
                p["metadata"]["name"] for p in pods if not (p.get("spec") or {}).get("nodeName")
            ]
    return creates, deletes, failed


def _find_updated_pods_on_node(
    pods: list[dict], hash_: str, generation: int | None
) -> tuple[dict | None, dict | None, bool]:
    """findUpdatedPodsOnNode: (new Pod, old Pod, ok) among the live Pods; not ok when there
    are several of either (the manage loop prunes them first)."""
    new = old = None
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _desired_counts(
    ds: dict, nodes: list[Node], node_pods: dict[str, list[dict]]
) -> tuple[int, int, int, dict[str, list[dict]]]:
    """updatedDesiredNodeCounts: (maxSurge, maxUnavailable, desired), and the node map with
    an empty entry for every node that should run a Pod but has none."""
    pods_by_node = dict(node_pods)
    desired = 0
    for name, labels in nodes:
        if node_should_run(ds, name, labels):
            desired += 1
            pods_by_node.setdefault(name, [])
    unavailable = unavailable_count(ds, desired)
    surge = surge_count(ds, desired)
    if desired > 0 and unavailable == 0 and surge == 0:
        unavailable = 1
    return surge, unavailable, desired, pods_by_node


def plan_rolling_update(
    ds: dict, nodes: list[Node], node_pods: dict[str, list[dict]], hash_: str, now: float
) -> tuple[list[str], list[str]]:
    """rollingUpdate: (old Pods to delete, nodes to create a new Pod on)."""
    surge, max_unavailable, desired, pods_by_node = _desired_counts(ds, nodes, node_pods)
    generation = template_generation(ds)
    min_ready = _min_ready(ds)
    labels_of = dict(nodes)
    if surge == 0:
        unavailable = 0
        replacements: list[str] = []
        candidates: list[str] = []
        for node_name in sorted(pods_by_node):
            new, old, ok = _find_updated_pods_on_node(pods_by_node[node_name], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # excess Pods, nothing yet, or mid-replacement
            elif new is not None:
                unavailable += not is_pod_available(new, min_ready, now)
            elif not is_pod_available(old, min_ready, now):
                replacements.append(old["metadata"]["name"])
                unavailable += 1
            elif unavailable < max_unavailable:
                candidates.append(old["metadata"]["name"])
        room = min(max(0, max_unavailable - unavailable), len(candidates))
        return replacements + candidates[:room], []
    deletes: list[str] = []
    sunset: list[str] = []
    allowed_nodes: list[str] = []
    candidate_nodes: list[str] = []
    surging = available = 0
    for node_name in sorted(pods_by_node):
        new, old, ok = _find_updated_pods_on_node(pods_by_node[node_name], hash_, generation)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        if counted is not None and is_pod_available(counted, min_ready, now):
            available += 1
        if old is None:
            continue
        should_run = node_name in labels_of and node_should_run(ds, node_name, labels_of[node_name])
        if new is None:
            if not is_pod_available(old, min_ready, now):
                if not should_run:
                    deletes.append(old["metadata"]["name"])
                    continue
                allowed_nodes.append(node_name)
            elif not should_run:
                sunset.append(old["metadata"]["name"])
            elif surging < surge:
                candidate_nodes.append(node_name)
        elif not is_pod_available(new, min_ready, now):
            surging += 1
        else:
            deletes.append(old["metadata"]["name"])
    deletable = available - desired
    if deletable > 0:
        deletes += sunset[: min(deletable, len(sunset))]
    room = min(max(0, surge - surging), len(candidate_nodes))
    return deletes, allowed_nodes + candidate_nodes[:room]


def daemonset_status(
    ds: dict, nodes: list[Node], node_pods: dict[str, list[dict]], hash_: str, now: float
) -> dict:
    """updateDaemonSetStatus + storeDaemonSetStatus: the counts over nodes (the oldest Pod on
    each node is the one judged), as the API serializes them (the first four always
    present, the rest omitempty); collisionCount and conditions kept."""
    desired = current = misscheduled = ready = updated = available = 0
    generation = template_generation(ds)
    min_ready = _min_ready(ds)
    for name, labels in nodes:
        pods = node_pods.get(name) or []
        if not node_should_run(ds, name, labels):
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = sorted(pods, key=_by_creation_and_phase)[0]
        if is_pod_ready(pod):
            ready += 1
            available += is_pod_available(pod, min_ready, now)
        updated += is_pod_updated(pod, hash_, generation)
    old = ds.get("status") or {}
    status: dict = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
    }
    optional = (
        ("observedGeneration", int(ds["metadata"].get("generation") or 0)),
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available),
        ("numberUnavailable", desired - available),
    )
    for key, value in optional:
        if value:
            status[key] = value
    for key in ("collisionCount", "conditions"):
        if old.get(key) is not None:
            status[key] = deep_copy(old[key])
    return status


# ----------------------------------------------------------------------------- controller


class DaemonSetController(PodOwnerController):
    """syncDaemonSet for the DaemonSets marked dirty, over the simulation's nodes."""

    kind, resource, timer = "DaemonSet", "daemonsets", "daemonset"
    component = "daemonset-controller"

    def __init__(
        self,
        *args: Any,
        nodes: Iterable[str],
        extra_node_labels: Mapping[str, Mapping[str, str]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(*args)
        self._nodes: list[Node] = [(n, node_labels(n, extra_node_labels)) for n in nodes]
        self._rng = rng or random.Random()

    def sync(self, namespace: str, name: str) -> None:
        ds = self._store.get_shared("daemonsets", namespace, name)
        if ds is None:
            self._collect_garbage(namespace, name)
            return
        selector = (ds.get("spec") or {}).get("selector") or {}
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            self._event(ds, WARNING, "SelectingAll",
                        "This daemon set is selecting all pods. A non-empty selector is "
                        "required.")  # fmt: skip
            return
        if ds["metadata"].get("deletionTimestamp"):
            return
        revisions = self._owned("controllerrevisions", namespace, name, ds)
        current, old = self._construct_history(ds, revisions)
        if current is None:  # a hash collision: collisionCount was raised, try again
            self._schedule(("daemonset", namespace, name), self._clock() + self._retry_delay)
            return
        hash_ = current["metadata"]["labels"][REVISION_LABEL]
        now = self._clock()
        node_pods = nodes_to_daemon_pods(self._owned("pods", namespace, name, ds))
        creates, deletes, failed = plan_manage(ds, self._nodes, node_pods, hash_, now)
        for pod_name in failed:
            node = target_node(self._store.get_shared("pods", namespace, pod_name) or {})
            self._event(ds, WARNING, "FailedDaemonPod",
                        f"Found failed daemon pod {namespace}/{pod_name} on node {node}, will "
                        "try to kill it")  # fmt: skip
        error = self._sync_nodes(ds, deletes, creates, hash_)
        if not (creates or deletes or error) and _rolling(ds) is not None:
            deletes, creates = plan_rolling_update(ds, self._nodes, node_pods, hash_, now)
            error = self._sync_nodes(ds, deletes, creates, hash_)
        pods = self._owned("pods", namespace, name, ds)
        self._cleanup_history(ds, old, pods)
        status = daemonset_status(ds, self._nodes, nodes_to_daemon_pods(pods), hash_, now)
        if status != (ds.get("status") or {}):
            self._store.update_status("daemonsets", {**ds, "status": status})
        self._schedule_wakeup(ds, pods, error is not None, now)

    # -- history (constructHistory, snapshot, dedupCurHistories, cleanupHistory)

    def _construct_history(self, ds: dict, revisions: list[dict]) -> tuple[dict | None, list]:
        data = patch_bytes(template_patch(ds))
        matching = [r for r in revisions if patch_bytes(r.get("data") or {}) == data]
        old = [r for r in revisions if r not in matching]
        number = max((revision_number(r) for r in old), default=0) + 1
        if not matching:
            return self._snapshot(ds, number), old
        keep = max(matching, key=revision_number)
        for duplicate in matching:
            if duplicate is not keep:
                self._store.delete("controllerrevisions", duplicate["metadata"].get("namespace"),
                                   duplicate["metadata"]["name"])  # fmt: skip
        if revision_number(keep) < number:
            keep = self._store.update("controllerrevisions", {**keep, "revision": number})
        return keep, old

    def _snapshot(self, ds: dict, number: int) -> dict | None:
        """A new ControllerRevision for the current template; on a name taken by another
        template, raise status.collisionCount and give up for now (None)."""
        collisions = (ds.get("status") or {}).get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        hash_ = pod_template_hash(template, collisions)
        data = template_patch(ds)
        revision = new_revision(ds, data, number, REVISION_LABEL, hash_, {})
        revision["metadata"]["name"] = f"{ds['metadata']['name']}-{hash_}"
        try:
            return self._store.create("controllerrevisions", revision)
        except Conflict:
            meta = ds["metadata"]
            existing = self._store.get_shared("controllerrevisions", meta.get("namespace"),
                                              revision["metadata"]["name"])  # fmt: skip
            if existing is not None and patch_bytes(existing.get("data") or {}) == patch_bytes(
                data
            ):
                return existing
            status = deep_copy(ds.get("status") or {})
            status["collisionCount"] = int(collisions or 0) + 1
            self._store.update_status("daemonsets", {**ds, "status": status})
            return None

    def _cleanup_history(self, ds: dict, old: list[dict], pods: list[dict]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit", 10)
        excess = len(old) - int(10 if limit is None else limit)
        if excess <= 0:
            return
        live = {((p["metadata"].get("labels") or {}).get(REVISION_LABEL)) for p in pods}
        for revision in sorted(old, key=revision_number):
            if excess <= 0:
                break
            if (revision["metadata"].get("labels") or {}).get(REVISION_LABEL) in live:
                continue
            self._store.delete("controllerrevisions", revision["metadata"].get("namespace"),
                               revision["metadata"]["name"])  # fmt: skip
            excess -= 1

    # -- doing (syncNodes)

    def _sync_nodes(
        self, ds: dict, deletes: list[str], creates: list[str], hash_: str
    ) -> str | None:
        """Create a Pod on each node in `creates`, then delete `deletes`; returns the first
        creation error (later creations are skipped, as the slow start stops)."""
        namespace = ds["metadata"].get("namespace") or ""
        template = daemon_pod_template(ds, template_generation(ds), hash_)
        error = None
        for node in creates:
            error = self._create_pod(ds, namespace, _pin_to_node(template, node))
            if error:
                break
        for pod_name in deletes:
            pod = self._store.get_shared("pods", namespace, pod_name)
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                self._delete_pod(pod)
                self._event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_name}")
        return error

    def _create_pod(self, ds: dict, namespace: str, template: dict) -> str | None:
        prefix = f"{ds['metadata']['name']}-"
        guess = prefix + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(5))
        error = self._quota.check(namespace, self._store.count("pods", namespace), guess)
        if error:
            self._event(ds, WARNING, "FailedCreate", f"Error creating: {error}")
            return error
        owner = {**ds, "spec": {**(ds.get("spec") or {}), "template": template}}
        pod = self._store.create("pods", _pod_from_template(owner, prefix))
        self._event(ds, NORMAL, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return None
