"""The `launcher:` section of an experiment file: what each cluster job asks for.

Read only by `repflat run --launcher ...` (a plain `repflat run` trains on this machine
and ignores it); the command line's --partition, --time, --gpus, --cpus and --mem
override it key by key. One job trains one run (an arm and a seed), so these are the
resources of one run, not of the whole sweep.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from repflat.strict import FieldError

# These values are written into the job script SLURM reads (#SBATCH lines): a newline or
# a space in them would start a new line or option there.
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,:+-]+$")


@dataclass(frozen=True)
class LauncherConfig:
    partition: str | None = None
    """SLURM partition (or comma-separated partitions); null: the cluster's default."""
    account: str | None = None
    """SLURM account charged for the jobs; null: the user's default."""
    time: int = 60
    """Time limit of each job, in minutes. A job stopped at its limit is requeued and
    resumes from the run's latest checkpoint (train.checkpoint_every), up to 3 times."""
    gpus: int = 0
    """GPUs per job; at least 1 when an arm trains on `cuda`."""
    cpus: int = 1
    """CPU cores per job; training uses this many threads."""
    mem_gb: float | None = None
    """Memory per job in GB; null: the cluster's default."""
    parallel: int | None = None
    """At most this many jobs of the sweep running at once; null: as many as SLURM allows."""

    def __post_init__(self):
        for key in ("partition", "account"):
            value = getattr(self, key)
            if value is not None and not _SLURM_NAME.match(value):
                raise FieldError(key, "a SLURM name (letters, digits, _ . , : + -)", value)
        if self.time < 1:
            raise FieldError("time", "a number of minutes >= 1", self.time)
        if self.gpus < 0:
            raise FieldError("gpus", "an integer >= 0", self.gpus)
        if self.cpus < 1:
            raise FieldError("cpus", "an integer >= 1", self.cpus)
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise FieldError("mem_gb", "a number of GB > 0 or null", self.mem_gb)
        if self.parallel is not None and self.parallel < 1:
            raise FieldError("parallel", "an integer >= 1 or null", self.parallel)
