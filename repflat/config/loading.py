"""Experiment files and run-config files: reading, resolving arms × seeds, writing back.

An experiment file holds a `base` run config, named `arms` that override parts of it,
the `seeds` every arm is trained with, and the `analysis` settings; `parse_experiment`
resolves it into one RunConfig per (arm, seed), each parsed strictly. An optional
`grid` expands chosen arms into one arm per combination of values (repflat.config.grid),
before anything runs. An optional `datasets` mapping {key: data config} crosses data
sets with arms: each run's `data` is the data set's (whole, not merged onto base), its
name `<key>.<arm>`.

Paths to a user's points (`data.path`, `data.test_path`) are relative to the directory
of the file that names them; the resolved run configs hold them absolute.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from repflat.config.grid import GridPoint, arm_count, expand
from repflat.config.launcher import LauncherConfig
from repflat.config.layers import check_analysis_layers, check_run_layers
from repflat.config.overrides import WHERE, apply_overrides, said_by
from repflat.config.schema import AnalysisConfig, DataConfig, RunConfig
from repflat.errors import UserError, expected, unknown
from repflat.files import YAML_LIMIT, load_yaml, read_text
from repflat.safenames import safe_label, safe_name
from repflat.strict import dump_yaml, merge, parse  # noqa: F401 - dump_yaml: the report imports it from here

MAX_ARMS = 1_000
"""Arms an experiment may hold, a grid's points and data sets × arms counted (each is
parsed and checked, about 2 ms apiece, before anything runs)."""
MAX_RUNS = 10_000
"""Runs (arms × seeds) an experiment may hold."""


@dataclass(frozen=True)
class Experiment:
    """An experiment file: every arm × every seed, resolved to run configs."""

    name: str
    seeds: tuple[int, ...]
    runs: tuple[RunConfig, ...]
    analysis: AnalysisConfig
    source: dict  # the file as parsed, for writing back beside the results
    launcher: LauncherConfig = LauncherConfig()  # read by `repflat run --launcher` only
    points: dict[str, GridPoint] = field(default_factory=dict)
    """The arms a `grid` made: where each came from and its swept values."""

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.runs))

    @property
    def description(self) -> str | None:
        """The file's `description`, as the report's opening line (None without one)."""
        text = self.source.get("description")
        return str(text) if text else None


def read_yaml(path: str | Path, *, follow: bool = True) -> dict:
    """Read a YAML mapping; a missing or malformed file is a UserError naming it.

    `follow=False` for a file found inside a directory (an experiment's experiment.yaml,
    a run's config.yaml) rather than named by the user: a link there is refused."""
    return _read(path, follow)[0]


def _read(path: str | Path, follow: bool) -> tuple[dict, str]:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise expected("config", "an existing YAML file", str(path))
    text = read_text(path, "config", YAML_LIMIT, follow=follow)
    data = load_yaml(text, "config", path)
    if not isinstance(data, dict):
        raise expected(f"config {path}", "a YAML mapping", type(data).__name__)
    return data, text


@contextlib.contextmanager
def located(path: str | Path, text: str, overrides: dict | None = None) -> Iterator[None]:
    """Errors in the config parsed inside, prefixed with where they are: `FILE:LINE:COL:`,
    or `command line:` for a key `overrides` (key=value) set."""
    try:
        yield
    except UserError as err:
        if overrides and said_by(err, overrides):
            raise err.located(WHERE) from None
        at = locate(text, err)
        raise err.located(f"{path}:{at[0]}:{at[1]}" if at else str(path)) from None


RUN_SECTIONS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("name", "seed"))
SECTIONS = (*RUN_SECTIONS, "arms", "base", "analysis", "datasets")
"""The sections of a run config and an experiment file whose keys a later check names."""


def _head(err: UserError) -> str:
    return (err.argument or "").split(".")[0].split("[")[0].split(" (")[0]


def in_arm(err: UserError, arm: str) -> UserError:
    """A run config's mistake found when an arm is built (a layer name only the built
    model knows), said as the experiment file's key: `arms.<arm>.mixing.layers`."""
    return err.within(f"arms.{arm}") if err.where is None and _head(err) in RUN_SECTIONS else err


@contextlib.contextmanager
def located_file(path: str | Path, *, follow: bool = True) -> Iterator[None]:
    """`located` for checks made after the file was parsed (building the model): the
    file's text is read again only when one fails, and a mistake that names no key of
    the file (an output directory, say) is left as it is."""
    try:
        yield
    except UserError as err:
        if err.where is not None or _head(err) not in SECTIONS:
            raise  # a parameter (`out`, `seed`), not a key of the file
        try:
            at = locate(_read(path, follow)[1], err)
        except UserError:
            at = None
        if at is None:
            raise
        raise err.located(f"{path}:{at[0]}:{at[1]}") from None


def locate(text: str, err: UserError) -> tuple[int, int] | None:
    """(line, column), 1-based, in the YAML `text`, of the key an error is about: its
    argument (`a.b[2].c`), or the key it says is unknown there; None when it cannot be
    found. An arm's key missing from its override is looked up in `base` (arms are
    merged onto it)."""
    key = (err.argument or "").split(" (")[0]  # `analysis.layers (captured by arm 'x')`
    if not key or any(c.isspace() or c == ":" for c in key):
        return None  # not a key: a parameter with a qualifier, a file
    tokens = [t for part in key.split(".") for t in re.split(r"\[(\d+)\]", part) if t]
    if tokens and tokens[0] in ("config", "experiment"):
        tokens = tokens[1:]
    if err.what == "key":
        tokens.append(str(err.got))
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    node = _walk(root, tokens)
    if node is None and len(tokens) > 2 and tokens[0] == "arms":
        for cut in range(2, len(tokens)):  # the arm's name may hold dots
            node = _walk(root, ["base", *tokens[cut:]])
            if node is not None:
                break
    return (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else None


def _walk(node, tokens: list[str]):
    """The node `tokens` lead to (a mapping's key node for the last token), or None."""
    for i, token in enumerate(tokens):
        if isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value):
            node = node.value[int(token)]
            continue
        if not isinstance(node, yaml.MappingNode):
            return None
        found = None
        for key, value in node.value:
            if str(key.value) == token:
                found = (key, value)
        if found is None:  # a key with dots in it (an arm name): join tokens greedily
            for j in range(len(tokens), i + 1, -1):
                joined = ".".join(tokens[i:j])
                match = next(((k, v) for k, v in node.value if str(k.value) == joined), None)
                if match is not None:
                    rest = _walk(match[1], tokens[j:]) if j < len(tokens) else match[0]
                    return rest
            return None
        node = found[0] if i == len(tokens) - 1 else found[1]
    return node


def is_experiment(data: dict) -> bool:
    return "arms" in data


def parse_experiment(data: dict) -> Experiment:
    """Resolve an experiment mapping into one RunConfig per (arm, seed)."""
    allowed = {"name", "seeds", "base", "arms", "grid", "analysis", "description", "launcher",
               "datasets"}
    for key in data:
        if key not in allowed:
            raise unknown("experiment", str(key), sorted(allowed), what="key")
    name = data.get("name", "experiment")
    if not isinstance(name, str) or not name:
        raise expected("name", "a non-empty string", name)
    safe_label(name, "name")  # the report's title, and its directory under report --out
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in seeds
    ):
        raise expected("seeds", "a non-empty list of integers", seeds)
    if len(set(seeds)) != len(seeds):
        raise expected("seeds", "distinct seeds", seeds)
    if any(s < 0 for s in seeds):
        raise expected("seeds", "seeds >= 0", seeds)
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise expected("base", "a mapping (a run config)", base)
    for key in ("name", "seed"):
        if key in base:
            raise UserError("set by the experiment (arm name, seeds); remove it",
                            argument=f"base.{key}")
    parse(RunConfig, base, "base")  # errors in the shared part name `base`, not an arm
    arms = data.get("arms")
    if not isinstance(arms, dict) or not arms:
        raise expected("arms", "a non-empty mapping of arm names to overrides", arms)
    check_size(data, arms, seeds)
    datasets = parse_datasets(data, base, arms)
    for arm, override in arms.items():
        safe_name(str(arm), f"arms.{arm}")  # it names run directories: arms/<arm>-seed<s>
        if not isinstance(override or {}, dict):
            raise expected(f"arms.{arm}", "a mapping of overrides", override)
        for key in ("name", "seed") + (("data",) if datasets else ()):
            if key in (override or {}):
                raise UserError("set by the experiment; remove it", argument=f"arms.{arm}.{key}")
    points = {}
    if "grid" in data:  # an arm's own mistakes are named as the arm's, before its points
        first_data = {"data": next(iter(datasets.values()))} if datasets else {}
        for arm, override in arms.items():
            parse(RunConfig, merge(base, override or {}) | {"name": str(arm), "seed": seeds[0]}
                  | first_data, f"arms.{arm}")
        arms, points = expand(data["grid"], arms, base | first_data, RunConfig)
    runs = []
    for prefix, dataset in (datasets or {None: None}).items():
        for arm, override in arms.items():
            safe_name(str(arm), f"arms.{arm}")
            run_name = str(arm) if prefix is None else f"{prefix}.{arm}"
            resolved = merge(base, override or {}) | {"name": run_name, "seed": seeds[0]}
            resolved |= {} if dataset is None else {"data": dataset}
            first = parse(RunConfig, resolved, f"arms.{arm}")  # seeds differ in seed only
            check_run_layers(first, f"arms.{arm}")
            runs += [first] + [dataclasses.replace(first, seed=seed) for seed in seeds[1:]]
    if points and datasets:  # runs are <data set>.<arm>; each keeps its arm's template
        points = {f"{prefix}.{arm}": points.get(arm, GridPoint(str(arm), {}))
                  for prefix in datasets for arm in arms}
    analysis = parse(AnalysisConfig, data.get("analysis"), "analysis")
    check_analysis_layers(analysis, runs)
    launcher = parse(LauncherConfig, data.get("launcher"), "launcher")
    return Experiment(name, tuple(seeds), tuple(runs), analysis, data, launcher, points)

def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else "over 10^15"


def check_size(data: dict, arms: dict, seeds: list) -> None:
    """Refuse an experiment of more than MAX_ARMS arms or MAX_RUNS runs, counted from the
    lengths of its lists (repflat.config.grid.arm_count) before any is expanded or parsed:
    a 1 kB grid may promise 10^12 arms."""
    n_data = len(data["datasets"]) if isinstance(data.get("datasets"), dict) else 1
    n_arms = (arm_count(data["grid"], arms) if "grid" in data else len(arms)) * max(n_data, 1)
    where = "grid" if "grid" in data else "arms"
    if n_arms > MAX_ARMS:
        raise UserError(f"{_count(n_arms)} arms, more than the {MAX_ARMS:,} an experiment "
                        "may hold; split it into several experiments", argument=where)
    if n_arms * len(seeds) > MAX_RUNS:
        raise UserError(f"{_count(n_arms * len(seeds))} runs ({n_arms:,} arms × "
                        f"{len(seeds):,} seeds), more than the {MAX_RUNS:,} an experiment "
                        "may hold; split it into several experiments", argument="seeds")


def parse_datasets(data: dict, base: dict, arms) -> dict[str, dict] | None:
    """An experiment's `datasets` {key: data config}, each checked; None without one.

    Keys name runs `<key>.<arm>`, so a key holds no dot (the report splits the name there)."""
    if "datasets" not in data:
        return None
    datasets = data["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise expected("datasets", "a non-empty mapping of data set names to data configs", datasets)
    if "data" in base:
        raise UserError("the experiment's `datasets` set each run's data; remove it",
                        argument="base.data")
    for key, cfg in datasets.items():
        safe_name(str(key), f"datasets.{key}")
        if "." in str(key):
            raise expected(f"datasets.{key}", "a name without '.' (runs are named <data set>.<arm>)", key)
        if not isinstance(cfg, dict):
            raise expected(f"datasets.{key}", "a data config (a mapping)", cfg)
        parse(DataConfig, cfg, f"datasets.{key}")
    return datasets


def resolve_paths(run: RunConfig, root: Path) -> RunConfig:
    """`run` with its data file paths, and the directory its own model class is imported
    from, made absolute from `root`, the config's directory."""
    sections = {}
    for section, keys in (("data", ("path", "test_path")), ("model", ("path",))):
        cfg = getattr(run, section)
        changes = {key: str((root / value).absolute()) for key in keys
                   if isinstance(value := getattr(cfg, key, None), str) and not Path(value).is_absolute()}
        if changes:
            sections[section] = dataclasses.replace(cfg, **changes)
    return dataclasses.replace(run, **sections) if sections else run


def _overridden(data: dict, overrides: dict | None) -> dict:
    """The file's mapping with the command line's key=value set (repflat.config.overrides)."""
    if not overrides:
        return data
    try:
        return apply_overrides(data, overrides, experiment=is_experiment(data))
    except UserError as err:
        raise (err if err.where else err.located(WHERE)) from None


def load_experiment(path: str | Path, *, follow: bool = True,
                    overrides: dict | None = None) -> Experiment:
    """An experiment file, parsed strictly; an error says FILE:LINE:COL of the key.
    `overrides` {dotted key: value}: the command line's key=value, set before parsing."""
    data, text = _read(path, follow)
    if not is_experiment(data):
        raise expected(f"config {path}", "an experiment file (with `arms`)", sorted(data))
    data = _overridden(data, overrides)
    with located(path, text, overrides):
        exp = parse_experiment(data)
    root = Path(path).parent
    return dataclasses.replace(exp, runs=tuple(resolve_paths(r, root) for r in exp.runs))


def load_run_config(path: str | Path, *, arm: str | None = None, seed: int | None = None,
                    follow: bool = True, overrides: dict | None = None) -> RunConfig:
    """A run config from a run-config file, or one arm and seed of an experiment file
    (`overrides`: as load_experiment's)."""
    data, text = _read(path, follow)
    data = _overridden(data, overrides)
    if is_experiment(data):
        with located(path, text, overrides):
            exp = parse_experiment(data)
        exp = dataclasses.replace(exp, runs=tuple(resolve_paths(r, Path(path).parent) for r in exp.runs))
        if arm is None:
            if len(exp.arms) > 1:
                raise expected("arm", "one of the experiment's arms " + ", ".join(exp.arms), None)
            arm = exp.arms[0]
        if arm not in exp.arms:
            raise unknown("arm", arm, exp.arms)
        seed = exp.seeds[0] if seed is None else seed
        return next((r for r in exp.runs if r.name == arm and r.seed == seed), None) or (
            dataclasses.replace(next(r for r in exp.runs if r.name == arm), seed=seed)
        )
    with located(path, text, overrides):
        cfg = resolve_paths(parse(RunConfig, data), Path(path).parent)
        check_run_layers(cfg)
    if arm is not None:
        raise UserError(f"{path} is a run config, not an experiment; give no arm", argument="arm")
    return cfg if seed is None else dataclasses.replace(cfg, seed=seed)

