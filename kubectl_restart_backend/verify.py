"""Does the restarted backend answer? The smoke check after a complete rollout, decided.

"All pods healthy: 3/3 ready" means the readiness probes passed once: a bare TCP check or a
``/healthz`` that ignores the database passes while every real request fails. So after the
rollout completes, the plugin asks the backend itself, by default through the API server's
Service proxy (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``: no network path
beyond the API server, the user's own credentials), or at a public URL.

Everything here is pure; ``verification.py`` does the requests and the waiting:

- ``choose_target``: which Service, port and path (by default the container's HTTP readiness
  probe, and the Service port whose ``targetPort`` leads to the probe's port, by number or
  name), or a public URL, or why there is nothing to check (``Skip``);
- ``parse_expectation``: which statuses count as serving (default 2xx and 3xx);
- ``judge_reply``: one reply -> good, bad, a reason to skip the check (the user may not use
  the proxy), or unknown (the API server could not be asked: it says nothing of the backend);
- ``CheckTrack``: the replies folded into a streak, judged by ``check_verdict``: passed once
  ``successes`` good replies come in a row; failed when it has not been passing for a whole
  budget and a bad reply was seen; a check that fails once and then passes within its budget
  passes. The same track goes on through the settle window: a backend that stops answering
  there gets the same budget to come back.

Replies are judged for truth before speed: only an answer of the backend (or the proxy's
word that nothing of it answers) fails a restart; anything that only says we could not ask
skips the check with the reason, never fails it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from http import HTTPStatus
from typing import Any, Mapping, Optional, Sequence, Union

from kubectl_restart_backend.diagnosis import one_line
from kubectl_restart_backend.repo_url import redact_url
from kubectl_restart_backend.urls import selects

DEFAULT_EXPECT = "2xx,3xx"
VERIFICATION_FAILED = "VerificationFailed"  # the reason of a restart whose check failed
# Reasons of failures found after every new pod was ready (the check, the settle window's
# rows of the trouble table): by then the old pods are gone.
AFTER_COMPLETE_REASONS = frozenset({VERIFICATION_FAILED, "RestartedWhileSettling", "ReadinessLost"})
DEFAULT_BUDGET = 30.0  # seconds a failing check gets to pass (like the other graces)
BODY_CHARS = 200  # the first line of a body, at most this long, goes into the verdict
RETRY_FIRST, RETRY_MAX = 0.5, 2.0  # pause after a reply that is not good, doubling
STREAK_GAP = 0.2  # pause between good replies while a streak of several is counted


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Expectation:
    """The statuses that count as serving: inclusive ranges, and how the user wrote them."""

    ranges: tuple[tuple[int, int], ...]
    text: str

    def accepts(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)

    def describe(self) -> str:
        """``2xx or 3xx``, ``200``: for the sentence of a failed check."""
        return " or ".join(part.strip() for part in self.text.split(","))


_EXPECT_PART = re.compile(r"^(?:([1-5])xx|([1-5]\d\d)(?:-([1-5]\d\d))?)$", re.IGNORECASE)


def parse_expectation(text: Union[str, int]) -> Expectation:
    """``200``, ``2xx``, ``200-299``, ``200,204``, ``2xx,3xx`` -> an Expectation.

    Raises ValueError saying what is wrong (the caller adds where it was written).
    """
    raw = str(text).strip()
    ranges = []
    for part in raw.split(","):
        match = _EXPECT_PART.match(part.strip())
        if not match:
            raise ValueError(
                f"{part.strip()!r} is not a status: write 200, 2xx, 200-299 or a list (200,204)"
            )
        hundreds, low, high = match.groups()
        if hundreds:
            ranges.append((int(hundreds) * 100, int(hundreds) * 100 + 99))
        else:
            first, last = int(low), int(high or low)
            if last < first:
                raise ValueError(f"{part.strip()!r} is an empty range")
            ranges.append((first, last))
    return Expectation(tuple(ranges), ",".join(p.strip() for p in raw.split(",")))


DEFAULT_EXPECTATION = parse_expectation(DEFAULT_EXPECT)


@dataclass(frozen=True)
class VerifySettings:
    """The user's wishes (flags > config file > these defaults)."""

    enabled: bool = True
    path: Optional[str] = None  # None: the HTTP readiness probe's path
    url: Optional[str] = None  # a public URL instead of the Service proxy; "auto": discovered
    expect: Expectation = DEFAULT_EXPECTATION
    successes: int = 1
    budget: float = DEFAULT_BUDGET
    settle: float = 0.0  # seconds to keep watching after the check passed


AUTO_URL = "auto"


def url_problem(url: str) -> Optional[str]:
    """Why a ``--verify-url`` cannot be used (None when it can): http(s) only, and no
    credentials in it (they would travel to wherever the URL points, and show in reports)."""
    if url == AUTO_URL:
        return None
    match = re.match(r"^(https?)://([^/?#]*)", url, re.IGNORECASE)
    if not match or not match.group(2):
        return "must be an http:// or https:// URL (or auto: the first URL the report shows)"
    if "@" in match.group(2):
        return "must not carry credentials (user:password@)"
    return None


# --------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class ProxyTarget:
    """A GET through the API server's Service proxy."""

    namespace: str
    service: str
    port: str  # the Service port's name, or its number when it has none
    path: str  # starts with "/"; may carry a query
    scheme: str = ""  # "https" when the probe speaks HTTPS
    source: str = ""  # where the path came from: "readiness probe of container app", ...

    @property
    def proxy_id(self) -> str:
        """``[https:]NAME:PORT``, the Service proxy's way of naming the port."""
        return f"{self.scheme + ':' if self.scheme else ''}{self.service}:{self.port}"

    def describe(self) -> str:
        return f"GET {self.path} through service {self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class UrlTarget:
    """A GET of a public URL, from where the plugin runs."""

    url: str

    def describe(self) -> str:
        return f"GET {redact_url(self.url)}"


@dataclass(frozen=True)
class Skip:
    """There is nothing to check, or we may not: said once, never a failure."""

    reason: str


Target = Union[ProxyTarget, UrlTarget, Skip]


def choose_target(
    namespace: str,
    template: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    settings: VerifySettings,
    discovered_urls: Sequence[str] = (),
) -> Target:
    """What to GET to learn whether the pods of ``template`` serve.

    ``--verify-url URL`` wins; ``auto`` takes the first discovered URL (the path added when
    one is configured or the probe has one). Otherwise the Service proxy: the path is
    ``settings.path``, else the first container's HTTP readiness probe; the Service is one
    that selects the pods (``urls.selects``), by name, with a port whose ``targetPort`` leads
    to the probe's port (the port's number, or the name of a container port) or, without a
    probe, to a port the containers declare (or the Service's only port).
    """
    probe = _http_readiness_probe(template)
    if settings.url:
        return _url_target(settings, probe, discovered_urls)
    if settings.path is None and probe is None:
        return Skip(
            "no container has an HTTP readiness probe to ask (give a path: --verify-path, "
            "or verify: {path: ...} in .restart-backend.yaml)"
        )
    path = _normalise_path(settings.path if settings.path is not None else probe.path)
    source = "--verify-path" if settings.path is not None else f"readiness probe of {probe.name}"
    labels = (template.get("metadata") or {}).get("labels") or {}
    selecting = sorted((s for s in services if _in(s, namespace) and selects(s, labels)), key=_name)
    if not selecting:
        return Skip("no Service selects the pods (nothing routes requests to them)")
    wanted = [probe.port] if probe is not None else _declared_ports(template)
    for service in selecting:
        port = _matching_port(service, wanted)
        if port is not None:
            scheme = "https" if probe is not None and probe.scheme == "HTTPS" else ""
            return ProxyTarget(namespace, _name(service), port, path, scheme, source)
    what = f"the probe's port {probe.port.shown}" if probe is not None else "a container port"
    names = ", ".join(_name(s) for s in selecting)
    return Skip(f"no port of service {names} leads to {what}")


def needs_services(template: Mapping[str, Any], settings: VerifySettings) -> bool:
    """Whether choosing the target needs the namespace's Services: not for a public URL, and
    not when there is no path to ask (no probe, none configured): then nothing is listed."""
    if settings.url:
        return False
    return settings.path is not None or _http_readiness_probe(template) is not None


@dataclass(frozen=True)
class _Port:
    """A container port as a probe or Service names it: its number and/or its name."""

    number: Optional[int]
    name: Optional[str]

    @property
    def shown(self) -> str:
        if self.number is not None and self.name:
            return f"{self.number} ({self.name})"
        return str(self.number) if self.number is not None else str(self.name)


@dataclass(frozen=True)
class _Probe:
    name: str  # "container app"
    path: str
    port: _Port
    scheme: str


def _http_readiness_probe(template: Mapping[str, Any]) -> Optional[_Probe]:
    for container in (template.get("spec") or {}).get("containers") or []:
        http_get = (container.get("readinessProbe") or {}).get("httpGet")
        if not http_get:
            continue
        port = _resolve_port(container, http_get.get("port"))
        scheme = str(http_get.get("scheme") or "HTTP").upper()
        path = str(http_get.get("path") or "/")
        return _Probe(f"container {container.get('name')}", path, port, scheme)
    return None


def _resolve_port(container: Mapping[str, Any], port: Any) -> _Port:
    """A probe's port (a number, or a container port's name) with the other half filled in
    from the container's declared ports when it declares it."""
    declared = container.get("ports") or []
    if isinstance(port, str) and not port.isdigit():
        number = next((p.get("containerPort") for p in declared if p.get("name") == port), None)
        return _Port(number, port)
    number = int(port) if port is not None else None
    name = next((p.get("name") for p in declared if p.get("containerPort") == number), None)
    return _Port(number, name)


def _declared_ports(template: Mapping[str, Any]) -> list[_Port]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [
        _Port(p.get("containerPort"), p.get("name"))
        for c in containers
        for p in c.get("ports") or []
    ]


def _matching_port(service: Mapping[str, Any], wanted: Sequence[_Port]) -> Optional[str]:
    """The Service port (its name, or number) whose targetPort leads to one of ``wanted``;
    with nothing wanted (no declared port), the Service's only port."""
    ports = (service.get("spec") or {}).get("ports") or []
    for port in ports:
        target = port.get("targetPort", port.get("port"))
        for want in wanted:
            by_number = want.number is not None and str(target) == str(want.number)
            by_name = bool(want.name) and target == want.name
            if by_number or by_name:
                return str(port.get("name") or port.get("port"))
    if not wanted and len(ports) == 1:
        return str(ports[0].get("name") or ports[0].get("port"))
    return None


def _url_target(
    settings: VerifySettings, probe: Optional[_Probe], discovered: Sequence[str]
) -> Target:
    if settings.url != AUTO_URL:
        return UrlTarget(str(settings.url))
    usable = [u for u in discovered if u.startswith(("http://", "https://"))]
    if not usable:
        return Skip("--verify-url auto: no URL was found (no Ingress, HTTPRoute or LoadBalancer)")
    path = settings.path if settings.path is not None else (probe.path if probe else "")
    base = usable[0].rstrip("/")
    return UrlTarget(base + (_normalise_path(path) if path else ""))


def _normalise_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _in(obj: Mapping[str, Any], namespace: str) -> bool:
    theirs = (obj.get("metadata") or {}).get("namespace")
    return not theirs or theirs == namespace


def _name(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """What one GET brought back, as the shell saw it.

    ``status`` None: no HTTP answer at all (``error`` says why; ``timed_out`` when the
    connection was made but no answer came in time). ``api_reason`` is set when the body is
    the API server's own ``Status`` (its reason, e.g. Forbidden, ServiceUnavailable) rather
    than the backend's; ``body`` is the text of the answer (the Status's message for those).
    """

    status: Optional[int]
    body: str = ""
    api_reason: str = ""
    error: str = ""
    timed_out: bool = False


class Kind(str, Enum):
    GOOD = "good"  # the expected status
    BAD = "bad"  # the backend's answer (or the proxy saying nothing of it answers)
    SKIP = "skip"  # we may not ask (forbidden, credentials refused, the Service is gone)
    UNKNOWN = "unknown"  # the API server (or the network) could not be asked


@dataclass(frozen=True)
class Judged:
    kind: Kind
    words: str  # "500 Internal Server Error: database unreachable", "not allowed to ..."
    status: Optional[int] = None


def judge_reply(reply: Reply, expect: Expectation, *, via_proxy: bool) -> Judged:
    """One reply, judged. Through the proxy, the API server's own Status bodies are told
    apart from the backend's answers: its 403/401, a vanished Service and its other refusals
    (400 ``address not allowed``: the pod IP is not one it proxies to) skip the check, its
    503s (no ready endpoint, nothing listening) are about the backend, and its other errors
    (429, 500, 504: busy or broken itself) say nothing of the backend."""
    if reply.status is None:
        if reply.timed_out and via_proxy:
            return Judged(Kind.BAD, f"no answer ({one_line(reply.error)})")
        return Judged(Kind.UNKNOWN, one_line(reply.error) or "no answer")
    status = reply.status
    if expect.accepts(status):
        return Judged(Kind.GOOD, status_words(status), status)
    if via_proxy and reply.api_reason:
        message = scrub_credentials(one_line(reply.body, limit=BODY_CHARS))
        if status == 403:
            return Judged(Kind.SKIP, f"not allowed: {message}", status)
        if status == 401:
            return Judged(Kind.SKIP, "the API server did not accept the credentials", status)
        if status == 404 and reply.api_reason == "NotFound":
            return Judged(Kind.SKIP, f"the Service is gone: {message}", status)
        if 400 <= status < 500 and status != 429:  # e.g. 400 address not allowed: for good
            return Judged(Kind.SKIP, f"the API server refused to proxy: {message}", status)
        if status == 503 and reply.api_reason == "ServiceUnavailable":
            return Judged(
                Kind.BAD, f"{status_words(status)} from the API server: {message}", status
            )
        return Judged(Kind.UNKNOWN, f"{status_words(status)} from the API server: {message}")
    line = first_line(reply.body)
    return Judged(Kind.BAD, status_words(status) + (f": {line}" if line else ""), status)


def status_words(status: int) -> str:
    """``500 Internal Server Error`` (just the number for a status HTTP has no name for)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def first_line(body: str) -> str:
    """The first non-empty line of a body, one safe line, trimmed, credentials scrubbed."""
    for line in body.splitlines():
        if line.strip():
            return scrub_credentials(one_line(line, limit=BODY_CHARS))
    return ""


_CREDENTIALS = (
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s/@:]+:)[^\s/@]+@", re.IGNORECASE), r"\1***@"),
    (re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\1 ***"),
    (
        re.compile(
            r"\b(password|passwd|pwd|token|secret|api[_-]?key)(\"?\s*[=:]\s*\"?)[^\s\"',;&]+",
            re.IGNORECASE,
        ),
        r"\1\2***",
    ),
)


def scrub_credentials(text: str) -> str:
    """A backend's error page may echo a connection string or a token: hide the secret part
    (``postgres://app:***@db``, ``Bearer ***``, ``password=***``) before it is printed."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


# --------------------------------------------------------------------------- the track


class CheckResult(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckTrack:
    """Replies folded in order (``record``); ``check_verdict`` reads it with the clock.

    ``failing_since`` is when the backend last stopped passing (the check's start, at first):
    the budget counts from there, so a blip in the settle window gets the same chance to
    heal as a slow start.
    """

    successes: int
    budget: float
    failing_since: Optional[float]  # None while passing
    streak: int = 0
    misses: int = 0  # replies that were not good, in a row
    attempts: int = 0
    passing: bool = False
    last: Optional[Judged] = None
    last_bad: Optional[Judged] = None  # the last bad reply of the current failing stretch
    skip: Optional[str] = None
    bad_replies: int = 0
    answers: tuple[str, ...] = field(default=())  # the distinct words of replies, in order

    @classmethod
    def start(cls, now: float, successes: int, budget: float) -> CheckTrack:
        return cls(successes=max(1, successes), budget=max(0.0, budget), failing_since=now)


def record(track: CheckTrack, judged: Judged, now: float) -> CheckTrack:
    """Fold one judged reply into the track."""
    answers = track.answers if judged.words in track.answers else (*track.answers, judged.words)
    track = replace(track, attempts=track.attempts + 1, last=judged, answers=answers[-5:])
    if judged.kind is Kind.SKIP:
        return replace(track, skip=judged.words)
    if judged.kind is Kind.GOOD:
        streak = track.streak + 1
        if streak >= track.successes:
            return replace(
                track, streak=streak, misses=0, passing=True, failing_since=None, last_bad=None
            )
        return replace(track, streak=streak, misses=0)
    if judged.kind is Kind.BAD:
        track = replace(track, last_bad=judged, bad_replies=track.bad_replies + 1)
    since = track.failing_since if track.failing_since is not None else now
    return replace(track, streak=0, misses=track.misses + 1, passing=False, failing_since=since)


def check_verdict(track: CheckTrack, now: float) -> Optional[CheckResult]:
    """PASSED while the backend passes; FAILED once it has not for a whole budget with a bad
    reply among the replies; SKIPPED when we may not ask, or could never ask; None: go on."""
    if track.skip is not None:
        return CheckResult.SKIPPED
    if track.passing:
        return CheckResult.PASSED
    if track.failing_since is None or now - track.failing_since < track.budget:
        return None
    if track.attempts == 0:
        return None  # always ask at least once, however little time is left
    return CheckResult.FAILED if track.last_bad is not None else CheckResult.SKIPPED


def next_pause(track: CheckTrack) -> float:
    """How long to wait before the next GET while the verdict is open: a short gap while a
    streak is counted, else a back-off from RETRY_FIRST doubling to RETRY_MAX."""
    if track.misses == 0:
        return STREAK_GAP
    return min(RETRY_MAX, RETRY_FIRST * 2 ** (min(track.misses, 8) - 1))


def describe_failure(target_words: str, track: CheckTrack, expect: Expectation) -> str:
    """The failure reason: what was asked, what it answered, how hard we tried."""
    bad = track.last_bad.words if track.last_bad is not None else "no answer"
    tries = f"{track.attempts} {'try' if track.attempts == 1 else 'tries'}"
    return (
        f"the backend does not serve: {target_words} answered {bad} "
        f"({tries} in {track.budget:.0f}s, expected {expect.describe()})"
    )


def describe_retrying(target_words: str, judged: Judged, left: float) -> str:
    """The progress line while a check that is not passing yet is retried."""
    return f"Verifying: {target_words} answered {judged.words}; retrying ({left:.0f}s left)"


def describe_skip(track: CheckTrack) -> str:
    if track.skip is not None:
        return track.skip
    words = track.last.words if track.last is not None else "no answer"
    return f"could not ask: {words}"


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Verification:
    """What the check and the settle window found, for the report (text and -o json/yaml)."""

    status: str  # passed | failed | skipped | interrupted
    check: str = ""  # "GET /healthz through service shop/backend:http"; "" if nothing to ask
    method: str = ""  # service-proxy | url
    expect: str = ""
    successes: int = 0  # good replies in a row that pass the check
    attempts: int = 0
    answers: tuple[str, ...] = ()  # the distinct answers seen, in order (at most 5)
    reason: str = ""  # why it was skipped, or why it failed
    seconds: float = 0.0  # the check's duration, up to its verdict
    settle_seconds: float = 0.0  # the settle window asked for (0: none)
    settle: str = ""  # passed | failed | cut-short; "" without a window
    settle_problem: str = ""  # what ended the window early (failed, cut-short)
