"""`repflat run`: train every arm of an experiment for every seed, into one directory.

    OUT/experiment.yaml        the experiment file as given
    OUT/runs/<arm>-seed<s>/    one run directory per arm and seed
    OUT/analysis/              written by the analysis step (see analysis.pipeline)

Every run is checked before the first one trains (layer names, directories), so a
mistake in the last arm does not surface after an hour. Re-running the same experiment
skips runs already complete; a directory holding a different experiment is refused.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from repflat.config import Experiment, load_experiment, parse_experiment
from repflat.errors import UserError, expected
from repflat.lock import exclusive, visible_entries
from repflat.rundir import EXPERIMENT_FILE, prepare_run_dir
from repflat.store import write_text
from repflat.train import setup, train
from repflat.typed import to_plain


def check_experiment_dir(out: Path, exp: Experiment) -> None:
    if out.exists() and not out.is_dir():
        raise expected("--out", "a directory", f"{out} (a file)")
    if not out.exists() or not visible_entries(out):
        return
    if not (out / EXPERIMENT_FILE).is_file():
        raise expected("--out", "an empty directory or one written by `repflat run`",
                       f"{out} (no {EXPERIMENT_FILE})")
    try:
        previous = parse_experiment(yaml.safe_load((out / EXPERIMENT_FILE).read_text()))
    except (UserError, yaml.YAMLError, AttributeError):
        raise expected("--out", "a directory written by `repflat run`",
                       f"{out} (its {EXPERIMENT_FILE} is unreadable)") from None
    if previous.name != exp.name:
        raise UserError(f"--out: {out} holds experiment {previous.name!r}, not {exp.name!r}; "
                        "choose another directory")


def run_experiment(path: str | Path, out: str | Path, *, progress: bool = True) -> Experiment:
    """Train every (arm, seed) of the experiment file `path` into `out`."""
    exp = load_experiment(path)
    out = Path(out)
    check_experiment_dir(out, exp)
    for arm in exp.arms:  # build each arm once: a bad layer name fails before any training
        setup(next(r for r in exp.runs if r.name == arm))
    states = {exp.run_dirname(r): prepare_run_dir(out / "runs" / exp.run_dirname(r), to_plain(r))
              for r in exp.runs}
    with exclusive(out):
        write_text(out / EXPERIMENT_FILE, yaml.safe_dump(exp.source, sort_keys=False))
        todo = [r for r in exp.runs if states[exp.run_dirname(r)] != "complete"]
        if progress and len(todo) < len(exp.runs):
            tqdm.write(f"{len(exp.runs) - len(todo)} of {len(exp.runs)} runs already complete",
                       file=sys.stderr)
        for run in tqdm(todo, desc=f"{exp.name}: runs", unit="run", disable=not progress,
                        dynamic_ncols=True):
            train(run, out / "runs" / exp.run_dirname(run), progress=progress)
    return exp
