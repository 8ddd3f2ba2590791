"""`repflat run --launcher`: a sweep as submitit jobs, through submitit's local executor
(processes on this machine, no SLURM), end to end; resubmission; refusals."""
import json
import os
import shutil

import pytest
import torch
import yaml

from repflat.cli import main
from repflat.rundir.lock import exclusive
from repflat.rundir.names import LOCK_FILE
from tests.trees import digest

pytest.importorskip("submitit")

SWEEP = {
    "name": "tiny",
    "seeds": [0, 1],
    "base": {
        "data": {"n_per_class": 20},
        "model": {"widths": [8], "bottleneck": 2, "widths_after": [8]},
        "train": {"epochs": 2, "batch_size": 16},
        "capture": {"layers": ["input", "fc1", "bottleneck", "fc2"], "grid_resolution": 6,
                    "uniform_samples": 10},
    },
    "arms": {
        "erm": {"mixing": {"strategy": "none"}},
        "manifold_mixup": {"mixing": {"strategy": "manifold_mixup", "layers": ["fc1", "bottleneck"]}},
    },
    "analysis": {"spectra_layers": ["fc1", "fc2"]},
    "launcher": {"time": 10},
}
RUNS = [f"{a}-seed{s}" for a in ("erm", "manifold_mixup") for s in (0, 1)]


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def submitted(out) -> int:
    """Jobs submitted into `out` so far: submitit leaves one pickle per job."""
    return len(list((out / "slurm").glob("*_submitted.pkl")))


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    exp = write(root / "tiny.yaml", SWEEP)
    assert main(["run", str(exp), "--out", str(root / "out"), "--launcher", "local",
                 "--figures", "none", "--quiet"]) == 0
    return root


@pytest.mark.slow
def test_local_jobs_train_every_run_then_analyse_as_run_does(launched, tmp_path):
    out = launched / "out"
    assert sorted(p.name for p in (out / "runs").iterdir()) == RUNS
    for run in RUNS:
        assert json.loads((out / "runs" / run / "run.json").read_text())["status"] == "complete"
    assert submitted(out) == 4 and len(list((out / "slurm").glob("*_log.err"))) == 4
    assert (out / "analysis/report.html").is_file() and (out / "analysis/flattening.csv").is_file()
    # The jobs train exactly what `repflat run` trains in this process: the same features.
    assert main(["run", str(launched / "tiny.yaml"), "--out", str(tmp_path / "here"),
                 "--no-analysis", "--quiet"]) == 0
    for run in RUNS:
        a, b = (json.loads((d / "runs" / run / "features/manifest.json").read_text())
                for d in (out, tmp_path / "here"))
        assert a["entries"] == b["entries"] and a["labels_sha256"] == b["labels_sha256"]


@pytest.mark.slow
def test_rerun_resubmits_only_the_runs_not_complete(launched, capsys):
    out = launched / "out"
    kept = {r: digest(out / "runs" / r, skip=(LOCK_FILE,)) for r in RUNS[:3]}
    shutil.rmtree(out / "runs" / RUNS[3])
    before = submitted(out)
    capsys.readouterr()
    assert main(["run", str(launched / "tiny.yaml"), "--out", str(out), "--launcher", "local",
                 "--figures", "none"]) == 0
    said = capsys.readouterr().out
    assert "3 complete already, 1 to train as local jobs" in said and "submitted 1 job " in said
    assert submitted(out) == before + 1
    assert {r: digest(out / "runs" / r, skip=(LOCK_FILE,)) for r in RUNS[:3]} == kept
    assert json.loads((out / "runs" / RUNS[3] / "run.json").read_text())["status"] == "complete"
    # Nothing left to do: no job, straight to the analysis.
    assert main(["run", str(launched / "tiny.yaml"), "--out", str(out), "--launcher", "local",
                 "--figures", "none"]) == 0
    said = capsys.readouterr().out
    assert "4 complete already, 0 to train" in said and "submitted" not in said
    assert "wrote" in said and submitted(out) == before + 1


def test_a_run_held_by_another_process_is_not_submitted_again(launched, capsys):
    out = launched / "out"
    info = out / "runs" / RUNS[0] / "run.json"
    text = info.read_text()
    before = digest(out, skip=(LOCK_FILE,))
    info.write_text(text.replace('"complete"', '"running"'))  # as a job still training it
    try:
        with exclusive(out / "runs" / RUNS[0]):
            assert main(["run", str(launched / "tiny.yaml"), "--out", str(out), "--launcher",
                         "local", "--quiet"]) == 2
    finally:
        info.write_text(text)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is being trained by another repflat process" in err[0]
    assert digest(out, skip=(LOCK_FILE,)) == before  # nothing submitted, nothing written


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the failure is a missing GPU")
def test_a_failed_job_is_one_line_with_its_log_and_status_2(tmp_path, capsys):
    exp = dict(SWEEP, seeds=[0], arms={"erm": {}, "on_gpu": {"train": {"device": "cuda"}}})
    out = tmp_path / "out"
    # Checked on this CPU, the arm is fine; its job then finds no GPU where it runs.
    assert main(["run", str(write(tmp_path / "gpu.yaml", exp)), "--out", str(out),
                 "--launcher", "local", "--gpus", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"repflat: error: {out / 'runs/on_gpu-seed0'}: failed: device: "
                             "expected a machine with CUDA")
    log = err[0].rsplit("; log: ", 1)[1]
    assert log.endswith("_log.err") and "expected a machine with CUDA" in open(log).read()
    assert json.loads((out / "runs/erm-seed0/run.json").read_text())["status"] == "complete"
    assert not (out / "analysis").exists()


BAD = [
    (["--time", "0"], "--time: expected a number of minutes >= 1, got 0"),
    (["--cpus", "0"], "--cpus: expected an integer >= 1, got 0"),
    (["--gpus", "-1"], "--gpus: expected an integer >= 0, got -1"),
    (["--mem", "0"], "--mem: expected a number of GB > 0 or null, got 0.0"),
    (["--partition", "gpu\n#SBATCH --x"], "--partition: expected a SLURM name"),
    (["--jobs", "2"], "--jobs: expected 1 with --launcher"),
]


@pytest.mark.parametrize("flags, message", BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_launcher_options_are_one_line_and_write_nothing(tmp_path, capsys, flags, message):
    exp = write(tmp_path / "tiny.yaml", SWEEP)
    args = ["run", str(exp), "--out", str(tmp_path / "out"), "--launcher", "local", *flags]
    assert main(args) == 2
    _one_line(capsys, message)
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal, one line too
        main([*args[:-len(flags)], "--time", "x"])
    assert exit_.value.code == 2
    _one_line(capsys, "argument --time: invalid int value: 'x'")
    assert not (tmp_path / "out").exists()


def _one_line(capsys, message):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("case", ["flags without --launcher", "a key in the file", "cuda without gpus",
                                  "no slurm"])
def test_bad_launcher_settings_are_one_line_and_write_nothing(tmp_path, capsys, case):
    out = tmp_path / "out"
    args, exp, message = ["--launcher", "local"], SWEEP, None
    if case == "flags without --launcher":
        args, message = ["--partition", "gpu", "--no-wait"], "--partition, --no-wait: expected only with --launcher"
    elif case == "a key in the file":
        exp, message = dict(SWEEP, launcher={"gpu": 1}), "e.yaml:36:3: launcher: unknown key 'gpu' (did you mean 'gpus'"
    elif case == "cuda without gpus":
        exp = dict(SWEEP, arms={"erm": {"train": {"device": "cuda"}}})
        message = "--gpus: expected at least 1 for arms training on cuda (erm), got 0"
    else:
        if shutil.which("srun"):
            pytest.skip("this machine has SLURM")
        args, message = ["--launcher", "submitit"], "--launcher: expected a machine with SLURM"
    assert main(["run", str(write(tmp_path / "e.yaml", exp)), "--out", str(out), *args]) == 2
    _one_line(capsys, message)
    assert not out.exists()


@pytest.mark.slow
def test_a_job_stopped_at_its_time_limit_is_requeued_and_resumes_its_run(tmp_path):
    """SLURM signals a job shortly before its limit; submitit's local executor does too
    (sent here at once, to the job's process, rather than after a minute)."""
    import signal
    import time

    from repflat.config import parse_experiment
    from repflat.training.launch import launch_experiment

    long = {"train": {"epochs": 400, "checkpoint_every": 5}, "evaluation": {"fgsm_epsilon": None}}
    exp = parse_experiment(dict(SWEEP, seeds=[0], arms={"erm": long}))
    run = tmp_path / "out/runs/erm-seed0"
    (job,) = launch_experiment(exp, tmp_path / "out", cluster="local", wait=False, progress=False)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    controller = job._process.pid
    children = f"/proc/{controller}/task/{controller}/children"
    if not os.path.exists(children):
        job.result()
        pytest.skip("no /proc children list to find the job's process by")
    (task,) = open(children).read().split()
    os.kill(int(task), signal.SIGUSR2)
    assert job.result() == "resume"  # the requeued call continued from the checkpoint
    assert "timed-out" in open(job.paths.stderr).read()
    epochs = [int(line.split(",", 1)[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == list(range(1, 401))
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_readmes_torchrun_rendezvous_trains_a_run_with_ddp(tmp_path):
    """docs/commands.md's multi-node command, on one node: two gloo processes meeting through c10d."""
    import subprocess
    import sys

    from repflat.rundir.run import read_run

    exp = write(tmp_path / "tiny.yaml", SWEEP)
    port = 29600 + os.getpid() % 1000
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{port}", "-m", "repflat", "train",
         str(exp), "--arm", "manifold_mixup", "--seed", "0", "--out", str(tmp_path / "run"),
         "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = read_run(tmp_path / "run")
    assert run.status == "complete"
    assert len(run.features.labels("train")) == 20  # every training row, written by the two ranks


def test_submitit_sends_one_slurm_array_asking_for_the_options(tmp_path, monkeypatch, capsys):
    """Without a cluster: stand-ins for srun and sbatch (which keeps the script it is
    given and answers as SLURM does) show what a real submission would send."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_ / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/script.sh\n'
                                 'echo "Submitted batch job 4242"\n')
    for tool in ("srun", "sbatch"):
        (bin_ / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    exp = write(tmp_path / "tiny.yaml", dict(SWEEP, launcher={"account": "lab", "parallel": 2}))
    out = tmp_path / "out"
    assert main(["run", str(exp), "--out", str(out), "--launcher", "submitit", "--partition",
                 "gpu", "--cpus", "4", "--mem", "8", "--time", "30", "--no-wait"]) == 0
    said = capsys.readouterr().out
    assert "4 to train as SLURM jobs" in said and f"submitted 4 jobs (4242); logs in {out / 'slurm'}" in said
    script = (tmp_path / "script.sh").read_text().splitlines()
    for line in ("--array=0-3%2", "--partition=gpu", "--account=lab", "--time=30",
                 "--cpus-per-task=4", "--mem=8GB", "--job-name=repflat-tiny",
                 f"--error={out}/slurm/%A_%a_0_log.err"):
        assert f"#SBATCH {line}" in script, line
    assert not any("gpus" in line for line in script)  # 0 GPUs: no line (some clusters refuse 0)
    assert (out / "experiment.yaml").is_file() and not (out / "analysis").exists()
    # submitit leaves a link beside the script, which the next run would refuse: gone.
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    link = out / "slurm" / (".submission_file_" + "0" * 32 + ".sh")  # as a killed submission leaves it
    link.symlink_to(out / "slurm/4242_submission.sh")
    assert main(["run", str(exp), "--out", str(out), "--launcher", "submitit", "--no-wait",
                 "--quiet"]) == 0
    assert not link.is_symlink() and (tmp_path / "script.sh").is_file()
    # sbatch's own refusal is one line too.
    (bin_ / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: "
                                 "nope' >&2\nexit 1\n")
    capsys.readouterr()
    assert main(["run", str(exp), "--out", str(out), "--launcher", "submitit", "--partition",
                 "nope", "--quiet"]) == 2
    _one_line(capsys, "--launcher: the cluster refused the jobs: sbatch: error: invalid "
                      "partition specified: nope; nothing was submitted")


def test_a_failure_is_said_in_one_line_whatever_submitit_relays():
    from submitit.core.utils import FailedJobError, UncompletedJobError

    from repflat.training.launch import failure_reason

    failed = FailedJobError("Job (task=0) failed during processing with trace:\n" + "-" * 22 +
                            "\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
                            "    raise RuntimeError('boom')\ntorch.OutOfMemoryError: CUDA out of "
                            "memory. Tried to allocate 2.00 GiB\n" + "-" * 22 + "\nYou can check "
                            "full logs with 'job.stderr(0)'")
    assert failure_reason(failed) == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    killed = UncompletedJobError("Job 4242_1 (task: 0) with path /x/4242_1_0_result.pkl\nhas not "
                                 "produced any output (state: TIMEOUT)\nError stream produced:\n"
                                 + "-" * 40 + "\nValueError: something the log said earlier")
    assert failure_reason(killed) == "the job ended without a result (state TIMEOUT)"
    assert failure_reason(FailedJobError("nothing recognisable")) == "FailedJobError"
