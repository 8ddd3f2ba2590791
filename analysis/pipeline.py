"""`repflat analyze` and `repflat report`: runs in, tables, figures and a report out.

An analysis directory holds spectra.csv, flattening.csv, summary.csv (class-averaged
metrics, mean ± std over seeds), training.csv (every run's metrics.csv, stacked),
analysis.json (what was analysed: the settings, and each run's path relative to the
directory with its manifest's sha256), the figures, report.md and report.html.

`analyze` computes the tables from the runs and writes all of it. `report` rebuilds the
report of experiment or analysis directories from their tables, computing them only when
they are missing or the runs changed since (their manifests' checksums differ). Both end
in the one report builder, analysis.document.build_report.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.document import FIGURES, Analysis, ReportOptions, build_report, check_options
from analysis.io import numeric_columns, read_csv
from analysis.flattening import analyze_features, plan, summarize
from analysis.runs import collect_runs, training_metrics
from repflat.config import AnalysisConfig, read_yaml
from repflat.lock import exclusive
from repflat.progress import progress_bar
from repflat.errors import RepflatWarning, UserError, expected
from repflat.files import is_regular, read_json
from repflat.rundir import EXPERIMENT_FILE, claimed_by, read_run
from repflat.store import MANIFEST, sha256_file, write_text
from repflat.typed import FieldError, parse, to_plain

ANALYSIS_FILE = "analysis.json"
MARKER = ".repflat-analysis"
"""Left in an analysis directory when repflat claims it, before anything else is written."""
TABLES = ("spectra.csv", "flattening.csv", "summary.csv", "training.csv")
TEXT_COLUMNS = {c: str for c in ("run", "arm", "strategy", "split", "layer", "class", "metric")}


def check_output_dir(out: Path) -> None:
    """Refuse, writing nothing, an output directory that is not repflat's analysis
    directory: a run directory (it would mix two contracts), or a folder of the user's
    own that holds files (its report.html or figures would be overwritten)."""
    if out.exists() and not out.is_dir():
        raise expected("--out", "a directory", f"{out} (a file)")
    if (out / "config.yaml").is_file() or (out / MANIFEST).is_file():
        raise expected("--out", "a directory for analysis outputs, not a run directory", str(out))
    if out.is_dir() and not (out / MARKER).is_file() and not (out / ANALYSIS_FILE).is_file():
        claimed_by(out, MARKER, "`repflat analyze` or `repflat report`")  # refuses if not empty


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False))


def _description(paths: Iterable[str | Path]) -> str | None:
    for p in map(Path, paths):
        if (p / EXPERIMENT_FILE).is_file():
            text = read_yaml(p / EXPERIMENT_FILE, follow=False).get("description")
            return str(text) if text else None
    return None


def with_overrides(settings: AnalysisConfig, overrides: dict) -> AnalysisConfig:
    """`settings` with command-line values, checked by AnalysisConfig itself; a bad one
    is an error naming its flag (`--rtol: expected ...`)."""
    try:
        return dataclasses.replace(settings, **overrides)
    except FieldError as err:
        raise expected(f"--{err.field}", err.what, err.got) from None


def compute(paths: Iterable[str | Path], *, overrides: dict | None = None,
            settings: AnalysisConfig | None = None, progress: bool = False) -> Analysis:
    """Open the runs under `paths` and compute every table, writing nothing.

    Settings: `settings` if given, else the experiment directory's `analysis` section,
    else the defaults; `overrides` (from the command line) win over all of them.
    """
    paths = list(paths)
    overrides = overrides or {}
    with_overrides(AnalysisConfig(), overrides)  # a bad flag is named before runs are read
    runs, found, name = collect_runs(paths)
    settings = with_overrides(settings or found or AnalysisConfig(), overrides)
    total = len(plan(runs, settings))  # checks every requested array before any output
    with progress_bar(total=total, desc="analysis", unit="array", show=progress,
                      leave=False) as bar:
        spectra, flat = analyze_features(runs, settings, progress=bar.update)
    analysis = Analysis(name, settings, runs, spectra, flat, summarize(flat),
                        training_metrics(runs), _description(paths))
    for note in (small_classes_note(flat), unfinished_note(runs)):
        if note:
            warnings.warn(note, RepflatWarning, stacklevel=2)
            analysis.notes.append(note)
    return analysis


def unfinished_note(runs) -> str | None:
    """A sentence naming runs whose run.json says they are still running (or were killed)."""
    running = [r.run_id for r in runs if r.status == "running"]
    if not running:
        return None
    return (f"{len(running)} run(s) are unfinished (run.json says running): their last "
            f"captured epoch is analysed, not their final one: {', '.join(running)[:300]}")


def small_classes_note(flat: pd.DataFrame) -> str | None:
    """A sentence naming the classes too small to have a spectrum, if there are any."""
    counts = flat[(flat["metric"] == "n_samples") & ~flat["class"].isin(["pooled", "mean", "all"])]
    small = counts[counts["value"] < 2].drop_duplicates(["run", "class"])
    if small.empty:
        return None
    named = ", ".join(f"class {c} of {r}" for r, c in zip(small["run"], small["class"]))
    return (f"{len(small)} class(es) with fewer than two samples have no spread, so only their "
            f"sample count is reported: {named[:300]}")


def write_tables(analysis: Analysis, out: Path, home: Path | None = None) -> list[Path]:
    """The CSVs and analysis.json in `out`; run paths are relative to `home` (the
    directory the tables end up in; default `out`), so the two move together."""
    home = home or out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, frame in zip(TABLES, (analysis.spectra, analysis.flat, analysis.summary,
                                     analysis.training)):
        write_csv(out / fname, frame)
        written.append(out / fname)
    record = {"format": 1, "name": analysis.name, "description": analysis.description,
              "home": str(home.resolve()), "settings": to_plain(analysis.settings),
              "runs": [{"run": r.run_id, "path": os.path.relpath(r.path.resolve(), home.resolve()),
                        "manifest_sha256": sha256_file(r.path / MANIFEST)} for r in analysis.runs]}
    write_text(out / ANALYSIS_FILE, json.dumps(record, indent=1))
    return written + [out / ANALYSIS_FILE]


PUBLISH_ORDER = (".png", ".csv", ".json", ".md", ".html")
"""Figures first and the pages last: at every moment of the swap the report on disk
refers only to files that exist."""


def write_outputs(analysis: Analysis, out: Path, options: ReportOptions, *,
                  tables: bool) -> list[Path]:
    """Write the tables (if `tables`) and the report into `out`, which the caller holds
    locked: everything is built in a staging directory first, then moved over the
    previous files one by one, figures before the pages that show them, and only then
    are figures the new report no longer draws removed. A failure while building leaves
    the previous report as it was; a kill during the swap leaves pages whose figures
    exist (the staging directory is removed by the next writer)."""
    (out / MARKER).touch()
    stage = out / f".stage.{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        built = (write_tables(analysis, stage, home=out) if tables else []) \
            + build_report(analysis, stage, options)
        order = {suffix: i for i, suffix in enumerate(PUBLISH_ORDER)}
        published = []
        for path in sorted(built, key=lambda p: order.get(p.suffix, -1)):
            os.replace(path, out / path.name)
            published.append(out / path.name)
        drawn = {p.name for p in built}
        for stale in FIGURES:
            if stale not in drawn:
                (out / stale).unlink(missing_ok=True)
        return published
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def analyze(paths: Iterable[str | Path], out: str | Path, *, overrides: dict | None = None,
            progress: bool = False, options: ReportOptions = ReportOptions(),
            derived: bool = False) -> list[Path]:
    """Analyse the runs under `paths` into `out`; return the files written.

    `derived`: `out` was not named by the user (an experiment's `analysis/`)."""
    out = Path(out)
    check_output_dir(out)
    analysis = compute(paths, overrides=overrides, progress=progress)
    check_options(analysis, options)
    with exclusive(out, derived=derived):
        return write_outputs(analysis, out, options, tables=True)


# ---------------------------------------------------------------- repflat report

TABLE_COLUMNS = {"spectra.csv": ("epoch", "index", "singular_value"),
                 "flattening.csv": ("epoch", "value"),
                 "summary.csv": ("epoch", "mean", "std", "n_runs")}


def _read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for fname in TABLES:
        path = directory / fname
        optional = fname == "training.csv"  # older analyses lack it; runs without metrics leave it empty
        if not path.exists() and not path.is_symlink():
            if not optional:
                raise expected("PATH", f"an analysis directory with {fname}", str(directory))
            frames[fname] = pd.DataFrame()
            continue
        frame = read_csv(path, "PATH", dtype=TEXT_COLUMNS)
        if frame.empty and not optional:
            raise UserError(f"PATH: {path} is empty")
        needed = TABLE_COLUMNS.get(fname, ())
        missing = [c for c in (*needed, "arm", "layer") if c not in frame.columns] if needed else []
        if missing:
            raise UserError(f"PATH: {path} is not a repflat table (no column {missing[0]!r})")
        frames[fname] = numeric_columns(frame, needed, path, "PATH")
    return frames


def read_record(directory: Path) -> dict:
    """analysis.json of `directory`, checked; {} when there is none (older analyses)."""
    path = directory / ANALYSIS_FILE
    if not path.exists() and not path.is_symlink():
        return {}
    record = read_json(path, "PATH")
    runs = record.get("runs", []) if isinstance(record, dict) else None
    if not isinstance(runs, list) or not all(
            isinstance(r, dict) and isinstance(r.get("run"), str) and isinstance(r.get("path"), str)
            for r in runs):
        raise expected(f"PATH: {path}", "an analysis record written by repflat", "something else")
    return record


def load(directory: Path, *, progress: bool = False) -> Analysis:
    """An analysis directory's tables, with its runs re-opened when they are still where
    analysis.json says; re-analysed (same settings) when a run changed since.

    analysis.json may come from someone else and name any path. A recorded run beside
    the analysis (inside its parent directory, where `repflat run` and `repflat analyze
    RUN... --out` leave them) is opened, and re-analysed when it changed. A run elsewhere
    is not even looked at unless the analysis is still where it was written ("home"):
    a directory received from someone else, or moved, reads only what it holds itself;
    and then only when its manifest is the one analysed (same sha256)."""
    record = read_record(directory)
    settings = parse(AnalysisConfig, record.get("settings"), f"{directory / ANALYSIS_FILE}: settings")
    recorded = record.get("runs", [])
    paths = [directory / r["path"] for r in recorded]
    at_home = record.get("home") == str(directory.resolve())
    foreign = [r["run"] for r, p in zip(recorded, paths) if not _beside(directory, p) and not at_home]
    present = [(r, p) for r, p in zip(recorded, paths)
               if r["run"] not in foreign and is_regular(p / MANIFEST)]
    same = {p for r, p in present if _manifest_sha256(p) == r.get("manifest_sha256")}
    changed = [r["run"] for r, p in present if p not in same and _beside(directory, p)]
    foreign += [r["run"] for r, p in present if p not in same and not _beside(directory, p)]
    if paths and len(present) == len(paths) and changed and not foreign:
        analysis = compute(paths, settings=settings, progress=progress)
        analysis.name, analysis.description = record.get("name"), record.get("description")
        analysis.notes.append(f"Re-analysed: {', '.join(changed)} changed since the tables "
                              "were written.")
        return analysis
    t = _read_tables(directory)
    runs = [read_run(p) for _, p in present if p in same] if not changed else []
    notes = []
    if foreign:
        notes.append(f"{len(foreign)} run(s) recorded in {ANALYSIS_FILE} lie outside the "
                     f"directory holding this analysis ({', '.join(foreign[:5])}) and were not "
                     "opened (this analysis was written elsewhere, or they changed since): the "
                     "tables are as written. To analyse them, name them: repflat report "
                     "RUN... --out DIR.")
    if not paths:
        notes.append(f"No {ANALYSIS_FILE} here, so the runs and the analysis settings are "
                     "unknown (the defaults are shown): figures that need saved features "
                     "(Figure 1, planes, boundaries, embeddings) are left out.")
    elif len(runs) < len(paths):
        notes.append(f"{len(paths) - len(runs)} of {len(paths)} runs are missing or changed: "
                     "the tables are as written; figures that need features use the rest.")
    return Analysis(record.get("name"), settings, runs, t["spectra.csv"], t["flattening.csv"],
                    t["summary.csv"], t["training.csv"], record.get("description"), notes,
                    source=directory)


def _manifest_sha256(run: Path) -> str | None:
    try:
        return sha256_file(run / MANIFEST)
    except (UserError, OSError):
        return None


def _beside(directory: Path, run: Path) -> bool:
    """`run` lies inside `directory`'s parent (resolved: no `..` or link leads out)."""
    try:
        return run.resolve().is_relative_to(directory.resolve().parent)
    except (OSError, RuntimeError):
        return False


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
            raise expected("PATH", "an existing experiment, analysis or run directory", str(path))
        if (path / EXPERIMENT_FILE).is_file():
            name = _dirname(read_yaml(path / EXPERIMENT_FILE, follow=False).get("name"), path.name)
            targets.append(("experiment", [path], Path(out) / name if out else path / "analysis"))
        elif _is_analysis_dir(path):
            name = _dirname(read_record(path).get("name"), path.name)
            targets.append(("analysis", [path], Path(out) / name if out else path))
        elif (path / MANIFEST).is_file():
            loose.append(path)
        else:
            raise expected("PATH", f"an experiment directory (with {EXPERIMENT_FILE}), an "
                           f"analysis directory (with {ANALYSIS_FILE}) or a run directory", str(path))
    if loose:
        if out is None:
            raise expected("--out", "a directory for the report of the run directories given",
                           None)
        targets.append(("runs", loose, Path(out) / "runs"))
    outs = [t[2].resolve() for t in targets]
    dupes = sorted({str(o) for o in outs if outs.count(o) > 1})
    if dupes:
        raise UserError(f"--out: two reports would be written to {dupes[0]}; report them "
                        "one at a time or rename an experiment")
    for _, _, target in targets:
        check_output_dir(target)
    return targets


def _prepare(kind: str, inputs: list[Path], progress: bool) -> Analysis:
    if kind == "analysis":
        return load(inputs[0], progress=progress)
    if kind == "experiment" and (inputs[0] / "analysis" / ANALYSIS_FILE).is_file():
        return load(inputs[0] / "analysis", progress=progress)
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
        with exclusive(target, derived=derived):
            source = analysis.source.resolve() if analysis.source else None
            # tables computed now, or read from elsewhere, are written beside the report
            written += write_outputs(analysis, target, options, tables=source != target.resolve())
    return written
