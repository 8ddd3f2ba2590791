"""The one report builder: an analysis (tables, settings, runs) in, figures and a report out.

`repflat analyze`, `repflat run` and `repflat report` all end here: the first two with
the default `ReportOptions`, `report` with the options its flags give. The report is
built from the tidy tables (the same ones the CSVs hold) and, for the figures that need
saved features (Figure 1, planes, boundaries, embeddings), from the runs themselves;
when the runs are not available those figures are left out and the report says so.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from repflat.analysis.results import Analysis
from repflat.analysis.embeddings import METHODS
from repflat.analysis.report.interpret import GAUGE, interpretation
from repflat.analysis.paper import PICTURES, paper_entry
from repflat.analysis.report.markup import Code, Details, Heading, Items, Paragraph, Table, write_report
from repflat.analysis.report.similarity import similarity_blocks
from repflat.analysis.report.verdict import VERDICT_INTRO, verdict
from repflat.analysis.report.tables import (accuracy_table, all_metrics_table, arm_configs,
                                            config_difference_table, config_yaml,
                                            extraction_configs, flattening_table, mixing_table,
                                            paper_table, theory_table, unknown_metrics)
from repflat.analysis.theory import NARROW, theory_check
from repflat.analysis.report.corollary import INTRO as COROLLARY_INTRO, corollary_reading
from repflat.analysis.report.datasets import calibration_table, cell_metrics, cells, mixup_sentences
from repflat.analysis.report.sections import DRAWERS, PER_ARM, Page
from repflat.progress import counted, say
from repflat.errors import expected, unknown
from repflat.rundir.names import FIGURES
from repflat.strict import to_plain

FIGURE_NAMES = tuple(FIGURES)
"""What `--figures` names (repflat.rundir.names.FIGURES), in the report's order."""


@dataclass(frozen=True)
class ReportOptions:
    """What `repflat report` lets a reader choose; `analyze` and `run` use the defaults."""

    embeddings: tuple[str, ...] = ("pca", "tsne")
    """Embedding methods (pca, tsne, umap); empty for none. UMAP is slow to import
    (benchmarks/cli_latency.py --imports), so it is not among the defaults."""
    embedding_layer: str | None = None
    """Layer to embed; default: the last of the analysis' spectra_layers, else the last
    analysed layer wider than 2."""
    max_samples: int = 2000
    """Samples per embedding panel; larger layers are subsampled at random (seeded)."""
    metric: str | None = None
    """Metric of the strategy × layer heat map (any metric of summary.csv); default: the
    scale-free along_spread, else effective_rank (repflat.analysis.report.sections)."""
    embed_images: bool = True
    """Carry the images inside report.html (they are written beside it in any case)."""
    seed: int = 0
    """Seed of the embeddings and their subsampling."""
    figures: tuple[str, ...] | None = None
    """Figures to draw, by name (FIGURE_NAMES); None for all, () for none (the tables and
    the report alone, in a fraction of the time)."""

    def draws(self, name: str) -> bool:
        return self.figures is None or name in self.figures


def check_options(analysis: Analysis, options: ReportOptions) -> None:
    """Refuse, before anything is written, options this analysis cannot honour."""
    for m in options.embeddings:
        if m not in METHODS:
            raise unknown("embeddings", m, METHODS)
    for name in options.figures or ():
        if name not in FIGURE_NAMES:
            raise unknown("figures", name, ("none", "all", *FIGURE_NAMES))
    if options.max_samples < 10:
        raise expected("max_samples", "an integer >= 10", options.max_samples)
    metrics = sorted(set(analysis.summary["metric"]))
    if options.metric is not None and options.metric not in metrics:
        raise unknown("metric", options.metric, metrics)
    if options.embedding_layer is not None and options.embeddings and analysis.runs:
        split = analysis.settings.split
        saved = sorted({e.layer for r in analysis.runs for e in r.features.select(split=split)})
        if options.embedding_layer not in saved:
            raise unknown("embedding_layer", options.embedding_layer, saved)


def _drawing():
    """The figure builders (repflat.analysis.report.drawing), imported on first use."""
    from repflat.analysis.report import drawing

    return drawing


def _paper_blocks(analysis: Analysis) -> list:
    entry = paper_entry(analysis.name)
    if entry is not None:
        return [Heading("The paper's numbers"),
                Paragraph(f"{entry.source}. {entry.note}"),
                Table(paper_table(entry, analysis.summary, analysis.training, analysis.layer_order),
                      name="paper")]
    if analysis.name in PICTURES:
        return [Heading("The paper's numbers"), Paragraph(PICTURES[analysis.name])]
    return []  # a user's own experiment: the paper has nothing to set beside it


def _theory_blocks(analysis: Analysis) -> list:
    """Corollary 1 class by class, at the narrow layers (the bottlenecks)."""
    blocks = []
    for layer in analysis.layer_order:
        check = theory_check(analysis.flat, layer)
        if check.empty or check["theory_dimension"].iloc[0] > NARROW:
            continue
        d = int(check["theory_dimension"].iloc[0])
        blocks += [Heading(f"Corollary 1 at {layer}: each class against dim(H) − K + 1 = {d}"),
                   Paragraph(f"For every class and for their average, mean ± std over seeds: "
                             "the spread along the discriminative directions ÷ the class "
                             "separation (Corollary 1's test: 0 at a minimiser) and the share of "
                             "seeds where the class collapsed to a point (allowed), where the "
                             f"runs saved their discriminative summaries; the numerical rank "
                             f"(singular values above {analysis.settings.rtol:g} · σ₁) and the "
                             f"share of the class's variance outside its best {d}-dimensional "
                             "subspace (blind to orientation: a collapsed class reads as thick)."),
                   Table(theory_table(check), name=f"theory-{layer}")]
    return blocks


def _config_blocks(analysis: Analysis) -> list:
    configs = arm_configs(analysis.runs)
    settings = config_yaml(to_plain(analysis.settings))
    blocks = [Heading("Configuration")]
    if configs:
        diff = config_difference_table(configs)
        seeds = sorted({r.seed for r in analysis.runs if isinstance(r.seed, int)})
        blocks.append(Paragraph("The settings on which the arms differ (each arm's full "
                                "resolved config is below; seeds: "
                                + (", ".join(map(str, seeds)) or "unknown") + ")."
                                if len(diff) else "The arms share every setting."))
        if len(diff):
            blocks.append(Table(diff, name="config-differences"))
        mixing = mixing_table(analysis.runs)
        if len(mixing):
            blocks += [Paragraph("What mixing did, from each run's record (run.json): the "
                                 "batches mixed at each eligible layer over training, summed "
                                 "over seeds; the standard deviation of the λ drawn beside "
                                 "the one its α implies (the mean of Beta(α, α) is ½ for "
                                 "every α, its spread is not); the mean λ."),
                       Table(mixing, name="mixing")]
        blocks += [Details(f"config of arm {arm}", [Code(config_yaml(cfg), "yaml")])
                   for arm, cfg in configs.items()]
    else:
        extractions = extraction_configs(analysis.runs)
        blocks += ([Details(f"extraction {name}", [Code(config_yaml(cfg), "yaml")])
                    for name, cfg in extractions.items()] if extractions else
                   [Paragraph("These features came with no config (written by another tool, or "
                              "the runs are not available here).")])
    return blocks + [Details("analysis settings", [Code(settings, "yaml")])]


def _figure_blocks(analysis: Analysis, out: Path, options: ReportOptions) -> tuple[list, list[Path]]:
    """The figures this report draws (repflat.analysis.report.sections, in their order),
    and the sentence naming those left out as asked."""
    page = Page(analysis, options, out, _drawing() if options.figures != () else None,
                cells(analysis.runs))
    skipped = [n for n in FIGURE_NAMES if not options.draws(n)  # no grid to leave out of one data set
               and (n != "datasets" or not page.where.empty)]
    if skipped:
        page.blocks.append(Paragraph(f"Figures left out, as asked (--figures): {', '.join(skipped)}."))
    if not page.where.empty:
        _dataset_blocks(analysis, page.where, page.blocks)
    for name, draw in DRAWERS.items():
        if not options.draws(name) or (not page.where.empty and name in PER_ARM):
            continue
        draw(page)
    return page.blocks, page.written


def _dataset_blocks(analysis: Analysis, where: pd.DataFrame, blocks: list) -> None:
    """The data set × arm section's text, appended to `blocks`: sentences and the table
    (its grids are the `datasets` figure)."""
    metrics = cell_metrics(analysis.training, where)
    blocks += [Heading("Data sets × arms")]
    blocks += [Paragraph(
        f"{where['dataset'].nunique()} data sets × {where['cell'].nunique()} arms. Figures drawn "
        "from one run per arm (Figure 1, planes, boundaries, embeddings) are left out: each "
        "would show one data set only; the grids below show them all.")]
    if not metrics.empty:
        blocks += [Paragraph("Test measures at the final epoch, mean ± std over seeds. ECE: "
                             "Σ_b (n_b/n)·|accuracy_b − confidence_b| over 15 equal-width bins "
                             "of the confidence (Guo et al. 2017); label noise, where a data set "
                             "has it, is in the training labels only."),
                   Table(calibration_table(metrics), name="datasets")]


def dataset_findings(analysis: Analysis, where: pd.DataFrame) -> list[str]:
    """'What this shows' for runs of several data sets: ERM against manifold mixup within
    each data set (test NLL, ECE), and why the per-layer sentences are left out."""
    metrics = cell_metrics(analysis.training, where)
    said = mixup_sentences(metrics) if not metrics.empty else []
    return said + [
        "The per-layer flattening sentences compare every arm with one baseline arm, which "
        "here belongs to one data set only, so they are left out; to read them, analyse one "
        "data set's runs at a time (repflat analyze OUT/runs/<data set>.*-seed* --out DIR)."]


def build_report(analysis: Analysis, out: Path, options: ReportOptions = ReportOptions(), *,
                 checked: bool = False, progress: bool = False) -> list[Path]:
    """Draw the figures into `out` and write report.md and report.html there."""
    if not checked:  # `repflat analyze` and `report` check before their outputs are claimed
        check_options(analysis, options)
    if options.figures == ():
        return _build_report(analysis, out, options, progress)
    # The style and the warning filters are local (savefig's dpi and tight box too),
    # nothing is set globally.
    with _drawing().figure_style(), _drawing().library_warnings_hidden():
        return _build_report(analysis, out, options, progress)


def _build_report(analysis: Analysis, out: Path, options: ReportOptions, progress: bool) -> list[Path]:
    s = analysis.settings
    arms = pd.Series([r.name for r in analysis.runs]).value_counts(sort=False)
    intro = (f"{counted(len(analysis.runs), 'run')}: "
             + ", ".join(f"{a} ({counted(n, 'seed')})" for a, n in arms.items())
             + ". " if len(arms) else "")
    blocks = [Paragraph((analysis.description + " " if analysis.description else "") + intro
                        + f"Features of the {s.split} split, "
                        + ("centred" if s.center else "uncentred (raw)")
                        + f" class-conditional spectra, numerical rank at rtol = {s.rtol:g} · σ₁.")]
    findings, cautions = interpretation(analysis)
    where = cells(analysis.runs)
    # across data sets the verdict needs a sweep's own baselines (each grid point against
    # ERM on the same data); without them one baseline would stand for every data set
    said = verdict(analysis) if where.empty or len(analysis.effects) else []
    lead = [Heading("Verdict"), Paragraph(VERDICT_INTRO), Items(said, name="verdict")] if said else []
    corollary, said = corollary_reading(analysis) if where.empty else (pd.DataFrame(), [])
    if not where.empty:  # the baseline arm is one data set's: compare within data sets only
        findings = dataset_findings(analysis, where)
    if findings or cautions or len(corollary):
        blocks += [Heading("What this shows")]
        if len(corollary):
            blocks += [Paragraph(COROLLARY_INTRO), Table(corollary, name="corollary",
                                                         wrap=list(corollary.columns).index("reading") + 1),
                       *map(Paragraph, said)]
        if findings and where.empty:
            blocks += [Heading("The paper's statistics", 3), Paragraph(GAUGE)]
        blocks += [*map(Paragraph, findings)]
        blocks += [Heading("Caveats", 3), *map(Paragraph, cautions)] if cautions else []
    blocks += [Paragraph(n) for n in analysis.notes]
    blocks += _paper_blocks(analysis)
    extra = unknown_metrics(analysis.summary)
    blocks += [Heading("Flattening"),
               Paragraph("Per-class metrics averaged over classes, then mean ± std over seeds, "
                         "at each run's last analysed epoch: the paper's statistics (σ₁, Σ σ₂…, "
                         "in the layer's units, which the loss does not fix: the gauge) and "
                         "scale-free ones (effective and numerical rank, the share of variance "
                         "beyond dim(H) − K + 1). Corollary 1's own test, the spread along the "
                         "discriminative directions, is in the table at the top and under All "
                         "metrics. The pooled columns (all classes together) are the paper's "
                         "control."),
               Table(flattening_table(analysis.summary, analysis.layer_order), name="flattening")]
    blocks += _theory_blocks(analysis)
    blocks += similarity_blocks(analysis)
    if {"epoch", "test_accuracy", "test_nll"} <= set(analysis.training.columns):
        blocks += [Heading("Training"), Table(accuracy_table(analysis.training), name="training")]
    started = time.perf_counter()
    figures, written = _figure_blocks(analysis, out, options)
    drawn = [p.stem + (f" ({', '.join(options.embeddings)})" if p.stem == "embeddings" else "")
             for p in written]
    say(f"figures: {', '.join(drawn) or 'none'}, {time.perf_counter() - started:.1f} s", show=progress)
    blocks += figures + _config_blocks(analysis)
    blocks += [Heading("All metrics"),
               Paragraph("Every metric of summary.csv at every analysed epoch"
                         + (f", including those the flattening table leaves out ({', '.join(extra)})"
                            if extra else "") + ". Full tables beside this file: spectra.csv, "
                         "flattening.csv, summary.csv, training.csv."),
               Details("all metrics, mean ± std over seeds",
                       [Table(all_metrics_table(analysis.summary, analysis.layer_order),
                              name="all-metrics")])]
    return written + write_report(out, lead + blocks, analysis.title, embed_images=options.embed_images,
                                  lead=len(lead))


def replace(options: ReportOptions, **changes) -> ReportOptions:
    return dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
