"""pytest fixtures for the real tier (loaded by tests/conftest.py as a plugin).

`control_plane` (session) is one official control plane for the whole run, shared by the
pytest-xdist workers: the first worker that needs it starts it under a file lock and writes its
state next to the run's temp dirs; the others attach; each worker counts itself in and out, and
the last one out stops it by PID. `real_cluster` gives each test a `RealCluster` with its own
namespaces and repo, and fails the test if the fake kubelet logged an error meanwhile.

Tests that use these fixtures are marked `real` automatically. Where the control-plane binaries
are neither built nor buildable (no Go), the real tier is deselected and the run says so at the
end; with RB_REQUIRE_REAL=1 (CI) that is an error instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from . import build
from .cluster import RealCluster
from .launcher import ControlPlane

__all__ = ["control_plane", "real_cluster", "real_checkout", "krew_binaries"]

# fixture -> the components it needs built
REAL_FIXTURES = {
    "control_plane": build.CONTROL_PLANE,
    "real_cluster": build.CONTROL_PLANE,
    "real_checkout": build.CONTROL_PLANE,
    "krew_binaries": ("krew",),
}
_deselected: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real: runs against the official kube-apiserver and controller-manager"
    )


def missing_binaries(components=build.CONTROL_PLANE) -> str | None:
    """Why tests needing `components` cannot run here, or None."""
    missing = [name for name in components if build.find_binaries(name) is None]
    if not missing:
        return None
    command = f"python -m tests.controlplane.build {' '.join(missing)}"
    if build.go_available():
        return f"{', '.join(missing)} not built yet ({command})"
    return f"Go is not installed, and the cache lacks {', '.join(missing)}"


def _needs(item: pytest.Item) -> tuple[str, ...]:
    names = set(getattr(item, "fixturenames", ()))
    return tuple(sorted({c for f, comps in REAL_FIXTURES.items() if f in names for c in comps}))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    real = [item for item in items if _needs(item)]
    for item in real:
        item.add_marker(pytest.mark.real)
    if os.environ.get("RB_REQUIRE_REAL") == "1":
        return  # CI: the fixtures fail loudly instead
    reasons: dict[str, int] = {}
    unrunnable = []
    for item in real:
        why = missing_binaries(_needs(item))
        if why is not None:
            unrunnable.append(item)
            reasons[why] = reasons.get(why, 0) + 1
    if not unrunnable:
        return
    config.hook.pytest_deselected(items=unrunnable)
    items[:] = [item for item in items if item not in unrunnable]
    for why, count in reasons.items():
        _deselected.append(f"{count} real-tier tests not run: {why}")


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _deselected:
        terminalreporter.write_line(line, yellow=True, bold=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Safety net in the main process (the xdist controller, or a plain run): a control plane
    still recorded as current (a worker crashed or timed out in teardown) is stopped."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    current = factory.getbasetemp() / "controlplane" / "current"
    if current.exists():
        ControlPlane.attach(Path(current.read_text())).stop()
        current.unlink()


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    shared = base / "controlplane"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The official control plane of this test run (started once, shared by xdist workers)."""
    why = missing_binaries()
    if why is not None:
        pytest.fail(f"the real tier cannot run: {why}", pytrace=False)
    shared = _shared_dir(tmp_path_factory)
    current = shared / "current"
    refs = shared / "refs"
    with build.locked(shared / "lock"):
        plane = None
        if current.exists():
            attached = ControlPlane.attach(Path(current.read_text()))
            plane = attached if attached.running() else None
        if plane is None:
            workdir = shared / f"plane-{uuid.uuid4().hex[:8]}"
            plane = ControlPlane(workdir).start()
            current.write_text(str(workdir))
        refs.write_text(str(int(refs.read_text() or 0) + 1 if refs.exists() else 1))
    try:
        yield plane
    finally:
        with build.locked(shared / "lock"):
            left = int(refs.read_text() or 1) - 1
            refs.write_text(str(left))
            if left <= 0:
                ControlPlane.attach(Path(current.read_text())).stop()
                current.unlink()


def _kubelet_errors(plane: ControlPlane) -> int:
    log = Path(plane.state.workdir) / "logs" / "fake-kubelet.log"
    return log.read_text(errors="replace").count("ERROR in the fake kubelet") if log.exists() else 0


@pytest.fixture
def real_cluster(control_plane: ControlPlane, tmp_path: Path) -> Iterator[RealCluster]:
    """The control plane with this test's own namespaces and repo (see RealCluster)."""
    before = _kubelet_errors(control_plane)
    yield RealCluster(control_plane, uuid.uuid4().hex[:6], tmp_path)
    if _kubelet_errors(control_plane) > before:
        pytest.fail(
            "the fake kubelet raised:\n" + control_plane.log_tail("fake-kubelet", 60), False
        )


@pytest.fixture
def real_checkout(real_cluster: RealCluster, tmp_path: Path) -> Path:
    """A git checkout of this test's repo (acme/shop-<suffix>) on branch main."""
    from tests.plugin_runner import make_checkout

    return make_checkout(tmp_path / "checkout", f"https://github.com/{real_cluster.repo}.git")


@pytest.fixture(scope="session")
def krew_binaries() -> Path:
    """The directory holding kubectl-krew and validate-krew-manifest (krew v0.4.3)."""
    why = missing_binaries(("krew",))
    if why is not None:
        pytest.fail(f"krew is not available: {why}", pytrace=False)
    return build.find_binaries("krew")
