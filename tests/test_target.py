"""Choosing the workloads for repo@branch among what the label selector returned, and the
waves of ``order:``."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.errors import ExitCode, NotFoundError, UsageError
from kubectl_restart_backend.kinds import DAEMONSET, DEPLOYMENT, STATEFULSET
from kubectl_restart_backend.repo_url import RepoRef
from kubectl_restart_backend.target import (
    Found,
    SearchScope,
    choose_all,
    choose_target,
    plan_waves,
)

REPO = RepoRef("github.com", "acme", "shop")


def deployment(name, namespace="shop", *, component=None, repo=None, branch=None, kind=DEPLOYMENT):
    labels = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}
    if component:
        labels["app.kubernetes.io/component"] = component
    annotations = {}
    if repo:
        annotations["restart-backend/repo"] = repo
    if branch:
        annotations["restart-backend/branch"] = branch
    meta = {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}
    return Found(kind, {"metadata": meta})


ALL = SearchScope(())


def names(found):
    return found.name


def test_single_match_is_chosen():
    assert names(choose_target([deployment("backend")], REPO, "main", ALL)) == "backend"


def test_backend_component_breaks_a_tie():
    found = [deployment("worker"), deployment("api", component="backend")]
    assert names(choose_target(found, REPO, "main", ALL)) == "api"


def test_exact_value_annotations_exclude_a_colliding_slug():
    found = [deployment("theirs", repo="acme/shop-", branch="main"), deployment("ours")]
    assert names(choose_target(found, REPO, "main", ALL)) == "ours"


def test_exact_value_annotations_compare_repo_case_insensitively():
    found = [deployment("ours", repo="ACME/Shop", branch="main")]
    assert names(choose_target(found, REPO, "main", ALL)) == "ours"


def test_none_found_names_repo_branch_and_scope():
    with pytest.raises(NotFoundError) as caught:
        choose_target([], REPO, "main", SearchScope(("shop",)))
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert "No workload found for acme/shop@main" in caught.value.message
    assert "namespace shop" in caught.value.message


def test_ambiguous_lists_every_candidate_and_how_to_choose():
    found = [deployment("a", "one"), deployment("b", "two")]
    with pytest.raises(NotFoundError) as caught:
        choose_target(found, REPO, "main", ALL)
    assert caught.value.message == "2 deployments are linked to acme/shop@main: one/a, two/b"
    assert "--all" in caught.value.hint and "-w KIND/NAME" in caught.value.hint


def test_two_backends_are_still_ambiguous():
    found = [deployment("a", component="backend"), deployment("b", component="backend")]
    with pytest.raises(NotFoundError):
        choose_target(found, REPO, "main", ALL)


def test_ambiguous_workloads_of_several_kinds_are_named_with_their_kind():
    found = [deployment("api"), deployment("db", kind=STATEFULSET)]
    with pytest.raises(NotFoundError) as caught:
        choose_target(found, REPO, "main", ALL)
    assert caught.value.message == (
        "2 workloads are linked to acme/shop@main: deployment shop/api, statefulset shop/db"
    )


def test_all_takes_every_linked_workload_but_not_a_colliding_slug():
    found = [
        deployment("agent", kind=DAEMONSET),
        deployment("theirs", repo="acme/shop-", branch="main"),
        deployment("db", kind=STATEFULSET),
        deployment("api"),
    ]
    chosen = choose_all(found, REPO, "main", ALL)
    assert [f.ref for f in chosen] == ["daemonset/agent", "deployment/api", "statefulset/db"]


def test_all_with_nothing_linked_is_not_found():
    with pytest.raises(NotFoundError) as caught:
        choose_all([], REPO, "main", ALL)
    assert caught.value.message == (
        "No workload found for acme/shop@main (searched deployments, statefulsets and "
        "daemonsets in all namespaces)"
    )


TRIO = [deployment("api"), deployment("worker"), deployment("cache", kind=STATEFULSET)]


@pytest.mark.parametrize(
    "order, waves, notes",
    [
        ((), [[0, 1, 2]], []),
        (("api", "worker"), [[0], [1], [2]], []),
        (("statefulset/cache", ("api", "worker")), [[2], [0, 1]], []),
        (("cache",), [[2], [0, 1]], []),
        (("gone", "api"), [[0], [1, 2]], ["order: 'gone' is not among the workloads of this run"]),
        (("api", "api"), [[0], [1, 2]], []),
    ],
    ids=["no-order", "each-a-wave", "a-wave-of-two", "the-rest-last", "unknown-name", "twice"],
)
def test_order_makes_waves(order, waves, notes):
    assert plan_waves(TRIO, order) == (waves, notes)


def test_a_name_two_kinds_share_must_say_its_kind_in_order():
    both = [deployment("cache"), deployment("cache", kind=STATEFULSET)]
    with pytest.raises(UsageError) as caught:
        plan_waves(both, ("cache",))
    assert "deployment/cache, statefulset/cache" in caught.value.message
    assert plan_waves(both, ("statefulset/cache",)) == ([[1], [0]], [])
