"""The per-repo config file: branch globs, precedence, and errors with file, line and key."""

from __future__ import annotations

import textwrap

import pytest

from kubectl_restart_backend.config_file import (
    CONFIG_FILE_NAME,
    expand_verify,
    load_repo_config,
    merge_settings,
    parse_repo_config,
    setting_sources,
)
from kubectl_restart_backend.errors import UsageError

EXAMPLE = """\
context: prod-eu
namespace: shop
timeout: 3m
logs: true
branches:
  main:
    deployment: shop-backend
  "release/*":
    namespace: shop-staging
    timeout: 90
  "release/1.*":
    namespace: never-reached
  "feature/*":
    logs: 50
  "hotfix-[0-9]*":
    context: null
"""


def parse(text: str):
    return parse_repo_config(textwrap.dedent(text), "repo/.restart-backend.yaml")


@pytest.mark.parametrize(
    "branch, expected",
    [
        (
            "main",
            {
                "context": "prod-eu",
                "namespace": "shop",
                "timeout": 180.0,
                "logs": True,
                "deployment": "shop-backend",
            },
        ),
        (
            "release/1.2",  # first matching entry in file order wins
            {"context": "prod-eu", "namespace": "shop-staging", "timeout": 90.0, "logs": True},
        ),
        (
            "release/a/b",  # '*' crosses '/'
            {"context": "prod-eu", "namespace": "shop-staging", "timeout": 90.0, "logs": True},
        ),
        ("feature/x", {"context": "prod-eu", "namespace": "shop", "timeout": 180.0, "logs": 50}),
        ("hotfix-7", {"namespace": "shop", "timeout": 180.0, "logs": True}),  # null drops
        ("Main", {"context": "prod-eu", "namespace": "shop", "timeout": 180.0, "logs": True}),
        ("dev", {"context": "prod-eu", "namespace": "shop", "timeout": 180.0, "logs": True}),
    ],
)
def test_branch_entry_over_top_level(branch, expected):
    assert parse(EXAMPLE).settings_for(branch) == expected


def test_branch_entry_for_reports_the_matching_pattern_and_line():
    entry = parse(EXAMPLE).branch_entry_for("release/9")
    assert (entry.pattern, entry.line) == ("release/*", 8)


DEFAULTS = {"timeout": 120.0, "logs": True, "namespace": None, "context": None}


@pytest.mark.parametrize(
    "flags, file_settings, expected",
    [
        ({}, {}, DEFAULTS),
        ({"timeout": None}, {"timeout": 90.0}, {**DEFAULTS, "timeout": 90.0}),
        ({"timeout": 30.0}, {"timeout": 90.0}, {**DEFAULTS, "timeout": 30.0}),
        ({"namespace": "flag-ns"}, {"namespace": "file-ns"}, {**DEFAULTS, "namespace": "flag-ns"}),
        ({"logs": False}, {"logs": 50}, {**DEFAULTS, "logs": False}),  # False is a given flag
        ({"context": None}, {}, DEFAULTS),
        ({}, {"deployment": "d"}, {**DEFAULTS, "deployment": "d"}),
        ({"deployment": "f"}, {"deployment": "d"}, {**DEFAULTS, "deployment": "f"}),
    ],
)
def test_flags_beat_file_beats_defaults(flags, file_settings, expected):
    assert merge_settings(flags, file_settings, DEFAULTS) == expected


def test_full_precedence_chain_flag_branch_top_default():
    settings = parse(EXAMPLE).settings_for("release/2")
    flags = {"namespace": None, "timeout": 10.0, "context": None, "deployment": None}
    defaults = {"timeout": 120.0, "logs": False, "selector": ""}
    merged = merge_settings(flags, settings, defaults)
    assert merged == {
        "timeout": 10.0,  # flag
        "namespace": "shop-staging",  # branch entry
        "context": "prod-eu",  # top level
        "logs": True,  # top level over default
        "selector": "",  # default
    }
    assert setting_sources(flags, settings, defaults) == {
        "timeout": "flag",
        "namespace": "file",
        "context": "file",
        "logs": "file",
        "selector": "default",
    }


def test_missing_file_is_normal(tmp_path):
    assert load_repo_config(str(tmp_path)) is None


def test_file_at_repo_root_is_loaded(tmp_path):
    (tmp_path / CONFIG_FILE_NAME).write_text("namespace: shop\n")
    config = load_repo_config(str(tmp_path))
    assert config.settings == {"namespace": "shop"}
    assert config.path == str(tmp_path / CONFIG_FILE_NAME)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "null\n"])
def test_empty_file_means_no_settings(text):
    config = parse(text)
    assert (config.settings, config.branches) == ({}, ())


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("namespace: shop\nnamepsace: x\n", 2, "unknown key 'namepsace' (did you mean 'namespace'"),
        ("branches:\n  main:\n    timout: 5m\n", 3, "unknown key 'timout'"),
        ("branches:\n  main:\n    branches: {}\n", 3, "unknown key 'branches'"),
        ("timeout: soon\n", 1, "key 'timeout'"),
        ("timeout: -5s\n", 1, "negative"),
        ("timeout: -5\n", 1, "must not be negative"),
        ("timeout: true\n", 1, "key 'timeout'"),
        ("namespace: 42\n", 1, "key 'namespace': must be a non-empty string"),
        ("namespace: Shop_Prod\n", 1, "not a valid namespace name"),
        ("deployment: ''\n", 1, "key 'deployment'"),
        ("context: [a, b]\n", 1, "key 'context'"),
        ("logs: verbose\n", 1, "key 'logs'"),
        ("logs: -1\n", 1, "key 'logs'"),
        ("selector: {app: x}\n", 1, "key 'selector'"),
        ("selector: tier api\n", 1, "key 'selector': not a valid label selector: expected"),
        ("\nbranches:\n  main:\n    selector: 'env in (a'\n", 4, "key 'selector'"),
        ("\n\nbranches: [main]\n", 3, "key 'branches'"),
        ("branches:\n  main: shop\n", 2, "key 'branches.main': must be a mapping"),
        ("branches:\n  'release/[0-9': {}\n", 2, "without a closing ']'"),
        ("branches:\n  'my branch': {}\n", 2, "characters git never allows"),
        ("branches:\n  '': {}\n", 2, "empty pattern"),
        ("branches:\n  1.0: {}\n", 2, "keys must be strings"),
        ("namespace: a\nnamespace: b\n", 2, "duplicate key (first on line 1)"),
        ("branches:\n  main: {}\n  main: {}\n", 3, "duplicate key"),
        ("- namespace: shop\n", 1, "must be a mapping"),
        ("namespace: shop\n  bad indent: x\n", 2, "not valid YAML"),
        ("namespace: [unclosed\n", 2, "not valid YAML"),
        ("verify: yes please\n", 1, "key 'verify': must be true, false or a mapping"),
        ("verify: {pth: /x}\n", 1, "unknown key 'pth' in verify (known: path, url, expect"),
        ("verify: {expect: ok}\n", 1, "verify.expect: 'ok' is not a status"),
        ("verify: {successes: 0}\n", 1, "verify.successes: must be a whole number, 1 or more"),
        ("verify: {timeout: soon}\n", 1, "verify.timeout"),
        ("verify: {url: 'https://u:p@x.example'}\n", 1, "verify.url: must not carry credentials"),
        ("\nsettle: forever\n", 2, "key 'settle'"),
    ],
)
def test_malformed_config_names_file_line_and_key(text, line, fragment):
    with pytest.raises(UsageError) as caught:
        parse(text)
    message = caught.value.message
    assert message.startswith(f"repo/.restart-backend.yaml: line {line}: ")
    assert fragment in message
    assert caught.value.hint
    assert "\n" not in message


@pytest.mark.parametrize(
    "pattern, branch, matches",
    [
        ("main", "main", True),
        ("main", "main2", False),
        ("release/*", "release/1.2", True),
        ("release/*", "release", False),
        ("release-?", "release-1", True),
        ("[!x]*", "yes", True),
        ("[]]x", "]x", True),
        ("*", "anything/at/all", True),
    ],
)
def test_glob_patterns_are_fnmatch_style(pattern, branch, matches):
    config = parse(f"branches:\n  '{pattern}':\n    namespace: ns\n")
    assert (config.settings_for(branch) == {"namespace": "ns"}) is matches


def test_alias_bomb_is_refused_naming_file_and_line():
    from tests.test_safe_yaml import laughs

    with pytest.raises(UsageError) as caught:
        parse(laughs(9))
    assert caught.value.message.startswith("repo/.restart-backend.yaml: line 5: refused: ")
    assert "excessive aliasing" in caught.value.message
    assert "alias" in caught.value.hint


def test_a_shared_value_is_never_printed_whole():
    # Within the budget, but a repr of it would still be thousands of characters.
    inner = ", ".join(["lol"] * 90)
    with pytest.raises(UsageError) as caught:
        parse(f"selector: [&a [{inner}], {', '.join(['*a'] * 90)}]\n")
    assert "key 'selector': must be a non-empty string, not a list" in caught.value.message


@pytest.mark.parametrize(
    "text", [f"namespace: {'n' * 5000}\n", f"unknown{'k' * 5000}: 1\n", f"logs: {'1' * 5000}\n"]
)
def test_long_values_are_trimmed_in_messages(text):
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert len(caught.value.message) < 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("verify: false\nsettle: 30s\n", {"verify": False, "settle": 30.0}),
        ("verify: true\n", {"verify": True}),
        (
            "verify: {path: /healthz, expect: 200, successes: 3, timeout: 10s}\n",
            {"verify": True, "verify_path": "/healthz", "verify_expect": "200",
             "verify_successes": 3, "verify_timeout": 10.0},
        ),
        ("verify: {url: auto, expect: '2xx, 3xx'}\n",
         {"verify": True, "verify_url": "auto", "verify_expect": "2xx,3xx"}),
    ],
)  # fmt: skip
def test_the_verify_mapping_becomes_the_flags_settings(text, expected):
    settings = {k.replace("-", "_"): v for k, v in parse(text).settings.items()}
    assert expand_verify(settings) == expected


def test_several_workloads_their_waves_and_the_delete_pods_opt_in():
    config = parse_repo_config(
        textwrap.dedent(
            """\
            workloads: [deployment/api, sts/cache, worker]
            order: [cache, [api, worker]]
            delete-pods: true
            branches:
              "feature/*":
                workloads: [deployment/api]
                order: null
            """
        )
    )
    assert config.settings == {
        "workloads": ("deployment/api", "sts/cache", "worker"),
        "order": ("cache", ("api", "worker")),
        "delete-pods": True,
    }
    feature = config.settings_for("feature/x")
    assert feature["workloads"] == ("deployment/api",) and "order" not in feature


def test_cluster_waves_and_a_branch_choosing_one_cluster_instead():
    config = parse_repo_config(
        textwrap.dedent(
            """\
            waves:
            - contexts: [staging]
            - contexts: [prod-eu, prod-us]
            branches:
              "feature/*":
                context: dev
              "release/*":
                waves: [{contexts: prod-eu}]
            """
        )
    )
    assert config.settings["waves"] == (("staging",), ("prod-eu", "prod-us"))
    assert config.where("waves", "main") == ".restart-backend.yaml, line 1"
    assert "waves" not in config.settings_for("feature/x")  # context: replaces waves:
    assert config.settings_for("feature/x")["context"] == "dev"
    assert config.settings_for("release/2")["waves"] == (("prod-eu",),)
    assert config.where("waves", "release/2") == ".restart-backend.yaml, line 8"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("waves: staging", "line 1: key 'waves': must be a list like [{contexts: [staging]}"),
        ("waves: []", "line 1: key 'waves': must be a list like"),
        ("waves: [staging]", "wave 1 must be a mapping with one key, contexts, not 'staging'"),
        ("waves: [{contexts: [a], order: [b]}]", "wave 1 must be a mapping with one key"),
        ("waves: [{contexts: []}]", "wave 1 must name at least one context"),
        ("waves: [{contexts: [a]}, {contexts: [a]}]", "context 'a' is in two waves"),
        ("waves: [{contexts: [1]}]", "wave 1: a context must be a non-empty name, not 1"),
        ("context: a\nwaves: [{contexts: [b]}]",
         "line 2: key 'waves': cannot be set beside 'context' (line 1): both choose the clusters"),
        ("branches:\n  main:\n    context: a\n    waves: [{contexts: [b]}]",
         "line 4: key 'waves': cannot be set beside 'context' (line 3)"),
    ],
)  # fmt: skip
def test_bad_cluster_waves_in_the_file_name_the_line(text, problem):
    with pytest.raises(UsageError) as caught:
        parse_repo_config(text)
    assert problem in caught.value.message
