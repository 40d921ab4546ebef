"""The simulated API server's managedFields: who wrote which field (Update operations)."""

from __future__ import annotations

from tests.cluster.managed_fields import fields_changed, update_managed_fields

OLD = {
    "metadata": {"name": "backend", "labels": {"app": "backend"}},
    "spec": {
        "replicas": 3,
        "template": {
            "metadata": {"annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "api", "image": "shop:3.0"}]},
        },
    },
}


def with_image(image: str) -> dict:
    new = {**OLD, "spec": {**OLD["spec"], "template": {**OLD["spec"]["template"]}}}
    new["spec"]["template"]["spec"] = {"containers": [{"name": "api", "image": image}]}
    return new


def test_only_changed_fields_are_claimed_keyed_list_items_by_name():
    assert fields_changed(OLD, with_image("shop:4.0")) == {
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"api"}': {"f:image": {}}}}}
        }
    }


def test_a_manager_taking_a_field_takes_it_from_its_previous_owner():
    created = {**OLD, "metadata": {**OLD["metadata"]}}
    created["metadata"]["managedFields"] = update_managed_fields(None, created, "helm", "t0")
    changed = with_image("shop:4.0")
    entries = update_managed_fields(created, changed, "kubectl-set", "t1")
    owners = {e["manager"]: e for e in entries}
    helm_containers = owners["helm"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "f:image" not in helm_containers['k:{"name":"api"}']
    assert owners["kubectl-set"]["time"] == "t1"
    assert "f:replicas" in owners["helm"]["fieldsV1"]["f:spec"]


def test_a_write_that_changes_nothing_changes_no_entry():
    entries = [{"manager": "helm", "operation": "Update", "fieldsV1": {"f:spec": {}}}]
    old = {**OLD, "metadata": {**OLD["metadata"], "managedFields": entries}}
    assert update_managed_fields(old, dict(old), "other", "t1") == entries
