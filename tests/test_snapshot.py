"""The snapshot the watches keep, and the Deployment selector sent to the API server."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.kinds import STATEFULSET
from kubectl_restart_backend.watcher import Snapshot, selector_string


def obj(name, rv="1"):
    return {"metadata": {"name": name, "resourceVersion": rv}}


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"matchLabels": {"app": "shop", "tier": "api"}}, "app=shop,tier=api"),
        (
            {
                "matchLabels": {"app": "shop"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["a", "b"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "owner", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "app=shop,track in (a,b),env notin (dev),owner,!legacy",
        ),
        ({}, ""),
    ],
)
def test_selector_string_mirrors_spec_selector(selector, expected):
    assert selector_string({"spec": {"selector": selector}}) == expected


def test_events_add_update_and_delete_pods():
    snap = Snapshot(obj("dep"))
    snap.apply("pods", "ADDED", obj("p1"))
    snap.apply("pods", "MODIFIED", obj("p1", "2"))
    snap.apply("pods", "ADDED", obj("p2"))
    snap.apply("pods", "DELETED", obj("p2"))
    assert snap.pods == {"p1": obj("p1", "2")}


def test_a_deleted_deployment_leaves_none():
    snap = Snapshot(obj("dep"))
    snap.apply("deployments", "DELETED", obj("dep"))
    assert snap.workload is None


def test_a_relist_replaces_everything_known_of_that_resource():
    snap = Snapshot(obj("dep"), replicasets={"old": obj("old")})
    snap.replace("replicasets", [obj("new")])
    assert list(snap.replicasets) == ["new"]
    snap.replace("deployments", [])
    assert snap.workload is None


def test_a_statefulset_snapshot_follows_its_own_resource():
    snap = Snapshot(obj("db"), kind=STATEFULSET)
    snap.apply("statefulsets", "MODIFIED", obj("db", "2"))
    assert snap.workload == obj("db", "2")
    snap.apply("statefulsets", "DELETED", obj("db"))
    assert snap.workload is None
