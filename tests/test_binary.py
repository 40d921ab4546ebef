"""The shipped artifact: the PyInstaller binary installed from its archive the way krew does,
run by real kubectl with a PATH that holds no Python venv; and ``pip install .``."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.plugin_runner import LINK_ANNOTATIONS, LINK_LABELS

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
SYSTEM_PATH = "/usr/bin:/bin"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

# The first test also waits for the build (a fresh build venv comes from PyPI): minutes.
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900)]


def packaging_module(name: str):
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))
    return importlib.import_module(name)


krew_manifest = packaging_module("krew_manifest")


@pytest.fixture(scope="module")
def built():
    return packaging_module("binary_build").built_release("onedir")


@pytest.fixture(scope="module")
def krew_bin(built, tmp_path_factory) -> Path:
    """krew's bin dir after installing the archive with the manifest rendered for it."""
    manifest = krew_manifest.render_manifest(
        (ROOT / "krew" / "restart-backend.yaml").read_text(), built.tag, built.archive.parent
    )
    platform = krew_manifest.platform_for(manifest, built.os_name, built.arch)
    root = tmp_path_factory.mktemp("krew")
    link = krew_manifest.install_like_krew(manifest, platform, built.archive, root)
    # docs/install.md: one more link, named for kubectl's completion lookup.
    link.with_name("kubectl_complete-restart_backend").symlink_to(link.name)
    return link.parent


def run(args: list[str], krew_bin: Path, home: Path, **env: str) -> subprocess.CompletedProcess:
    """Run with a user's environment: krew's bin dir and system dirs on PATH, no venv."""
    environment = {
        "PATH": f"{krew_bin}{os.pathsep}{SYSTEM_PATH}",
        "HOME": str(home),
        "KUBECONFIG": "",
        "NO_COLOR": "1",
        "TMPDIR": str(home),
        **env,
    }
    return subprocess.run(args, capture_output=True, text=True, env=environment, timeout=120)


def test_kubectl_plugin_list_shows_the_plugin_without_warnings(krew_bin, tmp_path):
    result = run([KUBECTL, "plugin", "list"], krew_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{krew_bin}/kubectl-restart_backend" in result.stdout.splitlines()
    assert "warning" not in (result.stdout + result.stderr).lower()


def test_kubectl_restart_backend_help(krew_bin, tmp_path):
    result = run([KUBECTL, "restart-backend", "--help"], krew_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--deployment" in result.stdout
    assert "Exit codes:" in result.stdout


def test_kubectl_restart_backend_version(krew_bin, built, tmp_path):
    result = run([KUBECTL, "restart-backend", "--version"], krew_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert built.tag.lstrip("v") in result.stdout


def test_kubectl_completes_the_plugin_through_the_same_binary(krew_bin, tmp_path):
    result = run([KUBECTL, "__complete", "restart-backend", "-o", ""], krew_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == ["json", "ndjson", "text", "yaml"]
    assert lines[4] == ":4"


def link_deployment(cluster, namespace: str = "shop", name: str = "backend") -> None:
    cluster.create_deployment(
        namespace,
        name,
        labels={**LINK_LABELS, "app": name},
        annotations=dict(LINK_ANNOTATIONS),
    )


def test_a_full_restart_through_kubectl_and_the_binary(cluster, krew_bin, tmp_path):
    link_deployment(cluster)
    args = ["restart-backend", "--repo", "acme/shop", "--branch", "main", "--timeout", "60s"]
    result = run([KUBECTL, *args, "--kubeconfig", cluster.kubeconfig], krew_bin, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rolling restart complete for backend" in result.stdout
    deployment = cluster.get("deployments", "shop", "backend")
    assert RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    assert [r.method for r in cluster.requests].count("PATCH") == 1


def exec_kubeconfig(cluster, directory: Path, seen: Path) -> Path:
    """A kubeconfig whose user runs an exec plugin that records the LD_LIBRARY_PATH it got."""
    plugin = directory / "record-env-credential"
    plugin.write_text(
        "#!/bin/sh\n"
        f"printf '%s' \"${{LD_LIBRARY_PATH-<unset>}}\" > '{seen}'\n"
        "printf '%s' '"
        + json.dumps(
            {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "kind": "ExecCredential",
                "status": {"token": cluster.token_of("admin")},
            }
        )
        + "'\n"
    )
    plugin.chmod(0o755)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    path = directory / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("user_value", "expected"),
    [pytest.param("/opt/users-own-libs", "/opt/users-own-libs", id="kept"), (None, "<unset>")],
)
def test_exec_credential_plugins_get_the_users_ld_library_path(
    cluster, krew_bin, tmp_path, user_value, expected
):
    link_deployment(cluster)
    seen = tmp_path / "seen"
    config = exec_kubeconfig(cluster, tmp_path, seen)
    env = {"LD_LIBRARY_PATH": user_value} if user_value is not None else {}
    binary = str(krew_bin / "kubectl-restart_backend")
    args = ["--deployment", "backend", "-n", "shop", "--dry-run", "--kubeconfig", str(config)]
    result = run([binary, *args], krew_bin, tmp_path, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen.read_text() == expected


def test_the_binary_bundles_the_fast_kubernetes_client_line(built):
    # setup.cfg allows the 34+ client (pydantic models, aiohttp), which more than doubles
    # start-up; the binary is built with packaging/binary-constraints.txt (the 33.x line).
    from PyInstaller.archive.readers import CArchiveReader

    modules = set(CArchiveReader(str(built.binary)).open_embedded_archive("PYZ.pyz").toc)
    assert "kubernetes.client.api_client" in modules
    assert not {m.split(".")[0] for m in modules} & {"pydantic", "aiohttp"}


def test_pip_install_gives_both_commands(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(ROOT)], check=True, timeout=600, capture_output=True)
    environment = {"PATH": SYSTEM_PATH, "HOME": str(tmp_path), "KUBECONFIG": ""}
    version = subprocess.run(
        [str(venv / "bin" / "kubectl-restart_backend"), "--version"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    assert "version" in version.stdout
    completion = subprocess.run(
        [str(venv / "bin" / "kubectl_complete-restart_backend"), "--outp"],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    assert completion.stdout.splitlines()[-1] == ":4"
    assert completion.stdout.startswith("--output")
    shutil.rmtree(venv)
