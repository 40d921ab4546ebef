"""One run of ``kubectl restart-backend``: find, patch, watch, explain; for one workload or
several.

This is orchestration only. Which workloads, in what order, what to send, whether a rollout
is done, which pod to delete next and why a rollout failed are all decided by pure functions
(target, restart_patch, rollout, kind_rules, pod_deletion, diagnosis, urls); this module
fetches what they need, in the order that keeps the API cost constant per workload, and
turns their answers into outcomes.

Several workloads are restarted in waves (one wave unless ``order:`` says otherwise): the
workloads of a wave are patched one after the other, then watched together, each to its
own verdict; the next wave starts only when every workload of this one succeeded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Protocol, Sequence

from kubectl_restart_backend.api import KubeApi, PatchOutcomeUnknown
from kubectl_restart_backend.cancellation import checkpoint, wake_on_cancel
from kubectl_restart_backend.changes import changed_by, describe_template_change, template_changes
from kubectl_restart_backend.errors import ApiError, ExitCode, PluginError, RefusedError, UsageError
from kubectl_restart_backend.kind_rules import group_pods
from kubectl_restart_backend.kinds import (
    DEPLOYMENT,
    STATEFULSET,
    Kind,
    replaced_on_delete,
    update_strategy,
    workload_named,
)
from kubectl_restart_backend.lock import LockOptions, RestartLock, hold_locks
from kubectl_restart_backend.outcome import Outcome, Rollback, RunOutcome, Sent, Verdict
from kubectl_restart_backend.pod_deletion import next_pod_to_delete
from kubectl_restart_backend.report import UrlPrefetch, gather_report
from kubectl_restart_backend.restart_patch import (
    build_restart_patch,
    build_undo_patch,
    choose_previous_replicaset,
    choose_previous_revision,
    format_rfc3339,
    restarted_at_of,
)
from kubectl_restart_backend.retry import RetryBudget
from kubectl_restart_backend.rollout import Phase, RolloutState
from kubectl_restart_backend.session import (
    Session,
    Target,
    TargetQuery,
    find_targets,
    get_named_workload,
)
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
SUCCEEDED = (Verdict.COMPLETE, Verdict.NO_PODS, Verdict.TRIGGERED)
_ENDED = {  # what stopped an ordered run: "its wave comes after statefulset/db failed"
    Verdict.FAILED: "failed",
    Verdict.TIMEOUT: "timed out",
    Verdict.SUPERSEDED: "was superseded",
    Verdict.INTERRUPTED: "was interrupted",
}


class Reporter(Protocol):
    def notice(self, message: str) -> None: ...
    def verifying(self, line: str) -> None: ...
    def restarting(self, targets: Sequence[tuple[Kind, str, str]], context: str) -> None: ...
    def watching(self, targets: Sequence[tuple[Kind, str, str]], context: str) -> None: ...
    def triggered(self, restarted_at: str, patch: dict) -> None: ...
    def judged(
        self, label: str, state: RolloutState, workload: Optional[dict], kind: Kind
    ) -> None: ...
    def progress(self, state: RolloutState) -> None: ...
    def progress_many(self, rows: Sequence[tuple[str, RolloutState]]) -> None: ...
    def concluded(self, outcome: Outcome) -> None: ...


@dataclass(frozen=True)
class WatchOptions:
    timeout: float = 120.0
    tolerance: Tolerance = DEFAULT_TOLERANCE
    logs: int = 20
    undo_on_failure: bool = False
    delete_pods: bool = False  # replace pods the controller will not (OnDelete, rollback)
    verify: VerifySettings = VerifySettings()  # the smoke check and settle window


@dataclass(frozen=True)
class RestartOptions:
    query: TargetQuery
    watch: WatchOptions = field(default_factory=WatchOptions)
    wait: bool = True
    dry_run: bool = False
    lock: LockOptions = field(default_factory=LockOptions)


def run_restart(session: Session, options: RestartOptions, reporter: Reporter) -> RunOutcome:
    """Restart the targets, wave by wave, and (unless ``--no-wait``) watch each wave to its
    verdicts; a wave that does not fully succeed leaves the later ones untouched. Every
    workload's lock (one restart at a time) is taken before the first patch and held to
    the end of its wave."""
    started = session.clock()
    selection = find_targets(session, options.query, reporter.notice)
    targets = selection.targets
    for target in targets:
        _refuse_paused(target, "a restart would not roll out")
    if options.dry_run:
        restarted_at = format_rfc3339(session.now())
        patch = build_restart_patch(restarted_at)
        plans = [
            Outcome(
                Verdict.DRY_RUN,
                restarted_at=restarted_at,
                plan=plan_dry_run(session.api, t, patch, options.watch),
                **_outcome_base(session, t),
            )
            for t in targets
        ]
        return RunOutcome(tuple(plans), selection.notes)
    if len(selection.waves) > 1 and not options.wait:
        raise UsageError(
            "--no-wait cannot keep the order: of .restart-backend.yaml (each wave starts when "
            "the one before succeeded, which only watching tells)",
            "drop --no-wait, or choose the workloads with -w KIND/NAME",
        )
    said = _say_replaced_on_delete(targets, options.watch, reporter)
    targets = tuple(replace(t, notes=t.notes + said.get(i, ())) for i, t in enumerate(targets))
    with hold_locks(session, [_who(t) for t in targets], options.lock, reporter.notice) as locks:
        # Waiting for other runs' restarts counts neither against our --timeout (each wave's
        # starts after it) nor in our duration.
        waited = sum(lock.waited for lock in locks.values())
        targets = tuple(_still_restartable(session, t, locks[_who(t)]) for t in targets)
        outcomes = _restart_waves(session, selection.waves, targets, options, reporter, locks)
    ordered = tuple(outcomes[i] for wave in selection.waves for i in wave)
    return RunOutcome(_timed(ordered, session.clock() - started - waited), selection.notes)


def _restart_waves(
    session: Session,
    waves: Sequence[Sequence[int]],
    targets: Sequence[Target],
    options: RestartOptions,
    reporter: Reporter,
    locks: dict[tuple[Kind, str, str], RestartLock],
) -> dict[int, Outcome]:
    """Each wave in turn, the next only when every workload of this one succeeded; a
    wave's locks are given back when it ends. Outcomes by index into ``targets``."""
    outcomes: dict[int, Outcome] = {}
    several = len(targets) > 1

    def tell(outcome: Outcome) -> None:
        """A run of several: each workload's outcome is told as soon as it is final (its
        wave's locks are still held; their report is known); one workload's is the run's."""
        if several:
            reporter.concluded(
                locks[(outcome.kind, outcome.namespace, outcome.app_name)].stamp(outcome)
            )

    blocked = ""
    for wave in waves:
        if blocked:
            for index in wave:
                outcomes[index] = _not_started(session, targets[index], blocked)
                if several:  # final as it is: nothing was sent, no lock to report
                    reporter.concluded(outcomes[index])
            continue
        wave_targets = [targets[i] for i in wave]
        session.api.extend_deadline(session.clock() + options.watch.timeout)
        try:
            done = _restart_wave(session, wave_targets, options, reporter, tell, labelled=several)
        finally:
            for target in wave_targets:
                locks[_who(target)].release()
        for index, outcome in zip(wave, done):
            outcomes[index] = locks[_who(targets[index])].stamp(outcome)
        failed = [o for o in done if o.verdict not in SUCCEEDED]
        if failed:
            blocked = f"{failed[0].label} {_ENDED[failed[0].verdict]}"
    return outcomes


def _still_restartable(session: Session, target: Target, lock: RestartLock) -> Target:
    """After waiting for another run's restart: the workload as it is now (it may have been
    paused or deleted meanwhile)."""
    if not lock.waited_for:
        return target
    meta = target.workload["metadata"]
    ref = workload_named(target.kind, meta["name"])
    fresh = replace(target, workload=get_named_workload(session, meta["namespace"], ref))
    _refuse_paused(fresh, "a restart would not roll out")
    return fresh


def _restart_wave(
    session: Session,
    targets: list[Target],
    options: RestartOptions,
    reporter: Reporter,
    tell: Callable[[Outcome], None],
    *,
    labelled: bool,
) -> list[Outcome]:
    """Patch every target of the wave (stamped now: after any wait for the locks), then
    watch them together (unless --no-wait); ``labelled``: progress names each workload;
    ``tell``: each watched workload's outcome, as soon as it is final."""
    restarted_at = format_rfc3339(session.now())
    patch = build_restart_patch(restarted_at)
    reporter.restarting([_who(t) for t in targets], session.context)
    jobs = []
    for target in targets:
        meta = target.workload["metadata"]
        patched = send_restart(
            session.api, target.kind, meta["namespace"], meta["name"], patch, restarted_at
        )
        base = _outcome_base(session, target)
        base.update(restarted_at=restarted_at, own_restart=True)
        jobs.append(_Job(target, patched, base))
    reporter.triggered(restarted_at, patch)
    if not options.wait:
        return [Outcome(Verdict.TRIGGERED, **job.base) for job in jobs]
    try:
        return watch_to_verdicts(
            session, jobs, options.watch, reporter, labelled=labelled, tell=tell
        )
    except PluginError as err:  # e.g. 403 on watch: say that the restart itself happened
        follow = "; ".join(
            f"kubectl rollout status {job.target.kind.ref(job.name)} -n {job.namespace}"
            for job in jobs
        )
        err.hint = (
            f"the restart was triggered and goes on in the cluster ({follow}); {err.hint}"
        ).rstrip("; ")
        raise


def run_status(
    session: Session, query: TargetQuery, watch: WatchOptions, reporter: Reporter
) -> RunOutcome:
    """Watch the targets' current rollouts to verdicts, without restarting anything."""
    selection = find_targets(session, query, reporter.notice)
    for target in selection.targets:
        _refuse_paused(target, "its rollout will not progress")
    reporter.watching([_who(t) for t in selection.targets], session.context)
    jobs = []
    for target in selection.targets:
        base = _outcome_base(session, target)
        base["restarted_at"] = restarted_at_of(target.workload)
        jobs.append(_Job(target, target.workload, base))
    labelled = len(jobs) > 1
    tell = reporter.concluded if labelled else None  # one workload's outcome is the run's
    outcomes = watch_to_verdicts(session, jobs, watch, reporter, labelled=labelled, tell=tell)
    return RunOutcome(tuple(outcomes), selection.notes)


@dataclass
class _Job:
    """One workload being watched: what our patch returned, and what is known so far."""

    target: Target
    patched: dict
    base: dict
    state: Optional[RolloutState] = None
    verdict: Optional[Verdict] = None
    watcher: Optional[RolloutWatcher] = None
    urls: Optional[UrlPrefetch] = None
    told: set = field(default_factory=set)  # (pod, trouble) already said to be waited out
    deleted: list = field(default_factory=list)  # pods we deleted (--delete-pods)
    deleted_uids: set = field(default_factory=set)  # their uids (until the watch shows it)
    replace_unready: bool = False  # a rolled-back StatefulSet: delete its broken old pods
    started: float = 0.0
    finished: float = 0.0
    deadline: float = 0.0  # the wave's --timeout, which the smoke check stays within
    outcome: Optional[Outcome] = None  # once concluded (while the others are still watched)

    @property
    def kind(self) -> Kind:
        return self.target.kind

    @property
    def name(self) -> str:
        return self.patched["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.patched["metadata"]["namespace"]

    @property
    def generation(self) -> int:
        return int((self.patched.get("metadata") or {}).get("generation") or 0)

    @property
    def on_delete(self) -> bool:
        return replaced_on_delete(self.patched, self.kind)


def watch_to_verdicts(
    session: Session,
    jobs: list[_Job],
    watch: WatchOptions,
    reporter: Reporter,
    *,
    labelled: bool = False,
    tell: Optional[Callable[[Outcome], None]] = None,
) -> list[Outcome]:
    """Follow each job's rollout to complete, failed, superseded or timeout (one deadline for
    the wave); each job is concluded (``conclude``: smoke check, report, rollback of a
    failure of ours) as soon as its verdict is known, while the others are still watched,
    and its final outcome handed to ``tell`` then.

    Ctrl-C while verdicts are awaited leaves the open ones INTERRUPTED (the restarts go on);
    ones already known keep their verdict (and, once concluded, their report). Ctrl-C while a
    failure is explained or rolled back keeps the verdict and says what was cut short and
    whether the rollback was sent; the jobs still watched are then INTERRUPTED.
    """
    clock = session.clock

    def concluded(job: _Job) -> bool:
        job.outcome = conclude(session, job, watch, reporter)
        if tell is not None:
            tell(job.outcome)
        return not job.outcome.interrupted

    for job in jobs:
        job.started = clock()
        if job.on_delete and not watch.delete_pods and job.base.get("own_restart"):
            job.verdict = Verdict.TRIGGERED
        elif _spec_replicas(job.patched) == 0:
            job.verdict = Verdict.NO_PODS
        job.finished = clock()
    try:
        if all(concluded(job) for job in jobs if job.verdict is not None):
            pending = [j for j in jobs if j.verdict is None]
            follow_rollouts(pending, watch, session, reporter, labelled=labelled, decided=concluded)
    except KeyboardInterrupt:
        pass  # the jobs still watched are interrupted, the others keep what they have
    for job in jobs:
        if job.verdict is None:  # still watched when Ctrl-C came, or came while concluding
            job.verdict, job.finished = Verdict.INTERRUPTED, clock()
    return [job.outcome or _bare_outcome(job) for job in jobs]


def follow_rollouts(
    jobs: list[_Job],
    watch: WatchOptions,
    session: Session,
    reporter: Reporter,
    *,
    labelled: bool = False,
    decided: Callable[[_Job], bool] = lambda job: True,
) -> None:
    """Watch every job until the pure rule says complete, failed or superseded, or the
    deadline passes (TIMEOUT); sets each job's verdict and last state, and calls ``decided``
    with the job at once (the others' watches go on meanwhile); ``decided`` returning False
    (Ctrl-C while it concluded the job) ends the watch, the open jobs without a verdict.

    One watcher per job (its workload, pods and, for a Deployment, ReplicaSets), all waking
    one loop. The watchers fold every pod update into their trouble memory (failed pulls);
    here each verdict's time-based troubles are folded in too (since when they last).
    """
    if not jobs:
        return
    deadline = session.clock() + watch.timeout
    budget = RetryBudget(deadline, session.clock)
    wake = threading.Event()
    wake_on_cancel(wake)  # a cluster's thread asked to stop: to the checkpoint below at once
    for job in jobs:
        job.deadline = deadline
    notice = _once(reporter.notice)  # every watcher of pods says the same of a broken proxy
    for job in jobs:
        job.watcher = RolloutWatcher(
            session.api,
            job.patched,
            kind=job.kind,
            budget=budget,
            notice=notice,
            wake=wake,
        )
        if "app_name" in job.base:  # a run's workload (a rollback needs no URLs)
            job.urls = UrlPrefetch(session, job.patched)
        job.watcher.start()
    last_shown: Optional[tuple] = None
    last_time = 0.0
    try:
        while True:
            judged = [job for job in jobs if job.verdict is None]
            for job in judged:
                _judge(job, watch, session, reporter)
            pending = [job for job in jobs if job.verdict is None]
            clock = session.clock()
            if pending and clock >= deadline:
                for job in pending:
                    job.verdict, job.finished = Verdict.TIMEOUT, clock
                pending = []
            shown = tuple((j.state.ready_replicas, j.state.replicas) for j in jobs if j.state)
            if pending and (shown != last_shown or clock - last_time >= PROGRESS_EVERY):
                _report_progress(jobs, reporter, labelled or len(jobs) > 1)
                last_shown, last_time = shown, clock
            for job in judged:  # the progress said first: concluding may take a while
                if job.verdict is not None and not decided(job):
                    return
            if not pending:
                return
            wake.wait(max(0.0, min(TICK, deadline - session.clock())))
            wake.clear()
            checkpoint()
    finally:
        for job in jobs:
            if job.watcher is not None:
                job.watcher.stop()


def _once(say: Callable[[str], None]) -> Callable[[str], None]:
    """``say``, but each message only once."""
    said: set[str] = set()

    def once(message: str) -> None:
        if message not in said:
            said.add(message)
            say(message)

    return once


def _judge(job: _Job, watch: WatchOptions, session: Session, reporter: Reporter) -> None:
    """Apply what the job's watches brought, judge it, and act on the judgement: a final
    phase ends it; with --delete-pods, the next pod the controller will not replace goes."""
    assert job.watcher is not None
    job.watcher.drain()
    snap = job.watcher.snapshot
    ours = (job.patched.get("spec") or {}).get("template") if job.base.get("own_restart") else None
    state = snap.judge(
        generation=job.generation, now=session.now(), tolerance=watch.tolerance, template=ours
    )
    job.state = state
    reporter.judged(job.kind.ref(job.name), state, snap.workload, job.kind)
    if state.phase in FINAL:
        job.verdict = _verdict_of(state)
        job.finished = session.clock()
        job.watcher.stop()
        return
    _tell_tolerated(state, watch.tolerance, job.told, reporter)
    replacing = job.on_delete or job.replace_unready
    if watch.delete_pods and replacing and state.phase is Phase.PROGRESSING and snap.workload:
        _delete_next_pod(session, job, snap.workload, list(snap.pods.values()), reporter)


def _delete_next_pod(
    session: Session, job: _Job, workload: dict, pods: list[dict], reporter: Reporter
) -> None:
    """--delete-pods: delete the next pod the controller will not replace (OnDelete; or the
    broken pods of a rolled-back StatefulSet), one at a time (``pod_deletion.py``)."""
    status = workload.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= job.generation
    grouping = group_pods(job.kind, workload, [], pods, observed=observed)
    victim = next_pod_to_delete(
        job.kind,
        workload,
        grouping,
        pods,
        only_unready=job.replace_unready,
        deleted=frozenset(job.deleted_uids),
    )
    if victim is None:
        return
    where = f" on node {victim.node}" if victim.node else ""
    reporter.notice(
        f"deleting pod {victim.name}{where} so that the {job.kind.word} controller replaces it "
        "with the new template (--delete-pods)"
    )
    try:
        session.api.delete_pod(job.namespace, victim.name, victim.uid)
    except ApiError as err:
        if err.status in (404, 409) or err.retryable:
            return  # gone or replaced meanwhile, or a passing error: the next tick decides
        raise
    job.deleted.append(victim.name)
    job.deleted_uids.add(victim.uid)


def _report_progress(jobs: list[_Job], reporter: Reporter, labelled: bool) -> None:
    """The spec's progress line; one per workload, each named, when the run has several."""
    if not labelled:
        if jobs[0].state is not None:
            reporter.progress(jobs[0].state)
        return
    rows = [(job.target.kind.ref(job.name), job.state) for job in jobs if job.state is not None]
    reporter.progress_many(rows)


def conclude(session: Session, job: _Job, watch: WatchOptions, reporter: Reporter) -> Outcome:
    """One workload's outcome once its verdict is known: after COMPLETE, the smoke check and
    settle window (``verification.py``, which may turn it into FAILED or SUPERSEDED); the
    report that explains the verdict; the rollback of a failure of ours when asked."""
    verdict = job.verdict or Verdict.INTERRUPTED
    if verdict in (Verdict.TRIGGERED, Verdict.NO_PODS, Verdict.INTERRUPTED) or job.state is None:
        return _bare_outcome(job)
    state = job.state
    report: dict = {}
    rollback = None
    interrupted = ""
    verification = None
    if verdict is Verdict.COMPLETE and watch.verify.enabled:
        checked = check_complete_rollout(
            session, job.patched, state, generation=job.generation, settings=watch.verify,
            tolerance=watch.tolerance, deadline=job.deadline, reporter=reporter, urls=job.urls,
            kind=job.kind,
        )  # fmt: skip
        state, verdict, verification = checked.state, checked.verdict, checked.verification
        interrupted = "verifying" if checked.interrupted else ""
        job.finished = session.clock()
    try:
        report = gather_report(session, state, verdict, job.patched, watch, job.urls, job.kind)
    except KeyboardInterrupt:
        interrupted = "explaining the failure"
    own = bool(job.base.get("own_restart"))
    if verdict is Verdict.FAILED and watch.undo_on_failure and own:
        if interrupted:
            rollback = Rollback(None, None, sent=Sent.NO)
        else:
            progress = _UndoProgress()
            try:
                rollback = undo_restart(session, job, state, watch, reporter, progress)
            except KeyboardInterrupt:
                interrupted = "rolling back"
                rollback = progress.interrupted()
    return Outcome(
        verdict,
        state=state,
        duration_seconds=job.finished - job.started,
        rollback=rollback,
        interrupted=interrupted,
        verification=verification,
        deleted_pods=tuple(job.deleted),
        **report,
        **job.base,
    )


def _bare_outcome(job: _Job) -> Outcome:
    """An outcome without a report: --no-wait, OnDelete without --delete-pods, no pods,
    an interruption."""
    verdict = job.verdict or Verdict.INTERRUPTED
    on_delete = verdict is Verdict.TRIGGERED and job.on_delete
    return Outcome(
        verdict,
        state=job.state if verdict is not Verdict.TRIGGERED else None,
        duration_seconds=max(job.finished - job.started, 0.0),
        on_delete=on_delete,
        deleted_pods=tuple(job.deleted),
        **job.base,
    )


def _not_started(session: Session, target: Target, blocked: str) -> Outcome:
    """A later wave's workload after one that did not succeed: nothing is sent to it."""
    base = _outcome_base(session, target)
    base["notes"] = (*base["notes"], f"not restarted: {blocked} first")
    return Outcome(Verdict.NOT_STARTED, not_started=blocked, **base)


def _timed(outcomes: tuple[Outcome, ...], total: float) -> tuple[Outcome, ...]:
    """A single workload's duration is the whole run's, as it always was."""
    if len(outcomes) != 1:
        return outcomes
    return (replace(outcomes[0], duration_seconds=total),)


def _say_replaced_on_delete(
    targets: Sequence[Target], watch: WatchOptions, reporter: Reporter
) -> dict[int, tuple[str, ...]]:
    """Before acting: an OnDelete workload's pods are not replaced by the patch, and what we
    will (--delete-pods) or will not do about it; the notes said, by target."""
    said: dict[int, tuple[str, ...]] = {}
    for index, target in enumerate(targets):
        if not replaced_on_delete(target.workload, target.kind):
            continue
        meta = target.workload["metadata"]
        who = f"{target.kind.word} {meta['namespace']}/{meta['name']}"
        if watch.delete_pods:
            note = (
                f"{who} uses the OnDelete update strategy: the restart patch replaces no pod "
                "by itself; its pods will be deleted one at a time, each after the previous "
                "replacement is ready (--delete-pods)"
            )
        else:
            note = (
                f"{who} uses the OnDelete update strategy: the restart patch replaces no pod; "
                "pods take the new template only when deleted (--delete-pods deletes them one "
                "at a time)"
            )
        reporter.notice(note)
        said[index] = (note,)
    return said


def _refuse_paused(target: Target, why: str) -> None:
    meta = target.workload["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if target.kind.pausable and (target.workload.get("spec") or {}).get("paused"):
        raise RefusedError(
            f"{target.kind.word} {namespace}/{name} is paused: {why}",
            f"resume it first: kubectl rollout resume {target.kind.ref(name)} -n {namespace}",
        )


def _who(target: Target) -> tuple[Kind, str, str]:
    meta = target.workload["metadata"]
    return target.kind, meta["namespace"], meta["name"]


def _outcome_base(session: Session, target: Target) -> dict:
    meta = target.workload["metadata"]
    return {
        "app_name": meta["name"],
        "namespace": meta["namespace"],
        "context": session.context,
        "repo": target.repo,
        "branch": target.branch,
        "notes": tuple(target.notes),
        "kind": target.kind,
        "update_strategy": update_strategy(target.workload, target.kind),
    }


def _spec_replicas(workload: dict) -> int:
    return int((workload.get("spec") or {}).get("replicas", 1))


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
    job: _Job,
    failed: RolloutState,
    watch: WatchOptions,
    reporter: Reporter,
    progress: Optional[_UndoProgress] = None,
) -> Rollback:
    """Put the previous pod template back (one JSON patch), then watch it return.

    The previous template is the previous ReplicaSet's (Deployments) or the previous
    ControllerRevision's (StatefulSets, DaemonSets), as ``kubectl rollout undo`` picks it.
    Only ever our own failed restart is undone: the patch ``test``s the whole pod template
    against the one our restart produced, so it applies only while nobody else has changed
    it; a change seen before sending is refused without a write, and one that races us is
    refused by the server. Either way the reason is said in words.
    """
    progress = progress or _UndoProgress()
    kind, namespace, name = job.kind, job.namespace, job.name
    patched = job.patched
    ours = (patched.get("spec") or {}).get("template") or {}
    selector = selector_string(patched)
    uid = patched["metadata"].get("uid")
    if kind is DEPLOYMENT:
        replicasets = session.api.list("replicasets", namespace, label_selector=selector).items
        previous = choose_previous_replicaset(replicasets, uid, failed.new_replicaset)
    else:
        revisions = session.api.list("controllerrevisions", namespace, label_selector=selector)
        previous = choose_previous_revision(revisions.items, uid, failed.new_replicaset)
    if previous is None:
        what = "ReplicaSet" if kind is DEPLOYMENT else "revision"
        return Rollback(None, None, f"no previous {what} to roll back to", sent=Sent.NO)
    revision, ops = build_undo_patch(previous, ours)
    progress.revision = revision
    live = session.api.get_workload(kind.resource, namespace, name)
    refusal = _not_ours_any_more(live, ours, kind)
    if refusal:
        return Rollback(revision, None, refusal, refused=True, sent=Sent.NO)
    reporter.notice(f"rolling back {kind.word} {namespace}/{name} to revision {revision}")
    progress.sent = Sent.UNKNOWN
    try:
        undone = session.api.patch_workload(kind.resource, namespace, name, ops)
    except ApiError as err:
        progress.sent = Sent.NO
        refusal = _guard_refusal(session, job, ours) if err.status == 422 else ""
        if refusal:
            return Rollback(revision, None, refusal, refused=True, sent=Sent.NO)
        return Rollback(revision, None, f"the API server refused it: {err.message}", sent=Sent.NO)
    except PatchOutcomeUnknown as err:
        return Rollback(revision, None, f"no answer from the API server: {err}", sent=Sent.UNKNOWN)
    progress.sent = Sent.YES
    back = _Job(job.target, undone, {"own_restart": True})
    back.replace_unready = kind is STATEFULSET
    follow_rollouts([back], watch, session, reporter)
    state = back.state
    if back.verdict is Verdict.COMPLETE and state is not None:
        return Rollback(revision, state)
    if back.verdict is Verdict.TIMEOUT or state is None:
        detail = "timed out" + _stuck_statefulset(kind, namespace, state, watch)
    else:
        detail = state.failure_reason or state.message
    return Rollback(revision, state, f"rollback to revision {revision} did not finish: {detail}")


def _stuck_statefulset(
    kind: Kind, namespace: str, state: Optional[RolloutState], watch: WatchOptions
) -> str:
    """Why a rolled-back StatefulSet may never finish: its controller does not replace a pod
    that is not running and ready (Kubernetes' forced rollback), so the broken pods of the
    failed revision stay until someone deletes them."""
    if kind is not STATEFULSET or watch.delete_pods or state is None:
        return ""
    broken = [p.name for p in state.pods if not p.is_new and not p.ready]
    if not broken:
        return ""
    return (
        f"; the statefulset controller does not replace a broken pod after a rollback: delete "
        f"it (kubectl delete pod {' '.join(broken)} -n {namespace}), or run with --delete-pods"
    )


def _guard_refusal(session: Session, job: _Job, ours: dict) -> str:
    """Why a 422 answered the rollback ("" when it was not our guard): kube-apiserver says
    only "the server rejected our request due to an error in our request" when a JSON patch's
    ``test`` fails, so the workload is read again: a template that is no longer ours is named
    with what changed and who changed it (unreadable: the server's words are all we know)."""
    try:
        live = session.api.get_workload(job.kind.resource, job.namespace, job.name)
    except ApiError:
        return ""
    return _not_ours_any_more(live, ours, job.kind)


def _not_ours_any_more(live: dict, ours: dict, kind: Kind) -> str:
    """Why the live workload is no longer ours to roll back ("" when it still is)."""
    theirs = (live.get("spec") or {}).get("template") or {}
    if kind.pausable and (live.get("spec") or {}).get("paused"):
        who = changed_by(live, [("spec", "paused")])
        return _refused(f"the {kind.word} was paused" + (f" (manager: {who})" if who else ""))
    if theirs == ours:
        return ""
    what = describe_template_change(ours, theirs)
    who = changed_by(live, [path for _text, path in template_changes(ours, theirs)])
    by = f" (manager: {who})" if who else ""
    return _refused(f"the pod template changed after our restart: {what}{by}")


def _refused(why: str) -> str:
    return f"{why}; nothing was changed: the newest change is not ours to undo"


def send_restart(
    api: KubeApi, kind: Kind, namespace: str, name: str, patch: dict, restarted_at: str
) -> dict:
    """PATCH once; when the outcome is unknown, read back before ever sending again.

    Sending the same annotation value twice would not start a second rollout, but we still
    read first: the answer tells us whether our restart is the one in effect. Ctrl-C while
    the PATCH is on its way leaves the outcome unknown, so we say so rather than "nothing
    was changed".
    """
    who = f"{kind.word} {namespace}/{name}"
    for _attempt in range(3):
        try:
            return api.patch_workload(kind.resource, namespace, name, patch)
        except PatchOutcomeUnknown:
            current = api.get_workload(kind.resource, namespace, name)
            if restarted_at_of(current) == restarted_at:
                return current
        except KeyboardInterrupt:
            interrupted = PluginError(
                f"interrupted while restarting {who}: the restart may have been applied",
                f"check with: kubectl rollout status {kind.ref(name)} -n {namespace}",
            )
            interrupted.exit_code = ExitCode.INTERRUPTED
            raise interrupted from None
    raise ApiError(
        f"could not restart {who}: the API server did not confirm the change",
        "check the cluster's health (kubectl get --raw /readyz), then run the command again",
    )


def plan_dry_run(api: KubeApi, target: Target, patch: dict, watch: WatchOptions) -> dict:
    """What a real run would send, and whether the server would let us (no writes): one
    SelfSubjectAccessReview per permission the run needs for this kind."""
    kind = target.kind
    meta = target.workload["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    needed = [("patch", kind.resource, "apps"), ("watch", kind.resource, "apps")]
    if kind.replicasets:
        needed.append(("watch", "replicasets", "apps"))
    needed += [("watch", "pods", ""), ("list", "events", ""), ("get", "pods/log", "")]
    needed += [
        ("list", "services", ""),  # URLs, and the Service the smoke check goes through
        ("get", "services/proxy", ""),  # the smoke check (optional: skipped without it)
        ("get", "leases", "coordination.k8s.io"),  # the restart lock (optional)
        ("create", "leases", "coordination.k8s.io"),
        ("update", "leases", "coordination.k8s.io"),
    ]
    if watch.delete_pods and replaced_on_delete(target.workload, kind):
        needed.append(("delete", "pods", ""))
    if watch.undo_on_failure and not kind.replicasets:
        needed.append(("list", "controllerrevisions", "apps"))
    checks = {}
    for verb, resource, group in needed:
        key = f"{verb} {resource}"
        try:
            checks[key] = api.can_i(verb, resource, group=group, namespace=namespace)
        except ApiError as err:
            checks[key] = f"unknown ({err.message})"
    return {
        "patch": patch,
        "contentType": "application/strategic-merge-patch+json",
        "path": f"/apis/apps/v1/namespaces/{namespace}/{kind.resource}/{name}",
        "permissions": checks,
    }


def _verdict_of(state: RolloutState) -> Verdict:
    return {
        Phase.COMPLETE: Verdict.COMPLETE,
        Phase.SUPERSEDED: Verdict.SUPERSEDED,
    }.get(state.phase, Verdict.FAILED)
