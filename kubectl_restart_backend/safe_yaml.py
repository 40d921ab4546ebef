"""YAML from files anyone can commit, parsed with a budget on alias expansion.

``.restart-backend.yaml`` arrives with every checkout (a pull request that CI runs the plugin
on), and kubeconfigs are passed around. A few hundred bytes of nested anchors and aliases
(``b: &b [*a, *a, ...]``) describe a document of billions of nodes: PyYAML composes it
cheaply, but anything that walks it (``repr`` in an error message, comparisons, the
kubernetes client's ``str()`` of a token) grows without bound. kubectl's YAML library
refuses such documents ("excessive aliasing"); so do we, while composing, before anything is
built: each alias adds the size of the node it repeats to a running total that may not pass
``ALIAS_BUDGET``, and an alias inside the node it names (a cycle) is refused outright.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import UsageError

# Nodes that aliases may add to one document, all aliases together. Real kubeconfigs and
# config files use a handful of aliases, if any; a billion-laughs file needs millions.
ALIAS_BUDGET = 10_000
_PROBLEM_CHARS = 100


class ExcessiveAliasing(yaml.composer.ComposerError):
    """The document's aliases expand beyond the budget, or an alias contains itself."""


class BudgetedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses, at the offending alias, what expands too far."""

    def __init__(self, stream: Any, alias_budget: int = ALIAS_BUDGET) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its full expansion
        self._alias_nodes_left = alias_budget

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._charge_alias(self.peek_event())
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in children)
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """Values PyYAML cannot build (``2024-13-45``, a 5000-digit number) are YAML errors."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value ({_kind(node.tag)})", node.start_mark
            ) from None

    def _charge_alias(self, event: Any) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # PyYAML itself reports the undefined alias
        size = self._sizes.get(id(node))
        if size is None:  # the anchored node is still being composed: a cycle
            raise ExcessiveAliasing(
                None, None, "an alias refers to the node that contains it", event.start_mark
            )
        self._alias_nodes_left -= size
        if self._alias_nodes_left < 0:
            raise ExcessiveAliasing(
                None,
                None,
                f"excessive aliasing: aliases expand to more than {ALIAS_BUDGET} nodes",
                event.start_mark,
            )


def _kind(tag: str) -> str:
    """``tag:yaml.org,2002:timestamp`` -> ``timestamp``."""
    return tag.rsplit(":", 1)[-1] or "value"


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the alias budget (raises ``yaml.YAMLError`` subclasses)."""
    loader = BudgetedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe_error(err: yaml.YAMLError) -> tuple[str, int | None]:
    """The problem and its 1-based line, without quoting the offending text."""
    mark = getattr(err, "problem_mark", None)
    problem = " ".join(str(getattr(err, "problem", None) or "invalid YAML").split())
    if len(problem) > _PROBLEM_CHARS:  # PyYAML quotes anchors and tags, which may be long
        problem = problem[: _PROBLEM_CHARS - 1] + "…"
    return problem, (mark.line + 1 if mark is not None else None)


def usage_error(err: yaml.YAMLError, file_label: str, fix: str) -> UsageError:
    """The one-line error for a file that does not parse: the file, the line, the problem
    (never the line's content: it may hold a token), and ``fix`` as the hint."""
    problem, line = describe_error(err)
    where = f"line {line}: " if line is not None else ""
    if isinstance(err, ExcessiveAliasing):
        return UsageError(
            f"{file_label}: {where}refused: {problem}",
            "Write the values out instead of nesting YAML aliases (kubectl refuses them too)",
        )
    return UsageError(f"{file_label}: {where}not valid YAML ({problem})", fix)
