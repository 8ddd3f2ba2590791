"""Per-epoch metrics to TensorBoard while a run trains (off by default).

`repflat train/run --tensorboard DIR` sets REPFLAT_TENSORBOARD for its process and the
ones it starts (`--jobs`), so every run writes its metrics.csv row, each epoch, as
scalars into DIR/<run directory name>: `tensorboard --logdir DIR` shows them live.
metrics.csv stays the record; this is a view of it. Needs the `tensorboard` package
(`pip install 'repflat[tensorboard]'`), checked when the flag is given.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from repflat.errors import UserError
from repflat.rundir.names import EPOCH

ENV = "REPFLAT_TENSORBOARD"
"""The directory runs write their TensorBoard events under (unset: none are written)."""
MISSING = "--tensorboard needs the tensorboard package: pip install 'repflat[tensorboard]'"


def check_available() -> None:
    """Refuse --tensorboard, before anything trains, where TensorBoard cannot be written."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise UserError(MISSING, argument="--tensorboard") from None


class Live:
    """A run's TensorBoard writer: `log(row)` adds every number of a metrics.csv row at
    its epoch; `close()` flushes."""

    def __init__(self, root: Path, run: str):
        from torch.utils.tensorboard import SummaryWriter

        self.path = root / run
        self.writer = SummaryWriter(log_dir=str(self.path))

    def __repr__(self) -> str:
        return f"Live({self.path})"

    def log(self, row: dict) -> None:
        epoch = int(row[EPOCH])
        for key, value in row.items():
            if key != EPOCH and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def live_writer(out: Path) -> Live | None:
    """The writer for run directory `out` when REPFLAT_TENSORBOARD is set, else None."""
    root = os.environ.get(ENV)
    if not root:
        return None
    check_available()
    return Live(Path(root), Path(out).name)
