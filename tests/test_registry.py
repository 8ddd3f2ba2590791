"""The registries of what grows, against their uses: a metric, an arm kind or a figure
declared once, and every place that lists them agreeing with the declaration."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import repflat.analysis as ra
from repflat.analysis import registry
from repflat.analysis.layers import layer_tables
from repflat.rundir.features import Discriminative

ROOT = Path(__file__).resolve().parents[1]


def _layer(seed: int = 0):
    """Three classes in 12 dimensions (every top-k share applies) with a discriminative
    summary: every metric has a value."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 40)
    X = rng.normal(size=(120, 12)) + 3 * np.eye(12)[y]
    factor = rng.normal(size=(3, 4, 12))
    return X, y, Discriminative(factor, np.sum(factor ** 2, axis=(1, 2)), np.bincount(y))


def test_every_metric_computed_is_declared_with_its_groups_and_every_declared_one_computed():
    X, y, summary = _layer()
    _, frame = layer_tables(X, y, center=True, rtol=0.01, discriminative=summary)
    seen = frame.groupby("metric")["group"].agg(lambda g: tuple(sorted(set(g))))
    declared = {m.name: tuple(sorted(m.groups)) for m in registry.METRICS}
    assert dict(seen) == declared  # no metric without a declaration, none declared but dead


def test_the_docs_metrics_table_lists_exactly_the_registry():
    text = (ROOT / "docs" / "metrics.md").read_text()
    table = text[text.index("| metric (`flattening.csv`) |"):]
    table = table[:table.index("\n\n")]
    names = set()
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        names |= set(re.findall(r"`([a-z0-9_{}]+)`", first))
    expanded = {f"variance_share_top{k}" for k in registry.TOP_K}
    names = (names - {"variance_share_top{k}"}) | (expanded if "variance_share_top{k}" in names else set())
    assert names == set(registry.BY_NAME)


def test_every_public_metric_function_is_in_the_stable_api():
    functions = {m.function.__name__ for m in registry.METRICS if m.function is not None}
    assert functions <= set(ra.__all__)
    for name in functions:
        assert getattr(ra, name) is next(m.function for m in registry.METRICS
                                         if m.function is not None and m.function.__name__ == name)


def test_a_spectrum_is_checked_once_however_many_metrics_read_it(monkeypatch):
    """Every spectrum metric reads the checked array through its kernel: one check per
    spectrum in a layer's tables (the pipeline once validated each spectrum ~10 times)."""
    import repflat.analysis.layers as layers

    calls = []
    real = layers.as_spectrum
    monkeypatch.setattr(layers, "as_spectrum", lambda s, *a, **k: calls.append(1) or real(s, *a, **k))
    import repflat.analysis.metrics as M

    monkeypatch.setattr(M, "as_spectrum", lambda *a, **k: (_ for _ in ()).throw(AssertionError(
        "a public metric re-checked a spectrum the tables had checked")))
    X, y, summary = _layer()
    sframe, _ = layer_tables(X, y, center=True, rtol=0.01, discriminative=summary)
    assert len(calls) == sframe.drop_duplicates(["group", "class"]).shape[0]  # 3 classes + pooled


def test_every_declared_figure_has_a_drawer_and_the_command_line_offers_each():
    """Figures are declared once in the contract (names and files); the report registers
    one drawer per name, and --figures and the stale-figure cleanup read the same list."""
    from repflat.analysis.report.sections import DRAWERS
    from repflat.cli.parser import FIGURE_NAMES
    from repflat.rundir.names import FIGURES

    assert list(DRAWERS) == list(FIGURES) == list(FIGURE_NAMES)
    files = [f for fs in FIGURES.values() for f in fs]
    assert len(files) == len(set(files)) and "datasets_entropy.png" in files


def test_a_report_removes_every_stale_figure_it_did_not_draw_again(tmp_path):
    """An analysis directory that once held a data set grid (two files) and is analysed
    again without one loses both; the entropy grid used to stay behind."""
    from repflat.analysis.report.outputs import analyze
    from repflat.rundir.features import MemoryFeatures
    from repflat.rundir.names import FIGURES

    X, y, _ = _layer()
    fs = MemoryFeatures({("train", 0, "h"): X}, {"train": y})
    out = tmp_path / "a"
    out.mkdir()
    (out / "analysis.json").write_text("{}")  # an analysis directory repflat wrote before
    (out / ".repflat-analysis").touch()       # (an older one: its marker, no .repflat-owner)
    for name in FIGURES["datasets"]:
        (out / name).write_bytes(b"old figure")
    analyze({"erm": fs}, out, progress=False)
    assert not any((out / name).exists() for name in FIGURES["datasets"])


def test_the_analysis_orders_colours_and_compares_arms_by_the_declared_strategies():
    """Arm order, fixed colours and the baseline come from repflat.config.strategies
    (tidy.ORDER, style.FIXED and stats' list of ERM names were typed out separately)."""
    import pandas as pd

    from repflat.analysis.report.plotting.style import COLOURS, FIXED
    from repflat.analysis.stats import baseline_arm
    from repflat.analysis.tidy import arm_order
    from repflat.config.strategies import STRATEGIES

    assert set(COLOURS) == {s.name for s in STRATEGIES}  # every declared strategy has its colour
    assert len(set(COLOURS.values())) == len(COLOURS)
    for s in STRATEGIES:
        assert all(FIXED[w] == COLOURS[s.name] for w in (s.name, *s.aliases))
    declared = [s.name for s in STRATEGIES]
    assert arm_order(["mine", *reversed(declared)]) == [*declared, "mine"]
    base = next(s for s in STRATEGIES if s.baseline)
    for name in (base.name, *base.aliases):
        frame = pd.DataFrame({"arm": ["manifold_mixup", name], "strategy": ["manifold_mixup", "?"]})
        assert baseline_arm(frame) == name
    assert baseline_arm(pd.DataFrame({"arm": ["mm", "plain"], "strategy": ["manifold_mixup", base.name]})) == "plain"
