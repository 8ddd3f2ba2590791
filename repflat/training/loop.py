"""One training run, from a RunConfig to a complete run directory.

`setup` builds and checks everything (data, model, layer names, mixer, optimiser)
before a single file is written; `train` runs the loop, which reads top to bottom.

Randomness: generators derived from the run seed drive initialisation, batch order,
mixing and input noise; dropout draws from the global torch generator, seeded from the
run seed at the start, and augmentation of item i in epoch e from (seed, e, i). The
same seed therefore gives the same run on the CPU, bit for bit, and a run killed and
resumed from its checkpoint (repflat.training.checkpoint) ends exactly where an uninterrupted
one does.

Under `torchrun` (DDP): every rank draws the same batch order, takes rows
rank, rank + W, … of each batch, and mixes within its rows with a mixing generator of
its own; gradients are averaged by DDP. Rank 0 writes the run directory; all ranks
write their rows of the captured features.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repflat.training import checkpoint
from repflat.rundir.names import (BEST, BEST_EPOCH, CHECKPOINT_FILE, EPOCH, EXCESS_MIXUP_LOSS,
                                  FGSM_ACCURACY, FINAL, INPUT, LAMBDA_STD, LR, MEAN_LAMBDA, METRICS_FILE,
                                  MIXES, PREMISE_COLUMNS, RUN_FILE, SECONDS, TEST_ACCURACY,
                                  TEST_ECE, TEST_ERROR, TEST_NLL, TRAIN_LOSS, RunState)
from repflat.training.premise import PremiseProbe
from repflat.training.live import live_writer
from repflat.training.snapshot import capture
from repflat.config import RunConfig, TrainConfig
from repflat.base.data import Data, load_data
from repflat.base.data.batches import Seeded, epoch_batches, load_batches
from repflat.base.distributed import Dist, from_env, local_device, resolve_device
from repflat.training.losses import soft_target_loss
from repflat.training.evaluate import accuracy_and_nll, autocast, expected_calibration_error, fgsm_accuracy, predict
from repflat.base.layers import default_layers, forward_features, layer_names
from repflat.base.naming import check_layers
from repflat.config.layers import DEFAULT_PLANE
from repflat.rundir.lock import exclusive
from repflat.training.mixing import build_mixer
from repflat.progress import progress_bar, say
from repflat.training.models import build_model
from repflat.rundir.run import RunWriter
from repflat.training.claim import prepare_run_dir
from repflat.rundir.features import FeatureWriter
from repflat.strict import to_plain


@dataclass(frozen=True)
class Seeds:
    init: int
    shuffle: int
    mixing: int
    noise: int
    dropout: int
    augment: int
    premise: int

    @classmethod
    def from_seed(cls, seed: int) -> Seeds:
        # Independent streams from one seed, so e.g. adding noise does not shift the mixing draws.
        children = np.random.SeedSequence(seed).spawn(7)  # a new stream goes last: the others stay
        return cls(*(int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for c in children))


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass
class Setup:
    cfg: RunConfig
    data: Data
    model: nn.Module
    mixer: object
    seeds: Seeds
    device: torch.device
    capture_layers: tuple[str, ...]
    capture_epochs: frozenset[int]
    plane: str | None
    premise: PremiseProbe | None = None

    @cached_property
    def optimizer(self) -> torch.optim.Optimizer:
        # Built on first use, not in setup(): torch's first optimizer imports torch._dynamo
        # (slow: benchmarks/import_costs.py), which `run --check` and `train --check` need not pay.
        tc, params = self.cfg.train, self.model.parameters()
        if tc.optimizer == "sgd":
            return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum,
                                   nesterov=tc.nesterov, weight_decay=tc.weight_decay)
        return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)


def setup(cfg: RunConfig) -> Setup:
    """Build every part of a run and check it against the config; writes nothing."""
    seeds = Seeds.from_seed(cfg.seed)
    device = local_device(resolve_device(cfg.train.device))
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.n_classes, seed=seeds.init).to(device)
    if cfg.train.channels_last and device.type == "cuda" and len(data.input_shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    mixer = build_mixer(cfg.mixing, model, generator(seeds.mixing))
    default = default_layers(model) if not cfg.capture.layers else ()
    if default and data.input_shape == (2,):  # boundary pictures draw the training points
        default = (INPUT, *default)
    layers = check_layers(model, cfg.capture.layers or default, "capture.layers")
    plane = cfg.capture.plane
    if plane is not None and plane != DEFAULT_PLANE:  # the default is skipped where absent
        check_layers(model, (plane,), "capture.plane")
    if plane is not None and plane in layer_names(model) and data.arrays is not None:
        # Panels d and e need a 2D layer; one probe pass tells its width for any model.
        probe = forward_features(model, data.arrays["train"][:2], (plane,), device=device)
        plane = plane if probe[plane].shape[1] == 2 else None
    else:
        plane = None
    epochs = frozenset(cfg.capture.epochs) | {cfg.train.epochs}
    return Setup(cfg, data, model, mixer, seeds, device, layers, epochs, plane,
                 premise_probe(cfg, model, mixer, data, seeds))


def premise_probe(cfg: RunConfig, model: nn.Module, mixer, data: Data, seeds: Seeds) -> PremiseProbe | None:
    """The fixed evaluation mixes of Corollary 1's premise (None: not logged)."""
    ev = cfg.evaluation
    mixing = cfg.mixing.strategy != "none"
    layers = (getattr(mixer, "layers", ()) if mixing else
              check_layers(model, ev.premise_layers, "evaluation.premise_layers"))
    if not ev.premise or not layers:
        return None
    alpha = cfg.mixing.alpha if mixing else ev.premise_alpha
    return PremiseProbe.draw(len(data.labels["train"]), tuple(layers), alpha, cfg.train.loss,
                             generator(seeds.premise), ev.premise_mixes)


def learning_rate(tc: TrainConfig, epoch: int) -> float:
    """The rate for epoch `epoch` (1-based): constant; × gamma for each milestone already
    passed (epoch > m); or cosine from lr at epoch 1 towards 0 after the last."""
    if tc.schedule == "step":
        return tc.lr * tc.gamma ** sum(epoch > m for m in tc.milestones)
    if tc.schedule == "cosine":
        return tc.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / tc.epochs))
    return tc.lr


def test_metrics(s: Setup, epoch: int) -> dict:
    """This epoch's row of test measurements (FGSM only at the chosen epochs)."""
    cfg, ev = s.cfg, s.cfg.evaluation
    logits, labels = predict(s.model, s.data, "test", s.device, amp=cfg.train.amp)
    accuracy, nll = accuracy_and_nll(logits, labels)
    row = {TEST_ACCURACY: accuracy, TEST_ERROR: 1 - accuracy, TEST_NLL: nll}
    if ev.calibration:
        probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), 1).numpy()
        row[TEST_ECE] = expected_calibration_error(probs, labels)
    if ev.fgsm_epsilon is not None:
        due = epoch == cfg.train.epochs or (ev.fgsm_every and epoch % ev.fgsm_every == 0)
        row[FGSM_ACCURACY] = (fgsm_accuracy(s.model, s.data, "test", ev.fgsm_epsilon, s.device)
                                if due else "")
    return row


def premise_metrics(s: Setup, epoch: int) -> dict:
    """This epoch's excess mixup loss columns ('' between evaluations; none without a probe)."""
    if s.premise is None:
        return {}
    ev = s.cfg.evaluation
    if epoch == s.cfg.train.epochs or epoch % ev.premise_every == 0:
        return s.premise.measure(s.model, s.data, s.device)
    return dict.fromkeys(PREMISE_COLUMNS, "")


def summary(rows: list[dict]) -> dict:
    """Final and best test error and NLL (the paper's authors report the best)."""
    errors = [r[TEST_ERROR] for r in rows]
    best = int(np.argmin(errors))
    out = {FINAL + TEST_ERROR: errors[-1], BEST + TEST_ERROR: errors[best],
           BEST_EPOCH: rows[best][EPOCH], FINAL + TEST_NLL: rows[-1][TEST_NLL],
           BEST + TEST_NLL: min(r[TEST_NLL] for r in rows)}
    if rows[-1].get(EXCESS_MIXUP_LOSS, "") != "":
        out[FINAL + EXCESS_MIXUP_LOSS] = rows[-1][EXCESS_MIXUP_LOSS]
    if rows[-1].get(FGSM_ACCURACY, "") != "":
        out[FINAL + FGSM_ACCURACY] = rows[-1][FGSM_ACCURACY]
    mixes = {k.removeprefix(MIXES): sum(int(r[k]) for r in rows) for k in rows[-1] if k.startswith(MIXES)}
    if mixes:  # totals over the run; λ's mean and spread pooled over the batches mixed each epoch
        weights = [sum(int(r[f"{MIXES}{l}"]) for l in mixes) for r in rows]
        out["mixing"] = {"batches_mixed": mixes, **pooled_lambda(weights, rows)}
    return out


def pooled_lambda(weights: list[int], rows: list[dict]) -> dict:
    """The mean and standard deviation of every λ drawn in the run, from each epoch's
    (batches mixed, mean, std): E[λ²] = Σ w (s² + m²) / Σ w (None where nothing was drawn;
    rows written before λ's spread was logged give no std)."""
    drawn = [(w, r[MEAN_LAMBDA], r.get(LAMBDA_STD, "")) for w, r in zip(weights, rows)
             if w and r.get(MEAN_LAMBDA, "") != ""]
    if not drawn:
        return {MEAN_LAMBDA: None, LAMBDA_STD: None}
    total = sum(w for w, _, _ in drawn)
    mean = sum(w * m for w, m, _ in drawn) / total
    if any(s == "" for _, _, s in drawn):
        return {MEAN_LAMBDA: mean, LAMBDA_STD: None}
    square = sum(w * (s * s + m * m) for w, m, s in drawn) / total
    return {MEAN_LAMBDA: mean, LAMBDA_STD: max(square - mean * mean, 0.0) ** 0.5}


def train(cfg: RunConfig, out: str | Path, *, progress: bool = True, restart: bool = False,
          built: Setup | None = None) -> RunState:
    """Train `cfg` into run directory `out`; return what was done (NEW, RESUME, COMPLETE).

    An unfinished run of the same config continues from its latest checkpoint unless
    `restart` is set. `built`: `setup(cfg)` already made (and so checked) by the caller,
    used instead of building everything again; it must not have trained yet.

    Everything (data, model, layer names, mixer, optimiser) is built and checked before
    the first file is written. Under `torchrun` every rank calls it; rank 0 writes the
    run directory.

    Parameters
    ----------
    cfg : repflat.config.RunConfig
        The run: data, model, mixing (the regularizer), training, evaluation, capture
        (which layers' features are saved at which epochs) and seed.
    out : str or Path
        The run directory: new, empty, or holding a run of this same config (continued,
        or left as it is if complete). Afterwards it holds config.yaml, run.json,
        metrics.csv, checkpoint.pt and features/ (see `repflat.rundir.features`).
    progress : bool, default True
        A progress bar on a terminal, and the line `run_line` says when it ends.
    restart : bool, default False
        Start an unfinished run over instead of continuing it from its checkpoint (a
        complete run is not trained again either way).
    built : Setup, optional
        `repflat.training.loop.setup(cfg)`, already made by the caller, for this `cfg`.

    Returns
    -------
    repflat.rundir.names.RunState
        NEW (trained from the start, also when an unfinished run was started over),
        RESUME (continued from its checkpoint) or COMPLETE (already done, nothing
        trained).

    Raises
    ------
    repflat.errors.UserError
        If `out` is a file, a folder of other files, holds a different run (naming the
        first field that differs) or is in use by another repflat process, or the
        config cannot be built (data, model, layer names).
    ValueError
        If `built` was set up for another config.
    """
    plain = to_plain(cfg)
    state, line = train_prepared(cfg, out, plain, prepare_run_dir(out, plain), progress=progress,
                                 restart=restart, built=built)
    say(line, show=progress and line is not None)
    return state


def train_prepared(cfg: RunConfig, out: str | Path, plain: dict, state: RunState, *,
                   progress: bool = True, restart: bool = False,
                   built: Setup | None = None) -> tuple[RunState, str | None]:
    """`train`, for a directory already prepared (`prepare_run_dir(out, plain)` gave
    `state`, `plain` is `to_plain(cfg)`): what was done, and the line the run says (None
    on ranks other than 0 and for a run complete already)."""
    if state is RunState.COMPLETE:
        return RunState.COMPLETE, None
    if built is not None and built.cfg != cfg:
        raise ValueError("train: `built` was set up for another config")
    s = built or setup(cfg)
    dist = from_env(s.device)
    out = Path(out)
    resumed = None if restart or state is RunState.NEW else checkpoint.load_resumable(
        out / CHECKPOINT_FILE, plain, dist.world)
    with exclusive(out, kind="run") if dist.main else contextlib.nullcontext():
        run = (RunWriter(out, plain, RunState.RESUME if resumed else state, torch.get_num_threads())
               if dist.main else None)
        dist.barrier()
        fit(s, out, run, dist, resumed, plain, progress=progress)
    dist.barrier()
    line = run_line(cfg, run.info, run.rows) if run is not None else None
    return (RunState.RESUME if resumed else RunState.NEW), line


def run_line(cfg: RunConfig, info: dict, rows: list[dict]) -> str:
    """What a finished run did, in one line: 'erm seed 0: 300 epochs, test accuracy 0.996,
    train loss 0.012, 4.1 s', from its run.json (`info`) and metrics.csv (`rows`)."""
    error, seconds = info.get(FINAL + TEST_ERROR), info.get(SECONDS)
    loss = float(rows[-1][TRAIN_LOSS]) if rows and TRAIN_LOSS in rows[-1] else None
    parts = [f"{cfg.train.epochs} epochs"]
    if error is not None:
        parts.append(f"test accuracy {1 - error:.3f}")
    if loss is not None:
        parts.append(f"train loss {loss:.3g}")
    mixing = info.get("mixing")
    if mixing and mixing.get(MEAN_LAMBDA) is not None:  # λ's spread, not its mean, shows α
        parts.append(f"mean λ {mixing[MEAN_LAMBDA]:.2f}" + (
            f", λ std {mixing[LAMBDA_STD]:.2f}" if mixing.get(LAMBDA_STD) is not None else ""))
    if seconds is not None:
        parts.append(f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s")
    return f"{cfg.name} seed {cfg.seed}: {', '.join(parts)}"


def finished_line(cfg: RunConfig, out: str | Path) -> str:
    """`run_line` of a run another process trained (a cluster job), from its files."""
    info = json.loads((Path(out) / RUN_FILE).read_text())
    rows = (Path(out) / METRICS_FILE).read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    return run_line(cfg, info, [dict(zip(header, last))])


def fit(s: Setup, out: Path, run: RunWriter | None, dist: Dist, resumed: dict | None,
        plain: dict, *, progress: bool) -> None:
    """The training loop: epochs of mixed batches, test metrics, captures, checkpoints.
    `plain` is the config as run.json and the checkpoint record it (`to_plain(s.cfg)`)."""
    cfg = s.cfg
    model, opt, K, tc = s.model, s.optimizer, s.data.n_classes, cfg.train
    net = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[s.device.index] if s.device.type == "cuda" else None)
        s.mixer = build_mixer(cfg.mixing, model, generator(s.seeds.mixing + dist.rank))
    generators = {"shuffle": generator(s.seeds.shuffle),
                  "noise": generator(s.seeds.noise + dist.rank)}
    if hasattr(s.mixer, "generator"):
        generators["mixing"] = s.mixer.generator
    torch.manual_seed(s.seeds.dropout + dist.rank)
    features = FeatureWriter(out, held=dist.main)
    live = live_writer(out) if dist.main else None  # --tensorboard: off unless asked
    train_items = None if s.data.arrays is not None else Seeded(
        s.data.augmented or s.data.datasets["train"], s.seeds.augment)
    rows, first = [], 1
    if resumed:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        checkpoint.set_rng_states(resumed["rng"][dist.rank], generators, s.device)
        rows, first = list(resumed["metrics"]), resumed["epoch"] + 1
        if run is not None:
            run.restore(rows)

    def save_features(epoch: int) -> None:
        capture(model, s.data, cfg.capture, s.capture_layers, epoch, features, device=s.device,
                plane=s.plane, uniform_seed=getattr(cfg.data, "seed", 0),
                grids=epoch == tc.epochs, dist=dist)

    def save_checkpoint(epoch: int) -> None:
        rng = checkpoint.gather_rng(generators, s.device, dist)
        if dist.main:
            checkpoint.save(out / CHECKPOINT_FILE, {
                "epoch": epoch, "config": plain, "input_shape": list(s.data.input_shape),
                "n_classes": K, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "rng": rng, "metrics": rows, "complete": epoch == tc.epochs},
                durable=epoch == tc.epochs)

    started = time.perf_counter()
    if first == 1 and 0 in s.capture_epochs:
        save_features(0)
    bar = progress_bar(range(first, tc.epochs + 1), desc=f"{cfg.name} seed {cfg.seed}",
                       unit="epoch", show=progress and dist.main, leave=False)
    n_train = len(s.data.labels["train"])
    model.train()
    for epoch in bar:
        t0, loss_sum, count = time.perf_counter(), torch.zeros((), device=s.device), 0
        lr = learning_rate(tc, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        batches = epoch_batches(n_train, tc.batch_size, generators["shuffle"], dist)
        for xb, yb in load_batches(s.data, "train", batches, s.device, workers=tc.workers,
                                   seeded=train_items, epoch=epoch):
            if tc.input_noise > 0:
                xb = xb + tc.input_noise * torch.randn(xb.shape, generator=generators["noise"]).to(s.device)
            if tc.channels_last and s.device.type == "cuda" and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(s.device, tc.amp):
                logits, targets = s.mixer(net, xb, F.one_hot(yb, K).float())
            loss = soft_target_loss(tc.loss, logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(xb)
            count += len(xb)
        total = torch.stack([loss_sum, torch.tensor(float(count), device=s.device)])
        if dist.world > 1:
            torch.distributed.all_reduce(total)
        capturing = epoch in s.capture_epochs
        checkpointing = epoch % tc.checkpoint_every == 0 or epoch == tc.epochs
        if dist.main:
            row = {EPOCH: epoch, LR: lr, TRAIN_LOSS: (total[0] / total[1]).item(),
                   **s.mixer.take_tally(), **premise_metrics(s, epoch), **test_metrics(s, epoch),
                   SECONDS: round(time.perf_counter() - t0, 4)}
            rows.append(row)
            run.log_epoch(row, flush=capturing or checkpointing)
            if live is not None:
                live.log(row)
            bar.set_postfix(loss=f"{row[TRAIN_LOSS]:.3f}", acc=f"{row[TEST_ACCURACY]:.3f}",
                            refresh=False)
        if capturing:
            save_features(epoch)
        if checkpointing:
            save_checkpoint(epoch)
    if live is not None:
        live.close()
    if dist.main:
        premise = {} if s.premise is None else {"premise": s.premise.describe(s.data.labels["train"])}
        run.finish(time.perf_counter() - started, summary(rows) | premise)
