"""One writer per directory: a second is refused; a dead holder's lock is taken over."""
import os
import signal
import subprocess
import sys

from repflat.cli import main
from repflat.config import dump_yaml
from repflat.rundir.names import LOCK_FILE


def hold_lock(directory):
    """Another process that takes DIR's lock and keeps it until killed."""
    code = ("import sys, time; from repflat.rundir.lock import exclusive\n"
            "with exclusive(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE,
                            text=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_directory_in_use_is_refused_and_a_dead_holders_lock_recovered(tmp_path, tiny, capsys):
    (tmp_path / "c.yaml").write_text(dump_yaml(tiny()))
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        assert main(["train", str(tmp_path / "c.yaml"), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by another repflat process (pid {holder.pid})" in err
        assert err.count("\n") == 1
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # nothing was written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the dead holder's lock: the next writer just takes it
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(out), "--quiet"]) == 0
    assert (out / "run.json").is_file()


def test_extract_and_run_take_the_lock_too(tmp_path, trained_runs, capsys):
    holder = hold_lock(tmp_path / "x")
    try:
        assert main(["extract", "--run-dir", str(trained_runs["none", 0]), "--layers", "fc1",
                     "--out", str(tmp_path / "x"), "--quiet"]) == 2
        assert "is in use by another repflat process" in capsys.readouterr().err
        (tmp_path / "e.yaml").write_text(
            "name: e\nseeds: [0]\nbase: {train: {epochs: 1}, data: {n_per_class: 20}}\narms: {a: {}}\n")
        assert main(["run", str(tmp_path / "e.yaml"), "--out", str(tmp_path / "x"), "--quiet"]) == 2
        assert "is in use by another repflat process" in capsys.readouterr().err
        assert [p.name for p in (tmp_path / "x").iterdir()] == [LOCK_FILE]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
