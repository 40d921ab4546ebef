"""One run of ``kubectl restart-backend``: find, patch, watch, explain.

This is orchestration only. Which Deployment, what to send, whether the rollout is done and
why it failed are all decided by pure functions (target, restart_patch, rollout, diagnosis,
urls); this module fetches what they need, in the order that keeps the API cost constant,
and turns their answers into an ``Outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

from kubectl_restart_backend.api import KubeApi, PatchOutcomeUnknown
from kubectl_restart_backend.changes import changed_by, describe_template_change, template_changes
from kubectl_restart_backend.errors import ApiError, ExitCode, PluginError, RefusedError
from kubectl_restart_backend.outcome import Outcome, Rollback, Sent, Verdict
from kubectl_restart_backend.report import UrlPrefetch, gather_report
from kubectl_restart_backend.restart_patch import (
    build_restart_patch,
    build_undo_patch,
    choose_previous_replicaset,
    format_rfc3339,
    restarted_at_of,
)
from kubectl_restart_backend.retry import RetryBudget
from kubectl_restart_backend.rollout import Phase, RolloutState
from kubectl_restart_backend.session import Session, Target, TargetQuery, find_target
from kubectl_restart_backend.trouble import (
    DEFAULT_TOLERANCE,
    Tolerance,
    waiting_words,
)
from kubectl_restart_backend.verification import check_complete_rollout
from kubectl_restart_backend.verify import VerifySettings
from kubectl_restart_backend.watcher import RolloutWatcher, selector_string

PROGRESS_EVERY = 5.0  # seconds between progress lines when nothing changes (the spec's poll)
TICK = 1.0  # how often time-based rules (graces) are re-evaluated
FINAL = (Phase.COMPLETE, Phase.FAILED, Phase.SUPERSEDED)


class Reporter(Protocol):
    def notice(self, message: str) -> None: ...
    def restarting(self, namespace: str, name: str, context: str) -> None: ...
    def watching(self, namespace: str, name: str, context: str) -> None: ...
    def triggered(self, namespace: str, name: str) -> None: ...
    def progress(self, state: RolloutState) -> None: ...
    def verifying(self, line: str) -> None: ...


@dataclass(frozen=True)
class WatchOptions:
    timeout: float = 120.0
    tolerance: Tolerance = DEFAULT_TOLERANCE
    logs: int = 20
    undo_on_failure: bool = False
    verify: VerifySettings = VerifySettings()  # the smoke check and settle window


@dataclass(frozen=True)
class RestartOptions:
    query: TargetQuery
    watch: WatchOptions = field(default_factory=WatchOptions)
    wait: bool = True
    dry_run: bool = False


def run_restart(session: Session, options: RestartOptions, reporter: Reporter) -> Outcome:
    """Restart the target and, unless ``--no-wait``, watch it to a verdict."""
    started = session.clock()
    target = find_target(session, options.query, reporter.notice)
    meta = target.deployment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    _refuse_paused(target.deployment, "a restart would not roll out")
    base = _outcome_base(session, target)
    restarted_at = format_rfc3339(session.now())
    patch = build_restart_patch(restarted_at)
    if options.dry_run:
        plan = plan_dry_run(session.api, target.deployment, patch)
        return Outcome(Verdict.DRY_RUN, restarted_at=restarted_at, plan=plan, **base)

    reporter.restarting(namespace, name, session.context)
    patched = send_restart(session.api, namespace, name, patch, restarted_at)
    reporter.triggered(namespace, name)
    base["restarted_at"] = restarted_at
    base["own_restart"] = True
    if not options.wait:
        return Outcome(Verdict.TRIGGERED, duration_seconds=session.clock() - started, **base)
    try:
        return watch_to_verdict(session, patched, options.watch, reporter, base, started)
    except PluginError as err:  # e.g. 403 on watch: say that the restart itself happened
        err.hint = (
            "the restart was triggered and goes on in the cluster "
            f"(kubectl rollout status deployment/{name} -n {namespace}); {err.hint}"
        ).rstrip("; ")
        raise


def run_status(
    session: Session, query: TargetQuery, watch: WatchOptions, reporter: Reporter
) -> Outcome:
    """Watch the target's current rollout to a verdict, without restarting anything."""
    started = session.clock()
    target = find_target(session, query, reporter.notice)
    _refuse_paused(target.deployment, "its rollout will not progress")
    base = _outcome_base(session, target)
    reporter.watching(base["namespace"], base["app_name"], session.context)
    base["restarted_at"] = restarted_at_of(target.deployment)
    return watch_to_verdict(session, target.deployment, watch, reporter, base, started)


def watch_to_verdict(
    session: Session,
    deployment: dict,
    watch: WatchOptions,
    reporter: Reporter,
    base: dict,
    started: float,
) -> Outcome:
    """Follow ``deployment``'s current generation to complete, failed, superseded or timeout;
    explain it; roll it back when asked and it is a failure of ours.

    Ctrl-C while the verdict is being followed leaves it open (INTERRUPTED: the restart goes
    on). Ctrl-C after the verdict is known (while the failure is explained or rolled back)
    keeps the verdict and says what was cut short and whether the rollback was sent.
    """
    if (deployment.get("spec") or {}).get("replicas", 1) == 0:
        return Outcome(Verdict.NO_PODS, duration_seconds=session.clock() - started, **base)
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    deadline = session.clock() + watch.timeout
    urls = UrlPrefetch(session, deployment)
    try:
        state, timed_out = follow_rollout(
            session, deployment, generation, deadline, watch, reporter
        )
    except KeyboardInterrupt:
        return Outcome(Verdict.INTERRUPTED, duration_seconds=session.clock() - started, **base)
    verdict = Verdict.TIMEOUT if timed_out else _verdict_of(state)
    interrupted = ""
    verification = None
    if verdict is Verdict.COMPLETE and watch.verify.enabled:
        checked = check_complete_rollout(
            session, deployment, state, generation=generation, settings=watch.verify,
            tolerance=watch.tolerance, deadline=deadline, reporter=reporter, urls=urls,
        )  # fmt: skip
        state, verdict, verification = checked.state, checked.verdict, checked.verification
        interrupted = "verifying" if checked.interrupted else ""
    report: dict = {}
    rollback = None
    try:
        report = gather_report(session, state, verdict, deployment, watch, urls)
    except KeyboardInterrupt:
        interrupted = "explaining the failure"
    own = bool(base.get("own_restart"))
    if verdict is Verdict.FAILED and watch.undo_on_failure and own:
        if interrupted:
            rollback = Rollback(None, None, sent=Sent.NO)
        else:
            progress = _UndoProgress()
            try:
                rollback = undo_restart(session, deployment, state, watch, reporter, progress)
            except KeyboardInterrupt:
                interrupted = "rolling back"
                rollback = progress.interrupted()
    return Outcome(
        verdict,
        state=state,
        duration_seconds=session.clock() - started,
        rollback=rollback,
        interrupted=interrupted,
        verification=verification,
        **report,
        **base,
    )


def _refuse_paused(deployment: dict, why: str) -> None:
    meta = deployment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if (deployment.get("spec") or {}).get("paused"):
        raise RefusedError(
            f"deployment {namespace}/{name} is paused: {why}",
            f"resume it first: kubectl rollout resume deployment/{name} -n {namespace}",
        )


def _outcome_base(session: Session, target: Target) -> dict:
    meta = target.deployment["metadata"]
    return {
        "app_name": meta["name"],
        "namespace": meta["namespace"],
        "context": session.context,
        "repo": target.repo,
        "branch": target.branch,
        "notes": tuple(target.notes),
    }


def follow_rollout(
    session: Session,
    patched: dict,
    generation: int,
    deadline: float,
    watch: WatchOptions,
    reporter: Reporter,
) -> tuple[RolloutState, bool]:
    """Watch until the pure rule says complete, failed or superseded, or the deadline passes.

    The watcher folds every pod update into the snapshot's trouble memory (failed pulls);
    judging the snapshot folds in each verdict's time-based troubles (since when they last).
    """
    budget = RetryBudget(deadline, session.clock)
    watcher = RolloutWatcher(session.api, patched, budget=budget, notice=reporter.notice)
    watcher.start()
    last_shown: Optional[tuple] = None
    last_time = 0.0
    told: set[tuple[str, str]] = set()  # (pod, trouble) already said to be waited out
    try:
        while True:
            state = watcher.snapshot.judge(
                generation=generation,
                now=session.now(),
                tolerance=watch.tolerance,
                template=(patched.get("spec") or {}).get("template"),
            )
            if state.phase in FINAL:
                return state, False
            _tell_tolerated(state, watch.tolerance, told, reporter)
            clock = session.clock()
            if clock >= deadline:
                return state, True
            shown = (state.ready_replicas, state.replicas)
            if shown != last_shown or clock - last_time >= PROGRESS_EVERY:
                reporter.progress(state)
                last_shown, last_time = shown, clock
            watcher.wait(min(TICK, deadline - clock))
    finally:
        watcher.stop()


def _tell_tolerated(
    state: RolloutState, tolerance: Tolerance, told: set[tuple[str, str]], reporter: Reporter
) -> None:
    """Say once per pod and trouble that it is being waited out, and for how long: a user
    watching "0/3 ready" for 15 s should know the plugin saw the crash and why it waits."""
    for pod in state.pods:
        if not pod.is_new or pod.failing or not pod.trouble or (pod.name, pod.trouble) in told:
            continue
        words = waiting_words(pod.trouble, tolerance)
        if not words:
            continue
        told.add((pod.name, pod.trouble))
        what = pod.status + (f" ({pod.last_termination})" if pod.last_termination else "")
        reporter.notice(f"pod {pod.name} is in {what}; {words}")


class _UndoProgress:
    """How far the rollback got, for the words after a Ctrl-C in the middle of it."""

    def __init__(self) -> None:
        self.revision: Optional[int] = None
        self.sent = Sent.NO

    def interrupted(self) -> Rollback:
        return Rollback(self.revision, None, sent=self.sent)


def undo_restart(
    session: Session,
    patched: dict,
    failed: RolloutState,
    watch: WatchOptions,
    reporter: Reporter,
    progress: Optional[_UndoProgress] = None,
) -> Rollback:
    """Put the previous ReplicaSet's pod template back (one JSON patch), then watch it return.

    Only ever our own failed restart is undone: the patch ``test``s the whole pod template
    against the one our restart produced, so it applies only while nobody else has changed
    it; a change seen before sending is refused without a write, and one that races us is
    refused by the server. Either way the reason is said in words.
    """
    progress = progress or _UndoProgress()
    meta = patched["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    ours = (patched.get("spec") or {}).get("template") or {}
    replicasets = session.api.list(
        "replicasets", namespace, label_selector=selector_string(patched)
    ).items
    previous = choose_previous_replicaset(replicasets, meta.get("uid"), failed.new_replicaset)
    if previous is None:
        return Rollback(None, None, "no previous ReplicaSet to roll back to", sent=Sent.NO)
    revision, ops = build_undo_patch(previous, ours)
    progress.revision = revision
    live = session.api.get_deployment(namespace, name)
    refusal = _not_ours_any_more(live, ours)
    if refusal:
        return Rollback(revision, None, refusal, refused=True, sent=Sent.NO)
    reporter.notice(f"rolling back deployment {namespace}/{name} to revision {revision}")
    progress.sent = Sent.UNKNOWN
    try:
        undone = session.api.patch_deployment(namespace, name, ops)
    except ApiError as err:
        progress.sent = Sent.NO
        if err.status == 422 and "test" in err.message.lower():
            why = "the pod template changed after our restart (someone else's change)"
            return Rollback(revision, None, _refused(why), refused=True, sent=Sent.NO)
        return Rollback(revision, None, f"the API server refused it: {err.message}", sent=Sent.NO)
    except PatchOutcomeUnknown as err:
        return Rollback(revision, None, f"no answer from the API server: {err}", sent=Sent.UNKNOWN)
    progress.sent = Sent.YES
    generation = int((undone.get("metadata") or {}).get("generation") or 0)
    deadline = session.clock() + watch.timeout
    state, timed_out = follow_rollout(session, undone, generation, deadline, watch, reporter)
    if timed_out or state.phase is not Phase.COMPLETE:
        detail = "timed out" if timed_out else (state.failure_reason or state.message)
        return Rollback(
            revision, state, f"rollback to revision {revision} did not finish: {detail}"
        )
    return Rollback(revision, state)


def _not_ours_any_more(live: dict, ours: dict) -> str:
    """Why the live Deployment is no longer ours to roll back ("" when it still is)."""
    theirs = (live.get("spec") or {}).get("template") or {}
    if (live.get("spec") or {}).get("paused"):
        who = changed_by(live, [("spec", "paused")])
        return _refused("the deployment was paused" + (f" (manager: {who})" if who else ""))
    if theirs == ours:
        return ""
    what = describe_template_change(ours, theirs)
    who = changed_by(live, [path for _text, path in template_changes(ours, theirs)])
    by = f" (manager: {who})" if who else ""
    return _refused(f"the pod template changed after our restart: {what}{by}")


def _refused(why: str) -> str:
    return f"{why}; nothing was changed: the newest change is not ours to undo"


def send_restart(api: KubeApi, namespace: str, name: str, patch: dict, restarted_at: str) -> dict:
    """PATCH once; when the outcome is unknown, read back before ever sending again.

    Sending the same annotation value twice would not start a second rollout, but we still
    read first: the answer tells us whether our restart is the one in effect. Ctrl-C while
    the PATCH is on its way leaves the outcome unknown, so we say so rather than "nothing
    was changed".
    """
    for _attempt in range(3):
        try:
            return api.patch_deployment(namespace, name, patch)
        except PatchOutcomeUnknown:
            current = api.get_deployment(namespace, name)
            if restarted_at_of(current) == restarted_at:
                return current
        except KeyboardInterrupt:
            interrupted = PluginError(
                f"interrupted while restarting deployment {namespace}/{name}: the restart may "
                "have been applied",
                f"check with: kubectl rollout status deployment/{name} -n {namespace}",
            )
            interrupted.exit_code = ExitCode.INTERRUPTED
            raise interrupted from None
    raise ApiError(
        f"could not restart deployment {namespace}/{name}: the API server did not confirm the "
        "change",
        "check the cluster's health (kubectl get --raw /readyz), then run the command again",
    )


def plan_dry_run(api: KubeApi, deployment: dict, patch: dict) -> dict:
    """What a real run would send, and whether the server would let us (no writes)."""
    meta = deployment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    checks = {}
    for verb, resource, group in (
        ("patch", "deployments", "apps"),
        ("watch", "deployments", "apps"),
        ("watch", "replicasets", "apps"),
        ("watch", "pods", ""),
        ("list", "events", ""),
        ("get", "pods/log", ""),
        ("list", "services", ""),  # URLs, and the Service the smoke check goes through
        ("get", "services/proxy", ""),  # the smoke check (optional: skipped without it)
    ):
        key = f"{verb} {resource}"
        try:
            checks[key] = api.can_i(verb, resource, group=group, namespace=namespace)
        except ApiError as err:
            checks[key] = f"unknown ({err.message})"
    return {
        "patch": patch,
        "contentType": "application/strategic-merge-patch+json",
        "path": f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        "permissions": checks,
    }


def _verdict_of(state: RolloutState) -> Verdict:
    return {
        Phase.COMPLETE: Verdict.COMPLETE,
        Phase.SUPERSEDED: Verdict.SUPERSEDED,
    }.get(state.phase, Verdict.FAILED)
