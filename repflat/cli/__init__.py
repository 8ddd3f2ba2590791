"""The `repflat` command.

    repflat train CONFIG --out RUN          train one run (a run config, or one arm of an experiment)
    repflat analyze RUN... --out DIR        spectra, flattening tables, figures, report
    repflat run EXPERIMENT --out DIR        every arm × seed, then the analysis into DIR/analysis
    repflat extract --model M --layers L --out DIR   features of any model, streamed to disk
    repflat report PATH... [--out DIR]      one HTML (and Markdown) report per experiment

A user's mistake is one line on stderr and exit status 2; nothing on disk is changed by
a command that refuses. The CLI is the composition root: it is the one place that
calls both the torch side (train) and the analysis side, each imported only by the
subcommand that needs it (repflat.cli.commands); its flags, defaults and examples are
in repflat.cli.parser; the library's parameter names become flags here (FLAGS).
"""
from __future__ import annotations

import errno
import signal
import sys
import threading
import warnings

from repflat.cli import commands
from repflat.cli.parser import build_parser
from repflat.errors import RepflatWarning, UserError


FLAGS = {  # library parameter -> the command's flag or argument, per command
    "train": {"out": "--out", "arm": "--arm", "seed": "--seed"},
    "analyze": {"paths": "RUN", "out": "--out", "split": "--split", "layers": "--layers",
                "epochs": "--epochs", "center": "--uncentered", "scale": "--scaled",
                "rtol": "--rtol", "figures": "--figures", "nc1_mean": "--nc1-mean"},
    "extract": {"out": "--out", "run_dir": "--run-dir", "model": "--model", "weights": "--weights",
                "num_classes": "--num-classes", "layers": "--layers", "splits": "--split",
                "batch_size": "--batch-size", "reduce": "--reduce", "dtype": "--dtype",
                "device": "--device", "workers": "--workers", "seed": "--seed",
                "resume": "--resume", "restart": "--restart", "discriminative": "--discriminative",
                "arm": "--arm", "strategy": "--strategy"},
    "run": {"out": "--out", "jobs": "--jobs", "paths": "DIR", "figures": "--figures",
            "launcher": "--launcher", "partition": "--partition", "time": "--time",
            "gpus": "--gpus", "cpus": "--cpus", "mem_gb": "--mem", "wait": "--no-wait"},
    "report": {"paths": "PATH", "out": "--out", "embeddings": "--embeddings",
               "embedding_layer": "--embedding-layer", "max_samples": "--max-samples",
               "metric": "--metric", "figures": "--figures"},
}
def as_flags(err: UserError, command: str) -> list[str]:
    """A library error, which names parameters (`batch_size: expected ...`), as the command
    line says it (`--batch-size: expected ...`), one line per line of it; config keys and
    the rest pass as they are."""
    lines = [" ".join(line.split()) for line in getattr(err, "lines", None) or [str(err)]]
    names, params = FLAGS.get(command, {}), err.parameters
    if err.where is None and params and all(p in names for p in params):
        said = ", ".join(params)
        lines[0] = ", ".join(names[p] for p in params) + lines[0][len(said):]
    return lines


def environment_error(err: OSError) -> str:
    """One line for an operating-system refusal, saying what could not be done."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {reason} (choose a writable --out)"
    if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return f"no space to write{where}: {reason}; free some space and rerun (finished runs are kept)"
    return f"{reason}:{where}" if where else reason


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value after an option (`run FILE --check train.epochs=5`): argparse takes
    # positionals in one run, so later ones come back unrecognised
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:  # bare `repflat`: what it can do
        parser.print_help()
        return 0
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always", RepflatWarning)
        code = _dispatch(args)
    for w in heard:
        if issubclass(w.category, RepflatWarning):
            print("repflat: warning: " + " ".join(str(w.message).split()), file=sys.stderr)
        else:  # other libraries' warnings pass through as they would have
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return code


COMMANDS = {"train": commands.train, "extract": commands.extract, "report": commands.report,
            "run": commands.run,
            "analyze": lambda a: commands.analyze(a.runs, a.out, commands.analysis_overrides(a),
                                                  a.quiet, figures=a.figures)}


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler stopping the job) met as Ctrl-C is: `finally` blocks
    run (locks released, temporaries removed) and `run --jobs N` stops its workers, which
    the default action, ending this process alone, left training."""


def _terminate(signum, frame):
    raise Terminated


def _dispatch(args) -> int:
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        COMMANDS[args.command](args)
    except UserError as err:
        for line in as_flags(err, args.command):  # several: one per failed run
            print("repflat: error: " + line, file=sys.stderr)
        return 2
    except OSError as err:  # the environment refused: a full disk, a read-only directory
        print("repflat: error: " + environment_error(err), file=sys.stderr)
        return 2
    except Terminated:
        print("repflat: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("repflat: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
