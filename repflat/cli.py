"""The `repflat` command.

    repflat train CONFIG --out RUN          train one run (a run config, or one arm of an experiment)
    repflat analyze RUN... --out DIR        spectra, flattening tables, figures, report
    repflat run EXPERIMENT --out DIR        every arm × seed, then the analysis into DIR/analysis
    repflat report PATH... [--out DIR]      one HTML (and Markdown) report per experiment

A user's mistake is one line on stderr and exit status 2; nothing on disk is changed by
a command that refuses. The CLI is the composition root: it is the one place that
calls both the torch side (train) and the analysis side, each imported only by the
subcommand that needs it.
"""
from __future__ import annotations

import argparse
import sys

from repflat import __version__
from repflat.errors import UserError


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
    a.add_argument("--rtol", type=float, help="numerical rank tolerance, relative to σ₁ (default 0.01)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("run", help="train every arm and seed of an experiment, then analyse",
                       description="Train every arm × seed of EXPERIMENT into DIR/runs, then "
                       "write the analysis to DIR/analysis. Complete runs are skipped on re-run.")
    r.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML (experiments/*.yaml)")
    r.add_argument("--out", required=True, metavar="DIR", help="experiment directory")
    r.add_argument("--no-analysis", action="store_true", help="train only")
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
    if args.rtol is not None:
        if not 0 < args.rtol < 1:
            raise UserError(f"--rtol: expected a number in (0, 1), got {args.rtol!r}")
        out["rtol"] = args.rtol
    return out


def _analyze(paths, out, overrides: dict, quiet: bool) -> None:
    from analysis.pipeline import analyze

    written = analyze(paths, out, overrides=overrides, progress=not quiet)
    report = next((p for p in written if p.name == "report.html"), None)
    if not quiet:
        print(f"wrote {len(written)} files to {out}" + (f"; open {report}" if report else ""))


def _report(args) -> None:
    from analysis.document import ReportOptions, replace
    from analysis.pipeline import report

    embeddings = None if args.embeddings is None else tuple(
        m for m in args.embeddings if m != "none")
    options = replace(ReportOptions(), embeddings=embeddings, embedding_layer=args.embedding_layer,
                      max_samples=args.max_samples, metric=args.metric,
                      embed_images=False if args.link_images else None)
    written = report(args.paths, args.out, options=options, progress=not args.quiet)
    if not args.quiet:
        for page in (p for p in written if p.name == "report.html"):
            print(f"wrote {page}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            from repflat.config import load_run_config
            from repflat.train import train

            cfg = load_run_config(args.config, arm=args.arm, seed=args.seed)
            state = train(cfg, args.out, progress=not args.quiet)
            print(f"{args.out}: " + ("already complete" if state == "complete" else "trained"))
        elif args.command == "analyze":
            _analyze(args.runs, args.out, _analysis_overrides(args), args.quiet)
        elif args.command == "report":
            _report(args)
        elif args.command == "run":
            from pathlib import Path

            from repflat.experiment import run_experiment

            run_experiment(args.experiment, args.out, progress=not args.quiet)
            if not args.no_analysis:
                _analyze([args.out], Path(args.out) / "analysis", {}, args.quiet)
    except UserError as err:
        print("repflat: error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repflat: interrupted", file=sys.stderr)
        return 130
    return 0
