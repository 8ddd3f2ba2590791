"""The `repflat` command.

    repflat train CONFIG --out RUN          train one run (a run config, or one arm of an experiment)
    repflat analyze RUN... --out DIR        spectra, flattening tables, figures, report
    repflat run EXPERIMENT --out DIR        every arm × seed, then the analysis into DIR/analysis
    repflat extract --model M --layers L --out DIR   features of any model, streamed to disk
    repflat report PATH... [--out DIR]      one HTML (and Markdown) report per experiment

A user's mistake is one line on stderr and exit status 2; nothing on disk is changed by
a command that refuses. The CLI is the composition root: it is the one place that
calls both the torch side (train) and the analysis side, each imported only by the
subcommand that needs it.
"""
from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import warnings

from repflat import __version__
from repflat.config.schema import FEATURE_DTYPES, REDUCTIONS
from repflat.errors import RepflatWarning, UserError, expected


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


def build_parser() -> Parser:
    p = Parser(prog="repflat", description="What a regularizer does to the hidden "
               "representations of a network: train, capture, analyse (Verma et al. 2019).")
    p.add_argument("--version", action="version", version=f"repflat {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train one run into a run directory",
                       description="Train one run. CONFIG is a run config (e.g. a run "
                       "directory's config.yaml) or an experiment file with --arm/--seed.")
    t.add_argument("config", metavar="CONFIG", help="YAML run config or experiment file")
    t.add_argument("--out", required=True, metavar="RUN", help="run directory to create")
    t.add_argument("--arm", help="arm of an experiment file (needed when it has several)")
    t.add_argument("--seed", type=int, help="seed (default: the config's, or the experiment's first)")
    t.add_argument("--restart", action="store_true",
                   help="start an unfinished run over instead of resuming it from its checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    a = sub.add_parser("analyze", help="spectra, flattening metrics, figures and a report",
                       description="Analyse saved features. RUN is a run directory or an "
                       "experiment directory written by `repflat run` (all its runs).")
    a.add_argument("runs", nargs="+", metavar="RUN", help="run or experiment directories")
    a.add_argument("--out", required=True, metavar="DIR", help="directory for tables, figures, report")
    a.add_argument("--split", help="split to analyse (default: train)")
    a.add_argument("--layers", type=_csv, help="comma-separated layers (default: all saved)")
    a.add_argument("--epochs", choices=("final", "all"), help="last saved epoch (default) or all")
    a.add_argument("--uncentered", action="store_true",
                   help="spectra of the raw class matrices instead of the centred ones")
    a.add_argument("--scaled", action="store_true",
                   help="divide each spectrum by √n, n the class's rows (default: undivided)")
    a.add_argument("--rtol", type=float, help="numerical rank tolerance, relative to σ₁ (default 0.01)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("extract", help="save hidden features of any model to a run directory",
                       description="Capture named layers of a model over a data set, streaming "
                       "to OUT/features in the run-directory format (readable by `analyze`). "
                       "Run it under `torchrun --nproc_per_node N` to split the work.")
    src = e.add_mutually_exclusive_group(required=True)
    # Not "--run": under torchrun that prefix clashes with torchrun's own --run-path.
    src.add_argument("--run-dir", metavar="RUN", help="a repflat run directory (its trained model)")
    src.add_argument("--model", metavar="NAME", help="a torchvision classifier, e.g. resnet18")
    e.add_argument("--weights", metavar="FILE", help="state dict or checkpoint for --model (never downloaded)")
    e.add_argument("--num-classes", type=int, help="classifier size for --model (default: from --weights, else 1000)")
    e.add_argument("--seed", type=int, help="draw --model's random initialisation (no --weights) "
                   "with this seed, the same model every time; recorded in extract.yaml")
    e.add_argument("--layers", type=_csv, required=True,
                   help="comma-separated module names (named_modules) or FX node names")
    e.add_argument("--data", help="digits (default; offline), spirals, mnist, cifar10, cifar100, "
                   "svhn or imagefolder; with --run-dir, the run's data by default")
    e.add_argument("--root", help="data directory (torchvision layout; imagefolder: holds train/ and val/)")
    e.add_argument("--download", action="store_true", help="download a torchvision data set into --root")
    e.add_argument("--split", type=_csv, default=("train",),
                   help="splits: train (default, what `analyze` reads by default), test, or train,test")
    e.add_argument("--out", required=True, metavar="DIR", help="output directory")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--reduce", default="flatten", choices=REDUCTIONS,
                   help="conv maps (n, C, H, W): keep every value, or average/max over H, W")
    e.add_argument("--dtype", default="float32", choices=FEATURE_DTYPES)
    e.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    e.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    again = e.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted extraction")
    again.add_argument("--restart", action="store_true", help="discard an interrupted extraction")
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("run", help="train every arm and seed of an experiment, then analyse",
                       description="Train every arm × seed of EXPERIMENT into DIR/runs, then "
                       "write the analysis to DIR/analysis. Complete runs are skipped on re-run.")
    r.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML (experiments/*.yaml)")
    r.add_argument("--out", required=True, metavar="DIR", help="experiment directory")
    r.add_argument("--no-analysis", action="store_true", help="train only")
    r.add_argument("--jobs", default=1, type=lambda v: v if v == "auto" else int(v),
                   help="runs trained at once, each in its own process with CPUs/jobs threads "
                   "(default 1); auto: one per CPU for runs on the CPU, one on a GPU. A "
                   "different thread count can change the last bits of wide layers' arithmetic")
    r.add_argument("--quiet", action="store_true", help="no progress bars")

    rep = sub.add_parser("report", help="one HTML and Markdown report per experiment",
                         description="Write report.html and report.md (figures beside them) for "
                         "each experiment directory (into DIR/analysis), analysis directory (in "
                         "place) or, together, the run directories given (needs --out). Tables "
                         "already written are reused; missing ones are computed.")
    rep.add_argument("paths", nargs="+", metavar="PATH",
                     help="experiment, analysis or run directories")
    rep.add_argument("--out", metavar="DIR", help="write each report to DIR/<experiment name>/ "
                     "(with its tables) instead of in place")
    rep.add_argument("--embeddings", type=_csv, metavar="M,...",
                     help="embedding methods: pca, tsne, umap (slow to import), or none "
                     "(default: pca,tsne)")
    rep.add_argument("--embedding-layer", metavar="LAYER",
                     help="layer to embed (default: the last spectra layer, else the last "
                     "analysed layer wider than 2)")
    rep.add_argument("--max-samples", type=int, metavar="N",
                     help="samples per embedding panel; more are subsampled at random (default 2000)")
    rep.add_argument("--metric", help="metric of the strategy × layer heat map "
                     "(default: sum_other_singular_values; any metric of summary.csv)")
    rep.add_argument("--link-images", action="store_true",
                     help="link the images beside report.html instead of carrying them inside it")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _analysis_overrides(args) -> dict:
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
    return out


def _headless_figures() -> None:
    """Reports are files: draw them with Agg whatever display the machine has. Chosen
    here, by the command, before pyplot is imported; the library never selects a backend
    (a notebook keeps its own)."""
    import matplotlib

    matplotlib.use("Agg")


def _analyze(paths, out, overrides: dict, quiet: bool, derived: bool = False) -> None:
    _headless_figures()
    from repflat.analysis.report.outputs import analyze

    written = analyze(paths, out, overrides=overrides, progress=not quiet, derived=derived)
    report = next((p for p in written if p.name == "report.html"), None)
    if not quiet:
        print(f"wrote {len(written)} files to {out}" + (f"; open {report}" if report else ""))


def _extract(args) -> None:
    from repflat.capture.extract import extract_to
    from repflat.config import DataConfig
    from repflat.config._strict import parse
    from repflat.rundir.names import RunState
    from repflat.training.models.sources import run_model, torchvision_model

    epoch = 0
    if args.seed is not None and args.seed < 0:
        raise expected("seed", "an integer >= 0", args.seed)
    if args.run_dir:
        given = [n for n in ("weights", "num_classes", "seed") if getattr(args, n) is not None]
        if given:
            raise UserError(f"{', '.join(given)}: expected only with --model, not with --run-dir")
        model, cfg, epoch = run_model(args.run_dir)
        source = {"source": "run", "path": str(args.run_dir)}
        data = cfg.data
    else:
        model = torchvision_model(args.model, args.weights, args.num_classes, seed=args.seed)
        source = {"source": "torchvision", "name": args.model, "weights": args.weights,
                  "num_classes": args.num_classes}
        data = None
    if args.data or data is None or args.root or args.download:
        fields = {"name": args.data or (data.name if data is not None else "digits")}
        fields |= {"root": args.root} if args.root else {}
        fields |= {"download": True} if args.download else {}
        data = parse(DataConfig, fields, "data")
    state = extract_to(model, args.layers, data, args.out, splits=args.split, seed=args.seed,
                       epoch=epoch, batch_size=args.batch_size, reduce=args.reduce,
                       dtype=args.dtype, device=args.device, workers=args.workers,
                       resume=args.resume, restart=args.restart, progress=not args.quiet,
                       source=source)
    if not args.quiet and os.environ.get("RANK", "0") == "0":
        done = ("already complete, nothing to do" if state is RunState.COMPLETE
                else f"extracted {', '.join(args.layers)} for {', '.join(args.split)}")
        print(f"{args.out}: {done}")


def _report(args) -> None:
    _headless_figures()
    from repflat.analysis.report.build import ReportOptions, replace
    from repflat.analysis.report.outputs import report

    embeddings = None if args.embeddings is None else tuple(
        m for m in args.embeddings if m != "none")
    options = replace(ReportOptions(), embeddings=embeddings, embedding_layer=args.embedding_layer,
                      max_samples=args.max_samples, metric=args.metric,
                      embed_images=False if args.link_images else None)
    written = report(args.paths, args.out, options=options, progress=not args.quiet)
    if not args.quiet:
        for page in (p for p in written if p.name == "report.html"):
            print(f"wrote {page}")


FLAGS = {  # library parameter -> the command's flag or argument, per command
    "train": {"out": "--out", "arm": "--arm", "seed": "--seed"},
    "analyze": {"paths": "RUN", "out": "--out", "split": "--split", "layers": "--layers",
                "epochs": "--epochs", "center": "--uncentered", "scale": "--scaled",
                "rtol": "--rtol"},
    "extract": {"out": "--out", "run_dir": "--run-dir", "model": "--model", "weights": "--weights",
                "num_classes": "--num-classes", "layers": "--layers", "splits": "--split",
                "batch_size": "--batch-size", "reduce": "--reduce", "dtype": "--dtype",
                "device": "--device", "workers": "--workers", "seed": "--seed",
                "resume": "--resume", "restart": "--restart"},
    "run": {"out": "--out", "jobs": "--jobs", "paths": "DIR"},
    "report": {"paths": "PATH", "out": "--out", "embeddings": "--embeddings",
               "embedding_layer": "--embedding-layer", "max_samples": "--max-samples",
               "metric": "--metric"},
}
_LEAD = re.compile(r"^([a-z_]+(?:, [a-z_]+)*)(?=[: ])")


def as_flags(message: str, command: str) -> str:
    """A library error, which names parameters (`batch_size: expected ...`), as the command
    line says it (`--batch-size: expected ...`); config keys and the rest pass as they are."""
    names = FLAGS.get(command, {})
    match = _LEAD.match(message)
    if not match or not all(n in names for n in match.group(1).split(", ")):
        return message
    flags = ", ".join(names[n] for n in match.group(1).split(", "))
    return flags + message[match.end():]


def environment_error(err: OSError) -> str:
    """One line for an operating-system refusal, saying what could not be done."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {reason} (choose a writable --out)"
    if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"no space to write{where}: {reason}; free some space and rerun (finished runs are kept)"
    return f"{reason}:{where}" if where else reason


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always", RepflatWarning)
        code = _dispatch(args)
    for w in heard:
        if issubclass(w.category, RepflatWarning):
            print("repflat: warning: " + " ".join(str(w.message).split()), file=sys.stderr)
        else:  # other libraries' warnings pass through as they would have
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return code


def _dispatch(args) -> int:
    try:
        if args.command == "train":
            from repflat.config import load_run_config
            from repflat.rundir.names import RunState
            from repflat.training.loop import train

            cfg = load_run_config(args.config, arm=args.arm, seed=args.seed)
            state = train(cfg, args.out, progress=not args.quiet, restart=args.restart)
            if os.environ.get("RANK", "0") == "0":  # under torchrun, say it once
                said = {RunState.COMPLETE: "already complete", RunState.RESUME: "resumed from its "
                        "checkpoint", RunState.NEW: "trained", RunState.RESTART: "trained"}
                print(f"{args.out}: {said[state]}")
        elif args.command == "analyze":
            _analyze(args.runs, args.out, _analysis_overrides(args), args.quiet)
        elif args.command == "extract":
            _extract(args)
        elif args.command == "report":
            _report(args)
        elif args.command == "run":
            from pathlib import Path

            from repflat.training.sweep import run_experiment

            run_experiment(args.experiment, args.out, progress=not args.quiet, jobs=args.jobs)
            if not args.no_analysis:
                _analyze([args.out], Path(args.out) / "analysis", {}, args.quiet, derived=True)
    except UserError as err:
        print("repflat: error: " + as_flags(" ".join(str(err).split()), args.command), file=sys.stderr)
        return 2
    except OSError as err:  # the environment refused: a full disk, a read-only directory
        print("repflat: error: " + environment_error(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repflat: interrupted", file=sys.stderr)
        return 130
    return 0
