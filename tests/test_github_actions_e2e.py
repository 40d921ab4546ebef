"""GitHub Actions end to end: the plugin with a GitHub-like environment against the
simulated cluster (groups and annotations, step summary, outputs), and the composite
action's script (``scripts/action-run``) installing a release from a local HTTP server
(checksum verified, a wrong one refused) and running it."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from tests.cluster.behaviours import Behaviour
from tests.plugin_runner import CONSOLE_SCRIPT, link, patches, run_plugin

REPO = Path(__file__).resolve().parent.parent
ACTION_RUN = REPO / "scripts" / "action-run"


@pytest.fixture
def github(tmp_path):
    """A GitHub-like environment: the variables the runner sets, its files empty."""
    files = {
        name: tmp_path / name.lower()
        for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_PATH")
    }
    for path in files.values():
        path.write_text("")
    env = {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_REF_NAME": "main",
        "GITHUB_HEAD_REF": "",
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_TEMP": str(tmp_path),
        **{name: str(path) for name, path in files.items()},
    }
    return env


def outputs(env) -> dict:
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def summary(env) -> str:
    return Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def plugin(cluster, checkout, github, *args):
    return run_plugin([*args, "--kubeconfig", cluster.kubeconfig], cwd=checkout, env=github)


# -- the plugin under GitHub Actions -----------------------------------------------------


def test_a_failure_groups_the_progress_raises_an_error_and_writes_summary_and_outputs(
    cluster, checkout, github
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = plugin(cluster, checkout, github)
    assert run.exit_code == 1, run.output
    lines = run.stdout.splitlines()
    assert lines[0] == "::group::restart-backend: restarting deployment shop/backend (context sim)"
    assert lines[1] == "Restarting deployment shop/backend (context sim)"
    end = lines.index("::endgroup::")
    failed = next(i for i, line in enumerate(lines) if line.startswith("✗ Restart failed: "))
    (error,) = [line for line in lines if line.startswith("::error")]
    assert end < lines.index(error) < failed
    assert error.startswith(
        "::error title=Restart failed%3A deployment shop/backend (context sim)::pod backend-"
    )
    assert "(container app) is in CrashLoopBackOff: exit code 1" in error
    text = summary(github)
    assert "| sim | deployment shop/backend | ❌ failed |" in text
    assert "<details><summary>Last events and log lines</summary>" in text
    assert "FATAL: cannot connect to database at db:5432: connection refused" in text
    pod = error.split("::pod ", 1)[1].split(" ", 1)[0]
    assert "| pod | container | status | restarts | detail |" in text
    assert f"| {pod} | app | " in text
    assert outputs(github) == {"verdict": "failed", "exit-code": "1", "ready": "false"}


def test_a_success_is_grouped_and_summed_up_without_annotations(cluster, checkout, github):
    link(cluster)
    run = plugin(cluster, checkout, github)
    assert run.exit_code == 0, run.output
    assert run.stdout.count("::group::") == run.stdout.count("::endgroup::") == 1
    assert "::error" not in run.output and "::warning" not in run.output
    assert "| sim | deployment shop/backend | ✅ complete |" in summary(github)
    assert outputs(github) == {"verdict": "complete", "exit-code": "0", "ready": "true"}


def test_a_timeout_is_a_warning(cluster, checkout, github):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.never_ready())
    run = plugin(cluster, checkout, github, "--timeout", "2s")
    assert run.exit_code == 3, run.output
    (warning,) = [line for line in run.stdout.splitlines() if line.startswith("::warning")]
    assert warning.startswith(
        "::warning title=Restart timeout%3A deployment shop/backend (context sim)::0/3"
    )
    assert "| ⚠️ timeout |" in summary(github)
    assert outputs(github)["verdict"] == "timeout"


def test_several_workloads_are_rows_of_one_summary(cluster, checkout, github):
    link(cluster, "shop", "api")
    link(cluster, "shop", "worker")
    run = plugin(cluster, checkout, github, "--all")
    assert run.exit_code == 0, run.output
    text = summary(github)
    assert "| sim | deployment shop/api | ✅ complete |" in text
    assert "| sim | deployment shop/worker | ✅ complete |" in text


def test_with_a_document_on_stdout_the_commands_go_to_stderr(cluster, checkout, github):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    run = plugin(cluster, checkout, github, "-o", "json")
    assert run.exit_code == 1, run.output
    assert json.loads(run.stdout)["verdict"] == "failed"  # stdout: the document alone
    assert "::group::" in run.stderr and "::error title=Restart failed" in run.stderr
    assert outputs(github)["verdict"] == "failed"


def test_an_error_is_annotated_summed_up_and_output(cluster, checkout, github):
    run = plugin(cluster, checkout, github)
    assert run.exit_code == 4, run.output
    assert run.stderr.startswith("error: No workload found")
    (error,) = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert error.startswith(
        "::error title=restart-backend%3A error (exit code 4)::No workload found"
    )
    assert "❌ **error** (exit code 4): No workload found" in summary(github)
    assert outputs(github) == {"verdict": "error", "exit-code": "4", "ready": "false"}


def test_no_credential_reaches_the_log_summary_or_outputs(cluster, checkout, github):
    link(cluster)
    token = cluster.token_of("admin")
    run = plugin(cluster, checkout, github, "--token", token)
    assert run.exit_code == 0, run.output
    for text in (
        run.stdout,
        run.stderr,
        summary(github),
        Path(github["GITHUB_OUTPUT"]).read_text(),
    ):
        assert token not in text


def test_a_summary_file_that_cannot_be_written_is_a_warning_not_a_failure(
    cluster, checkout, github
):
    link(cluster)
    github["GITHUB_STEP_SUMMARY"] = str(Path(github["RUNNER_TEMP"]) / "missing-dir" / "summary")
    run = plugin(cluster, checkout, github)
    assert run.exit_code == 0, run.output
    assert "::warning::could not write " in run.stdout
    assert outputs(github)["verdict"] == "complete"


# -- the composite action's script -------------------------------------------------------

TAG = "v9.9.9"
ARCHIVE = f"kubectl-restart_backend_{TAG}_linux_amd64.tar.gz"


class Releases:
    """A local stand-in for the GitHub releases of the project: ``/download/TAG/FILE`` and
    ``/latest`` redirecting to the tag's page, as github.com does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        releases = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                releases.requests.append(self.path)
                if self.path == "/releases/latest":
                    self.send_response(302)
                    self.send_header("Location", f"/releases/tag/{TAG}")
                    self.end_headers()
                    return
                path = releases.root / self.path.lstrip("/")
                if not path.is_file():
                    body = b"page" if self.path.startswith("/releases/tag/") else b"missing"
                    self.send_response(200 if body == b"page" else 404)
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/releases"

    def publish(self, *, checksum: str | None = None) -> bytes:
        """A release archive whose binary runs this checkout's plugin, and its .sha256."""
        wrapper = f'#!/bin/sh\nexec "{CONSOLE_SCRIPT}" "$@"\n'.encode()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for name, data, mode in (
                ("kubectl-restart_backend", wrapper, 0o755),
                ("_internal/.keep", b"", 0o644),
                ("LICENSE", b"license\n", 0o644),
            ):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                archive.addfile(info, io.BytesIO(data))
        data = raw.getvalue()
        folder = self.root / "releases" / "download" / TAG
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ARCHIVE).write_bytes(data)
        digest = checksum or hashlib.sha256(data).hexdigest()
        (folder / f"{ARCHIVE}.sha256").write_text(f"{digest}  {ARCHIVE}\n")
        return data

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def releases(tmp_path):
    served = Releases(tmp_path / "served")
    yield served
    served.stop()


def action(github, releases, workdir: Path, **inputs: str) -> subprocess.CompletedProcess:
    """Run scripts/action-run as the composite action does: inputs as RB_* variables."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "NO_COLOR": "1",
        **github,
        "RB_RELEASE_URL": releases.url,
        "RB_INSTALL_DIR": str(workdir / "tools"),
        "RB_REPO": "acme/shop",
        "RB_BRANCH": "main",
        **inputs,
    }
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [str(ACTION_RUN)], cwd=workdir, env=env, capture_output=True, text=True, timeout=180
    )


def test_the_action_installs_the_verified_release_and_restarts(cluster, github, releases, tmp_path):
    link(cluster)
    releases.publish()
    kubeconfig = Path(cluster.kubeconfig).read_text()
    token = yaml.safe_load(kubeconfig)["users"][0]["user"]["token"]
    done = action(github, releases, tmp_path / "job", RB_KUBECONFIG=kubeconfig, RB_VERSION=TAG,
                  RB_CONTEXTS="sim", RB_TIMEOUT="60s")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"::add-mask::{token}"  # before anything else is printed
    assert sum(token in line for line in lines + done.stderr.splitlines()) == 1
    assert f"::group::Installing kubectl-restart-backend {TAG} (linux_amd64)" in lines
    assert "::group::restart-backend: restarting deployment shop/backend (context sim)" in lines
    assert "✓ Rolling restart complete for backend" in lines
    installed = tmp_path / "job" / "tools" / TAG / "linux_amd64"
    assert Path(github["GITHUB_PATH"]).read_text() == f"{installed}\n"
    assert outputs(github) == {"verdict": "complete", "exit-code": "0", "ready": "true"}
    assert "| sim | deployment shop/backend | ✅ complete |" in summary(github)
    assert len(patches(cluster)) == 1
    assert not list(Path(github["RUNNER_TEMP"]).glob("restart-backend.*"))  # kubeconfig copy gone


def test_the_action_refuses_an_archive_whose_checksum_does_not_match(
    cluster, github, releases, tmp_path
):
    link(cluster)
    releases.publish(checksum="0" * 64)
    done = action(
        github, releases, tmp_path / "job", RB_KUBECONFIG=cluster.kubeconfig, RB_VERSION=TAG
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"::error title=restart-backend action::checksum mismatch for {ARCHIVE}: "
        f"expected {'0' * 64}, got " in done.stderr
    )
    assert not (
        tmp_path / "job" / "tools" / TAG / "linux_amd64" / "kubectl-restart_backend"
    ).exists()
    assert cluster.requests == []
    assert outputs(github) == {}


def test_the_action_passes_the_plugins_exit_code_and_takes_the_latest_release(
    cluster, github, releases, tmp_path
):
    link(cluster)
    cluster.set_behaviour("shop", "backend", Behaviour.crash_loop())
    releases.publish()
    encoded = base64.b64encode(Path(cluster.kubeconfig).read_bytes()).decode()
    done = action(
        github,
        releases,
        tmp_path / "job",
        RB_KUBECONFIG=encoded,
        RB_ARGS="--max-restarts 1\n--logs 5",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "/releases/latest" in releases.requests
    assert any(line.startswith("::error title=Restart failed") for line in done.stdout.splitlines())
    assert "(1 tolerated)" in done.stdout
    assert outputs(github) == {"verdict": "failed", "exit-code": "1", "ready": "false"}


def test_the_action_uses_its_own_tag_when_no_version_is_given(cluster, github, releases, tmp_path):
    link(cluster)
    releases.publish()
    done = action(
        github,
        releases,
        tmp_path / "job",
        RB_KUBECONFIG=cluster.kubeconfig,
        RB_ACTION_REF=TAG,
        RB_ARGS="--no-wait",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/releases/latest" not in releases.requests
    assert outputs(github)["verdict"] == "triggered"


@pytest.mark.parametrize(
    "inputs, words",
    [
        ({"RUNNER_OS": "Windows"}, "no release archive for this runner's OS (Windows)"),
        ({"RB_KUBECONFIG": "no-such-file"}, "the kubeconfig input is neither a file"),
        ({"RB_VERSION": "v1;rm -rf /"}, "not a release tag"),
    ],
)
def test_the_action_refuses_unusable_inputs_before_touching_the_cluster(
    cluster, github, releases, tmp_path, inputs, words
):
    releases.publish()
    done = action(github, releases, tmp_path / "job", **{"RB_VERSION": TAG, **inputs})
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert cluster.requests == []
