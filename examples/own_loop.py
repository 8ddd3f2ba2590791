"""Your model, your loop: ERM against manifold mixup over 3 seeds, compared with intervals.

Runs offline in seconds (scikit-learn's 8x8 digits, a small MLP, full-batch Adam).
    python examples/own_loop.py
"""
import torch
from sklearn.datasets import load_digits
from torch import nn

import repflat
import repflat.analysis as ra

digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
data = {"train": (X[:1400], y[:1400]), "test": (X[1400:], y[1400:])}
x_train, y_train = data["train"]


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(),   # "1": a wide hidden layer
                         nn.Linear(64, 16), nn.ReLU(),   # "3": a narrow one (16 > K - 1 = 9)
                         nn.Linear(16, 10))


def fit(model: nn.Module, mixup: repflat.Mixup | None = None, steps: int = 150) -> nn.Module:
    """Your training loop, untouched but for two lines when mixing."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        if mixup is None:
            loss = nn.functional.cross_entropy(model(x_train), y_train)
        else:
            logits, targets = mixup(x_train, y_train)            # mixed at a drawn layer
            loss = repflat.soft_cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


features = []
for seed in (0, 1, 2):
    erm = fit(make_model(seed))
    model = make_model(seed)
    mixup = repflat.Mixup(model, ["input", "1", "3"], alpha=2.0, seed=seed)
    mixed = fit(model, mixup)
    print(f"seed {seed}: {mixup}")
    for arm, strategy, net in (("erm", "none", erm), ("manifold_mixup", "manifold_mixup", mixed)):
        features.append(repflat.extract(net, ["1", "3"], data, arm=arm, strategy=strategy,
                                        seed=seed, progress=False, discriminative=True))

result = ra.compute(features, overrides={"split": "test"}, progress=False)
summary = result.summary[result.summary["metric"].isin(["sum_other_singular_values", "effective_rank"])]
print(summary[["arm", "layer", "metric", "mean", "std", "n_runs"]].round(3).to_string(index=False))

effects = ra.compare(result, baseline="erm")   # seed-paired: each seed's two models
shown = effects[effects["metric"].isin(["along_spread", "across_spread",  # Corollary 1's, scale-free
                                        "sum_other_singular_values", "effective_rank"])]
print(shown[["layer", "metric", "arm", "baseline_mean", "arm_mean", "diff", "low", "high",
             "method", "n_seeds"]].round(3).to_string(index=False))
# a metric undefined at a layer (the share beyond dim(H) − K + 1 where that bound reaches
# the class's rank: Corollary 1 says nothing there) has no difference and no interval
defined = effects.dropna(subset=["diff"])
assert set(defined["n_seeds"]) == {3} and defined["low"].notna().all()
