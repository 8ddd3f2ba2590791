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
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.document import Analysis, ReportOptions, build_report, check_options
from analysis.flattening import analyze_features, plan, summarize
from analysis.runs import collect_runs, training_metrics
from repflat.config import AnalysisConfig, read_yaml
from repflat.lock import exclusive
from repflat.progress import progress_bar
from repflat.errors import RepflatWarning, UserError, expected
from repflat.rundir import EXPERIMENT_FILE, read_run
from repflat.store import MANIFEST, sha256_file, write_text
from repflat.typed import FieldError, parse, to_plain

ANALYSIS_FILE = "analysis.json"
TABLES = ("spectra.csv", "flattening.csv", "summary.csv", "training.csv")
TEXT_COLUMNS = {c: str for c in ("run", "arm", "strategy", "split", "layer", "class", "metric")}


def check_output_dir(out: Path) -> None:
    """Refuse to write analysis outputs into a run directory (it would mix two contracts)."""
    if out.exists() and not out.is_dir():
        raise expected("--out", "a directory", f"{out} (a file)")
    if (out / "config.yaml").is_file() or (out / MANIFEST).is_file():
        raise expected("--out", "a directory for analysis outputs, not a run directory", str(out))


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
    note = small_classes_note(flat)
    if note:
        warnings.warn(note, RepflatWarning, stacklevel=2)
        analysis.notes.append(note)
    return analysis


def small_classes_note(flat: pd.DataFrame) -> str | None:
    """A sentence naming the classes too small to have a spectrum, if there are any."""
    counts = flat[(flat["metric"] == "n_samples") & ~flat["class"].isin(["pooled", "mean", "all"])]
    small = counts[counts["value"] < 2].drop_duplicates(["run", "class"])
    if small.empty:
        return None
    named = ", ".join(f"class {c} of {r}" for r, c in zip(small["run"], small["class"]))
    return (f"{len(small)} class(es) with fewer than two samples have no spread, so only their "
            f"sample count is reported: {named[:300]}")


def write_tables(analysis: Analysis, out: Path) -> list[Path]:
    """The CSVs and analysis.json (run paths relative to `out`, so the two move together)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, frame in zip(TABLES, (analysis.spectra, analysis.flat, analysis.summary,
                                     analysis.training)):
        write_csv(out / fname, frame)
        written.append(out / fname)
    record = {"format": 1, "name": analysis.name, "description": analysis.description,
              "settings": to_plain(analysis.settings),
              "runs": [{"run": r.run_id, "path": os.path.relpath(r.path.resolve(), out.resolve()),
                        "manifest_sha256": sha256_file(r.path / MANIFEST)} for r in analysis.runs]}
    write_text(out / ANALYSIS_FILE, json.dumps(record, indent=1))
    return written + [out / ANALYSIS_FILE]


def analyze(paths: Iterable[str | Path], out: str | Path, *, overrides: dict | None = None,
            progress: bool = False, options: ReportOptions = ReportOptions()) -> list[Path]:
    """Analyse the runs under `paths` into `out`; return the files written."""
    out = Path(out)
    check_output_dir(out)
    analysis = compute(paths, overrides=overrides, progress=progress)
    check_options(analysis, options)
    with exclusive(out):
        return write_tables(analysis, out) + build_report(analysis, out, options)


# ---------------------------------------------------------------- repflat report

def _read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for fname in TABLES:
        path = directory / fname
        optional = fname == "training.csv"  # older analyses lack it; runs without metrics leave it empty
        try:
            frames[fname] = pd.read_csv(path, dtype=TEXT_COLUMNS)
        except pd.errors.EmptyDataError:
            if not optional:
                raise UserError(f"PATH: {path} is empty") from None
            frames[fname] = pd.DataFrame()
        except FileNotFoundError:
            if not optional:
                raise expected("PATH", f"an analysis directory with {fname}", str(directory)) from None
            frames[fname] = pd.DataFrame()
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise UserError(f"PATH: {path} is not a readable table ({type(err).__name__})") from None
    return frames


def read_record(directory: Path) -> dict:
    """analysis.json of `directory`, checked; {} when there is none (older analyses)."""
    path = directory / ANALYSIS_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"PATH: {path} is not valid JSON ({err})") from None
    runs = record.get("runs", []) if isinstance(record, dict) else None
    if not isinstance(runs, list) or not all(
            isinstance(r, dict) and isinstance(r.get("run"), str) and isinstance(r.get("path"), str)
            for r in runs):
        raise expected(f"PATH: {path}", "an analysis record written by repflat", "something else")
    return record


def load(directory: Path, *, progress: bool = False) -> Analysis:
    """An analysis directory's tables, with its runs re-opened when they are still where
    analysis.json says; re-analysed (same settings) when a run changed since."""
    record = read_record(directory)
    settings = parse(AnalysisConfig, record.get("settings"), f"{directory / ANALYSIS_FILE}: settings")
    paths = [directory / r["path"] for r in record.get("runs", [])]
    present = [p for p in paths if (p / MANIFEST).is_file()]
    changed = [r["run"] for r, p in zip(record.get("runs", []), paths)
               if p in present and sha256_file(p / MANIFEST) != r.get("manifest_sha256")]
    if paths and len(present) == len(paths) and changed:
        analysis = compute(paths, settings=settings, progress=progress)
        analysis.name, analysis.description = record.get("name"), record.get("description")
        analysis.notes.append(f"Re-analysed: {', '.join(changed)} changed since the tables "
                              "were written.")
        return analysis
    t = _read_tables(directory)
    runs = [read_run(p) for p in present] if not changed else []
    notes = []
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
    for _, _, target, analysis in prepared:
        with exclusive(target):
            source = analysis.source.resolve() if analysis.source else None
            if source != target.resolve():  # tables computed now, or read from elsewhere
                written += write_tables(analysis, target)
            written += build_report(analysis, target, options)
    return written
