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

from .errors import UsageError, shown
from .repo_url import RepoRef

REPO_LABEL = "restart-backend/repo"
BRANCH_LABEL = "restart-backend/branch"
COMPONENT_LABEL = "app.kubernetes.io/component"

MAX_LABEL_VALUE = 63
_HASHED_PREFIX = 54  # 54 + "-" + 8 hex characters = 63
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE_RE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def slug(value: str) -> str:
    """The label value for a repo (``owner/name``) or branch.

    Lowercase; each run of characters outside ``[a-z0-9]`` (unicode letters included)
    becomes one ``-``; ``-`` trimmed at both ends. Longer than 63: the first 54 characters
    (trailing ``-`` trimmed), ``-``, and the first 8 hex of sha256 of the *exact* value, so
    long names that share a prefix still get different labels.
    """
    result = _NOT_SLUG_CHARS.sub("-", value.lower()).strip("-")
    if not result:
        raise UsageError(
            f"{shown(value)} has no letters or digits to make a label value from",
            "Use --repo/--branch with a name that contains letters or digits",
        )
    if len(result) <= MAX_LABEL_VALUE:
        return result
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    return f"{result[:_HASHED_PREFIX].rstrip('-')}-{digest}"


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
