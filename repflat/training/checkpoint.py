"""Resumable training state: what an interrupted run needs to continue exactly.

`checkpoint.pt` holds the model, the optimiser, the epoch, the metrics so far, and the
state of every random generator of every rank (batch order, mixing, noise, the global
generator dropout and augmentation draw from). The learning rate is a function of the
epoch, so there is no scheduler state to lose. Everything in it is tensors and plain
containers, loaded back with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import torch
import torch.distributed

from repflat.training.claim import normalized
from repflat.base.distributed import Dist
from repflat.errors import UserError
from repflat.files import open_regular, write_bytes

FORMAT = 1


def rng_states(generators: dict[str, torch.Generator], device: torch.device) -> dict:
    states = {name: g.get_state() for name, g in generators.items()}
    states["torch"] = torch.get_rng_state()
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, generators: dict[str, torch.Generator], device: torch.device) -> None:
    for name, g in generators.items():
        g.set_state(states[name])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def gather_rng(generators: dict[str, torch.Generator], device: torch.device, dist: Dist) -> list[dict] | None:
    """Every rank's generator states, on rank 0 (None elsewhere)."""
    mine = rng_states(generators, device)
    if dist.world == 1:
        return [mine]
    everyone = [None] * dist.world
    torch.distributed.all_gather_object(everyone, {k: v.cpu() for k, v in mine.items()})
    return everyone if dist.main else None


def save(path: str | Path, state: dict, *, durable: bool) -> None:
    """Write the checkpoint atomically. It is serialised in memory first: torch.save
    writing to a file turns a full disk into an opaque RuntimeError, a plain write
    into the OSError (ENOSPC, EFBIG) the CLI explains."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    write_bytes(path, buffer.getbuffer(), durable=durable)


def hollow_tensor(obj: object, prefix: str = "") -> str | None:
    """The name of the first tensor in `obj` (nested dicts, lists) whose shape promises more
    values than its storage holds (a stride-0 or overlapping view), or None.

    torch.save keeps a view's strides, so a few bytes can load as a tensor of shape
    (10^7, 512); its shape then sizes a model's layer, allocated in full. A state dict
    written from a model holds dense tensors only."""
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided:
            return prefix or "tensor"
        have = obj.untyped_storage().nbytes() - obj.storage_offset() * obj.element_size()
        return prefix or "tensor" if obj.numel() * obj.element_size() > have else None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = hollow_tensor(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def stored_values(obj: object) -> int:
    """The number of values the tensors of `obj` (nested dicts, lists) hold."""
    if isinstance(obj, torch.Tensor):
        return obj.numel()
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    return sum(stored_values(v) for v in items)


def load_resumable(path: str | Path, config: dict, world: int) -> dict | None:
    """The checkpoint of an unfinished run of `config` on `world` ranks, or None."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    try:
        with os.fdopen(open_regular(path, "checkpoint"), "rb") as fh:  # never through a link
            state = torch.load(fh, map_location="cpu", weights_only=True)
        hollow = hollow_tensor(state)  # a shape its storage does not back: unreadable too
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable checkpoint means starting over
        return None
    ok = (isinstance(state, dict) and state.get("format") == FORMAT and hollow is None
          and normalized(state.get("config")) == normalized(config)
          and not state.get("complete") and len(state.get("rng") or []) == world)
    return state if ok else None
