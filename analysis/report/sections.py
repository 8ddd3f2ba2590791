"""The report's figures, one function each, registered in the order the report shows them.

Each figure's name and files are declared in the contract (repflat.rundir.names.FIGURES,
which `--figures` and the stale-figure cleanup read); here `@figure(name)` binds the
function that draws it. A drawer gets the `Page` (the analysis, the options, the output
directory, the drawing module) and adds its blocks with `page.add` (a figure with its
heading and caption) or `page.say` (a heading and sentences where there is no figure).

To add a figure: its name and files in FIGURES, and a drawer here (tests/test_registry.py
checks that the two agree).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repflat.analysis.embeddings import NAMES, embed_runs, sampling_note
from repflat.analysis.report.corollary import against_premise, families
from repflat.analysis.report.markup import Heading, Image, Paragraph
from repflat.analysis.registry import scale_free
from repflat.analysis.results import Analysis
from repflat.rundir.names import FIGURES

DEFAULT_METRIC = "along_spread"
"""The heat map's default: scale-free and Corollary 1's own measure; the effective rank
(scale-free too) when the features carry no discriminative summaries (format 1, other
tools). The raw statistics (Σ σ₂…) are one option away: `repflat report --metric`."""
FALLBACK_METRIC = "effective_rank"
PER_ARM = ("figure1", "planes", "boundaries", "embeddings")
"""Figures drawn from one run per arm: left out when the runs span several data sets (an
arm's lowest seed would stand for one data set only); the data set grid replaces them."""
DRAWERS: dict[str, Callable] = {}


def figure(name: str):
    """Register the drawer of figure `name` (a key of repflat.rundir.names.FIGURES)."""
    def register(draw: Callable) -> Callable:
        if name not in FIGURES:
            raise ValueError(f"figure {name!r} is not declared in repflat.rundir.names.FIGURES")
        DRAWERS[name] = draw
        return draw
    return register


@dataclass
class Page:
    """What a drawer needs, and the blocks and files it adds."""

    analysis: Analysis
    options: object  # ReportOptions
    out: Path
    d: object  # repflat.analysis.report.drawing
    where: object  # the data set × arm cells (repflat.analysis.report.datasets.cells)
    blocks: list = field(default_factory=list)
    written: list = field(default_factory=list)

    def add(self, fig, file: str, heading: str, caption: str, before: list | None = None,
            after: list | None = None) -> None:
        """Save `fig` as `file` and add it under `heading` (nothing for no figure)."""
        if fig is None:
            return
        self.written.append(self.d.save(fig, self.out, file))
        self.blocks.extend([Heading(heading), *(before or []), Image(file, caption), *(after or [])])

    def say(self, heading: str, *sentences: str) -> None:
        self.blocks += [Heading(heading), *map(Paragraph, sentences)]


def embedding_layer(analysis: Analysis, options) -> str | None:
    """The layer the embeddings show (None: nothing to embed)."""
    split = analysis.settings.split
    saved = list(dict.fromkeys(e.layer for r in analysis.runs for e in r.features.select(split=split)))
    if options.embedding_layer is not None:
        return options.embedding_layer
    analysed = [l for l in analysis.layer_order if l in saved]
    wanted = [l for l in analysis.settings.spectra_layers if l in analysed]
    if wanted:
        return wanted[-1]
    wide = [l for l in analysed for r in analysis.runs[:1]
            if (s := r.features.select(split=split, layer=l)) and s[0].shape[-1] > 2]
    return (wide or analysed or [None])[-1]


def heatmap_metric(analysis: Analysis, options) -> str | None:
    present = list(dict.fromkeys(analysis.summary["metric"]))
    if options.metric is not None:
        return options.metric
    for metric in (DEFAULT_METRIC, FALLBACK_METRIC):
        if metric in present:
            return metric
    return next(iter(present), None)


def scale_note(metric: str) -> str:
    """What the heat map's caption says of its metric's scale."""
    free = scale_free(metric)
    if free is None:
        return "a metric repflat does not declare: whether it is scale-free is not known"
    if free:
        return ("scale-free: unchanged by the layer's scale; `repflat report --metric "
                "sum_other_singular_values` shows the paper's raw Σ σ₂…")
    return ("raw, not scale-free: it changes with the layer's scale, a gauge of the loss, so a "
            "ratio here may be scale alone")


@figure("datasets")
def _datasets(page: Page) -> None:
    from repflat.analysis.report.datasets import cell_metrics

    if page.where.empty:
        return
    a, d = page.analysis, page.d
    metrics = cell_metrics(a.training, page.where)
    caption = ("Rows: data sets; columns: arms (lowest seed). The classifier over the input "
               "plane from the saved grid (the data's bounding box plus 10% each side), {}; "
               "training points by class (noisy labels as trained). Corner: test NLL and ECE, "
               "mean over seeds.")
    page.add(d.dataset_grid(a.runs, page.where, metrics), "datasets.png",
             "Decision boundaries by data set", caption.format(
                 "the predicted class faded to white at chance (confidence)"))
    page.add(d.dataset_grid(a.runs, page.where, metrics, response="entropy"), "datasets_entropy.png",
             "Entropy by data set", caption.format(
                 "the entropy of the predicted distribution (light: certain, dark: log K nats)"))


@figure("figure1")
def _figure1(page: Page) -> None:
    a, s = page.analysis, page.analysis.settings
    if a.runs:
        page.add(page.d.figure1(a.runs, a.spectra, layers=s.spectra_layers, cls=s.spectra_class),
                 "figure1.png", "Figure 1",
                 "Figure 1 reproduced: (a, b) input-space confidence, ERM vs manifold mixup (the "
                 "lowest seed of each strategy's first arm, named in the panel title); (d, e) "
                 "the 2D bottleneck with its confidence map, training states by class and hidden "
                 "states of uniform inputs (black); (c, f) one class's singular values (log "
                 "scale) for every arm: line = mean over seeds, band = min–max over seeds.")


@figure("planes")
def _planes(page: Page) -> None:
    if page.analysis.runs:
        page.add(page.d.planes(page.analysis.runs), "planes.png", "Hidden planes",
                 "The 2D plane layer of every arm (lowest seed): confidence map, training states "
                 "by class, hidden states of uniform inputs in black (the paper's Figure 2 view).")


@figure("boundaries")
def _boundaries(page: Page) -> None:
    if page.analysis.runs:
        page.add(page.d.boundaries(page.analysis.runs), "boundaries.png", "Decision boundaries",
                 "Every arm's classifier over the input plane (lowest seed), from the saved grid: "
                 "the predicted class, the confidence (faded to white at chance) with the "
                 "training points, and the entropy of the predicted distribution in nats.")


@figure("spectra")
def _spectra(page: Page) -> None:
    a, s = page.analysis, page.analysis.settings
    page.add(page.d.spectra_figure(a.spectra, cls=s.spectra_class), "spectra.png", "Spectra",
             f"Singular values of each layer's {'centred' if s.center else 'raw'} class matrices "
             "(log scale) at each run's last analysed epoch: line = mean over seeds, band = "
             "min–max over seeds. The class average is taken per run before the seeds; the pooled "
             "column (all classes together) is the control.")


@figure("heatmap")
def _heatmap(page: Page) -> None:

    summary = page.analysis.summary
    metric = heatmap_metric(page.analysis, page.options)
    if not metric:
        return
    arms = list(dict.fromkeys(summary["arm"]))
    if len(arms) == 1:
        page.say("Strategy × layer", f"There is one arm ({arms[0]}), so there is no heat map: its "
                 "colours are ratios between arms. Its values are in the flattening and "
                 "all-metrics tables.")
    page.add(page.d.heatmap_figure(summary, metric), "heatmap.png", "Strategy × layer",
             f"{metric} ({scale_note(metric)}; class-averaged, mean over seeds, final epoch) "
             "per arm and layer; "
             "numbers = values, colour = ratio to the first arm at the same layer (log scale; at "
             "a layer the first arm lacks, to the first arm that has it). "
             "The pooled-class control is beside it when the tables have it.")


@figure("epochs")
def _epochs(page: Page) -> None:
    summary, d = page.analysis.summary, page.d
    epochs = d.epochs_figure(summary)
    several = len(summary) and summary.groupby("arm")["epoch"].nunique().max() > 1
    constant = d.constant_note(d.constant_panels(summary)) if several else None
    if epochs is None:
        page.say("Over training",
                 "One epoch per run was analysed. To see when flattening sets in, capture several "
                 "epochs (capture.epochs in the config) and analyse them all (--epochs all)."
                 if not several else "Every metric the figure would show is constant over "
                 "training, so there is no figure." if constant else "No layer but the input "
                 "has the metrics this figure shows.", *([constant] if several and constant else []))
        return
    page.add(epochs, "epochs.png", "Over training",
             "Class-averaged flattening metrics at every analysed epoch: mean over seeds, band = "
             "±1 std.", after=[Paragraph(constant)] if constant else [])


@figure("embeddings")
def _embeddings(page: Page) -> None:

    a, options = page.analysis, page.options
    layer = embedding_layer(a, options) if a.runs and options.embeddings else None
    if layer is None:
        return
    found = embed_runs(a.runs, layer=layer, split=a.settings.split, methods=options.embeddings,
                       max_samples=options.max_samples, seed=options.seed)
    notes = [Paragraph(n) for n in found.notes]  # arms whose layer has nothing to embed
    if found.data.empty:
        page.blocks += [Heading("Embeddings"), *notes, Paragraph(
            f"No arm's {layer} has anything to embed, so there is no embeddings figure.")]
        return
    data = found.data
    page.add(page.d.plot_embeddings(data, seed=options.seed), "embeddings.png", "Embeddings",
             f"{', '.join(NAMES[m] for m in options.embeddings)} of {layer} for each arm "
             f"(lowest seed), points coloured by class; {sampling_note(data, options.seed)}. "
             f"Seeded ({options.seed}); `repflat report --embeddings pca,tsne,umap` adds UMAP.",
             before=notes)


@figure("corollary")
def _corollary(page: Page) -> None:
    a = page.analysis
    frames = {layer: frame for layer in a.layer_order
              if not (frame := against_premise(a.flat, a.training, layer)).empty}
    if not frames:
        return
    erm = {r.name for r in a.runs if r.strategy == "none"}
    fig, left_out = page.d.corollary_figure(frames, families(a), erm)
    page.add(fig, "corollary.png", "Corollary 1: spread against the premise",
             "Class-averaged spread along the discriminative directions (left: Corollary 1 puts "
             "it at 0 at a minimiser) and across them (right: left free), each relative to the "
             "class separation, against the excess mixup loss (log scale; the premise is that "
             "it is small), one row per layer. One line per run through its analysed epochs, a "
             "dot at the last; ERM (hollow) at its final epoch, its excess measured on the same "
             "kind of mixes. Flattening: along → 0 as the excess falls, across finite; "
             "collapse: both → 0.",
             after=[Paragraph(f"Rows left out of the figure, to keep it readable: "
                              f"{', '.join(left_out)}; their values are in summary.csv.")]
             if left_out else [])


@figure("effects")
def _effects(page: Page) -> None:
    a = page.analysis
    if not len(a.effects):
        return
    found, files = page.d.sweep_blocks(a.effects, [l for l in a.layer_order if l != "input"],
                                       lambda fig, name: page.d.save(fig, page.out, name),
                                       strategies={r.name: r.strategy for r in a.runs})
    page.blocks += found
    page.written += files
