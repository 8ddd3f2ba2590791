"""`repflat analyze` and `repflat report`: runs in, tables, figures and a report out.

An analysis directory holds spectra.csv, flattening.csv, summary.csv (class-averaged
metrics, mean ± std over seeds), training.csv (every run's metrics.csv, stacked),
effects.csv (each arm against its baseline with a seed-paired interval, by swept value:
repflat.analysis.effects), similarity.csv (CKA, shape distances and RSA of each arm
against the baseline and of seed against seed: repflat.analysis.similarity_table),
analysis.json (what was analysed: the settings, and each run's path relative to the
directory with its manifest's sha256), the figures, report.md and report.html.

`analyze` computes the tables from the runs and writes all of it. `report` rebuilds the
report of experiment or analysis directories from their tables, computing them only when
they are missing or the runs changed since (their manifests' checksums differ). Both end
in the one report builder, repflat.analysis.report.build.build_report.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd

from repflat.analysis.results import Analysis
from repflat.analysis.io import numeric_columns, read_csv
from repflat.analysis.effects import effects, sweep_table
from repflat.analysis.tidy import per_run, summarize, typed_columns
from repflat.analysis.layers import analyze_features, plan
from repflat.analysis.similarity_table import similarity_table
from repflat.analysis.runs import (collect_runs, label_points, nested, on_disk, sources,
                                   training_metrics)
from repflat.config import AnalysisConfig
from repflat.progress import counted, progress_bar, say
from repflat.errors import RepflatWarning, UserError, expected, public
from repflat.files import is_regular, no_links, read_json
from repflat.safenames import safe_label
from repflat.rundir.experiment import ExperimentDir
from repflat.rundir.run import read_run
from repflat.files import sha256_file, write_text
from repflat.strict import FieldError, parse, to_plain
from repflat.rundir.names import (ANALYSIS_DIR, ANALYSIS_FILE, ANALYSIS_TABLES, CLASS,
                                  EXPERIMENT_FILE, MANIFEST, Status)

TABLES = ANALYSIS_TABLES
OPTIONAL = ("training.csv", "effects.csv", "similarity.csv")  # older analyses lack them
# `class` and `seed` are nullable integers, converted (older text forms included) by
# tidy.typed_columns; class_name stays text even when a name looks like a number.
TEXT_COLUMNS = {c: str for c in ("run", "arm", "strategy", "split", "layer", "group", "class_name",
                                 "metric", "other_arm", "comparison")}


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP, CSV injection)."""


def _guarded(cell: object) -> object:
    """A text cell a spreadsheet cannot run: one starting a formula (or with the quote
    that marks one) gets a leading `'`, as OWASP advises; numbers are left alone."""
    return "'" + cell if isinstance(cell, str) and cell[:1] in (*FORMULA_LEADS, "'") else cell


def _unguarded(cell: object) -> object:
    """`_guarded`'s inverse: the name as it was."""
    return (cell[1:] if isinstance(cell, str) and cell[:1] == "'" and cell[1:2] in (*FORMULA_LEADS, "'")
            else cell)


def _text_columns(frame: pd.DataFrame) -> list:
    """Columns that may hold text: object, string and categorical ones (an arm order)."""
    return [c for c in frame.columns if frame[c].dtype == object or isinstance(
        frame[c].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(frame[c])]


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """`frame` as CSV at `path`, its text cells and column names guarded (`_guarded`): a
    name from someone else's directory (a layer, an arm, a class, a swept value) never
    reaches a spreadsheet as a formula. `read_table` reads the names back as they were."""
    frame = frame.rename(columns=_guarded)
    for column in _text_columns(frame):
        frame[column] = frame[column].map(_guarded, na_action="ignore")
    write_text(path, frame.to_csv(index=False))


def read_table(path: Path, where: str) -> pd.DataFrame:
    """A table `write_csv` wrote, its names as they were: name columns kept as text (a
    class called NA is not a missing value), guarded cells restored."""
    frame = read_csv(path, where, dtype=TEXT_COLUMNS)
    frame = frame.rename(columns=_unguarded)
    for column in _text_columns(frame):
        frame[column] = frame[column].map(_unguarded, na_action="ignore")
    return frame


def _description(paths: list) -> str | None:
    """The first experiment directory's description (`paths` as `sources` gives them)."""
    return next((p.description for p in paths if isinstance(p, ExperimentDir)), None)


def grid_points(paths: list) -> dict:
    """{arm: GridPoint} of the experiment directories among `paths` (their `grid`)."""
    points = {}
    for p in (p for p in paths if isinstance(p, ExperimentDir)):
        points |= p.points
    return points


def sweep_effects(runs, flat: pd.DataFrame, points: dict, *, baseline: str | None = None,
                  metrics=None, level: float = 0.95) -> pd.DataFrame:
    """effects.csv: every arm against its baseline (repflat.analysis.effects); the swept
    values of an experiment's grid (`points`) or of the runs' own labels."""
    arms = list(dict.fromkeys(r.name for r in runs))
    first = {a: next(r for r in runs if r.name == a) for a in arms}
    sweep = sweep_table(arms, {a: r.strategy for a, r in first.items()},
                        {a: r.config or nested(r.values) for a, r in first.items()},
                        label_points(runs) | points, baseline=baseline)
    values = per_run(flat) if len(flat) else flat
    return effects(values, sweep, metrics=metrics, level=level)


def with_overrides(settings: AnalysisConfig, overrides: dict) -> AnalysisConfig:
    """`settings` with `overrides` (field: value), checked by AnalysisConfig itself; a bad
    one is an error naming the field (`rtol: expected ...`)."""
    try:
        return dataclasses.replace(settings, **overrides)
    except FieldError as err:
        raise expected(err.field, err.what, err.got) from None


@public
def compute(paths, *, overrides: dict | None = None, settings: AnalysisConfig | None = None,
            progress: bool | None = None) -> Analysis:
    """Every table of an analysis, in memory; nothing is written.

    Parameters
    ----------
    paths : path, FeatureSet, or a list of them, or a mapping {name: FeatureSet}
        run directories, experiment directories (all their runs), `Features` or
        `MemoryFeatures` objects. Features say which run they are (`fs.run`: arm,
        strategy, seed, swept values, from `repflat.extract(..., arm=, seed=)`, its
        extract.yaml, or `fs.labelled(...)`) and are grouped by arm and paired by seed
        as repflat's runs are; unlabelled ones read as a run of unknown strategy and
        seed named by the mapping's key.
    overrides : dict, optional
        AnalysisConfig fields (split, layers, epochs, center, scale, rtol, ...) that win
        over everything else.
    settings : AnalysisConfig, optional
        default: the experiment directory's `analysis` section, else AnalysisConfig().
    progress : bool, optional
        a progress bar over the analysed arrays and a closing line; None (default): shown
        in a notebook or on a terminal when the analysis lasts more than a second.

    Returns
    -------
    Analysis, with the tidy frames `spectra`, `flat`, `summary` and `training` (see
    `repflat.analysis.tidy` for their columns).
    """
    paths = sources(paths)
    overrides = overrides or {}
    with_overrides(AnalysisConfig(), overrides)  # a bad flag is named before runs are read
    runs, found, name = collect_runs(paths)
    settings = with_overrides(settings or found or AnalysisConfig(), overrides)
    settings, split_note = only_split(runs, settings, asked="split" in overrides)
    started = time.perf_counter()
    total = len(plan(runs, settings))  # checks every requested array before any output
    with progress_bar(total=total, desc="analysis", unit="array", show=progress) as bar:
        spectra, flat = analyze_features(runs, settings, progress=bar.update)
    seconds = time.perf_counter() - started
    say(f"analysis: {counted(total, 'array')} of {counted(len(runs), 'run')}, {settings.split} split, "
        f"{seconds:.1f} s", show=progress, seconds=seconds)
    analysis = Analysis(name, settings, runs, spectra, flat, summarize(flat),
                        training_metrics(runs), _description(paths),
                        effects=sweep_effects(runs, flat, grid_points(paths)))
    if split_note:
        analysis.notes.append(split_note)
    # a sweep's arms against their own baselines (the same model, data and swept values)
    paired = analysis.effects.dropna(subset=["baseline"]).drop_duplicates("arm") \
        if len(analysis.effects) and "baseline" in analysis.effects else None
    analysis.similarity, similarity_notes = similarity_table(
        runs, settings, baseline=dict(zip(paired["arm"], paired["baseline"])) if paired is not None
        and len(paired) else None)
    analysis.notes.extend(similarity_notes)
    for note in (small_classes_note(flat), unfinished_note(runs)):
        if note:
            warnings.warn(note, RepflatWarning, stacklevel=2)
            analysis.notes.append(note)
    return analysis


def only_split(runs, settings: AnalysisConfig, *, asked: bool) -> tuple[AnalysisConfig, str | None]:
    """`settings`, with the split every run has when the default split is not there and
    exactly one split with labels is (a contract-only directory of test features, say);
    and the sentence that says so. A split asked for is never replaced."""
    if asked or not runs or all(settings.split in r.features.label_splits() for r in runs):
        return settings, None
    common = set.intersection(*(set(r.features.label_splits()) for r in runs))
    if len(common) != 1:
        return settings, None  # plan() refuses, listing the splits there are
    split = common.pop()
    return (dataclasses.replace(settings, split=split),
            f"The {split} split is analysed: it is the only split with labels here "
            f"(the default is {settings.split}).")


def unfinished_note(runs) -> str | None:
    """A sentence naming runs whose run.json says they are still running (or were killed)."""
    running = [r.run_id for r in runs if r.status is Status.RUNNING]
    if not running:
        return None
    return (f"{counted(len(running), 'run')} {'is' if len(running) == 1 else 'are'} unfinished "
            f"(run.json says running): their last "
            f"captured epoch is analysed, not their final one: {', '.join(running)[:300]}")


def small_classes_note(flat: pd.DataFrame) -> str | None:
    """A sentence naming the classes too small to have a spectrum, if there are any."""
    counts = flat[(flat["metric"] == "n_samples") & (flat["group"] == CLASS)]
    small = counts[counts["value"] < 2].drop_duplicates(["run", "class"])
    if small.empty:
        return None
    named = ", ".join(f"class {n} of {r}" for r, n in zip(small["run"], small["class_name"]))
    return (f"{len(small)} class(es) with fewer than two samples have no spread, so only their "
            f"sample count is reported: {named[:300]}")


def write_tables(analysis: Analysis, out: Path, home: Path | None = None) -> list[Path]:
    """The CSVs and analysis.json in `out`; run paths are relative to `home` (the
    directory the tables end up in; default `out`), so the two move together."""
    home = home or out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, frame in zip(TABLES, (analysis.spectra, analysis.flat, analysis.summary,
                                     analysis.training, analysis.effects, analysis.similarity)):
        write_csv(out / fname, frame)
        written.append(out / fname)
    record = {"format": 1, "name": analysis.name, "description": analysis.description,
              "home": str(home.resolve()), "home_id": home_id(home),
              "settings": to_plain(analysis.settings),
              "runs": [{"run": r.run_id, "path": os.path.relpath(r.path.resolve(), home.resolve()),
                        "manifest_sha256": r.features.manifest_sha256}  # as the run record read it
                       for r in analysis.runs if on_disk(r)],
              "in_memory": [r.run_id for r in analysis.runs if not on_disk(r)]}
    write_text(out / ANALYSIS_FILE, json.dumps(record, indent=1))
    return written + [out / ANALYSIS_FILE]


TABLE_COLUMNS = {"spectra.csv": ("epoch", "index", "singular_value"),
                 "flattening.csv": ("epoch", "value"),
                 "summary.csv": ("epoch", "mean", "std", "n_runs")}


def _read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for fname in TABLES:
        path = directory / fname
        optional = fname in OPTIONAL  # runs without metrics leave training.csv empty
        if not path.exists() and not path.is_symlink():
            if not optional:
                raise expected("paths", f"an analysis directory with {fname}", str(directory))
            frames[fname] = pd.DataFrame()
            continue
        frame = read_table(path, "paths")
        for column in (c for c in TEXT_COLUMNS if c in frame.columns):  # names: checked as read
            for name in frame[column].dropna().unique():
                safe_label(name, f"paths: {path}: column {column}")
        if frame.empty and not optional:
            raise UserError(f"{path} is empty", argument="paths")
        needed = TABLE_COLUMNS.get(fname, ())
        missing = [c for c in (*needed, "arm", "layer") if c not in frame.columns] if needed else []
        if missing:
            raise UserError(f"{path} is not a repflat table (no column {missing[0]!r})",
                            argument="paths")
        frames[fname] = typed_columns(numeric_columns(frame, needed, path, "paths"),
                                      f"paths: {path}")
    return frames


def read_record(directory: Path) -> dict:
    """analysis.json of `directory`, checked; {} when there is none (older analyses)."""
    path = directory / ANALYSIS_FILE
    if not path.exists() and not path.is_symlink():
        return {}
    record = read_json(path, "paths")
    runs = record.get("runs", []) if isinstance(record, dict) else None
    if not isinstance(runs, list) or not all(
            isinstance(r, dict) and isinstance(r.get("run"), str) and isinstance(r.get("path"), str)
            for r in runs):
        raise expected(f"paths: {path}", "an analysis record written by repflat", "something else")
    for i, r in enumerate(runs):
        if r["run"]:  # a run analysed as '.' has no name
            safe_label(r["run"], f"paths: {path}: runs[{i}].run")
    if record.get("name") is not None:
        safe_label(record["name"], f"paths: {path}: name")  # the report's title
    return record


def load(directory: Path, *, progress: bool = False, root: Path | None = None) -> Analysis:
    """An analysis directory's tables, with its runs re-opened when they are still where
    analysis.json says; re-analysed (same settings) when a run changed since.

    analysis.json may come from someone else and name any path, so a recorded run is
    opened only

    - inside `root`, the directory the user gave (default: the experiment directory
      holding this analysis as its `analysis/`, else the analysis directory itself), by
      a relative path with no link on the way: re-analysed when it changed; or
    - anywhere, when the analysis is provably where it was written (its recorded home is
      this directory: same path, same device and inode, which a copy or a forged record
      does not have), and then only when its manifest is the one analysed (same sha256).

    Nothing else is opened, not even to be hashed, and the page says which runs were
    left out."""
    directory = Path(directory)
    record = read_record(directory)
    settings = parse(AnalysisConfig, record.get("settings"), f"{directory / ANALYSIS_FILE}: settings")
    recorded = record.get("runs", [])
    root = Path(os.path.abspath(root if root is not None else received_root(directory)))
    paths = [Path(os.path.normpath(os.path.abspath(directory / r["path"]))) for r in recorded]
    inner = {p for r, p in zip(recorded, paths) if _within(root, r["path"], p)}
    home = at_home(directory, record)
    foreign = [r["run"] for r, p in zip(recorded, paths) if p not in inner and not home]
    present = [(r, p) for r, p in zip(recorded, paths)
               if r["run"] not in foreign and is_regular(p / MANIFEST)]
    same = {p for r, p in present if _manifest_sha256(p) == r.get("manifest_sha256")}
    changed = [r["run"] for r, p in present if p not in same and p in inner]
    stale = [r["run"] for r, p in present if p not in same and p not in inner]
    if paths and len(present) == len(paths) and changed and not foreign and not stale:
        analysis = compute(paths, settings=settings, progress=progress)
        analysis.name, analysis.description = record.get("name"), record.get("description")
        analysis.notes.append(f"Re-analysed: {', '.join(changed)} changed since the tables "
                              "were written.")
        return analysis
    t = _read_tables(directory)
    runs = [read_run(p) for _, p in present if p in same] if not changed else []
    notes = []
    if foreign:
        notes.append(f"{counted(len(foreign), 'run')} recorded in {ANALYSIS_FILE} "
                     f"{'lies' if len(foreign) == 1 else 'lie'} outside the "
                     f"directory holding this analysis ({', '.join(foreign[:5])}) and were not "
                     "opened (this analysis was written elsewhere, or moved): the tables are "
                     "as written. To analyse them, name them: repflat report RUN... --out DIR.")
    if stale:
        notes.append(f"{counted(len(stale), 'run')} outside this analysis's directory "
                     f"changed since the tables were written ({', '.join(stale[:5])}) and "
                     f"{'was' if len(stale) == 1 else 'were'} not re-analysed: the tables are "
                     "as written. To analyse them again, name them: repflat report RUN... --out DIR.")
    in_memory = [str(n) for n in record.get("in_memory", []) if isinstance(n, str)]
    if in_memory:
        notes.append(f"{len(in_memory)} feature set(s) were analysed in memory "
                     f"({', '.join(in_memory[:5])}): the tables are as written; figures that "
                     "need their features are left out.")
    if not paths and not in_memory:
        notes.append(f"No {ANALYSIS_FILE} here, so the runs and the analysis settings are "
                     "unknown (the defaults are shown): figures that need saved features "
                     "(Figure 1, planes, boundaries, embeddings) are left out.")
    elif len(runs) < len(paths):
        notes.append(f"{len(paths) - len(runs)} of {len(paths)} runs are missing or changed: "
                     "the tables are as written; figures that need features use the rest.")
    return Analysis(record.get("name"), settings, runs, t["spectra.csv"], t["flattening.csv"],
                    t["summary.csv"], t["training.csv"], record.get("description"), notes,
                    source=directory, effects=t["effects.csv"], similarity=t["similarity.csv"])


def _manifest_sha256(run: Path) -> str | None:
    try:
        return sha256_file(run / MANIFEST)
    except (UserError, OSError):
        return None


def received_root(directory: Path) -> Path:
    """What a received analysis may read: the experiment directory it is the `analysis/`
    of (its runs are in `runs/` beside it), else only itself."""
    parent = Path(os.path.abspath(directory)).parent
    if Path(os.path.abspath(directory)).name == ANALYSIS_DIR and is_regular(parent / EXPERIMENT_FILE):
        return parent
    return directory


def _within(root: Path, rel: str, path: Path) -> bool:
    """`path` (`rel` from the analysis, made absolute) lies inside `root`, `rel` is
    relative and no component below `root` is a link."""
    if os.path.isabs(rel) or not path.is_relative_to(root) or path == root:
        return False
    try:
        no_links(root, path.relative_to(root), "paths")
    except UserError:
        return False
    return True


def home_id(directory: Path) -> list[int]:
    """The device and inode of the directory an analysis is written for: recorded with
    its path, so a copy (or a forged record) is not taken for the analysis at home."""
    st = os.stat(directory)
    return [st.st_dev, st.st_ino]


def at_home(directory: Path, record: dict) -> bool:
    try:
        return (record.get("home") == str(directory.resolve())
                and record.get("home_id") == home_id(directory))
    except OSError:
        return False


