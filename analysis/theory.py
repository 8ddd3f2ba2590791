"""Corollary 1, class by class: how each arm's classes compare with dim(H) − K + 1.

At a layer of width dim(H) with K classes, a minimiser of the manifold mixup loss
puts each class on a (dim(H) − K + 1)-dimensional affine subspace (Verma et al. 2019,
§3.1). `theory_check` gathers, for every class and for the class average, each arm's
numerical rank, effective rank and share of variance beyond that dimension, as mean
and std over seeds at each run's last analysed epoch.
"""
from __future__ import annotations

import pandas as pd
from repflat.analysis.tidy import final_epoch, over_seeds
from repflat.rundir.names import CLASS, MEAN


METRICS = ("numerical_rank", "effective_rank", "residual_variance_share", "largest_singular_value")
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
