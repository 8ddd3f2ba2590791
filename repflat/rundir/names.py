"""Every name of the run-directory format (format 1), in one place.

The run directory is the contract between the torch side (writers) and the numpy side
(readers), and with other tools that write features for repflat to analyse. Writers and
readers import these names; none retypes them. README, "The run directory", documents
the same names for people.
"""
from __future__ import annotations

from enum import Enum

from repflat.config.strategies import STRATEGIES, Strategy, strategy  # noqa: F401 - re-exported
from repflat.safenames import safe_name

FORMAT = 2
"""The `format` number in run.json, the manifest and analysis.json. Format 2 adds the
discriminative summaries (the manifest's `discriminative` list) and the premise columns
of metrics.csv; everything of format 1 reads as it did."""
READABLE_FORMATS = (1, 2)
"""Formats a reader accepts."""

# ---------------------------------------------------------------- files of a run
CONFIG_FILE = "config.yaml"        # the resolved run config (marks a run directory)
RUN_FILE = "run.json"              # status, seed, thread count, best/final results
METRICS_FILE = "metrics.csv"       # one row per epoch
CHECKPOINT_FILE = "checkpoint.pt"  # resumable state, final weights
MANIFEST = "features/manifest.json"
EXTRACT_FILE = "extract.yaml"      # marks a directory written by `repflat extract`
EXPERIMENT_FILE = "experiment.yaml"  # marks a directory written by `repflat run`
ANALYSIS_FILE = "analysis.json"    # marks an analysis directory (with ANALYSIS_MARKER)
ANALYSIS_MARKER = ".repflat-analysis"
LOCK_FILE = ".repflat.lock"
OWNER_FILE = ".repflat-owner"      # proves a directory is repflat's (repflat.rundir.owner)
RUNS_DIR = "runs"                  # an experiment directory's runs, RUNS_DIR/run_dirname(...)
ANALYSIS_DIR = "analysis"          # and its analysis
ANALYSIS_TABLES = ("spectra.csv", "flattening.csv", "summary.csv", "training.csv", "effects.csv",
                   "similarity.csv")
REPORT_FILES = ("report.md", "report.html")
FIGURES = {  # what `--figures` names, in the report's order -> the files each writes
    "datasets": ("datasets.png", "datasets_entropy.png"),  # runs of several data sets
    "figure1": ("figure1.png",), "planes": ("planes.png",), "boundaries": ("boundaries.png",),
    "spectra": ("spectra.png",), "heatmap": ("heatmap.png",), "epochs": ("epochs.png",),
    "embeddings": ("embeddings.png",), "corollary": ("corollary.png",),
    "effects": ("effects.png",),  # a sweep
}
"""An analysis directory's figures (repflat.analysis.report.sections draws them): declared
here, where the command line reads them without loading the analysis."""

# ---------------------------------------------------------------- metrics.csv columns
EPOCH, LR, TRAIN_LOSS, SECONDS = "epoch", "lr", "train_loss", "seconds"
"""The epoch (1-based), its learning rate, mean training loss and wall time."""
TEST_ACCURACY, TEST_ERROR, TEST_NLL = "test_accuracy", "test_error", "test_nll"
TEST_ECE, FGSM_ACCURACY = "test_ece", "fgsm_accuracy"
"""Test measurements: ECE with evaluation.calibration, FGSM at the chosen epochs ('' between)."""
MIXES = "mixes_"
"""Column prefix: batches mixed at each eligible layer in the epoch (`mixes_<layer>`)."""
MEAN_LAMBDA = "mean_lambda"
"""The mean λ drawn in the epoch ('' when nothing was mixed)."""
LAMBDA_STD = "lambda_std"
"""The standard deviation (ddof 0) of the λ drawn in the epoch ('' when nothing was
mixed): the mean of Beta(α, α) is ½ whatever α, its spread √(1 / (4(2α + 1))) is not, so
this is what shows that α was applied."""
MIXUP_LOSS = "mixup_loss"
"""The loss on the run's fixed evaluation mixes (repflat.training.premise)."""
MIXUP_LOSS_INFIMUM = "mixup_loss_infimum"
"""Its infimum on the same mixes: mean entropy of the mixed targets (cross-entropy), 0
(Brier, raw squared error)."""
EXCESS_MIXUP_LOSS = "excess_mixup_loss"
"""mixup_loss − mixup_loss_infimum: Corollary 1's premise is that this is small."""
PREMISE_COLUMNS = (MIXUP_LOSS, MIXUP_LOSS_INFIMUM, EXCESS_MIXUP_LOSS)
METRIC_COLUMNS = (EPOCH, LR, TRAIN_LOSS, TEST_ACCURACY, TEST_ERROR, TEST_NLL, TEST_ECE,
                  FGSM_ACCURACY, SECONDS, *PREMISE_COLUMNS)
"""The columns of metrics.csv that hold numbers (or blanks), besides MIXES, MEAN_LAMBDA
and LAMBDA_STD."""
FINAL, BEST = "final_", "best_"
"""run.json's results: `final_<column>` and `best_<column>` of metrics.csv's last and best
epoch (test_error, test_nll; final excess_mixup_loss and fgsm_accuracy), `best_epoch`."""
BEST_EPOCH = "best_epoch"

# ---------------------------------------------------------------- splits and layers
TRAIN, TEST = "train", "test"
SPLITS = (TRAIN, TEST)
"""Splits of a data set: rows of real inputs, with labels."""
INPUT_GRID, UNIFORM, PLANE_GRID = "input_grid", "uniform", "plane_grid"
PROBES = (INPUT_GRID, UNIFORM, PLANE_GRID)
"""Probe splits saved for 2-D inputs (repflat.capture.probes2d): a grid over the input
plane, inputs drawn uniformly over it, a grid over a 2-D hidden layer. No labels."""
GRID, SCATTER = "grid", "uniform"
SPLIT_KINDS = (GRID, SCATTER)
"""`kind` of a probe split in the manifest's `splits`: a G × G grid, or scattered points."""
INPUT = "input"
"""The layer that is the model's input (mixing there is input mixup)."""
PROBABILITIES = "probabilities"
"""The softmax output saved beside a probe split's points."""
LABELS = "#labels"
"""The stream key of a split's labels while they are written (no module name starts with #)."""

# ---------------------------------------------------------------- classes in the tables
POOLED, MEAN, ALL = "pooled", "mean", "all"
"""Rows of the flattening tables that are not one class: all classes pooled (the
control), the class average, and layer-level metrics (NC1)."""
NOT_A_CLASS = (POOLED, MEAN, ALL)
CLASS = "class"
"""The `group` of a table row that is one class (its label in the numeric `class` column)."""
GROUPS = (CLASS, *NOT_A_CLASS)
"""Values of the tables' `group` column. Tables written before it (repflat 0.1 analyses)
put these words in the `class` column itself; readers convert them."""


UNKNOWN = "unknown"
"""A run's strategy or seed when its directory does not say (features from another tool)."""
# STRATEGIES (the strategy and arm names run.json, config.yaml and the tables use, with
# their labels, order and baseline) is declared with the config that takes them
# (repflat.config.strategies) and imported from here by the readers.


class Status(str, Enum):
    """run.json's `status`."""

    RUNNING = "running"
    COMPLETE = "complete"
    UNKNOWN = "unknown"  # no run.json (features written by another tool), or not repflat's


class RunState(str, Enum):
    """What a directory holds for the run (or extraction) about to be written into it."""

    NEW = "new"            # absent or empty
    RESTART = "restart"    # the same run, unfinished: start it over
    RESUME = "resume"      # the same run, unfinished: continue from its checkpoint
    COMPLETE = "complete"  # the same run, done: nothing to do


def run_dirname(arm: str, seed: int) -> str:
    """An experiment's run directory name: `<arm>-seed<seed>`."""
    return f"{arm}-seed{seed}"


def feature_path(split: str, epoch: int, layer: str) -> str:
    """Where the features of (split, epoch, layer) live, relative to the run directory."""
    return f"features/{safe_name(split, 'split')}/epoch{epoch:04d}/{safe_name(layer, 'layer')}.npy"


def discriminative_path(split: str, epoch: int, layer: str) -> str:
    """Where the discriminative summary of (split, epoch, layer) lives (format 2): a
    folder beside the layers' files, so no layer name can collide with it."""
    return (f"features/{safe_name(split, 'split')}/epoch{epoch:04d}/discriminative/"
            f"{safe_name(layer, 'layer')}.npy")


def labels_path(split: str) -> str:
    """Where a split's labels live, relative to the run directory."""
    return f"features/{safe_name(split, 'split')}/labels.npy"


def indices_path(split: str) -> str:
    """Where a split's dataset indices live (the item each row is, when the rows are not
    the items in order: a DataLoader's sampler chose them), relative to the run directory."""
    return f"features/{safe_name(split, 'split')}/indices.npy"
