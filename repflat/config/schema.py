"""The sections of a run config: data, model, mixing, training, evaluation, capture,
and the analysis settings of an experiment file. Frozen dataclasses, one docstring per
field, checked in `__post_init__` (repflat.strict turns a failed check into an error
naming the dotted key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Union, get_args

from repflat.config.layers import DEFAULT_PLANE
from repflat.config.strategies import MIXING_STRATEGIES
from repflat.strict import FieldError
from repflat.config.toy import (FILE_DATA, TOY_DATA, ArraysData, BlobsData,  # noqa: F401
                                CirclesData, CsvData, GaussianQuantilesData, MoonsData,
                                SpiralsData, XorData)

Strategy = Literal[MIXING_STRATEGIES]
Reduction = Literal["flatten", "avg", "max"]
FeatureDtype = Literal["float32", "float16"]
REDUCTIONS, FEATURE_DTYPES = get_args(Reduction), get_args(FeatureDtype)
MAX_EPOCHS = 1_000_000
"""Longest training a run config may ask for (the paper's longest: 2,000 epochs)."""
MAX_BATCH = 1 << 20
"""Largest batch (training, capture) and premise mix count."""
MAX_WIDTH = 1 << 16
"""Widest MLP layer."""
MAX_MLP_WEIGHTS = 1 << 28
"""Weights between an MLP's hidden layers (1 GiB of float32, before gradients and the
optimiser's state): past it a config is refused before a byte is allocated."""
MAX_GRID_RESOLUTION = 2_000
"""Points per side of a 2D boundary grid (4 million points)."""
MAX_UNIFORM_SAMPLES = 1_000_000
"""Uniform inputs of a 2D capture."""
MIN_RTOL = 1e-7
"""The smallest numerical-rank tolerance that means something: the spectra's relative
accuracy (repflat.analysis.moments.RELATIVE_ACCURACY, which a test keeps equal)."""


@dataclass(frozen=True)
class DigitsData:
    name: Literal["digits"] = "digits"
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes): real
    data, no download. Pixels scaled to [0, 1]; inputs of shape (1, 8, 8)."""
    test_fraction: float = 0.25
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the train/test split."""

    def __post_init__(self):
        _check_fraction(self.test_fraction)
        _check_seed(self.seed)


MNIST1D_MAX_SAMPLES = 1_000_000
"""Most sequences `mnist1d` may generate (5,000 is the published set)."""


@dataclass(frozen=True)
class Mnist1dData:
    name: Literal["mnist1d"] = "mnist1d"
    """MNIST-1D (Greydanus & Kobak, ICML 2024): 10 classes of length-40 sequences, generated
    offline by the pinned `mnist1d` package's `make_dataset` with its default arguments
    (never its download). The first 80% of the (shuffled) sequences train, the rest test:
    4,000 / 1,000 at the defaults, the published set."""
    samples: int = 5000
    """Sequences generated, train and test together (the package's `num_samples`)."""
    seed: int = 42
    """The generator's seed (the package's default, 42, gives the published set)."""
    shuffled: bool = False
    """Shuffle the 40 positions with one fixed permutation for every sequence (the
    package's `shuffle_seq`; the paper's control for spatial inductive bias)."""

    def __post_init__(self):
        if self.samples < 20:  # two per class at least, so each split has rows
            raise FieldError("samples", "an integer >= 20", self.samples)
        _check_at_most("samples", self.samples, MNIST1D_MAX_SAMPLES)
        if self.seed >= 2**32:  # numpy.random.seed's range
            raise FieldError("seed", "an integer in [0, 2^32)", self.seed)
        _check_seed(self.seed)


@dataclass(frozen=True)
class ImageData:
    name: Literal["mnist", "cifar10", "cifar100", "svhn", "imagefolder"]
    """A torchvision data set, read from `root` in torchvision's on-disk layout."""
    root: str = "data"
    """Directory of the data set (for imagefolder: holding `train_dir` and `test_dir`)."""
    download: bool = False
    """Download into `root` when missing (not possible for imagefolder)."""
    augment: bool = False
    """Augment the training split: random crop with padding (2 px, or 1/16 of the side)
    and horizontal flip (not for mnist/svhn digits), the paper's CIFAR recipe."""
    train_dir: str = "train"
    """imagefolder: subdirectory of the training images, one folder per class."""
    test_dir: str = "val"
    """imagefolder: subdirectory of the test images, one folder per class."""
    image_size: int | None = None
    """imagefolder: resize (shorter side) and centre-crop to this size; null keeps it."""

    def __post_init__(self):
        if self.download and self.name == "imagefolder":
            raise FieldError("download", "false for imagefolder (it has no download)", True)
        if self.image_size is not None and self.image_size < 1:
            raise FieldError("image_size", "a positive integer or null", self.image_size)
        if self.image_size is not None and self.image_size > 4096:
            raise FieldError("image_size", "at most 4096 pixels", self.image_size)


DataConfig = Union[(*TOY_DATA, *FILE_DATA, DigitsData, Mnist1dData, ImageData)]
"""Every data set a run config may name: the toy sets in the order repflat.config.toy
declares them (spirals first: the default), your own points, digits, MNIST-1D,
torchvision's."""


def _check_fraction(value: float) -> None:
    if not 0 < value < 1:
        raise FieldError("test_fraction", "a number in (0, 1)", value)


def _check_at_most(key: str, value: int, top: int) -> None:
    """Sizes that become allocations or loops have a ceiling, checked at parse time so an
    absurd value is refused before anything is written (limits in the constants above)."""
    if value > top:
        raise FieldError(key, f"at most {top:,}", value if value < 10**15 else "over 10^15")


def _check_seed(value: int) -> None:
    if value < 0:  # numpy's SeedSequence takes no negative seed
        raise FieldError("seed", "an integer >= 0", value)


@dataclass(frozen=True)
class MLPModel:
    name: Literal["mlp"] = "mlp"
    """Architecture. `mlp`: fully connected layers fc1.., a bottleneck, fc.. after it."""
    widths: tuple[int, ...] = (64, 64)
    """Widths of the layers before the bottleneck (named fc1, fc2, ...)."""
    bottleneck: int | None = 2
    """Width of the linear bottleneck layer (named `bottleneck`); null for none."""
    widths_after: tuple[int, ...] = (64, 64)
    """Widths of the layers after the bottleneck (numbering continues)."""
    activation: Literal["relu", "leaky_relu", "tanh"] = "relu"
    """Nonlinearity of every fc layer; the bottleneck stays linear."""
    dropout: float = 0.0
    """Dropout probability after every fc layer (not the bottleneck), as in Figure 2."""
    batch_norm: bool = False
    """Batch normalisation in every hidden layer, bottleneck included, as in Figure 2."""

    def __post_init__(self):
        for key in ("widths", "widths_after"):
            if any(w < 1 for w in getattr(self, key)):
                raise FieldError(key, "a list of positive integers", list(getattr(self, key)))
            if any(w > MAX_WIDTH for w in getattr(self, key)) or len(getattr(self, key)) > 100:
                raise FieldError(key, f"at most 100 widths, each at most {MAX_WIDTH:,}",
                                 list(getattr(self, key)))
        if self.bottleneck is not None and self.bottleneck < 1:
            raise FieldError("bottleneck", "a positive integer or null", self.bottleneck)
        if self.bottleneck is not None and self.bottleneck > MAX_WIDTH:
            raise FieldError("bottleneck", f"at most {MAX_WIDTH:,}", self.bottleneck)
        hidden = [*self.widths, *([self.bottleneck] if self.bottleneck else []), *self.widths_after]
        weights = sum(a * b for a, b in zip(hidden, hidden[1:]))
        if weights > MAX_MLP_WEIGHTS:
            raise FieldError("widths", f"layers of at most {MAX_MLP_WEIGHTS:,} weights between "
                             f"them in all (these have {weights:,})", list(self.widths))
        if not 0 <= self.dropout < 1:
            raise FieldError("dropout", "a probability in [0, 1)", self.dropout)


@dataclass(frozen=True)
class ResNetModel:
    name: Literal["preactresnet18", "preactresnet34", "wrn28_10"]
    """The paper's image classifiers. PreActResNets name their stages conv1, layer1..4;
    WRN-28-10 names them conv1, block1..3. "After block k" in the paper is layer k /
    block k here."""
    stem_stride: int = 1
    """Stride of the first convolution: 1 for 32×32 inputs, 2 for Tiny-ImageNet's 64×64
    (as the official code does)."""
    dropout: float = 0.0
    """wrn28_10 only: dropout between the two convolutions of each block."""

    def __post_init__(self):
        if self.stem_stride not in (1, 2):
            raise FieldError("stem_stride", "1 or 2", self.stem_stride)
        if not 0 <= self.dropout < 1:
            raise FieldError("dropout", "a probability in [0, 1)", self.dropout)
        if self.dropout and self.name != "wrn28_10":
            raise FieldError("dropout", "0 (only wrn28_10 has block dropout)", self.dropout)


@dataclass(frozen=True)
class TorchvisionModel:
    name: Literal["torchvision"] = "torchvision"
    """Any torchvision classifier, trained from scratch; its layers are its module names."""
    arch: str = "resnet18"
    """Name as torchvision.models.list_models() gives it."""
    hidden_layers: tuple[str, ...] = ()
    """Module names used when capture.layers or mixing.layers are left empty."""


TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class TargetModel:
    """Your own nn.Module class, `model: {target: "mypkg.models:MyNet", kwargs: {...}}`
    (chosen by `target`; no `name` needed). Building it imports the module, which runs
    its code: see the README's threat model."""
    TAGGED_BY = "target"  # not annotated: a class attribute, not a field
    target: str
    """`module:Class` (dotted both sides), the class importable from `path` or sys.path."""
    kwargs: dict[str, object] = field(default_factory=dict)
    """Keyword arguments of the class; `n_classes` and `input_shape`, when the class takes
    them and they are not given, are the data's."""
    path: str = "."
    """Directory put first on sys.path for the import, relative to the config file's
    directory (the run's config.yaml holds it absolute)."""
    hidden_layers: tuple[str, ...] = ()
    """Module names used when capture.layers or mixing.layers are left empty (else the
    class's own `hidden_layers` attribute, if it has one)."""
    name: Literal["target"] = "target"
    """Written in the resolved config; `target` alone chooses this section."""

    def __post_init__(self):
        if not TARGET.match(self.target):
            raise FieldError("target", "'module:Class' (e.g. 'mypkg.models:MyNet')", self.target)

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]



@dataclass(frozen=True)
class Cnn1dModel:
    name: Literal["cnn1d"] = "cnn1d"
    """MNIST-1D's reference CNN: three Conv1d layers (kernels 5, 3, 3; stride 2; padding
    1), each followed by ReLU, named conv1..conv3, then a linear head on the flattened
    last stage (25 channels × 5 positions = 125 inputs for length-40 sequences)."""
    channels: int = 25
    """Channels of every convolution (the reference: 25)."""
    dropout: float = 0.0
    """Dropout probability after every conv stage (the §3.2 regularizer arm)."""

    def __post_init__(self):
        if not 1 <= self.channels <= 4096:
            raise FieldError("channels", "an integer in [1, 4096]", self.channels)
        if not 0 <= self.dropout < 1:
            raise FieldError("dropout", "a probability in [0, 1)", self.dropout)


@dataclass(frozen=True)
class GruModel:
    name: Literal["gru"] = "gru"
    """MNIST-1D's reference GRU: one GRU layer over the sequence (one value per step),
    whose outputs at every step, both directions, are flattened (layer `gru`) into a
    linear head."""
    hidden: int = 6
    """Hidden size per direction (the reference: 6)."""
    bidirectional: bool = True
    """Run the sequence both ways (the reference does)."""

    def __post_init__(self):
        if not 1 <= self.hidden <= 4096:
            raise FieldError("hidden", "an integer in [1, 4096]", self.hidden)


ModelConfig = MLPModel | ResNetModel | TorchvisionModel | Cnn1dModel | GruModel | TargetModel


@dataclass(frozen=True)
class MixingConfig:
    strategy: Strategy = "none"
    """`none` (ERM), `input_mixup`, or `manifold_mixup`."""
    alpha: float = 2.0
    """λ ~ Beta(α, α) per batch. The paper: α = 1 for input mixup, α = 2 for manifold."""
    layers: tuple[str, ...] = ()
    """Eligible layers for manifold mixup (`input` allowed); empty = input and every
    hidden layer of the model. One is drawn uniformly per batch."""

    def __post_init__(self):
        if not self.alpha > 0:
            raise FieldError("alpha", "a number > 0", self.alpha)
        if self.strategy == "none" and self.layers:
            raise FieldError("layers", "an empty list for strategy 'none'", list(self.layers))
        if self.strategy == "input_mixup" and self.layers not in ((), ("input",)):
            raise FieldError("layers", "[] or ['input'] for input_mixup", list(self.layers))
        if len(set(self.layers)) != len(self.layers):
            raise FieldError("layers", "distinct layer names", list(self.layers))

    def inapplicable(self) -> set[str]:
        """Fields the strategy does not use: ERM draws no λ and mixes nowhere; input mixup
        mixes at the input only."""
        return {"none": {"alpha", "layers"}, "input_mixup": {"layers"}}.get(self.strategy, set())


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 300
    """Passes over the training split."""
    batch_size: int = 100
    """Examples per step; the last batch of an epoch may be smaller (any size works)."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimiser."""
    lr: float = 1e-3
    """Learning rate."""
    momentum: float = 0.9
    """SGD momentum (ignored by adam)."""
    weight_decay: float = 0.0
    """L2 weight decay, one of Figure 2's regularizers."""
    input_noise: float = 0.0
    """Std of Gaussian noise added to every training input, one of Figure 2's regularizers."""
    nesterov: bool = False
    """Nesterov momentum for SGD (the official code uses it)."""
    schedule: Literal["constant", "step", "cosine"] = "constant"
    """Learning rate over epochs: constant; multiplied by `gamma` at each milestone;
    or cosine decay to 0 at the last epoch."""
    milestones: tuple[int, ...] = ()
    """`step` schedule: epochs after which the rate is multiplied by `gamma`."""
    gamma: float = 0.1
    """`step` schedule: the factor at each milestone."""
    loss: Literal["cross_entropy", "bce", "brier", "squared_error", "mse"] = "cross_entropy"
    """Loss against soft targets (repflat.training.losses). `cross_entropy`; `bce`: binary
    cross-entropy of the softmax output, as the official code trains; `brier`: squared
    error of the softmax output (`mse` is its old name, the same loss); `squared_error`:
    squared error of the raw outputs, the paper's f: H → ℝᴷ. All are strictly proper,
    which Corollary 1 needs; only `squared_error` can reach its infimum with finite
    weights (a softmax never equals a one-hot target)."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """Where to train; `auto` takes CUDA when present. Bit-exact repeats hold on CPU."""
    amp: bool = True
    """On CUDA: bfloat16 autocast for the forward pass (no effect on the CPU)."""
    channels_last: bool = True
    """On CUDA: channels-last memory format for 4-D inputs and the model."""
    workers: int = 0
    """DataLoader worker processes for data sets read from disk."""
    checkpoint_every: int = 10
    """Epochs between resumable checkpoints (the last epoch always gets one). An
    interrupted run restarted with the same config continues from the latest one."""

    def __post_init__(self):
        for key, top in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH)):
            if getattr(self, key) < 1:
                raise FieldError(key, "an integer >= 1", getattr(self, key))
            _check_at_most(key, getattr(self, key), top)
        if not self.lr > 0:
            raise FieldError("lr", "a number > 0", self.lr)
        if not 0 <= self.momentum < 1:
            raise FieldError("momentum", "a number in [0, 1)", self.momentum)
        for key in ("weight_decay", "input_noise", "workers"):
            if getattr(self, key) < 0:
                raise FieldError(key, "a number >= 0", getattr(self, key))
        if self.checkpoint_every < 1:
            raise FieldError("checkpoint_every", "an integer >= 1", self.checkpoint_every)
        if sorted(set(self.milestones)) != list(self.milestones) or any(
                not 0 < m < self.epochs for m in self.milestones):
            raise FieldError("milestones", f"increasing epochs in (0, {self.epochs})",
                             list(self.milestones))
        if self.schedule == "step" and not self.milestones:
            raise FieldError("milestones", "at least one epoch for the step schedule", [])
        if not 0 < self.gamma <= 1:
            raise FieldError("gamma", "a number in (0, 1]", self.gamma)


@dataclass(frozen=True)
class CaptureConfig:
    layers: tuple[str, ...] = ()
    """Layers whose features are saved; empty = every hidden layer of the model."""
    epochs: tuple[int, ...] = ()
    """Epochs after which features are saved (0 = at initialisation); the final
    epoch is always saved."""
    splits: tuple[Literal["train", "test"], ...] = ("train", "test")
    """Splits whose features are saved."""
    grid_resolution: int = 200
    """2D inputs: points per side of the grids the boundary pictures are drawn from."""
    uniform_samples: int = 1000
    """2D inputs: inputs drawn uniformly over the input range (the paper's black dots)."""
    plane: str | None = DEFAULT_PLANE
    """2D layer whose plane is drawn (panels d, e); null: none. A layer of the model
    (refused otherwise); the default, bottleneck, is skipped on a model without one, and
    any layer that is not 2-D is skipped too."""
    dtype: FeatureDtype = "float32"
    """Storage type of saved features."""
    reduce: Reduction = "flatten"
    """How an output with spatial axes (n, C, H, W) becomes (n, n_features): every value,
    or the global average or maximum over the spatial axes, giving (n, C)."""
    batch_size: int = 1024
    """Examples per forward pass while capturing."""
    discriminative: bool = True
    """Also save each captured layer's discriminative summary: per class, the average
    outer product of the Jacobian of the class-centred logits w.r.t. the layer (its top
    eigenpairs; repflat.capture.discriminative). One forward and K backward passes per
    batch (benchmarks/discriminative.py: practical at K ≤ 10; the 100- and 200-class
    experiment files turn it off); the layers `input` and modules (not FX nodes), reduce
    flatten or avg, whose K · width² float64 fit in 1 GiB (width 3,663 at K = 10).
    Corollary 1's measures need it."""

    def __post_init__(self):
        if any(e < 0 for e in self.epochs):
            raise FieldError("epochs", "a list of integers >= 0", list(self.epochs))
        if self.grid_resolution < 2:
            raise FieldError("grid_resolution", "an integer >= 2", self.grid_resolution)
        _check_at_most("grid_resolution", self.grid_resolution, MAX_GRID_RESOLUTION)
        if self.uniform_samples < 1:
            raise FieldError("uniform_samples", "an integer >= 1", self.uniform_samples)
        _check_at_most("uniform_samples", self.uniform_samples, MAX_UNIFORM_SAMPLES)
        if not self.splits:
            raise FieldError("splits", "at least one split", list(self.splits))
        if self.batch_size < 1:
            raise FieldError("batch_size", "an integer >= 1", self.batch_size)
        _check_at_most("batch_size", self.batch_size, MAX_BATCH)


@dataclass(frozen=True)
class EvalConfig:
    fgsm_epsilon: float | None = 0.03137
    """FGSM step in input units; for image data sets in pixel units of [0, 1] (the
    default is 8/255; the paper does not state its ε). null: no FGSM."""
    fgsm_every: int = 0
    """Epochs between FGSM evaluations; 0: at the final epoch only."""
    calibration: bool = False
    """Also report the expected calibration error (15 equal-width confidence bins) per epoch."""
    premise: bool = True
    """Log Corollary 1's premise in metrics.csv: the excess mixup loss (the loss on fixed
    mixes of training rows minus its infimum on them; repflat.training.premise)."""
    premise_every: int = 1
    """Epochs between premise evaluations (the final epoch always gets one)."""
    premise_mixes: int | None = None
    """Pairs of training rows in the fixed evaluation mixes; null: min(training rows, 4096)."""
    premise_layers: tuple[str, ...] = ()
    """Layers at which a run that does not mix (ERM) measures the premise, so it can sit
    on the same axes as the mixing arms; empty: ERM logs none. A mixing run always uses
    its own eligible layers and α."""
    premise_alpha: float = 2.0
    """λ ~ Beta(α, α) of ERM's premise mixes (see premise_layers)."""

    def __post_init__(self):
        if self.premise_every < 1:
            raise FieldError("premise_every", "an integer >= 1", self.premise_every)
        if self.premise_mixes is not None and self.premise_mixes < 1:
            raise FieldError("premise_mixes", "an integer >= 1 or null", self.premise_mixes)
        if self.premise_mixes is not None:
            _check_at_most("premise_mixes", self.premise_mixes, MAX_BATCH)
        if not self.premise_alpha > 0:
            raise FieldError("premise_alpha", "a number > 0", self.premise_alpha)
        if self.fgsm_epsilon is not None and self.fgsm_epsilon < 0:
            raise FieldError("fgsm_epsilon", "a number >= 0 or null", self.fgsm_epsilon)
        if self.fgsm_every < 0:
            raise FieldError("fgsm_every", "an integer >= 0", self.fgsm_every)


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    """Name of the run (an experiment's arm name)."""
    seed: int = 0
    """Seed of initialisation, shuffling, mixing and noise."""
    data: DataConfig = SpiralsData()
    model: ModelConfig = MLPModel()
    mixing: MixingConfig = MixingConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvalConfig = EvalConfig()
    capture: CaptureConfig = CaptureConfig()

    def __post_init__(self):
        _check_seed(self.seed)
        late = [e for e in self.capture.epochs if e > self.train.epochs]
        if late:
            raise FieldError("capture.epochs", f"epochs <= train.epochs ({self.train.epochs})", late)


@dataclass(frozen=True)
class AnalysisConfig:
    split: str = "train"
    """Split whose features are analysed (Corollary 1 speaks of training representations)."""
    layers: tuple[str, ...] = ()
    """Layers to analyse; empty = every layer saved for the split."""
    epochs: Literal["final", "all"] = "final"
    """Analyse each run's last saved epoch, or every saved epoch."""
    center: bool = True
    """Subtract each class's mean before its SVD (the spectrum of its spread)."""
    scale: bool = False
    """Divide each spectrum by √n (n = the class's rows), so classes of unequal size compare."""
    rtol: float = 0.01
    """Numerical rank counts singular values above rtol · σ₁."""
    spectra_layers: tuple[str, ...] = ()
    """Layers of Figure 1's panels c and f (early, later); empty = first and last
    captured layer wider than the plane."""
    spectra_class: int = 0
    """The class whose spectrum panels c and f draw."""
    nc1_mean: Literal["global", "class_means"] = "global"
    """The centre of the between-class covariance in NC1 and the within/between ratio:
    the mean of all samples (Papyan et al.'s text) or the mean of the class means (their
    released code); the same on balanced classes."""

    collapse_tol: float = 0.05
    """A class counts as collapsed to a point when its whole spread (RMS distance to its
    mean) is below this share of its separation from the other classes along its
    discriminative directions (repflat.analysis.discriminative)."""

    def __post_init__(self):
        if not 0 < self.collapse_tol < 1:
            raise FieldError("collapse_tol", "a number in (0, 1)", self.collapse_tol)
        if not MIN_RTOL <= self.rtol < 1:
            raise FieldError("rtol", f"a number in [{MIN_RTOL:g}, 1) (below {MIN_RTOL:g} · σ₁ "
                             "singular values are round-off and read as 0)", self.rtol)
