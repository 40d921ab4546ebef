"""Differential fidelity of the Lease API the restart lock relies on: the same requests, sent
with the official Python client to the simulated cluster and to the official kube-apiserver,
get the same answers (status, reason, message; MicroTime written back in UTC).

The lock is only as good as the API server's optimistic concurrency: a second create is 409
AlreadyExists, a replace at a stale resourceVersion is 409 Conflict, and a Lease cannot be
replaced without one (422). If the simulator answered otherwise, the lock's tests would prove
nothing.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from tests.controlplane.rbac import required_rules

NAME = "restart-backend.deployment.backend"


def coordination(kubeconfig: str) -> Any:
    from kubernetes import client, config

    return client.CoordinationV1Api(config.new_client_from_config(config_file=kubeconfig))


def lease(name: str, holder: str, renew: str = "2026-11-30T14:00:00.000001+02:00", **spec) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
                 "acquireTime": renew, "renewTime": renew, **spec},
    }  # fmt: skip


def answer(call: Callable[[], Any], detail: bool = True) -> tuple:
    """(status, reason, message) of an error; (status, spec) of a success."""
    from kubernetes.client.exceptions import ApiException

    try:
        response = call()
    except ApiException as error:
        body = json.loads(error.body)
        return (error.status, body.get("reason"), body.get("message") if detail else None)
    body = json.loads(response.data)
    return (response.status, body.get("spec"))


def lease_answers(admin: str, dev: str, ns: str) -> dict[str, tuple]:
    """One sequence of Lease requests; what the server answered to each."""
    api, as_dev = coordination(admin), coordination(dev)
    raw = {"_preload_content": False}
    out = {"create": answer(lambda: api.create_namespaced_lease(ns, lease(NAME, "a"), **raw))}
    out["create again"] = answer(lambda: api.create_namespaced_lease(ns, lease(NAME, "b"), **raw))
    read = json.loads(api.read_namespaced_lease(NAME, ns, **raw).data)
    taken = {**lease(NAME, "b"), "metadata": read["metadata"]}
    out["replace at the version read"] = answer(
        lambda: api.replace_namespaced_lease(NAME, ns, taken, **raw)
    )
    out["replace at a stale version"] = answer(
        lambda: api.replace_namespaced_lease(NAME, ns, taken, **raw)
    )
    out["replace without a version"] = answer(
        lambda: api.replace_namespaced_lease(NAME, ns, lease(NAME, "c"), **raw)
    )
    out["a time without six fraction digits"] = answer(
        lambda: api.create_namespaced_lease(
            ns, lease("other", "a", renew="2026-11-30T12:00:00Z"), **raw
        ),
        detail=False,  # the decoder's wording is Go's time package's
    )
    out["a duration of zero"] = answer(
        lambda: api.create_namespaced_lease(ns, lease("zero", "a", leaseDurationSeconds=0), **raw)
    )
    out["put of a missing lease"] = answer(
        lambda: api.replace_namespaced_lease("fresh", ns, lease("fresh", "d"), **raw)
    )
    out["get a missing lease"] = answer(lambda: api.read_namespaced_lease("nope", ns, **raw))
    out["get without the right"] = answer(lambda: as_dev.read_namespaced_lease(NAME, ns, **raw))
    return out


def simulated_answers(make_cluster) -> dict:
    sim = make_cluster(simulation_factory=None)
    sim.create_namespace("shop")
    sim.add_user("dev", "dev-token", [{**r, "namespaces": ["shop"]} for r in required_rules()])
    answers = lease_answers(sim.kubeconfig, sim.write_kubeconfig(user="dev"), "shop")
    return json.loads(json.dumps(answers))


def assert_what_the_lock_relies_on(answers: dict) -> None:
    assert answers["create"][0] == 201
    assert answers["create"][1]["renewTime"] == "2026-11-30T12:00:00.000001Z"  # UTC, 6 digits
    assert answers["create again"][:2] == [409, "AlreadyExists"]
    assert answers["replace at the version read"][0] == 200
    assert answers["replace at a stale version"][:2] == [409, "Conflict"]
    assert answers["replace without a version"][:2] == [422, "Invalid"]
    assert answers["a time without six fraction digits"][:2] == [400, "BadRequest"]
    assert answers["put of a missing lease"][0] == 201
    assert answers["get without the right"][:2] == [403, "Forbidden"]


def test_the_simulated_cluster_serves_leases_with_optimistic_concurrency(make_cluster):
    assert_what_the_lock_relies_on(simulated_answers(make_cluster))


def test_both_clusters_answer_lease_requests_alike(make_cluster, real_cluster):
    simulated = simulated_answers(make_cluster)
    ns = real_cluster.ns()
    real_cluster.create_namespace(ns)
    dev = real_cluster.add_user("dev", required_rules(), namespace=ns)
    answers = lease_answers(real_cluster.kubeconfig, dev, ns)
    official = json.loads(json.dumps(answers).replace(f"-{real_cluster.suffix}", ""))
    assert simulated == official
    assert_what_the_lock_relies_on(official)
