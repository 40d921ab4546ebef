"""Choosing the one Deployment for repo@branch among what the label selector returned."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.errors import ExitCode, NotFoundError
from kubectl_restart_backend.repo_url import RepoRef
from kubectl_restart_backend.target import SearchScope, choose_target

REPO = RepoRef("github.com", "acme", "shop")


def deployment(name, namespace="shop", *, component=None, repo=None, branch=None):
    labels = {"restart-backend/repo": "acme-shop", "restart-backend/branch": "main"}
    if component:
        labels["app.kubernetes.io/component"] = component
    annotations = {}
    if repo:
        annotations["restart-backend/repo"] = repo
    if branch:
        annotations["restart-backend/branch"] = branch
    meta = {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}
    return {"metadata": meta}


ALL = SearchScope(())


def names(d):
    return d["metadata"]["name"]


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
    assert "No deployment found for acme/shop@main" in caught.value.message
    assert "namespace shop" in caught.value.message


def test_ambiguous_lists_every_candidate_and_how_to_choose():
    found = [deployment("a", "one"), deployment("b", "two")]
    with pytest.raises(NotFoundError) as caught:
        choose_target(found, REPO, "main", ALL)
    assert "one/a" in caught.value.message and "two/b" in caught.value.message
    assert "--deployment" in caught.value.hint


def test_two_backends_are_still_ambiguous():
    found = [deployment("a", component="backend"), deployment("b", component="backend")]
    with pytest.raises(NotFoundError):
        choose_target(found, REPO, "main", ALL)
