"""The tuning loop: keep ``maxParallelTrials`` trials running until the budget is spent.

As soon as a slot frees, Optuna is asked for the next flag values and the trial is
started through the job's executor. Each trial's objective is read from the metric
points it writes; with early stopping on, its live series is reported to the pruner
and a hopeless trial is stopped. Ctrl-C (or SIGTERM) stops every running trial, marks
them interrupted and leaves a job that ``--resume`` continues.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import optuna

from flagrun import (
    _leftovers,
    _optuna,
    _stalled,
    checkpoints,
    distributed,
    hparams,
    pruners,
    space,
    store,
)
from flagrun.errors import FlagrunError, RunError, StoreError, describe_os_error, from_os_error
from flagrun.executors import Executor, LocalExecutor
from flagrun.progress import Progress
from flagrun.records import JobState, RunStatus, TrialOutcome, TrialRow, TrialState
from flagrun.runner import RunResult
from flagrun.tuner import budget, overrun, promotion, resume
from flagrun.tuner.job import Job, trial_row
from flagrun.tuner.request import JobResult
from flagrun.tuner.trial import (
    ActiveTrial,
    Verdict,
    judge,
    launch_spec,
    missing_tag_error,
    report_new_points,
    should_prune,
)

METRIC_POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 5.0
SHARED_POLL_SECONDS = 1.0  # how often a worker of a shared study looks at the others' trials
OUT_OF_TIME = "maxRunningTime ran out"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_OPTUNA_STATES = {
    TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
    TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
    TrialState.FAILED: optuna.trial.TrialState.FAIL,
}


class Tuner:
    """Keeps the slots busy until the budget is spent, the job fails, or Ctrl-C."""

    def __init__(self, job: Job, executor: Executor, progress: Progress) -> None:
        self.job = job
        self.spec = job.spec
        self.study = job.study
        self.executor = executor
        self.progress = progress
        self.policy = budget.FailurePolicy(
            self.spec.max_failed_trials, self.spec.max_parallel_trials
        )
        self.active: dict[int, ActiveTrial] = {}
        self.resumed_from: dict[int, int] = {}  # trialId -> the interrupted trial it continues
        # Paused trials wait for a promotion only where their folder and checkpoint are here
        # and no other worker promotes them too.
        self.pausing = (
            pruners.pauses(self.spec) and isinstance(executor, LocalExecutor) and not job.shared
        )
        self.tally: budget.Tally | None = None  # the study's trial counts, refreshed when stale
        self.tally_time = 0.0
        self.expected_points = 0  # points of the objective a finished trial wrote (overrun)
        self.expected_startup = 0.0  # seconds a finished trial took to its first epoch
        self.job_paced = False  # a finished trial said how far it was through its epochs
        # The timeout a trial's pace is projected against (``tuner.overrun``). The pace is
        # measured from when the loop started it: only true where its process starts at
        # once, not in a cluster's queue or on another machine's clock.
        local = isinstance(executor, LocalExecutor)
        self.overrun_limit = self.spec.trial_timeout if local else None
        self.stop_reason: str | None = None
        self.abort: FlagrunError | None = None
        # maxRunningTime counts from this start (a resumed job gets it again)
        limit = self.spec.max_running_time
        self.deadline = None if limit is None else time.monotonic() + limit
        self._last_metric_poll = 0.0
        self.heartbeats = (
            distributed.Heartbeats(self.study, distributed.heartbeat_seconds())
            if job.shared
            else None
        )

    def run(self) -> JobResult:
        self.job.mark_running()
        if not self.job.shared:  # a shared study's other workers may be alive: sweep instead
            self._requeue_stale_trials()
        self._write_hparams(
            hparams.write_experiment,
            self.job.job_dir,
            [param.to_dict() for param in self.spec.params],
            self.spec.metric_tag,
            self.spec.goal,
        )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            self.progress.start(self._summary())
            for note in self.job.notes:
                self.progress.message(note)
            while self._step():
                self._wait()
        except (OSError, FlagrunError) as exc:  # a full disk, a lost cluster: stop, resumable
            self._give_up(exc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            result = self._wind_down()
        if self.abort is not None:
            raise self.abort
        return result

    def _give_up(self, exc: OSError | FlagrunError) -> None:
        """The job cannot go on (its files cannot be written, its cluster is gone): stop, as
        Ctrl-C would, and say why."""
        if self.abort is None:
            self.abort = exc if isinstance(exc, FlagrunError) else from_os_error(exc)
            self.progress.message(f"stopping: {self.abort.message}")
        if self.stop_reason is None:
            self.stop_reason = "interrupted"

    def _wind_down(self) -> JobResult:
        """Stop the running trials and record how the job ended.

        When even that cannot be written, the trials are killed and job.json is left
        saying RUNNING: it shows CRASHED, and ``--resume`` queues its trials again.
        """
        try:
            try:
                self._stop_all(interrupted=True)
                result = self._finish()
            except OSError as exc:
                self._give_up(exc)
                for active in list(self.active.values()):
                    active.process.stop(RunStatus.KILLED, "the tuner could not go on", 0)
                    with contextlib.suppress(OSError):
                        active.process.result()
                crashed = JobResult(
                    self.job.job_dir, JobState.CRASHED, self._current_tally().counts, None
                )
                with contextlib.suppress(OSError):  # the display is told, as far as it can be
                    self.progress.close(self._summary(), crashed.state, crashed.reason)
                return crashed
            self._write_hparams(hparams.write_job_hparams, self.job.job_dir)
            self.progress.close(self._summary(), result.state, result.reason)
            return result
        finally:
            self.executor.close()

    # -- one turn of the loop ----------------------------------------------------------------

    def _step(self) -> bool:
        """Reap, poll, beat, refill; False when the job is over."""
        for active in list(self.active.values()):
            if active.process.poll():
                self._finish_trial(active)
        now = time.monotonic()
        if now - self._last_metric_poll >= METRIC_POLL_SECONDS:
            self._last_metric_poll = now
            for active in list(self.active.values()):
                self._poll_metrics(active)
            self.progress.update(self._summary(), self._active_rows())
        if self.heartbeats is not None and self.heartbeats.due():
            self.heartbeats.beat(active.trial for active in self.active.values())
            self._sweep_stale_trials()
        if self.stop_reason is None:
            self._check_time()
        if self.stop_reason is None:
            self._check_failures()
        if self.stop_reason == "interrupted" and self.active:
            self._stop_all(interrupted=True)
        if self.stop_reason == OUT_OF_TIME and self.active:  # --resume runs them again
            self._stop_all(interrupted=True, reason=f"stopped: the job's {OUT_OF_TIME}")
        if self.stop_reason is None:
            while len(self.active) < self.spec.max_parallel_trials and self._can_start():
                if not self._start_trial():
                    break
        return self._more_to_do()

    def _more_to_do(self) -> bool:
        if self.active:
            return True
        if self.stop_reason is not None:
            return False
        # A shared study's worker waits for the others' trials too: one of them may die
        # and its trial come back to be run again.
        return self._can_start() or (self.job.shared and self._current_tally().running > 0)

    def _check_time(self) -> None:
        """End the job once maxRunningTime has passed, as Cloud ML does, keeping what the
        finished trials found."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop_reason = OUT_OF_TIME
            self.progress.message(f"stopping: {OUT_OF_TIME} ({self.spec.max_running_time:g} s)")

    def _check_failures(self) -> None:
        reason = self.policy.stop_reason(self._current_tally().counts)
        if reason is not None:
            self.stop_reason = reason
            self.progress.message(f"stopping: {reason}; see each trial's output.log")

    def _can_start(self) -> bool:
        return self._current_tally().can_start(self.spec.max_trials)

    def _current_tally(self) -> budget.Tally:
        """The study's counts; a shared study is looked at again every SHARED_POLL_SECONDS."""
        now = time.monotonic()
        stale = self.job.shared and now - self.tally_time >= SHARED_POLL_SECONDS
        if self.tally is None or stale:
            trials = self.study.get_trials(deepcopy=False)
            self.tally = budget.Tally.of(trials)
            self.expected_points = overrun.expected_points(trials)
            self.expected_startup = overrun.expected_startup(trials)
            self.job_paced = overrun.job_paced(trials)
            self.tally_time = now
        return self.tally

    def _wait(self) -> None:
        """Sleep until a trial exits or the next poll is due, whichever comes first."""
        timeout = max(0.0, self._last_metric_poll + METRIC_POLL_SECONDS - time.monotonic())
        if not self.active and self.job.shared:  # idle, waiting on the other workers
            timeout = SHARED_POLL_SECONDS
        self.executor.wait([active.process for active in self.active.values()], timeout)

    # -- starting and finishing trials ------------------------------------------------------

    def _start_trial(self) -> bool:
        """Ask Optuna for a trial and start its process; False when it was one too many."""
        if self.pausing:
            self._queue_promotion()
        trial = self.study.ask()
        self.tally = None
        if not budget.within_budget(self.study, trial, self.spec.max_trials):
            budget.give_back(self.study, trial)
            return False
        flags = space.suggest(trial, self.spec)
        trial_id = trial.number + 1
        run_dir = self.job.trial_dir(trial_id)
        run_dir.mkdir(parents=True)
        trial.set_user_attr("trialId", trial_id)
        trial.set_user_attr("flags", flags)
        trial.set_user_attr("runDir", str(run_dir.relative_to(self.job.job_dir)))
        trial.set_user_attr("host", socket.gethostname())
        if self.heartbeats is not None:
            worker = f"{socket.gethostname()}:{os.getpid()}"
            _optuna.set_system_attr(self.study, trial, distributed.WORKER_ATTR, worker)
            self.heartbeats.beat([trial])
        promoted = promotion.inherit_rungs(self.study, trial) if self.pausing else None
        if promoted is not None:
            self.progress.message(f"trial {trial_id}: promotes paused trial {promoted}")
        self._resume_checkpoint(trial, trial_id, run_dir)
        process = self.executor.start(launch_spec(self.job, trial_id, flags))
        active = ActiveTrial(trial, trial_id, flags, process)
        self.active[trial_id] = active
        self.job.record_trial(self._row(active, TrialState.RUNNING), self._current_tally())
        self._write_hparams(hparams.write_session, run_dir, flags, TrialState.RUNNING)
        self.progress.trial_started(trial_id, flags, process.gpu)
        return True

    def _queue_promotion(self) -> None:
        """Queue the paused trial that is now among the best of its rung, when one is, the
        budget has room and nothing else waits to run (``tuner.promotion``)."""
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == optuna.trial.TrialState.WAITING for t in trials):
            return
        if budget.Tally.of(trials).claimed >= self.spec.max_trials:
            return
        reduction_factor = pruners.setting(self.spec, "reduction_factor")
        paused = promotion.next_promotion(trials, reduction_factor, self.study.direction)
        if paused is not None:
            promotion.promote(self.study, paused)

    def _resume_checkpoint(self, trial: optuna.Trial, trial_id: int, run_dir: Path) -> None:
        """A retry of an interrupted trial continues from its checkpoint (``tuner.resume``).

        Only where the trial runs in this run folder: a Dask worker runs it in a folder of
        its own, and there it starts over.
        """
        if not isinstance(self.executor, LocalExecutor):
            return
        try:
            source = resume.carry_over(self.study, trial, self.job.job_dir, run_dir)
        except (StoreError, OSError) as exc:  # the checkpoint stays where it was
            why = exc.message if isinstance(exc, StoreError) else describe_os_error(exc)
            self.progress.message(f"trial {trial_id}: starts over: {why}")
            return
        if source is None:
            return
        self.resumed_from[trial_id] = source
        trial.set_user_attr(resume.RESUMED_FROM, source)
        self.progress.message(f"trial {trial_id}: continues trial {source} from its checkpoint")

    def _finish_trial(self, active: ActiveTrial) -> None:
        if self.active.pop(active.trial_id, None) is None:
            return  # already finished (an abort stops every trial from inside this method)
        result = active.process.result()
        if result.lost:  # its machine went away: fail it as interrupted, run it again
            active.interrupted = True
        if result.record_error is not None:
            self.progress.message(f"trial {active.trial_id}: {result.record_error}")
        active.process.metrics.poll()
        report_new_points(active, self.spec, finished=True)
        self.tally = None
        verdict = self._paused_at_timeout(active, result) or judge(active, result, self.spec)
        if verdict.missing_tag and self._current_tally().counts[TrialState.COMPLETE] == 0:
            self._abort_missing_tag(active)
        row = self._row(active, verdict, duration=result.duration)
        self._write_trial_result(active, verdict)
        if not active.interrupted and not (active.paused and verdict.state == TrialState.PRUNED):
            checkpoints.remove_keras_backups(active.process.run_dir)  # nothing resumes it
            self._annotate(active, verdict, result)
            self._upload(active)  # after the run folder is final
        self._tell(active, verdict)
        self.tally = None
        self.job.record_trial(row, self._current_tally())
        self.progress.trial_finished(active.trial_id, verdict.state, verdict.value, verdict.reason)

    def _abort_missing_tag(self, active: ActiveTrial) -> None:
        error = missing_tag_error(self.spec, active.trial_id, active.process.metrics.tags())
        if error is None:
            return  # resolve_tag found it after all; nothing to stop for
        self.abort = error
        self.stop_reason = "the metric tag is missing"
        self._stop_all(interrupted=True)

    def _write_trial_result(self, active: ActiveTrial, verdict: Verdict) -> None:
        """The trial's outcome in its own run.json, and its HParams session end."""
        run_dir = active.process.run_dir
        try:
            run = store.read_run(run_dir)
        except StoreError as exc:  # the script damaged its own record
            self.progress.message(f"trial {active.trial_id}: {exc.message}")
            return
        run.trial = TrialOutcome(verdict.state, verdict.value, verdict.step, verdict.reason)
        store.write_run(run_dir, run)
        self._write_hparams(hparams.write_run_session, run_dir)

    def _tell(self, active: ActiveTrial, verdict: Verdict) -> None:
        """Tell Optuna; a trial another worker already closed (it took us for dead) stays so."""
        try:
            if active.interrupted:
                budget.fail_and_requeue(self.study, active.trial)
                return
            value = verdict.value if verdict.state == TrialState.COMPLETE else None
            state = _OPTUNA_STATES[verdict.state]
            frozen = self.study.tell(active.trial, value, state=state, skip_if_finished=True)
            if not frozen.user_attrs.get(budget.INTERRUPTED):
                return
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            pass  # swept in the instant between tell's check and its write
        self.progress.message(
            f"trial {active.trial_id}: another worker closed it (this worker's heartbeat "
            "stopped too long); its results stay in its run folder"
        )

    def _annotate(self, active: ActiveTrial, verdict: Verdict, result: RunResult) -> None:
        """What ``flagrun trials`` shows of a trial from any machine, kept on the trial."""
        attrs = {
            "lastValue": verdict.value,
            "trainingStep": verdict.step,
            "reason": verdict.reason,
            "duration": result.duration,
            overrun.POINTS_ATTR: len(active.series),
            overrun.STARTUP_ATTR: overrun.startup_seconds(active.series, active.started_at),
            overrun.PACED_ATTR: True if active.training_began() is not None else None,
        }
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # see _tell
            for key, value in attrs.items():
                if value is not None:
                    active.trial.set_user_attr(key, value)

    def _upload(self, active: ActiveTrial) -> None:
        """Copy the trial's folder to the artifact store, so any machine can collect it."""
        if self.job.artifacts is None:
            return
        key = f"{self.job.artifact_prefix}/trials/{active.trial_id}"
        try:
            self.job.artifacts.upload(active.process.run_dir, key)
            active.trial.set_user_attr("artifact", key)
        except FlagrunError as exc:
            self.progress.message(f"trial {active.trial_id}: not uploaded: {exc.message}")
        except optuna.exceptions.UpdateFinishedTrialError:
            pass

    def _poll_metrics(self, active: ActiveTrial) -> None:
        """Read a running trial's new points; stop it when it falls behind, or when at its
        pace it cannot finish within trialTimeout (``tuner.overrun``)."""
        active.process.metrics.poll()
        report_new_points(active, self.spec, lag=2 * METRIC_POLL_SECONDS)
        if not self.spec.early_stopping or active.pruned_at is not None:
            return
        if self._trained_to_the_end(active):
            return
        if active.reported and should_prune(active):
            self._prune(active)
        elif self.overrun_limit is not None:
            self._stop_if_overrunning(active, self.overrun_limit)

    def _trained_to_the_end(self, active: ActiveTrial) -> bool:
        """Whether the trial wrote as many points as a finished trial: stopping it then saves
        nothing, and as PRUNED its whole curve would be missing from the complete trials the
        median and percentile pruners judge by (the survivors of their cuts)."""
        self._current_tally()  # refreshes expected_points
        return 0 < self.expected_points <= len(active.series)

    def _prune(self, active: ActiveTrial) -> None:
        """Stop a trial the pruner gave up on; one with a checkpoint may wait to be promoted."""
        last = active.series[-1]
        active.pruned_at = last.step
        reason = f"pruned at step {last.step}"
        if pruners.resource_of(self.spec).is_time:
            reason += f" after {last.wall_time - active.started_at:.0f} s"
        if self._stopped_stalled(active):
            # stopped for good: a trial that learned nothing is not worth a promotion
            reason = f"stalled at step {last.step}: learned nothing since its first, far behind"
        elif self.pausing and checkpoints.has_checkpoint(active.process.run_dir):
            reason = self._pause(active, last.step, None)
        active.process.stop(RunStatus.PRUNED, reason, STOP_GRACE_SECONDS)

    def _pause(self, active: ActiveTrial, step: int | None, why: str | None) -> str:
        """Mark the trial paused, its checkpoint kept for a promotion; the reason to give."""
        active.paused = True
        active.trial.set_user_attr(promotion.PAUSED, True)
        stopped = f"paused at step {step}" + (f", {why}" if why else "")
        return f"{stopped}: its checkpoint waits for a promotion"

    def _passed_a_rung(self, active: ActiveTrial) -> bool:
        """Under asha, whether the trial passed a rung with a checkpoint to continue from:
        then its trialTimeout ends its run, not its chance (``_paused_at_timeout``)."""
        if not self.pausing or active.interrupted:
            return False
        if not checkpoints.has_checkpoint(active.process.run_dir):
            return False
        return bool(promotion.rungs(self._frozen(active)))

    def _paused_at_timeout(self, active: ActiveTrial, result: RunResult) -> Verdict | None:
        """A trial its trialTimeout stopped after it passed a rung (``_passed_a_rung``) is
        paused as a trial stopped at a rung is. A promotion continues it as a trial of its
        own, with a timeout of its own, once it is among the best of its last rung. None
        for any other trial."""
        if not result.timed_out or not self._passed_a_rung(active):
            return None
        value, step = active.last_point
        reason = self._pause(active, step, result.reason)
        return Verdict(TrialState.PRUNED, value, step, reason)

    def _stopped_stalled(self, active: ActiveTrial) -> bool:
        """Whether the stop of stalled trials (not the pruner it wraps) stopped the trial."""
        return _stalled.stopped_stalled(self._frozen(active))

    def _frozen(self, active: ActiveTrial) -> optuna.trial.FrozenTrial:
        """The study's record of the trial now: its attributes, as the pruner left them."""
        trials = self.study.get_trials(deepcopy=False)
        return next(t for t in trials if t.number == active.trial.number)

    def _stop_if_overrunning(self, active: ActiveTrial, timeout: float) -> None:
        """Stop, PRUNED, a trial that at its pace cannot finish within ``timeout``, unless
        it passed a rung of asha: its timeout pauses it, and a promotion continues it, so
        the compute it took is not lost (stopped by its pace, and promoted at once for
        being among the best, it would start again and again)."""
        self._current_tally()  # a shared study's finished trials say how many points
        epoch_time = active.read_epoch_time()  # first: it notes when training began
        reason = overrun.overrun_reason(
            active.series,
            active.started_at,
            time.time(),
            self.expected_points,
            timeout,
            epoch_time,
            self._startup(active),
        )
        if reason is not None and not self._passed_a_rung(active):
            active.pruned_at = active.last_point[1] or 0
            active.process.stop(RunStatus.PRUNED, reason, STOP_GRACE_SECONDS)

    def _startup(self, active: ActiveTrial) -> float | None:
        """Its start-up: its own once it said how far it is through an epoch; unknown
        (None) until then in a job whose finished trials said so; else the job's longest."""
        own = active.training_began()
        if own is not None:
            return own
        return None if self.job_paced else self.expected_startup

    # -- interruption and resume -----------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only set a flag here: the loop stops the trials and records them.
        if self.stop_reason is None:
            self.stop_reason = "interrupted"
            self.progress.message("interrupted: stopping the running trials")

    def _stop_all(
        self, *, interrupted: bool, reason: str = "interrupted: the tuner stopped"
    ) -> None:
        for active in list(self.active.values()):
            active.interrupted = interrupted
            active.process.stop(RunStatus.KILLED, reason, STOP_GRACE_SECONDS)
        for active in list(self.active.values()):
            self._finish_trial(active)

    def _sweep_stale_trials(self) -> None:
        """Fail the trials of workers that stopped beating, and queue them to run again."""
        assert self.heartbeats is not None
        mine = {active.trial.number for active in self.active.values()}
        for frozen in self.heartbeats.stale(mine):
            try:
                budget.fail_and_requeue(self.study, _optuna.trial_of(self.study, frozen))
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # another worker swept it first
            self.tally = None
            worker = frozen.system_attrs.get(distributed.WORKER_ATTR, "a worker")
            self.progress.message(
                f"trial {frozen.number + 1}: {worker} stopped beating; "
                "failed it and queued its parameters again"
            )

    def _requeue_stale_trials(self) -> None:
        """Trials left RUNNING by a dead tuner: mark them FAILED and run their parameters again."""
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for frozen in running:
            budget.fail_and_requeue(self.study, _optuna.trial_of(self.study, frozen))
            self.tally = None
            trial_id = frozen.number + 1
            run_dir = self.job.trial_dir(trial_id)
            reason = "interrupted: the tuner died; parameters queued again"
            _leftovers.kill(str(run_dir), -1, grace=0)  # the guard's job, unless it died too
            self._record_interrupted(trial_id, run_dir, reason)
            flags = frozen.user_attrs.get("flags", {})
            row = trial_row(trial_id, TrialState.FAILED, flags, reason=reason)
            self.job.record_trial(row, self._current_tally())
            self.progress.message(f"trial {trial_id}: {reason}")

    def _record_interrupted(self, trial_id: int, run_dir: Path, reason: str) -> None:
        """A dead tuner's trial in its own run.json: FAILED, as the study now has it."""
        if not (run_dir / store.RUN_FILE).is_file():
            return
        try:
            record = store.read_run(run_dir)
        except StoreError as exc:
            self.progress.message(f"trial {trial_id}: {exc.message}")
            return
        if record.status == RunStatus.RUNNING:
            record.status, record.reason = RunStatus.FAILED, reason
        record.trial = TrialOutcome(TrialState.FAILED, reason=reason)
        store.write_run(run_dir, record)

    # -- records ----------------------------------------------------------------------------

    def _row(
        self, active: ActiveTrial, verdict: Verdict | TrialState, duration: float | None = None
    ) -> TrialRow:
        if isinstance(verdict, TrialState):
            verdict = Verdict(verdict)
        return trial_row(
            active.trial_id,
            verdict.state,
            active.flags,
            run_dir=str(active.process.run_dir.relative_to(self.job.job_dir)),
            value=verdict.value,
            step=verdict.step,
            reason=verdict.reason,
            duration=duration,
            resumed_from=self.resumed_from.get(active.trial_id),
        )

    def _write_hparams(self, write: Any, *args: Any) -> None:
        """TensorBoard HParams data is a view of the job: failing to write it (a full disk, a
        trial's damaged run.json) is said, not fatal."""
        try:
            write(*args)
        except (OSError, ValueError, FlagrunError) as exc:
            self.progress.message(f"could not write TensorBoard hparams data: {exc}")

    def _finish(self) -> JobResult:
        self.tally = None
        tally = self._current_tally()
        if self.stop_reason == "interrupted":
            state, reason = JobState.INTERRUPTED, "interrupted; resume with `flagrun tune --resume`"
        elif self.stop_reason == OUT_OF_TIME and tally.counts[TrialState.COMPLETE] > 0:
            state, reason = JobState.COMPLETED, f"{OUT_OF_TIME} ({self.spec.max_running_time:g} s)"
        elif self.stop_reason is not None:
            state, reason = JobState.FAILED, self.stop_reason
        elif tally.counts[TrialState.COMPLETE] == 0:
            state, reason = JobState.FAILED, "no trial completed"
        else:
            state, reason = JobState.COMPLETED, None
        self.job.finish(state, reason, tally)
        if state == JobState.FAILED and self.abort is None:
            self.abort = RunError(
                f"tuning job {self.job.job_dir.name} failed: {reason}",
                hint=f"see the trials' output with `flagrun trials {self.job.job_dir.name}`",
            )
        return JobResult(self.job.job_dir, state, tally.counts, self.job.record.best, reason)

    # -- views for the progress display ---------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        return {
            "job": self.job.job_dir.name,
            "maxTrials": self.spec.max_trials,
            "counts": self._current_tally().counts,
            "best": self.job.best(),
            "metric": self.spec.metric_tag,
            "goal": self.spec.goal,
        }

    def _active_rows(self) -> list[dict[str, Any]]:
        rows = []
        for active in self.active.values():
            value, step = active.last_point
            rows.append(
                {
                    "trialId": active.trial_id,
                    "flags": active.flags,
                    "step": step,
                    "value": value,
                    "elapsed": time.monotonic() - active.started,
                    "gpu": active.process.gpu,
                }
            )
        return rows
