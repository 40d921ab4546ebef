"""Repo and branch from real git checkouts made in tmp_path (git itself, no doubles)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.gitrepo import (
    CI_BRANCH_VARIABLES,
    branch_name_problem,
    read_git_context,
)

SECRET = "glpat-Pl4nt3dS3cr3t"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A hermetic environment: own HOME, no system git config, a git identity."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(tmp_path: Path, env, origin: str | None, *, commit: bool = True) -> Path:
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    if origin is not None:
        git(repo, env, "remote", "add", "origin", origin)
    if commit:
        (repo / "README").write_text("x\n")
        git(repo, env, "add", "README")
        git(repo, env, "commit", "-q", "-m", "init")
    return repo


def detach(repo: Path, env) -> None:
    git(repo, env, "checkout", "-q", "--detach", "HEAD")


def test_https_origin_and_current_branch(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/Acme/Shop.git")
    ctx = read_git_context(str(repo), env)
    assert (ctx.repo.owner, ctx.repo.name, ctx.branch, ctx.branch_source) == (
        "Acme",
        "Shop",
        "main",
        "git",
    )
    assert ctx.root == str(repo)


def test_runs_from_a_subdirectory(tmp_path, env):
    repo = make_repo(tmp_path, env, "git@github.com:acme/shop.git")
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    ctx = read_git_context(str(sub), env)
    assert (str(ctx.repo), ctx.root) == ("acme/shop", str(repo))


def test_credentials_in_origin_never_reach_the_context(tmp_path, env):
    repo = make_repo(tmp_path, env, f"https://oauth2:{SECRET}@gitlab.com/group/sub/shop.git")
    ctx = read_git_context(str(repo), env)
    assert str(ctx.repo) == "group/sub/shop"
    assert SECRET not in repr(ctx)


def test_insteadof_rewrite_is_honoured(tmp_path, env):
    repo = make_repo(tmp_path, env, "corp:shop.git")
    git(repo, env, "config", "url.https://git.corp.example/platform/.insteadOf", "corp:")
    ctx = read_git_context(str(repo), env)
    assert (ctx.repo.host, str(ctx.repo)) == ("git.corp.example", "platform/shop")


def test_feature_branch_with_slashes(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    git(repo, env, "checkout", "-q", "-b", "feature/JIRA-1_x")
    assert read_git_context(str(repo), env).branch == "feature/JIRA-1_x"


@pytest.mark.parametrize("variable", CI_BRANCH_VARIABLES)
def test_detached_head_takes_branch_from_ci_variable(tmp_path, env, variable):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    ctx = read_git_context(str(repo), {**env, variable: "release/2.0"})
    assert (ctx.branch, ctx.branch_source) == ("release/2.0", variable)


def test_github_head_ref_beats_ref_name_on_pull_requests(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    ci = {"GITHUB_HEAD_REF": "feature/x", "GITHUB_REF_NAME": "17/merge"}
    ctx = read_git_context(str(repo), {**env, **ci})
    assert (ctx.branch, ctx.branch_source) == ("feature/x", "GITHUB_HEAD_REF")


def test_empty_github_head_ref_is_skipped(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    ctx = read_git_context(str(repo), {**env, "GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main"})
    assert (ctx.branch, ctx.branch_source) == ("main", "GITHUB_REF_NAME")


def test_ci_variables_are_ignored_on_a_checked_out_branch(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    ctx = read_git_context(str(repo), {**env, "BRANCH_NAME": "other"})
    assert (ctx.branch, ctx.branch_source) == ("main", "git")


def test_detached_head_without_ci_variable_names_branch_flag(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    with pytest.raises(UsageError) as caught:
        read_git_context(str(repo), env)
    assert "detached" in caught.value.message
    assert "--branch" in caught.value.hint


def test_detached_head_with_branch_override(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    ctx = read_git_context(str(repo), env, branch_override="hotfix")
    assert (str(ctx.repo), ctx.branch, ctx.branch_source) == ("acme/shop", "hotfix", "--branch")


def test_no_origin_remote_names_repo_flag_and_remote_add(tmp_path, env):
    repo = make_repo(tmp_path, env, None)
    with pytest.raises(UsageError) as caught:
        read_git_context(str(repo), env)
    assert "origin" in caught.value.message
    assert "--repo" in caught.value.hint and "git remote add origin" in caught.value.hint


def test_other_remote_but_no_origin(tmp_path, env):
    repo = make_repo(tmp_path, env, None)
    git(repo, env, "remote", "add", "upstream", "https://github.com/acme/shop")
    with pytest.raises(UsageError, match="no 'origin' remote"):
        read_git_context(str(repo), env)


def test_not_a_git_checkout_names_repo_flag(tmp_path, env):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError) as caught:
        read_git_context(str(plain), env)
    assert "Not a git checkout" in caught.value.message
    assert "--repo" in caught.value.hint


def test_inside_the_git_dir_is_not_a_checkout(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    with pytest.raises(UsageError, match="Not a git checkout"):
        read_git_context(str(repo / ".git"), env)


def test_missing_directory(tmp_path, env):
    with pytest.raises(UsageError, match="does not exist"):
        read_git_context(str(tmp_path / "nope"), env)


@pytest.mark.parametrize(
    "origin",
    [f"https://user:{SECRET}@github.com/", "https://github.com/just-owner", "ftp://x/a/b"],
)
def test_origin_that_is_not_a_repo_url(tmp_path, env, origin):
    repo = make_repo(tmp_path, env, origin)
    with pytest.raises(UsageError) as caught:
        read_git_context(str(repo), env)
    err = caught.value
    assert "not a repository URL" in err.message and "--repo" in err.hint
    assert SECRET not in f"{err.message} {err.hint} {err!r} {err.__cause__}"


def test_repo_override_with_bad_origin(tmp_path, env):
    repo = make_repo(tmp_path, env, "not a url")
    ctx = read_git_context(str(repo), env, repo_override="acme/shop")
    assert (str(ctx.repo), ctx.repo_source, ctx.branch) == ("acme/shop", "--repo", "main")


def test_empty_repository_is_an_error_unless_branch_given(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop", commit=False)
    with pytest.raises(UsageError) as caught:
        read_git_context(str(repo), env)
    assert "no commits" in caught.value.message and "--branch" in caught.value.hint
    ctx = read_git_context(str(repo), env, branch_override="main")
    assert (str(ctx.repo), ctx.branch) == ("acme/shop", "main")


@pytest.mark.parametrize(
    "branch", ["$(touch${IFS}pwned)", "`touch${IFS}pwned`", "x;touch${IFS}pwned", "a|b&c"]
)
def test_hostile_branch_names_from_git_are_data(tmp_path, env, branch):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    git(repo, env, "checkout", "-q", "-b", branch)
    ctx = read_git_context(str(repo), env)
    assert ctx.branch == branch
    assert not list(tmp_path.rglob("pwned"))


def test_branch_that_looks_like_an_option_is_data(tmp_path, env):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    ref = "refs/heads/--upload-pack=touch${IFS}pwned"
    git(repo, env, "update-ref", ref, "HEAD")
    git(repo, env, "symbolic-ref", "HEAD", ref)
    ctx = read_git_context(str(repo), env)
    assert ctx.branch == "--upload-pack=touch${IFS}pwned"
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize("value", ["main\nFAKE LINE", "a\x1b[31mred", "a\tb"])
def test_control_characters_in_branch_are_rejected(tmp_path, env, value):
    repo = make_repo(tmp_path, env, "https://github.com/acme/shop")
    detach(repo, env)
    with pytest.raises(UsageError) as caught:
        read_git_context(str(repo), {**env, "BRANCH_NAME": value + "x"})
    assert "control characters" in caught.value.message
    with pytest.raises(UsageError):
        read_git_context(str(repo), env, branch_override=value)


def test_both_overrides_need_no_git_at_all(tmp_path, env):
    plain = tmp_path / "plain"
    plain.mkdir()
    no_git = {**env, "PATH": str(tmp_path / "empty-bin")}
    ctx = read_git_context(str(plain), no_git, repo_override="acme/shop", branch_override="dev")
    assert (str(ctx.repo), ctx.branch, ctx.branch_source, ctx.root) == (
        "acme/shop",
        "dev",
        "--branch",
        str(plain),
    )


def test_git_not_installed(tmp_path, env):
    plain = tmp_path / "plain"
    plain.mkdir()
    no_git = {**env, "PATH": str(tmp_path / "empty-bin")}
    with pytest.raises(UsageError) as caught:
        read_git_context(str(plain), no_git, repo_override="acme/shop")
    assert "git is not installed" in caught.value.message
    assert "--branch" in caught.value.hint


def test_malformed_repo_override_is_rejected_before_git(tmp_path, env):
    with pytest.raises(UsageError, match="OWNER/NAME"):
        read_git_context(str(tmp_path), env, repo_override="shop", branch_override="main")


BRANCH_NAMES = [
    "main", "feature/x", "release/1.2", "日本語ブランチ", "___", "☃", "fix_bug.v2", "a-b",
    "...", "-", "-x", "a b", "a..b", "a/", "/a", ".hidden", "a/.b", "x.lock", "a/b.lock/c",
    "a@{1}", "a@b", "HEAD", "a:b", "a~1", "a^", "a?", "a*", "a[b", "a\\b", "a//b", "x.",
]  # fmt: skip


@pytest.mark.parametrize("name", BRANCH_NAMES)
def test_branch_name_rules_agree_with_git(name, env, tmp_path):
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name], cwd=tmp_path, env=env, capture_output=True
    )
    assert (branch_name_problem(name) is None) == (done.returncode == 0)


@pytest.mark.parametrize("name", ["a..b", "-x", "x.lock", "HEAD"])
def test_branch_flag_git_would_refuse_is_an_error(tmp_path, env, name):
    with pytest.raises(UsageError) as caught:
        read_git_context(str(tmp_path), env, repo_override="acme/shop", branch_override=name)
    assert "not one git allows" in caught.value.message and "--branch" in caught.value.hint
