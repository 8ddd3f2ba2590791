"""The discriminative capture against autograd, call addressing of reused modules, the
premise (excess mixup loss) against its closed form, and the losses' infima."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from repflat.capture.discriminative import (batch_jacobians, class_jacobian_summaries,  # noqa: E402
                                            factor_rank)
from repflat.base.layers import recording, replacing  # noqa: E402
from repflat.base.naming import check_layers  # noqa: E402
from repflat.errors import UserError  # noqa: E402
from repflat.training.losses import loss_infimum, soft_target_loss  # noqa: E402


class Reused(nn.Module):
    """One Tanh module called twice per forward, as torchvision's BasicBlock reuses relu."""

    def __init__(self, d_in=3, width=5, K=3):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.l1, self.l2, self.head = nn.Linear(d_in, width), nn.Linear(width, width), nn.Linear(width, K)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g, dtype=torch.float64)
        self.act = nn.Tanh()

    def forward(self, x):
        return self.head(self.act(self.l2(self.act(self.l1(x)))))

    def after_first(self, h1):  # the map from the first call's output to the logits
        return self.head(self.act(self.l2(h1)))

    def after_second(self, h2):
        return self.head(h2)


def centred(z):
    return z - z.mean(dim=-1, keepdim=True)


def test_jacobians_equal_autograd_at_each_call_of_a_reused_module():
    model = Reused().double()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with recording(model, ["act:1", "act:2"]) as rec:
        model(x)
    _, jac = batch_jacobians(model, x, ["act:1", "act:2", "input"])
    for name, fn, h in (("act:1", model.after_first, rec["act:1"]),
                        ("act:2", model.after_second, rec["act:2"]), ("input", model, x)):
        for i in range(len(x)):
            expect = torch.autograd.functional.jacobian(lambda v: centred(fn(v)), h[i])
            torch.testing.assert_close(jac[name][i], expect, rtol=1e-10, atol=1e-12)
    # the calls are told apart: the first call's output is not the second's
    assert not torch.allclose(rec["act:1"], rec["act:2"])


def test_a_bare_name_of_a_module_that_runs_twice_is_refused_not_read_silently():
    model = Reused().double()
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(UserError, match=r"act.*runs 2 or more times.*act:1, act:2"):
        with recording(model, ["act"]):
            model(x)
    with pytest.raises(UserError, match="runs 2 or more times"):
        batch_jacobians(model, x, ["act"])
    with pytest.raises(UserError, match="runs 2 or more times"):
        with replacing(model, "act", lambda h: h):
            model(x)
    assert check_layers(model, ["act:2", "l1"], "layers") == ("act:2", "l1")
    assert check_layers(model, "l1", "layers") == ("l1",)  # a string is one name
    with pytest.raises(UserError, match="'act:0'"):
        check_layers(model, ["act:0"], "layers")


def test_class_summaries_are_the_average_jacobian_outer_products():
    model = Reused(K=3).double()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 40, 16)]
    summaries, counts = class_jacobian_summaries(model, batches, ["act:1"], 3, device=torch.device("cpu"))
    factor, trace = summaries["act:1"]
    _, jac = batch_jacobians(model, x, ["act:1"])
    J = jac["act:1"].numpy()
    assert factor.shape == (3, factor_rank(5, 3), 5)
    for k in range(3):
        G = np.einsum("ncd,nce->de", J[y.numpy() == k], J[y.numpy() == k]) / counts[k]
        np.testing.assert_allclose(factor[k].T @ factor[k], G, rtol=1e-8, atol=1e-10)
        assert trace[k] == pytest.approx(np.trace(G))
    assert counts.tolist() == np.bincount(y.numpy(), minlength=3).tolist()


@pytest.mark.parametrize("kind", ["cross_entropy", "bce", "brier", "mse", "squared_error"])
def test_each_infimum_is_the_minimum_over_predictions(kind):
    """Minimise the loss over free logits for fixed soft targets: it approaches the
    infimum from above (and reaches it exactly for raw squared error)."""
    g = torch.Generator().manual_seed(0)
    lam = torch.rand(6, 1, generator=g, dtype=torch.float64) * 0.8 + 0.1
    targets = torch.cat([lam, 1 - lam], dim=1)
    start = torch.log(targets) if kind != "squared_error" else targets.clone()
    z = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([z], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = soft_target_loss(kind, z, targets)
        loss.backward()
        return loss
    opt.step(closure)
    best = float(soft_target_loss(kind, z.detach(), targets))
    inf = float(loss_infimum(kind, targets))
    assert best >= inf - 1e-9 and best == pytest.approx(inf, abs=1e-6)
    if kind == "cross_entropy":
        from scipy.stats import entropy
        assert inf == pytest.approx(np.mean([entropy(t) for t in targets.numpy()]))


def test_brier_is_the_old_mse():
    z, t = torch.randn(5, 3), torch.softmax(torch.randn(5, 3), 1)
    assert soft_target_loss("brier", z, t) == soft_target_loss("mse", z, t)
    expect = (z - t).pow(2).sum(1).mean()
    torch.testing.assert_close(soft_target_loss("squared_error", z, t), expect)


class PointsHead(nn.Module):
    """Two classes at h = ±1 (one unit), a linear head with logit gap c·h/2 − (−c·h/2)."""

    def __init__(self, c: float, raw: bool = False):
        super().__init__()
        self.h = nn.Identity()
        self.c, self.raw = c, raw

    def forward(self, x):
        h = self.h(x[:, :1])
        if self.raw:  # outputs (1 + h)/2, (1 − h)/2: exactly the targets at and between the points
            return torch.cat([(1 + h) / 2, (1 - h) / 2], dim=1)
        return torch.cat([self.c * h / 4, -self.c * h / 4], dim=1)


def _probe(model, loss, n=4000, alpha=2.0):
    from repflat.base.data import Data
    from repflat.training.premise import PremiseProbe
    y = np.repeat([0, 1], n // 2)
    x = np.where(y[:, None] == 0, 1.0, -1.0).astype(np.float32)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    data = Data({"train": ds}, {"train": y}, 2, (1,), arrays={"train": x})
    probe = PremiseProbe.draw(n, ("h",), alpha, loss, torch.Generator().manual_seed(0))
    return probe.measure(model, data, torch.device("cpu")), probe.describe(y)


def test_the_premise_at_a_collapsed_linear_head_is_its_closed_form_minimum():
    """The minimiser (classes at points, gap slope c*) reaches linear_head_excess with
    cross-entropy, and exactly 0 with raw squared error."""
    from repflat.analysis import theory

    share = _probe(PointsHead(1.0), "cross_entropy")[1]["same_class_share"]
    gap, bound = theory.linear_head_minimiser(2.0, share)  # the minimiser the closed form finds
    measured, _ = _probe(PointsHead(gap), "cross_entropy")
    assert measured["excess_mixup_loss"] == pytest.approx(bound, rel=0.05)
    assert measured["excess_mixup_loss"] >= bound * 0.95
    off, _ = _probe(PointsHead(3.0), "cross_entropy")  # another slope: more excess
    assert off["excess_mixup_loss"] > measured["excess_mixup_loss"] + 0.005
    exact, _ = _probe(PointsHead(0, raw=True), "squared_error")
    assert abs(exact["excess_mixup_loss"]) < 1e-12
    assert theory.linear_head_excess(2.0) == pytest.approx(0.0242, abs=5e-5)


@pytest.mark.parametrize("c", [0.01, 7.0, 100.0])
def test_the_gauge_on_a_real_network_changes_raw_sigma_not_the_measures(c):
    """h → c·h at the bottleneck (its weights × c) with the next layer's weights ÷ c: the
    same predictions; captured features × c, Jacobians ÷ c; every corollary measure equal."""
    from repflat.analysis.discriminative import discriminative_geometry
    from repflat.analysis.spectra import class_spectra
    from repflat.training.models.mlp import MLP

    torch.manual_seed(0)
    model = MLP(2, 3, widths=(8,), bottleneck=4, widths_after=(8,)).double().eval()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(90, 2, generator=g, dtype=torch.float64)
    y = torch.arange(90) % 3

    def measured(m):
        with recording(m, ["bottleneck"]) as rec:
            logits = m(x)
        (summaries, _) = class_jacobian_summaries(m, [(x, y)], ["bottleneck"], 3, device=torch.device("cpu"))
        X = rec["bottleneck"].numpy()
        per_class, layer = discriminative_geometry(X, y.numpy(), *summaries["bottleneck"],
                                                   spectra=class_spectra(X, y.numpy()))
        return logits.detach(), X, per_class, layer

    logits, X, base, layer = measured(model)
    with torch.no_grad():
        model.bottleneck[0].weight.mul_(c), model.bottleneck[0].bias.mul_(c)
        model.fc2[0].weight.div_(c)
    logits_c, X_c, scaled, layer_c = measured(model)
    torch.testing.assert_close(logits_c, logits, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(X_c, c * X, rtol=1e-9)
    for k in range(3):
        for metric, value in base[k].items():
            expect = value * (c if metric == "separation" else 1)
            assert scaled[k][metric] == pytest.approx(expect, rel=1e-6, abs=1e-9), metric
    assert layer_c["scale_gain_product"] == pytest.approx(layer["scale_gain_product"], rel=1e-6)
    assert layer_c["layer_scale"] == pytest.approx(c * layer["layer_scale"], rel=1e-6)


def test_a_format_1_run_reads_as_before_without_the_measures(trained_runs, tmp_path):
    import json
    import shutil

    import repflat.analysis as ra
    from repflat.rundir.features import Features

    run = tmp_path / "old"
    shutil.copytree(trained_runs["manifold_mixup", 0], run)
    manifest = json.loads((run / "features/manifest.json").read_text())
    assert manifest["format"] == 2 and manifest["discriminative"]
    manifest["format"] = 1
    del manifest["discriminative"]
    (run / "features/manifest.json").write_text(json.dumps(manifest))
    assert Features(run).discriminative("fc1", epoch=3) is None
    old = ra.compute([run]).flat
    new = ra.compute([trained_runs["manifold_mixup", 0]]).flat
    assert "along_spread" not in set(old["metric"]) and "along_spread" in set(new["metric"])
    same = new[new["metric"].isin(set(old["metric"]))]
    assert len(same) == len(old)
    np.testing.assert_array_equal(same["value"].to_numpy(), old["value"].to_numpy())


def test_layers_that_cannot_be_summarised_are_left_out_not_fatal():
    """A layer wider than max_width(K), or a conv map read with reduce max: no summary, the
    reason kept, the other layers summarised (a training run must not die at a capture)."""
    from repflat.capture.discriminative import MAX_BYTES, max_width

    width = max_width(3) + 1
    assert 3 * width ** 2 * 8 > MAX_BYTES >= 3 * (width - 1) ** 2 * 8
    wide = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 3)).double()
    x, y = torch.randn(6, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    skipped: dict = {}
    summaries, _ = class_jacobian_summaries(wide, [(x, y)], ["0", "input"], 3,
                                            device=torch.device("cpu"), skipped=skipped)
    assert set(summaries) == {"input"} and "more than" in skipped["0"]
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).double()
    skipped = {}
    summaries, _ = class_jacobian_summaries(conv, [(torch.randn(6, 1, 6, 6, dtype=torch.float64), y)],
                                            ["0", "3"], 3, device=torch.device("cpu"), reduce="max",
                                            skipped=skipped)
    assert set(summaries) == {"3"} and "max" in skipped["0"]
    summaries, _ = class_jacobian_summaries(conv, [(torch.randn(6, 1, 6, 6, dtype=torch.float64), y)],
                                            ["0"], 3, device=torch.device("cpu"), reduce="avg")
    assert summaries["0"][0].shape[2] == 2  # avg: one direction per channel
