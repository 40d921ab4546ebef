"""The rollout verdict as a table: Deployment + ReplicaSets + Pods in, phase/reason/counts out."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from kubectl_restart_backend.kind_rules import find_new_replicaset, owned_replicasets
from kubectl_restart_backend.rollout import Phase, compute_rollout_state
from kubectl_restart_backend.trouble import (
    DEFAULT_TOLERANCE,
    NO_MEMORY,
    Memory,
    Tolerance,
    observe_pod,
)
from tests.k8s_objects import (
    NEW_RS,
    NOW,
    OLD_RS,
    condition,
    container,
    deployment,
    event,
    old_replicaset,
    pod,
    ready_pods,
    replicaset,
    template,
)

OURS = 2  # the generation our PATCH returned
CURRENT_RS = [old_replicaset(), replicaset()]
CRASH = ("CrashLoopBackOff", "back-off 40s restarting failed container=api pod=backend-new-a1")
QUOTA = (
    'pods "backend-new-x" is forbidden: exceeded quota: compute, requested: pods=1, '
    "used: pods=3, limited: pods=3"
)
NO_CPU = "0/3 nodes are available: 3 Insufficient cpu."


def with_sidecar(pod_obj: dict, **state: Any) -> dict:
    """``pod_obj`` with a native sidecar (init container, restartPolicy Always) in ``state``."""
    sidecar = container("proxy", last_terminated=("Error", 1), **state)
    pod_obj["spec"]["initContainers"] = [
        {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"}
    ]
    pod_obj["status"]["initContainerStatuses"] = [sidecar]
    return pod_obj


def case(
    id: str,
    dep: Optional[dict],
    pods: list,
    *,
    rss: Optional[list] = None,
    generation: int = OURS,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    memory: Memory = NO_MEMORY,
    events: tuple = (),
    tpl: Optional[dict] = None,
    **expect: Any,
) -> Any:
    """One row: the snapshot, then the expected fields of the RolloutState (only those given)."""
    inputs = dict(
        dep=dep,
        rss=CURRENT_RS if rss is None else rss,
        pods=pods,
        generation=generation,
        tolerance=tolerance,
        memory=memory,
        events=events,
        tpl=tpl,
    )
    return pytest.param(inputs, expect, id=id)


def two_new_ready_and(extra: dict) -> list:
    return [*ready_pods(2), extra]


def seen(*pods: dict) -> Memory:
    """The memory after the watch delivered these pod updates, in order."""
    memory = Memory()
    for update in pods:
        memory = observe_pod(memory, update)
    return memory


def with_managers(dep: dict, *entries: tuple[str, str, dict]) -> dict:
    """``dep`` with managedFields: (manager, time, fieldsV1) each."""
    dep["metadata"]["managedFields"] = [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        for manager, time, fields in entries
    ]
    return dep


NOT_FOUND = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/shop/api:nope":'
    ' failed to resolve reference "docker.io/shop/api:nope": docker.io/shop/api:nope: not found'
)
BACKOFF_NOT_FOUND = f'Back-off pulling image "shop/api:nope": ErrImagePull: {NOT_FOUND}'
UNAVAILABLE = (
    'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/shop/api:1.4": '
    "unexpected status from HEAD request to "
    "https://registry-1.docker.io/v2/shop/api/manifests/1.4: 503 Service Unavailable"
)
UNAVAILABLE_FOR_UNAUTHORIZED_REPO = UNAVAILABLE.replace("shop/api", "unauthorized/denied")
BACKOFF_503 = f'Back-off pulling image "shop/api:1.4": ErrImagePull: {UNAVAILABLE}'
PULL_FAILED_THRICE = [
    ("ErrImagePull", UNAVAILABLE),
    ("ImagePullBackOff", BACKOFF_503),
    ("ErrImagePull", UNAVAILABLE),
    ("ImagePullBackOff", BACKOFF_503),
    ("ErrImagePull", UNAVAILABLE),
]
MISSING = 'secret "shop-db" not found'
MISSING_KEY = "backend-new-p0/api/MissingConfig"
QUOTA_KEY = f"rs/{NEW_RS}/QuotaExceeded"
RESTARTED_FIELDS = {
    "f:spec": {
        "f:template": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/restartedAt": {}}}}
    }
}
IMAGE_FIELDS = {
    "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"api"}': {"f:image": {}}}}}}
}


TABLE = [
    # --- observation: a status that looks ready before our generation is observed is not ours
    case(
        "stale-status-before-observed-generation-is-not-complete",
        deployment(generation=2, observed=1, updated=3),
        ready_pods(3, OLD_RS),
        rss=[old_replicaset(3), replicaset(replicas=0)],
        phase=Phase.WAITING,
        reason="WaitingForObservation",
        failure_reason=None,
    ),
    case(
        "stale-progress-deadline-before-observation-is-not-a-failure",
        deployment(
            generation=2,
            observed=1,
            conditions=[condition("Progressing", "False", "ProgressDeadlineExceeded")],
        ),
        ready_pods(3, OLD_RS),
        phase=Phase.WAITING,
        reason="WaitingForObservation",
    ),
    case(
        "old-rs-crash-loop-before-observation-is-not-a-failure",
        deployment(generation=2, observed=1),
        [pod("backend-old-1", rs=OLD_RS, waiting=CRASH, restarts=9)],
        rss=[old_replicaset(1)],
        phase=Phase.WAITING,
    ),
    # --- completion
    case(
        "complete-when-all-new-pods-ready-and-no-old-left",
        deployment(updated=3),
        ready_pods(3),
        phase=Phase.COMPLETE,
        reason="Complete",
        ready_replicas=3,
        replicas=3,
        updated_replicas=3,
        failure_reason=None,
        new_replicaset=NEW_RS,
    ),
    case(
        "old-pods-pending-termination-are-not-complete",
        deployment(updated=3, status_replicas=4),
        [*ready_pods(3), pod("backend-old-p0", rs=OLD_RS)],
        rss=[old_replicaset(1), replicaset()],
        phase=Phase.PROGRESSING,
        reason="OldReplicasPendingTermination",
        message="1 old replicas are pending termination",
        ready_replicas=3,
    ),
    case(
        "terminating-old-pod-does-not-hold-completion-as-in-kubectl",
        deployment(updated=3),
        [*ready_pods(3), pod("backend-old-p0", rs=OLD_RS, deleting=True)],
        phase=Phase.COMPLETE,
        reason="Complete",
    ),
    case(
        "running-old-pod-still-listed-is-not-complete",
        deployment(updated=3),
        [*ready_pods(3), pod("backend-old-p0", rs=OLD_RS)],
        phase=Phase.PROGRESSING,
        reason="OldReplicasPendingTermination",
    ),
    case(
        "updated-replicas-below-spec-are-progressing",
        deployment(updated=1, status_replicas=4, available=1),
        [pod("backend-new-p0"), *ready_pods(3, OLD_RS)],
        rss=[old_replicaset(3), replicaset(replicas=1)],
        phase=Phase.PROGRESSING,
        reason="UpdatingReplicas",
        message="1 of 3 new replicas have been updated",
        ready_replicas=1,
    ),
    case(
        "updated-but-not-available-is-progressing",
        deployment(updated=3, available=2),
        ready_pods(3),
        phase=Phase.PROGRESSING,
        reason="WaitingForAvailableReplicas",
        message="2 of 3 updated replicas are available",
    ),
    case(
        "status-ahead-of-pods-waits-for-ready-new-pods",
        deployment(updated=3),
        [*ready_pods(2), pod("backend-new-p2", ready=False)],
        phase=Phase.PROGRESSING,
        reason="WaitingForReadyPods",
        message="2 of 3 new pods are ready",
        ready_replicas=2,
    ),
    case(
        "zero-replicas-is-complete-with-nothing-to-restart",
        deployment(replicas=0, updated=0),
        [],
        rss=[old_replicaset(), replicaset(replicas=0)],
        phase=Phase.COMPLETE,
        ready_replicas=0,
        replicas=0,
        message='deployment "backend" has 0 replicas: no pods to restart',
    ),
    case(
        "absent-spec-replicas-defaults-to-one",
        deployment(replicas=None, updated=1),
        ready_pods(1),
        phase=Phase.COMPLETE,
        replicas=1,
        ready_replicas=1,
    ),
    case(
        "pods-matched-by-pod-template-hash-when-owner-references-missing",
        deployment(updated=2, replicas=2),
        [
            pod("backend-new-x", rs=None, pod_hash="new22"),
            pod("backend-new-y", rs=None, pod_hash="new22"),
        ],
        phase=Phase.COMPLETE,
        ready_replicas=2,
    ),
    case(
        "pods-of-another-deployment-are-ignored",
        deployment(updated=1, replicas=1),
        [*ready_pods(1), pod("frontend-1", rs="frontend-abc", waiting=CRASH, restarts=5)],
        phase=Phase.COMPLETE,
    ),
    # --- HPA or someone scaling: a later generation with our template is followed
    case(
        "hpa-changed-replicas-are-followed",
        deployment(replicas=5, generation=3, observed=3, updated=5, available=3),
        ready_pods(3),
        tpl=template(),
        phase=Phase.PROGRESSING,
        replicas=5,
        ready_replicas=3,
    ),
    case(
        "hpa-changed-replicas-complete-at-the-new-count",
        deployment(replicas=5, generation=3, observed=3, updated=5),
        ready_pods(5),
        tpl=template(),
        phase=Phase.COMPLETE,
        replicas=5,
        ready_replicas=5,
    ),
    case(
        "hpa-change-not-yet-observed-waits",
        deployment(replicas=5, generation=3, observed=2, updated=3),
        ready_pods(3),
        tpl=template(),
        phase=Phase.WAITING,
        reason="WaitingForObservation",
    ),
    # --- the Deployment went away or changed hands
    case(
        "deleted-deployment-fails",
        None,
        [],
        phase=Phase.FAILED,
        reason="Deleted",
        failure_reason="deployment was deleted during the rollout",
    ),
    case(
        "deployment-being-deleted-fails",
        deployment(deleting=True),
        ready_pods(3),
        phase=Phase.FAILED,
        reason="Deleted",
    ),
    case(
        "superseded-by-someone-elses-template-change-is-not-a-failure",
        deployment(generation=3, observed=3, pod_template=template(image="shop/api:2.0")),
        ready_pods(3),
        tpl=template(),
        phase=Phase.SUPERSEDED,
        reason="Superseded",
        message="superseded by a newer change: image 1.4 -> 2.0",
        failure_reason=None,
    ),
    case(
        "superseded-names-the-field-manager-that-changed-the-image",
        with_managers(
            deployment(generation=3, observed=3, pod_template=template(image="shop/api:2.0")),
            ("kubectl-restart-backend", "2026-11-03T11:58:00Z", RESTARTED_FIELDS),
            ("kubectl-set", "2026-11-03T11:59:00Z", IMAGE_FIELDS),
            ("helm", "2026-10-01T08:00:00Z", {"f:spec": {"f:replicas": {}}}),
        ),
        ready_pods(3),
        tpl=template(),
        phase=Phase.SUPERSEDED,
        message="superseded by a newer change: image 1.4 -> 2.0 (manager: kubectl-set)",
    ),
    case(
        "paused-while-watching-is-superseded-not-failed",
        with_managers(
            deployment(generation=3, observed=3, updated=1, paused=True),
            ("kubectl-rollout", "2026-11-03T11:59:00Z", {"f:spec": {"f:paused": {}}}),
        ),
        ready_pods(1),
        tpl=template(),
        phase=Phase.SUPERSEDED,
        reason="Paused",
        message="paused during the rollout (manager: kubectl-rollout)",
        failure_reason=None,
    ),
    # --- early failures: pods of the NEW ReplicaSet
    case(
        "crash-loop-fails-early",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-x2x", waiting=CRASH, restarts=3, last_terminated=("Error", 1))
        ),
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
        failure_reason="pod backend-new-x2x (container api) is in CrashLoopBackOff: exit code 1, "
        "3 restarts (2 tolerated)",
        ready_replicas=2,
    ),
    # --- crashes: the kubelet restarts at once, then after 10s, 20s, ...; 2 restarts tolerated
    case(
        "second-exit-after-one-restart-is-tolerated",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-x2x", waiting=CRASH, restarts=1, last_terminated=("Error", 1))
        ),
        phase=Phase.PROGRESSING,
        failure_reason=None,
    ),
    case(
        "third-exit-after-two-restarts-fails",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-x2x", waiting=CRASH, restarts=2, last_terminated=("Error", 1))
        ),
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
        failure_reason="pod backend-new-x2x (container api) is in CrashLoopBackOff: exit code 1, "
        "2 restarts (2 tolerated)",
    ),
    case(
        "more-restarts-tolerated-by-the-user",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-x2x", waiting=CRASH, restarts=3, last_terminated=("Error", 1))
        ),
        tolerance=Tolerance(restarts=5),
        phase=Phase.PROGRESSING,
    ),
    case(
        "fail-fast-fails-at-the-first-exit",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", terminated=("Error", 1), restarts=0)),
        tolerance=Tolerance().fail_fast(),
        phase=Phase.FAILED,
        reason="Error",
        failure_reason="pod backend-new-p2 (container api) exited: exit code 1, 0 restarts "
        "(0 tolerated)",
    ),
    case(
        "command-not-found-fails-at-the-first-exit",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod(
                "backend-new-p2",
                waiting=CRASH,
                restarts=0,
                last_terminated=("StartError", 128),
                last_message='exec: "app": executable file not found in $PATH: unknown',
            )
        ),
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
        failure_reason="pod backend-new-p2 (container api) is in CrashLoopBackOff: "
        'exec: "app": executable file not found in $PATH: unknown',
    ),
    case(
        "oom-killed-crash-loop-says-oomkilled",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-x2x", waiting=CRASH, restarts=5, last_terminated=("OOMKilled", 137))
        ),
        phase=Phase.FAILED,
        failure_reason="pod backend-new-x2x (container api) is in CrashLoopBackOff: "
        "OOMKilled (exit code 137), 5 restarts (2 tolerated)",
    ),
    # --- images: the registry's answer decides
    case(
        "image-not-found-fails-at-once",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ImagePullBackOff", BACKOFF_NOT_FOUND))],
        phase=Phase.FAILED,
        reason="ImagePullBackOff",
        failure_reason=f"pod backend-new-p0 (container api) is in ImagePullBackOff: "
        f"{BACKOFF_NOT_FOUND}",
    ),
    case(
        "image-pull-backoff-of-an-older-kubelet-without-memory-waits-for-more-pulls",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ImagePullBackOff", 'Back-off pulling image "api:1"'))],
        phase=Phase.PROGRESSING,
    ),
    case(
        "image-pull-backoff-of-an-older-kubelet-judged-by-the-remembered-error",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ImagePullBackOff", 'Back-off pulling image "api:1"'))],
        memory=seen(pod("backend-new-p0", waiting=("ErrImagePull", NOT_FOUND))),
        phase=Phase.FAILED,
        reason="ImagePullBackOff",
    ),
    case(
        "registry-503-on-the-first-pull-is-tolerated",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ImagePullBackOff", BACKOFF_503))],
        memory=seen(pod("backend-new-p0", waiting=("ErrImagePull", UNAVAILABLE))),
        phase=Phase.PROGRESSING,
        failure_reason=None,
    ),
    case(
        "registry-503-on-the-third-pull-fails",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ErrImagePull", UNAVAILABLE))],
        memory=seen(*[pod("backend-new-p0", waiting=w) for w in PULL_FAILED_THRICE]),
        phase=Phase.FAILED,
        reason="ErrImagePull",
        failure_reason=f"pod backend-new-p0 (container api) is in ErrImagePull: {UNAVAILABLE} "
        "(3 failed pulls, 2 tolerated)",
    ),
    case(
        "repository-named-like-an-error-does-not-decide",
        deployment(updated=1, status_replicas=4, available=0),
        [pod("backend-new-p0", waiting=("ErrImagePull", UNAVAILABLE_FOR_UNAUTHORIZED_REPO))],
        phase=Phase.PROGRESSING,
    ),
    case(
        "err-image-pull-fails-early",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("ErrImagePull", "manifest unknown"))],
        phase=Phase.FAILED,
        reason="ErrImagePull",
    ),
    case(
        "invalid-image-name-fails-early",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("InvalidImageName", 'couldn\'t parse image "Shop/API"'))],
        phase=Phase.FAILED,
        reason="InvalidImageName",
    ),
    case(
        "missing-secret-is-tolerated-at-first",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("CreateContainerConfigError", MISSING))],
        phase=Phase.PROGRESSING,
        troubles=(MISSING_KEY,),
    ),
    case(
        "missing-secret-within-the-grace-is-tolerated",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("CreateContainerConfigError", MISSING))],
        memory=Memory(since={MISSING_KEY: NOW.timestamp() - 29}),
        phase=Phase.PROGRESSING,
    ),
    case(
        "missing-secret-past-the-grace-fails",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("CreateContainerConfigError", MISSING))],
        memory=Memory(since={MISSING_KEY: NOW.timestamp() - 31}),
        phase=Phase.FAILED,
        reason="CreateContainerConfigError",
        failure_reason="pod backend-new-p0 (container api) is in CreateContainerConfigError: "
        'secret "shop-db" not found (for 31s, 30s tolerated)',
    ),
    case(
        "run-as-non-root-refusal-fails-at-once",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                waiting=(
                    "CreateContainerConfigError",
                    "container has runAsNonRoot and image will run as root (pod: x)",
                ),
            )
        ],
        phase=Phase.FAILED,
        reason="CreateContainerConfigError",
    ),
    case(
        "secret-cache-still-syncing-is-not-a-failure",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                waiting=("CreateContainerConfigError", "failed to sync secret cache: timed out"),
            )
        ],
        phase=Phase.PROGRESSING,
        failure_reason=None,
    ),
    case(
        "create-container-error-fails-early",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("CreateContainerError", "no command specified"))],
        phase=Phase.FAILED,
        reason="CreateContainerError",
    ),
    case(
        "run-container-error-for-a-missing-command-fails-early",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                waiting=("RunContainerError", 'exec: "app": executable file not found in $PATH'),
            )
        ],
        phase=Phase.FAILED,
        reason="RunContainerError",
    ),
    case(
        "other-run-container-error-counts-as-a-restart",
        deployment(updated=1, available=0),
        [pod("backend-new-p0", waiting=("RunContainerError", "OCI runtime start failed: busy"))],
        phase=Phase.PROGRESSING,
    ),
    case(
        "failed-pod-phase-fails-early",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                phase="Failed",
                ready=False,
                terminated=("Error", 1),
                reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline",
            )
        ],
        phase=Phase.FAILED,
        reason="PodFailed",
        failure_reason="pod backend-new-p0 failed: DeadlineExceeded: "
        "Pod was active on the node longer than the specified deadline",
    ),
    case(
        "pod-refused-by-its-node-is-replaced-not-a-failure",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                phase="Failed",
                ready=False,
                terminated=("Error", 1),
                reason="UnexpectedAdmissionError",
                message="Allocate failed due to no healthy devices",
            )
        ],
        phase=Phase.PROGRESSING,
    ),
    case(
        "evicted-pod-is-replaced-not-a-failure",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                phase="Failed",
                ready=False,
                reason="Evicted",
                message="low memory",
            )
        ],
        phase=Phase.PROGRESSING,
    ),
    case(
        "init-container-crash-fails-early",
        deployment(updated=1, available=0),
        [
            pod(
                "backend-new-p0",
                init=[
                    container(
                        "migrate",
                        waiting=CRASH,
                        restarts=4,
                        last_terminated=("Error", 2),
                    )
                ],
            )
        ],
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
        failure_reason="pod backend-new-p0 (init container migrate) is in CrashLoopBackOff: "
        "exit code 2, 4 restarts (2 tolerated)",
    ),
    case(
        "crash-looping-sidecar-after-initialization-fails-early",
        deployment(updated=1, available=0),
        [with_sidecar(pod("backend-new-p0", ready=False), waiting=CRASH, restarts=3)],
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
        failure_reason="pod backend-new-p0 (container proxy) is in CrashLoopBackOff: "
        "exit code 1, 3 restarts (2 tolerated)",
    ),
    case(
        "crashed-once-and-running-again-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", restarts=1, last_terminated=("Error", 1))),
        phase=Phase.PROGRESSING,
        failure_reason=None,
        ready_replicas=3,
    ),
    case(
        "crashed-once-restarting-not-yet-ready-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(
            pod("backend-new-p2", ready=False, restarts=1, last_terminated=("Error", 1))
        ),
        phase=Phase.PROGRESSING,
        ready_replicas=2,
    ),
    case(
        "container-terminated-before-its-restart-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", terminated=("Error", 1), restarts=0)),
        phase=Phase.PROGRESSING,
    ),
    case(
        "failing-readiness-probe-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", ready=False)),
        phase=Phase.PROGRESSING,
        reason="WaitingForAvailableReplicas",
    ),
    case(
        "container-creating-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", waiting=("ContainerCreating", ""))),
        phase=Phase.PROGRESSING,
    ),
    case(
        "unschedulable-under-the-grace-is-not-a-failure",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", unschedulable=(10, NO_CPU))),
        phase=Phase.PROGRESSING,
        failure_reason=None,
    ),
    case(
        "unschedulable-over-the-grace-fails",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", unschedulable=(45, NO_CPU))),
        phase=Phase.FAILED,
        reason="Unschedulable",
        failure_reason=f"pods unschedulable for 45s: {NO_CPU}",
    ),
    case(
        "unschedulable-grace-is-configurable",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", unschedulable=(45, NO_CPU))),
        tolerance=Tolerance(unschedulable_grace=60),
        phase=Phase.PROGRESSING,
    ),
    case(
        "unschedulable-without-message-quotes-the-scheduling-event",
        deployment(updated=3, available=2),
        two_new_ready_and(pod("backend-new-p2", unschedulable=(45, ""))),
        events=(event("Pod", "backend-new-p2", "FailedScheduling", NO_CPU),),
        phase=Phase.FAILED,
        failure_reason=f"pods unschedulable for 45s: {NO_CPU}",
    ),
    case(
        "terminating-new-pod-in-crash-loop-is-not-a-failure",
        deployment(updated=3),
        [*ready_pods(3), pod("backend-new-gone", waiting=CRASH, restarts=4, deleting=True)],
        phase=Phase.COMPLETE,
    ),
    case(
        "old-rs-crash-looping-pod-is-ignored",
        deployment(updated=3, status_replicas=4),
        [*ready_pods(3), pod("backend-old-p0", rs=OLD_RS, waiting=CRASH, restarts=7)],
        rss=[old_replicaset(1), replicaset()],
        phase=Phase.PROGRESSING,
        reason="OldReplicasPendingTermination",
        failure_reason=None,
    ),
    # --- the Deployment's own verdicts
    case(
        "progress-deadline-exceeded-fails",
        deployment(
            updated=3,
            available=2,
            conditions=[
                condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    'ReplicaSet "backend-new" has timed out progressing.',
                )
            ],
        ),
        two_new_ready_and(pod("backend-new-p2", ready=False)),
        phase=Phase.FAILED,
        reason="ProgressDeadlineExceeded",
        failure_reason="progress deadline exceeded (600s): 2 of 3 updated replicas are available",
    ),
    case(
        "crash-loop-explains-better-than-the-deadline",
        deployment(
            updated=3,
            available=2,
            conditions=[condition("Progressing", "False", "ProgressDeadlineExceeded")],
        ),
        two_new_ready_and(pod("backend-new-p2", waiting=CRASH, restarts=9)),
        phase=Phase.FAILED,
        reason="CrashLoopBackOff",
    ),
    case(
        "replica-failure-quota-is-tolerated-at-first",
        deployment(
            updated=2,
            status_replicas=5,
            available=2,
            conditions=[condition("ReplicaFailure", "True", "FailedCreate", QUOTA)],
        ),
        [*ready_pods(2), *ready_pods(3, OLD_RS)],
        rss=[old_replicaset(3), replicaset(replicas=3)],
        phase=Phase.PROGRESSING,
        troubles=(QUOTA_KEY,),
    ),
    case(
        "replica-failure-quota-fails-after-the-grace",
        deployment(
            updated=2,
            status_replicas=5,
            available=2,
            conditions=[condition("ReplicaFailure", "True", "FailedCreate", QUOTA)],
        ),
        [*ready_pods(2), *ready_pods(3, OLD_RS)],
        rss=[old_replicaset(3), replicaset(replicas=3)],
        memory=Memory(since={QUOTA_KEY: NOW.timestamp() - 40}),
        phase=Phase.FAILED,
        reason="ReplicaFailure",
        failure_reason="ReplicaSet could not create pods: exceeded quota: compute, "
        "requested: pods=1, used: pods=3, limited: pods=3 (for 40s, 30s tolerated)",
    ),
    case(
        "replica-failure-quota-while-old-pods-terminate-is-not-counted",
        deployment(
            updated=2,
            status_replicas=5,
            available=2,
            conditions=[condition("ReplicaFailure", "True", "FailedCreate", QUOTA)],
        ),
        [*ready_pods(2), *ready_pods(2, OLD_RS), pod("backend-old-t", rs=OLD_RS, deleting=True)],
        rss=[old_replicaset(3), replicaset(replicas=3)],
        memory=Memory(since={QUOTA_KEY: NOW.timestamp() - 40}),
        phase=Phase.PROGRESSING,
        troubles=(),
    ),
    case(
        "replica-failure-refused-by-pod-security-fails-at-once",
        deployment(
            updated=0,
            status_replicas=3,
            available=3,
            conditions=[
                condition(
                    "ReplicaFailure",
                    "True",
                    "FailedCreate",
                    'pods "backend-new-x" is forbidden: violates PodSecurity "restricted:latest"',
                )
            ],
        ),
        ready_pods(3, OLD_RS),
        rss=[old_replicaset(3), replicaset(replicas=1)],
        phase=Phase.FAILED,
        reason="ReplicaFailure",
    ),
    case(
        "replica-failure-on-new-rs-uses-the-failedcreate-event",
        deployment(updated=2, status_replicas=5, available=2),
        [*ready_pods(2), *ready_pods(3, OLD_RS)],
        rss=[
            old_replicaset(3),
            replicaset(
                replicas=3, conditions=[condition("ReplicaFailure", "True", "FailedCreate")]
            ),
        ],
        events=(event("ReplicaSet", NEW_RS, "FailedCreate", QUOTA, count=4),),
        memory=Memory(since={QUOTA_KEY: NOW.timestamp() - 30}),
        phase=Phase.FAILED,
        reason="ReplicaFailure",
        failure_reason="ReplicaSet could not create pods: exceeded quota: compute, "
        "requested: pods=1, used: pods=3, limited: pods=3 (for 30s, 30s tolerated)",
    ),
    case(
        "new-replicaset-not-listed-yet-waits",
        deployment(updated=0, status_replicas=3, available=3),
        ready_pods(3, OLD_RS),
        rss=[old_replicaset(3)],
        phase=Phase.WAITING,
        reason="WaitingForReplicaSet",
        new_replicaset=None,
    ),
    # An evicted (Failed) pod of the old ReplicaSet lingers until pod GC; it runs nothing and
    # the controller no longer counts it, so it does not hold a finished rollout back.
    case(
        "evicted-old-pod-left-behind-does-not-block-completion",
        deployment(),
        [
            *ready_pods(3),
            pod(
                "backend-old-e1",
                rs=OLD_RS,
                phase="Failed",
                reason="Evicted",
                message="The node was low on resource: memory.",
                ready=False,
                terminated=("Error", 137),
            ),
        ],
        phase=Phase.COMPLETE,
        reason="Complete",
    ),
    # Recreate: the controller scales the old ReplicaSet down and reports our generation
    # before it creates the new one (the Deployment's revision annotation is not raised yet);
    # the old, crashing pods about to be deleted are not the restart's pods.
    case(
        "recreate-before-the-new-replicaset-does-not-judge-old-pods-as-new",
        deployment(updated=0, status_replicas=1, available=0, revision="1"),
        [pod("backend-old-p0", rs=OLD_RS, waiting=CRASH, restarts=5)],
        rss=[old_replicaset(0)],
        phase=Phase.WAITING,
        reason="WaitingForReplicaSet",
        new_replicaset=None,
    ),
]


@pytest.mark.parametrize(("inputs", "expect"), TABLE)
def test_rollout_verdict(inputs: dict, expect: dict) -> None:
    state = compute_rollout_state(
        inputs["dep"],
        inputs["rss"],
        inputs["pods"],
        generation=inputs["generation"],
        now=NOW,
        tolerance=inputs["tolerance"],
        memory=inputs["memory"],
        events=inputs["events"],
        template=inputs["tpl"],
    )
    got = {key: getattr(state, key) for key in expect}
    assert got == expect


@pytest.mark.parametrize(
    ("phase", "ready", "failed", "in_progress"),
    [
        (Phase.WAITING, False, False, True),
        (Phase.PROGRESSING, False, False, True),
        (Phase.COMPLETE, True, False, False),
        (Phase.FAILED, False, True, False),
    ],
)
def test_spec_booleans_follow_the_phase(
    phase: Phase, ready: bool, failed: bool, in_progress: bool
) -> None:
    rows = {
        Phase.WAITING: (deployment(observed=1), ready_pods(3)),
        Phase.PROGRESSING: (deployment(available=1), ready_pods(3)),
        Phase.COMPLETE: (deployment(), ready_pods(3)),
        Phase.FAILED: (None, []),
    }
    dep, pods = rows[phase]
    state = compute_rollout_state(dep, CURRENT_RS, pods, generation=OURS, now=NOW)
    assert (state.phase, state.ready, state.failed, state.rollout_in_progress) == (
        phase,
        ready,
        failed,
        in_progress,
    )


def test_pods_list_failing_new_pods_first_then_old_pods_holding_back() -> None:
    pods = [
        pod("backend-old-p0", rs=OLD_RS),
        pod("backend-new-a", ready=True),
        pod("backend-new-b", ready=False),
        pod("backend-new-c", waiting=CRASH, restarts=3),
    ]
    state = compute_rollout_state(
        deployment(updated=3, status_replicas=4, available=1),
        [old_replicaset(1), replicaset()],
        pods,
        generation=OURS,
        now=NOW,
    )
    assert [(p.name, p.is_new, p.failing) for p in state.pods] == [
        ("backend-new-c", True, True),
        ("backend-new-b", True, False),
        ("backend-new-a", True, False),
        ("backend-old-p0", False, False),
    ]


def test_complete_state_lists_only_new_pods() -> None:
    state = compute_rollout_state(deployment(), CURRENT_RS, ready_pods(3), generation=OURS, now=NOW)
    assert [p.is_new for p in state.pods] == [True, True, True]


@pytest.mark.parametrize(
    ("rss", "expected"),
    [
        ([old_replicaset(), replicaset()], NEW_RS),
        ([replicaset(), old_replicaset()], NEW_RS),
        # no template match: the highest revision, when it is newer than the Deployment's
        ([old_replicaset(), replicaset(pod_template=template(image="x"), revision=3)], NEW_RS),
        ([old_replicaset(), replicaset(pod_template=template(image="x"), revision=2)], None),
        ([old_replicaset()], None),
        ([replicaset(owner_uid="someone-else")], None),
        ([], None),
    ],
    ids=[
        "template-match",
        "template-match-any-order",
        "highest-revision-fallback",
        "same-revision-as-deployment-with-another-template-is-not-new",
        "older-revision-than-deployment-is-not-new",
        "not-owned",
        "none",
    ],
)
def test_new_replicaset_choice(rss: list, expected: Optional[str]) -> None:
    dep = deployment()
    found = find_new_replicaset(dep, owned_replicasets(dep, rss))
    assert (found["metadata"]["name"] if found else None) == expected
