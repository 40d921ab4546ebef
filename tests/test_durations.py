"""kubectl/Go duration syntax for --timeout and --request-timeout."""

from __future__ import annotations

import pytest

from kubectl_restart_backend.durations import format_duration, parse_duration
from kubectl_restart_backend.errors import UsageError


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("2m", 120),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("1h2m3s", 3723),
        ("500ms", 0.5),
        ("1500ms", 1.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("10ns", 1e-8),
        (".5s", 0.5),
        ("1.s", 1),
        ("0", 0),
        ("0s", 0),
        ("30", 30),
        ("2.5", 2.5),
        ("+5s", 5),
        (" 45s ", 45),
        ("1m0s", 60),
    ],
)
def test_parse_duration_accepts_kubectl_syntax(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "m5",
        "5 m",
        "1m 30s",
        "-5s",
        "-1",
        "5x",
        "1d",
        "abc",
        "1e3s",
        "nan",
        "inf",
        "5s-",
        "1..5s",
        "5S",
        "0x10",
        "9999999h",
        "2562048h",
        "99999999999999",
        "1" + "0" * 400,
    ],
)
def test_parse_duration_rejects_malformed_or_negative(text):
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    assert "90s" in caught.value.hint and "1m30s" in caught.value.hint


@pytest.mark.parametrize("text", ["9999999h", "1" + "0" * 400 + "s"])
def test_durations_beyond_go_s_limit_are_too_long(text):
    with pytest.raises(UsageError, match="too long") as caught:
        parse_duration(text)
    assert len(caught.value.message) < 200


def test_the_longest_duration_still_fits_a_socket_timeout():
    import socket

    with socket.socket() as sock:
        sock.settimeout(parse_duration("2562047h"))


def test_negative_duration_says_negative():
    with pytest.raises(UsageError, match="negative"):
        parse_duration("-2m")


@pytest.mark.parametrize(
    "seconds, text",
    [
        (120, "2m"),
        (90, "1m30s"),
        (45, "45s"),
        (0, "0s"),
        (0.5, "500ms"),
        (3600, "1h"),
        (3723, "1h2m3s"),
        (3601, "1h1s"),
        (90.5, "1m30.5s"),
    ],
)
def test_format_duration_is_the_short_kubectl_spelling(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["2m", "1m30s", "45s", "1h2m3s", "500ms"])
def test_format_then_parse_round_trips(text):
    assert format_duration(parse_duration(text)) == text
