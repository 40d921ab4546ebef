"""Build the official control-plane binaries (and krew) once, into a cache outside the tree.

Nothing of Kubernetes, etcd or krew is copied into this repository: each lives in a small
wrapper Go module under ``modules/`` (go.mod, go.sum and a tools.go naming the commands), and
``go build`` fetches the real sources from the Go module proxy. The binaries land in
``<cache>/<component>-<version>-go<go version>-<hash>/``; the hash covers the wrapper module
files and the build flags, so a changed pin or flag builds anew and an unchanged one is a no-op.
The cache root is ``$RB_CONTROLPLANE_CACHE``, else ``$XDG_CACHE_HOME/kubectl-restart-backend``
(``~/.cache/...``). A first build of kube-apiserver + kube-controller-manager takes tens of
minutes on two cores (README, "Development"); later runs take a second.

Usage::

    python -m tests.controlplane.build                  # control plane: apiserver, kcm, etcd
    python -m tests.controlplane.build krew             # krew and validate-krew-manifest
    python -m tests.controlplane.build --print-dir kubernetes
    python -m tests.controlplane.build --update-modules # regenerate the wrapper go.mod files
    python -m tests.controlplane.build --check all      # exit 1 if any is not in the cache

Why the replace lists are generated: ``k8s.io/kubernetes`` requires its ~33 staging modules at
``v0.0.0`` and replaces them with paths into its own tree (etcd's server module does the same
with ``../api`` and friends). Those replaces do not apply to a module that depends on it, so
the wrapper must point each one at the published release; ``--update-modules`` reads them
from the real ``.mod`` file (``go mod download -json``) rather than from a list someone typed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

__all__ = [
    "COMPONENTS",
    "Component",
    "BuildError",
    "cache_root",
    "find_binaries",
    "ensure_built",
    "go_available",
    "locked",
]

MODULES = Path(__file__).resolve().parent / "modules"
KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
KREW_VERSION = "v0.4.3"
GO_ENV = {"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}


class BuildError(RuntimeError):
    """The build could not run or failed; the message says what to do."""


@dataclass(frozen=True)
class Target:
    package: str  # Go package path of a main package
    binary: str  # file name in the cache directory


@dataclass(frozen=True)
class Component:
    """One wrapper module and the commands built from it."""

    name: str
    module: str  # the upstream module the wrapper requires
    version: str
    targets: tuple[Target, ...]
    ldflags: tuple[str, ...] = ()
    # extra `require` lines of the wrapper (module, version, why), e.g. a fixed transitive one
    requires: tuple[tuple[str, str, str], ...] = ()

    @property
    def directory(self) -> Path:
        return MODULES / self.name

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(t.binary for t in self.targets)

    def staging_version(self) -> str:
        """The version a locally replaced sibling module is published at: Kubernetes tags its
        staging modules v0.<minor>.<patch> for v1.<minor>.<patch>; etcd tags them alike."""
        if self.module == "k8s.io/kubernetes":
            return "v0." + self.version.split(".", 1)[1]
        return self.version


def _version_flags(package: str, version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    return (
        f"-X {package}.gitVersion={version}",
        f"-X {package}.gitMajor={major}",
        f"-X {package}.gitMinor={minor}",
        f"-X {package}.gitTreeState=clean",
    )


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component(
            "kubernetes",
            "k8s.io/kubernetes",
            KUBERNETES_VERSION,
            (
                Target("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
                Target("k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"),
            ),
            # Without these the binaries call themselves v0.0.0-master.
            ldflags=_version_flags("k8s.io/component-base/version", KUBERNETES_VERSION),
        ),
        Component(
            "etcd",
            "go.etcd.io/etcd/server/v3",
            ETCD_VERSION,
            (Target("go.etcd.io/etcd/server/v3", "etcd"),),
        ),
        Component(
            "krew",
            "sigs.k8s.io/krew",
            KREW_VERSION,
            (
                Target("sigs.k8s.io/krew/cmd/krew", "kubectl-krew"),
                Target("sigs.k8s.io/krew/cmd/validate-krew-manifest", "validate-krew-manifest"),
            ),
            ldflags=(f"-X sigs.k8s.io/krew/internal/version.gitTag={KREW_VERSION}",),
            requires=(
                (
                    "github.com/modern-go/reflect2",
                    "v1.0.2",
                    "krew's v1.0.1 panics on Go >= 1.18 (its unsafe map iteration broke)",
                ),
            ),
        ),
    )
}
CONTROL_PLANE = ("kubernetes", "etcd")


# ----------------------------------------------------------------------------- cache keys


def cache_root() -> Path:
    explicit = os.environ.get("RB_CONTROLPLANE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubectl-restart-backend"


def go_available() -> bool:
    return shutil.which("go") is not None


def go_version() -> str:
    """`go1.26.8`: part of the cache key (another compiler, another binary)."""
    return _go(["env", "GOVERSION"], cwd=MODULES).strip()


def module_hash(component: Component) -> str:
    """Hash of what decides the binaries besides the Go version: the wrapper module's files
    and the build flags."""
    digest = hashlib.sha256()
    for path in sorted(component.directory.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    targets = [(t.package, t.binary) for t in component.targets]
    flags = json.dumps([_ldflags(component), sorted(GO_ENV.items()), targets])
    digest.update(flags.encode())
    return digest.hexdigest()[:12]


def cache_dir(component: Component, go: str) -> Path:
    key = f"{component.name}-{component.version}-{go}-{module_hash(component)}"
    return cache_root() / key


def find_binaries(name: str) -> Path | None:
    """The cache directory holding `name`'s binaries for the current wrapper module, or None.

    Without Go on PATH any Go version's build of the same module and flags is accepted (a
    machine can run what another toolchain built); with Go, only this toolchain's."""
    component = COMPONENTS[name]
    if go_available():
        candidates = [cache_dir(component, go_version())]
    else:
        pattern = f"{component.name}-{component.version}-go*-{module_hash(component)}"
        candidates = sorted(cache_root().glob(pattern), reverse=True)
    for directory in candidates:
        if (directory / "BUILT").is_file():
            return directory
    return None


# ----------------------------------------------------------------------------- building


def ensure_built(name: str, *, log=print) -> Path:
    """Build `name`'s binaries into the cache unless they are there; their directory."""
    component = COMPONENTS[name]
    if not go_available():
        found = find_binaries(name)
        if found:
            return found
        raise BuildError(
            f"cannot build {name}: Go is not installed (need Go >= 1.26 and the Go module proxy)"
        )
    target = cache_dir(component, go_version())
    if (target / "BUILT").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent / f".{target.name}.lock"):
        if (target / "BUILT").is_file():  # another process built it meanwhile
            return target
        log(f"building {name} {component.version} into {target} (first time on this machine)")
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            timings = {}
            for t in component.targets:
                started = time.monotonic()
                _go(
                    ["build", "-trimpath", "-ldflags", " ".join(_ldflags(component))]
                    + ["-o", str(scratch / t.binary), t.package],
                    cwd=component.directory,
                    stream=True,
                )
                timings[t.binary] = round(time.monotonic() - started, 1)
                log(f"  {t.binary}: {timings[t.binary]} s")
            (scratch / "BUILT").write_text(json.dumps({"seconds": timings}) + "\n")
            scratch.chmod(0o755)
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
            for stale in target.parent.glob(f"{component.name}-*"):  # superseded pins or flags
                if stale != target and stale.is_dir() and (stale / "BUILT").exists():
                    shutil.rmtree(stale, ignore_errors=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _ldflags(component: Component) -> tuple[str, ...]:
    return ("-s", "-w", *component.ldflags)


def _go(args: Sequence[str], *, cwd: Path, stream: bool = False) -> str:
    env = {**os.environ, **GO_ENV}
    if not go_available():
        raise BuildError("Go is not installed (need Go >= 1.26 and the Go module proxy)")
    result = subprocess.run(
        ["go", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=None if stream else subprocess.PIPE,
        stderr=None if stream else subprocess.PIPE,
    )
    if result.returncode != 0:
        detail = "" if stream else (result.stderr or "").strip()
        raise BuildError(
            f"`go {' '.join(args)}` failed in {cwd}" + (f":\n{detail}" if detail else "")
        )
    return result.stdout or ""


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder per cache entry at a time (pytest-xdist workers, two terminals)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- go.mod


def local_replaces(component: Component) -> list[str]:
    """The modules the upstream go.mod replaces with paths into its own tree."""
    info = json.loads(
        _go(
            ["mod", "download", "-json", f"{component.module}@{component.version}"],
            cwd=component.directory,
        )
    )
    mod = json.loads(_go(["mod", "edit", "-json", info["GoMod"]], cwd=component.directory))
    return sorted(
        r["Old"]["Path"]
        for r in mod.get("Replace") or []
        if r["New"]["Path"].startswith(("./", "../")) and "Version" not in r["New"]
    )


def render_go_mod(component: Component, replaced: Sequence[str]) -> str:
    """The wrapper's go.mod before `go mod tidy` adds the indirect requirements."""
    lines = [
        f"module restartbackend.test/controlplane/{component.name}",
        "",
        "go 1.26.0",
        "",
        f"require {component.module} {component.version}",
    ]
    for module, version, why in component.requires:
        lines += ["", f"// {why}", f"require {module} {version}"]
    if replaced:
        staging = component.staging_version()
        lines += [
            "",
            f"// {component.module} replaces modules of its own repository with paths into its",
            "// tree; those replaces do not reach us, so each must point at the published release.",
            "// Regenerated by tests/controlplane/build.py --update-modules.",
            "replace (",
            *(f"\t{m} => {m} {staging}" for m in replaced),
            ")",
        ]
    return "\n".join(lines) + "\n"


def render_tools_go(component: Component) -> str:
    imports = "\n".join(f'\t_ "{t.package}"' for t in component.targets)
    return (
        "//go:build tools\n\n"
        "// Package tools pins the commands we build from this module, so that go.mod and go.sum\n"
        "// list everything they need.\n"
        "package tools\n\n"
        f"import (\n{imports}\n)\n"
    )


def update_module(component: Component, *, log=print) -> None:
    """Rewrite the wrapper module from the upstream .mod file, then `go mod tidy`."""
    component.directory.mkdir(parents=True, exist_ok=True)
    replaced = local_replaces(component)
    (component.directory / "go.mod").write_text(render_go_mod(component, replaced))
    (component.directory / "tools.go").write_text(render_tools_go(component))
    env_flags = dict(GO_ENV, GOFLAGS="-mod=mod")
    subprocess.run(
        ["go", "mod", "tidy"], cwd=component.directory, env={**os.environ, **env_flags}, check=True
    )
    log(f"{component.name}: {len(replaced)} replaces from {component.module}@{component.version}")


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.controlplane.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"{', '.join(COMPONENTS)}, control-plane (kubernetes + etcd, the default) or all",
    )
    parser.add_argument("--update-modules", action="store_true", help="regenerate the go.mod files")
    parser.add_argument("--print-dir", action="store_true", help="print the cache directories")
    parser.add_argument(
        "--check", action="store_true", help="build nothing; exit 1 if any is not cached"
    )
    args = parser.parse_args(argv)
    names: list[str] = []
    for item in args.components or ["control-plane"]:
        names += {"control-plane": list(CONTROL_PLANE), "all": list(COMPONENTS)}.get(item, [item])
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        parser.error(f"unknown component {unknown[0]!r}")
    if args.check:
        missing = [name for name in names if find_binaries(name) is None]
        for name in missing:
            print(f"{name} {COMPONENTS[name].version} is not built", file=sys.stderr)
        return 1 if missing else 0
    try:
        if args.update_modules:
            for name in names:
                update_module(COMPONENTS[name])
            return 0
        for name in names:
            directory = ensure_built(name, log=lambda m: print(m, file=sys.stderr))
            if args.print_dir:
                print(directory)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
