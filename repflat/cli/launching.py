"""`repflat run --launcher`: its flags, and the launcher settings they make.

Torch-free like the parser: a wrong option answers before anything is imported or
planned. The flags override the experiment file's `launcher:` section key by key
(repflat.config.launcher); the jobs themselves are repflat.training.launch's.
"""
from __future__ import annotations

from repflat.errors import UserError, expected

FLAGS = {"partition": "partition", "time": "time", "gpus": "gpus", "cpus": "cpus",
         "mem": "mem_gb"}  # argparse dest -> LauncherConfig field


def add_launcher_flags(run) -> None:
    c = run.add_argument_group("cluster jobs", "One job per unfinished run, through submitit; "
                               "each option overrides the experiment file's `launcher:` section.")
    c.add_argument("--launcher", choices=("submitit", "local"),
                   help="submitit: a SLURM job array; local: submitit's processes on this machine")
    c.add_argument("--partition", help="SLURM partition")
    c.add_argument("--time", type=int, metavar="MIN", help="time limit of each job in minutes, "
                   "default: the file's launcher.time, else 60; a job stopped at it is requeued "
                   "and resumes")
    c.add_argument("--gpus", type=int, help="GPUs per job (default: 0)")
    c.add_argument("--cpus", type=int, help="CPU cores per job, its training threads (default: 1)")
    c.add_argument("--mem", type=float, metavar="GB", help="memory per job in GB")
    c.add_argument("--no-wait", action="store_true", help="submit and return; rerun the "
                   "command once the jobs end to resubmit failures and analyse")


def launcher_config(args, exp):
    """The experiment's `launcher:` section with the command line's options over it; None
    without --launcher (then no launcher option may be given)."""
    from repflat.config import LauncherConfig
    from repflat.strict import parse, to_plain

    given = {field: getattr(args, dest) for dest, field in FLAGS.items()
             if getattr(args, dest) is not None}
    if args.launcher is None:
        stray = list(given) + (["wait"] if args.no_wait else [])
        if stray:
            raise UserError("expected only with --launcher", argument=', '.join(stray))
        return None
    if args.jobs != 1:
        raise expected("jobs", "1 with --launcher (each run is a job of its own)", args.jobs)
    # Errors name the bare field (`time: ...`), which the CLI says as its flag (`--time`).
    return parse(LauncherConfig, to_plain(exp.launcher) | given)
