"""The krew manifest: the release-bot template, and the manifest rendered from a real archive,
checked against every rule krew's validation applies and installed the way krew installs."""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
TEMPLATE = ROOT / "krew" / "restart-backend.yaml"
PLATFORMS = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
]


def packaging_module(name: str):
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))
    return importlib.import_module(name)


# The first test using the build also waits for it (a fresh build venv comes from PyPI).
pytestmark = pytest.mark.timeout(900)

krew_manifest = packaging_module("krew_manifest")
release_archive = packaging_module("release_archive")


@pytest.fixture(scope="module")
def built():
    return packaging_module("binary_build").built_release("onedir")


@pytest.fixture(scope="module")
def rendered(built, tmp_path_factory):
    """The manifest scripts/render-krew-manifest writes for the locally built archive."""
    out = tmp_path_factory.mktemp("manifest") / "restart-backend.yaml"
    subprocess.run(
        [
            str(ROOT / "scripts" / "render-krew-manifest"),
            built.tag,
            "--dist",
            str(built.archive.parent),
            "--output",
            str(out),
        ],
        env={"RB_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    return out


def bot_render(tag: str = "v1.2.3") -> dict:
    """What krew-release-bot produces from the template (every asset present)."""
    template = TEMPLATE.read_text()
    urls = krew_manifest.template_urls(template, tag)
    shas = {url: f"{index:064x}" for index, url in enumerate(urls)}
    return yaml.safe_load(krew_manifest.render_template_text(template, tag, shas))


# --------------------------------------------------------------------------- the template


def test_the_template_renders_a_valid_manifest_for_all_five_platforms():
    manifest = bot_render()
    assert krew_manifest.validate_manifest(manifest, "restart-backend.yaml") == []
    pairs = [(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"])
             for p in manifest["spec"]["platforms"]]  # fmt: skip
    assert pairs == PLATFORMS
    assert manifest["spec"]["version"] == "v1.2.3"


def test_each_platform_points_at_the_archive_package_release_names():
    manifest = bot_render("v1.2.3")
    for platform, (os_name, arch) in zip(manifest["spec"]["platforms"], PLATFORMS):
        name = release_archive.archive_name("v1.2.3", os_name, arch)
        assert platform["uri"] == (
            "https://github.com/restart-backend/kubectl-restart-backend/releases/download/"
            f"v1.2.3/{name}"
        )
        assert platform["bin"] == release_archive.binary_name(os_name)


def test_the_template_uses_the_bots_syntax_on_four_space_platform_lines():
    """The bot's addURIAndSha returns 'uri: ...\\n    sha256: ...': the line must be at 4."""
    lines = [line for line in TEMPLATE.read_text().splitlines() if "addURIAndSha" in line]
    assert len(lines) == len(PLATFORMS)
    for line in lines:
        assert line.startswith('    {{addURIAndSha "https://github.com/')
        assert line.endswith('" .TagName }}')
        assert line.count("{{ .TagName }}") == 2


# --------------------------------------------------------------------------- validation rules

VALID = bot_render()


def broken(change) -> dict:
    manifest = copy.deepcopy(VALID)
    change(manifest)
    return manifest


def _set(path: str, value):
    def change(manifest):
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is KeyError:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(_set("apiVersion", "krew/v1"), "apiVersion", id="api-version"),
        pytest.param(_set("kind", "Plugins"), "kind", id="kind"),
        pytest.param(_set("metadata.name", "restart_backend"), "differs", id="name-vs-file"),
        pytest.param(_set("spec.version", "1.2.3"), "semantic", id="version-without-v"),
        pytest.param(_set("spec.version", "v1.2"), "semantic", id="version-not-semver"),
        pytest.param(_set("spec.shortDescription", ""), "shortDescription", id="no-short"),
        pytest.param(_set("spec.shortDescription", "a\nb"), "one line", id="short-two-lines"),
        pytest.param(_set("spec.platforms", []), "at least one", id="no-platforms"),
        pytest.param(_set("spec.platforms.0.uri", ""), "uri", id="no-uri"),
        pytest.param(_set("spec.platforms.0.sha256", "AB" * 32), "lowercase", id="upper-sha"),
        pytest.param(_set("spec.platforms.0.sha256", "ab" * 31), "lowercase", id="short-sha"),
        pytest.param(_set("spec.platforms.0.bin", KeyError), "bin", id="no-bin"),
        pytest.param(_set("spec.platforms.0.files", []), "files", id="empty-files"),
        pytest.param(_set("spec.platforms.0.files.0.to", ""), "from and to", id="files-no-to"),
        pytest.param(_set("spec.platforms.0.selector", None), "selector", id="no-selector"),
        pytest.param(_set("spec.platforms.0.selector", {}), "empty", id="empty-selector"),
        pytest.param(
            _set("spec.platforms.0.selector.matchLabels.distro", "debian"),
            "not os or arch",
            id="selector-key",
        ),
        pytest.param(
            _set("spec.platforms.1.selector.matchLabels.arch", "amd64"),
            "same os/arch",
            id="two-platforms-one-pair",
        ),
        pytest.param(
            _set("spec.platforms.1.selector.matchLabels", {"os": "linux"}),
            "same os/arch",
            id="os-only-selector-overlaps",
        ),
    ],
)
def test_validation_rejects(change, problem):
    problems = krew_manifest.validate_manifest(broken(change), "restart-backend.yaml")
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("name", ["restart-backend", "restart_backend2"])
def test_safe_plugin_names(name):
    assert krew_manifest.is_safe_plugin_name(name)


@pytest.mark.parametrize("name", ["restart backend", "restart.backend", "con", "LPT1", ""])
def test_unsafe_plugin_names(name):
    assert not krew_manifest.is_safe_plugin_name(name)


# --------------------------------------------------------------------------- the real archive


@pytest.mark.binary
def test_the_rendered_manifest_is_valid_for_krew(rendered, built):
    manifest = yaml.safe_load(rendered.read_text())
    assert krew_manifest.validate_manifest(manifest, rendered.name) == []
    assert manifest["spec"]["version"] == built.tag


@pytest.mark.binary
def test_the_rendered_manifest_lists_only_the_platforms_with_a_local_archive(rendered, built):
    platforms = yaml.safe_load(rendered.read_text())["spec"]["platforms"]
    assert [p["selector"]["matchLabels"] for p in platforms] == [
        {"os": built.os_name, "arch": built.arch}
    ]
    assert platforms[0]["uri"].endswith("/" + built.archive.name)


@pytest.mark.binary
def test_the_sha256_is_the_archives_in_lowercase_and_matches_the_sidecar(rendered, built):
    platform = yaml.safe_load(rendered.read_text())["spec"]["platforms"][0]
    assert platform["sha256"] == release_archive.sha256_of(built.archive)
    sidecar = built.archive.with_name(built.archive.name + ".sha256").read_text()
    assert sidecar == f"{platform['sha256']}  {built.archive.name}\n"


@pytest.mark.binary
def test_base_url_replaces_the_download_location(built, tmp_path):
    template = TEMPLATE.read_text()
    manifest = krew_manifest.render_manifest(
        template, built.tag, built.archive.parent, "file:///srv/releases/"
    )
    assert manifest["spec"]["platforms"][0]["uri"] == f"file:///srv/releases/{built.archive.name}"


def test_rendering_without_any_archive_fails_clearly(tmp_path):
    result = subprocess.run(
        [str(ROOT / "scripts" / "render-krew-manifest"), "v9.9.9", "--dist", str(tmp_path)],
        env={"RB_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "no release archive for v9.9.9" in result.stderr


@pytest.mark.binary
def test_the_archive_holds_only_regular_files_and_directories(built):
    with tarfile.open(built.archive) as tar:
        members = tar.getmembers()
    assert all(m.isreg() or m.isdir() for m in members)
    assert all(".." not in m.name and not m.name.startswith("/") for m in members)
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, release_archive.FIXED_MTIME)}
    by_name = {m.name: m for m in members}
    assert by_name["kubectl-restart_backend"].mode == 0o755
    assert by_name["LICENSE"].mode == 0o644


@pytest.mark.binary
def test_packaging_twice_gives_the_same_bytes(built, tmp_path):
    again = release_archive.package(
        built.tag, built.build_root, ROOT / "LICENSE", tmp_path, built.os_name, built.arch
    )
    assert again.read_bytes() == built.archive.read_bytes()


@pytest.mark.binary
def test_krew_installs_the_bin_and_the_license(rendered, built, tmp_path):
    manifest = yaml.safe_load(rendered.read_text())
    platform = krew_manifest.platform_for(manifest, built.os_name, built.arch)
    link = krew_manifest.install_like_krew(manifest, platform, built.archive, tmp_path / "krew")
    installed = tmp_path / "krew" / "store" / "restart-backend" / built.tag
    assert link.name == "kubectl-restart_backend"
    assert link.resolve() == (installed / "kubectl-restart_backend").resolve()
    assert (installed / "LICENSE").is_file()
    assert (installed / "_internal").is_dir()


def test_krew_refuses_an_archive_whose_hash_differs(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ROOT / "LICENSE", arcname="LICENSE")
    platform = {"sha256": "0" * 64, "bin": "LICENSE"}
    manifest = {"metadata": {"name": "x"}, "spec": {"version": "v1.0.0"}}
    with pytest.raises(krew_manifest.KrewInstallError, match="sha256"):
        krew_manifest.install_like_krew(manifest, platform, archive, tmp_path / "krew")


def test_krew_refuses_a_symlink_in_the_archive(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("kubectl-restart_backend")
        link.type, link.linkname = tarfile.SYMTYPE, "elsewhere"
        tar.addfile(link)
    with pytest.raises(krew_manifest.KrewInstallError, match="file type"):
        krew_manifest.extract_like_krew(archive, tmp_path / "out")


def test_packaging_resolves_symlinks_into_plain_files(tmp_path):
    build = tmp_path / "build"
    (build / "_internal" / "lib").mkdir(parents=True)
    (build / "kubectl-restart_backend").write_text("#!/bin/sh\n")
    (build / "_internal" / "lib" / "libx.so.1").write_text("x")
    (build / "_internal" / "libx.so").symlink_to("lib/libx.so.1")
    (build / "_internal" / "alias").symlink_to("lib", target_is_directory=True)
    archive = release_archive.package(
        "v0.0.1", build, ROOT / "LICENSE", tmp_path / "dist", "linux", "amd64"
    )
    with tarfile.open(archive) as tar:
        kinds = {m.name: (m.isreg(), m.isdir()) for m in tar.getmembers()}
    assert kinds["_internal/libx.so"] == (True, False)
    assert kinds["_internal/alias"] == (False, True)
    assert kinds["_internal/alias/libx.so.1"] == (True, False)
    assert kinds["kubectl-restart_backend"] == (True, False)


def test_windows_archives_are_zips_that_keep_the_executable_mode(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    (build / "kubectl-restart_backend.exe").write_bytes(b"MZ")
    archive = release_archive.package(
        "v0.0.1", build, ROOT / "LICENSE", tmp_path / "dist", "windows", "amd64"
    )
    assert archive.name == "kubectl-restart_backend_v0.0.1_windows_amd64.zip"
    krew_manifest.extract_like_krew(archive, tmp_path / "out")
    assert (tmp_path / "out" / "kubectl-restart_backend.exe").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize(
    ("given", "tag"),
    [("0.1.0", "v0.1.0"), ("v0.1.0", "v0.1.0"), ("v1.0.0-rc.1", "v1.0.0-rc.1")],
)
def test_release_versions_are_tags_with_a_leading_v(given, tag):
    assert release_archive.normalize_tag(given) == tag


@pytest.mark.parametrize(
    ("sys_platform", "machine", "expected"),
    [
        ("linux", "x86_64", ("linux", "amd64")),
        ("linux", "aarch64", ("linux", "arm64")),
        ("darwin", "arm64", ("darwin", "arm64")),
        ("darwin", "x86_64", ("darwin", "amd64")),
        ("win32", "AMD64", ("windows", "amd64")),
    ],
)
def test_host_platform_uses_krews_os_and_arch_names(sys_platform, machine, expected):
    assert release_archive.host_platform(sys_platform, machine) == expected
