"""Corollary 1, class by class: how each arm's classes compare with dim(H) − K + 1.

At a layer of width dim(H) with K classes, a minimiser of the manifold mixup loss (with
a downstream map differentiable at the representations) puts each class on a
(dim(H) − K + 1)-dimensional affine subspace across the discriminative directions
(Verma et al. 2019, §3.1; PAPER.md, "What the argument needs"). `theory_check` gathers,
for every class and for the class average, each arm's spread along those directions and
collapsed flag (where the run saved its discriminative summaries), numerical rank,
effective rank and share of variance beyond that dimension, as mean and std over seeds
at each run's last analysed epoch. The share ignores orientation and reads a collapsed
class as thick, so it stands beside the spread along, never alone.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.errors import expected
from repflat.analysis.tidy import final_epoch, over_seeds
from repflat.rundir.names import CLASS, MEAN


METRICS = ("numerical_rank", "effective_rank", "residual_variance_share", "largest_singular_value",
           "along_spread", "collapsed")
COLUMNS = ["arm", "strategy", "group", "class", "class_name", "metric", "mean", "std", "n_runs",
           "theory_dimension"]


def theory_check(flat: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Tidy: arm, strategy, group ("class", or "mean" for the class average), class (Int64,
    NA for the average), class_name, metric, mean, std, n_runs, theory_dimension."""
    sel = flat[(flat["layer"] == layer) & (flat["group"] == CLASS)]
    sel = final_epoch(sel)
    if sel.empty:
        return pd.DataFrame(columns=COLUMNS)
    theory = sel[sel["metric"] == "theory_dimension"]["value"].iloc[0]
    sel = sel[sel["metric"].isin(METRICS)]
    averaged = (sel.groupby(["run", "arm", "strategy", "metric"], sort=False)["value"].mean()
                .reset_index().assign(group=MEAN, **{"class": pd.NA, "class_name": None}))
    averaged["class"] = averaged["class"].astype("Int64")
    keys = ["run", "arm", "strategy", "group", "class", "class_name", "metric", "value"]
    both = pd.concat([sel[keys], averaged[keys]], ignore_index=True)
    return (over_seeds(both, ["arm", "strategy", "group", "class", "class_name", "metric"])
            .assign(theory_dimension=int(theory)))


NARROW = 32
"""Layers whose dim(H) − K + 1 is at most this get the class-by-class table in reports:
the bottlenecks, where Corollary 1 says something a reader can check by eye."""


def linear_head_minimiser(alpha: float, same_class_share: float = 0.5) -> tuple[float, float]:
    """The smallest excess cross-entropy mixup loss a 2-class network can reach when the
    mixed layer feeds a linear head directly (K = 2), in nats.

    With f(h) = Wh + b the loss sees only the logit gap δ(h) = wᵀh + b, which is affine,
    so a mix of δ_i and δ_j is λδ_i + (1 − λ)δ_j. The loss is convex in the gaps and
    symmetric within each class and between the classes, so a minimiser puts every row
    of class 0 at δ = c/2 and of class 1 at −c/2 (each class collapsed along w). With a
    share p of same-class pairs (1/2 for balanced classes paired at random) and
    λ ~ Beta(α, α), the mixup loss is

        L(c) = p · log(1 + e^{−c/2}) + (1 − p) · E_λ[ CE(σ(c(λ − ½)), λ) ],

    and its infimum on the same mixes is (1 − p) · E_λ[H(λ)] (same-class targets are
    one-hot: entropy 0). The excess min_c L(c) − (1 − p) E[H(λ)] is > 0: the same-class
    pairs want c → ∞, the mixed ones a finite c. About 0.0242 nats at α = 2, p = ½.

    Parameters
    ----------
    alpha : float
        λ ~ Beta(α, α), α > 0.
    same_class_share : float, default 0.5
        Share p of the mixes whose two rows are of one class.

    Returns
    -------
    (float, float)
        The minimising gap c between the classes' logit gaps, and the constrained minimum
        of the excess, ≥ 0 (a run that reaches the minimiser shows this excess, not 0).
    """
    from scipy import integrate, optimize, special, stats

    if not alpha > 0 or not 0 <= same_class_share <= 1:
        raise expected("linear_head_minimiser", "alpha > 0 and a share in [0, 1]",
                       (alpha, same_class_share))
    beta = stats.beta(alpha, alpha)
    p = same_class_share

    def expect(fn) -> float:
        # the Beta density is singular at the ends for α < 1: quad copes with the weight
        return integrate.quad(lambda t: beta.pdf(t) * fn(t), 0, 1, limit=200)[0]

    entropy = expect(lambda t: -special.xlogy(t, t) - special.xlogy(1 - t, 1 - t))

    def loss(c: float) -> float:
        mixed = expect(lambda t: t * np.logaddexp(0, -c * (t - 0.5))
                       + (1 - t) * np.logaddexp(0, c * (t - 0.5)))
        return p * float(np.logaddexp(0, -c / 2)) + (1 - p) * mixed

    best = optimize.minimize_scalar(loss, bounds=(0, 200), method="bounded",
                                    options={"xatol": 1e-9})
    return float(best.x), float(best.fun - (1 - p) * entropy)


def linear_head_excess(alpha: float, same_class_share: float = 0.5) -> float:
    """The constrained minimum of the excess of `linear_head_minimiser`, in nats."""
    return linear_head_minimiser(alpha, same_class_share)[1]
