"""Issue 16 item 16: the binary install commands of README and docs/install.md, run as written
against the built release archive, in an empty home directory with a bare PATH."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = Path(sys.executable).with_name("kubectl")
DOCUMENTED = "kubectl-restart_backend_v0.1.0_linux_amd64.tar.gz"

# The first test using the build may wait for it (another worker building it counts too).
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900)]


def binary_block(document: Path) -> str:
    """The sh block that starts with the checksum check of the downloaded archive."""
    blocks = re.findall(r"```sh\n(.*?)```", document.read_text(), flags=re.S)
    (block,) = [b for b in blocks if b.startswith(f"sha256sum -c {DOCUMENTED}.sha256")]
    return block


@pytest.fixture(scope="module")
def built():
    packaging = str(ROOT / "packaging")
    if packaging not in sys.path:
        sys.path.insert(0, packaging)
    return importlib.import_module("binary_build").built_release("onedir")


@pytest.mark.parametrize("document", ["README.md", "docs/install.md"])
def test_the_documented_binary_install_works_in_a_fresh_home(built, tmp_path, document):
    block = binary_block(ROOT / document)
    assert block == binary_block(ROOT / "README.md")  # the two documents say the same
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    for path in (built.archive, built.archive.with_name(built.archive.name + ".sha256")):
        shutil.copy(path, downloads)
    script = block.replace(DOCUMENTED, built.archive.name)
    home = tmp_path / "home"
    home.mkdir()  # empty: no ~/.local, no ~/.kube
    tools = tmp_path / "tools"  # kubectl alone, not the venv with our console script
    tools.mkdir()
    (tools / "kubectl").symlink_to(KUBECTL)
    env = {"HOME": str(home), "PATH": f"{tools}{os.pathsep}/usr/bin:/bin", "TMPDIR": str(home)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=downloads,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{built.archive.name}: OK" in done.stdout
    assert built.tag.lstrip("v") in done.stdout  # kubectl restart-backend --version
    listed = subprocess.run(
        ["bash", "-c", 'export PATH="$HOME/.local/bin:$PATH"; kubectl plugin list'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{home}/.local/bin/kubectl-restart_backend" in listed.stdout.splitlines()
