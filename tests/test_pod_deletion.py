"""Which pod --delete-pods deletes next: one at a time, each after the previous replacement
is ready, highest ordinal first (StatefulSets) or node by node (DaemonSets)."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.kind_rules import group_daemonset, group_statefulset
from kubectl_restart_backend.kinds import DAEMONSET, STATEFULSET
from kubectl_restart_backend.pod_deletion import next_pod_to_delete
from tests.k8s_objects import NEW_REV, OLD_REV, daemonset, ds_pod, set_pod, statefulset

ON_DELETE = statefulset(strategy="OnDelete", updated=0, current_revision=OLD_REV)


def pods(*specs) -> list[dict]:
    """("db-0", OLD_REV, {"ready": False}) ... -> StatefulSet pods."""
    return [set_pod(name, revision=rev, **state) for name, rev, state in specs]


def victim(sts, pod_list, **kwargs):
    grouping = group_statefulset(sts, pod_list, observed=True)
    chosen = next_pod_to_delete(STATEFULSET, sts, grouping, pod_list, **kwargs)
    return chosen.name if chosen else None


@pytest.mark.parametrize(
    "pod_list, expected",
    [
        (pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {}), ("db-2", OLD_REV, {})), "db-2"),
        (pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {}), ("db-2", NEW_REV, {})), "db-1"),
        (
            pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {}),
                 ("db-2", NEW_REV, {"ready": False})),
            None,
        ),
        (
            pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {}),
                 ("db-2", OLD_REV, {"deleting": True})),
            None,
        ),
        (pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {})), None),
        (pods(("db-0", NEW_REV, {}), ("db-1", NEW_REV, {}), ("db-2", NEW_REV, {})), None),
        (
            pods(("db-0", OLD_REV, {"ready": False}), ("db-1", NEW_REV, {}),
                 ("db-2", NEW_REV, {})),
            "db-0",
        ),
    ],
    ids=[
        "highest-ordinal-first", "then-the-next", "replacement-not-ready-yet",
        "previous-still-terminating", "replacement-not-created-yet", "nothing-left",
        "an-unready-old-pod-too",
    ],
)  # fmt: skip
def test_statefulset_pods_go_one_at_a_time_highest_ordinal_first(pod_list, expected):
    assert victim(ON_DELETE, pod_list) == expected


def test_a_pod_just_deleted_counts_as_terminating_until_the_watch_says_so():
    pod_list = pods(("db-0", OLD_REV, {}), ("db-1", OLD_REV, {}), ("db-2", OLD_REV, {}))
    assert victim(ON_DELETE, pod_list, deleted=frozenset({"uid-db-2"})) is None


def test_a_rolled_back_statefulset_deletes_only_its_broken_pods():
    pod_list = pods(("db-0", NEW_REV, {}), ("db-1", NEW_REV, {}),
                    ("db-2", OLD_REV, {"ready": False}))  # fmt: skip
    rolling = statefulset(updated=2, ready=2)
    assert victim(rolling, pod_list, only_unready=True) == "db-2"
    healthy = pods(("db-0", NEW_REV, {}), ("db-1", NEW_REV, {}), ("db-2", OLD_REV, {}))
    assert victim(rolling, healthy, only_unready=True) is None


def test_daemonset_pods_go_node_by_node():
    ds = daemonset(strategy="OnDelete", updated=1)
    pod_list = [
        ds_pod("agent-c", new=False, node="sim-node-3"),
        ds_pod("agent-a", node="sim-node-1"),
        ds_pod("agent-b", new=False, node="sim-node-2"),
    ]
    grouping = group_daemonset(ds, pod_list)
    chosen = next_pod_to_delete(DAEMONSET, ds, grouping, pod_list)
    assert chosen is not None
    assert (chosen.name, chosen.uid, chosen.node) == ("agent-b", "uid-agent-b", "sim-node-2")
