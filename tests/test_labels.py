"""The slug rule, label validity, selectors, exact-value annotations, the link command."""

from __future__ import annotations

import hashlib
import shlex

import pytest

from kubectl_restart_backend.labels import (
    BRANCH_LABEL,
    REPO_LABEL,
    build_selector,
    is_valid_label_value,
    kubectl_label_command,
    matches_exact_values,
    selector_problem,
    slug,
)
from kubectl_restart_backend.repo_url import RepoRef

SHOP = RepoRef(host="github.com", owner="acme", name="shop")


def _hashed(value: str, prefix: str) -> str:
    return f"{prefix}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:8]}"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("acme/shop", "acme-shop"),
        ("main", "main"),
        ("Feature/ABC-123", "feature-abc-123"),
        ("release/1.2.3", "release-1-2-3"),
        ("group/sub/shop", "group-sub-shop"),
        ("a//b..c__d", "a-b-c-d"),
        ("--leading-and-trailing--", "leading-and-trailing"),
        ("/feature/", "feature"),
        ("fix_bug.v2", "fix-bug-v2"),
        ("Ünïcödé/brånch", "n-c-d-br-nch"),
        ("日本語-branch", "branch"),
        ("$(touch pwned)", "touch-pwned"),
        ("--upload-pack=evil", "upload-pack-evil"),
        ("x" * 63, "x" * 63),
        ("0123456789", "0123456789"),
    ],
)
def test_slug_lowercases_and_collapses_other_characters(value, expected):
    assert slug(value) == expected


def test_slug_of_exactly_63_characters_is_kept_whole():
    value = "a" * 62 + "Z"
    assert slug(value) == "a" * 62 + "z"


def test_slug_of_64_characters_is_prefix_plus_hash_of_exact_value():
    value = "b" * 64
    result = slug(value)
    assert result == _hashed(value, "b" * 54)
    assert len(result) == 63


def test_slug_trims_trailing_dash_of_the_54_character_prefix():
    value = "c" * 53 + "/" + "d" * 20  # char 54 becomes '-' and is trimmed
    assert slug(value) == _hashed(value, "c" * 53)


def test_slug_hashes_the_exact_value_not_the_lowercased_one():
    upper, lower = "Q" * 70, "q" * 70
    assert slug(upper) != slug(lower)
    assert slug(upper).startswith("q" * 54 + "-")


def test_slug_length_decided_after_collapsing():
    value = "a" + "/" * 100 + "b"  # 102 characters in, 3 after collapsing
    assert slug(value) == "a-b"


@pytest.mark.parametrize("value", ["日本語ブランチ", "---", "///", "日本語", "!!!", " \t", "☃"])
def test_slug_with_no_latin_letter_or_digit_is_the_hash_alone(value):
    expected = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    assert slug(value) == expected
    assert is_valid_label_value(expected)


def test_non_latin_branches_get_different_slugs():
    assert slug("日本語ブランチ") != slug("中文分支")


@pytest.mark.parametrize(
    "value", ["acme/shop", "x" * 200, "Ünïcödé", "release/2024.01", "a-" * 50, "é" * 70 + "z"]
)
def test_every_slug_is_a_valid_label_value(value):
    assert is_valid_label_value(slug(value))


@pytest.mark.parametrize(
    "value, valid",
    [
        ("", True),
        ("a", True),
        ("a.b_c-d", True),
        ("A1", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-a", False),
        ("a-", False),
        ("_a", False),
        ("a/b", False),
        ("a b", False),
        ("é", False),
    ],
)
def test_is_valid_label_value_follows_kubernetes(value, valid):
    assert is_valid_label_value(value) is valid


def test_build_selector_uses_slugs():
    repo = RepoRef(host="gitlab.com", owner="Group/Sub", name="Shop")
    assert build_selector(repo, "feature/X") == (
        "restart-backend/repo=group-sub-shop,restart-backend/branch=feature-x"
    )


def _deployment(annotations):
    return {"metadata": {"name": "shop", "annotations": annotations}}


@pytest.mark.parametrize(
    "annotations, matches",
    [
        (None, True),
        ({}, True),
        ({REPO_LABEL: "acme/shop", BRANCH_LABEL: "main"}, True),
        ({REPO_LABEL: "ACME/Shop", BRANCH_LABEL: "main"}, True),
        ({REPO_LABEL: "acme/shop"}, True),
        ({BRANCH_LABEL: "main"}, True),
        ({REPO_LABEL: "acme-shop/x", BRANCH_LABEL: "main"}, False),
        ({REPO_LABEL: "acme/shop", BRANCH_LABEL: "Main"}, False),
        ({REPO_LABEL: "acme/shop", BRANCH_LABEL: "main/"}, False),
        ({"other": "x"}, True),
    ],
)
def test_exact_value_annotations_must_match_when_present(annotations, matches):
    assert matches_exact_values(_deployment(annotations), SHOP, "main") is matches


def test_colliding_slugs_are_told_apart_by_annotations():
    other = RepoRef(host="", owner="acme-shop", name="x")
    a = RepoRef(host="", owner="acme", name="shop-x")
    assert slug(a.slug_source) == slug(other.slug_source)
    dep = _deployment({REPO_LABEL: "acme/shop-x"})
    assert matches_exact_values(dep, a, "main")
    assert not matches_exact_values(dep, other, "main")


def test_label_command_is_copy_paste_safe_for_hostile_branch():
    branch = "$(touch pwned)'; rm -rf ~"
    text = kubectl_label_command("prod ns", "shop", SHOP, branch)
    label_line, annotate_line = text.split("\n")
    assert shlex.split(label_line) == [
        "kubectl",
        "label",
        "deployment",
        "shop",
        "-n",
        "prod ns",
        "restart-backend/repo=acme-shop",
        "restart-backend/branch=touch-pwned-rm-rf",
    ]
    assert shlex.split(annotate_line) == [
        "kubectl",
        "annotate",
        "deployment",
        "shop",
        "-n",
        "prod ns",
        "restart-backend/repo=acme/shop",
        f"restart-backend/branch={branch}",
    ]


def test_label_command_without_namespace_or_name_uses_placeholder():
    text = kubectl_label_command(None, None, SHOP, "main")
    assert text.splitlines()[0] == (
        "kubectl label deployment DEPLOYMENT restart-backend/repo=acme-shop "
        "restart-backend/branch=main"
    )


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "tier=api",
        "tier==api",
        "tier!=api",
        "tier",
        "!legacy",
        "tier=",
        "env in (prod, staging)",
        "env notin (dev)",
        "env in (a,)",
        "replicas>2",
        "replicas<10",
        "app.kubernetes.io/component=backend,tier=api",
        " tier = api , env in ( a , b ) ",
        "x" * 63 + "=" + "y" * 63,
    ],
)
def test_selectors_the_api_server_accepts(selector):
    assert selector_problem(selector) is None


@pytest.mark.parametrize(
    "selector, fragment",
    [
        ("tier=api=x", "takes exactly one value"),
        ("tier api", "expected an operator"),
        ("=api", "must start with a label key"),
        ("tier=api,,env=x", "empty requirement"),
        ("tier=api,", "empty requirement"),
        ("env in ()", "at least one value"),
        ("env in (a", "in parentheses"),
        ("env in a", "in parentheses"),
        ("env notin (a b)", "in parentheses"),
        ("env in (a,(b))", "in parentheses"),
        ("!tier=api", "takes no operator"),
        ("replicas>two", "whole number"),
        ("replicas>", "whole number"),
        ("-tier=api", "label key '-tier'"),
        ("a/b/c=d", "more than one '/'"),
        ("/c=d", "more than one '/' or an empty prefix"),
        ("Example.com/c=d", "invalid prefix"),
        ("x" * 64 + "=y", "is invalid"),
        ("tier=-api", "label value '-api'"),
        ("tier=" + "y" * 64, "label value"),
        ("tier=a b", "takes exactly one value"),
        ("in=x", "not 'in'"),
        ("tier=api\x00", "label value"),
        ("é=x", "label key 'é'"),
    ],
)
def test_selectors_the_api_server_rejects(selector, fragment):
    problem = selector_problem(selector)
    assert problem is not None and fragment in problem, problem
