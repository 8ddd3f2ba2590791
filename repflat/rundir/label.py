"""Which run a set of features comes from: arm, strategy, seed and swept values.

A repflat run says it in its config.yaml (name, mixing.strategy, seed) and its
experiment's grid (swept values); features of a user's own model say it in
extract.yaml (`arm`, `strategy`, `seed`, `values`, each written only when given, so a
directory written before them reads as before) or, in memory, on the feature set
(`FeatureSet.run`, set by `repflat.extract(..., arm=, seed=)` or `fs.labelled(...)`).
The analysis groups runs by arm and pairs them by seed from whichever says it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from repflat.config.strategies import MIXING_STRATEGIES
from repflat.errors import UserError, expected
from repflat.files import is_regular, read_yaml_file
from repflat.safenames import safe_label, safe_name
from repflat.rundir.names import EXTRACT_FILE, UNKNOWN, run_dirname

KEYS = ("arm", "strategy", "seed", "values")
"""extract.yaml's keys for a run's identity."""


@dataclass(frozen=True)
class RunLabel:
    """The identity of one run's features.

    Parameters
    ----------
    arm : str or None
        What the run is an instance of, the name tables and comparisons group by ("erm",
        "mixup-alpha2"); seeds of one arm are its repeats. None: the name the features
        are given (a mapping's key, the directory's name).
    strategy : str, default "unknown"
        Its mixing strategy: "none" (ERM), "input_mixup", "manifold_mixup", or a word of
        your own; "none" (or an arm called erm) marks the baseline.
    seed : int, optional
        The run's seed: runs of two arms with the same seed are paired.
    values : dict, optional
        Swept values ({"alpha": 2.0}): columns of the effects table, as an experiment
        grid's are.
    """

    arm: str | None = None
    strategy: str = UNKNOWN
    seed: int | None = None
    values: dict = field(default_factory=dict)

    def run_id(self, name: str) -> str:
        """The run's name in the tables: `<arm>-seed<seed>` as `repflat run` names its run
        directories, the arm alone without a seed, `name` (what the features were given
        as) without an arm."""
        if self.arm is None:
            return name
        return self.arm if self.seed is None else run_dirname(self.arm, self.seed)

    def as_yaml(self) -> dict:
        """The keys extract.yaml records (those given)."""
        out = {"arm": self.arm, "strategy": self.strategy, "seed": self.seed, "values": self.values}
        return {k: v for k, v in out.items() if v not in (None, {}) and not (k == "strategy" and v == UNKNOWN)}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def run_label(arm: object = None, strategy: object = None, seed: object = None,
              values: object = None, *, where: str = "") -> RunLabel | None:
    """A checked RunLabel of the values given (None when none is); a UserError naming the
    argument (prefixed by `where`) otherwise."""
    if arm is None and strategy is None and seed is None and values is None:
        return None
    prefix = f"{where}: " if where else ""
    if strategy is not None and (not isinstance(strategy, str) or not strategy):
        raise expected(f"{prefix}strategy", "a word such as " + ", ".join(MIXING_STRATEGIES), strategy)
    if strategy is not None:
        safe_label(strategy, f"{prefix}strategy")
    if arm is not None and (not isinstance(arm, str) or not arm or Path(arm).name != arm
                            or arm in (".", "..")):
        raise expected(f"{prefix}arm", "a name for the arm without '/' (tables group runs by it)", arm)
    if arm is not None:
        safe_name(arm, f"{prefix}arm")  # it names run directories: <arm>-seed<s>
    if seed is not None and not (_is_int(seed) and seed >= 0):
        raise expected(f"{prefix}seed", "an integer >= 0", seed)
    values = {} if values is None else values
    if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in values.items()):
        raise expected(f"{prefix}values", "a dict of swept values {name: number or word}", values)
    for key, value in values.items():  # columns and cells of the effects table
        safe_label(key, f"{prefix}values")
        if isinstance(value, str):
            safe_label(value, f"{prefix}values.{key}")
    return RunLabel(arm, strategy or UNKNOWN, seed, dict(values))


def label_from_yaml(description: object) -> RunLabel | None:
    """The identity extract.yaml records, if any (an unreadable one reads as none)."""
    if not isinstance(description, dict) or not any(k in description for k in KEYS):
        return None
    try:
        return run_label(*(description.get(k) for k in KEYS))
    except UserError:  # a hand-edited file: the directory's name is used instead
        return None


def extracted_label(root: Path) -> RunLabel | None:
    """The identity in `root`'s extract.yaml, if it has a readable one (a link or a
    special file there is not read)."""
    path = Path(root) / EXTRACT_FILE
    if path.is_symlink() or not is_regular(path):
        return None
    try:
        return label_from_yaml(read_yaml_file(path, EXTRACT_FILE, limit=1 << 20))
    except UserError:
        return None
