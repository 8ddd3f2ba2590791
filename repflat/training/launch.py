"""`repflat run --launcher`: each unfinished run of an experiment as a cluster job.

The sweep is planned exactly as `repflat run` plans it (repflat.training.sweep: every arm
built and checked, every run directory's state known, nothing written), then each run
that is not complete becomes one task of a SLURM job array through submitit, or, with
`local`, one process on this machine through submitit's local executor (the same code
path without a cluster, which the tests use). Job scripts and logs go to OUT/slurm/.

A run never trains twice: a job continues an unfinished run from its checkpoint, a job
stopped at its time limit is requeued and continues again, and rerunning the command
submits only the runs that are still not complete.
"""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from repflat.config import Experiment, LauncherConfig, RunConfig
from repflat.errors import RunsFailed, UserError, expected
from repflat.progress import progress_bar, say
from repflat.rundir.lock import holder
from repflat.training.sweep import Plan, plan_experiment

JOBS_DIR = "slurm"
"""Where job scripts, submitit's pickles and each job's log live, below the experiment directory."""

Cluster = Literal["slurm", "local"]
POLL_SECONDS = {"slurm": 20.0, "local": 0.5}  # submitit asks sacct at most once a minute anyway


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UserError("expected the submitit package, got none; install it with "
                        "`pip install 'repflat[cluster]'`", argument="launcher") from None
    return submitit


class TrainJob:
    """What one job runs: one run, trained (or continued) into its run directory.

    submitit calls `checkpoint` when SLURM is about to stop the job (its time limit, a
    preemption): the same call is requeued, and `train` continues from the run's latest
    checkpoint."""

    def __call__(self, cfg: RunConfig, run_dir: str, threads: int) -> str:
        import torch

        from repflat.strict import to_plain
        from repflat.training.claim import prepare_run_dir
        from repflat.training.loop import finished_line, train_prepared

        torch.set_num_threads(threads)
        plain = to_plain(cfg)
        state, line = train_prepared(cfg, run_dir, plain, prepare_run_dir(run_dir, plain),
                                     progress=False)
        print(line or finished_line(cfg, run_dir), flush=True)  # into the job's log
        return state.value

    def checkpoint(self, *args, **kwargs):
        return _submitit().helpers.DelayedSubmission(self, *args, **kwargs)


@dataclass(frozen=True)
class Failure:
    """A run whose job ended without completing it."""

    run_dir: Path
    reason: str
    log: Path

    def line(self) -> str:
        return f"{self.run_dir}: failed: {self.reason}; log: {self.log}"


def check_launcher(exp: Experiment, launcher: LauncherConfig, cluster: Cluster) -> None:
    """What the jobs ask for against what the runs need, and a cluster to ask."""
    cuda = [r.name for r in exp.runs if r.train.device == "cuda"]
    if cuda and launcher.gpus < 1:
        raise expected("gpus", f"at least 1 for arms training on cuda ({', '.join(dict.fromkeys(cuda))})",
                       launcher.gpus)
    if cluster == "slurm" and shutil.which("srun") is None:
        raise expected("launcher", "a machine with SLURM (srun on the PATH); `--launcher local` "
                       "runs the jobs as processes here", "no srun")


def check_not_running(plan: Plan) -> None:
    """Refuse to submit a run another process is training now (a job of an earlier
    submission): a second job for it would only fail on its lock."""
    for run in plan.todo:
        path = plan.path(run)
        pid = holder(path)
        if pid is not None:
            raise UserError(f"{path} is being trained by another repflat process (pid {pid}), "
                            "likely a job of an earlier submission; wait for it or cancel it, "
                            "then rerun", argument="out")


SUBMISSION_LINK = re.compile(r"^\.submission_file_[0-9a-f]{32}\.sh$")


def remove_submission_links(folder: Path) -> None:
    """Delete the links submitit leaves beside a SLURM job's script (`.submission_file_<uid>.sh`
    -> `<job>_submission.sh`): repflat refuses a directory holding any link, so the next
    run of the command would refuse this one. Unlinking never touches what a link points at."""
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.iterdir():
            if SUBMISSION_LINK.match(path.name) and path.is_symlink():
                path.unlink()


def job_name(exp: Experiment) -> str:
    # The name goes into the job script; keep it to characters SLURM shows as they are.
    return "repflat-" + re.sub(r"[^A-Za-z0-9_.-]", "_", exp.name)[:48]


def make_executor(folder: Path, launcher: LauncherConfig, cluster: Cluster, name: str):
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(
        name=name, timeout_min=launcher.time, cpus_per_task=launcher.cpus,
        gpus_per_node=launcher.gpus or None,  # no GPU line at all: some clusters refuse 0
        mem_gb=launcher.mem_gb, nodes=1, tasks_per_node=1,
        slurm_partition=launcher.partition, slurm_account=launcher.account,
        slurm_array_parallelism=launcher.parallel)
    return executor


def failure_reason(error: BaseException) -> str:
    """One line from what submitit says of a failed job: why the job gave no result (its
    SLURM state: TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL...), or else the exception
    the run raised (the last line of the traceback submitit relays)."""
    text = str(error)
    state = re.search(r"has not produced any output \(state: ([^)]*)\)", text)
    if state:  # the log that follows may hold anything; the state is what is known
        return f"the job ended without a result (state {state.group(1)})"
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    raised = [l for l in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", l)
              and not l.startswith("submitit.")]
    if raised:  # a user error is its message; anything else keeps its type
        return " ".join(re.sub(r"^repflat\.errors\.\w+: ", "", raised[-1]).split())
    return type(error).__name__


def launch_experiment(exp: Experiment, out: str | Path, launcher: LauncherConfig | None = None, *,
                      cluster: Cluster = "slurm", wait: bool = True, progress: bool = True) -> list:
    """Train every unfinished (arm, seed) of `exp` into `out` as one job each.

    Parameters
    ----------
    exp : repflat.config.Experiment
        The experiment; its runs go to out/runs/<arm>-seed<s>/, as with `run_experiment`.
    out : str or Path
        The experiment directory (new, empty, or written by `repflat run` for `exp`).
    launcher : LauncherConfig, optional
        What each job asks for; default: the experiment's `launcher:` section.
    cluster : 'slurm' or 'local'
        SLURM through submitit, or submitit's local executor (processes on this machine).
    wait : bool, default True
        Wait for every job and report; False returns once the jobs are submitted.
    progress : bool, default True
        One line per run as its job ends, and a bar on a terminal.

    Returns
    -------
    list of submitit.Job
        The submitted jobs (none when every run is complete already).

    Raises
    ------
    repflat.errors.UserError
        Before anything is written or submitted: an experiment, directory or launcher
        setting that cannot work.
    repflat.errors.RunsFailed
        With `wait`, after every job has ended: one line per run whose job failed.
    """
    launcher = launcher if launcher is not None else exp.launcher
    check_launcher(exp, launcher, cluster)
    plan = plan_experiment(exp, out, check_device="cpu")
    check_not_running(plan)
    todo = plan.todo
    folder = plan.out / JOBS_DIR
    remove_submission_links(folder)  # left by a submission killed before it removed them
    with plan.claimed():
        where = "SLURM jobs" if cluster == "slurm" else "local jobs"
        say(plan.todo_line(f" as {where}" if todo else ""), show=progress)
        if not todo:
            return []
        executor = make_executor(folder, launcher, cluster, job_name(exp))
        dirs = [plan.path(r) for r in todo]
        jobs = _submit(executor, todo, dirs, launcher.cpus, folder)
        ids = jobs[0].job_id.split("_")[0] if cluster == "slurm" else ", ".join(j.job_id for j in jobs)
        say(f"submitted {len(jobs)} job{'s' if len(jobs) > 1 else ''} ({ids}); logs in {folder}",
            show=progress)
        if not wait:
            say("not waiting: when the jobs have ended, rerun this command (complete runs are "
                "skipped, the others resubmitted) to analyse", show=progress)
            return jobs
        failures = _wait(jobs, todo, dirs, cluster, progress)
    if failures:
        say(f"{len(failures)} of {len(jobs)} runs failed; rerunning the same command resubmits "
            "them (the others are kept)", show=progress)
        raise RunsFailed([f.line() for f in failures])
    return jobs


def _submit(executor, todo: list[RunConfig], dirs: list[Path], threads: int, folder: Path) -> list:
    """map_array, with sbatch's refusal (an unknown partition, an account over its limit)
    as one UserError: submitit would print sbatch's stderr and raise with a traceback."""
    utils = _submitit().core.utils
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return executor.map_array(TrainJob(), todo, [str(d) for d in dirs], [threads] * len(todo))
    except (utils.FailedJobError, utils.FailedSubmissionError) as err:
        why = [l for l in (str(err) or said.getvalue()).splitlines() if l.strip()]
        raise UserError(f"the cluster refused the jobs: {why[-1] if why else type(err).__name__}; "
                        "nothing was submitted", argument="launcher") from None
    finally:
        remove_submission_links(folder)


def _wait(jobs: list, todo: list[RunConfig], dirs: list[Path], cluster: Cluster,
          progress: bool) -> list[Failure]:
    from repflat.training.loop import finished_line

    submitit = _submitit()
    index = {id(j): i for i, j in enumerate(jobs)}
    failures = []
    bar = progress_bar(total=len(jobs), desc="jobs", unit="run", show=progress)
    try:
        for job in submitit.helpers.as_completed(jobs, poll_frequency=POLL_SECONDS[cluster]):
            i = index[id(job)]
            error = job.exception()
            if error is None:
                say(finished_line(todo[i], dirs[i]), show=progress)
            else:
                failures.append(Failure(dirs[i], failure_reason(error), job.paths.stderr))
            bar.update()
        failures.sort(key=lambda f: f.run_dir)
    except KeyboardInterrupt:
        left = [j.job_id for j in jobs if not j.done()]
        if left:
            print(f"repflat: {len(left)} jobs are still queued or running ({', '.join(left[:8])}"
                  f"{', …' if len(left) > 8 else ''}); cancel them (scancel) or rerun this "
                  "command once they end", file=sys.stderr)
        raise
    finally:
        bar.close()
    return failures
