"""Release archives: name them, write them byte-for-byte reproducibly, and hash them.

Used by ``scripts/package-release``. krew unpacks our archive into a staging directory and
checks it against the manifest's sha256, so the archive must be deterministic (the same build
gives the same hash) and hold only regular files and directories: krew's tar extractor refuses
symlinks and any path containing "..", and it takes file modes from the archive.

Layout at the archive root (onedir build)::

    LICENSE
    kubectl-restart_backend        (or .exe on Windows; mode 0755)
    _internal/...                  (PyInstaller's support files; absent for onefile)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import platform
import re
import stat
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

PLUGIN_BIN = "kubectl-restart_backend"
ARCHIVE_PREFIX = "kubectl-restart_backend"
# 1980-01-01T00:00:00Z: the earliest time a zip entry can carry, used for tar too so both agree.
FIXED_MTIME = 315532800
FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SEMVER_TAG = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)

_OS_NAMES = {"linux": "linux", "darwin": "darwin", "win32": "windows", "cygwin": "windows"}
_ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Entry:
    """One member of an archive: a directory (``data is None``) or a regular file."""

    name: str  # POSIX path relative to the archive root
    mode: int  # permission bits only
    data: Optional[bytes] = None

    @property
    def is_dir(self) -> bool:
        return self.data is None


def normalize_tag(version: str) -> str:
    """'0.1.0' or 'v0.1.0' -> 'v0.1.0'; krew and the release bot both want the leading v."""
    tag = version if version.startswith("v") else f"v{version}"
    if not SEMVER_TAG.match(tag):
        raise ValueError(f"{version!r} is not a semantic version like v1.2.3")
    return tag


def host_platform(sys_platform: str = sys.platform, machine: str = "") -> tuple[str, str]:
    """(os, arch) in krew's and Go's words for the machine we build on."""
    machine = (machine or platform.machine()).lower()
    for prefix, name in _OS_NAMES.items():
        if sys_platform.startswith(prefix):
            os_name = name
            break
    else:
        raise ValueError(f"unsupported platform {sys_platform!r}")
    if machine not in _ARCH_NAMES:
        raise ValueError(f"unsupported machine {machine!r}")
    return os_name, _ARCH_NAMES[machine]


def archive_name(tag: str, os_name: str, arch: str) -> str:
    """kubectl-restart_backend_v0.1.0_linux_amd64.tar.gz (.zip for Windows)."""
    extension = "zip" if os_name == "windows" else "tar.gz"
    return f"{ARCHIVE_PREFIX}_{tag}_{os_name}_{arch}.{extension}"


def binary_name(os_name: str) -> str:
    return f"{PLUGIN_BIN}.exe" if os_name == "windows" else PLUGIN_BIN


def collect_entries(build_root: Path, binary: str, license_file: Path) -> list[Entry]:
    """The archive's members, sorted by name: the build tree (symlinks resolved) plus LICENSE.

    ``build_root`` is PyInstaller's output directory (onedir: the folder holding the executable
    and ``_internal``; onefile: a folder holding just the executable).
    """
    if not (build_root / binary).is_file():
        raise FileNotFoundError(f"no {binary} in {build_root}: run scripts/build-binary first")
    entries = list(_walk_resolved(build_root, ""))
    entries.append(Entry("LICENSE", 0o644, license_file.read_bytes()))
    by_name = {entry.name: entry for entry in entries}
    by_name[binary] = Entry(binary, 0o755, by_name[binary].data)
    return sorted(by_name.values(), key=lambda entry: entry.name)


def _walk_resolved(directory: Path, prefix: str) -> Iterator[Entry]:
    """Walk a tree, following symlinks, so every member is a plain file or directory."""
    for child in sorted(directory.iterdir(), key=lambda path: path.name):
        name = f"{prefix}{child.name}"
        if child.is_dir():  # follows a symlink to a directory: its contents are copied in
            yield Entry(name, 0o755)
            yield from _walk_resolved(child, f"{name}/")
        elif child.is_file():
            executable = bool(child.stat().st_mode & stat.S_IXUSR)
            yield Entry(name, 0o755 if executable else 0o644, child.read_bytes())
        else:
            raise ValueError(f"{child} is neither a file nor a directory (dangling symlink?)")


def write_tar_gz(entries: Sequence[Entry], destination: Path) -> None:
    """A gzip'd POSIX tar with fixed mtimes, owner 0:0 and no names, and no gzip timestamp."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = FIXED_MTIME
            info.mode = entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(entry.data or b"")
                archive.addfile(info, io.BytesIO(entry.data or b""))
    with destination.open("wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())


def write_zip(entries: Sequence[Entry], destination: Path) -> None:
    """A deflated zip with fixed dates and Unix modes (so unzip keeps the executable bit)."""
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            name = f"{entry.name}/" if entry.is_dir else entry.name
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_DATE)
            info.create_system = 3  # Unix: external_attr carries st_mode
            kind = stat.S_IFDIR if entry.is_dir else stat.S_IFREG
            info.external_attr = (kind | entry.mode) << 16
            if entry.is_dir:
                info.external_attr |= 0x10  # MS-DOS directory flag
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.data or b"")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksum(archive: Path) -> Path:
    """``<archive>.sha256`` in sha256sum's format, so ``sha256sum -c`` verifies it."""
    sidecar = archive.with_name(f"{archive.name}.sha256")
    sidecar.write_text(f"{sha256_of(archive)}  {archive.name}\n", encoding="ascii")
    return sidecar


def package(
    tag: str, build_root: Path, license_file: Path, dist: Path, os_name: str, arch: str
) -> Path:
    """Write the archive and its checksum into ``dist``; returns the archive path."""
    entries = collect_entries(build_root, binary_name(os_name), license_file)
    dist.mkdir(parents=True, exist_ok=True)
    archive = dist / archive_name(tag, os_name, arch)
    (write_zip if os_name == "windows" else write_tar_gz)(entries, archive)
    write_checksum(archive)
    return archive


def read_package_version(init_file: Path) -> str:
    """The plugin's ``__version__``, read as text (packaging must not import the plugin)."""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', init_file.read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"no __version__ in {init_file}")
    return match.group(1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/package-release",
        description="Archive the PyInstaller build for the host platform into dist/.",
    )
    parser.add_argument("version", help="release tag, e.g. v0.1.0 (must match __version__)")
    parser.add_argument("--mode", choices=("onedir", "onefile"), default="onedir")
    parser.add_argument("--build-dir", type=Path, help="PyInstaller output (default: by mode)")
    parser.add_argument("--dist", type=Path, default=None, help="output directory (dist/)")
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parent.parent
    try:
        tag = normalize_tag(args.version)
    except ValueError as err:
        parser.error(str(err))
    expected = "v" + read_package_version(root / "kubectl_restart_backend" / "__init__.py")
    if tag != expected:
        parser.error(f"version {tag} does not match the plugin's __version__ ({expected})")
    os_name, arch = host_platform()
    build_root = args.build_dir or default_build_root(root / "dist", args.mode)
    archive = package(tag, build_root, root / "LICENSE", args.dist or root / "dist", os_name, arch)
    print(archive)
    return 0


def default_build_root(dist: Path, mode: str) -> Path:
    """Where scripts/build-binary leaves each mode's output."""
    if mode == "onedir":
        return dist / "onedir" / PLUGIN_BIN
    return dist / "onefile"


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
