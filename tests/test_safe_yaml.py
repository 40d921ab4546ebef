"""YAML from untrusted files: alias expansion is budgeted while composing, never built."""

from __future__ import annotations

import pytest
import yaml

from kubectl_restart_backend.errors import shown
from kubectl_restart_backend.safe_yaml import ALIAS_BUDGET, ExcessiveAliasing, safe_load


def laughs(levels: int, width: int = 9, key: str = "selector") -> str:
    """The classic bomb: each level lists the previous one ``width`` times (width**levels)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    lines.append(f"{key}: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_the_458_byte_bomb_is_refused_at_the_alias_that_overflows():
    text = laughs(9)
    assert len(text) < 600
    with pytest.raises(ExcessiveAliasing) as caught:
        safe_load(text)
    assert "excessive aliasing" in caught.value.problem
    assert caught.value.problem_mark.line + 1 == 5  # l4 repeats l3 (820 nodes) 9 times


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(ExcessiveAliasing, match="contains it"):
        safe_load("a: &a [1, *a]\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: &x {k: v}\nb: *x\n", {"a": {"k": "v"}, "b": {"k": "v"}}),
        ("base: &b {ns: shop}\nmain:\n  <<: *b\n  t: 1\n", None),
        ("l: &l [1, 2]\nm: [*l, *l, *l]\n", None),
    ],
)
def test_ordinary_aliases_and_merge_keys_still_work(text, expected):
    loaded = safe_load(text)
    assert loaded == (expected if expected is not None else yaml.safe_load(text))


def test_budget_counts_all_aliases_together():
    # Each alias alone is small; together they pass the budget.
    items = ", ".join(["x"] * 99)
    text = f"a: &a [{items}]\nb: [{', '.join(['*a'] * (ALIAS_BUDGET // 100 + 2))}]\n"
    with pytest.raises(ExcessiveAliasing):
        safe_load(text)
    fits = f"a: &a [{items}]\nb: [{', '.join(['*a'] * (ALIAS_BUDGET // 100 - 1))}]\n"
    assert len(safe_load(fits)["b"]) == ALIAS_BUDGET // 100 - 1


@pytest.mark.parametrize(
    "text, kind",
    [("a: 2001-13-45\n", "timestamp"), (f"a: {'1' * 5000}\n", "int")],
)
def test_values_python_cannot_build_are_yaml_errors(text, kind):
    with pytest.raises(yaml.YAMLError, match=kind):
        safe_load(text)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("shop", "'shop'"),
        ("x" * 500, repr("x" * 99 + "…")),
        ("two\nlines", "'two\\nlines'"),
        (42, "42"),
        (True, "True"),
        (None, "None"),
        ([1, 2], "a list"),
        ({"a": 1}, "a mapping"),
        (b"raw", "a bytes"),
    ],
)
def test_shown_values_are_one_bounded_line(value, expected):
    assert shown(value) == expected


def test_shown_never_converts_a_huge_number_to_text():
    assert shown(10**5000) == "a very large number"
