"""The simulated cluster's object store: resourceVersions, generation, history, fan-out."""

from __future__ import annotations

import pytest

from tests.cluster.selectors import SelectorError
from tests.cluster.store import Conflict, Expired, NotFound, Store, WatchEvent


def _deployment(name: str, namespace: str = "shop", labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": name}}}},
    }


@pytest.fixture
def store() -> Store:
    return Store(clock=lambda: 1_700_000_000.0)


def test_create_fills_server_side_metadata(store):
    created = store.create("deployments", _deployment("backend"))
    meta = created["metadata"]
    assert created["kind"] == "Deployment" and created["apiVersion"] == "apps/v1"
    assert meta["resourceVersion"] == "1" and meta["generation"] == 1
    assert meta["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert len(meta["uid"]) == 36


def test_create_existing_name_conflicts(store):
    store.create("deployments", _deployment("backend"))
    with pytest.raises(Conflict, match='deployments.apps "backend" already exists'):
        store.create("deployments", _deployment("backend"))


def test_same_name_in_other_namespace_is_distinct(store):
    store.create("deployments", _deployment("backend", "a"))
    store.create("deployments", _deployment("backend", "b"))
    assert [d["metadata"]["namespace"] for d in store.list("deployments")] == ["a", "b"]


def test_generate_name_appends_five_kubernetes_characters(store):
    pod = store.create("pods", {"metadata": {"generateName": "backend-7d9f-", "namespace": "shop"}})
    suffix = pod["metadata"]["name"].removeprefix("backend-7d9f-")
    assert len(suffix) == 5 and set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_cluster_scoped_objects_drop_namespace(store):
    ns = store.create("namespaces", {"metadata": {"name": "shop", "namespace": "x"}})
    assert "namespace" not in ns["metadata"]
    assert store.get("namespaces", None, "shop")["kind"] == "Namespace"


def test_returned_objects_are_copies(store):
    created = store.create("deployments", _deployment("backend"))
    created["spec"]["replicas"] = 99
    store.get("deployments", "shop", "backend")["spec"]["replicas"] = 98
    assert store.get("deployments", "shop", "backend")["spec"]["replicas"] == 1


def test_update_bumps_generation_only_on_spec_change(store):
    created = store.create("deployments", _deployment("backend"))
    created["metadata"]["labels"] = {"x": "y"}
    relabelled = store.update("deployments", created)
    assert relabelled["metadata"]["generation"] == 1
    relabelled["spec"]["replicas"] = 5
    rescaled = store.update("deployments", relabelled)
    assert rescaled["metadata"]["generation"] == 2
    assert int(rescaled["metadata"]["resourceVersion"]) > int(
        relabelled["metadata"]["resourceVersion"]
    )


def test_update_keeps_stored_status(store):
    created = store.create("deployments", _deployment("backend"))
    store.update_status("deployments", {**created, "status": {"replicas": 1}})
    created["status"] = {"replicas": 42}
    created["spec"]["replicas"] = 2
    assert store.update("deployments", created)["status"] == {"replicas": 1}


def test_update_status_changes_only_status_and_never_generation(store):
    created = store.create("deployments", _deployment("backend"))
    changed = {**created, "spec": {"replicas": 7}, "status": {"observedGeneration": 1}}
    updated = store.update_status("deployments", changed)
    assert updated["spec"]["replicas"] == 1
    assert updated["status"] == {"observedGeneration": 1}
    assert updated["metadata"]["generation"] == 1
    assert updated["metadata"]["resourceVersion"] == "2"


def test_noop_updates_do_not_bump_resource_version(store):
    created = store.create("deployments", _deployment("backend"))
    assert store.update("deployments", created)["metadata"]["resourceVersion"] == "1"
    assert store.update_status("deployments", created)["metadata"]["resourceVersion"] == "1"
    assert store.resource_version == 1


def test_update_of_missing_object_raises_not_found(store):
    with pytest.raises(NotFound):
        store.update("deployments", _deployment("ghost"))
    with pytest.raises(NotFound):
        store.update_status("deployments", _deployment("ghost"))


def test_stale_resource_version_conflicts_when_checked(store):
    created = store.create("deployments", _deployment("backend"))
    store.update("deployments", {**created, "spec": {"replicas": 3}})
    with pytest.raises(Conflict, match="the object has been modified"):
        store.update("deployments", created, check_resource_version=True)


def test_delete_returns_object_with_new_resource_version(store):
    store.create("deployments", _deployment("backend"))
    gone = store.delete("deployments", "shop", "backend")
    assert gone["metadata"]["resourceVersion"] == "2"
    assert store.get("deployments", "shop", "backend") is None
    assert store.delete("deployments", "shop", "backend") is None


@pytest.mark.parametrize(
    ("namespace", "label_selector", "field_selector", "expected"),
    [
        (None, None, None, ["a/api", "a/web", "b/web"]),
        ("a", None, None, ["a/api", "a/web"]),
        (None, "tier=front", None, ["a/web", "b/web"]),
        (None, "tier!=front", None, ["a/api"]),
        ("b", "tier=front", None, ["b/web"]),
        (None, None, "metadata.name=web", ["a/web", "b/web"]),
        (None, None, "metadata.namespace!=a", ["b/web"]),
    ],
    ids=["all", "namespace", "label", "label-not", "ns-and-label", "field-name", "field-ns-not"],
)
def test_list_filters_by_namespace_and_selectors(store, namespace, label_selector, field_selector,
                                                 expected):  # fmt: skip
    store.create("deployments", _deployment("web", "b", {"tier": "front"}))
    store.create("deployments", _deployment("web", "a", {"tier": "front"}))
    store.create("deployments", _deployment("api", "a", {"tier": "back"}))
    found = store.list("deployments", namespace, label_selector, field_selector)
    assert [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in found] == expected


def test_list_rejects_unsupported_field(store):
    with pytest.raises(SelectorError, match="field label not supported: spec.paused"):
        store.list("deployments", field_selector="spec.paused=true")


def test_subscribers_see_every_change_in_order(store):
    seen: list[WatchEvent] = []
    unsubscribe = store.subscribe(seen.append)
    created = store.create("deployments", _deployment("backend"))
    store.update("deployments", {**created, "spec": {"replicas": 2}})
    store.delete("deployments", "shop", "backend")
    unsubscribe()
    store.create("deployments", _deployment("after"))
    assert [(e.type, e.resource, e.resource_version) for e in seen] == [
        ("ADDED", "deployments", 1),
        ("MODIFIED", "deployments", 2),
        ("DELETED", "deployments", 3),
    ]
    assert seen[1].obj["spec"]["replicas"] == 2


def test_history_replays_changes_after_a_resource_version(store):
    for name in ("a", "b", "c"):
        store.create("configmaps", {"metadata": {"name": name, "namespace": "shop"}})
    replay = store.history_since(1)
    assert [(c.resource_version, c.obj["metadata"]["name"]) for c in replay] == [(2, "b"), (3, "c")]
    assert store.history_since(3) == []


def test_history_beyond_its_limit_is_expired():
    store = Store(history_limit=2)
    for name in ("a", "b", "c", "d"):
        store.create("configmaps", {"metadata": {"name": name, "namespace": "shop"}})
    assert [c.resource_version for c in store.history_since(2)] == [3, 4]
    with pytest.raises(Expired, match=r"too old resource version: 1 \(2\)"):
        store.history_since(1)


def test_expire_history_makes_every_resume_a_client_could_ask_for_expire(store):
    store.create("configmaps", {"metadata": {"name": "a", "namespace": "shop"}})
    store.create("configmaps", {"metadata": {"name": "b", "namespace": "shop"}})
    store.expire_history()
    for seen in (1, 2):  # 2: the newest event; a client that saw it has fallen behind too
        with pytest.raises(Expired):
            store.history_since(seen)
    # a list answers with the store's resourceVersion, from which a watch goes on
    assert store.history_since(store.resource_version) == []
