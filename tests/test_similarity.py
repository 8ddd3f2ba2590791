"""Similarity of feature sets (repflat.analysis.similarity) against textbook n × n
versions, closed forms and invariances by construction."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist
from scipy.linalg import orthogonal_procrustes

from repflat.analysis import similarity as S
from repflat.errors import UserError


def _data(n=150, p1=12, p2=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p1)), rng.normal(size=(n, p2)), rng


def _rotation(p, rng):
    return np.linalg.qr(rng.normal(size=(p, p)))[0]


def _hsic_biased(k, l):
    n = len(k)
    h = np.eye(n) - 1.0 / n
    return np.trace(k @ h @ l @ h)


def _hsic_unbiased(k, l):
    """Song et al. 2012, Theorem 2, on n × n matrices, as printed."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


def _cka_gram(x, y, hsic):
    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.mark.parametrize("debiased, hsic", [(False, _hsic_biased), (True, _hsic_unbiased)])
def test_cka_from_row_sums_equals_the_n_by_n_gram_definition(debiased, hsic):
    x, y, rng = _data()
    y = y + 0.5 * x[:, :8]  # related, so the value is not near 0 by accident
    assert S.linear_cka(x, y, debiased=debiased) == pytest.approx(_cka_gram(x, y, hsic), rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_in_chunks_equals_in_memory_and_merging_equals_one_pass(debiased, tmp_path):
    x, y, _ = _data(n=301)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    whole = S.linear_cka(xm, y, debiased=debiased, chunk_rows=10_000)
    assert S.linear_cka(xm, y, debiased=debiased, chunk_rows=7) == pytest.approx(whole, rel=1e-10)
    merged = S.cross_moments(xm[:100], y[:100]).merge(S.cross_moments(xm[100:], y[100:]))
    assert S.cka_from_moments(merged, debiased=debiased) == pytest.approx(whole, rel=1e-10)


def test_identical_inputs_give_cka_one_and_distances_zero():
    x, _, _ = _data()
    assert S.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert S.linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert S.procrustes_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert S.angular_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert S.rdm_correlation(x, x) == pytest.approx(1.0)


def test_rotation_translation_and_isotropic_scaling_change_nothing():
    x, y, rng = _data()
    y = y + x[:, :8]
    moved = 3.7 * x @ _rotation(12, rng) + 5.0
    for f in (S.linear_cka, lambda a, b: S.linear_cka(a, b, debiased=True),
              S.procrustes_distance, S.angular_distance,
              lambda a, b: S.rdm_correlation(a, b, metric="euclidean")):
        assert f(moved, y) == pytest.approx(f(x, y), rel=1e-9, abs=1e-9)
    assert S.procrustes_distance(x, moved) == pytest.approx(0.0, abs=1e-6)
    assert S.linear_cka(x, moved) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_not_invariant_to_a_general_linear_map():
    """An anisotropic scaling changes CKA (Kornblith et al.: invariant to orthogonal
    maps and isotropic scaling only): the test can tell the invariances apart."""
    x, _, _ = _data()
    stretched = x * np.r_[10.0, np.ones(11)]
    assert S.linear_cka(x, stretched) < 0.9


def test_independent_data_biased_cka_small_debiased_near_zero():
    x, y, _ = _data(n=2000, p1=10, p2=10, seed=3)
    biased, debiased = S.linear_cka(x, y), S.linear_cka(x, y, debiased=True)
    # E[biased] ≈ p1 p2 / (n √(p1 p2)) = 0.005 here; the debiased one centres on 0
    assert 0 < biased < 0.02
    assert abs(debiased) < 0.005
    # with p not ≪ n the biased one is far from 0, the debiased one is not
    x, y, _ = _data(n=100, p1=80, p2=80, seed=4)
    assert S.linear_cka(x, y) > 0.3 and abs(S.linear_cka(x, y, debiased=True)) < 0.05


def test_procrustes_equals_scipys_orthogonal_procrustes_and_the_angle_closed_form():
    x, y, rng = _data(p2=12)
    y = y + x
    xs, ys = x - x.mean(0), y - y.mean(0)
    xs, ys = xs / np.linalg.norm(xs), ys / np.linalg.norm(ys)
    r, _ = orthogonal_procrustes(ys, xs)
    expected = np.linalg.norm(xs - ys @ r)
    assert S.procrustes_distance(x, y) == pytest.approx(expected, rel=1e-9)
    # d² = 2 − 2 cos θ
    assert S.procrustes_distance(x, y) ** 2 == pytest.approx(2 - 2 * np.cos(S.angular_distance(x, y)))


def test_procrustes_of_different_widths_is_that_of_the_zero_padded_sets():
    x, y, _ = _data()
    padded = np.hstack([y, np.zeros((len(y), 4))])
    assert S.procrustes_distance(x, y) == pytest.approx(S.procrustes_distance(x, padded), rel=1e-12)


def test_rdm_correlation_is_spearman_of_scipy_pdists():
    x, y, _ = _data(n=40)
    y = y + x[:, :8]
    expected = stats.spearmanr(pdist(x, "correlation"), pdist(y, "correlation"))[0]
    assert S.rdm_correlation(x, y) == pytest.approx(expected)
    assert S.rdm_correlation(x, y, method="pearson") == pytest.approx(
        stats.pearsonr(pdist(x, "correlation"), pdist(y, "correlation"))[0])


def test_a_side_without_variance_is_undefined_not_a_number_made_up():
    x, _, _ = _data()
    flat = np.ones((len(x), 3))
    assert np.isnan(S.linear_cka(x, flat))
    assert np.isnan(S.procrustes_distance(x, flat))


def test_mismatched_rows_and_bad_arguments_are_refused():
    x, y, _ = _data()
    with pytest.raises(UserError, match="same samples"):
        S.linear_cka(x, y[:-1])
    with pytest.raises(UserError, match="method"):
        S.rdm_correlation(x, y, method="kendall")
    with pytest.raises(UserError, match="2-D"):
        S.linear_cka(x[:, 0], y)


# ---------------------------------------------------------------- in the pipeline

def _memory_run(x, y, arm, seed, indices=None):
    from repflat.rundir.features import MemoryFeatures

    return MemoryFeatures({("train", 0, "h"): x}, {"train": y},
                          indices=None if indices is None else {"train": indices}
                          ).labelled(arm, strategy="none" if arm == "erm" else arm, seed=seed)


def test_the_table_pairs_arms_with_the_baseline_by_seed_and_seeds_within_an_arm():
    import repflat.analysis as ra

    rng = np.random.default_rng(7)
    y = np.repeat([0, 1], 30)
    base = rng.normal(size=(60, 5))
    sets = [_memory_run(base + 0.1 * rng.normal(size=(60, 5)), y, arm, seed)
            for arm in ("erm", "manifold_mixup") for seed in (0, 1, 2)]
    sets.append(_memory_run(base, y, "manifold_mixup", 3))  # no ERM seed 3: seed-to-seed only
    sim = ra.compute(sets, progress=False).similarity
    against = sim[sim["comparison"] == "baseline"]
    assert set(zip(against["arm"], against["seed"], against["other_arm"], against["other_seed"])) == {
        ("manifold_mixup", s, "erm", s) for s in (0, 1, 2)}
    seeds = sim[(sim["comparison"] == "seed_to_seed") & (sim["metric"] == "cka")]
    assert len(seeds[seeds["arm"] == "erm"]) == 3 and len(seeds[seeds["arm"] == "manifold_mixup"]) == 6
    assert set(sim["metric"]) == {"cka", "cka_debiased", "procrustes", "angular", "rsa_spearman"}
    # each row is the function's value on the two arrays
    row = against[(against["seed"] == 1) & (against["metric"] == "cka_debiased")]["value"].item()
    x_mix, x_erm = sets[4].arrays["train", 0, "h"], sets[1].arrays["train", 0, "h"]
    assert row == pytest.approx(S.linear_cka(x_mix, x_erm, debiased=True))


def test_runs_whose_rows_are_other_samples_are_not_compared_and_a_note_says_so():
    from repflat.analysis.runs import collect_runs
    from repflat.analysis.similarity_table import similarity_table

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 4)), np.repeat([0, 1], 20)
    order = rng.permutation(40)
    runs, _, _ = collect_runs([_memory_run(x, y, "erm", 0),
                               _memory_run(x[order], y[order], "manifold_mixup", 0, indices=order)])
    frame, notes = similarity_table(runs)
    assert frame.empty and "not the same samples" in notes[0]


def test_the_summary_gives_the_mean_and_a_t_interval_over_pairs():
    import pandas as pd
    from repflat.analysis.similarity_table import similarity_summary

    values = np.array([0.5, 0.6, 0.7])
    frame = pd.DataFrame({"layer": "h", "arm": "a", "comparison": "seed_to_seed", "metric": "cka",
                          "value": values})
    row = similarity_summary(frame).iloc[0]
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert row["mean"] == pytest.approx(0.6) and row["n_pairs"] == 3
    assert (row["low"], row["high"]) == pytest.approx((0.6 - half, 0.6 + half))


def test_similarity_csv_and_the_report_section_from_trained_runs(trained_runs, tmp_path):
    import repflat.analysis as ra
    from repflat.analysis.pipeline import load

    from repflat.analysis.report.build import ReportOptions

    ra.analyze(list(trained_runs.values()), tmp_path, progress=False,
               options=ReportOptions(figures=(), embeddings=()))
    back = load(tmp_path)
    sim = back.similarity
    assert set(sim["layer"]) >= {"fc1", "bottleneck"}
    assert set(sim["comparison"]) == {"baseline", "seed_to_seed"}
    assert set(sim.loc[sim["comparison"] == "baseline", "other_arm"]) == {"none"}
    assert sim["value"].notna().any()
    text = (tmp_path / "report.md").read_text()
    assert "Similarity between arms" in text and "debiased CKA" in text


def test_the_report_cells_stay_inside_the_scores_bounds():
    """Three pairs' t interval of a CKA near 1 reached 1.01–1.16 in the spirals report: the
    report shows the pairs' range, which a bounded score cannot leave."""
    import pandas as pd

    from repflat.analysis.report.similarity import similarity_frame
    from repflat.analysis.similarity_table import similarity_summary

    frame = pd.DataFrame({"layer": "fc1", "arm": "mm", "comparison": "seed_to_seed", "metric": "cka",
                          "value": [0.999, 0.95, 0.998], "other_arm": "mm"})
    summary = similarity_summary(frame)
    assert summary["high"].iloc[0] > 1  # the t interval would leave [0, 1]
    cell = similarity_frame(summary, ["fc1"], {"mm": "erm"}).iloc[0]
    shown = [c for c in cell.values if isinstance(c, str) and "(" in c and "–" in c]
    low, high = map(float, shown[0].split("(")[1].rstrip(")").split("–"))
    assert (low, high) == (0.95, 0.999)


def test_a_sweep_pairs_each_arm_with_its_own_baseline():
    """With effects.csv's pairs (ERM at the same model, data and swept values), an arm is
    compared with its own baseline, never with another model's or data set's ERM."""
    from types import SimpleNamespace

    from repflat.analysis.similarity_table import BASELINE, _pairs

    runs = [SimpleNamespace(name=a, seed=s) for a in ("erm-mlp", "erm-cnn", "mm-mlp", "mm-cnn", "dropout")
            for s in (0, 1)]
    pairs = _pairs(runs, {"mm-mlp": "erm-mlp", "mm-cnn": "erm-cnn"})
    against = {(a.name, b.name) for c, a, b in pairs if c == BASELINE}
    assert against == {("mm-mlp", "erm-mlp"), ("mm-cnn", "erm-cnn")}  # dropout: seeds only
    assert {(a.name, b.name) for c, a, b in _pairs(runs, "erm-mlp") if c == BASELINE} >= {("mm-cnn", "erm-mlp")}
