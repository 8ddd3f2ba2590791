"""Your own model in 10 lines: features in memory, per-class spectra, a seaborn plot.

Runs offline in seconds (scikit-learn's 8x8 digits, a small MLP trained for a moment).
    python examples/own_model.py            # writes own_model_spectra.png beside it
"""
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# ---- a model and a data loader of your own (here: digits and a small MLP)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, 10))
torch.manual_seed(0)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(30):  # a few full-batch steps: enough to separate the classes a little
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    optimizer.step()
loader = DataLoader(TensorDataset(X, y), batch_size=256)

# ---- the ten lines
import repflat                                  # noqa: E402
import repflat.analysis as ra                   # noqa: E402
import seaborn as sns                           # noqa: E402

features = repflat.extract(model, ["1", "3"], loader, splits="train", class_names=[str(d) for d in range(10)])
print(features)                                              # splits, layers, shapes, classes
frame = ra.flattening_frame(features.array("3"), features.labels(), class_names=features.class_names)
spectra = ra.compute({"my mlp": features}).spectra           # tidy: one row per singular value
ax = sns.lineplot(data=spectra[spectra["group"] == "class"], x="index", y="singular_value",
                  hue="class_name", style="layer")
table = frame[frame["group"] == "class"].pivot(index="class_name", columns="metric", values="value")
print(table[["largest_singular_value", "effective_rank", "residual_variance_share"]].round(3))

ax.set_yscale("log")
ax.figure.savefig(Path(__file__).with_name("own_model_spectra.png"), dpi=100, bbox_inches="tight")
assert np.isfinite(table["effective_rank"]).all()
