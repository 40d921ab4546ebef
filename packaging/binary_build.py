"""Build the binary and its release archive once, cached by a hash of what goes into them.

The tests that check the shipped artifact (tests/test_binary.py, tests/test_krew_manifest.py,
tests/test_real_krew.py) need the real PyInstaller build, which takes ~15 s: building it once
per source state (not per test, not per session when nothing changed) keeps the suite fast on
a developer machine. The cache lives in ``build/binary-cache/<key>/`` and is safe to delete.

The build runs in a venv of its own (``.venv-build``, made by scripts/build-binary's way:
the ``build`` extra with packaging/binary-constraints.txt), so the binary bundles the
kubernetes client line we ship whichever client the test venv has.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import release_archive

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "binary-cache"
INPUT_GLOBS = ("kubectl_restart_backend/**/*.py", "packaging/**/*.py", "packaging/*.spec")
INPUT_FILES = ("setup.cfg", "LICENSE", "scripts/build-binary", "packaging/binary-constraints.txt")
BUILD_VENV = Path(os.environ.get("RB_BUILD_VENV") or ROOT / ".venv-build")


@dataclass(frozen=True)
class BuiltRelease:
    build_root: Path  # the folder holding kubectl-restart_backend (and _internal/)
    archive: Path  # dist/kubectl-restart_backend_<tag>_<os>_<arch>.tar.gz
    tag: str
    os_name: str
    arch: str

    @property
    def binary(self) -> Path:
        return self.build_root / release_archive.binary_name(self.os_name)


def source_key(mode: str, python: str) -> str:
    """Hash of every input of the build: sources, spec, and the build venv's interpreter,
    PyInstaller and kubernetes client versions."""
    digest = hashlib.sha256()
    paths = sorted({p for g in INPUT_GLOBS for p in ROOT.glob(g) if "__pycache__" not in p.parts})
    paths += [ROOT / name for name in INPUT_FILES]
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (mode, platform.platform(), build_versions(python)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:20]


@functools.cache
def build_python() -> str:
    """The build venv's interpreter, made or refreshed once per process."""
    env = {
        **os.environ,
        "RB_VENV": str(BUILD_VENV),
        "RB_CONSTRAINTS": str(ROOT / "packaging" / "binary-constraints.txt"),
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / ".venv.lock"):  # pytest-xdist workers share the venv
        venv = subprocess.run(
            [str(ROOT / "scripts" / "bootstrap"), "build"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[-1]
    return str(Path(venv) / "bin" / "python")


def build_versions(python: str) -> str:
    """`<python version> pyinstaller=<v> kubernetes=<v>` of the build venv."""
    code = (
        "import sys, importlib.metadata as m; "
        "print(sys.version.split()[0], 'pyinstaller=' + m.version('pyinstaller'), "
        "'kubernetes=' + m.version('kubernetes'))"
    )
    done = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def built_release(mode: str = "onedir") -> BuiltRelease:
    """The binary and its archive for the current sources, building them if not cached."""
    python = build_python()
    key = source_key(mode, python)
    target = CACHE / f"{mode}-{key}"
    os_name, arch = release_archive.host_platform()
    tag = "v" + release_archive.read_package_version(
        ROOT / "kubectl_restart_backend" / "__init__.py"
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / ".lock"):
        if not (target / "done").exists():
            _build(mode, target, tag, os_name, arch, python)
    build_root = target / "bin" / "kubectl-restart_backend" if mode == "onedir" else target / "bin"
    archive = target / "dist" / release_archive.archive_name(tag, os_name, arch)
    return BuiltRelease(build_root, archive, tag, os_name, arch)


def _build(mode: str, target: Path, tag: str, os_name: str, arch: str, python: str) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for stale in CACHE.glob(f"{mode}-*"):  # one cached build per mode is enough
        shutil.rmtree(stale, ignore_errors=True)
    subprocess.run(
        [
            str(ROOT / "scripts" / "build-binary"),
            f"--{mode}",
            "--distpath",
            str(target / "bin"),
            "--workpath",
            str(CACHE / f"work-{mode}"),
        ],
        env={**os.environ, "RB_PYTHON": python},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    build_root = target / "bin" / "kubectl-restart_backend" if mode == "onedir" else target / "bin"
    release_archive.package(tag, build_root, ROOT / "LICENSE", target / "dist", os_name, arch)
    (target / "done").write_text(tag)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (pytest-xdist workers, two terminals)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
