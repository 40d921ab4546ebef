"""pytest fixtures for the real tier (loaded by tests/conftest.py as a plugin).

`control_plane` (session) is one official control plane for the whole run, shared by the
pytest-xdist workers: the first worker that needs it starts it under a file lock and writes its
state next to the run's temp dirs; the others attach; each worker counts itself in and out, and
the last one out stops it by PID. `real_cluster` gives each test a `RealCluster` with its own
namespaces and repo, and fails the test if the fake kubelet logged an error meanwhile.

`second_control_plane` is another, independent control plane for the few tests that need two
clusters (cluster waves): started by the first of them, shared by the xdist workers in the same
way, and stopped as soon as the last of them is done (they are counted at collection), so a run
starts it once and only if it runs such a test. `real_fleet` puts both planes behind one
kubeconfig with a context each (`RealFleet`).

Tests that use these fixtures are marked `real` automatically. Where the control-plane binaries
are neither built nor buildable (no Go), the real tier is deselected and the run says so at the
end; with RB_REQUIRE_REAL=1 (CI) that is an error instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from . import build
from .cluster import RealCluster
from .fleet import AUDITED_GROUP, RealFleet
from .launcher import ControlPlane

__all__ = [
    "control_plane",
    "real_cluster",
    "real_checkout",
    "second_control_plane",
    "real_fleet",
    "krew_binaries",
]

# fixture -> the components it needs built
REAL_FIXTURES = {
    "control_plane": build.CONTROL_PLANE,
    "real_cluster": build.CONTROL_PLANE,
    "real_checkout": build.CONTROL_PLANE,
    "second_control_plane": build.CONTROL_PLANE,
    "real_fleet": build.CONTROL_PLANE,
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


def _uses(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


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
    still recorded as current or as a module's (a worker crashed or timed out in teardown) is
    stopped."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    shared = factory.getbasetemp() / "controlplane"
    for record in (shared / "current", shared / "second"):
        if record.exists():
            _stop_recorded(record)


def _running_or_started(record: Path, start: Callable[[Path], ControlPlane]) -> ControlPlane:
    """The control plane `record` names if it runs, else `start(workdir)`'s, recorded (call
    it under the shared lock)."""
    if record.exists():
        attached = ControlPlane.attach(Path(record.read_text()))
        if attached.running():
            return attached
    workdir = record.parent / f"plane-{uuid.uuid4().hex[:8]}"
    plane = start(workdir)
    record.write_text(str(workdir))
    return plane


def _stop_recorded(record: Path, grace: float = 3.0) -> None:
    """Stop the control plane `record` names (if it got as far as a PID); forget it."""
    workdir = Path(record.read_text())
    if (workdir / "state.json").exists():
        ControlPlane.attach(workdir).stop(grace)
    record.unlink()


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
        plane = _running_or_started(current, lambda workdir: ControlPlane(workdir).start())
        refs.write_text(str(int(refs.read_text() or 0) + 1 if refs.exists() else 1))
    try:
        yield plane
    finally:
        with build.locked(shared / "lock"):
            left = int(refs.read_text() or 1) - 1
            refs.write_text(str(left))
            if left <= 0:
                _stop_recorded(current)


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
def second_control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """Another official control plane, independent of `control_plane` (its own etcd, API
    server, controller-manager, fake kubelet, CA, credentials and ports), whose API server
    keeps an audit log of AUDITED_GROUP's requests (what a `RealFleet` kubeconfig sends).

    Started by the first test that asks for it, shared by the xdist workers, stopped (killed:
    nothing of it is kept) when every test of the run that asks for it is done. (Module scope
    would start one per worker that gets such a test: `--dist loadgroup` does not keep a
    module's tests together with pytest 9.2, whose nodes no longer read the `_nodeid` that
    pytest-xdist 3.8 rewrites.)"""
    why = missing_binaries()
    if why is not None:
        pytest.fail(f"the real tier cannot run: {why}", pytrace=False)
    shared = _shared_dir(tmp_path_factory)
    record, left = shared / "second", shared / "second-left"
    with build.locked(shared / "lock"):
        if not left.exists():
            users = [i for i in request.session.items if _uses(i, "second_control_plane")]
            left.write_text(str(len(users)))
        plane = _running_or_started(
            record, lambda workdir: ControlPlane(workdir, audit_groups=(AUDITED_GROUP,)).start()
        )
    try:
        yield plane
    finally:
        with build.locked(shared / "lock"):
            remaining = int(left.read_text()) - 1
            left.write_text(str(remaining))
            if remaining <= 0 and record.exists():
                _stop_recorded(record, grace=0)


@pytest.fixture
def real_fleet(
    real_cluster: RealCluster, second_control_plane: ControlPlane, tmp_path: Path
) -> Iterator[RealFleet]:
    """Two official control planes as kubeconfig contexts: `canary` (the run's
    `control_plane`, i.e. `real_cluster`) and `prod` (`second_control_plane`),
    each with this test's namespaces and repo; fails the test if the second plane's fake
    kubelet logged an error meanwhile (`real_cluster` watches the first)."""
    before = _kubelet_errors(second_control_plane)
    prod = RealCluster(second_control_plane, real_cluster.suffix, tmp_path)
    yield RealFleet({"canary": real_cluster, "prod": prod}, tmp_path)
    if _kubelet_errors(second_control_plane) > before:
        pytest.fail(
            "the second plane's fake kubelet raised:\n"
            + second_control_plane.log_tail("fake-kubelet", 60),
            False,
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
