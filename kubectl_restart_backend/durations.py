"""kubectl-style durations (``90s``, ``2m``, ``1m30s``, ``1.5h``, ``500ms``).

kubectl parses ``--timeout`` and ``--request-timeout`` with Go's ``time.ParseDuration``;
people paste the same strings into our flags, so we accept the same syntax. A bare number
means seconds, as kubectl's ``--request-timeout`` does.
"""

from __future__ import annotations

import re

from .errors import UsageError, shown

_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUMBER = r"(?:\d+\.?\d*|\.\d+)"
_PART_RE = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_DURATION_RE = re.compile(rf"^\+?(?:{_NUMBER}(?:ns|us|µs|μs|ms|s|m|h))+$")
_BARE_RE = re.compile(rf"^\+?{_NUMBER}$")
_HINT = "Use a duration like 90s, 2m, 1m30s or 1.5h (a bare number means seconds)"
# Go's time.Duration is int64 nanoseconds: kubectl refuses anything longer, and so would
# the sockets and locks the value ends up in (OverflowError).
MAX_SECONDS = 9_223_372_036.0  # 2562047h47m16s


def parse_duration(text: str) -> float:
    """Seconds in a Go/kubectl duration string; ``UsageError`` if malformed or negative."""
    value = text.strip()
    if _BARE_RE.match(value):
        return _bounded(float(value.lstrip("+")), text)
    if _DURATION_RE.match(value):
        seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART_RE.findall(value))
        return _bounded(seconds, text)
    if value.startswith("-"):
        raise UsageError(f"{shown(text)} is a negative duration", _HINT)
    raise UsageError(f"{shown(text)} is not a duration", _HINT)


def _bounded(seconds: float, text: str) -> float:
    if seconds > MAX_SECONDS:
        raise UsageError(
            f"{shown(text)} is too long a duration (at most 2562047h, as in kubectl)", _HINT
        )
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest kubectl-style spelling: ``2m``, ``1m30s``, ``45s``, ``500ms``, ``0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{int(hours)}h")
    if minutes:
        parts.append(f"{int(minutes)}m")
    if secs or not parts:
        parts.append(f"{_trim(secs)}s")
    return "".join(parts)


def _trim(number: float) -> str:
    """``30.0`` -> ``30``, ``1.5`` -> ``1.5`` (at most millisecond precision)."""
    return f"{round(number, 3):.3f}".rstrip("0").rstrip(".")
