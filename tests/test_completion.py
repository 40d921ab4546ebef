"""kubectl_complete-restart_backend: what it offers for each word, and where it looks it up."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubectl_restart_backend.cli import main_group
from kubectl_restart_backend.completion import (
    ClusterLookup,
    Completion,
    ConnectionFlags,
    complete,
    flags_of,
)

KUBECONFIG_A = """\
apiVersion: v1
kind: Config
clusters:
- name: east
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: alice
  user: {token: not-a-secret}
contexts:
- name: dev
  context: {cluster: east, user: alice}
- name: prod
  context: {cluster: east, user: alice}
current-context: dev
"""
KUBECONFIG_B = """\
apiVersion: v1
kind: Config
clusters:
- name: west
  cluster: {server: "https://127.0.0.1:2"}
users:
- name: bob
  user: {token: not-a-secret}
contexts:
- name: staging
  context: {cluster: west, user: bob}
"""


@dataclass
class FixedLookup:
    """Answers from fixed lists and records the connection flags each lookup was given."""

    names: dict = field(
        default_factory=lambda: {
            "contexts": ["dev", "prod"],
            "clusters": ["east"],
            "users": ["alice"],
            "namespaces": ["default", "shop", "staging"],
            "deployments": ["api", "web", "worker"],
            "workloads": [
                "daemonset/agent",
                "deployment/api",
                "deployment/web",
                "deployment/worker",
                "statefulset/db",
                "statefulset/web-cache",
            ],
        }
    )
    calls: list = field(default_factory=list)

    def _answer(self, kind: str, flags: ConnectionFlags) -> list[str]:
        self.calls.append((kind, flags))
        return list(self.names[kind])

    def contexts(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("contexts", flags)

    def clusters(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("clusters", flags)

    def users(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("users", flags)

    def namespaces(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("namespaces", flags)

    def deployments(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("deployments", flags)

    def workloads(self, flags: ConnectionFlags) -> list[str]:
        return self._answer("workloads", flags)


def candidates(args: list[str], word: str) -> tuple[tuple[str, ...], int]:
    result = complete(main_group, args, word, FixedLookup())
    return tuple(c.split("\t")[0] for c in result.candidates), result.directive


@pytest.mark.parametrize(
    ("args", "word", "expected"),
    [
        pytest.param(
            [], "--c", ("--context", "--cluster", "--config-grace"), id="long-flags-by-prefix"
        ),
        pytest.param([], "--ou", ("--output",), id="output-flag"),
        pytest.param([], "-o", ("-o",), id="exact-short-flag"),
        pytest.param(["--context", "dev"], "--cont", (), id="flag-already-given-not-offered"),
        pytest.param([], "--context=", ("--context=dev", "--context=prod"), id="inline-value"),
        pytest.param([], "--context=p", ("--context=prod",), id="inline-value-prefix"),
        pytest.param(["--context"], "", ("dev", "prod"), id="context-names"),
        pytest.param(["--context"], "d", ("dev",), id="context-names-prefix"),
        pytest.param(["--cluster"], "", ("east",), id="cluster-names"),
        pytest.param(["--user"], "", ("alice",), id="user-names"),
        pytest.param(["-n"], "", ("default", "shop", "staging"), id="namespaces-short-flag"),
        pytest.param(["--namespace"], "s", ("shop", "staging"), id="namespaces-prefix"),
        pytest.param(["-n", "shop", "--deployment"], "w", ("web", "worker"), id="deployments"),
        pytest.param(["-o"], "", ("json", "ndjson", "text", "yaml"), id="output-choices"),
        pytest.param(["--output"], "y", ("yaml",), id="output-choices-prefix"),
        pytest.param(["--timeout"], "", (), id="duration-has-no-candidates"),
        pytest.param(["--no-wait"], "--dry", ("--dry-run",), id="boolean-flag-takes-no-value"),
        pytest.param(["--context", "dev"], "-o", ("-o",), id="after-a-flag-value"),
        pytest.param([], "--nope=", (), id="unknown-inline-flag"),
        pytest.param([], "l", ("link", "list"), id="subcommands-by-prefix"),
        pytest.param(["link"], "w", ("web", "worker"), id="link-takes-a-deployment-name"),
        pytest.param(
            ["unlink", "-n", "shop"],
            "",
            ("api", "daemonset/agent", "statefulset/db", "statefulset/web-cache", "web", "worker"),
            id="unlink-name-of-any-kind",
        ),
        pytest.param(["link"], "sta", ("statefulset/db", "statefulset/web-cache"), id="link-sts"),
        pytest.param(["-w"], "sts/w", ("sts/web-cache",), id="workload-by-alias"),
        pytest.param(
            ["-w"],
            "d",
            ("daemonset/agent", "deployment/api", "deployment/web", "deployment/worker"),
            id="workload-flag",
        ),  # fmt: skip
        pytest.param(["link", "--kind"], "s", ("statefulset",), id="kind-flag"),
        pytest.param(["link", "-n"], "s", ("shop", "staging"), id="subcommand-flag-value"),
        pytest.param(["status"], "--dep", ("--deployment",), id="subcommand-flags"),
    ],
)
def test_offers_candidates_for_the_word(args, word, expected):
    found, directive = candidates(args, word)
    assert found == expected
    assert directive == 4


def test_an_empty_word_offers_the_subcommands():
    found, directive = candidates([], "")
    assert found == tuple(sorted(main_group.commands))
    assert directive == 4


def test_two_dashes_offer_every_long_flag_once():
    found, _ = candidates([], "--")
    long_flags = sorted(n for f in flags_of(main_group) for n in f.names if n.startswith("--"))
    assert sorted(found) == long_flags
    assert "--namespace" in found and "-n" not in found


def test_after_the_deployment_name_an_empty_word_offers_the_flags():
    found, _ = candidates(["link", "api"], "")
    assert "--yes" in found and "api" not in found


def test_a_dash_also_offers_short_flags_including_help():
    found, _ = candidates([], "-")
    assert {"-n", "-o", "-h", "--help", "--version"} <= set(found)


def test_the_kubeconfig_value_is_left_to_the_shell_file_completion():
    assert candidates(["--kubeconfig"], "") == ((), 0)
    assert candidates([], "--kubeconfig=") == ((), 0)


def test_flags_carry_the_first_line_of_their_help_as_a_cobra_description():
    [timeout] = [p for p in main_group.params if p.name == "timeout"]
    result = complete(main_group, [], "--timeout", FixedLookup())
    assert result.candidates == (f"--timeout\t{timeout.help.splitlines()[0]}",)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--kubeconfig", "/k", "--context", "dev", "--deployment"],
            ConnectionFlags(kubeconfig="/k", context="dev"),
            id="separate-values",
        ),
        pytest.param(
            ["--kubeconfig=/k", "-n", "shop", "--user=u", "--cluster", "c", "--deployment"],
            ConnectionFlags(kubeconfig="/k", namespace="shop", user="u", cluster="c"),
            id="inline-and-short",
        ),
        pytest.param(
            ["--repo", "--context", "--deployment"],
            ConnectionFlags(),
            id="a-flag-name-as-a-value-is-a-value",
        ),
    ],
)
def test_lookups_get_the_connection_flags_typed_so_far(args, expected):
    lookup = FixedLookup()
    complete(main_group, args, "", lookup)
    assert lookup.calls == [("deployments", expected)]


def test_render_prints_one_candidate_per_line_then_the_directive():
    assert Completion(("a", "b\tdesc"), 4).render() == "a\nb\tdesc\n:4\n"
    assert Completion((), 0).render() == ":0\n"


def test_kubeconfig_names_come_from_every_kubeconfig_file(tmp_path: Path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(KUBECONFIG_A)
    second.write_text(KUBECONFIG_B)
    lookup = ClusterLookup({"KUBECONFIG": os.pathsep.join([str(first), str(second)])})
    flags = ConnectionFlags()
    assert lookup.contexts(flags) == ["dev", "prod", "staging"]
    assert lookup.clusters(flags) == ["east", "west"]
    assert lookup.users(flags) == ["alice", "bob"]
    assert lookup.contexts(ConnectionFlags(kubeconfig=str(second))) == ["staging"]


def test_a_missing_or_broken_kubeconfig_offers_nothing(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [\n")
    lookup = ClusterLookup({"HOME": str(tmp_path)})
    assert lookup.contexts(ConnectionFlags(kubeconfig=str(tmp_path / "missing"))) == []
    assert lookup.contexts(ConnectionFlags(kubeconfig=str(broken))) == []


def test_namespaces_and_deployments_come_from_the_cluster(cluster):
    cluster.create_deployment("shop", "api", replicas=1, wait_ready=False)
    cluster.create_deployment("shop", "web", replicas=1, wait_ready=False)
    cluster.create_deployment("tools", "cron", replicas=1, wait_ready=False)
    cluster.create_namespace("empty")
    lookup = ClusterLookup({"HOME": "/nonexistent"})
    flags = ConnectionFlags(kubeconfig=cluster.kubeconfig)
    # Namespaces holding Deployments, plus the context's own ("default").
    assert lookup.namespaces(flags) == ["default", "shop", "tools"]
    assert lookup.deployments(ConnectionFlags(kubeconfig=cluster.kubeconfig, namespace="shop")) == [
        "api",
        "web",
    ]
    assert lookup.deployments(flags) == []  # the context's namespace has none


def test_an_unreachable_cluster_offers_nothing(tmp_path: Path):
    config = tmp_path / "config"
    config.write_text(KUBECONFIG_A)  # server https://127.0.0.1:1 refuses connections
    lookup = ClusterLookup({"HOME": str(tmp_path)})
    assert lookup.namespaces(ConnectionFlags(kubeconfig=str(config))) == []
    assert lookup.deployments(ConnectionFlags(kubeconfig=str(config))) == []


def run_completion(*words: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        "from kubectl_restart_backend.completion import main\n"
        "main(sys.argv[1:])\n"
        "sys.stderr.write('kubernetes imported' if 'kubernetes' in sys.modules else 'lean')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *words],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=True,
    )


def test_flag_and_kubeconfig_completion_never_import_the_kubernetes_client(tmp_path: Path):
    config = tmp_path / "config"
    config.write_text(KUBECONFIG_A)
    flags = run_completion("--c")
    assert flags.stdout.splitlines()[-1] == ":4"
    assert flags.stderr == "lean"
    contexts = run_completion("--kubeconfig", str(config), "--context", "")
    assert contexts.stdout == "dev\nprod\n:4\n"
    assert contexts.stderr == "lean"


def test_the_console_script_answers_kubectl(cluster, tmp_path: Path):
    cluster.create_deployment("shop", "api", replicas=1, wait_ready=False)
    script = Path(sys.executable).with_name("kubectl_complete-restart_backend")
    result = subprocess.run(
        [str(script), "--kubeconfig", cluster.kubeconfig, "-n", "shop", "--deployment", ""],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=60,
        check=True,
    )
    assert result.stdout == "api\n:4\n"
