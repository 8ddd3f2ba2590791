"""`repflat analyze` and `repflat report`: tables and a report written into a directory.

`analyze` computes the tables (repflat.analysis.pipeline.compute) and writes them with
the report; `report` rebuilds the report of experiment or analysis directories from
their tables (repflat.analysis.pipeline.load), computing them only when they are missing
or the runs changed. Both claim their output directory (it must be new, empty or an
analysis directory: a folder of the user's is refused) and swap the new files in only
once all are built (`write_outputs`).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from repflat.analysis.pipeline import TABLES, compute, load, read_record, write_tables
from repflat.analysis.report.build import ReportOptions, build_report, check_options
from repflat.analysis.results import Analysis
from repflat.config import read_yaml
from repflat.errors import UserError, expected, public
from repflat.files import is_regular, no_links, temporary_name
from repflat.rundir.lock import exclusive, visible_entries
from repflat.rundir.owner import check_owned
from repflat.rundir.names import (ANALYSIS_DIR, ANALYSIS_FILE, ANALYSIS_MARKER, CONFIG_FILE, EXPERIMENT_FILE, FIGURES,
                                  MANIFEST)



def check_output_dir(out: Path) -> None:
    """Refuse, writing nothing, an output directory that is not repflat's analysis
    directory: a run directory (it would mix two contracts), or a folder of the user's
    own that holds files (its report.html or figures would be overwritten), whatever
    their names: ownership is repflat's owner marker (repflat.rundir.owner), or for an
    analysis of an older repflat its `.repflat-analysis` or a record it wrote, and no
    file beside repflat's own."""
    if out.exists() and not out.is_dir():
        raise expected("out", "a directory", f"{out} (a file)")
    if (out / CONFIG_FILE).is_file() or (out / MANIFEST).is_file():
        raise expected("out", "a directory for analysis outputs, not a run directory", str(out))
    if out.is_dir() and visible_entries(out):
        check_owned(out, "analysis", "`repflat analyze` or `repflat report`",
                    legacy=is_regular(out / ANALYSIS_MARKER) or _older_record(out))


def _older_record(out: Path) -> bool:
    """`out` holds an analysis.json as repflat wrote it before the owner marker: a user's
    file of that name (other fields) does not make the folder an analysis directory."""
    if not is_regular(out / ANALYSIS_FILE):
        return False
    try:
        record = read_record(out)
    except UserError:
        return False
    return isinstance(record.get("format"), int) and isinstance(record.get("settings"), dict)


PUBLISH_ORDER = (".png", ".csv", ".json", ".md", ".html")
"""Figures first and the pages last: at every moment of the swap the report on disk
refers only to files that exist."""


def write_outputs(analysis: Analysis, out: Path, options: ReportOptions, *,
                  tables: bool, progress: bool = False) -> list[Path]:
    """Write the tables (if `tables`) and the report into `out`, which the caller holds
    locked: everything is built in a staging directory first, then moved over the
    previous files one by one, figures before the pages that show them, and only then
    are figures the new report no longer draws removed. A failure while building leaves
    the previous report as it was; a kill during the swap leaves pages whose figures
    exist (the staging directory is removed by the next writer)."""
    (out / ANALYSIS_MARKER).touch()
    stage = temporary_name(out / "stage")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        built = (write_tables(analysis, stage, home=out) if tables else []) \
            + build_report(analysis, stage, options, checked=True, progress=progress)
        order = {suffix: i for i, suffix in enumerate(PUBLISH_ORDER)}
        published = []
        for path in sorted(built, key=lambda p: order.get(p.suffix, -1)):
            os.replace(path, out / path.name)
            published.append(out / path.name)
        drawn = {p.name for p in built}
        for stale in (f for files in FIGURES.values() for f in files):  # datasets_entropy.png too
            if stale not in drawn:
                (out / stale).unlink(missing_ok=True)
        return published
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@public
def analyze(paths: Iterable[str | Path], out: str | Path, *, overrides: dict | None = None,
            progress: bool | None = None, options: ReportOptions = ReportOptions(),
            derived: bool = False) -> list[Path]:
    """Analyse the runs under `paths` into `out`; return the files written.

    What `repflat analyze` does: `repflat.analysis.compute`, then the tables
    (spectra.csv, flattening.csv, summary.csv, training.csv, analysis.json), the figures
    and report.md / report.html written into `out`. Every input is read and every option
    checked before the first file is written; the new files replace the old ones only
    once all are built (`write_outputs`).

    Parameters
    ----------
    paths : path, FeatureSet, or a list of them, or a mapping {name: FeatureSet}
        What `repflat.analysis.compute` takes: run directories, experiment directories
        (all their runs), `Features` or `MemoryFeatures` objects.
    out : str or Path
        The output directory: new, empty, or an analysis directory written before (its
        files are replaced). A run directory or a folder of other files is refused.
    overrides : dict, optional
        AnalysisConfig fields (split, layers, epochs, center, scale, rtol, ...) that win
        over the experiment's `analysis` section and the defaults.
    progress : bool, optional
        A progress bar over the analysed arrays; None (default): shown in a notebook or
        on a terminal when the analysis lasts more than a second.
    options : ReportOptions, default ReportOptions()
        What the report shows (embeddings, their layer and sample count, heat map
        metric, images inline, seed); see `repflat.analysis.report.build.ReportOptions`.
    derived : bool, default False
        `out` was not named by the user (an experiment's `analysis/`): it may then not be
        a symbolic link.

    Returns
    -------
    list of Path
        The files written into `out`, figures first and the pages last.

    Raises
    ------
    repflat.errors.UserError
        For an output directory that is a file, a run directory, a folder of the user's
        own or in use by another repflat process; a bad override or option; or inputs
        `compute` refuses (no features for the split, bad arrays, ...).
    """
    out = Path(out)
    check_output_dir(out)
    analysis = compute(paths, overrides=overrides, progress=progress)
    check_options(analysis, options)
    with exclusive(out, derived=derived, kind="analysis"):
        return write_outputs(analysis, out, options, tables=True, progress=progress)


# ---------------------------------------------------------------- repflat report

def _is_analysis_dir(path: Path) -> bool:
    return (path / ANALYSIS_FILE).is_file() or all((path / f).is_file() for f in TABLES[:3])


def _dirname(name: object, fallback: str) -> str:
    """An experiment's name as one directory under --out (else the directory's own name)."""
    text = str(name) if name else ""
    return text if text and Path(text).name == text and text not in (".", "..") else fallback


def report_targets(paths: Iterable[str | Path], out: str | Path | None) -> list[tuple[str, list[Path], Path]]:
    """(kind, inputs, output directory) for every report to write: one per experiment
    directory, one per analysis directory, one for all loose run directories together."""
    targets, loose = [], []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise expected("paths", "an existing experiment, analysis or run directory", str(path))
        if (path / EXPERIMENT_FILE).is_file():
            name = _dirname(read_yaml(path / EXPERIMENT_FILE, follow=False).get("name"), path.name)
            no_links(path, ANALYSIS_DIR, "paths")  # read below and maybe written: not a link
            targets.append(("experiment", [path], Path(out) / name if out else path / ANALYSIS_DIR))
        elif _is_analysis_dir(path):
            name = _dirname(read_record(path).get("name"), path.name)
            targets.append(("analysis", [path], Path(out) / name if out else path))
        elif (path / MANIFEST).is_file():
            loose.append(path)
        else:
            raise expected("paths", f"an experiment directory (with {EXPERIMENT_FILE}), an "
                           f"analysis directory (with {ANALYSIS_FILE}) or a run directory", str(path))
    if loose:
        if out is None and len(loose) > 1:
            raise expected("out", "a directory for the report of the run directories given",
                           None)
        # one run alone: its report goes into RUN/analysis, as `repflat analyze RUN` puts it
        if out is None:
            no_links(loose[0], ANALYSIS_DIR, "paths")
        targets.append(("runs", loose, Path(out) / "runs" if out else loose[0] / ANALYSIS_DIR))
    outs = [t[2].resolve() for t in targets]
    dupes = sorted({str(o) for o in outs if outs.count(o) > 1})
    if dupes:
        raise UserError(f"two reports would be written to {dupes[0]}; report them "
                        "one at a time or rename an experiment", argument="out")
    for _, _, target in targets:
        check_output_dir(target)
    return targets


def _prepare(kind: str, inputs: list[Path], progress: bool) -> Analysis:
    if kind == "analysis":
        return load(inputs[0], progress=progress)
    if kind == "experiment" and (inputs[0] / ANALYSIS_DIR / ANALYSIS_FILE).is_file():
        return load(inputs[0] / ANALYSIS_DIR, progress=progress, root=inputs[0])
    return compute(inputs, progress=progress)


def report(paths: Iterable[str | Path], out: str | Path | None = None, *,
           options: ReportOptions = ReportOptions(), progress: bool = False) -> list[Path]:
    """One report per experiment (see `report_targets`); every input is read and every
    option checked before the first file is written."""
    prepared = []
    for kind, inputs, target in report_targets(paths, out):
        analysis = _prepare(kind, inputs, progress)
        check_options(analysis, options)
        prepared.append((kind, inputs, target, analysis))
    written = []
    for kind, inputs, target, analysis in prepared:
        # named by the user: an analysis directory reported in place; found: the rest
        derived = not (kind == "analysis" and out is None)
        with exclusive(target, derived=derived, kind="analysis"):
            source = analysis.source.resolve() if analysis.source else None
            # tables computed now, or read from elsewhere, are written beside the report
            written += write_outputs(analysis, target, options, tables=source != target.resolve(),
                                     progress=progress)
    return written
