"""Bad input, met the same way every time: one ``error:`` line saying what is wrong, one
``hint:`` line saying what to do, the documented exit code (README "Exit codes"), no
traceback, no credential in the output, and no PATCH reaching the cluster.

Each row is a real situation: real flags, a real kubeconfig file (every field malformed in
turn), a real ``.restart-backend.yaml``, a real git checkout in an odd state, real
environment variables and file descriptors; the simulated cluster answers through the real
client over real TLS. The rows share one cluster (bad input changes nothing, which each row
checks) and are grouped by what is wrong.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

from tests.cluster import SimCluster, rule
from tests.cluster.behaviours import Behaviour
from tests.cluster.certs import generate_certificates, session_certificates
from tests.plugin_runner import (
    CONSOLE_SCRIPT,
    link,
    make_checkout,
    patches,
    run_plugin,
)
from tests.test_safe_yaml import laughs

FAILED, USAGE, NOT_FOUND, REFUSED = 1, 2, 4, 5
SECRET = "s3cr3t-pa55"  # planted in URLs and files: must never be printed


# -- the shape every bad input gets ---------------------------------------------------------


def assert_refused(exit_code, stdout, stderr, expected_code, words=(), secrets=()):
    """One error line, one hint line, the documented code, no traceback, no secret."""
    output = stdout + stderr
    assert exit_code == expected_code, output
    assert "Traceback" not in output, output
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    hints = [line for line in lines if line.startswith("hint: ")]
    assert len(errors) == 1, stderr
    assert len(hints) == 1, stderr
    for word in words:
        assert word in errors[0] + hints[0], stderr
    for secret in secrets:
        assert secret not in output, output
    return errors[0], hints[0]


# -- one shared world: a cluster with shop/backend linked to acme/shop@main -------------------


@dataclass
class World:
    cluster: SimCluster
    plain: SimCluster  # the same API over plain HTTP
    root: Path
    checkout: Path  # read-only: rows that change git state get their own

    @property
    def token(self) -> str:
        return self.cluster.token_of("admin")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("bad-input")
    cluster = SimCluster(workdir=root / "cluster", certificates=session_certificates()).start()
    plain = SimCluster(tls=False, simulation_factory=None, workdir=root / "plain").start()
    try:
        link(cluster)
        cluster.create_deployment("shop", "worker", wait_ready=False)  # linked to nothing
        yield World(cluster, plain, root, make_checkout(root / "shop"))
    finally:
        cluster.stop()
        plain.stop()


@dataclass(frozen=True)
class Row:
    """One kind of bad input and what the plugin must say about it."""

    id: str
    args: tuple[str, ...] = ()
    code: int = USAGE
    words: tuple[str, ...] = ()
    kubeconfig: Optional[Callable[[dict, Ctx], Any]] = None  # edit the admin's config
    kubeconfig_text: Optional[Callable[[Ctx], str | bytes]] = None  # or write this instead
    config_file: Optional[str | bytes] = None  # .restart-backend.yaml at the checkout's root
    git: Optional[Callable[[Ctx], None]] = None  # change a fresh checkout
    env: Optional[Callable[[Ctx], dict]] = None
    use_kubeconfig_flag: bool = True
    secrets: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.id


@dataclass
class Ctx:
    """Where one row runs: its own directory, checkout and kubeconfig."""

    world: World
    dir: Path
    checkout: Path
    kubeconfig: Path = field(init=False)

    @property
    def cluster(self) -> SimCluster:
        return self.world.cluster

    def file(self, name: str, content: str | bytes, mode: int = 0o644) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        path.chmod(mode)
        return path


def prepare(world: World, row: Row, tmp_path: Path) -> Ctx:
    needs_own = row.git is not None or row.config_file is not None
    checkout = make_checkout(tmp_path / "shop") if needs_own else world.checkout
    ctx = Ctx(world, tmp_path, checkout)
    if row.config_file is not None:
        ctx.file("shop/.restart-backend.yaml", row.config_file)
    if row.git is not None:
        row.git(ctx)
    config = yaml.safe_load(Path(world.cluster.kubeconfig).read_text())
    ctx.kubeconfig = tmp_path / "kubeconfig"
    if row.kubeconfig_text is not None:
        ctx.file("kubeconfig", row.kubeconfig_text(ctx))
    else:
        if row.kubeconfig is not None:
            row.kubeconfig(config, ctx)
        ctx.file("kubeconfig", yaml.safe_dump(config))
    return ctx


def check(world: World, row: Row, tmp_path: Path) -> tuple[str, str]:
    """Run the row in-process and hold it to the one shape; no PATCH may reach the cluster."""
    ctx = prepare(world, row, tmp_path)
    world.cluster.clear_requests()
    env = row.env(ctx) if row.env else None
    run = run_plugin(command_line(row, ctx), cwd=ctx.checkout, env=env)
    shown = assert_refused(
        run.exit_code, run.stdout, run.stderr, row.code, row.words, (world.token, *row.secrets)
    )
    assert not patches(world.cluster)
    if os.environ.get("SHOW_ROWS"):
        print(f"\n[{row.id}] {shown[0]}\n[{row.id}] {shown[1]}")
    return shown


SUBCOMMANDS = ("status", "list", "link", "unlink")


def command_line(row: Row, ctx: Ctx) -> list[str]:
    """The row's arguments after the connection flags (which a subcommand takes itself);
    a short --timeout bounds rows that wait on something (an exec plugin, retries)."""
    args = list(row.args)
    command = [args.pop(0)] if args and args[0] in SUBCOMMANDS else []
    common = ["--kubeconfig", str(ctx.kubeconfig)] if row.use_kubeconfig_flag else []
    if command[:1] != ["link"] and command[:1] != ["unlink"] and command[:1] != ["list"]:
        common += ["--timeout", "3s"]
    return [*command, *common, *args]


def rows(*table: Row):
    return pytest.mark.parametrize("row", table, ids=str)


# -- kubeconfig editing helpers -------------------------------------------------------------


def cluster_entry(values: dict) -> Callable[[dict, Ctx], None]:
    def change(config: dict, ctx: Ctx) -> None:
        entry = config["clusters"][0]["cluster"]
        for key, value in values.items():
            value = value(ctx) if callable(value) else value
            if value is _DELETE:
                entry.pop(key, None)
            else:
                entry[key] = value

    return change


def user_entry(values: dict, *, replace: bool = False) -> Callable[[dict, Ctx], None]:
    def change(config: dict, ctx: Ctx) -> None:
        if replace:
            config["users"][0]["user"] = {}
        entry = config["users"][0]["user"]
        for key, value in values.items():
            value = value(ctx) if callable(value) else value
            if value is _DELETE:
                entry.pop(key, None)
            else:
                entry[key] = value

    return change


def context_entry(values: dict) -> Callable[[dict, Ctx], None]:
    def change(config: dict, ctx: Ctx) -> None:
        config["contexts"][0]["context"].update(values)
        for key in [k for k, v in values.items() if v is _DELETE]:
            config["contexts"][0]["context"].pop(key)

    return change


def top_level(values: dict) -> Callable[[dict, Ctx], None]:
    def change(config: dict, ctx: Ctx) -> None:
        config.update(values)

    return change


_DELETE = object()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def exec_user(script: str, *, api_version: str = "client.authentication.k8s.io/v1", **extra):
    """A user whose credentials come from an exec plugin (a script in the row's directory)."""

    def change(config: dict, ctx: Ctx) -> None:
        command = ctx.file("plugin", f"#!/bin/sh\n{script}\n", mode=0o755)
        config["users"][0]["user"] = {
            "exec": {
                "apiVersion": api_version,
                "command": str(command),
                "interactiveMode": "Never",
                **extra,
            }
        }

    return change


def certificate_pair(ctx: Ctx) -> tuple[bytes, bytes]:
    return ctx.cluster.client_certificate("admin")


# == flags ================================================================================

FLAG_ROWS = (
    Row("output-xml", ("-o", "xml"), words=("xml", "--help")),
    Row("output-table", ("--output=table",), words=("table",)),
    Row("output-empty", ("-o", ""), words=("--output",)),
    Row("output-missing-value", ("-o",), words=("-o",)),
    Row("logs-negative", ("--logs", "-1"), words=("--logs",)),
    Row("logs-word", ("--logs", "all"), words=("--logs",)),
    Row("logs-fraction", ("--logs", "1.5"), words=("--logs",)),
    Row("unknown-flag", ("--frobnicate",), words=("--frobnicate",)),
    Row("unknown-short-flag", ("-x",), words=("-x",)),
    Row("unknown-command", ("restart",), words=("restart",)),
    Row("status-rejects-undo", ("status", "--undo-on-failure"), words=("--undo-on-failure",)),
    Row("link-without-deployment", ("link",), words=("WORKLOAD",)),
    Row("unlink-without-deployment", ("unlink",), words=("WORKLOAD",)),
    Row("link-unknown-kind", ("link", "job/x", "-n", "shop"), words=("job",)),
    Row("workload-unknown-kind", ("-w", "replicaset/x", "-n", "shop"), words=("replicaset",)),
    Row("workload-bad-name", ("-w", "sts/Bad_Name", "-n", "shop"), words=("StatefulSet name",)),
    Row("link-kind-mismatch", ("link", "sts/db", "--kind", "ds", "-n", "shop"), words=("--kind",)),
    Row("all-and-workload", ("--all", "-w", "sts/db", "-n", "shop"), words=("--all",)),
    Row("namespace-missing-value", ("-n",), words=("-n",)),
    Row("namespace-uppercase", ("-n", "Shop"), words=("Shop", "-n/--namespace")),
    Row("namespace-underscore", ("-n", "shop_prod"), words=("shop_prod",)),
    Row("namespace-leading-dash", ("--namespace=-shop",), words=("-shop",)),
    Row("namespace-too-long", ("-n", "n" * 64), words=("namespace",)),
    Row("namespace-with-slash", ("-n", "shop/x"), words=("shop/x",)),
    Row("namespace-with-space", ("-n", "my shop"), words=("my shop",)),
    Row("deployment-uppercase", ("--deployment", "Backend", "-n", "shop"), words=("Backend",)),
    Row("deployment-path", ("--deployment", "../secrets", "-n", "shop"), words=("../secrets",)),
    Row("deployment-too-long", ("--deployment", "d" * 254, "-n", "shop"), words=("Deployment",)),
    Row("link-invalid-name", ("link", "Bad_Name", "-n", "shop", "--yes"), words=("Bad_Name",)),
    Row("unlink-invalid-name", ("unlink", "a b", "-n", "shop", "--yes"), words=("a b",)),
    Row("context-unknown", ("--context", "prod-typo"), words=("prod-typo", "sim")),
    Row("cluster-unknown", ("--cluster", "nowhere"), words=("nowhere",)),
    Row("user-unknown", ("--user", "nobody"), words=("nobody", "admin")),
    Row("token-empty", ("--token", ""), words=("--token",)),
    Row("as-group-without-as", ("--as-group", "ops"), words=("--as",)),
    Row("as-empty", ("--as", ""), words=("--as",)),
    Row("as-group-empty", ("--as", "jane", "--as-group", " "), words=("--as-group",)),
    Row("verbosity-word", ("-v", "loud"), words=("loud",)),
    Row("verbosity-negative", ("--v=-1",), words=("-1",)),
    Row("kubeconfig-missing-value", ("--kubeconfig",), use_kubeconfig_flag=False),
    Row("verify-expect-word", ("--verify-expect", "ok"), words=("--verify-expect", "2xx")),
    Row("verify-expect-reversed", ("--verify-expect", "299-200"), words=("empty range",)),
    Row("verify-expect-600", ("--verify-expect", "600"), words=("'600'",)),
    Row("verify-successes-zero", ("--verify-successes", "0"), words=("--verify-successes",)),
    Row("verify-url-no-scheme", ("--verify-url", "shop.example.com"), words=("https://",)),
    Row("verify-url-ftp", ("--verify-url", "ftp://shop.example.com"), words=("http://",)),
    Row(
        "verify-url-credentials",
        ("--verify-url", "https://deploy:hunter2@shop.example.com/healthz"),
        words=("must not carry credentials",),
        secrets=("hunter2",),
    ),
)


@rows(*FLAG_ROWS)
def test_bad_flags(world, row, tmp_path):
    check(world, row, tmp_path)


def test_impersonation_the_user_may_not_do_is_refused(world, tmp_path):
    row = Row("as-forbidden", ("--as", "jane"), code=REFUSED, words=("impersonate",))
    world.cluster.add_user("dev", "dev-token", [rule(["list"], "deployments", "apps")])
    kubeconfig = world.cluster.write_kubeconfig(tmp_path / "dev", user="dev")
    world.cluster.clear_requests()
    run = run_plugin([*row.args, "--kubeconfig", kubeconfig], cwd=world.checkout)
    assert_refused(run.exit_code, run.stdout, run.stderr, row.code, row.words, ("dev-token",))
    assert not patches(world.cluster)


# == durations ==============================================================================

BAD_DURATIONS = {
    "word": ("soon", "not a duration"),
    "negative": ("-5s", "negative"),
    "unknown-unit": ("1x", "not a duration"),
    "days": ("1d", "not a duration"),
    "exponent": ("1e3s", "not a duration"),
    "space-inside": ("1m 30s", "not a duration"),
    "upper-case-unit": ("5S", "not a duration"),
    "empty": ("", "not a duration"),
    "too-long": ("9999999h", "too long"),
}
DURATION_ROWS = tuple(
    Row(f"{flag[2:]}-{name}", (flag, value), words=(flag, why))
    for flag in (
        "--timeout",
        "--request-timeout",
        "--unschedulable-grace",
        "--verify-timeout",
        "--settle",
    )
    for name, (value, why) in BAD_DURATIONS.items()
)


@rows(*DURATION_ROWS)
def test_bad_durations(world, row, tmp_path):
    check(world, row, tmp_path)


# == kubeconfig files ========================================================================

NOT_PEM = b64("this is not a certificate")
EXPIRED_JWT = "e30." + b64('{"exp": 1}').rstrip("=") + ".sig"  # expired in 1970, no refresh


def other_ca(ctx: Ctx) -> str:
    """A CA that signed nothing this cluster presents."""
    return str(generate_certificates(ctx.dir / "other-pki").ca_file)


def another_certificate(ctx: Ctx) -> str:
    return b64(ctx.cluster.client_certificate("someone-else")[0])


def server_with_password(port: Callable[[Ctx], int]) -> Callable[[Ctx], str]:
    return lambda ctx: f"https://admin:{SECRET}@127.0.0.1:{port(ctx)}"


KUBECONFIG_FILE_ROWS = (
    Row("not-yaml", kubeconfig_text=lambda ctx: "{ not: [yaml", words=("kubeconfig", "line")),
    Row("tabs", kubeconfig_text=lambda ctx: "\t- tabs: are\n\tnot: allowed", words=("line",)),
    Row("a-string", kubeconfig_text=lambda ctx: "just a string", words=("mapping",)),
    Row("a-list", kubeconfig_text=lambda ctx: "- a\n- list", words=("mapping",)),
    Row(
        "alias-bomb", kubeconfig_text=lambda ctx: laughs(9), words=("excessive aliasing", "line 5")
    ),
    Row("alias-cycle", kubeconfig_text=lambda ctx: "a: &a [1, *a]\n", words=("contains it",)),
    Row("undefined-alias", kubeconfig_text=lambda ctx: "a: *nothing\n", words=("line 1",)),
    Row("huge-number", kubeconfig_text=lambda ctx: f"a: {'9' * 5000}\n", words=("int",)),
    Row("impossible-date", kubeconfig_text=lambda ctx: "a: 2024-13-45\n", words=("timestamp",)),
    Row("not-utf8", kubeconfig_text=lambda ctx: b"\xff\xfe\x00kind: Config", words=("read",)),
    Row("two-documents", kubeconfig_text=lambda ctx: "a: 1\n---\nb: 2\n", words=("line",)),
    Row("empty", kubeconfig_text=lambda ctx: "", words=("current context",)),
    Row("only-comments", kubeconfig_text=lambda ctx: "# nothing\n", words=("current context",)),
    Row("clusters-mapping", kubeconfig=top_level({"clusters": {"a": 1}}), words=("clusters",)),
    Row("users-of-strings", kubeconfig=top_level({"users": ["u"]}), words=("users",)),
    Row(
        "context-body-list",
        kubeconfig=top_level({"contexts": [{"name": "c", "context": [1]}]}),
        words=("contexts",),
    ),
    Row(
        "duplicate-cluster",
        kubeconfig=lambda c, ctx: c["clusters"].append(dict(c["clusters"][0])),
        words=("duplicate name 'sim'",),
    ),
    Row(
        "duplicate-user",
        kubeconfig=lambda c, ctx: c["users"].append(dict(c["users"][0])),
        words=("duplicate name 'admin'",),
    ),
    Row(
        "current-context-unknown",
        kubeconfig=top_level({"current-context": "gone"}),
        words=("gone", "sim"),
    ),
    Row(
        "current-context-list",
        kubeconfig=top_level({"current-context": ["sim"]}),
        words=("current context",),
    ),
    Row("no-current-context", kubeconfig=top_level({"current-context": ""}), words=("--context",)),
    Row(
        "kubeconfig-is-a-directory",
        kubeconfig_text=None,
        use_kubeconfig_flag=False,
        args=("--kubeconfig", "/"),
        words=("/",),
    ),
    Row(
        "kubeconfig-missing",
        use_kubeconfig_flag=False,
        args=("--kubeconfig", "/nowhere/config"),
        words=("/nowhere/config",),
    ),
)

KUBECONFIG_CONTEXT_ROWS = (
    Row(
        "context-without-cluster",
        kubeconfig=context_entry({"cluster": _DELETE}),
        words=("names no cluster",),
    ),
    Row(
        "context-cluster-unknown",
        kubeconfig=context_entry({"cluster": "elsewhere"}),
        words=("elsewhere",),
    ),
    Row("context-user-unknown", kubeconfig=context_entry({"user": "ghost"}), words=("ghost",)),
    Row(
        "context-namespace-invalid",
        kubeconfig=context_entry({"namespace": "Shop_Prod"}),
        words=("Shop_Prod", "context 'sim'"),
    ),
    Row(
        "context-namespace-too-long",
        kubeconfig=context_entry({"namespace": "n" * 70}),
        words=("namespace",),
    ),
)

KUBECONFIG_CLUSTER_ROWS = (
    Row("server-missing", kubeconfig=cluster_entry({"server": _DELETE}), words=("no server",)),
    Row("server-empty", kubeconfig=cluster_entry({"server": ""}), words=("no server",)),
    Row("server-a-list", kubeconfig=cluster_entry({"server": ["https://x"]}), words=("no server",)),
    Row(
        "server-with-space",
        kubeconfig=cluster_entry({"server": "https://my host"}),
        words=("server",),
    ),
    Row(
        "server-ftp",
        kubeconfig=cluster_entry({"server": "ftp://127.0.0.1"}),
        words=("ftp://127.0.0.1", "https://"),
    ),
    Row(
        "server-port-out-of-range",
        kubeconfig=cluster_entry({"server": "https://h:99999"}),
        words=("h:99999",),
    ),
    Row(
        "server-without-host",
        kubeconfig=cluster_entry({"server": "https://:6443"}),
        words=("server",),
    ),
    Row(
        "server-password-in-error",
        kubeconfig=cluster_entry({"server": f"ftp://admin:{SECRET}@127.0.0.1"}),
        words=("***",),
        secrets=(SECRET,),
    ),
    Row(
        "server-password-unreachable",
        kubeconfig=cluster_entry({"server": server_with_password(lambda ctx: closed_port())}),
        code=REFUSED,
        words=("cannot reach", "https://***@127.0.0.1"),
        secrets=(SECRET,),
    ),
    Row(
        "server-closed-port",
        kubeconfig=cluster_entry({"server": lambda ctx: f"https://127.0.0.1:{closed_port()}"}),
        code=REFUSED,
        words=("cannot reach",),
    ),
    Row(
        "http-to-the-https-port",
        kubeconfig=cluster_entry({"server": lambda ctx: f"http://127.0.0.1:{ctx.cluster.port}"}),
        code=REFUSED,
        words=("speaks HTTPS", "https://"),
    ),
    Row(
        "https-to-a-plain-http-port",
        kubeconfig=cluster_entry(
            {"server": lambda ctx: f"https://127.0.0.1:{ctx.world.plain.port}"}
        ),
        code=REFUSED,
        words=("does not speak TLS",),
    ),
    Row(
        "insecure-is-a-string",
        kubeconfig=cluster_entry({"insecure-skip-tls-verify": "false"}),
        words=("insecure-skip-tls-verify",),
    ),
    Row(
        "insecure-is-a-number",
        kubeconfig=cluster_entry({"insecure-skip-tls-verify": 1}),
        words=("insecure-skip-tls-verify",),
    ),
    Row(
        "ca-data-not-base64",
        kubeconfig=cluster_entry({"certificate-authority-data": "%%%"}),
        words=("certificate-authority-data", "base64"),
    ),
    Row(
        "ca-data-not-a-string",
        kubeconfig=cluster_entry({"certificate-authority-data": [1]}),
        words=("certificate-authority-data",),
    ),
    Row(
        "ca-data-not-pem",
        kubeconfig=cluster_entry({"certificate-authority-data": NOT_PEM}),
        words=("not a PEM certificate",),
    ),
    Row(
        "ca-file-missing",
        kubeconfig=cluster_entry(
            {"certificate-authority-data": _DELETE, "certificate-authority": "/no/ca.crt"}
        ),
        words=("/no/ca.crt",),
    ),
    Row(
        "ca-file-not-pem",
        kubeconfig=cluster_entry(
            {
                "certificate-authority-data": _DELETE,
                "certificate-authority": lambda ctx: str(ctx.file("ca.crt", "garbage")),
            }
        ),
        words=("not a PEM certificate",),
    ),
    Row(
        "ca-of-another-cluster",
        kubeconfig=cluster_entry(
            {"certificate-authority-data": _DELETE, "certificate-authority": other_ca}
        ),
        code=REFUSED,
        words=("TLS verification failed",),
    ),
    Row(
        "proxy-socks",
        kubeconfig=cluster_entry({"proxy-url": "socks5://127.0.0.1:1080"}),
        words=("proxy-url", "http://"),
    ),
    Row(
        "proxy-not-a-url", kubeconfig=cluster_entry({"proxy-url": "my proxy"}), words=("proxy-url",)
    ),
    Row("proxy-a-number", kubeconfig=cluster_entry({"proxy-url": 8080}), words=("proxy-url",)),
    Row(
        "proxy-unreachable",
        kubeconfig=cluster_entry(
            {"proxy-url": lambda ctx: f"http://proxy:{SECRET}@127.0.0.1:{closed_port()}"}
        ),
        code=REFUSED,
        words=("proxy", "proxy-url"),
        secrets=(SECRET,),
    ),
    Row(
        "tls-server-name-a-list",
        kubeconfig=cluster_entry({"tls-server-name": ["a"]}),
        words=("tls-server-name",),
    ),
)

KUBECONFIG_USER_ROWS = (
    Row("token-a-list", kubeconfig=user_entry({"token": ["t"]}), words=("token",)),
    Row(
        "token-wrong",
        kubeconfig=user_entry({"token": "expired-or-wrong"}),
        code=REFUSED,
        words=("Unauthorized", "log in again"),
        secrets=("expired-or-wrong",),
    ),
    Row(
        "token-file-missing",
        kubeconfig=user_entry({"tokenFile": "/no/token"}, replace=True),
        words=("tokenFile", "/no/token"),
    ),
    Row(
        "token-file-a-directory",
        kubeconfig=user_entry({"tokenFile": lambda ctx: str(ctx.dir)}, replace=True),
        words=("tokenFile",),
    ),
    Row(
        "token-file-relative-missing",
        kubeconfig=user_entry({"tokenFile": "token.txt"}, replace=True),
        words=("token.txt",),
    ),
    Row(
        "cert-data-not-base64",
        kubeconfig=user_entry(
            {"client-certificate-data": "***", "client-key-data": b64("k")}, replace=True
        ),
        words=("client-certificate-data", "base64"),
    ),
    Row(
        "key-data-not-base64",
        kubeconfig=user_entry(
            {"client-certificate-data": b64("c"), "client-key-data": "not base64!"}, replace=True
        ),
        words=("client-key-data",),
    ),
    Row(
        "cert-without-key",
        kubeconfig=user_entry(
            {"client-certificate-data": lambda ctx: b64(certificate_pair(ctx)[0])}, replace=True
        ),
        words=("no client-key",),
    ),
    Row(
        "key-without-cert",
        kubeconfig=user_entry(
            {"client-key-data": lambda ctx: b64(certificate_pair(ctx)[1])}, replace=True
        ),
        words=("no client-certificate",),
    ),
    Row(
        "cert-file-missing",
        kubeconfig=user_entry(
            {"client-certificate": "/no/client.crt", "client-key": "/no/client.key"}, replace=True
        ),
        words=("/no/client.crt",),
    ),
    Row(
        "cert-and-key-not-pem",
        kubeconfig=user_entry(
            {"client-certificate-data": NOT_PEM, "client-key-data": NOT_PEM}, replace=True
        ),
        words=("cannot be used",),
    ),
    Row(
        "cert-and-key-do-not-match",
        kubeconfig=user_entry(
            {
                "client-certificate-data": another_certificate,
                "client-key-data": lambda ctx: b64(certificate_pair(ctx)[1]),
            },
            replace=True,
        ),
        words=("do not belong together",),
        secrets=("PRIVATE KEY",),
    ),
    Row(
        "basic-auth-is-anonymous",
        kubeconfig=user_entry({"username": "admin", "password": SECRET}, replace=True),
        code=REFUSED,
        words=("anonymous", "log in again"),
        secrets=(SECRET,),
    ),
    Row(
        "username-a-number",
        kubeconfig=user_entry({"username": 7, "password": "x"}),
        words=("username",),
    ),
    Row(
        "auth-provider-gcp",
        kubeconfig=user_entry({"auth-provider": {"name": "gcp"}}, replace=True),
        words=("gke-gcloud-auth-plugin",),
    ),
    Row(
        "auth-provider-azure",
        kubeconfig=user_entry({"auth-provider": {"name": "azure"}}, replace=True),
        words=("kubelogin",),
    ),
    Row(
        "oidc-without-id-token",
        kubeconfig=user_entry({"auth-provider": {"name": "oidc", "config": {}}}, replace=True),
        words=("id-token",),
    ),
    Row(
        "oidc-token-not-a-jwt",
        kubeconfig=user_entry(
            {"auth-provider": {"name": "oidc", "config": {"id-token": f"bad/{SECRET}"}}},
            replace=True,
        ),
        code=REFUSED,
        words=("Unauthorized", "log in again"),
        secrets=(SECRET,),
    ),
    Row(
        "oidc-jwt-with-unreadable-payload",
        kubeconfig=user_entry(
            {"auth-provider": {"name": "oidc", "config": {"id-token": f"a.{SECRET}.c"}}},
            replace=True,
        ),
        code=REFUSED,
        words=("Unauthorized",),
        secrets=(SECRET,),
    ),
    Row(
        "oidc-jwt-expired-cannot-refresh",
        kubeconfig=user_entry(
            {
                "auth-provider": {
                    "name": "oidc",
                    "config": {"id-token": EXPIRED_JWT},
                }
            },
            replace=True,
        ),
        code=REFUSED,
        words=("Unauthorized",),
    ),
    Row("as-groups-without-as", kubeconfig=user_entry({"as-groups": ["ops"]}), words=("--as",)),
    Row("as-a-list", kubeconfig=user_entry({"as": ["jane"]}), words=("as",)),
)

KUBECONFIG_EXEC_ROWS = (
    Row(
        "exec-not-a-mapping", kubeconfig=user_entry({"exec": "aws"}, replace=True), words=("exec",)
    ),
    Row(
        "exec-without-command",
        kubeconfig=user_entry(
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}, replace=True
        ),
        words=("without a command",),
    ),
    Row(
        "exec-not-installed",
        kubeconfig=user_entry(
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "kubelogin-x",
                    "installHint": "brew install kubelogin-x",
                }
            },
            replace=True,
        ),
        words=("kubelogin-x", "brew install"),
    ),
    Row(
        "exec-failing",
        kubeconfig=exec_user("echo 'session expired, run sso login' >&2; exit 1"),
        code=REFUSED,
        words=("failed (exit code 1)", "session expired"),
    ),
    Row(
        "exec-prints-garbage",
        kubeconfig=exec_user(f"echo 'not json {SECRET}'"),
        code=REFUSED,
        words=("not an ExecCredential",),
        secrets=(SECRET,),
    ),
    Row(
        "exec-wrong-api-version",
        kubeconfig=exec_user(
            'echo \'{"apiVersion": "client.authentication.k8s.io/v1beta1",'
            ' "kind": "ExecCredential", "status": {"token": "t"}}\''
        ),
        code=REFUSED,
        words=("apiVersion",),
    ),
    Row(
        "exec-no-credential",
        kubeconfig=exec_user(
            'echo \'{"apiVersion": "client.authentication.k8s.io/v1",'
            ' "kind": "ExecCredential", "status": {}}\''
        ),
        code=REFUSED,
        words=("no token",),
    ),
    Row(
        "exec-without-api-version",
        kubeconfig=exec_user("true", api_version=""),
        words=("apiVersion",),
    ),
    Row(
        "exec-interactive-mode-unknown",
        kubeconfig=exec_user("true", interactiveMode="Maybe"),
        words=("interactiveMode",),
    ),
    Row(
        "exec-needs-a-terminal",
        kubeconfig=exec_user("true", interactiveMode="Always"),
        words=("terminal",),
    ),
    Row(
        "exec-hangs",
        kubeconfig=exec_user("sleep 600"),
        code=REFUSED,
        words=("did not answer within", "--timeout"),
    ),
)

KUBECONFIG_ROWS = (
    KUBECONFIG_FILE_ROWS
    + KUBECONFIG_CONTEXT_ROWS
    + KUBECONFIG_CLUSTER_ROWS
    + KUBECONFIG_USER_ROWS
    + KUBECONFIG_EXEC_ROWS
)


@rows(*KUBECONFIG_ROWS)
def test_bad_kubeconfigs(world, row, tmp_path):
    check(world, row, tmp_path)


# == .restart-backend.yaml ===================================================================


def config_row(name: str, text: str | bytes, line: Optional[int], *words: str) -> Row:
    where = (f"line {line}",) if line is not None else ()
    return Row(f"config-{name}", config_file=text, words=(".restart-backend.yaml", *where, *words))


CONFIG_FILE_ROWS = (
    config_row("unknown-key", "namespace: shop\nnamepsace: x\n", 2, "did you mean 'namespace'"),
    config_row("unknown-key-in-branch", "branches:\n  main:\n    timout: 5m\n", 3, "timout"),
    config_row("branches-in-branch", "branches:\n  main:\n    branches: {}\n", 3, "branches"),
    config_row("context-a-list", "context: [a, b]\n", 1, "context"),
    config_row("context-empty", "context: ''\n", 1, "context"),
    config_row("namespace-a-number", "namespace: 42\n", 1, "namespace"),
    config_row("namespace-invalid", "namespace: Shop_Prod\n", 1, "not a valid namespace"),
    config_row("namespace-too-long", f"namespace: {'n' * 64}\n", 1, "namespace"),
    config_row("deployment-invalid", "deployment: Bad_Name\n", 1, "Deployment name"),
    config_row("deployment-empty", "deployment: ''\n", 1, "deployment"),
    config_row("deployment-a-mapping", "deployment: {name: x}\n", 1, "not a mapping"),
    config_row("workloads-a-mapping", "workloads: {api: x}\n", 1, "workloads"),
    config_row("workloads-empty", "workloads: []\n", 1, "list of workloads"),
    config_row("workloads-unknown-kind", "workloads: [job/x]\n", 1, "'job' is not a kind"),
    config_row("workloads-bad-name", "workloads: [sts/Bad_Name]\n", 1, "StatefulSet name"),
    config_row("order-a-string", "order: api\n", 1, "order"),
    config_row("order-empty-wave", "order: [[]]\n", 1, "at least one workload"),
    config_row("order-a-number", "order: [1]\n", 1, "order"),
    config_row("delete-pods-word", "delete-pods: yes please\n", 1, "delete-pods"),
    config_row("selector-a-mapping", "selector: {app: x}\n", 1, "selector"),
    config_row("selector-no-operator", "selector: tier api\n", 1, "expected an operator"),
    config_row("selector-open-set", "selector: 'env in (a'\n", 1, "parentheses"),
    config_row("selector-empty-set", "selector: 'env in ()'\n", 1, "at least one value"),
    config_row("selector-bad-key", "selector: -tier=api\n", 1, "label key"),
    config_row("selector-bad-value", f"selector: tier={'v' * 64}\n", 1, "label value"),
    config_row("selector-trailing-comma", "selector: 'tier=api,'\n", 1, "empty requirement"),
    config_row("selector-in-branch", "branches:\n  main:\n    selector: a=b=c\n", 3, "selector"),
    config_row("timeout-word", "timeout: soon\n", 1, "timeout"),
    config_row("timeout-negative", "timeout: -5s\n", 1, "negative"),
    config_row("timeout-negative-number", "timeout: -5\n", 1, "negative"),
    config_row("timeout-boolean", "timeout: true\n", 1, "timeout"),
    config_row("timeout-too-long", "timeout: 9999999h\n", 1, "too long"),
    config_row("timeout-a-list", "timeout: [1m]\n", 1, "timeout"),
    config_row("logs-word", "logs: verbose\n", 1, "logs"),
    config_row("logs-negative", "logs: -1\n", 1, "logs"),
    config_row("logs-fraction", "logs: 1.5\n", 1, "logs"),
    config_row("verify-a-word", "verify: always\n", 1, "verify"),
    config_row("verify-unknown-key", "verify: {pth: /x}\n", 1, "unknown key 'pth' in verify"),
    config_row("verify-bad-expect", "verify: {expect: 20x}\n", 1, "verify.expect"),
    config_row("verify-zero-successes", "verify: {successes: 0}\n", 1, "verify.successes"),
    config_row(
        "verify-url-credentials", "verify: {url: 'https://a:hunter2@x.example'}\n", 1, "credentials"
    ),
    config_row("settle-word", "settle: a while\n", 1, "settle"),
    config_row("branches-a-list", "\n\nbranches: [main]\n", 3, "branches"),
    config_row("branch-entry-a-string", "branches:\n  main: shop\n", 2, "must be a mapping"),
    config_row("glob-unclosed", "branches:\n  'release/[0-9': {}\n", 2, "closing ']'"),
    config_row("glob-with-space", "branches:\n  'my branch': {}\n", 2, "never allows"),
    config_row("glob-empty", "branches:\n  '': {}\n", 2, "empty pattern"),
    config_row("glob-a-number", "branches:\n  1.0: {}\n", 2, "keys must be strings"),
    config_row("duplicate-key", "namespace: a\nnamespace: b\n", 2, "duplicate key"),
    config_row("duplicate-branch", "branches:\n  main: {}\n  main: {}\n", 3, "duplicate key"),
    config_row("a-list", "- namespace: shop\n", 1, "mapping"),
    config_row("bad-indent", "namespace: shop\n  bad indent: x\n", 2, "not valid YAML"),
    config_row("unclosed-bracket", "namespace: [unclosed\n", 2, "not valid YAML"),
    config_row("tab-indent", "branches:\n\tmain: {}\n", 2, "not valid YAML"),
    config_row("alias-bomb", laughs(9), 5, "excessive aliasing", "aliases"),
    config_row("alias-cycle", "selector: &a [*a]\n", 1, "contains it"),
    config_row("huge-number", f"logs: {'9' * 5000}\n", 1, "int"),
    config_row("impossible-date", "namespace: 2024-13-45\n", 1, "timestamp"),
    config_row("not-utf8", b"namespace: \xff\xfe\n", None, "UTF-8"),
    config_row("two-documents", "namespace: a\n---\nnamespace: b\n", 2, "not valid YAML"),
    config_row("long-key", f"{'k' * 1000}: 1\n", 1, "unknown key"),
    config_row("key-too-long-for-yaml", f"{'k' * 5000}: 1\n", 1, "not valid YAML"),
    Row("config-context-unknown", config_file="context: prod-typo\n", words=("prod-typo",)),
)


@rows(*CONFIG_FILE_ROWS)
def test_bad_config_files(world, row, tmp_path):
    error, _hint = check(world, row, tmp_path)
    assert len(error) < 400  # user values are trimmed, never printed whole


def test_config_file_that_is_a_directory(world, tmp_path):
    row = Row("config-a-directory", words=(".restart-backend.yaml",))
    checkout = make_checkout(tmp_path / "shop")
    (checkout / ".restart-backend.yaml").mkdir()
    run = run_plugin(["--kubeconfig", world.cluster.kubeconfig, "--timeout", "3s"], cwd=checkout)
    assert_refused(run.exit_code, run.stdout, run.stderr, row.code, row.words)


# == git: the checkout, --repo and --branch ==================================================


def git(ctx_or_path, *args: str) -> None:
    cwd = ctx_or_path.checkout if isinstance(ctx_or_path, Ctx) else ctx_or_path
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def origin(url: str) -> Callable[[Ctx], None]:
    return lambda ctx: git(ctx, "remote", "set-url", "origin", url)


def detached(ctx: Ctx) -> None:
    git(ctx, "checkout", "-q", "--detach")


def elsewhere(make: Callable[[Path], Path]) -> Callable[[Ctx], None]:
    """Run the row in another directory than the checkout (``make`` builds it)."""

    def change(ctx: Ctx) -> None:
        ctx.checkout = make(ctx.dir)

    return change


def plain_directory(root: Path) -> Path:
    (root / "plain").mkdir()
    return root / "plain"


def empty_repository(root: Path) -> Path:
    path = root / "empty"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "https://github.com/acme/shop.git")
    return path


def bare_repository(root: Path) -> Path:
    path = root / "shop.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True, capture_output=True)
    return path


def orphan_branch(ctx: Ctx) -> None:
    git(ctx, "checkout", "-q", "--orphan", "fresh")


GIT_STATE_ROWS = (
    Row("not-a-checkout", git=elsewhere(plain_directory), words=("Not a git checkout", "--repo")),
    Row(
        "inside-dot-git",
        git=lambda ctx: setattr(ctx, "checkout", ctx.checkout / ".git"),
        words=("Not a git checkout",),
    ),
    Row("bare-repository", git=elsewhere(bare_repository), words=("--repo",)),
    Row("empty-repository", git=elsewhere(empty_repository), words=("no commits", "--branch")),
    Row("orphan-branch", git=orphan_branch, words=("no commits", "fresh")),
    Row(
        "no-origin",
        git=lambda ctx: git(ctx, "remote", "remove", "origin"),
        words=("origin", "--repo"),
    ),
    Row("detached-head", git=detached, words=("detached", "--branch")),
    Row("origin-not-a-url", git=origin("not a url"), words=("--repo",)),
    Row("origin-host-only", git=origin("https://github.com/"), words=("--repo",)),
    Row("origin-scp-without-path", git=origin("git@github.com:"), words=("--repo",)),
    Row("origin-owner-only", git=origin("https://github.com/acme"), words=("OWNER/NAME",)),
    Row("origin-ftp", git=origin("ftp://example.com/acme/shop.git"), words=("ftp://",)),
    Row(
        "origin-bad-port",
        git=origin("https://github.com:99999/acme/shop"),
        words=("99999", "--repo"),
    ),
    Row("origin-azure-incomplete", git=origin("https://dev.azure.com/acme/_git"), words=("_git",)),
    Row("origin-dot-dot", git=origin("https://github.com/acme/../shop"), words=("--repo",)),
    Row(
        "origin-with-token-not-a-repo",
        git=origin(f"https://x-access-token:{SECRET}@github.com/"),
        words=("***",),
        secrets=(SECRET,),
    ),
    Row(
        "origin-rewritten-by-insteadof",
        git=lambda ctx: git(ctx, "config", "url.file:///.insteadOf", "https://github.com/acme/"),
        words=("--repo",),
    ),
)

REPO_FLAG_ROWS = tuple(
    Row(f"repo-{name}", ("--repo", value), words=("--repo",), secrets=secrets)
    for name, value, secrets in [
        ("no-owner", "shop", ()),
        ("no-name", "acme/", ()),
        ("leading-slash", "/shop", ()),
        ("space", "a/b/c/d e", ()),
        ("option-like", "--upload-pack=x", ()),
        ("dot-dot", "acme/..", ()),
        ("double-slash", "acme//shop", ()),
        ("empty", "", ()),
        ("blank", " ", ()),
        ("url-without-path", "https://github.com", ()),
        ("url-with-token", f"https://{SECRET}@github.com/", (SECRET,)),
        ("control-character", "acme/sh\x1bop", ()),
    ]
)

BRANCH_FLAG_ROWS = tuple(
    Row(f"branch-{name}", ("--branch", value), words=words)
    for name, value, words in [
        ("empty", "", ("empty",)),
        ("newline", "main\nFAKE", ("control characters",)),
        ("escape", "a\x1b[31mred", ("control characters",)),
        ("tab", "a\tb", ("control characters",)),
        ("dots", "...", ("git allows",)),
        ("dash", "-", ("git allows",)),
        ("option-like", "--force", ("git allows",)),
        ("space", "a b", ("git allows",)),
        ("lock-suffix", "x.lock", ("git allows",)),
        ("double-dot", "a..b", ("git allows",)),
        ("head", "HEAD", ("git allows",)),
        ("colon", "a:b", ("git allows",)),
        ("tilde", "a~1", ("git allows",)),
        ("caret", "a^", ("git allows",)),
        ("question-mark", "a?", ("git allows",)),
        ("star", "a*", ("git allows",)),
        ("bracket", "a[b", ("git allows",)),
        ("backslash", "a\\b", ("git allows",)),
        ("leading-slash", "/a", ("git allows",)),
        ("trailing-slash", "a/", ("git allows",)),
        ("double-slash", "a//b", ("git allows",)),
        ("hidden-part", "a/.b", ("git allows",)),
        ("reflog-syntax", "a@{1}", ("git allows",)),
        ("trailing-dot", "x.", ("git allows",)),
    ]
)


@rows(*GIT_STATE_ROWS, *REPO_FLAG_ROWS, *BRANCH_FLAG_ROWS)
def test_bad_git_state_repo_and_branch(world, row, tmp_path):
    check(world, row, tmp_path)


@pytest.mark.parametrize(
    "args, code, words",
    [
        ((), USAGE, ("no longer exists", "--repo")),
        (("--repo", "acme/shop"), USAGE, ("no longer exists",)),
        (("--branch", "main"), USAGE, ("no longer exists",)),
    ],
    ids=["plain", "repo-only", "branch-only"],
)
def test_deleted_working_directory(world, tmp_path, args, code, words):
    gone = tmp_path / "gone"
    gone.mkdir()
    world.cluster.clear_requests()
    done = run_process(
        world,
        tmp_path,
        ["--kubeconfig", world.cluster.kubeconfig, *args],
        before=f"cd {gone} && rmdir {gone}",
    )
    assert_refused(done.returncode, done.stdout, done.stderr, code, words)
    assert not patches(world.cluster)


def run_process(
    world: World,
    cwd: Path,
    args: list[str],
    *,
    before: str = "",
    stdout=None,
    env: Optional[dict] = None,
) -> subprocess.CompletedProcess:
    """The console script as a real process, after the shell commands in ``before``."""
    script = f'{before + " && " if before else ""}exec "$@"'
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "KUBECONFIG": "", "NO_COLOR": "1"}
    return subprocess.run(
        ["sh", "-c", script, "sh", str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


# == environment variables ====================================================================


def home_with_kubeconfig(content: Optional[str], *, directory: bool = False):
    """HOME for the row, with ~/.kube/config holding ``content`` (or being a directory)."""

    def env(ctx: Ctx) -> dict:
        home = ctx.dir / "home"
        (home / ".kube").mkdir(parents=True)
        if directory:
            (home / ".kube" / "config").mkdir()
        elif content is not None:
            (home / ".kube" / "config").write_text(content)
        return {"HOME": str(home)}

    return env


def kubeconfig_list(*names: str):
    """KUBECONFIG naming files in the row's directory (``admin`` is a good one)."""

    def env(ctx: Ctx) -> dict:
        paths = []
        for name in names:
            if name == "admin":
                paths.append(str(ctx.kubeconfig))
            elif name == "broken":
                paths.append(str(ctx.file("broken", "users: [unclosed\n")))
            else:
                paths.append(str(ctx.dir / name))
        return {"KUBECONFIG": os.pathsep.join(paths)}

    return env


def global_git_config(text: str):
    def env(ctx: Ctx) -> dict:
        return {"GIT_CONFIG_GLOBAL": str(ctx.file("gitconfig", text))}

    return env


ENVIRONMENT_ROWS = (
    Row(
        "kubeconfig-env-missing-files",
        env=kubeconfig_list("nope", "nada"),
        use_kubeconfig_flag=False,
        words=("No kubeconfig found", "KUBECONFIG"),
    ),
    Row(
        "kubeconfig-env-only-separators",
        env=lambda ctx: {"KUBECONFIG": os.pathsep * 3},
        use_kubeconfig_flag=False,
        words=("No kubeconfig found",),
    ),
    Row(
        "kubeconfig-env-a-directory",
        env=lambda ctx: {"KUBECONFIG": str(ctx.dir)},
        use_kubeconfig_flag=False,
        words=("Is a directory",),
    ),
    Row(
        "kubeconfig-env-second-file-broken",
        env=kubeconfig_list("admin", "broken"),
        use_kubeconfig_flag=False,
        words=("broken", "line"),
    ),
    Row(
        "home-without-kubeconfig",
        env=home_with_kubeconfig(None),
        use_kubeconfig_flag=False,
        words=("No kubeconfig found", ".kube/config"),
    ),
    Row(
        "home-kubeconfig-a-directory",
        env=home_with_kubeconfig(None, directory=True),
        use_kubeconfig_flag=False,
        words=("Is a directory",),
    ),
    Row(
        "home-kubeconfig-alias-bomb",
        env=home_with_kubeconfig(laughs(9)),
        use_kubeconfig_flag=False,
        words=("excessive aliasing",),
    ),
    Row(
        "in-cluster-without-service-account",
        env=lambda ctx: {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        use_kubeconfig_flag=False,
        words=("In-cluster configuration", "--kubeconfig"),
    ),
    Row(
        "in-cluster-as-group-without-as",
        ("--as-group", "ops"),
        env=lambda ctx: {"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
        use_kubeconfig_flag=False,
        words=("--as",),
    ),
    Row(
        "path-without-git",
        env=lambda ctx: {"PATH": str(ctx.dir / "empty-bin")},
        words=("git is not installed", "--repo"),
    ),
    Row(
        "git-dir-nowhere",
        env=lambda ctx: {"GIT_DIR": str(ctx.dir / "nowhere")},
        words=("Not a git checkout",),
    ),
    Row(
        "git-config-rewrites-origin",
        env=global_git_config('[url "file:///"]\n\tinsteadOf = https://github.com/acme/\n'),
        words=("origin",),
    ),
    Row(
        "ci-branch-with-newline",
        git=detached,
        env=lambda ctx: {"GITHUB_HEAD_REF": "a\nb"},
        words=("GITHUB_HEAD_REF", "control characters"),
    ),
    Row(
        "ci-branch-double-dot",
        git=detached,
        env=lambda ctx: {"BRANCH_NAME": "a..b"},
        words=("BRANCH_NAME", "git allows"),
    ),
    Row(
        "ci-branch-option-like",
        git=detached,
        env=lambda ctx: {"CI_COMMIT_REF_NAME": "-x"},
        words=("CI_COMMIT_REF_NAME",),
    ),
    Row(
        "ci-branch-with-space",
        git=detached,
        env=lambda ctx: {"GITHUB_REF_NAME": "my branch"},
        words=("GITHUB_REF_NAME",),
    ),
    Row(
        "ci-branches-all-blank",
        git=detached,
        env=lambda ctx: {"GITHUB_HEAD_REF": " ", "GITHUB_REF_NAME": "", "BRANCH_NAME": "\t"},
        words=("detached", "--branch"),
    ),
)


@rows(*ENVIRONMENT_ROWS)
def test_bad_environment(world, row, tmp_path):
    check(world, row, tmp_path)


# == terminals and pipes (real processes, real file descriptors) ==============================


@dataclass(frozen=True)
class Stream:
    id: str
    args: tuple[str, ...]
    words: tuple[str, ...]
    stdout: str = "pipe"  # "pipe", "full" (/dev/full), "closed"
    stdin: str = "null"  # "null", "closed"
    detached_with: Optional[str] = None  # a CI branch variable for a detached checkout

    def __str__(self) -> str:
        return self.id


STREAM_ROWS = (
    Stream(
        "full-dry-run",
        ("--dry-run",),
        ("cannot write to standard output", "not sent"),
        stdout="full",
    ),
    Stream("full-dry-run-json", ("--dry-run", "-o", "json"), ("not sent",), stdout="full"),
    Stream("full-list", ("list", "-n", "shop"), ("standard output",), stdout="full"),
    Stream("full-list-yaml", ("list", "-o", "yaml"), ("standard output",), stdout="full"),
    Stream(
        "full-link",
        ("link", "worker", "-n", "shop", "--force", "--yes"),
        ("not sent",),
        stdout="full",
    ),
    Stream("full-note-before-the-patch", (), ("not sent",), stdout="full", detached_with="main"),
    Stream(
        "link-without-terminal", ("link", "worker", "-n", "shop", "--force"), ("terminal", "--yes")
    ),
    Stream("unlink-without-terminal", ("unlink", "backend", "-n", "shop"), ("terminal",)),
    Stream(
        "link-with-stdin-closed",
        ("link", "worker", "-n", "shop", "--force"),
        ("--yes",),
        stdin="closed",
    ),
)


@pytest.mark.parametrize("row", STREAM_ROWS, ids=str)
def test_bad_terminals_and_pipes(world, row, tmp_path):
    checkout = make_checkout(tmp_path / "shop")
    if row.detached_with:
        git(checkout, "checkout", "-q", "--detach")
    args = list(row.args)
    command = [args.pop(0)] if args and args[0] in SUBCOMMANDS else []
    redirect = {"pipe": "", "full": "exec >/dev/full", "closed": "exec >&-"}[row.stdout]
    close_stdin = "exec <&-" if row.stdin == "closed" else ""
    before = " && ".join(part for part in (redirect, close_stdin) if part)
    world.cluster.clear_requests()
    done = run_process(
        world,
        checkout,
        [*command, "--kubeconfig", world.cluster.kubeconfig, *args],
        before=before,
        env={"GITHUB_REF_NAME": row.detached_with} if row.detached_with else None,
    )
    assert_refused(done.returncode, done.stdout or "", done.stderr, USAGE, row.words)
    assert not patches(world.cluster)


# == what the cluster says: no such Deployment, several, paused, forbidden ====================


def link_repo(cluster: SimCluster, namespace: str, name: str, repo: str, **kwargs) -> None:
    owner, _, project = repo.partition("/")
    cluster.create_deployment(
        namespace,
        name,
        labels={
            "restart-backend/repo": f"{owner}-{project}",
            "restart-backend/branch": "main",
            "app": name,
        },
        annotations={"restart-backend/repo": repo, "restart-backend/branch": "main"},
        **kwargs,
    )


CLUSTER_ROWS = (
    Row(
        "no-linked-deployment",
        ("--repo", "acme/nothing", "--branch", "main"),
        code=NOT_FOUND,
        words=("No workload found", "link"),
    ),
    Row(
        "two-linked-deployments",
        ("--repo", "acme/twins", "--branch", "main"),
        code=NOT_FOUND,
        words=("twins/one", "twins/two"),
    ),
    Row(
        "paused-deployment",
        ("--repo", "acme/paused", "--branch", "main"),
        code=REFUSED,
        words=("paused", "kubectl rollout resume"),
    ),
    Row(
        "paused-deployment-status",
        ("status", "--repo", "acme/paused", "--branch", "main"),
        code=REFUSED,
        words=("paused",),
    ),
    Row(
        "unknown-deployment-name",
        ("--deployment", "frontend", "-n", "shop"),
        code=NOT_FOUND,
        words=("frontend",),
    ),
    Row(
        "unknown-namespace",
        ("--deployment", "backend", "-n", "nowhere"),
        code=NOT_FOUND,
        words=("nowhere",),
    ),
    Row(
        "unlink-unknown",
        ("unlink", "frontend", "-n", "shop", "--yes"),
        code=NOT_FOUND,
        words=("frontend",),
    ),
    Row(
        "link-unknown",
        ("link", "frontend", "-n", "shop", "--yes"),
        code=NOT_FOUND,
        words=("frontend",),
    ),
)


@pytest.fixture(scope="module")
def odd_deployments(world):
    """Deployments the cluster rows need, in their own namespaces (shop stays as it was)."""
    cluster = world.cluster
    link_repo(cluster, "twins", "one", "acme/twins")
    link_repo(cluster, "twins", "two", "acme/twins")
    link_repo(cluster, "paused", "backend", "acme/paused", paused=True)
    return cluster


@rows(*CLUSTER_ROWS)
def test_what_the_cluster_refuses(world, odd_deployments, row, tmp_path):
    check(world, row, tmp_path)


FULL = {
    ("apps", "deployments"): ["get", "list", "watch", "patch"],
    ("apps", "replicasets"): ["list", "watch"],
    ("", "pods"): ["list", "watch"],
}


def user_without(cluster, verb, resource, group="apps"):
    """A user with the minimal Role in namespace shop, minus one verb on one resource."""
    rules = []
    for (grp, res), verbs in FULL.items():
        kept = [v for v in verbs if not (res == resource and grp == group and v == verb)]
        rules.append(rule(kept, [res], grp, namespaces="shop"))
    cluster.add_user("dev", "dev-token", rules)
    return cluster.write_kubeconfig(user="dev", namespace="shop", context="dev")


@pytest.mark.parametrize(
    "verb, resource, args",
    [
        ("list", "deployments", []),
        ("get", "deployments", ["--deployment", "backend", "-n", "shop"]),
        ("patch", "deployments", []),
        ("watch", "deployments", []),
        ("watch", "pods", []),
    ],
    ids=["list", "get", "patch", "watch-deployments", "watch-pods"],
)
def test_forbidden_says_which_permission_is_missing(cluster, checkout, verb, resource, args):
    link(cluster)
    if verb == "watch":  # the watch is tried before the rollout could complete without it
        cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    group = "" if resource == "pods" else "apps"
    kubeconfig = user_without(cluster, verb, resource, group)
    run = run_plugin(["--kubeconfig", kubeconfig, "--timeout", "20s", *args], cwd=checkout)
    error, hint = assert_refused(
        run.exit_code, run.stdout, run.stderr, REFUSED, ("forbidden", f"cannot {verb}")
    )
    assert f'"{resource}"' in error
    assert verb in hint and resource in hint
    applied = [p for p in patches(cluster) if p.status == 200]
    if verb == "watch":
        # Watching is only tried after the PATCH: the restart was triggered and said so.
        assert "Rolling restart triggered" in run.stdout and len(applied) == 1
    else:
        assert not applied


def test_tls_with_a_wrong_server_name(make_cluster, checkout):
    # The server's certificate names 127.0.0.1 and localhost; 127.0.0.2 is the same machine.
    cluster = make_cluster(host="127.0.0.2")
    link(cluster)
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "20s"], cwd=checkout)
    error, hint = assert_refused(
        run.exit_code, run.stdout, run.stderr, REFUSED, ("TLS verification failed", "127.0.0.2")
    )
    assert "insecure" not in (error + hint).lower()
    assert not patches(cluster)


def test_a_slow_server_says_timed_out_and_gives_up(make_cluster, checkout):
    cluster = make_cluster()
    link(cluster)
    cluster.faults.set_latency(3.0)
    args = ["--kubeconfig", cluster.kubeconfig, "--timeout", "60s", "--request-timeout", "0.5s"]
    run = run_plugin(args, cwd=checkout)
    cluster.faults.clear()
    assert_refused(run.exit_code, run.stdout, run.stderr, REFUSED, ("timed out",))
    assert not patches(cluster)  # how often it tries: test_api_errors, on a silent server


# -- not bad input: the restart happens, and the verdict (not an error) says what went wrong ---


def test_deployment_whose_pods_cannot_be_created_fails_with_the_reason(cluster, checkout):
    link(cluster)
    cluster.set_pod_quota("shop", 3)
    run = run_plugin(
        ["--kubeconfig", cluster.kubeconfig, "--timeout", "20s", "--config-grace", "1s"],
        cwd=checkout,
    )  # quota can free as old pods go: a grace, then the verdict
    assert run.exit_code == FAILED, run.output
    assert "Traceback" not in run.output
    assert "quota" in run.stdout.lower()
    assert len(patches(cluster)) == 1


def test_crash_looping_new_pods_are_a_verdict_not_an_error(cluster, checkout):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = run_plugin(["--kubeconfig", cluster.kubeconfig, "--timeout", "20s"], cwd=checkout)
    assert run.exit_code == FAILED, run.output
    assert "error: " not in run.stderr


# == how many kinds of bad input the table covers ============================================

TABLE = (
    FLAG_ROWS
    + DURATION_ROWS
    + KUBECONFIG_ROWS
    + CONFIG_FILE_ROWS
    + GIT_STATE_ROWS
    + REPO_FLAG_ROWS
    + BRANCH_FLAG_ROWS
    + ENVIRONMENT_ROWS
    + STREAM_ROWS
    + CLUSTER_ROWS
)


def test_the_table_covers_the_kinds_of_input_the_review_tried():
    ids = [row.id for row in TABLE]
    assert len(ids) == len(set(ids))  # each row a different kind
    assert len(ids) >= 226
