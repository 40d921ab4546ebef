"""Exec credential plugins: the protocol's answers read strictly, tokens refreshed near expiry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from kubectl_restart_backend.errors import ApiError, RefusedError, UsageError
from kubectl_restart_backend.exec_plugin import (
    ExecCredential,
    is_interactive,
    parse_exec_credential,
    refreshing_hook,
)

V1 = "client.authentication.k8s.io/v1"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def answer(status, api_version=V1, kind="ExecCredential"):
    return json.dumps({"apiVersion": api_version, "kind": kind, "status": status})


@pytest.mark.parametrize(
    "stdout, expected",
    [
        (answer({"token": "t"}), ExecCredential(token="t")),
        (
            answer({"token": "t", "expirationTimestamp": "2026-11-30T12:15:00Z"}),
            ExecCredential(token="t", expires_at=NOW + timedelta(minutes=15)),
        ),
        (
            answer({"clientCertificateData": "C", "clientKeyData": "K"}),
            ExecCredential(client_certificate_pem=b"C", client_key_pem=b"K"),
        ),
    ],
)
def test_answers_the_protocol_allows(stdout, expected):
    assert parse_exec_credential(stdout, "", V1, "plugin") == expected


@pytest.mark.parametrize(
    "stdout, why",
    [
        ("token", "not JSON"),
        ("[]", "kind"),
        (answer({"token": "t"}, kind="Other"), "kind"),
        (answer({"token": "t"}, api_version="v0"), "apiVersion"),
        (json.dumps({"apiVersion": V1, "kind": "ExecCredential"}), "no status"),
        (answer({}), "no token"),
        (answer({"clientCertificateData": "C"}), "no token"),
        (answer({"token": ""}), "no token"),
    ],
)
def test_answers_that_are_not_credentials_say_why_but_not_what(stdout, why):
    with pytest.raises(RefusedError) as caught:
        parse_exec_credential(stdout, "", V1, "plugin")
    assert why in caught.value.message
    assert 'token"' not in caught.value.message


@pytest.mark.parametrize(
    "mode, tty, interactive",
    [
        (None, True, True),
        (None, False, False),
        ("IfAvailable", True, True),
        ("Never", True, False),
        ("Always", True, True),
    ],
)
def test_interactive_mode_follows_kubectl(mode, tty, interactive):
    assert is_interactive({"interactiveMode": mode} if mode else {}, "u", tty) is interactive


def test_always_interactive_without_a_terminal_is_refused():
    with pytest.raises(UsageError, match="needs a terminal"):
        is_interactive({"interactiveMode": "Always", "command": "login"}, "u", False)


def test_token_is_fetched_again_shortly_before_it_expires():
    clock = {"now": NOW}
    fetched = []

    def fetch():
        fetched.append(clock["now"])
        return ExecCredential(
            token=f"t{len(fetched)}", expires_at=clock["now"] + timedelta(minutes=15)
        )

    hook = refreshing_hook(
        ExecCredential(token="t0", expires_at=NOW + timedelta(minutes=15)),
        fetch,
        lambda: clock["now"],
    )
    configuration = SimpleNamespace(api_key={"authorization": "Bearer t0"})
    clock["now"] = NOW + timedelta(minutes=13)
    hook(configuration)
    assert fetched == [] and configuration.api_key["authorization"] == "Bearer t0"
    clock["now"] = NOW + timedelta(minutes=14, seconds=30)
    hook(configuration)
    assert configuration.api_key["authorization"] == "Bearer t1"
    hook(configuration)  # the new token is fresh: no second run
    assert len(fetched) == 1


def test_a_failed_refresh_is_an_api_error_the_api_layer_reports():
    def fetch():
        raise RefusedError("Credential plugin 'aws' failed", "log in again")

    hook = refreshing_hook(ExecCredential(token="t", expires_at=NOW), fetch, lambda: NOW)
    with pytest.raises(ApiError, match="aws"):
        hook(SimpleNamespace(api_key={}))
