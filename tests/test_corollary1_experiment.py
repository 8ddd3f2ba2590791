"""experiments/corollary1.yaml end to end, shrunk: premise logged, discriminative measures
in the tables, the verdict sentences, the linear-head check and the figure in the report."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_corollary_experiment_runs_and_reports_its_verdict(tmp_path):
    exp = yaml.safe_load((ROOT / "experiments/corollary1.yaml").read_text())
    exp["seeds"] = [0, 1, 2]
    base = exp["base"]
    base["data"]["n_per_class"] = 60
    base["train"].update(epochs=40, batch_size=60, checkpoint_every=40)
    base["evaluation"].update(premise_every=10, premise_mixes=128)
    base["capture"].update(epochs=[0, 20], grid_resolution=8, uniform_samples=16)
    for point in exp["grid"]:
        point["params"]["model.widths_after"] = {"linear_head": []}
        point["params"]["train.loss"] = ["cross_entropy"]
        if "mixing.alpha" in point["params"]:
            point["params"]["mixing.alpha"] = [2]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(exp))
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "repflat", "run", str(tmp_path / "c.yaml"), "--out", str(out),
                    "--quiet", "--figures", "corollary,heatmap"], check=True, timeout=600)
    training = pd.read_csv(out / "analysis/training.csv")
    assert (training["excess_mixup_loss"].dropna() >= 0).all()
    assert training.groupby("arm")["excess_mixup_loss"].count().min() > 0  # ERM too, on the same mixes
    flat = pd.read_csv(out / "analysis/flattening.csv")
    measured = set(flat[flat["layer"] == "bottleneck"]["metric"])
    assert {"along_spread", "across_spread", "collapsed", "layer_scale", "downstream_gain"} <= measured
    report = (out / "analysis/report.md").read_text()
    shows = report[report.index("What this shows"):report.index("Caveats")]
    # Corollary 1 first (its table, one row per arm with a reading), the paper's raw σ after
    assert shows.index("Corollary 1, measured as stated") < shows.index("Σ σ₂")
    rows = [l for l in shows.splitlines() if l.startswith("| bottleneck |")]
    assert len(rows) == 2 and all(any(f"| {r}, " in l for r in ("flattening", "collapse", "neither"))
                                  and ("near a minimiser" in l or "far from a minimiser" in l) for l in rows)
    assert "closed form" in shows and ("above it" in shows or "times it" in shows)
    assert (out / "analysis/corollary.png").is_file()
    assert "gauge" in report
