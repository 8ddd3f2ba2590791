"""`repflat run`: train every arm of an experiment for every seed, into one directory.

    OUT/experiment.yaml        the experiment file as given
    OUT/runs/<arm>-seed<s>/    one run directory per arm and seed
    OUT/analysis/              written by the analysis step (see repflat.analysis.pipeline)
    OUT/slurm/                 job scripts and logs of `--launcher` (repflat.training.launch)

Every run is checked before the first one trains (layer names, directories), so a
mistake in the last arm does not surface after an hour. Re-running the same experiment
skips runs already complete; a directory holding a different experiment is refused.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

from repflat.config import Experiment, RunConfig, load_experiment, parse_experiment
from repflat.config.loading import in_arm
from repflat.errors import UserError, expected, unknown
from repflat.files import write_text
from repflat.progress import counted, progress_bar, say
from repflat.rundir.experiment import ExperimentDir, run_path
from repflat.rundir.lock import NEW, claimed_by, exclusive
from repflat.rundir.names import EXPERIMENT_FILE, RunState
from repflat.strict import dump_yaml, to_plain
from repflat.training.claim import prepare_run_dir
from repflat.training.loop import Setup, setup, train_prepared


def check_experiment_dir(out: Path, exp: Experiment) -> None:
    source = claimed_by(out, EXPERIMENT_FILE, "`repflat run`")
    if source is NEW:
        return
    try:
        previous = parse_experiment(source)
    except (UserError, AttributeError, TypeError):
        raise expected("out", "a directory written by `repflat run`",
                       f"{out} (its {EXPERIMENT_FILE} is unreadable)") from None
    if previous.name != exp.name:
        raise UserError(f"{out} holds experiment {previous.name!r}, not {exp.name!r}; "
                        "choose another directory", argument="out")


def check_analysis(exp: Experiment, captured: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
    """Refuse, before any training, analysis settings the runs will not be able to meet:
    a split or a layer some arm does not capture."""
    a = exp.analysis
    for arm, (layers, splits) in captured.items():
        if a.split not in splits:
            raise expected("analysis.split", f"a split arm {arm!r} captures ({', '.join(splits)})",
                           a.split)
        for key, wanted in (("analysis.layers", a.layers), ("analysis.spectra_layers", a.spectra_layers)):
            for layer in wanted:
                if layer not in layers:
                    raise unknown(f"{key} (captured by arm {arm!r})", layer, layers)


def _train_in_worker(cfg: RunConfig, out: Path, plain: dict, state: RunState,
                     threads: int) -> str | None:
    torch.set_num_threads(threads)
    return train_prepared(cfg, out, plain, state, progress=False)[1]


def job_count(jobs: int | str, runs: list[RunConfig]) -> int:
    """`auto`: one job per CPU for runs on the CPU (small models train no faster on two
    threads than on one), one job otherwise (runs on a GPU share it).

    Each job gets CPUs // jobs threads. Results are bit-exact for a given seed *and*
    thread count: BLAS splits wide matrix products differently on more threads, so the
    last bits of wide layers can differ from a --jobs 1 run (the spirals MLP's layers
    are too small to be split, so its results are the same either way)."""
    if jobs == "auto":
        on_cpu = all(r.train.device == "cpu" for r in runs)
        jobs = min(os.cpu_count() or 1, len(runs)) if on_cpu else 1
    if not isinstance(jobs, int) or jobs < 1:
        raise expected("jobs", "a positive integer or 'auto'", jobs)
    return max(1, min(jobs, len(runs)))


@dataclass
class Plan:
    """An experiment checked against its output directory: every arm built once (layer
    names, analysis settings), every run directory's state known, nothing written."""

    exp: Experiment
    out: Path | None
    built: dict[Path, Setup]   # run directory -> its setup (each arm's first run)
    states: dict[Path, RunState]
    plain: dict[Path, dict]    # run directory -> its config made plain, as it is written

    @property
    def todo(self) -> list[RunConfig]:
        return [r for r in self.exp.runs if self.states.get(self.path(r)) is not RunState.COMPLETE]

    def path(self, run: RunConfig) -> Path:
        """The run's directory (below `out`; relative without one)."""
        return run_path(self.out if self.out is not None else "", run)

    @property
    def directory(self) -> ExperimentDir:
        """The experiment directory, as the analysis reads it (without reading it back)."""
        return ExperimentDir(self.out, self.exp)

    def todo_line(self, how: str = "") -> str:
        """What is about to happen: 'tiny: 6 runs (3 arms × 2 seeds), 2 complete already,
        4 to train' and `how` (', 2 at a time')."""
        exp, todo = self.exp, self.todo
        return (f"{exp.name}: {counted(len(exp.runs), 'run')} ({counted(len(exp.arms), 'arm')} × "
                f"{counted(len(exp.seeds), 'seed')}), {len(exp.runs) - len(todo)} complete already, "
                f"{len(todo)} to train{how}")

    @contextlib.contextmanager
    def claimed(self) -> Iterator[None]:
        """Hold the experiment directory's lock, with its experiment.yaml written: what
        every way of training the runs (here, or as cluster jobs) does first."""
        with exclusive(self.out, kind="experiment"):
            write_text(self.out / EXPERIMENT_FILE, dump_yaml(self.exp.source))
            yield

    def summary(self) -> str:
        """One line: arms, seeds, runs, and how many are done already."""
        done = len(self.exp.runs) - len(self.todo)
        where = f" into {self.out}" if self.out is not None else ""
        return (f"{self.exp.name}: {counted(len(self.exp.arms), 'arm')} × "
                f"{counted(len(self.exp.seeds), 'seed')} = {counted(len(self.exp.runs), 'run')}"
                f"{where}, {done} complete already; checked: "
                f"{', '.join(self.exp.arms)}")


def plan_experiment(exp: Experiment | str | Path, out: str | Path | None = None, *,
                    check_device: str | None = None) -> Plan:
    """Check everything `run_experiment` would need, writing nothing: each arm built once
    (data, model, layer names, mixing), the analysis settings against what every arm
    captures, and, with `out`, the directory and each run directory in it.

    `check_device`: build the arms on this device instead of their own (cluster jobs are
    checked on the machine that submits them, which may have no GPU)."""
    exp = exp if isinstance(exp, Experiment) else load_experiment(exp)
    out = Path(out) if out is not None else None
    if out is not None:
        check_experiment_dir(out, exp)
    built = {}  # each arm's first run, built (and so checked) once, before any training
    for arm in exp.arms:
        first = next(r for r in exp.runs if r.name == arm)
        if check_device is not None:
            first = dataclasses.replace(first, train=dataclasses.replace(first.train, device=check_device))
        try:
            built[run_path(out or "", first)] = setup(first)
        except UserError as err:  # said as the file's key, which the CLI locates
            raise in_arm(err, arm) from None
    check_analysis(exp, {s.cfg.name: (s.capture_layers, s.cfg.capture.splits) for s in built.values()})
    plain = {} if out is None else {run_path(out, r): to_plain(r) for r in exp.runs}
    states = {path: prepare_run_dir(path, config) for path, config in plain.items()}
    return Plan(exp, out, built, states, plain)


def run_experiment(exp: Experiment | str | Path, out: str | Path, *, progress: bool = True,
                   jobs: int | str = 1) -> ExperimentDir:
    """Train every (arm, seed) of the experiment (a file, or one already loaded) into
    `out`, `jobs` at a time; return the experiment directory (for the analysis)."""
    plan = plan_experiment(exp, out)
    exp, built, todo = plan.exp, plan.built, plan.todo
    n_jobs = job_count(jobs, todo) if todo else 1
    with plan.claimed():
        say(plan.todo_line(f", {n_jobs} at a time" if n_jobs > 1 else ""), show=progress)
        bar = progress_bar(total=len(todo), desc=f"{exp.name}: runs", unit="run", show=progress)
        if n_jobs == 1:
            for run in todo:
                path = plan.path(run)
                _, line = train_prepared(run, path, plan.plain[path], plan.states[path],
                                         progress=progress, built=built.pop(path, None))
                say(line, show=progress and line is not None)
                bar.update()
        else:
            built.clear()  # the workers build their own runs
            # Separate processes (spawned: forking a process that holds torch's threads is
            # unsafe), one thread each; the runs' own progress bars would interleave.
            threads = max(1, (os.cpu_count() or 1) // n_jobs)
            with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_train_in_worker, r, plan.path(r), plan.plain[plan.path(r)],
                                       plan.states[plan.path(r)], threads) for r in todo]
                try:
                    for future in as_completed(futures):
                        line = future.result()
                        say(line, show=progress and line is not None)
                        bar.update()
                except KeyboardInterrupt:
                    # Stop now, not after the runs in flight (they resume from their last
                    # checkpoint): a worker gets no SIGINT when only this process is sent one.
                    for process in list((getattr(pool, "_processes", None) or {}).values()):
                        process.terminate()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        bar.close()
    return plan.directory
