"""The `repflat` command line: its subcommands, their flags, defaults and examples.

Torch-free: building the parser, printing help and reading a config are done before
anything imports torch, so `--help` and a typo in a YAML file answer at once.
"""
from __future__ import annotations

import argparse

from repflat.version import __version__
from repflat.cli.launching import add_launcher_flags
from repflat.config.schema import FEATURE_DTYPES, REDUCTIONS
from repflat.rundir.names import FIGURES

FIGURE_NAMES = tuple(FIGURES)  # the contract declares them; the analysis draws them


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; each option's default appended to its help,
    unless it has none worth saying (None, False) or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or action.option_strings == [] or isinstance(default, bool)):
            return text
        shown = ",".join(default) if isinstance(default, (tuple, list)) else default
        return f"{text} (default: {shown})" if text else f"default: {shown}"


TENSORBOARD = ("write each run's per-epoch metrics as TensorBoard scalars under DIR/<run> "
               "while it trains (`tensorboard --logdir DIR`); needs pip install "
               "'repflat[tensorboard]'; metrics.csv is written either way")

def _csv(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


def _jobs(value: str) -> int | str:
    return value if value == "auto" else int(value)


def _figures(value: str) -> tuple[str, ...]:
    """`none`, `all`, or names from FIGURE_NAMES (checked by the report's options)."""
    names = _csv(value)
    if names == ("all",):
        return FIGURE_NAMES
    return () if names == ("none",) else names


OVERRIDES = ("set a config key, as strictly as the file does (e.g. train.epochs=5 "
             "mixing.alpha=0.5); in an experiment a run key applies to every arm; recorded "
             "in each run's config.yaml")

EXAMPLES = {
    "train": """examples:
  repflat train experiments/spirals.yaml --arm manifold_mixup --seed 1 --out runs/mm1
  repflat train runs/mm1/config.yaml --out runs/mm1-again   # a run directory's config is a run config
  repflat train my.yaml --check                             # validate (layer names too), train nothing
  repflat train my.yaml train.epochs=5 mixing.alpha=0.5 --out runs/quick   # keys set on the command line""",
    "analyze": """examples:
  repflat analyze results/spirals                  # an experiment directory: all its runs, into results/spirals/analysis
  repflat analyze runs/erm-seed0 runs/mm-seed0 --out cmp --layers fc1,bottleneck
  repflat analyze feats/resnet18 --figures none    # tables and report only, in seconds""",
    "extract": """examples:
  repflat extract --model resnet18 --weights my.pt --layers layer3,layer4 --data cifar10 \\
      --root ~/data --split train,test --reduce avg --out feats/r18
  repflat extract --run-dir results/spirals/runs/erm-seed0 --layers fc1,bottleneck --out feats/erm
  repflat extract --model resnet18 --seed 0 --num-classes 2 --layers fc --data imagefolder \\
      --root shapes/ --out feats/random-init      # a random model, the same every time""",
    "run": """examples:
  repflat run experiments/spirals.yaml --out results/spirals --jobs auto
  repflat run experiments/spirals.yaml --check     # every arm built and checked, nothing trained
  repflat run experiments/spirals.yaml train.epochs=5 capture.epochs=[] seeds=[0] --check   # key=value
  repflat run experiments/flattening_sweep_spirals.yaml --list   # a grid's arms and run count
  repflat run experiments/digits_bottleneck.yaml --out results/digits --no-analysis
  repflat run experiments/cifar10_preactresnet18.yaml --out results/c10 --launcher submitit \\
      --partition gpu --gpus 1 --cpus 8 --time 720   # one SLURM job per run; rerun to resubmit""",
    "report": """examples:
  repflat report results/spirals                   # into results/spirals/analysis
  repflat report runs/erm-seed0                    # one run: into runs/erm-seed0/analysis
  repflat report results/spirals --embeddings pca,tsne,umap --metric effective_rank --out shared/""",
}


def _sub(sub, name: str, **kwargs) -> Parser:
    return sub.add_parser(name, formatter_class=Help, epilog=EXAMPLES.get(name), **kwargs)


def _figures_flag(parser: Parser) -> None:
    parser.add_argument("--figures", type=_figures, metavar="none|all|NAME,...",
                        help="figures to draw: none (tables and report only), all (the "
                        f"default), or some of {', '.join(FIGURE_NAMES)}")


def build_parser() -> Parser:
    p = Parser(prog="repflat", formatter_class=Help,
               description="What a regularizer does to the hidden representations of a "
               "network: train, capture, analyse (Verma et al. 2019, Manifold Mixup).",
               epilog="Run `repflat COMMAND --help` for a command's options and examples.")
    p.add_argument("--version", action="version", version=f"repflat {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    t = _sub(sub, "train", help="train one run into a run directory",
             description="Train one run. CONFIG is a run config (e.g. a run directory's "
             "config.yaml) or an experiment file with --arm/--seed.")
    t.add_argument("config", metavar="CONFIG", help="YAML run config or experiment file")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES)
    t.add_argument("--out", metavar="RUN", help="run directory to create (needed unless --check)")
    t.add_argument("--arm", help="arm of an experiment file (needed when it has several)")
    t.add_argument("--seed", type=int, help="seed (default: the config's, or the experiment's first)")
    t.add_argument("--restart", action="store_true",
                   help="start an unfinished run over instead of resuming it from its checkpoint")
    t.add_argument("--check", action="store_true",
                   help="build and check everything (data, model, layer names), train nothing")
    t.add_argument("--tensorboard", metavar="DIR", help=TENSORBOARD)
    t.add_argument("--quiet", action="store_true", help="no progress bar or summary line")

    a = _sub(sub, "analyze", help="spectra, flattening metrics, figures and a report",
             description="Analyse saved features. RUN is a run directory or an experiment "
             "directory written by `repflat run` (all its runs).")
    a.add_argument("runs", nargs="+", metavar="RUN", help="run or experiment directories")
    a.add_argument("--out", metavar="DIR", help="directory for tables, figures, report "
                   "(default for one RUN: RUN/analysis)")
    a.add_argument("--split", help="split to analyse (default: train, or the only split saved)")
    a.add_argument("--layers", type=_csv, help="comma-separated layers (default: all saved)")
    a.add_argument("--epochs", choices=("final", "all"), help="last saved epoch, or all "
                   "(default: final, or the experiment's setting)")
    a.add_argument("--uncentered", action="store_true",
                   help="spectra of the raw class matrices instead of the centred ones")
    a.add_argument("--scaled", action="store_true",
                   help="divide each spectrum by √n, n the class's rows (default: undivided)")
    a.add_argument("--rtol", type=float, help="numerical rank tolerance, relative to σ₁ (default: 0.01)")
    a.add_argument("--nc1-mean", choices=("global", "class_means"), help="centre of the "
                   "between-class covariance in NC1: the mean of all samples (Papyan et al.'s "
                   "text; the default) or of the class means (their code); equal on balanced classes")
    _figures_flag(a)
    a.add_argument("--quiet", action="store_true", help="no progress lines")

    e = _sub(sub, "extract", help="save hidden features of any model to a run directory",
             description="Capture named layers of a model over a data set, streaming to "
             "OUT/features in the run-directory format (readable by `analyze`). Run it under "
             "`torchrun --nproc_per_node N` to split the work.")
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
                   help="splits: train (what `analyze` reads by default), test, or train,test")
    e.add_argument("--out", required=True, metavar="DIR", help="output directory")
    e.add_argument("--batch-size", type=int, default=256, help="examples per forward pass")
    e.add_argument("--reduce", default="flatten", choices=REDUCTIONS,
                   help="conv maps (n, C, H, W): keep every value, or average/max over H, W")
    e.add_argument("--dtype", default="float32", choices=FEATURE_DTYPES, help="storage type")
    e.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="where to run")
    e.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    e.add_argument("--arm", help="the arm these features stand for in tables (default: "
                   "the run's with --run-dir, else the output directory's name)")
    e.add_argument("--strategy", help="its strategy: none (ERM), input_mixup, manifold_mixup "
                   "or a word of your own (default: the run's with --run-dir)")
    e.add_argument("--discriminative", action="store_true",
                   help="also save each layer's discriminative summary, which Corollary 1's "
                   "measures need (one forward and K backward passes per batch)")
    again = e.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted extraction")
    again.add_argument("--restart", action="store_true", help="discard an interrupted extraction")
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    r = _sub(sub, "run", help="train every arm and seed of an experiment, then analyse",
             description="Train every arm × seed of EXPERIMENT into DIR/runs, then write the "
             "analysis to DIR/analysis. Complete runs are skipped on re-run, unfinished ones "
             "resume from their checkpoints.")
    r.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML (experiments/*.yaml)")
    r.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES)
    r.add_argument("--out", metavar="DIR", help="experiment directory (needed unless --check)")
    r.add_argument("--no-analysis", action="store_true", help="train only")
    r.add_argument("--jobs", default=1, type=_jobs,
                   help="runs trained at once, each in its own process with CPUs/jobs threads; "
                   "auto: one per CPU for runs on the CPU, one on a GPU. A different thread "
                   "count can change the last bits of wide layers' arithmetic")
    r.add_argument("--check", action="store_true", help="build and check every arm (layer "
                   "names, analysis settings) and the output directory, train nothing")
    r.add_argument("--list", action="store_true", help="print the arms (a grid expanded) and "
                   "the number of runs, and with --out how many are complete; train nothing")
    _figures_flag(r)
    r.add_argument("--tensorboard", metavar="DIR", help=TENSORBOARD)
    r.add_argument("--quiet", action="store_true", help="no progress bars or lines")
    add_launcher_flags(r)

    rep = _sub(sub, "report", help="one HTML and Markdown report per experiment",
               description="Write report.html and report.md (figures beside them) for each "
               "experiment directory (into DIR/analysis), analysis directory (in place) or, "
               "together, the run directories given (a single run: into RUN/analysis). Tables "
               "already written are reused; missing ones are computed.")
    rep.add_argument("paths", nargs="+", metavar="PATH", help="experiment, analysis or run directories")
    rep.add_argument("--out", metavar="DIR", help="write each report to DIR/<experiment name>/ "
                     "(with its tables) instead of in place")
    rep.add_argument("--embeddings", type=_csv, metavar="M,...",
                     help="embedding methods: pca, tsne, umap (slow to import), or none "
                     "(default: pca,tsne)")
    rep.add_argument("--embedding-layer", metavar="LAYER",
                     help="layer to embed (default: the last spectra layer, else the last "
                     "analysed layer wider than 2)")
    rep.add_argument("--max-samples", type=int, metavar="N",
                     help="samples per embedding panel; more are subsampled at random (default: 2000)")
    rep.add_argument("--metric", help="metric of the strategy × layer heat map (default: "
                     "along_spread, scale-free; effective_rank without discriminative summaries; "
                     "any metric of summary.csv, e.g. the paper's raw sum_other_singular_values)")
    rep.add_argument("--link-images", action="store_true",
                     help="link the images beside report.html instead of carrying them inside it")
    _figures_flag(rep)
    rep.add_argument("--quiet", action="store_true", help="no progress lines")
    return p
