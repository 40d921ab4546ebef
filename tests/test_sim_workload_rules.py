"""Pure rules behind the simulated StatefulSets and DaemonSets: revision hashing and history,
node selection, and kubectl's rollout-status rule per kind (tables)."""

from __future__ import annotations

import pytest

from tests.cluster.resources import workload_key
from tests.cluster.revisions import (
    equal_revision,
    hash_revision,
    next_revision,
    revisions_to_truncate,
    sort_revisions,
    template_patch,
)
from tests.cluster.rollout_status import rollout_settled, rollout_status
from tests.cluster.scheduling import feasible_nodes, node_fits, node_labels

# ----------------------------------------------------------------------------- revisions

PATCH = {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}}}}}


@pytest.mark.parametrize(
    ("collisions", "expected"),
    # computed with Go: hash/fnv New32 over the JSON bytes and the probe, rand.SafeEncodeString
    [(0, "69f77bb675"), (3, "69f77bb66d")],
)
def test_revision_hash_is_history_HashControllerRevision(collisions, expected):
    assert hash_revision(PATCH, collisions) == expected


def test_template_patch_replaces_the_template_and_ignores_empty_fields():
    a = {"spec": {"template": {"metadata": {"labels": {"app": "db"}, "annotations": {}}}}}
    b = {"spec": {"replicas": 5, "template": {"metadata": {"labels": {"app": "db"}}}}}
    assert template_patch(a) == template_patch(b) == PATCH


def _revision(name, number, hash_="h", data=None, created="2027-01-15T08:00:00Z"):
    return {
        "metadata": {"name": name, "creationTimestamp": created,
                     "labels": {"controller.kubernetes.io/hash": hash_}},
        "revision": number,
        "data": data or PATCH,
    }  # fmt: skip


def test_revisions_sort_by_number_then_age_then_name():
    revisions = [_revision("c", 2), _revision("b", 1, created="2027-01-15T09:00:00Z"),
                 _revision("a", 1, created="2027-01-15T09:00:00Z"), _revision("d", 1)]  # fmt: skip
    ordered = sort_revisions(revisions)
    assert [r["metadata"]["name"] for r in ordered] == ["d", "a", "b", "c"]
    assert next_revision(ordered) == 3 and next_revision([]) == 1


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (_revision("x", 1), _revision("y", 2), True),
        (_revision("x", 1, hash_="h1"), _revision("y", 2, hash_="h2"), False),
        (_revision("x", 1), _revision("y", 2, data={"spec": {"template": {}}}), False),
    ],
)
def test_equal_revisions_have_the_same_hash_and_data(a, b, equal):
    assert equal_revision(a, b) is equal


def test_history_truncation_keeps_live_revisions_and_the_newest():
    revisions = sort_revisions(_revision(f"r{n}", n) for n in range(1, 6))
    assert revisions_to_truncate(revisions, {"r1", "r5"}, 2) == ["r2"]
    assert revisions_to_truncate(revisions, {"r5"}, 10) == []


# ----------------------------------------------------------------------------- scheduling


def _affinity(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}  # fmt: skip


SSD = {"disk": "ssd", "zone": "3"}


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        ({}, True),
        ({"nodeName": "n2"}, False),
        ({"nodeSelector": {"disk": "ssd"}}, True),
        ({"nodeSelector": {"disk": "hdd"}}, False),
        ({"affinity": _affinity({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1"]}]})}, True),
        ({"affinity": _affinity({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n2"]}]})}, False),
        ({"affinity": _affinity({"matchExpressions": [
            {"key": "zone", "operator": "Gt", "values": ["2"]}]})}, True),
        ({"affinity": _affinity({"matchExpressions": [
            {"key": "gpu", "operator": "Exists"}]}, {"matchExpressions": [
            {"key": "disk", "operator": "NotIn", "values": ["hdd"]}]})}, True),  # terms ORed
        ({"affinity": _affinity({})}, False),  # an empty term matches nothing
    ],
)  # fmt: skip
def test_node_filters_are_the_schedulers(spec, fits):
    assert node_fits(spec, "n1", SSD) is fits


def test_nodes_carry_the_well_known_labels_plus_configured_ones():
    extra = {"b": {"disk": "ssd"}}
    assert node_labels("b", extra) == {"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": "b",
                                       "kubernetes.io/os": "linux", "disk": "ssd"}  # fmt: skip
    assert feasible_nodes({"nodeSelector": {"disk": "ssd"}}, ["a", "b", "c"], extra) == ["b"]


@pytest.mark.parametrize(
    ("workload", "key"),
    [("web", ("Deployment", "web")), ("sts/db", ("StatefulSet", "db")),
     ("DaemonSet/agent", ("DaemonSet", "agent")), ("deployment/web", ("Deployment", "web"))],
)  # fmt: skip
def test_workloads_are_named_as_kubectl_names_them(workload, key):
    assert workload_key(workload) == key


# ----------------------------------------------------------------------------- rollout status


def _sts(generation=2, observed=2, replicas=3, ready=3, updated=3, current="a", update="a",
         rolling=None, kind="RollingUpdate"):  # fmt: skip
    strategy = {"type": kind}
    if rolling is not None:
        strategy["rollingUpdate"] = rolling
    status = {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": updated,
              "currentReplicas": updated, "availableReplicas": ready, "currentRevision": current,
              "updateRevision": update}  # fmt: skip
    spec = {"replicas": replicas, "updateStrategy": strategy}
    meta = {"name": "db", "generation": generation}
    return {"kind": "StatefulSet", "metadata": meta, "spec": spec, "status": status}


P0 = {"partition": 0}


@pytest.mark.parametrize(
    ("sts", "message", "done"),
    [
        (_sts(observed=1, rolling=P0), "Waiting for statefulset spec update to be observed...\n",
         False),
        (_sts(ready=2, rolling=P0), "Waiting for 1 pods to be ready...\n", False),
        (_sts(updated=1, rolling=P0),
         "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...\n",
         False),
        (_sts(rolling=P0), "partitioned roll out complete: 3 new pods have been updated...\n",
         True),
        (_sts(updated=1, rolling={"partition": 2}),
         "partitioned roll out complete: 1 new pods have been updated...\n", True),
        (_sts(update="b"), "waiting for statefulset rolling update to complete 3 pods at "
         "revision b...\n", False),
        (_sts(), "statefulset rolling update complete 3 pods at revision a...\n", True),
    ],
)  # fmt: skip
def test_statefulset_status_is_kubectls(sts, message, done):
    assert rollout_status(sts)[:2] == (message, done)


def test_on_delete_has_no_kubectl_rule_but_settles_when_all_pods_are_available():
    sts = _sts(kind="OnDelete")
    assert rollout_status(sts).error == (
        "rollout status is only available for RollingUpdate strategy type"
    )
    assert rollout_settled(sts)
    assert not rollout_settled(_sts(kind="OnDelete", ready=2))


def _ds(generation=1, observed=1, desired=3, updated=3, available=3):
    status = {"observedGeneration": observed, "desiredNumberScheduled": desired,
              "updatedNumberScheduled": updated, "numberAvailable": available}  # fmt: skip
    meta = {"name": "agent", "generation": generation}
    spec = {"updateStrategy": {"type": "RollingUpdate"}}
    return {"kind": "DaemonSet", "metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("ds", "message", "done"),
    [
        (_ds(generation=2), "Waiting for daemon set spec update to be observed...\n", False),
        (_ds(updated=1), 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods '
         "have been updated...\n", False),
        (_ds(available=2), 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated '
         "pods are available...\n", False),
        (_ds(), 'daemon set "agent" successfully rolled out\n', True),
    ],
)  # fmt: skip
def test_daemonset_status_is_kubectls(ds, message, done):
    assert rollout_status(ds)[:2] == (message, done)


def test_deployment_past_its_deadline_is_an_error_not_done():
    deployment = {
        "metadata": {"name": "web", "generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]},
    }  # fmt: skip
    assert rollout_status(deployment) == (
        "", False, 'deployment "web" exceeded its progress deadline')  # fmt: skip
