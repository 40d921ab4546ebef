"""The optional per-repo config file, ``.restart-backend.yaml`` at the checkout's root.

It saves retyping flags: which context, namespace, workloads, extra selector, timeout and
logs to use, for the whole repo and per branch (glob patterns such as ``release/*``)::

    context: prod-eu
    namespace: shop
    timeout: 3m
    workloads: [deployment/api, statefulset/cache]   # like -w; restarted together...
    order: [cache, api]                              # ...unless in waves: cache first
    waves:                        # several clusters, one cluster wave after the other
    - contexts: [staging]         # (instead of context:; a branch entry setting one of
    - contexts: [prod-eu, prod-us]  # them drops the other's top-level value)
    branches:
      main:
        deployment: shop-backend
      "release/*":
        namespace: shop-staging
        timeout: 5m
      "feature/*":
        deployment: null   # null drops a top-level value for these branches

Precedence (applied by the CLI with ``merge_settings``): flags > the first matching branch
entry, in file order > top level > defaults. Mistakes (unknown keys, wrong types, bad
globs, duplicate keys) are ``UsageError``s naming the file, line and key: a typo silently
ignored would restart something else than the user meant.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Callable, Mapping

import yaml

from .durations import parse_duration
from .errors import PluginError, UsageError, shown
from .kinds import parse_workload
from .labels import selector_problem
from .safe_yaml import BudgetedLoader, usage_error

CONFIG_FILE_NAME = ".restart-backend.yaml"
SETTING_KEYS = (
    "context",
    "namespace",
    "deployment",
    "selector",
    "timeout",
    "logs",
    # how much trouble a new pod may have (trouble.Tolerance), like the flags of the same names
    "max-restarts",
    "max-pull-failures",
    "config-grace",
    "unschedulable-grace",
    "fail-fast",
    # the smoke check and the settle window (verify.py), like --verify-* and --settle
    "verify",
    "settle",
    # several workloads (like -w), the waves they go in, and replacing OnDelete pods
    "workloads",
    "order",
    "delete-pods",
    # several clusters, in cluster waves (cluster_waves.py): one kubeconfig context each
    "waves",
)
BRANCHES_KEY = "branches"
# Keys that choose the same thing: a branch entry setting one drops the other's top-level
# value (``waves:`` for main, ``context:`` for the rest), and one level may not set both.
EXCLUSIVE = {"context": "waves", "waves": "context"}
VERIFY_KEYS = ("path", "url", "expect", "successes", "timeout")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_NOT_IN_BRANCH_NAMES = re.compile(r"[\x00-\x20\x7f~^:\\]")


@dataclass(frozen=True)
class BranchEntry:
    """One ``branches:`` entry: a glob over branch names and the settings it sets."""

    pattern: str
    settings: Mapping[str, Any]
    line: int
    lines: Mapping[str, int] = field(default_factory=dict)  # setting -> its line

    def matches(self, branch: str) -> bool:
        """fnmatch-style, case-sensitive like git; ``*`` also matches ``/``."""
        return fnmatchcase(branch, self.pattern)


@dataclass(frozen=True)
class RepoConfig:
    """A parsed, validated config file. Values are normalised (``timeout`` in seconds)."""

    path: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    branches: tuple[BranchEntry, ...] = ()
    lines: Mapping[str, int] = field(default_factory=dict)  # top-level setting -> its line

    def branch_entry_for(self, branch: str) -> BranchEntry | None:
        """The first entry, in file order, whose pattern matches the branch."""
        return next((entry for entry in self.branches if entry.matches(branch)), None)

    def where(self, key: str, branch: str) -> str | None:
        """``path, line N`` of the value ``settings_for(branch)`` gives ``key``, so an error
        about that value can say where it came from."""
        entry = self.branch_entry_for(branch)
        if entry is not None and key in entry.settings:
            line = entry.lines.get(key) if entry.settings[key] is not None else None
        else:
            line = self.lines.get(key)
        return f"{self.path}, line {line}" if line else None

    def settings_for(self, branch: str) -> dict[str, Any]:
        """Top-level settings with the matching branch entry over them (null drops a key)."""
        result = dict(self.settings)
        entry = self.branch_entry_for(branch)
        if entry is not None:
            for key, value in entry.settings.items():
                if key in EXCLUSIVE and value is not None:
                    result.pop(EXCLUSIVE[key], None)
                if value is None:
                    result.pop(key, None)
                else:
                    result[key] = value
        return result


def merge_settings(
    flags: Mapping[str, Any], file_settings: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Flags over the file over defaults; a flag of ``None`` means "not given"."""
    merged = dict(defaults)
    merged.update({k: v for k, v in file_settings.items() if v is not None})
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged


def setting_sources(
    flags: Mapping[str, Any], file_settings: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, str]:
    """Where each merged value came from (``flag``, ``file``, ``default``), for output."""
    sources = {k: "default" for k in defaults}
    sources.update({k: "file" for k, v in file_settings.items() if v is not None})
    sources.update({k: "flag" for k, v in flags.items() if v is not None})
    return sources


def load_repo_config(root: str) -> RepoConfig | None:
    """Read ``.restart-backend.yaml`` in ``root``; None when there is none (that is normal)."""
    path = os.path.join(root, CONFIG_FILE_NAME)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not UTF-8"
        raise UsageError(f"Cannot read {path}: {reason}", "Fix or remove the file") from None
    return parse_repo_config(text, path)


def parse_repo_config(text: str, path: str = CONFIG_FILE_NAME) -> RepoConfig:
    """Parse and validate the file's text; every error names the file, line and key."""
    loader = BudgetedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None or _is_null(root):
            return RepoConfig(path=path)
        if not isinstance(root, yaml.MappingNode):
            raise _error(path, root, None, "the file must be a mapping of settings")
        settings: dict[str, Any] = {}
        lines: dict[str, int] = {}
        branches: tuple[BranchEntry, ...] = ()
        for key, key_node, value_node in _pairs(loader, path, root):
            if key == BRANCHES_KEY:
                branches = _branches(loader, path, value_node)
            else:
                value = _setting(loader, path, key, key_node, value_node, top_level=True)
                if value is not None:
                    settings[key] = value
                    lines[key] = key_node.start_mark.line + 1
        _refuse_both(path, settings, lines)
        return RepoConfig(path=path, settings=settings, branches=branches, lines=lines)
    except yaml.YAMLError as err:
        raise usage_error(err, path, "Fix the YAML syntax at that line") from None
    finally:
        loader.dispose()


def _pairs(loader: yaml.SafeLoader, path: str, node: yaml.MappingNode):
    """(key, key node, value node) for string keys; duplicates and other keys are errors."""
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise _error(path, key_node, None, f"keys must be strings, not {shown(key)}")
        if key in seen:
            raise _error(path, key_node, key, f"duplicate key (first on line {seen[key]})")
        seen[key] = key_node.start_mark.line + 1
        yield key, key_node, value_node


def _branches(loader: yaml.SafeLoader, path: str, node: yaml.Node) -> tuple[BranchEntry, ...]:
    """``branches:`` as a mapping of glob -> settings, file order kept."""
    if _is_null(node):
        return ()
    if not isinstance(node, yaml.MappingNode):
        raise _error(path, node, BRANCHES_KEY, "must map branch patterns to settings")
    entries = []
    for pattern, key_node, value_node in _pairs(loader, path, node):
        problem = _glob_problem(pattern)
        if problem:
            raise _error(path, key_node, f"{BRANCHES_KEY}.{pattern}", problem)
        settings: dict[str, Any] = {}
        lines: dict[str, int] = {}
        if not _is_null(value_node):
            if not isinstance(value_node, yaml.MappingNode):
                raise _error(
                    path, value_node, f"{BRANCHES_KEY}.{pattern}", "must be a mapping of settings"
                )
            for key, inner_key_node, inner_value_node in _pairs(loader, path, value_node):
                settings[key] = _setting(
                    loader, path, key, inner_key_node, inner_value_node, top_level=False
                )
                lines[key] = inner_key_node.start_mark.line + 1
        _refuse_both(path, {k: v for k, v in settings.items() if v is not None}, lines)
        entries.append(BranchEntry(pattern, settings, key_node.start_mark.line + 1, lines))
    return tuple(entries)


def _refuse_both(path: str, settings: Mapping[str, Any], lines: Mapping[str, int]) -> None:
    """``context:`` and ``waves:`` at one level: which clusters would be restarted?"""
    if "context" in settings and "waves" in settings:
        raise UsageError(
            f"{path}: line {lines['waves']}: key 'waves': cannot be set beside 'context' "
            f"(line {lines['context']}): both choose the clusters",
            "keep one: context: for one cluster, waves: for several",
        )


def _glob_problem(pattern: str) -> str | None:
    """Why a branch pattern can never mean what the user wrote, or None if it is fine."""
    if not pattern:
        return "an empty pattern matches no branch"
    if _NOT_IN_BRANCH_NAMES.search(pattern):
        return "contains characters git never allows in branch names (space, ~, ^, :, \\)"
    i = 0
    while i < len(pattern):
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if pattern[j : j + 1] == "!":
            j += 1
        if pattern[j : j + 1] == "]":  # a ']' first in a set is a literal member
            j += 1
        close = pattern.find("]", j)
        if close == -1:
            return "has a '[' without a closing ']'"
        i = close + 1
    return None


def _setting(
    loader: yaml.SafeLoader,
    path: str,
    key: str,
    key_node: yaml.Node,
    value_node: yaml.Node,
    *,
    top_level: bool,
) -> Any:
    """Validate and normalise one setting's value (None: not set / drop)."""
    if key not in SETTING_KEYS:
        allowed = SETTING_KEYS + ((BRANCHES_KEY,) if top_level else ())
        close = difflib.get_close_matches(key, allowed, n=1)
        maybe = f" (did you mean {shown(close[0])}?)" if close else ""
        raise UsageError(
            f"{path}: line {key_node.start_mark.line + 1}: unknown key {shown(key)}{maybe}",
            f"Known keys: {', '.join(allowed)}",
        )
    value = loader.construct_object(value_node, deep=True)
    if value is None:
        return None
    problem = _VALIDATORS[key](value)
    if isinstance(problem, str):
        raise _error(path, value_node, key, problem)
    return problem.value


@dataclass(frozen=True)
class _Ok:
    value: Any


def _string(
    pattern: re.Pattern[str] | None, what: str, max_length: int = 253
) -> Callable[[Any], _Ok | str]:
    def check(value: Any) -> _Ok | str:
        if not isinstance(value, str) or not value.strip():
            return f"must be a non-empty string, not {shown(value)}"
        if pattern is not None and (len(value) > max_length or not pattern.match(value)):
            return f"{shown(value)} is not a valid {what}"
        return _Ok(value)

    return check


def _selector(value: Any) -> _Ok | str:
    """The API server's label-selector grammar, checked here so the line can be named."""
    checked = _string(None, "label selector")(value)
    if isinstance(checked, str):
        return checked
    problem = selector_problem(value)
    return f"not a valid label selector: {problem}" if problem else checked


def _timeout(value: Any) -> _Ok | str:
    if isinstance(value, bool):
        return f"must be a duration like 90s or 2m, not {shown(value)}"
    if isinstance(value, (int, float)):
        return _Ok(float(value)) if value >= 0 else "must not be negative"
    if isinstance(value, str):
        try:
            return _Ok(parse_duration(value))
        except UsageError as err:
            return err.message
    return f"must be a duration like 90s or 2m, not {shown(value)}"


def _logs(value: Any) -> _Ok | str:
    if isinstance(value, bool):
        return _Ok(value)
    if isinstance(value, int) and value >= 0:
        return _Ok(value)
    return f"must be true, false or a number of lines, not {shown(value)}"


def _count(value: Any) -> _Ok | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return _Ok(value)
    return f"must be a whole number, 0 or more, not {value!r}"


def _workload_list(value: Any) -> _Ok | str:
    """``workloads:``: a list of KIND/NAME (a plain NAME is a Deployment), as -w takes them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return f"must be a list of workloads like deployment/api, not {shown(value)}"
    for item in items:
        problem = _workload_name(item)
        if problem:
            return problem
    return _Ok(tuple(items))


def _order(value: Any) -> _Ok | str:
    """``order:``: waves, each a workload name (``api``, ``statefulset/cache``) or a list of
    names restarted together."""
    if not isinstance(value, list) or not value:
        return f"must be a list of workload names (waves), not {shown(value)}"
    waves = []
    for entry in value:
        names = entry if isinstance(entry, list) else [entry]
        if not names:
            return "a wave must name at least one workload"
        for name in names:
            problem = _workload_name(name)
            if problem:
                return problem
        waves.append(entry if isinstance(entry, str) else tuple(entry))
    return _Ok(tuple(waves))


def _waves(value: Any) -> _Ok | str:
    """``waves:``: cluster waves, each ``{contexts: [NAME, ...]}``, restarted one after the
    other; a context appears once in all of them."""
    shape = "a list like [{contexts: [staging]}, {contexts: [prod-eu, prod-us]}]"
    if not isinstance(value, list) or not value:
        return f"must be {shape}, not {shown(value)}"
    waves, seen = [], set()
    for number, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or set(entry) != {"contexts"}:
            return f"wave {number} must be a mapping with one key, contexts, not {shown(entry)}"
        contexts = entry["contexts"]
        contexts = [contexts] if isinstance(contexts, str) else contexts
        if not isinstance(contexts, list) or not contexts:
            return f"wave {number} must name at least one context (contexts: [NAME, ...])"
        for context in contexts:
            if not isinstance(context, str) or not context.strip():
                return f"wave {number}: a context must be a non-empty name, not {shown(context)}"
            if context in seen:
                return f"context {shown(context)} is in two waves (each cluster restarts once)"
            seen.add(context)
        waves.append(tuple(contexts))
    return _Ok(tuple(waves))


def _workload_name(item: Any) -> str:
    if not isinstance(item, str):
        return f"a workload must be a name like deployment/api, not {shown(item)}"
    try:
        parse_workload(item)
    except PluginError as err:
        return err.message
    return ""


def _flag(value: Any) -> _Ok | str:
    if isinstance(value, bool):
        return _Ok(value)
    return f"must be true or false, not {value!r}"


def _verify(value: Any) -> _Ok | str:
    """``true``/``false``, or a mapping of path, url, expect, successes, timeout (on)."""
    if isinstance(value, bool):
        return _Ok({"enabled": value})
    if not isinstance(value, dict):
        return (
            "must be true, false or a mapping (verify: {path: /healthz, expect: 200, "
            f"successes: 3}}), not {shown(value)}"
        )
    checks: dict[str, Callable[[Any], _Ok | str]] = {
        "path": _string(None, "path"),
        "url": _verify_url,
        "expect": _expect,
        "successes": _positive,
        "timeout": _timeout,
    }
    normal: dict[str, Any] = {"enabled": True}
    for key, inner in value.items():
        if key not in checks:
            return f"unknown key {shown(key)} in verify (known: {', '.join(VERIFY_KEYS)})"
        if inner is None:
            continue
        checked = checks[key](inner)
        if isinstance(checked, str):
            return f"verify.{key}: {checked}"
        normal[key] = checked.value
    return _Ok(normal)


def _verify_url(value: Any) -> _Ok | str:
    from .verify import url_problem

    if not isinstance(value, str):
        return f"must be a URL, not {shown(value)}"
    problem = url_problem(value)
    return problem if problem else _Ok(value)


def _expect(value: Any) -> _Ok | str:
    from .verify import parse_expectation

    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"must be statuses like 200, 2xx or 200,204, not {shown(value)}"
    try:
        return _Ok(parse_expectation(value).text)
    except ValueError as err:
        return str(err)


def _positive(value: Any) -> _Ok | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return _Ok(value)
    return f"must be a whole number, 1 or more, not {value!r}"


def expand_verify(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``verify`` mapping as the flags' settings (``verify``, ``verify_path``, ...), so
    flags and the file merge key by key."""
    expanded = {key: value for key, value in settings.items() if key != "verify"}
    verify = settings.get("verify")
    if isinstance(verify, Mapping):
        expanded["verify"] = verify.get("enabled", True)
        for key in VERIFY_KEYS:
            if verify.get(key) is not None:
                expanded[f"verify_{key}"] = verify[key]
    return expanded


_VALIDATORS: dict[str, Callable[[Any], _Ok | str]] = {
    "context": _string(None, "context name"),
    "namespace": _string(_DNS_LABEL, "namespace name", max_length=63),
    "deployment": _string(_DNS_SUBDOMAIN, "Deployment name"),
    "selector": _selector,
    "timeout": _timeout,
    "logs": _logs,
    "max-restarts": _count,
    "max-pull-failures": _count,
    "config-grace": _timeout,
    "unschedulable-grace": _timeout,
    "fail-fast": _flag,
    "verify": _verify,
    "settle": _timeout,
    "workloads": _workload_list,
    "order": _order,
    "delete-pods": _flag,
    "waves": _waves,
}


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _error(path: str, node: yaml.Node, key: str | None, problem: str) -> UsageError:
    where = f"line {node.start_mark.line + 1}"
    what = f"key {shown(key)}: " if key else ""
    return UsageError(f"{path}: {where}: {what}{problem}", "Fix the value on that line")
