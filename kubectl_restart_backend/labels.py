"""How a Deployment is linked to a repo and branch: label keys, the slug rule, selectors.

Label values are limited (63 characters of ``[A-Za-z0-9._-]``), repo and branch names are
not, so the labels carry a slug and optional annotations with the same keys carry the exact
values. The slug is lossy and long values are hashed, so two repos can share a slug; the
annotations, when present, settle which Deployment is whose.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Any, Mapping

from .errors import shown
from .repo_url import RepoRef

REPO_LABEL = "restart-backend/repo"
BRANCH_LABEL = "restart-backend/branch"
COMPONENT_LABEL = "app.kubernetes.io/component"

MAX_LABEL_VALUE = 63
_HASHED_PREFIX = 54  # 54 + "-" + 8 hex characters = 63
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE_RE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def slug(value: str) -> str:
    """The label value for a repo (``owner/name``) or branch; never empty.

    Lowercase; each run of characters outside ``[a-z0-9]`` (unicode letters included)
    becomes one ``-``; ``-`` trimmed at both ends. Longer than 63: the first 54 characters
    (trailing ``-`` trimmed), ``-``, and the first 8 hex of sha256 of the *exact* value, so
    long names that share a prefix still get different labels. Nothing left (a branch of
    only non-Latin letters, ``日本語ブランチ``): the 8 hex alone, the same hash form with an
    empty prefix.
    """
    result = _NOT_SLUG_CHARS.sub("-", value.lower()).strip("-")
    if result and len(result) <= MAX_LABEL_VALUE:
        return result
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    prefix = result[:_HASHED_PREFIX].rstrip("-")
    return f"{prefix}-{digest}" if prefix else digest


def is_valid_label_value(value: str) -> bool:
    """Kubernetes' rule: at most 63 chars, alphanumerics plus ``-_.`` inside, may be empty."""
    return len(value) <= MAX_LABEL_VALUE and bool(_LABEL_VALUE_RE.match(value))


def build_selector(repo: RepoRef, branch: str) -> str:
    """The server-side label selector for the repo's Deployment on this branch."""
    return f"{REPO_LABEL}={slug(repo.slug_source)},{BRANCH_LABEL}={slug(branch)}"


def matches_exact_values(deployment: Mapping[str, Any], repo: RepoRef, branch: str) -> bool:
    """False when the Deployment's annotations name another repo or branch.

    Missing annotations are fine (labels alone link a Deployment); present ones must equal
    the exact values: the repo ignoring case (hosts do), the branch exactly (git does not).
    """
    metadata = deployment.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    exact_repo = annotations.get(REPO_LABEL)
    if exact_repo is not None and exact_repo.strip().lower() != repo.slug_source.lower():
        return False
    exact_branch = annotations.get(BRANCH_LABEL)
    return exact_branch is None or exact_branch == branch


def kubectl_label_command(
    namespace: str | None, deployment: str | None, repo: RepoRef, branch: str
) -> str:
    """Two copy-paste shell lines that link a Deployment: labels (slugs), annotations (exact).

    Every value is shell-quoted: branch names may contain ``$(...)`` and the like.
    """
    name = shlex.quote(deployment) if deployment else "DEPLOYMENT"
    ns = f" -n {shlex.quote(namespace)}" if namespace else ""
    labels = " ".join(
        shlex.quote(f"{key}={value}")
        for key, value in ((REPO_LABEL, slug(repo.slug_source)), (BRANCH_LABEL, slug(branch)))
    )
    annotations = " ".join(
        shlex.quote(f"{key}={value}")
        for key, value in ((REPO_LABEL, repo.slug_source), (BRANCH_LABEL, branch))
    )
    return (
        f"kubectl label deployment {name}{ns} {labels}\n"
        f"kubectl annotate deployment {name}{ns} {annotations}"
    )


# -- label selectors, as the API server parses them (apimachinery's labels.Parse) ----------

_SELECTOR_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")
_SELECTOR_SPECIAL = {"!=", "==", "=", "!", "(", ")", ",", ">", "<"}
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$")


def selector_problem(text: str) -> str | None:
    """Why the API server would reject this label selector, or None when it would parse.

    The grammar: comma-separated requirements, each ``key``, ``!key``, ``key=value``,
    ``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key>1`` or
    ``key<1``; keys are qualified names (``prefix/name``), values label values.
    """
    tokens, position = [], 0
    while position < len(text):
        match = _SELECTOR_TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        return None
    requirements: list[list[str]] = [[]]
    depth = 0
    for token in tokens:  # split on commas outside "( ... )"
        depth += {"(": 1, ")": -1}.get(token, 0)
        if token == "," and depth == 0:
            requirements.append([])
        else:
            requirements[-1].append(token)
    for requirement in requirements:
        problem = _requirement_problem(requirement)
        if problem:
            return problem
    return None


def _requirement_problem(tokens: list[str]) -> str | None:
    if not tokens:
        return "an empty requirement (two commas, or a comma at an end)"
    negated = tokens[0] == "!"
    key_index = 1 if negated else 0
    if key_index >= len(tokens) or tokens[key_index] in _SELECTOR_SPECIAL:
        return "a requirement must start with a label key"
    key, rest = tokens[key_index], tokens[key_index + 1 :]
    problem = _key_problem(key)
    if problem or not rest:
        return problem
    if negated:
        return f"{shown('!' + key)} takes no operator or value"
    operator, values = rest[0], rest[1:]
    if operator in ("=", "==", "!="):
        if len(values) > 1:
            return f"{shown(key)}: {operator} takes exactly one value"
        value = values[0] if values else ""
        return None if is_valid_label_value(value) else _value_problem(value)
    if operator in ("in", "notin"):
        members = _set_members(values)
        if members is None:
            return f"{shown(key)}: {operator} takes values in parentheses, e.g. {operator} (a,b)"
        if not any(members):
            return f"{shown(key)}: {operator} () needs at least one value"
        bad = next((v for v in members if not is_valid_label_value(v)), None)
        return _value_problem(bad) if bad is not None else None
    if operator in (">", "<"):
        if len(values) != 1 or not re.fullmatch(r"-?\d+", values[0]):
            return f"{shown(key)}: {operator} takes one whole number"
        return None
    return (
        f"expected an operator (=, ==, !=, in, notin, >, <) after {shown(key)}, "
        f"not {shown(operator)}"
    )


def _set_members(tokens: list[str]) -> list[str] | None:
    """``( a , b )`` -> ``["a", "b"]`` (an empty member between commas is ""); None if malformed."""
    if len(tokens) < 2 or tokens[0] != "(" or tokens[-1] != ")":
        return None
    members, expect_value = [""], True
    for token in tokens[1:-1]:
        if token == ",":
            members.append("")
            expect_value = True
        elif expect_value and token not in _SELECTOR_SPECIAL:
            members[-1] = token
            expect_value = False
        else:
            return None
    return members


def _key_problem(key: str) -> str | None:
    if key in ("in", "notin"):
        return f"a requirement must start with a label key, not {shown(key)}"
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (prefix == "" and key.startswith("/")):
        return f"label key {shown(key)} has more than one '/' or an empty prefix"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {shown(key)} has an invalid prefix (a lowercase DNS name)"
    if not name or len(name) > MAX_LABEL_VALUE or not _QUALIFIED_NAME.match(name):
        return (
            f"label key {shown(key)} is invalid (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def _value_problem(value: str) -> str:
    return (
        f"label value {shown(value)} is invalid (at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit)"
    )
