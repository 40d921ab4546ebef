"""Which repo and branch we are in: ask git, then CI variables, then give up clearly.

This is the only module that runs git. It runs it with argument lists (never a shell),
without a pager or a credential prompt, with a timeout, and never passes a value that came
from outside as an argument: branch names are data (``$(...)`` or ``--upload-pack=...`` are
valid git branch names) and only ever flow into label slugs and annotations.

Empty repository (``git init`` + ``git remote add``, no commit yet): ``git branch
--show-current`` still prints the unborn default branch (``main``/``master``), but that
branch exists nowhere, and restarting the backend of a branch that was never pushed is
almost certainly a mistake, so it is an error unless ``--branch`` says which one.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import UsageError, shown
from .repo_url import RepoRef, parse_remote_url, parse_repo_option, redact_url

GIT_TIMEOUT_SECONDS = 15.0

# Detached HEAD (CI checkouts): where the branch name usually is, best first. GitHub's
# GITHUB_HEAD_REF is the PR's source branch (GITHUB_REF_NAME is then "123/merge").
CI_BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CHECKOUT_HINT = "Run it inside the repo's checkout, or pass --repo OWNER/NAME and --branch NAME"


@dataclass(frozen=True)
class GitContext:
    """The repo and branch to act for, and where each came from (said in output)."""

    repo: RepoRef
    branch: str
    branch_source: str  # "git", "--branch", or the CI variable's name
    root: str  # the checkout's top directory (the current directory if git was not asked)
    repo_source: str = "origin"  # "origin" or "--repo"


def read_git_context(
    cwd: str | None,
    env: Mapping[str, str],
    repo_override: str | None = None,
    branch_override: str | None = None,
    *,
    need_branch: bool = True,
) -> GitContext:
    """Resolve repo and branch: overrides first, then git, then (branch only) CI variables.

    Raises ``UsageError`` with a one-line message and a hint for every way this can fail.
    ``need_branch=False`` (``list``, which covers every branch): a branch nobody can tell
    (detached HEAD, no checkout at all with ``--repo``) is ``""`` with source ``unknown``.
    ``cwd`` may be None (a deleted working directory) when the overrides make the checkout
    moot; the context's ``root`` is then empty: there is no checkout to read a config from.
    """
    repo_override = as_text(repo_override) if repo_override is not None else None
    branch_override = as_text(branch_override) if branch_override is not None else None
    repo = parse_repo_option(repo_override) if repo_override is not None else None
    branch = _checked_branch(branch_override, "--branch") if branch_override is not None else None
    if repo is not None and branch is not None:
        root = os.path.abspath(cwd) if cwd is not None else ""
        return GitContext(repo, branch, "--branch", root, "--repo")
    if cwd is None:
        if repo is not None and not need_branch:
            return GitContext(repo, "", "unknown", "", "--repo")
        raise UsageError("The current directory no longer exists", _CHECKOUT_HINT)

    git = _Git(cwd, env)
    try:
        root = git.toplevel()
    except UsageError:
        if need_branch or repo is None:
            raise
        return GitContext(repo, "", "unknown", os.path.abspath(cwd), "--repo")
    if repo is None:
        repo = _origin_repo(git, root)
        repo_source = "origin"
    else:
        repo_source = "--repo"
    if branch is not None:
        return GitContext(repo, branch, "--branch", root, repo_source)
    try:
        branch, source = _current_branch(git, env)
    except UsageError:
        if need_branch:
            raise
        branch, source = "", "unknown"
    return GitContext(repo, branch, source, root, repo_source)


def as_text(value: str) -> str:
    """A name from argv or the environment as the characters the user typed.

    Under an ASCII locale Python keeps the bytes it could not decode as ``\\udcXX`` escapes;
    sent to the cluster (JSON) or printed in a hint, they would not be the branch's name.
    Names are UTF-8 in practice (git stores them so), so the bytes are decoded as UTF-8.
    """
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate no decoder made: leave the value alone
        return value


def _origin_repo(git: _Git, root: str) -> RepoRef:
    """The origin remote's repo, with ``url.<base>.insteadOf`` applied as git applies it."""
    url = git.output(["remote", "get-url", "--", "origin"])
    if url is None:  # very old git has no get-url; raw config has no insteadOf rewriting
        url = git.output(["config", "--get", "remote.origin.url"])
    if not url:
        raise UsageError(
            "This git checkout has no 'origin' remote",
            "Pass --repo OWNER/NAME, or add one: git remote add origin URL",
        )
    try:
        return parse_remote_url(url, base_dir=root)
    except UsageError as err:
        raise UsageError(
            f"The origin remote is not a repository URL: {shown(redact_url(url))}",
            "Pass --repo OWNER/NAME, or fix it: git remote set-url origin URL",
        ) from err


def _current_branch(git: _Git, env: Mapping[str, str]) -> tuple[str, str]:
    """The checked-out branch; in detached HEAD, the first CI variable that names one."""
    name = git.output(["branch", "--show-current"])
    if name is None:  # git < 2.22
        name = git.output(["symbolic-ref", "--quiet", "--short", "HEAD"]) or ""
    if name:
        if git.output(["rev-parse", "--verify", "--quiet", "HEAD"]) is None:
            raise UsageError(
                f"This repository has no commits yet, so branch {shown(name)} does not exist yet",
                "Commit and push first, or pass --branch NAME",
            )
        return _checked_branch(name, "git"), "git"
    for variable in CI_BRANCH_VARIABLES:
        value = as_text(env.get(variable, ""))
        if value.strip():
            return _checked_branch(value.strip(), variable), variable
    raise UsageError(
        "HEAD is detached and no CI variable names the branch",
        "Pass --branch NAME (or set GITHUB_HEAD_REF, GITHUB_REF_NAME, CI_COMMIT_REF_NAME "
        "or BRANCH_NAME)",
    )


def _checked_branch(name: str, source: str) -> str:
    """Reject what could garble our output, and (from --branch or CI) what git never allows."""
    if not name or _CONTROL_RE.search(name):
        raise UsageError(
            f"The branch name from {source} is empty or contains control characters",
            "Pass --branch NAME with the branch's real name",
        )
    problem = None if source == "git" else branch_name_problem(name)
    if problem:
        raise UsageError(
            f"The branch name {shown(name)} from {source} is not one git allows: {problem}",
            "Pass --branch NAME with the branch's real name (git branch -a lists them)",
        )
    return name


_NOT_IN_REFS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_problem(name: str) -> str | None:
    """git's rules for a branch name (``git check-ref-format --branch``), or None if it fits.

    A name git refuses can never be a branch anyone pushed, so the restart would look for
    labels no Deployment carries; saying so at once is kinder.
    """
    if name.startswith("-"):
        return "it starts with '-'"
    if name in ("HEAD", "@"):
        return f"{name} is not a branch"
    if _NOT_IN_REFS.search(name):
        return "it contains a space or one of ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name:
        return "it contains '..' or '@{'"
    if name.startswith("/") or name.endswith(("/", ".")) or "//" in name:
        return "it starts or ends with '/', ends with '.', or contains '//'"
    if any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        return "a part of it starts with '.' or ends with '.lock'"
    return None


class _Git:
    """Runs read-only git commands in one directory; turns every failure into UsageError."""

    def __init__(self, cwd: str, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.env = {
            **env,
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",  # read-only: never touch the index
            "LC_ALL": "C",
            "LANGUAGE": "C",
        }

    def toplevel(self) -> str:
        """The work tree's root; a clear error outside a checkout (or inside ``.git``)."""
        if not os.path.isdir(self.cwd):
            raise UsageError(f"Directory {shown(self.cwd)} does not exist", _CHECKOUT_HINT)
        done = self.run(["rev-parse", "--show-toplevel"])
        root = _strip_newline(done.stdout)
        if done.returncode == 0 and root:
            return root
        if "dubious ownership" in done.stderr:
            raise UsageError(
                f"git refuses to read {self.cwd}: the checkout belongs to another user",
                "Mark it safe: git config --global --add safe.directory DIR (or pass --repo "
                "and --branch)",
            )
        raise UsageError(f"Not a git checkout: {self.cwd}", _CHECKOUT_HINT)

    def output(self, args: Sequence[str]) -> str | None:
        """stdout without its final newline, or None when git exits non-zero."""
        done = self.run(args)
        return _strip_newline(done.stdout) if done.returncode == 0 else None

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """One git command, read-only, bounded in time; a missing git is a UsageError."""
        command = ["git", "--no-pager", "-c", "core.fsmonitor=false", *args]
        try:
            return subprocess.run(  # noqa: S603 - argument list, no shell
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                encoding="utf-8",  # git writes names as UTF-8, whatever the locale says
                errors="replace",
                timeout=GIT_TIMEOUT_SECONDS,
                shell=False,
                check=False,
            )
        except FileNotFoundError:
            raise UsageError(
                "git is not installed (or not on PATH)",
                "Install git, or pass --repo OWNER/NAME and --branch NAME",
            ) from None
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"git did not answer within {GIT_TIMEOUT_SECONDS:g}s (git {args[0]})",
                "Check the checkout (a lock, a slow network file system), or pass --repo and "
                "--branch",
            ) from None


def _strip_newline(text: str) -> str:
    """git ends its output with one newline; nothing else is stripped (names are data)."""
    return text[:-1] if text.endswith("\n") else text
