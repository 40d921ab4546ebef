"""The krew manifest: render the release-bot template locally, validate it, install like krew.

``krew/restart-backend.yaml`` is a template for krew-release-bot: ``{{ .TagName }}`` is the tag
and each platform has one ``{{addURIAndSha "<url with {{ .TagName }}>" .TagName }}`` line that
the bot replaces by ``uri:`` and ``sha256:`` of the uploaded asset. ``render_manifest`` does the
same from archives in a local ``dist/`` and keeps only the platforms that have one, so the
result installs with ``kubectl krew install --manifest=... --archive=...``.

``validate_manifest`` applies the rules of krew's ``internal/index/validation/validate.go`` plus
the checks krew-index's CI makes (no two platforms matching one os/arch pair), and
``install_like_krew`` repeats krew's install steps (extract, check the hash, apply ``files``,
link ``bin``) so tests catch what a real ``kubectl krew install`` would refuse.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Optional, Sequence

import yaml

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
KIND = "Plugin"
PLUGIN_NAME_RE = re.compile(r"^[\w-]+$")
SHA256_RE = re.compile(r"^[a-f0-9]{64}$")
# k8s.io/apimachinery ParseSemantic, behind krew's leading-"v" check.
SEMVER_RE = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"
}
SELECTOR_KEYS = {"os", "arch"}
TAG_PLACEHOLDER = re.compile(r"\{\{\s*\.TagName\s*\}\}")
ADD_URI_AND_SHA = re.compile(
    r'^(?P<indent>[ ]*)\{\{-?\s*addURIAndSha\s+"(?P<url>[^"]+)"\s+\.TagName\s*-?\}\}\s*$'
)
PENDING_SHA = "<pending>"


# ---------------------------------------------------------------------------------------------
# Rendering


def render_template_text(template: str, tag: str, sha_for_url: dict[str, str]) -> str:
    """What krew-release-bot makes of the template, with the given sha256 per URL.

    URLs missing from ``sha_for_url`` get a ``<pending>`` sha256; ``render_manifest`` drops
    those platforms.
    """
    lines = []
    for line in template.splitlines():
        match = ADD_URI_AND_SHA.match(line)
        if match:
            indent, url = match.group("indent"), TAG_PLACEHOLDER.sub(tag, match.group("url"))
            lines.append(f"{indent}uri: {url}")
            lines.append(f"{indent}sha256: {sha_for_url.get(url, PENDING_SHA)!r}")
        else:
            lines.append(TAG_PLACEHOLDER.sub(tag, line))
    return "\n".join(lines) + "\n"


def template_urls(template: str, tag: str) -> list[str]:
    """The asset URL of every platform, in template order."""
    return [
        TAG_PLACEHOLDER.sub(tag, match.group("url"))
        for match in map(ADD_URI_AND_SHA.match, template.splitlines())
        if match
    ]


def render_manifest(
    template: str, tag: str, dist: Path, base_url: Optional[str] = None
) -> dict[str, Any]:
    """The manifest for the archives present in ``dist`` (real sha256, uri under base_url)."""
    shas: dict[str, str] = {}
    local_uri: dict[str, str] = {}
    for url in template_urls(template, tag):
        archive = dist / url.rsplit("/", 1)[1]
        if archive.is_file():
            shas[url] = sha256_file(archive)
            if base_url is not None:
                local_uri[url] = f"{base_url.rstrip('/')}/{archive.name}"
    manifest = yaml.safe_load(render_template_text(template, tag, shas))
    platforms = [p for p in manifest["spec"]["platforms"] if p.get("sha256") != PENDING_SHA]
    if not platforms:
        raise FileNotFoundError(f"no release archive for {tag} in {dist}")
    for platform in platforms:
        platform["uri"] = local_uri.get(platform["uri"], platform["uri"])
    manifest["spec"]["platforms"] = platforms
    return manifest


def dump_manifest(manifest: dict[str, Any]) -> str:
    """YAML with multi-line strings as literal blocks, keys in the template's order."""

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(manifest, Dumper=Dumper, sort_keys=False, default_flow_style=False)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Validation (krew's rules)


def validate_manifest(manifest: Any, file_name: str) -> list[str]:
    """Every krew validation rule the manifest breaks, as messages (empty: valid).

    ``file_name`` is the manifest's file name (krew requires ``<metadata.name>.yaml``).
    """
    if not isinstance(manifest, dict):
        return ["manifest is not a YAML mapping"]
    problems = []
    name = os.path.splitext(os.path.basename(file_name))[0]
    spec = manifest.get("spec") or {}
    metadata = manifest.get("metadata") or {}
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion must be {API_VERSION}")
    if manifest.get("kind") != KIND:
        problems.append(f"kind must be {KIND}")
    if not is_safe_plugin_name(name):
        problems.append(f"file name {name!r} is not a safe plugin name")
    if metadata.get("name") != name:
        problems.append(f"metadata.name {metadata.get('name')!r} differs from file name {name!r}")
    short = spec.get("shortDescription")
    if not isinstance(short, str) or not short:
        problems.append("spec.shortDescription is required")
    elif "\n" in short or "\r" in short:
        problems.append("spec.shortDescription must be one line")
    version = spec.get("version")
    if not isinstance(version, str) or not SEMVER_RE.match(version):
        problems.append(f"spec.version {version!r} is not a semantic version with a leading v")
    platforms = spec.get("platforms")
    if not isinstance(platforms, list) or not platforms:
        return problems + ["spec.platforms must list at least one platform"]
    for index, platform in enumerate(platforms):
        problems += [f"platforms[{index}]: {p}" for p in validate_platform(platform)]
    problems += overlapping_platforms(platforms)
    return problems


def is_safe_plugin_name(name: str) -> bool:
    return bool(PLUGIN_NAME_RE.match(name)) and name.upper() not in WINDOWS_RESERVED


def validate_platform(platform: Any) -> list[str]:
    if not isinstance(platform, dict):
        return ["not a mapping"]
    problems = []
    if not platform.get("uri"):
        problems.append("uri is required")
    sha = platform.get("sha256")
    if not sha:
        problems.append("sha256 is required")
    elif not isinstance(sha, str) or not SHA256_RE.match(sha):
        problems.append(f"sha256 {sha!r} is not 64 lowercase hex digits")
    if not platform.get("bin"):
        problems.append("bin is required")
    files = platform.get("files")
    if files is not None:
        if not isinstance(files, list) or not files:
            problems.append("files must be omitted or non-empty")
        else:
            for op in files:
                if not isinstance(op, dict) or not op.get("from") or not op.get("to"):
                    problems.append("each files entry needs from and to")
    problems += validate_selector(platform.get("selector"))
    return problems


def validate_selector(selector: Any) -> list[str]:
    if not isinstance(selector, dict):
        return ["selector is required"]
    labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if labels is None and not expressions:
        return ["selector must not be empty"]
    keys = list(labels or {}) + [e.get("key") for e in expressions or [] if isinstance(e, dict)]
    problems = [
        f"selector key {key!r} is not os or arch" for key in keys if key not in SELECTOR_KEYS
    ]
    if labels is not None and not labels:
        problems.append("matchLabels is empty")
    if expressions is not None and not expressions:
        problems.append("matchExpressions is empty")
    return problems


def overlapping_platforms(platforms: Sequence[Any]) -> list[str]:
    """krew-index CI: no (os, arch) pair may be matched by two platforms.

    A matchLabels selector without a key matches any value of it.
    """
    pairs = []
    for platform in platforms:
        labels = ((platform or {}).get("selector") or {}).get("matchLabels") or {}
        pairs.append((labels.get("os"), labels.get("arch")))
    problems = []
    for later, (os_b, arch_b) in enumerate(pairs):
        for earlier, (os_a, arch_a) in enumerate(pairs[:later]):
            if _may_equal(os_a, os_b) and _may_equal(arch_a, arch_b):
                problems.append(f"platforms[{earlier}] and [{later}] match the same os/arch")
    return problems


def _may_equal(a: Optional[str], b: Optional[str]) -> bool:
    return a is None or b is None or a == b


def platform_for(manifest: dict[str, Any], os_name: str, arch: str) -> dict[str, Any]:
    """The platform entry krew would pick for os/arch (matchLabels selectors)."""
    for platform in manifest["spec"]["platforms"]:
        labels = platform["selector"].get("matchLabels") or {}
        if labels.get("os", os_name) == os_name and labels.get("arch", arch) == arch:
            return platform
    raise LookupError(f"no platform for {os_name}/{arch}")


# ---------------------------------------------------------------------------------------------
# Installing the way krew does


class KrewInstallError(Exception):
    """What ``kubectl krew install`` would have refused."""


def install_like_krew(
    manifest: dict[str, Any], platform: dict[str, Any], archive: Path, krew_root: Path
) -> Path:
    """Install ``archive`` under ``krew_root`` as krew does; returns the link in ``bin/``.

    Steps (krew's internal/installation): verify the sha256, extract into a staging dir
    (regular files and directories only), apply ``files`` (default: everything), check
    ``bin`` exists inside the install dir, link ``bin/kubectl-<name with _>`` to it.
    """
    if sha256_file(archive) != platform["sha256"]:
        raise KrewInstallError(f"sha256 of {archive.name} does not match the manifest")
    name, version = manifest["metadata"]["name"], manifest["spec"]["version"]
    staging = krew_root / "staging" / name
    install_dir = krew_root / "store" / name / version
    for directory in (staging, install_dir):
        shutil.rmtree(directory, ignore_errors=True)
    staging.mkdir(parents=True)
    extract_like_krew(archive, staging)
    operations = platform.get("files") or [{"from": "*", "to": "."}]
    install_dir.mkdir(parents=True)
    for operation in operations:
        apply_file_operation(staging, install_dir, operation["from"], operation["to"])
    binary = install_dir / PurePosixPath(platform["bin"])
    if not binary.is_file():
        raise KrewInstallError(f"bin {platform['bin']!r} is not in the installed files")
    bin_dir = krew_root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / (
        "kubectl-" + name.replace("-", "_") + (".exe" if binary.suffix == ".exe" else "")
    )
    if link.is_symlink():
        link.unlink()
    link.symlink_to(os.path.relpath(binary, bin_dir))
    return link


def extract_like_krew(archive: Path, destination: Path) -> None:
    """Unpack as krew's extractor does: only files and dirs, no '..', no absolute paths."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                _check_member_path(info.filename)
                target = destination / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zipped.read(info))
                target.chmod((info.external_attr >> 16) & 0o777)
        return
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            _check_member_path(member.name)
            target = destination / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
                target.chmod(member.mode & 0o777)
            else:
                raise KrewInstallError(f"unable to handle file type of {member.name!r} in tar")


def _check_member_path(name: str) -> None:
    if ".." in name:
        raise KrewInstallError(f"refusing to unpack archive with suspicious entry {name!r}")
    if name.startswith(("/", "\\")):
        raise KrewInstallError(f"refusing to unpack archive with absolute entry {name!r}")


def apply_file_operation(staging: Path, install_dir: Path, source: str, to: str) -> None:
    """krew's move: a path that exists moves as is (to '.' keeps its name), else a glob."""
    if os.path.normpath(to) != to:
        raise KrewInstallError(f"files.to {to!r} is not a clean path")
    direct = staging / source
    if direct.exists():
        target = install_dir / (direct.name if to == "." else to)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(direct), str(target))
        return
    matches = sorted(staging.glob(source))
    if not matches:
        raise KrewInstallError(f"no files in the plugin archive matched the glob pattern={source}")
    target_dir = install_dir / to
    target_dir.mkdir(parents=True, exist_ok=True)
    for match in matches:
        shutil.move(str(match), str(target_dir / match.name))


# ---------------------------------------------------------------------------------------------
# scripts/render-krew-manifest


def main(argv: Optional[Sequence[str]] = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(
        prog="scripts/render-krew-manifest",
        description="Fill krew/restart-backend.yaml from the archives in dist/ (real sha256).",
    )
    parser.add_argument("version", help="release tag, e.g. v0.1.0")
    parser.add_argument(
        "--base-url",
        help="where the archives will be downloaded from (default: the GitHub release URL)",
    )
    parser.add_argument("--dist", type=Path, default=root / "dist")
    parser.add_argument("--template", type=Path, default=root / "krew" / "restart-backend.yaml")
    parser.add_argument("--output", type=Path, help="default: dist/restart-backend.yaml")
    args = parser.parse_args(argv)
    tag = args.version if args.version.startswith("v") else f"v{args.version}"
    try:
        manifest = render_manifest(args.template.read_text(), tag, args.dist, args.base_url)
    except FileNotFoundError as err:
        print(
            f"error: {err}; run scripts/build-binary and scripts/package-release", file=sys.stderr
        )
        return 1
    output = args.output or args.dist / args.template.name
    problems = validate_manifest(manifest, output.name)
    if problems:
        print("error: the rendered manifest is not valid for krew:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dump_manifest(manifest))
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
