"""krew itself (v0.4.3, built from its Go module) on our release archive: its own manifest
validation, a real offline `kubectl krew install --manifest --archive`, then the installed
plugin run by kubectl against the official control plane.

test_krew_manifest.py checks our reimplementation of krew's rules; this is the reference.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
KUBECTL = Path(sys.executable).with_name("kubectl")
SYSTEM_PATH = "/usr/bin:/bin"
# Any attempt to reach the network goes to a closed port: the install must not need it.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}

# The first test also waits for the binary's build (a fresh build venv comes from PyPI).
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900)]


def packaging_module(name: str):
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The locally built archive and the manifest scripts/render-krew-manifest makes for it,
    named as krew wants it (<plugin>.yaml)."""
    built = packaging_module("binary_build").built_release("onedir")
    manifest = tmp_path_factory.mktemp("manifest") / "restart-backend.yaml"
    subprocess.run(
        [
            str(ROOT / "scripts" / "render-krew-manifest"),
            built.tag,
            "--dist",
            str(built.archive.parent),
            "--output",
            str(manifest),
        ],
        env={"RB_PYTHON": sys.executable, "PATH": SYSTEM_PATH},
        check=True,
        capture_output=True,
    )
    return built, manifest


def krew_env(krew_root: Path, krew_binaries: Path, home: Path) -> dict[str, str]:
    """A user's shell with krew set up: its bin dir and kubectl on PATH, no Python venv."""
    kubectl_dir = home / "kubectl-bin"
    kubectl_dir.mkdir(exist_ok=True)
    if not (kubectl_dir / "kubectl").exists():
        (kubectl_dir / "kubectl").symlink_to(KUBECTL)
    path = os.pathsep.join(
        [str(krew_root / "bin"), str(krew_binaries), str(kubectl_dir), SYSTEM_PATH]
    )
    return {
        "PATH": path,
        "HOME": str(home),
        "KREW_ROOT": str(krew_root),
        "KREW_NO_UPGRADE_CHECK": "1",
        "KUBECONFIG": "",
        "NO_COLOR": "1",
        "TMPDIR": str(home),
        **OFFLINE,
    }


def test_krews_own_validation_accepts_the_rendered_manifest(krew_binaries, release):
    _built, manifest = release
    done = subprocess.run(
        [
            str(krew_binaries / "validate-krew-manifest"),
            "-manifest",
            str(manifest),
            "-skip-install",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": SYSTEM_PATH, "HOME": str(manifest.parent), **OFFLINE},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_krew_refuses_a_manifest_with_a_wrong_sha256(krew_binaries, release, tmp_path):
    built, manifest = release
    wrong = tmp_path / "restart-backend.yaml"
    text = manifest.read_text()
    sha = hashlib.sha256(built.archive.read_bytes()).hexdigest()
    assert sha in text
    wrong.write_text(text.replace(sha, "a" * 64))
    env = krew_env(tmp_path / "krew", krew_binaries, tmp_path)
    done = subprocess.run(
        ["kubectl", "krew", "install", f"--manifest={wrong}", f"--archive={built.archive}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "checksum" in (done.stdout + done.stderr).lower()
    assert not (tmp_path / "krew" / "bin" / "kubectl-restart_backend").exists()


def test_kubectl_krew_installs_the_archive_offline_and_kubectl_runs_the_plugin(
    krew_binaries, release, real_cluster, real_checkout, tmp_path
):
    built, manifest = release
    krew_root = tmp_path / "krew"
    env = krew_env(krew_root, krew_binaries, tmp_path)

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )

    install = run(
        "kubectl", "krew", "install", f"--manifest={manifest}", f"--archive={built.archive}"
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert "Installed plugin: restart-backend" in install.stdout + install.stderr
    link = krew_root / "bin" / "kubectl-restart_backend"
    assert link.is_symlink() and (krew_root / "receipts" / "restart-backend.yaml").is_file()

    version = run("kubectl", "restart-backend", "--version")
    assert version.returncode == 0, version.stderr
    assert built.tag.lstrip("v") in version.stdout

    ns = real_cluster.ns()
    real_cluster.link(ns)
    restart = run(
        "kubectl", "restart-backend", "--kubeconfig", real_cluster.kubeconfig, cwd=real_checkout
    )
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "✓ Rolling restart complete for backend" in restart.stdout
