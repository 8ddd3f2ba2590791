"""The paper's numbers, keyed by the experiment names of experiments/*.yaml.

A report of an experiment named here puts each number beside repflat's measurement of
the same quantity (see `repflat.analysis.report.tables.paper_table`). Source: Verma et al. 2019,
arXiv 1806.05236 v7 (§3.2, Appendix G, the classification tables); for the MNIST-1D
experiments, Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024. A quantity is a metric
of summary.csv (class-averaged, at a layer) or a training measure from the runs'
metrics.csv (see `TRAINING`); arms are matched by name, with the paper's baseline
answering to `erm`, `none` or `baseline`.
"""
from __future__ import annotations

from dataclasses import dataclass

from repflat.rundir.names import STRATEGIES

FIRST_HIDDEN = None
"""Layer placeholder: the first analysed layer that is not the input."""

TRAINING = {  # quantity -> (metrics.csv column, best = min or max over epochs, scale, title)
    "test_error_percent": ("test_accuracy", "max", "error", "test error % (best epoch)"),
    "test_accuracy_percent": ("test_accuracy", "max", "percent", "test accuracy % (best epoch)"),
    "test_nll": ("test_nll", "min", "identity", "test NLL (best epoch)"),
    "final_test_accuracy_percent": ("test_accuracy", "last", "percent",
                                    "test accuracy % (final epoch)"),
}

BASELINE_ALIASES = tuple(w for s in STRATEGIES if s.baseline for w in (*s.aliases, s.name))
"""The arm names the paper's baseline column matches (the baseline strategy's aliases, then its name)."""


@dataclass(frozen=True)
class PaperValue:
    arm: str
    """repflat's arm name for the paper's column (erm, input_mixup, manifold_mixup, ...)."""
    quantity: str
    """A summary.csv metric, or a key of TRAINING."""
    value: float
    layer: str | None = FIRST_HIDDEN
    """Layer of a summary metric (ignored for training quantities)."""
    std: float | None = None
    """The paper's spread over runs, where it prints one (MNIST-1D's ± std)."""


@dataclass(frozen=True)
class PaperEntry:
    source: str
    note: str
    values: tuple[PaperValue, ...]


def _rows(quantity: str, layer: str | None, **by_arm: float) -> tuple[PaperValue, ...]:
    return tuple(PaperValue(arm, quantity, v, layer) for arm, v in by_arm.items())


def _classification(errors: dict[str, float], nll: dict[str, float] | None = None) -> tuple:
    return (_rows("test_error_percent", None, **errors)
            + (_rows("test_nll", None, **nll) if nll else ()))


_TABLES = ("The paper's classification tables (mean ± std of 5 runs). The maintainers report "
           "the best test value over training, so repflat compares its best epoch; the paper "
           "trains for 1200 (PreActResNet) or 400 (WRN) epochs.")


def _table(what: str, errors: dict[str, float], nll: dict[str, float] | None = None) -> PaperEntry:
    return PaperEntry(f"Classification table, {what}", _TABLES, _classification(errors, nll))


PAPER: dict[str, PaperEntry] = {
    "mnist_regularizers": PaperEntry(
        "§3.2, MNIST fully connected network, first hidden layer",
        "The paper does not say whether the class matrices are centred nor how many samples "
        "they hold; raw singular values grow with both, so compare the ordering of the arms "
        "more than the values.",
        _rows("largest_singular_value", FIRST_HIDDEN, erm=51.73, weight_decay=33.76,
              dropout=28.83, input_mixup=33.46, manifold_mixup=31.65)
        + _rows("sum_other_singular_values", FIRST_HIDDEN, erm=78.67, weight_decay=73.36,
                dropout=77.47, input_mixup=66.89, manifold_mixup=40.98)),
    "mnist_bottleneck12": PaperEntry(
        "Appendix G, MNIST with a 12-unit bottleneck: first singular value averaged over classes",
        "Centring and sample counts are not stated in the paper. Its pooled-class control "
        "shows no clear difference between arms.",
        _rows("largest_singular_value", "bottleneck", erm=50.08, input_mixup=37.17,
              manifold_mixup=43.44)),
    "mnist_bottleneck30": PaperEntry(
        "Appendix G, MNIST with a 30-unit bottleneck: first singular value averaged over classes",
        "Centring and sample counts are not stated in the paper.",
        _rows("largest_singular_value", "bottleneck", erm=14.68, input_mixup=12.49,
              manifold_mixup=14.43)),
    "cifar10_preactresnet18": _table("CIFAR-10, PreActResNet18",
        {"erm": 4.83, "input_mixup": 3.82, "manifold_mixup": 2.95},
        {"erm": 0.190, "input_mixup": 0.186, "manifold_mixup": 0.137}),
    "cifar10_preactresnet34": _table("CIFAR-10, PreActResNet34",
        {"erm": 4.64, "input_mixup": 2.88, "manifold_mixup": 2.54},
        {"erm": 0.200, "input_mixup": 0.176, "manifold_mixup": 0.118}),
    "cifar10_wrn28_10": _table("CIFAR-10, WRN-28-10",
        {"erm": 3.99, "input_mixup": 2.92, "manifold_mixup": 2.55},
        {"erm": 0.162, "input_mixup": 0.173, "manifold_mixup": 0.111}),
    "cifar100_preactresnet18": _table("CIFAR-100, PreActResNet18",
        {"erm": 24.01, "input_mixup": 22.11, "manifold_mixup": 20.34},
        {"erm": 1.189, "input_mixup": 1.055, "manifold_mixup": 0.912}),
    "cifar100_preactresnet34": _table("CIFAR-100, PreActResNet34",
        {"erm": 23.55, "input_mixup": 20.53, "manifold_mixup": 18.35},
        {"erm": 1.189, "input_mixup": 1.039, "manifold_mixup": 0.877}),
    "cifar100_wrn28_10": _table("CIFAR-100, WRN-28-10",
        {"erm": 21.72, "input_mixup": 18.89, "manifold_mixup": 18.04},
        {"erm": 1.023, "input_mixup": 0.927, "manifold_mixup": 0.809}),
    "svhn_preactresnet18": _table("SVHN, PreActResNet18",
        {"erm": 2.89, "input_mixup": 2.76, "manifold_mixup": 2.27}),
    "tinyimagenet_preactresnet18": PaperEntry(
        "Classification table, Tiny-ImageNet, PreActResNet18 (mixup α = 0.2)", _TABLES,
        _rows("test_accuracy_percent", None, erm=55.52, input_mixup=56.47, manifold_mixup=58.70)),
}

_MNIST1D_NOTE = (
    "Test accuracy %, mean ± std over 3 runs, at the last of 8,000 steps (Adam, lr 1e-2, "
    "batch 100) of the reference code, whose batches walk the same order every epoch and "
    "whose MLP has a residual second layer; repflat reshuffles every epoch and its MLP has "
    "none. repflat gives its final epoch (the paper's reading) and its best epoch.")


def _mnist1d(**by_arm: tuple[float, float]) -> tuple[PaperValue, ...]:
    return tuple(PaperValue(arm, quantity, mean, None, std)
                 for quantity in ("final_test_accuracy_percent", "test_accuracy_percent")
                 for arm, (mean, std) in by_arm.items())


PAPER["mnist1d_baselines"] = PaperEntry(
    "MNIST-1D (Greydanus & Kobak, ICML 2024), Table 1: the reference models, ERM", _MNIST1D_NOTE,
    _mnist1d(logistic=(32, 1), mlp=(68, 2), cnn=(94, 2), gru=(91, 2), mlp_shuffled=(68, 2),
             cnn_shuffled=(56, 2), gru_shuffled=(57, 2)))
PAPER["mnist1d_flattening"] = PaperEntry(
    "MNIST-1D (Greydanus & Kobak, ICML 2024), Table 1: ERM of the reference MLP and CNN",
    _MNIST1D_NOTE + " No published paper reports mixup, manifold mixup or flattening on "
    "MNIST-1D; this experiment trains for fewer steps than the reference (see its file).",
    _mnist1d(**{"erm-model_mlp-data_plain": (68, 2), "erm-model_cnn-data_plain": (94, 2),
                "erm-model_mlp-data_shuffled": (68, 2), "erm-model_cnn-data_shuffled": (56, 2)}))

PICTURES: dict[str, str] = {
    "digits_bottleneck": "Appendix G trains this network on MNIST, not on the 8×8 digits, "
                         "so there are no numbers to compare with directly. On MNIST with 12 "
                         "units the paper reports the first singular value averaged over "
                         "classes as 50.08 (ERM), 37.17 (input mixup), 43.44 (manifold mixup), "
                         "with the smaller singular values 'dramatically' reduced by manifold "
                         "mixup; the Corollary 1 table below is the check that transfers.",
    "spirals": "The paper reports Figure 1 as a picture, without numbers (and without the "
               "architecture, widths, α, optimiser or epochs behind it), so there is nothing "
               "to put beside repflat's numbers: compare Figure 1 below with the paper's by eye.",
    "spirals_regularizers": "The paper reports Figure 2 as a picture, without numbers or the "
                            "regularizers' strengths: compare the hidden planes below with the "
                            "paper's by eye.",
}


def paper_entry(name: str | None) -> PaperEntry | None:
    return PAPER.get(name) if name else None


def arm_for(paper_arm: str, arms: list[str]) -> str | None:
    """The measured arm answering to the paper's `paper_arm` (the baseline has aliases)."""
    names = BASELINE_ALIASES if paper_arm in BASELINE_ALIASES else (paper_arm,)
    return next((a for a in arms if a in names), None)
