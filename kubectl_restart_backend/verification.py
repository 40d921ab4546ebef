"""After a complete rollout: ask the backend, then keep watching it settle (the doing).

What to ask, what a reply means and when a check is done are decided in ``verify.py``;
whether the pods stayed healthy in ``settle.py``. This module lists the Services, sends the
GETs (through the API server's Service proxy, or to a public URL), waits between them,
watches the pods through the settle window with the rollout watcher, says where it is, and
turns the answers into the verdict: complete, failed (with its own reason), or superseded
when someone else's change takes over during the window.

``check_complete_rollout`` is one step for one workload, run after its verdict is COMPLETE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from kubectl_restart_backend import cancellation
from kubectl_restart_backend.errors import ApiError
from kubectl_restart_backend.kinds import DEPLOYMENT, Kind
from kubectl_restart_backend.outcome import Verdict
from kubectl_restart_backend.repo_url import redact_url
from kubectl_restart_backend.retry import RetryBudget
from kubectl_restart_backend.rollout import Phase, RolloutState
from kubectl_restart_backend.settle import describe_settling, judge_settle, mark_unsettled
from kubectl_restart_backend.trouble import Tolerance
from kubectl_restart_backend.verify import (
    VERIFICATION_FAILED,
    CheckResult,
    CheckTrack,
    ProxyTarget,
    Reply,
    Skip,
    Target,
    Verification,
    VerifySettings,
    check_verdict,
    choose_target,
    describe_failure,
    describe_retrying,
    describe_skip,
    judge_reply,
    needs_services,
    next_pause,
    record,
)
from kubectl_restart_backend.watcher import RolloutWatcher

TICK = 1.0  # how often the settle window re-judges the pods when nothing arrives
SAY_EVERY = 5.0  # seconds between progress lines while settling
BODY_BYTES = 65_536  # read at most this much of a public URL's answer


@dataclass(frozen=True)
class Checked:
    """What the check and the window made of a complete rollout."""

    state: RolloutState  # FAILED (with its own reason) when the check or the window failed
    verdict: Verdict
    verification: Verification
    interrupted: bool = False  # Ctrl-C: the check or the window was cut short


def check_complete_rollout(
    session: Any,
    workload: dict,
    state: RolloutState,
    *,
    generation: int,
    settings: VerifySettings,
    tolerance: Tolerance,
    deadline: float,
    reporter: Any,
    urls: Any = None,
    kind: Kind = DEPLOYMENT,
) -> Checked:
    """Ask the backend of ``workload`` (a Deployment, StatefulSet or DaemonSet: ``kind``,
    whose rollout ``state`` is COMPLETE) whether it serves, within what is left of
    ``deadline`` (``--timeout``) and the check's own budget; then, with ``--settle``, watch it
    stay healthy. Ctrl-C keeps the COMPLETE verdict and says so."""
    started = session.clock()
    check = _Check(session, settings, reporter)
    try:
        target = _choose_target(session, workload, settings, urls)
        if isinstance(target, Skip):
            check.verification = Verification("skipped", reason=target.reason)
        else:
            budget = min(settings.budget, max(0.0, deadline - started))
            failed = check.run(target, budget)
            if failed is not None:
                failure = _failed(state, VERIFICATION_FAILED, failed)
                return Checked(failure, Verdict.FAILED, check.verification)
        if settings.settle > 0:
            return _settle(session, workload, state, generation, settings, tolerance, check,
                           reporter, started, kind)  # fmt: skip
        return Checked(state, Verdict.COMPLETE, check.verification)
    except KeyboardInterrupt:
        interrupted = dataclasses.replace(check.verification, status="interrupted")
        return Checked(state, Verdict.COMPLETE, interrupted, interrupted=True)


def _choose_target(session: Any, workload: dict, settings: VerifySettings, urls: Any) -> Target:
    meta = workload.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    template = (workload.get("spec") or {}).get("template") or {}
    discovered: tuple = ()
    if settings.url and urls is not None:
        discovered = tuple(urls.result().get("urls") or ())
    services: list = []
    if needs_services(template, settings):
        try:
            services = session.api.list("services", namespace).items
        except ApiError as err:
            return Skip(f"could not list the Services of namespace {namespace}: {err.message}")
    return choose_target(namespace, template, services, settings, discovered)


class _Check:
    """The smoke check's replies so far, and the GETs that bring them."""

    def __init__(self, session: Any, settings: VerifySettings, reporter: Any) -> None:
        self.session = session
        self.settings = settings
        self.reporter = reporter
        self.target: Optional[Target] = None
        self.track: Optional[CheckTrack] = None
        self.started = session.clock()
        self.decided: Optional[float] = None  # the check's duration, once it had a verdict
        self._said: tuple[str, float] = ("", float("-inf"))  # the last retry said, and when
        self.verification = Verification("skipped", reason="not started")

    def run(self, target: Target, budget: float) -> Optional[str]:
        """Ask until the check passes, fails or is skipped; the failure's reason, or None."""
        self.target = target
        self.track = CheckTrack.start(self.session.clock(), self.settings.successes, budget)
        while True:
            result = self.ask()
            if result is not None:
                return self._conclude(result)
            self.pause()

    def ask(self) -> Optional[CheckResult]:
        """One GET, folded into the track; the check's verdict, if it has one now."""
        assert self.target is not None and self.track is not None
        track = self.track
        since = track.failing_since if track.failing_since is not None else self.session.clock()
        left = since + track.budget - self.session.clock()
        reply = self._get(self.target, timeout=max(1.0, left))
        via_proxy = isinstance(self.target, ProxyTarget)
        judged = judge_reply(reply, self.settings.expect, via_proxy=via_proxy)
        now = self.session.clock()
        self.track = record(track, judged, now)
        result = check_verdict(self.track, now)
        if result is None and judged.kind.value != "good":
            self._say_retrying(judged, (self.track.failing_since or now) + track.budget - now)
        self.verification = self._report(result)
        return result

    def _say_retrying(self, judged: Any, left: float) -> None:
        """Say a retry when the answer changes, else at most every SAY_EVERY seconds."""
        now = self.session.clock()
        if judged.words == self._said[0] and now - self._said[1] < SAY_EVERY:
            return
        self._said = (judged.words, now)
        assert self.target is not None
        self.reporter.verifying(describe_retrying(self.target.describe(), judged, left))

    def pause(self) -> None:
        """Wait before the next GET: never past the end of the budget."""
        assert self.track is not None
        track, now = self.track, self.session.clock()
        pause = next_pause(track)
        if track.failing_since is not None:
            pause = min(pause, max(0.0, track.failing_since + track.budget - now))
        cancellation.pause(pause)

    def _conclude(self, result: CheckResult) -> Optional[str]:
        assert self.target is not None and self.track is not None
        if result is CheckResult.FAILED:
            return describe_failure(self.target.describe(), self.track, self.settings.expect)
        return None

    def _report(self, result: Optional[CheckResult]) -> Verification:
        assert self.target is not None and self.track is not None
        track = self.track
        status = (result or CheckResult.PASSED).value
        reason = ""
        if result is CheckResult.FAILED:
            reason = describe_failure(self.target.describe(), track, self.settings.expect)
        elif result is CheckResult.SKIPPED:
            reason = describe_skip(track)
        return Verification(
            status,
            check=self.target.describe(),
            method="service-proxy" if isinstance(self.target, ProxyTarget) else "url",
            expect=self.settings.expect.text,
            successes=track.successes,
            attempts=track.attempts,
            answers=track.answers,
            reason=reason,
            seconds=round(self._duration(result), 3),
        )

    def _duration(self, result: Optional[CheckResult]) -> float:
        """Until the first verdict: asking again in the settle window is the window's time."""
        if self.decided is None and result is not None:
            self.decided = self.session.clock() - self.started
        return self.decided if self.decided is not None else self.session.clock() - self.started

    def _get(self, target: Target, *, timeout: float) -> Reply:
        if isinstance(target, ProxyTarget):
            return self.session.api.proxy_get(
                target.namespace, target.proxy_id, target.path, timeout=timeout
            )
        return fetch_url(target.url, timeout=timeout)


def _settle(
    session: Any,
    workload: dict,
    completed: RolloutState,
    generation: int,
    settings: VerifySettings,
    tolerance: Tolerance,
    check: _Check,
    reporter: Any,
    completed_at: float,
    kind: Kind = DEPLOYMENT,
) -> Checked:
    """Watch the new pods for ``settings.settle`` seconds after the check; a restart, a
    readiness loss or a check that fails for its budget inside the window is a failure."""
    window = settings.settle
    end = session.clock() + window
    asking = check.track is not None and check.verification.status == "passed"
    probe_every = min(5.0, max(1.0, window / 10))
    next_probe = session.clock() + probe_every
    template = (workload.get("spec") or {}).get("template")
    watcher = RolloutWatcher(
        session.api, workload, budget=RetryBudget(end + settings.budget, session.clock),
        kind=kind, notice=reporter.notice,
    )  # fmt: skip
    watcher.start()
    said = float("-inf")
    try:
        while True:
            state = watcher.snapshot.judge(
                generation=generation, now=session.now(), tolerance=tolerance, template=template
            )
            clock = session.clock()
            if state.phase is Phase.SUPERSEDED:
                cut = _with_settle(check.verification, window, "cut-short", state.message)
                return Checked(state, Verdict.SUPERSEDED, cut)
            unsettled = judge_settle(
                completed.pods, state.pods, seconds_after=clock - completed_at, window=window
            )
            if unsettled is not None:
                failed = _failed(state, unsettled.kind, unsettled.sentence)
                failed = dataclasses.replace(failed, pods=mark_unsettled(state.pods, unsettled))
                report = _with_settle(check.verification, window, "failed", unsettled.sentence)
                return Checked(failed, Verdict.FAILED, report)
            if state.phase is Phase.FAILED:  # e.g. the Deployment was deleted
                failed = _with_settle(check.verification, window, "failed", state.failure_reason)
                return Checked(state, Verdict.FAILED, failed)
            if asking and clock >= next_probe:
                result = check.ask()
                if result is CheckResult.FAILED:
                    reason = check.verification.reason
                    report = _with_settle(check.verification, window, "failed", reason)
                    return Checked(_failed(state, VERIFICATION_FAILED, reason), Verdict.FAILED,
                                   report)  # fmt: skip
                passing = check.track is not None and check.track.passing
                next_probe = session.clock() + (probe_every if passing else next_pause(check.track))
            if clock >= end and (not asking or (check.track and check.track.passing)):
                done = _with_settle(check.verification, window, "passed")
                return Checked(completed, Verdict.COMPLETE, done)
            if clock - said >= SAY_EVERY:
                left = max(0.0, end - clock)
                reporter.verifying(describe_settling(left, state.ready_replicas, state.replicas))
                said = clock
            wake = min(TICK, max(0.0, end - clock) or TICK)
            if asking:
                wake = min(wake, max(0.0, next_probe - clock))
            watcher.wait(wake)
            cancellation.checkpoint()
    finally:
        watcher.stop()


def _with_settle(
    verification: Verification, window: float, status: str, problem: Optional[str] = ""
) -> Verification:
    return dataclasses.replace(
        verification, settle_seconds=window, settle=status, settle_problem=problem or ""
    )


def _failed(state: RolloutState, reason: str, sentence: str) -> RolloutState:
    """The rollout's state, failed for ``reason`` (the check's, or the window's)."""
    return dataclasses.replace(
        state, phase=Phase.FAILED, reason=reason, message=sentence, failure_reason=sentence
    )


def fetch_url(url: str, *, timeout: float) -> Reply:
    """GET a public URL from here (TLS verified against the usual CA bundle); any answer is
    returned as a ``Reply``, no answer says why."""
    import socket
    import ssl
    import urllib.error
    import urllib.request

    from kubectl_restart_backend import __version__

    context = ssl.create_default_context(cafile=_ca_bundle())
    request = urllib.request.Request(
        url, headers={"User-Agent": f"kubectl-restart-backend/{__version__}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return Reply(response.status, _read(response))
    except urllib.error.HTTPError as err:
        return Reply(err.code, _read(err))
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        slow = isinstance(reason, (socket.timeout, TimeoutError))
        return Reply(None, error=f"{redact_url(url)}: {reason}", timed_out=slow)


def _read(response: Any) -> str:
    try:
        return response.read(BODY_BYTES).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return ""


def _ca_bundle() -> Optional[str]:
    """certifi's CA bundle (the kubernetes client depends on it): the same trust on every
    machine, including the binary, whose Python may not find the system's store."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - a dependency of the kubernetes client
        return None
    return certifi.where()
