"""Which repository a git remote URL names: ``RepoRef(host, owner, name)``.

The Deployment is linked to ``owner/name`` (see ``labels.py``), so every common way of
writing the same remote (https with or without ``.git``, ssh, scp-like, GitLab subgroups,
Azure DevOps, local paths) must give the same owner and name. Remote URLs often carry
credentials (``https://user:token@host/...``); they are dropped while parsing, and
``redact_url`` is the only form of a URL that may appear in a message.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import UsageError, shown

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_REMOTE_SCHEMES = {"http", "https", "ssh", "git", "git+ssh", "ssh+git"}
_SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}
# scp-like syntax: [user@]host:path, where no '/' comes before the ':' (git's own rule).
_SCP_RE = re.compile(r"^(?:(?P<user>[^@/]*)@)?(?P<host>[^@/:\s]+):(?P<path>[^/].*|/.*)$")
_PLAIN_USER_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_OWNER_NAME_RE = re.compile(r"^[\w.~-]+(?:/[\w.~-]+)+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_REPO_HINT = "Pass --repo OWNER/NAME, or fix the URL with: git remote set-url origin URL"


@dataclass(frozen=True)
class RepoRef:
    """A repository identity. ``host`` is empty for local paths and for ``--repo OWNER/NAME``."""

    host: str
    owner: str
    name: str

    @property
    def slug_source(self) -> str:
        """The exact value the repo label is computed from (and the annotation carries)."""
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.slug_source

    def same_repo(self, other: RepoRef) -> bool:
        """Owner and name equal ignoring case (hosts treat them case-insensitively).

        The host is not compared: the label and annotation only carry ``owner/name``.
        """
        return self.slug_source.lower() == other.slug_source.lower()


def redact_url(url: str) -> str:
    """The URL with any credentials replaced by ``***`` (safe to print).

    ``git@`` style ssh user names are kept: they are not secrets and help people recognise
    the URL. Query strings are hidden too (some hosts accept tokens there).
    """
    text = url.strip()
    match = _SCHEME_RE.match(text)
    if match:
        scheme = match.group(1).lower()
        rest = text[match.end() :]
        authority_end = len(rest)
        for sep in "/?#":
            pos = rest.find(sep)
            if pos != -1:
                authority_end = min(authority_end, pos)
        authority, tail = rest[:authority_end], rest[authority_end:]
        if "@" in authority:
            userinfo, hostport = authority.rsplit("@", 1)
            keep = scheme in _SSH_SCHEMES and _PLAIN_USER_RE.match(userinfo)
            authority = f"{userinfo if keep else '***'}@{hostport}"
        return f"{match.group(1)}://{authority}{_hide_query(tail)}"
    if "@" in text:
        # scp-like "git@host:path" keeps its plain user name; anything else before an '@'
        # (a "user:token", or a mangled "https//token") is hidden entirely.
        user, after = text.rsplit("@", 1)
        shown_user = user if _PLAIN_USER_RE.match(user) else "***"
        return f"{shown_user}@{_hide_query(after)}"
    return _hide_query(text)


def _hide_query(text: str) -> str:
    """Replace a query string's content: it is never part of a repository's identity."""
    pos = text.find("?")
    return text if pos == -1 else text[:pos] + "?***"


def parse_remote_url(url: str, base_dir: str | None = None) -> RepoRef:
    """Parse a git remote URL (any common form) into host, owner and name.

    Relative local paths (``../shop``) are resolved against ``base_dir`` (the checkout's
    root; the current directory when not given), as git resolves them.
    Raises ``UsageError`` (credentials redacted) for anything that is not a repo URL.
    """
    text = url.strip()
    if not text or _CONTROL_RE.search(text):
        raise _not_a_repo(url)
    match = _SCHEME_RE.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            return _parse_file_url(text, url, base_dir)
        if scheme not in _REMOTE_SCHEMES:
            raise _not_a_repo(url, f"unsupported scheme {scheme}://")
        return _parse_hierarchical(text, url)
    if text.startswith(("/", "./", "../")) or text in (".", ".."):
        return _parse_local_path(text, url, base_dir)
    scp = _SCP_RE.match(text)
    if scp and len(scp.group("host")) > 1:  # a one-letter "host" is a Windows drive (C:\...)
        host = scp.group("host").lower()
        return _from_path(host, scp.group("path"), url)
    if "/" in text and "@" not in text and ":" not in text and " " not in text:
        return _parse_local_path(text, url, base_dir)
    raise _not_a_repo(url)


def parse_repo_option(value: str) -> RepoRef:
    """Parse ``--repo``: ``OWNER/NAME`` (GitLab subgroups: ``group/sub/name``) or a URL."""
    text = value.strip()
    if _SCHEME_RE.match(text) or "@" in text or ":" in text:
        return parse_remote_url(text)
    if not _OWNER_NAME_RE.match(text):
        raise UsageError(
            f"--repo {shown(redact_url(value))} is not OWNER/NAME",
            "Write it as the repo appears in its URL, e.g. --repo acme/shop",
        )
    parts = text.split("/")
    name = _strip_git_suffix(parts[-1])
    if any(part in (".", "..") for part in parts) or not name:
        raise UsageError(
            f"--repo {shown(value)} is not OWNER/NAME", "Write it like --repo acme/shop"
        )
    return RepoRef(host="", owner="/".join(parts[:-1]), name=name)


def _parse_hierarchical(text: str, original: str) -> RepoRef:
    """http(s)://, ssh://, git://: drop userinfo and port, then read the path."""
    if re.search(r"\s", text):
        raise _not_a_repo(original)
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _not_a_repo(original, "malformed host or port") from None
    if not host:
        raise _not_a_repo(original, "no host")
    return _from_path(host, parts.path, original)


def _from_path(host: str, path: str, original: str) -> RepoRef:
    """Owner and name from a remote path; Azure DevOps layouts get ``org/project``."""
    segments = [unquote(s) for s in path.strip("/").split("/") if s]
    if any(s in (".", "..") or _CONTROL_RE.search(s) for s in segments):
        raise _not_a_repo(original)
    azure = _azure_owner_name(host, segments)
    if azure:
        return RepoRef(host=host, owner=azure[0], name=azure[1])
    if "_git" in segments:
        raise _not_a_repo(original, "expected .../PROJECT/_git/REPO")
    segments = _without_bitbucket_server_prefix(segments)
    if len(segments) < 2:
        raise _not_a_repo(original, "expected OWNER/NAME in the path")
    name = _strip_git_suffix(segments[-1])
    if not name:
        raise _not_a_repo(original)
    # GitLab subgroups: everything before the name is the owner (group/sub).
    if segments[0] == "~":  # ssh "host:~/owner/repo" means a home dir, not an owner
        segments = segments[1:]
        if len(segments) < 2:
            raise _not_a_repo(original)
    return RepoRef(host=host, owner="/".join(segments[:-1]), name=name)


def _without_bitbucket_server_prefix(segments: list[str]) -> list[str]:
    """Bitbucket Server/Data Center serves ``ssh://host:7999/PROJECT/repo.git`` over https as
    ``https://host[/context]/scm/PROJECT/repo.git``: the same repo, so ``scm`` (and any
    context path before it) is not part of the owner. A GitLab group named ``scm`` with
    exactly one project level below it reads the same way; that is the price of agreeing."""
    if len(segments) >= 3 and segments[-3] == "scm":
        return segments[-2:]
    return segments


def _azure_owner_name(host: str, segments: list[str]) -> tuple[str, str] | None:
    """Azure DevOps/TFS: ``.../{org}/{project}/_git/{repo}``, ssh ``v3/{org}/{project}/{repo}``."""
    if host.endswith(("ssh.dev.azure.com", "vs-ssh.visualstudio.com")):
        if len(segments) == 4 and segments[0] == "v3":
            return f"{segments[1]}/{segments[2]}", _strip_git_suffix(segments[3])
        return None
    if "_git" not in segments:
        return None
    idx = segments.index("_git")
    if idx != len(segments) - 2 or idx == 0:
        return None
    before, name = segments[:idx], _strip_git_suffix(segments[idx + 1])
    if host.endswith(".visualstudio.com"):
        org = host.split(".", 1)[0]
        return f"{org}/{before[-1]}", name
    return "/".join(before[-2:]), name


def _parse_file_url(text: str, original: str, base_dir: str | None) -> RepoRef:
    """``file:///srv/git/acme/shop.git`` is the local path it names."""
    path = unquote(urlsplit(text).path)
    if not path:
        raise _not_a_repo(original)
    return _parse_local_path(path, original, base_dir)


def _parse_local_path(path: str, original: str, base_dir: str | None) -> RepoRef:
    """A local repo: owner is the parent directory's name, name the directory's (no .git)."""
    if _CONTROL_RE.search(path):
        raise _not_a_repo(original)
    if not posixpath.isabs(path):
        path = posixpath.join(base_dir if base_dir is not None else os.getcwd(), path)
    norm = posixpath.normpath(path)
    if norm.endswith("/.git"):  # a path to a checkout's .git dir names the checkout
        norm = posixpath.dirname(norm)
    name = _strip_git_suffix(posixpath.basename(norm))
    owner = posixpath.basename(posixpath.dirname(norm))
    if not name or not owner:
        raise _not_a_repo(original, "a local path needs a parent directory and a name")
    return RepoRef(host="", owner=owner, name=name)


def _strip_git_suffix(name: str) -> str:
    """``shop.git`` (or ``shop.GIT``) -> ``shop`` (a bare ``.git`` is not a name)."""
    return name[: -len(".git")] if name.lower().endswith(".git") else name


def _not_a_repo(url: str, why: str = "") -> UsageError:
    """The one error for a bad URL: redacted, one line, hint names ``--repo``."""
    detail = f" ({why})" if why else ""
    return UsageError(f"Not a repository URL: {shown(redact_url(url))}{detail}", _REPO_HINT)
