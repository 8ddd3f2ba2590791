"""What each `repflat` subcommand does, from parsed arguments to the library's calls.

Every command reads and checks its config (torch-free) before it imports the torch
side, so a typo answers at once. The library names parameters; the CLI's FLAGS table
(repflat.cli) says them as flags. Progress goes to stdout as one plain line per run and
per phase (a log, a notebook cell, CI see them), and under a terminal a bar too.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

from repflat.cli.launching import launcher_config
from repflat.errors import UserError, expected
from repflat.progress import say


def headless_figures() -> None:
    """Reports are files: draw them with Agg whatever display the machine has. Chosen
    here, by the command, before pyplot is imported; the library never selects a backend
    (a notebook keeps its own).

    matplotlib keeps its config and font cache in $MPLCONFIGDIR, else in the home
    directory (~/.config/matplotlib, ~/.cache/matplotlib); a command that reads someone
    else's directories writes nothing into the user's home, so unless the user set
    MPLCONFIGDIR the command gives matplotlib a private temporary directory, removed on
    exit (its font cache is rebuilt per command, a fraction of a second)."""
    if not os.environ.get("MPLCONFIGDIR") and "matplotlib" not in sys.modules:
        private = tempfile.mkdtemp(prefix="repflat-matplotlib-")
        atexit.register(shutil.rmtree, private, ignore_errors=True)
        os.environ["MPLCONFIGDIR"] = private
    import matplotlib

    matplotlib.use("Agg")


def _main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"  # under torchrun, say things once


def say_code(runs) -> None:
    """What `--check` imported of the user's own code (model.target), which training
    imports again: the config file names code, and the user should see which."""
    from repflat.config import TargetModel

    for target, path in dict.fromkeys((r.model.target, r.model.path) for r in runs
                                      if isinstance(r.model, TargetModel)):
        say(f"imported your model class {target} (module {target.partition(':')[0]}, "
            f"from {path} or sys.path), which runs its code", show=True)


def _tensorboard(args) -> None:
    """--tensorboard DIR: checked before anything is read or trained, then handed to every
    run, and to the processes --jobs starts, through the environment
    (repflat.training.live)."""
    if getattr(args, "tensorboard", None):
        from repflat.training.live import ENV, check_available

        check_available()
        os.environ[ENV] = str(Path(args.tensorboard).resolve())


def train(args) -> None:
    from repflat.config import is_experiment, load_run_config, read_yaml
    from repflat.config.loading import in_arm, located_file

    from repflat.config.overrides import parse_overrides

    _tensorboard(args)
    cfg = load_run_config(args.config, arm=args.arm, seed=args.seed,  # before torch loads
                          overrides=parse_overrides(args.overrides))
    # what only the built model tells (a torchvision model's layer names) is said at its
    # key in the file too
    with located_file(args.config):
        try:
            _train(args, cfg)
        except UserError as err:
            raise in_arm(err, cfg.name) if is_experiment(read_yaml(args.config)) else err


def _train(args, cfg) -> None:
    if args.check:
        from repflat.training.loop import setup

        built = setup(cfg)
        say_code([cfg])
        say(f"{args.config}: ok: {cfg.name} seed {cfg.seed}, {type(built.model).__name__} with "
            f"{sum(p.numel() for p in built.model.parameters()):,} parameters, captures "
            f"{', '.join(built.capture_layers)}; nothing trained", show=True)
        return
    if args.out is None:
        raise expected("out", "a run directory to train into (or --check)", None)
    from repflat.rundir.names import RunState
    from repflat.training.loop import train as train_run

    state = train_run(cfg, args.out, progress=not args.quiet, restart=args.restart)
    if _main_rank():
        said = {RunState.COMPLETE: "already complete", RunState.RESUME: "resumed from its "
                "checkpoint", RunState.NEW: "trained", RunState.RESTART: "trained"}
        print(f"{args.out}: {said[state]}")


def analysis_overrides(args) -> dict:
    """The analysis settings the command line sets (AnalysisConfig's field names)."""
    out = {}
    if args.split is not None:
        out["split"] = args.split
    if args.layers:
        out["layers"] = args.layers
    if args.epochs is not None:
        out["epochs"] = args.epochs
    if args.uncentered:
        out["center"] = False
    if args.scaled:
        out["scale"] = True
    if args.rtol is not None:  # checked with the other settings by AnalysisConfig
        out["rtol"] = args.rtol
    if args.nc1_mean is not None:
        out["nc1_mean"] = args.nc1_mean
    return out


def default_out(paths: list[str]) -> Path:
    """`--out` left out: one input's own analysis/ directory (an experiment's, a run's)."""
    if len(paths) != 1:
        raise expected("out", "a directory for the analysis of several inputs", None)
    return Path(paths[0]) / "analysis"


def analyze(paths, out, overrides: dict, quiet: bool, figures=None, derived: bool = False) -> None:
    headless_figures()
    from repflat.analysis.report.build import ReportOptions
    from repflat.analysis.report.outputs import analyze as analyze_runs

    if out is None:
        out, derived = default_out(list(paths)), True
    written = analyze_runs(paths, out, overrides=overrides, progress=not quiet, derived=derived,
                           options=ReportOptions(figures=figures))
    report = next((p for p in written if p.name == "report.html"), None)
    if not quiet:
        print(f"wrote {len(written)} files to {out}" + (f"; open {report}" if report else ""))


def extract(args) -> None:
    from repflat.capture.extract import ExtractOptions, extract_to
    from repflat.config import DataConfig
    from repflat.strict import parse
    from repflat.rundir.names import RunState
    from repflat.training.models.sources import run_model, torchvision_model

    epoch = 0
    if args.seed is not None and args.seed < 0:
        raise expected("seed", "an integer >= 0", args.seed)
    if args.run_dir:
        given = [n for n in ("weights", "num_classes", "seed") if getattr(args, n) is not None]
        if given:
            raise UserError("expected only with --model, not with --run-dir",
                            argument=', '.join(given))
        model, cfg, epoch = run_model(args.run_dir)
        source = {"source": "run", "path": str(args.run_dir)}
        # the features are the run's: its arm, strategy and seed, unless said otherwise
        identity = {"arm": cfg.name, "strategy": cfg.mixing.strategy, "seed": cfg.seed}
        # the run may be someone else's: its config must not make repflat fetch anything
        # or create folders outside --out (its root may name any directory); --download
        # is the user's own word for it
        data = (dataclasses.replace(cfg.data, download=False)
                if getattr(cfg.data, "download", False) else cfg.data)
    else:
        model = torchvision_model(args.model, args.weights, args.num_classes, seed=args.seed)
        identity = {"arm": None, "strategy": None, "seed": args.seed}
        source = {"source": "torchvision", "name": args.model, "weights": args.weights,
                  "num_classes": args.num_classes}
        data = None
    if args.data or data is None or args.root or args.download:
        fields = {"name": args.data or (data.name if data is not None else "digits")}
        fields |= {"root": args.root} if args.root else {}
        fields |= {"download": True} if args.download else {}
        data = parse(DataConfig, fields, "data")
    state = extract_to(model, args.layers, data, args.out, ExtractOptions(
        splits=args.split, arm=args.arm or identity["arm"],
        strategy=args.strategy or identity["strategy"], seed=identity["seed"], epoch=epoch,
        batch_size=args.batch_size,
        reduce=args.reduce, dtype=args.dtype, device=args.device, workers=args.workers,
        resume=args.resume, restart=args.restart, progress=not args.quiet, source=source,
        discriminative=args.discriminative))
    if not args.quiet and _main_rank():
        done = ("already complete, nothing to do" if state is RunState.COMPLETE
                else f"extracted {', '.join(args.layers)} for {', '.join(args.split)}")
        print(f"{args.out}: {done}")


def report(args) -> None:
    headless_figures()
    from repflat.analysis.report.build import ReportOptions, replace
    from repflat.analysis.report.outputs import report as write_reports

    embeddings = None if args.embeddings is None else tuple(
        m for m in args.embeddings if m != "none")
    options = replace(ReportOptions(), embeddings=embeddings, embedding_layer=args.embedding_layer,
                      max_samples=args.max_samples, metric=args.metric,
                      embed_images=False if args.link_images else None, figures=args.figures)
    written = write_reports(args.paths, args.out, options=options, progress=not args.quiet)
    if not args.quiet:
        for page in (p for p in written if p.name == "report.html"):
            print(f"wrote {page}")


def listing(exp, out=None) -> str:
    """The arms of an experiment, one a line with their swept values, and the run count;
    with `out`, each arm's complete runs (read from run.json; torch is not needed)."""
    from repflat.rundir.experiment import run_path
    from repflat.rundir.names import Status
    from repflat.rundir.run import read_status

    def complete(arm: str) -> str:
        if out is None:
            return ""
        done = sum(read_status(run_path(out, r)) is Status.COMPLETE
                   for r in exp.runs if r.name == arm)
        return f"  [{done}/{len(exp.seeds)} complete]"

    lines = []
    for arm in exp.arms:
        point = exp.points.get(arm)
        values = ("  " + " ".join(f"{k}={v}" for k, v in point.values.items())) if point else ""
        lines.append(f"{arm}{values}{complete(arm)}")
    from repflat.progress import counted

    seeds = ", ".join(map(str, exp.seeds))
    lines.append(f"{exp.name}: {counted(len(exp.arms), 'arm')} × {counted(len(exp.seeds), 'seed')}"
                 f" ({seeds}) = {counted(len(exp.runs), 'run')}")
    return "\n".join(lines)


def run(args) -> None:
    from repflat.config import load_experiment
    from repflat.config.loading import located_file

    from repflat.config.overrides import parse_overrides

    _tensorboard(args)
    exp = load_experiment(args.experiment, overrides=parse_overrides(args.overrides))  # before torch
    with located_file(args.experiment):  # and what only the built models tell, at its key
        _run(args, exp)


def _run(args, exp) -> None:
    if args.list:
        print(listing(exp, args.out))
        return
    launcher = launcher_config(args, exp)  # and a wrong launcher option
    cluster = "slurm" if args.launcher == "submitit" else "local"
    from repflat.rundir.experiment import ExperimentDir
    from repflat.training.sweep import plan_experiment, run_experiment

    if args.check:
        if launcher is not None:  # the jobs' options too; built on the CPU like a submission
            from repflat.training.launch import check_launcher

            check_launcher(exp, launcher, cluster)
        plan = plan_experiment(exp, args.out, check_device="cpu" if launcher else None)
        say_code(exp.runs)
        say(plan.summary() + "; nothing trained", show=True)
        return
    if args.out is None:
        raise expected("out", "an experiment directory to train into (or --check)", None)
    if launcher is not None:
        from repflat.training.launch import launch_experiment

        launch_experiment(exp, args.out, launcher, cluster=cluster, wait=not args.no_wait,
                          progress=not args.quiet)
        if args.no_wait:
            return
        directory = ExperimentDir(Path(args.out), exp)
    else:
        directory = run_experiment(exp, args.out, progress=not args.quiet, jobs=args.jobs)
    if not args.no_analysis:  # the experiment as parsed above: its file is not read again
        analyze([directory], Path(args.out) / "analysis", {}, args.quiet, figures=args.figures,
                derived=True)
