"""kubectl's kubeconfig rules (merge, paths, overrides, errors) and the client they build."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from kubectl_restart_backend.errors import RefusedError, UsageError
from kubectl_restart_backend.kubeconfig import (
    ResolvedConfig,
    build_api_client,
    kubeconfig_paths,
    load_files,
    merge_kubeconfigs,
    resolve_config,
    resolve_from_environment,
    sanitize_subprocess_env,
)
from tests.cluster.certs import session_certificates

TOKEN = "eyJhbGciOiJSUzI1NiJ9.S3CR3T-T0KEN"
EXEC_TOKEN = "exec-S3CR3T-from-plugin"
CA_PEM = session_certificates().ca_pem


def kubeconfig(contexts=(), clusters=(), users=(), current=None, **extra) -> dict:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters],
        "contexts": [{"name": n, "context": c} for n, c in contexts],
        "users": [{"name": n, "user": u} for n, u in users],
        **extra,
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def write(path: Path, doc) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def by_name(merged, section, body_key):
    return {e["name"]: e[body_key] for e in merged[section]}


# --- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, kubeconfig_env, expected",
    [
        ("/x/flag", "/a:/b", ["/x/flag"]),
        (None, "/a:/b", ["/a", "/b"]),
        (None, "/a::/b:", ["/a", "/b"]),
        (None, "/a:/b:/a", ["/a", "/b"]),
        (None, "", ["/home/u/.kube/config"]),
        (None, ":", ["/home/u/.kube/config"]),
        (None, None, ["/home/u/.kube/config"]),
    ],
)
def test_kubeconfig_paths_follow_kubectl_precedence(flag, kubeconfig_env, expected):
    env = {"HOME": "/home/u"}
    if kubeconfig_env is not None:
        env["KUBECONFIG"] = kubeconfig_env.replace(":", os.pathsep)
    assert kubeconfig_paths(flag, env) == expected


# --- loading -----------------------------------------------------------------------------


def test_missing_files_in_kubeconfig_list_are_skipped(tmp_path):
    real = write(tmp_path / "real", kubeconfig(current="a"))
    loaded = load_files([str(tmp_path / "missing"), real])
    assert [p for p, _ in loaded] == [real]


def test_explicit_kubeconfig_must_exist(tmp_path):
    with pytest.raises(UsageError) as caught:
        load_files([str(tmp_path / "missing")], explicit=True)
    assert "does not exist" in caught.value.message and "--kubeconfig" in caught.value.hint


def test_empty_file_is_an_empty_config(tmp_path):
    assert load_files([write(tmp_path / "empty", "")]) == [(str(tmp_path / "empty"), {})]


def test_not_yaml_names_file_and_line_but_not_the_content(tmp_path):
    text = f"apiVersion: v1\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n  bad: [unclosed\n"
    path = write(tmp_path / "broken", text)
    with pytest.raises(UsageError) as caught:
        load_files([path])
    message = caught.value.message
    assert path in message and "line" in message
    assert TOKEN not in message and TOKEN not in caught.value.hint


@pytest.mark.parametrize(
    "text, what",
    [
        ("- just\n- a list\n", "not a kubeconfig"),
        ("clusters: {a: b}\n", "'clusters' is not a list"),
        ("users:\n- name: u\n  user: [1]\n", "'users' is not a list"),
        (
            "contexts:\n- name: a\n  context: {cluster: x}\n- name: a\n  context: {cluster: y}\n",
            "duplicate name 'a'",
        ),
    ],
)
def test_malformed_kubeconfig_is_a_usage_error(tmp_path, text, what):
    path = write(tmp_path / "cfg", text)
    with pytest.raises(UsageError, match=what) as caught:
        load_files([path])
    assert path in caught.value.message


# --- merge -------------------------------------------------------------------------------


def test_current_context_comes_from_the_first_file_that_sets_it(tmp_path):
    files = [
        (str(tmp_path / "1"), kubeconfig(contexts=[("one", {"cluster": "c"})])),
        (str(tmp_path / "2"), kubeconfig(current="two")),
        (str(tmp_path / "3"), kubeconfig(current="three")),
    ]
    assert merge_kubeconfigs(files)["current-context"] == "two"


def test_empty_current_context_does_not_count_as_set(tmp_path):
    files = [("/a/1", kubeconfig(current="")), ("/a/2", kubeconfig(current="second"))]
    assert merge_kubeconfigs(files)["current-context"] == "second"


def test_first_file_defining_a_name_wins_the_whole_entry():
    files = [
        ("/a/1", kubeconfig(clusters=[("prod", {"server": "https://first"})])),
        (
            "/b/2",
            kubeconfig(
                clusters=[
                    ("prod", {"server": "https://second", "insecure-skip-tls-verify": True}),
                    ("dev", {"server": "https://dev"}),
                ]
            ),
        ),
    ]
    clusters = by_name(merge_kubeconfigs(files), "clusters", "cluster")
    assert clusters == {"prod": {"server": "https://first"}, "dev": {"server": "https://dev"}}


def test_contexts_and_users_merge_by_name_too():
    files = [
        ("/a/1", kubeconfig(users=[("u", {"token": "a"})], contexts=[("c", {"cluster": "x"})])),
        ("/a/2", kubeconfig(users=[("u", {"token": "b"}), ("v", {})], contexts=[("d", {})])),
    ]
    merged = merge_kubeconfigs(files)
    assert by_name(merged, "users", "user") == {"u": {"token": "a"}, "v": {}}
    assert list(by_name(merged, "contexts", "context")) == ["c", "d"]


def test_relative_paths_resolve_against_the_defining_file():
    files = [
        (
            "/cfg/one/config",
            kubeconfig(
                clusters=[("a", {"server": "https://a", "certificate-authority": "ca.crt"})],
                users=[
                    (
                        "u",
                        {
                            "client-certificate": "certs/u.crt",
                            "client-key": "../keys/u.key",
                            "tokenFile": "tok",
                            "exec": {"command": "./bin/plugin", "apiVersion": "x"},
                        },
                    )
                ],
            ),
        ),
        (
            "/cfg/two/config",
            kubeconfig(
                clusters=[("b", {"server": "https://b", "certificate-authority": "/abs/ca.crt"})],
                users=[("w", {"exec": {"command": "aws", "apiVersion": "x"}})],
            ),
        ),
    ]
    merged = merge_kubeconfigs(files)
    clusters = by_name(merged, "clusters", "cluster")
    users = by_name(merged, "users", "user")
    assert clusters["a"]["certificate-authority"] == "/cfg/one/ca.crt"
    assert clusters["b"]["certificate-authority"] == "/abs/ca.crt"
    assert users["u"]["client-certificate"] == "/cfg/one/certs/u.crt"
    assert users["u"]["client-key"] == "/cfg/keys/u.key"
    assert users["u"]["tokenFile"] == "/cfg/one/tok"
    assert users["u"]["exec"]["command"] == "/cfg/one/bin/plugin"
    assert users["w"]["exec"]["command"] == "aws"


def test_merge_does_not_modify_its_input():
    doc = kubeconfig(clusters=[("a", {"server": "s", "certificate-authority": "ca"})])
    before = json.dumps(doc, sort_keys=True)
    merge_kubeconfigs([("/x/config", doc)])
    assert json.dumps(doc, sort_keys=True) == before


# --- overrides ---------------------------------------------------------------------------

MERGED = merge_kubeconfigs(
    [
        (
            "/k/config",
            kubeconfig(
                current="dev",
                contexts=[
                    ("dev", {"cluster": "dev-c", "user": "dev-u", "namespace": "team"}),
                    ("prod", {"cluster": "prod-c", "user": "prod-u"}),
                    ("anon", {"cluster": "dev-c"}),
                    ("broken", {"cluster": "nowhere", "user": "dev-u"}),
                    ("no-user", {"cluster": "dev-c", "user": "ghost"}),
                ],
                clusters=[
                    ("dev-c", {"server": "https://dev.example:6443"}),
                    ("prod-c", {"server": "https://prod.example"}),
                    ("empty-c", {}),
                ],
                users=[("dev-u", {"token": TOKEN}), ("prod-u", {"token": "p-" + TOKEN})],
            ),
        )
    ]
)


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({}, ("dev", "dev-c", "dev-u", "team", "context")),
        ({"context": "prod"}, ("prod", "prod-c", "prod-u", "default", "default")),
        ({"namespace": "ns1"}, ("dev", "dev-c", "dev-u", "ns1", "--namespace")),
        ({"cluster": "prod-c"}, ("dev", "prod-c", "dev-u", "team", "context")),
        ({"user": "prod-u"}, ("dev", "dev-c", "prod-u", "team", "context")),
        ({"context": "anon"}, ("anon", "dev-c", None, "default", "default")),
        (
            {"context": "prod", "cluster": "dev-c", "user": "dev-u", "namespace": "x"},
            ("prod", "dev-c", "dev-u", "x", "--namespace"),
        ),
    ],
)
def test_overrides_apply_like_kubectl(flags, expected):
    resolved = resolve_config(MERGED, **flags)
    got = (
        resolved.context_name,
        resolved.cluster_name,
        resolved.user_name,
        resolved.namespace,
        resolved.namespace_source,
    )
    assert got == expected


def test_client_dict_holds_only_the_chosen_entries():
    conf = resolve_config(MERGED, context="prod", user="dev-u").config_dict_for_client
    assert conf["current-context"] == "prod"
    assert conf["contexts"] == [
        {"name": "prod", "context": {"cluster": "prod-c", "namespace": "default", "user": "dev-u"}}
    ]
    assert conf["clusters"] == [{"name": "prod-c", "cluster": {"server": "https://prod.example"}}]
    assert conf["users"] == [{"name": "dev-u", "user": {"token": TOKEN}}]


def test_cluster_and_user_flags_work_without_any_context():
    merged = merge_kubeconfigs(
        [("/k/c", kubeconfig(clusters=[("c", {"server": "https://c"})], users=[("u", {})]))]
    )
    resolved = resolve_config(merged, cluster="c", user="u")
    assert (resolved.context_name, resolved.cluster_name, resolved.user_name) == (None, "c", "u")
    assert resolved.config_dict_for_client["current-context"] == "restart-backend"


@pytest.mark.parametrize(
    "flags, message, hint_names",
    [
        ({"context": "staging"}, "Context 'staging' is not in", ["anon", "dev", "prod"]),
        ({"cluster": "nope"}, "Cluster 'nope' is not in", ["dev-c", "prod-c"]),
        ({"user": "nope"}, "User 'nope' is not in", ["dev-u", "prod-u"]),
        ({"context": "broken"}, "Cluster 'nowhere' is not in", ["dev-c"]),
        ({"context": "no-user"}, "User 'ghost' is not in", ["dev-u"]),
        ({"cluster": "empty-c"}, "has no server", ["--server"]),
    ],
)
def test_unknown_names_list_what_exists(flags, message, hint_names):
    with pytest.raises(UsageError) as caught:
        resolve_config(MERGED, **flags)
    assert message in caught.value.message
    for name in hint_names:
        assert name in caught.value.hint
    assert TOKEN not in caught.value.message + caught.value.hint


def test_no_current_context_says_use_context():
    merged = merge_kubeconfigs([("/k/c", kubeconfig(contexts=[("a", {"cluster": "x"})]))])
    with pytest.raises(UsageError) as caught:
        resolve_config(merged)
    assert "No current context" in caught.value.message
    assert "--context" in caught.value.hint and "a" in caught.value.hint


def test_resolved_config_repr_never_shows_a_token():
    resolved = resolve_config(MERGED)
    assert TOKEN not in repr(resolved) and TOKEN not in str(resolved)
    assert resolved.server == "https://dev.example:6443"


def test_server_with_credentials_is_redacted_for_display():
    merged = merge_kubeconfigs(
        [
            (
                "/k/c",
                kubeconfig(
                    current="a",
                    contexts=[("a", {"cluster": "c"})],
                    clusters=[("c", {"server": f"https://admin:{TOKEN}@k8s:6443"})],
                ),
            )
        ]
    )
    resolved = resolve_config(merged)
    assert resolved.server == "https://***@k8s:6443"
    assert TOKEN not in repr(resolved)


# --- from the environment ---------------------------------------------------------------


def test_kubeconfig_env_merges_files_as_kubectl_does(tmp_path):
    first = write(
        tmp_path / "a" / "config",
        kubeconfig(
            contexts=[("a-ctx", {"cluster": "c"})], clusters=[("c", {"server": "https://first"})]
        ),
    )
    second = write(
        tmp_path / "b" / "config",
        kubeconfig(current="a-ctx", clusters=[("c", {"server": "https://second"})]),
    )
    third = write(tmp_path / "c" / "config", kubeconfig(current="other"))
    env = {"KUBECONFIG": os.pathsep.join([first, str(tmp_path / "missing"), second, third])}
    resolved = resolve_from_environment(None, env)
    assert (resolved.context_name, resolved.server) == ("a-ctx", "https://first")


def test_in_cluster_when_no_kubeconfig_and_service_host_set(tmp_path):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "namespace").write_text("shop-prod\n")
    env = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    resolved = resolve_from_environment(None, env, serviceaccount_dir=str(sa))
    assert (resolved.in_cluster, resolved.namespace, resolved.namespace_source) == (
        True,
        "shop-prod",
        "serviceaccount",
    )
    flagged = resolve_from_environment(None, env, namespace="x", serviceaccount_dir=str(sa))
    assert (flagged.namespace, flagged.namespace_source) == ("x", "--namespace")


def test_explicit_missing_kubeconfig_is_an_error_even_in_cluster(tmp_path):
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    with pytest.raises(UsageError, match="does not exist"):
        resolve_from_environment(str(tmp_path / "nope"), env)


def test_no_kubeconfig_anywhere(tmp_path):
    with pytest.raises(UsageError) as caught:
        resolve_from_environment(None, {"HOME": str(tmp_path)})
    assert "No kubeconfig found" in caught.value.message
    assert str(tmp_path / ".kube" / "config") in caught.value.message
    assert "KUBECONFIG" in caught.value.hint


# --- PyInstaller environment -------------------------------------------------------------


@pytest.mark.parametrize(
    "before, frozen, after",
    [
        (
            {"LD_LIBRARY_PATH": "/tmp/_MEI1:/usr/lib", "LD_LIBRARY_PATH_ORIG": "/usr/lib"},
            True,
            {"LD_LIBRARY_PATH": "/usr/lib", "LD_LIBRARY_PATH_ORIG": "/usr/lib"},
        ),
        ({"LD_LIBRARY_PATH": "/tmp/_MEI1"}, True, {}),
        ({"LD_LIBRARY_PATH": "/usr/lib"}, False, {"LD_LIBRARY_PATH": "/usr/lib"}),
        ({}, True, {}),
    ],
)
def test_sanitize_subprocess_env_undoes_the_bootloader(before, frozen, after):
    env = dict(before)
    sanitize_subprocess_env(env, frozen=frozen)
    assert env == after


# --- building the client ------------------------------------------------------------------


def token_kubeconfig(tmp_path: Path, **cluster_extra) -> str:
    cluster = {
        "server": "https://k8s.example:6443/",
        "certificate-authority-data": base64.b64encode(CA_PEM).decode(),
        **cluster_extra,
    }
    return write(
        tmp_path / "kube" / "config",
        kubeconfig(
            current="ctx",
            contexts=[("ctx", {"cluster": "c", "user": "u", "namespace": "shop"})],
            clusters=[("c", cluster)],
            users=[("u", {"token": TOKEN})],
        ),
    )


def bearer(client) -> str | None:
    """The Authorization header the client will send (its api_key key changed in 34.x)."""
    return (client.configuration.auth_settings().get("BearerToken") or {}).get("value")


def test_token_kubeconfig_gives_host_token_and_ca(tmp_path):
    path = token_kubeconfig(tmp_path)
    resolved = resolve_from_environment(path, {})
    client = build_api_client(resolved, request_timeout=None)
    conf = client.configuration
    assert conf.host == "https://k8s.example:6443"
    assert bearer(client) == f"Bearer {TOKEN}"
    assert conf.verify_ssl is True
    context = client.rest_client.pool_manager.connection_pool_kw["ssl_context"]
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "simulated-cluster-ca"),),)
    ]
    assert resolved.namespace == "shop"


@pytest.mark.parametrize("flag, verify", [(True, False), (False, True)])
def test_tls_verification_follows_only_the_kubeconfig(tmp_path, flag, verify):
    path = token_kubeconfig(tmp_path, **{"insecure-skip-tls-verify": flag})
    client = build_api_client(resolve_from_environment(path, {}))
    assert client.configuration.verify_ssl is verify


@pytest.mark.parametrize("value", ["false", "true", 0, "yes"])
def test_insecure_flag_that_is_not_a_boolean_is_rejected(value):
    merged = merge_kubeconfigs(
        [
            (
                "/k/c",
                kubeconfig(
                    current="a",
                    contexts=[("a", {"cluster": "c"})],
                    clusters=[("c", {"server": "https://c", "insecure-skip-tls-verify": value})],
                ),
            )
        ]
    )
    with pytest.raises(UsageError, match="insecure-skip-tls-verify must be true or false"):
        resolve_config(merged)


def test_token_file_relative_to_the_kubeconfig(tmp_path, monkeypatch):
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "token").write_text(TOKEN)
    path = write(
        tmp_path / "kube" / "config",
        kubeconfig(
            current="ctx",
            contexts=[("ctx", {"cluster": "c", "user": "u"})],
            clusters=[("c", {"server": "http://127.0.0.1:1"})],
            users=[("u", {"tokenFile": "token"})],
        ),
    )
    monkeypatch.chdir(tmp_path)
    client = build_api_client(resolve_from_environment(path, {}))
    assert bearer(client) == f"Bearer {TOKEN}"


def exec_kubeconfig(tmp_path: Path, command: str, **exec_extra) -> str:
    return write(
        tmp_path / "kube" / "config",
        kubeconfig(
            current="ctx",
            contexts=[("ctx", {"cluster": "c", "user": "u"})],
            clusters=[("c", {"server": "https://k8s.example"})],
            users=[
                (
                    "u",
                    {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1",
                            "command": command,
                            "args": ["--cluster", "c"],
                            "interactiveMode": "Never",
                            **exec_extra,
                        }
                    },
                )
            ],
        ),
    )


def plugin(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "kube" / "bin" / "plugin"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_exec_plugin_token_is_used(tmp_path, monkeypatch):
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": EXEC_TOKEN},
    }
    plugin(
        tmp_path, f"assert sys.argv[1:] == ['--cluster', 'c']\nprint(json.dumps({credential!r}))"
    )
    path = exec_kubeconfig(tmp_path, "./bin/plugin")  # relative to the kubeconfig's directory
    before = Path(path).read_bytes()
    monkeypatch.chdir(tmp_path)
    resolved = resolve_from_environment(path, {})
    client = build_api_client(resolved)
    assert bearer(client) == f"Bearer {EXEC_TOKEN}"
    assert EXEC_TOKEN not in repr(resolved)
    assert Path(path).read_bytes() == before  # persist_config is off: nothing written back


def test_missing_exec_plugin_is_a_clear_error(tmp_path):
    path = exec_kubeconfig(
        tmp_path, "kubectl-no-such-auth-plugin", installHint="Install it: brew install x\nmore"
    )
    with pytest.raises(UsageError) as caught:
        build_api_client(resolve_from_environment(path, {}))
    assert "kubectl-no-such-auth-plugin" in caught.value.message
    assert caught.value.hint == "Install it: brew install x"


def test_failing_exec_plugin_is_a_clear_error_without_secrets(tmp_path, capsys):
    plugin(
        tmp_path,
        "sys.stderr.write('error: SSO session expired, run aws sso login\\n')\nsys.exit(1)",
    )
    path = exec_kubeconfig(tmp_path, str(tmp_path / "kube" / "bin" / "plugin"))
    with pytest.raises(RefusedError) as caught:
        build_api_client(resolve_from_environment(path, {}))
    assert "SSO session expired" in caught.value.message
    assert "\n" not in caught.value.message
    assert capsys.readouterr().err == ""  # the client's own log line never reaches the user


def test_exec_plugin_printing_garbage(tmp_path):
    plugin(tmp_path, f"print('not json {EXEC_TOKEN}')")
    path = exec_kubeconfig(tmp_path, str(tmp_path / "kube" / "bin" / "plugin"))
    with pytest.raises(RefusedError, match="not an ExecCredential") as caught:
        build_api_client(resolve_from_environment(path, {}))
    assert EXEC_TOKEN not in caught.value.message


def test_a_bearer_token_is_set_where_this_client_line_reads_it():
    # In-cluster with --token: the client keeps the token under api_key["authorization"] up
    # to 33.x and api_key["BearerToken"] from 34 (CI runs this with both lines).
    from kubernetes.client import Configuration

    from kubectl_restart_backend.kubeconfig import set_bearer_token

    configuration = Configuration()
    set_bearer_token(configuration, "t0ken")
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer t0ken"


def test_in_cluster_without_service_account_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    resolved = ResolvedConfig(None, None, None, "default", in_cluster=True)
    if os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
        pytest.fail("this test expects to run outside a pod")
    with pytest.raises(UsageError, match="In-cluster configuration"):
        build_api_client(resolved)


def test_request_timeout_applies_to_every_request(tmp_path, silent_server):
    import urllib3

    path = write(
        tmp_path / "config",
        kubeconfig(
            current="c",
            contexts=[("c", {"cluster": "c"})],
            clusters=[("c", {"server": f"http://127.0.0.1:{silent_server.port}"})],
        ),
    )
    client = build_api_client(resolve_from_environment(path, {}), request_timeout=0.3)
    client.rest_client.pool_manager.connection_pool_kw["retries"] = False  # one attempt
    with pytest.raises(urllib3.exceptions.HTTPError):
        client.rest_client.request("GET", f"http://127.0.0.1:{silent_server.port}/version")


@pytest.mark.parametrize("provider", ["gcp", "azure"])
def test_removed_auth_providers_are_refused_with_the_exec_plugin_to_use(provider):
    merged = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"auth-provider": {"name": provider, "config": {}}}}],
    }
    with pytest.raises(UsageError) as caught:
        resolve_config(merged)
    assert provider in caught.value.message and "exec plugin" in caught.value.hint


def test_alias_bomb_is_refused_before_it_is_built(tmp_path):
    from tests.test_safe_yaml import laughs

    path = write(tmp_path / "config", laughs(9, key="current-context"))
    with pytest.raises(UsageError) as caught:
        load_files([path])
    assert caught.value.message == (
        f"kubeconfig file {path}: line 5: refused: excessive aliasing: aliases expand to more "
        "than 10000 nodes"
    )
