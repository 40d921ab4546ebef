"""Every common way of writing a git remote names the same owner/name; no credential leaks."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.errors import UsageError
from kubectl_restart_backend.repo_url import (
    RepoRef,
    parse_remote_url,
    parse_repo_option,
    redact_url,
)

SECRET = "ghp_S3cr3tT0ken"
BASE = "/work/acme/app"

# (url, host, owner, name)
FORMS = [
    ("https://github.com/acme/shop", "github.com", "acme", "shop"),
    ("https://github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("https://github.com/acme/shop/", "github.com", "acme", "shop"),
    ("https://github.com/acme/shop.git/", "github.com", "acme", "shop"),
    ("http://git.example.com/acme/shop.git", "git.example.com", "acme", "shop"),
    ("https://GitHub.com/Acme/Shop.git", "github.com", "Acme", "Shop"),
    (f"https://x-access-token:{SECRET}@github.com/acme/shop.git", "github.com", "acme", "shop"),
    (f"https://{SECRET}@github.com/acme/shop.git", "github.com", "acme", "shop"),
    (f"https://oauth2:{SECRET}@gitlab.com/acme/shop.git", "gitlab.com", "acme", "shop"),
    (
        f"https://user:{SECRET}@git.example.com:8443/acme/shop.git",
        "git.example.com",
        "acme",
        "shop",
    ),
    ("https://git.example.com:8443/acme/shop", "git.example.com", "acme", "shop"),
    ("https://[::1]:8443/acme/shop.git", "::1", "acme", "shop"),
    ("ssh://git@github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("ssh://git@github.com:22/acme/shop.git", "github.com", "acme", "shop"),
    ("ssh://github.com/acme/shop", "github.com", "acme", "shop"),
    (f"ssh://git:{SECRET}@github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("git+ssh://git@github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("ssh+git://git@github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("git://github.com/acme/shop.git", "github.com", "acme", "shop"),
    ("git@github.com:acme/shop.git", "github.com", "acme", "shop"),
    ("git@github.com:acme/shop", "github.com", "acme", "shop"),
    ("git@github.com:/acme/shop.git", "github.com", "acme", "shop"),
    ("github.com:acme/shop.git", "github.com", "acme", "shop"),
    ("gitea:acme/shop", "gitea", "acme", "shop"),
    ("git@gitlab.com:group/sub/shop.git", "gitlab.com", "group/sub", "shop"),
    ("https://gitlab.com/group/sub/deeper/shop.git", "gitlab.com", "group/sub/deeper", "shop"),
    (
        "ssh://git@gitlab.example.com:2222/group/sub/shop.git",
        "gitlab.example.com",
        "group/sub",
        "shop",
    ),
    ("https://dev.azure.com/acme/Web%20Shop/_git/shop", "dev.azure.com", "acme/Web Shop", "shop"),
    ("https://acme@dev.azure.com/acme/webshop/_git/shop", "dev.azure.com", "acme/webshop", "shop"),
    ("git@ssh.dev.azure.com:v3/acme/webshop/shop", "ssh.dev.azure.com", "acme/webshop", "shop"),
    (
        "acme@vs-ssh.visualstudio.com:v3/acme/webshop/shop",
        "vs-ssh.visualstudio.com",
        "acme/webshop",
        "shop",
    ),
    (
        "https://acme.visualstudio.com/webshop/_git/shop",
        "acme.visualstudio.com",
        "acme/webshop",
        "shop",
    ),
    (
        "https://acme.visualstudio.com/DefaultCollection/webshop/_git/shop",
        "acme.visualstudio.com",
        "acme/webshop",
        "shop",
    ),
    (
        "https://tfs.corp.example/tfs/Main/webshop/_git/shop",
        "tfs.corp.example",
        "Main/webshop",
        "shop",
    ),
    ("/srv/git/acme/shop.git", "", "acme", "shop"),
    ("/srv/git/acme/shop", "", "acme", "shop"),
    ("/srv/git/acme/shop/.git", "", "acme", "shop"),
    ("../shop", "", "acme", "shop"),
    ("../../other/shop.git", "", "other", "shop"),
    ("./vendor/shop", "", "vendor", "shop"),
    ("file:///srv/git/acme/shop.git", "", "acme", "shop"),
    ("file:///srv/git/acme/shop.git/", "", "acme", "shop"),
    ("  https://github.com/acme/shop.git\n", "github.com", "acme", "shop"),
    # Bitbucket Server / Data Center: https has /scm/ (and maybe a context path), ssh a port.
    ("https://bitbucket.example.com/scm/acme/shop.git", "bitbucket.example.com", "acme", "shop"),
    ("https://host.example/bitbucket/scm/acme/shop.git", "host.example", "acme", "shop"),
    ("ssh://git@bitbucket.example.com:7999/acme/shop.git", "bitbucket.example.com", "acme", "shop"),
    ("https://host.example/scm/~jdoe/shop.git", "host.example", "~jdoe", "shop"),
    ("https://github.com/acme/shop.GIT", "github.com", "acme", "shop"),
    ("git@github.com:acme/shop.Git", "github.com", "acme", "shop"),
    ("/srv/git/acme/shop.GIT", "", "acme", "shop"),
]


@pytest.mark.parametrize("url, host, owner, name", FORMS)
def test_parse_remote_url_gives_owner_and_name(url, host, owner, name):
    ref = parse_remote_url(url, base_dir=BASE)
    assert (ref.host, ref.owner, ref.name) == (host, owner, name)
    assert str(ref) == f"{owner}/{name}"
    assert SECRET not in repr(ref)


@pytest.mark.parametrize("url", [u for u, *_ in FORMS])
def test_redacted_url_never_shows_a_credential(url):
    assert SECRET not in redact_url(url)


@pytest.mark.parametrize(
    "url, redacted",
    [
        (f"https://user:{SECRET}@github.com/a/b.git", "https://***@github.com/a/b.git"),
        (f"https://{SECRET}@github.com/a/b.git", "https://***@github.com/a/b.git"),
        (f"https://u:p%40ss{SECRET}@h/a/b", "https://***@h/a/b"),
        (f"https://u:p@ss{SECRET}@h/a/b", "https://***@h/a/b"),
        (f"ssh://git:{SECRET}@h/a/b", "ssh://***@h/a/b"),
        ("ssh://git@github.com:22/a/b.git", "ssh://git@github.com:22/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        (f"deploy:{SECRET}@host:a/b.git", "***@host:a/b.git"),
        (f"https//{SECRET}@github.com/a/b", "***@github.com/a/b"),
        (f"https://github.com/a/b.git?private_token={SECRET}", "https://github.com/a/b.git?***"),
        ("https://github.com/a/b.git", "https://github.com/a/b.git"),
        ("/srv/git/acme/shop.git", "/srv/git/acme/shop.git"),
    ],
)
def test_redact_url_hides_userinfo_but_keeps_ssh_user(url, redacted):
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "not a url",
        "shop",
        "https://github.com/",
        "https://github.com/acme",
        f"https://user:{SECRET}@github.com/acme",
        f"https://user:{SECRET}@:443/acme/shop",
        f"https://user:{SECRET}@github.com:99999/acme/shop",
        "https://github.com/acme/.git",
        "https://github.com/acme/../shop",
        "ftp://example.com/acme/shop.git",
        f"ftp://u:{SECRET}@example.com/acme/shop.git",
        "https://github.com/acme/shop\nrm -rf /",
        "git@github.com:shop.git",
        "/shop.git",
        "https://dev.azure.com/acme/_git",
        "file:///srv/git/acme/sh%0Aop.git",
        "https://github.com/acme/sh%0Aop.git",
    ],
)
def test_parse_remote_url_rejects_what_is_not_a_repo_and_hides_credentials(url):
    with pytest.raises(UsageError) as caught:
        parse_remote_url(url, base_dir=BASE)
    err = caught.value
    assert SECRET not in err.message and SECRET not in err.hint and SECRET not in str(err)
    assert "\n" not in err.message
    assert "--repo" in err.hint


def test_relative_local_path_resolves_against_the_checkout():
    assert parse_remote_url("../shop", base_dir="/srv/checkouts/acme/app").owner == "acme"


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://github.com/Acme/Shop.git", "git@github.com:acme/shop.git", True),
        ("https://github.com/acme/shop", "https://github.com/acme/shop2", False),
        ("https://github.com/acme/shop", "https://github.com/other/shop", False),
        ("git@gitlab.com:Group/Sub/Shop.git", "https://gitlab.com/group/sub/shop", True),
        ("https://h.example/scm/acme/shop.git", "ssh://git@h.example:7999/acme/shop.git", True),
        ("https://h.example/scm/ACME/shop.GIT", "ssh://git@h.example:7999/acme/shop.git", True),
    ],
)
def test_same_repo_ignores_case_and_form(a, b, same):
    assert parse_remote_url(a).same_repo(parse_remote_url(b)) is same


def test_same_repo_with_repo_option():
    assert parse_repo_option("ACME/shop").same_repo(parse_remote_url("git@h.com:acme/shop.git"))


@pytest.mark.parametrize(
    "value, owner, name",
    [
        ("acme/shop", "acme", "shop"),
        ("acme/shop.git", "acme", "shop"),
        ("group/sub/shop", "group/sub", "shop"),
        ("Acme-Corp/shop_v2.api", "Acme-Corp", "shop_v2.api"),
        (" acme/shop ", "acme", "shop"),
        ("https://github.com/acme/shop.git", "acme", "shop"),
        ("git@github.com:acme/shop.git", "acme", "shop"),
    ],
)
def test_repo_option_accepts_owner_name_or_url(value, owner, name):
    ref = parse_repo_option(value)
    assert (ref.owner, ref.name) == (owner, name)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "shop",
        "/shop",
        "acme/",
        "acme//shop",
        "acme/ shop",
        "acme/shop/",
        "../shop",
        "acme/..",
        "acme/$(id)",
        "acme/sh\nop",
        f"https://u:{SECRET}@github.com/acme",
    ],
)
def test_repo_option_rejects_malformed_values(value):
    with pytest.raises(UsageError) as caught:
        parse_repo_option(value)
    assert SECRET not in caught.value.message
    assert caught.value.hint


def test_repo_ref_str_is_owner_slash_name():
    ref = RepoRef(host="github.com", owner="group/sub", name="shop")
    assert str(ref) == ref.slug_source == "group/sub/shop"
