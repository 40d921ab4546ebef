"""The trouble table: which pod trouble dooms a rollout, when, and why (pure, as tables)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kubectl_restart_backend.trouble import (
    TROUBLE,
    Doom,
    Evidence,
    Memory,
    Tolerance,
    Where,
    judge,
    observe_pod,
    remember_troubles,
    render_help_table,
    render_markdown_table,
    rule_for,
    waiting_words,
)
from tests.cluster.behaviours import PULL_ERRORS, pull_error_message
from tests.k8s_objects import NOW, pod

REF = "docker.io/acme/shop:3.0"


def pull(kind: str) -> str:
    """What the simulated (and the real) kubelet writes for this registry answer."""
    return pull_error_message(kind, REF)


# -- which row -----------------------------------------------------------------------------

ROWS = [
    # images: the registry's answer decides
    (Where.WAITING, "ErrImagePull", pull("not_found"), "ImageNotFound"),
    (Where.WAITING, "ErrImagePull", pull("unauthorized"), "ImagePullDenied"),
    (Where.WAITING, "ErrImagePull", pull("unavailable"), "RegistryHiccup"),
    (Where.WAITING, "ErrImagePull", pull("rate_limited"), "RegistryHiccup"),
    (Where.WAITING, "ErrImagePull", pull("timeout"), "RegistryHiccup"),
    (Where.WAITING, "ErrImagePull", "manifest unknown: manifest unknown", "ImageNotFound"),
    (Where.WAITING, "ErrImagePull", "unexpected status: 401 Unauthorized", "ImagePullDenied"),
    (Where.WAITING, "ErrImagePull", "read tcp: connection reset by peer", "RegistryHiccup"),
    (Where.WAITING, "ErrImagePull", "something nobody has seen", "ImagePullFailed"),
    (
        Where.WAITING,
        "ImagePullBackOff",
        f'Back-off pulling image "{REF}": ErrImagePull: {pull("not_found")}',
        "ImageNotFound",
    ),
    (Where.WAITING, "ImagePullBackOff", f'Back-off pulling image "{REF}"', "ImagePullFailed"),
    (Where.WAITING, "RegistryUnavailable", "image pull failed ... unavailable", "ImagePullFailed"),
    (Where.WAITING, "InvalidImageName", 'couldn\'t parse image name "A B"', "InvalidImageName"),
    (Where.WAITING, "ErrImageNeverPull", "pull policy of Never", "ImageNeverPulled"),
    (Where.WAITING, "SignatureValidationFailed", "", "ImageSignatureRefused"),
    # a repository named like an error is not the error: quoted references and URLs are skipped
    (
        Where.WAITING,
        "ErrImagePull",
        pull_error_message("unavailable", "docker.io/unauthorized/timeout:1"),
        "RegistryHiccup",
    ),
    (
        Where.WAITING,
        "ErrImagePull",
        pull_error_message("timeout", "docker.io/acme/not-found:1"),
        "RegistryHiccup",
    ),
    # creating the container
    (Where.WAITING, "CreateContainerConfigError", 'secret "db" not found', "MissingConfig"),
    (Where.WAITING, "CreateContainerConfigError", 'configmap "cfg" not found', "MissingConfig"),
    (
        Where.WAITING,
        "CreateContainerConfigError",
        "couldn't find key url in Secret shop/db",
        "MissingConfig",
    ),
    (
        Where.WAITING,
        "CreateContainerConfigError",
        "failed to sync secret cache: timed out waiting for the condition",
        "ConfigCacheSyncing",
    ),
    (
        Where.WAITING,
        "CreateContainerConfigError",
        "container has runAsNonRoot and image will run as root",
        "RunAsRootRefused",
    ),
    (Where.WAITING, "CreateContainerConfigError", "invalid subPath", "ContainerConfigError"),
    (Where.WAITING, "CreateContainerError", "no command specified", "CommandNotFound"),
    (
        Where.WAITING,
        "CreateContainerError",
        'failed to reserve container name "api_x": name "api_x" is reserved for "abc"',
        "CreateContainerError",
    ),
    (Where.WAITING, "RunContainerError", "OCI runtime start failed", "RunContainerError"),
    (Where.WAITING, "ContainerCreating", "", None),
    (Where.WAITING, "PodInitializing", "", None),
    # exits
    (Where.EXITED, "Error", "", "CrashLoop"),
    (Where.EXITED, "Completed", "", "CrashLoop"),
    (Where.EXITED, "OOMKilled", "", "OOMKilled"),
    (Where.EXITED, "StartError", 'exec: "app": executable file not found', "CommandNotFound"),
    (Where.EXITED, "StartError", "OCI runtime create failed: busy", "CrashLoop"),
    # pods
    (Where.POD_FAILED, "Evicted", "The node was low on resource: memory.", "PodDisplaced"),
    (Where.POD_FAILED, "Preempting", "", "PodDisplaced"),
    (Where.POD_FAILED, "NodeShutdown", "", "PodDisplaced"),
    (Where.POD_FAILED, "UnexpectedAdmissionError", "", "PodDisplaced"),
    (Where.POD_FAILED, "DeadlineExceeded", "", "PodFailed"),
    (Where.POD_FAILED, None, "", "PodFailed"),
    (Where.UNSCHEDULABLE, "Unschedulable", "0/3 nodes are available", "Unschedulable"),
    # the ReplicaSet
    (Where.REPLICA_FAILURE, "FailedCreate", '"x" is forbidden: exceeded quota: q', "QuotaExceeded"),
    (
        Where.REPLICA_FAILURE,
        "FailedCreate",
        'pods "x" is forbidden: violates PodSecurity "restricted:latest"',
        "PodRefused",
    ),
    (
        Where.REPLICA_FAILURE,
        "FailedCreate",
        'Internal error occurred: failed calling webhook "x": connection refused',
        "ReplicaFailure",
    ),
    (Where.DEPLOYMENT, "ProgressDeadlineExceeded", "", "ProgressDeadlineExceeded"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "reason", "message", "kind"), ROWS)
def test_trouble_is_classified_by_reason_and_message(where, reason, message, kind):
    rule = rule_for(where, reason, message)
    assert (rule.kind if rule else None) == kind


@pytest.mark.parametrize("answer", sorted(PULL_ERRORS))
def test_every_registry_answer_of_the_shared_vocabulary_has_a_row(answer):
    rule = rule_for(Where.WAITING, "ErrImagePull", pull(answer))
    permanent = answer in ("not_found", "unauthorized")
    assert rule.doom is (Doom.NOW if permanent else Doom.AFTER_PULLS)


def test_every_row_says_why_in_one_line():
    for rule in TROUBLE:
        assert rule.why and "\n" not in rule.why and len(rule.why) < 100, rule.kind


# -- judging -------------------------------------------------------------------------------

DEFAULT = Tolerance()


def doomed(kind_of_row: str, evidence: Evidence, tolerance: Tolerance = DEFAULT) -> bool:
    rule = next(r for r in TROUBLE if r.kind == kind_of_row)
    return judge(rule, evidence, tolerance).doomed


@pytest.mark.parametrize(
    ("row", "evidence", "tolerance", "expected"),
    [
        ("ImageNotFound", Evidence(failed_pulls=1), DEFAULT, True),
        ("CrashLoop", Evidence(crashes=1), DEFAULT, False),  # crashed once, restarted at once
        ("CrashLoop", Evidence(crashes=2), DEFAULT, False),  # second exit: a 10 s back-off
        ("CrashLoop", Evidence(crashes=3), DEFAULT, True),  # third exit: past 2 restarts
        ("CrashLoop", Evidence(crashes=1), Tolerance().fail_fast(), True),
        ("CrashLoop", Evidence(crashes=5), Tolerance(restarts=5), False),
        ("RegistryHiccup", Evidence(failed_pulls=2), DEFAULT, False),
        ("RegistryHiccup", Evidence(failed_pulls=3), DEFAULT, True),
        ("RegistryHiccup", Evidence(failed_pulls=1), Tolerance().fail_fast(), True),
        ("MissingConfig", Evidence(seconds=29.9), DEFAULT, False),
        ("MissingConfig", Evidence(seconds=30.0), DEFAULT, True),
        ("MissingConfig", Evidence(seconds=0.0), Tolerance().fail_fast(), True),
        ("Unschedulable", Evidence(seconds=45), Tolerance(unschedulable_grace=60), False),
        ("Unschedulable", Evidence(seconds=45), Tolerance().fail_fast(), True),
        ("ConfigCacheSyncing", Evidence(seconds=600), Tolerance().fail_fast(), False),
        ("PodDisplaced", Evidence(), Tolerance().fail_fast(), False),
        ("NotReady", Evidence(seconds=600), DEFAULT, False),
    ],
)
def test_doom_follows_the_evidence_and_the_tolerance(row, evidence, tolerance, expected):
    assert doomed(row, evidence, tolerance) is expected


def test_fail_fast_keeps_the_unschedulable_grace_it_was_given():
    assert Tolerance(unschedulable_grace=12).fail_fast() == Tolerance(0, 0, 0.0, 12)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("CrashLoop", "up to 2 restarts tolerated (--max-restarts)"),
        ("RegistryHiccup", "up to 2 failed pulls tolerated (--max-pull-failures)"),
        ("MissingConfig", "tolerated for 30s (--config-grace)"),
        ("Unschedulable", "tolerated for 30s (--unschedulable-grace)"),
        ("ImageNotFound", ""),
        ("NotReady", ""),
    ],
)
def test_the_note_while_trouble_is_waited_out_names_the_flag(kind, words):
    assert waiting_words(kind, DEFAULT) == words


def test_judgement_says_how_much_tolerance_was_used():
    rule = rule_for(Where.EXITED, "Error")
    assert judge(rule, Evidence(crashes=2), DEFAULT).progress == "2 exits, 2 restarts tolerated"


# -- memory --------------------------------------------------------------------------------

UNAVAILABLE = pull("unavailable")
BACKOFF = f'Back-off pulling image "{REF}": ErrImagePull: {UNAVAILABLE}'


def updates(*waiting):
    memory = Memory()
    for state in waiting:
        memory = observe_pod(memory, pod("p", waiting=state) if state else pod("p"))
    return memory


def test_failed_pulls_are_counted_on_each_entry_into_err_image_pull():
    memory = updates(
        ("ErrImagePull", UNAVAILABLE),
        ("ErrImagePull", UNAVAILABLE),  # the same state written again is not another pull
        ("ImagePullBackOff", BACKOFF),
        ("ErrImagePull", UNAVAILABLE),
    )
    assert memory.failed_pulls("p", "api") == 2
    assert memory.pull_error("p", "api") == UNAVAILABLE


def test_a_backoff_seen_first_means_at_least_one_failed_pull_and_keeps_its_error():
    memory = updates(("ImagePullBackOff", BACKOFF))
    assert memory.failed_pulls("p", "api") == 1
    assert memory.pull_error("p", "api") == UNAVAILABLE


def test_troubles_a_pod_showed_are_remembered_for_the_success_report():
    memory = updates(("CreateContainerConfigError", 'secret "db" not found'), None)
    assert memory.seen["p"] == ('CreateContainerConfigError: secret "db" not found',)


def test_time_based_trouble_lasts_from_when_it_was_first_seen_until_it_goes_away():
    memory = remember_troubles(Memory(), ["a"], NOW)
    later = NOW + timedelta(seconds=12)
    memory = remember_troubles(memory, ["a", "b"], later)
    assert memory.lasted("a", later) == 12 and memory.lasted("b", later) == 0
    memory = remember_troubles(memory, ["b"], later)
    assert "a" not in memory.since  # gone: if it comes back, it starts again


# -- documented ----------------------------------------------------------------------------


def test_readme_carries_the_table_as_the_code_has_it():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert render_markdown_table() in readme


def test_help_lists_every_row_with_its_why():
    text = render_help_table()
    for rule in TROUBLE:
        assert f"{rule.kind}: " in text and rule.why in text
