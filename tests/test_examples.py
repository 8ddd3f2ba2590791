"""Every example in examples/ runs as documented (offline, in seconds)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example, tmp_path):
    copy = tmp_path / example.name  # run a copy: what an example writes lands beside it
    copy.write_text(example.read_text())
    done = subprocess.run([sys.executable, str(copy), str(tmp_path / "out")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(Path.cwd()), "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_there_are_examples():
    assert {e.name for e in EXAMPLES} >= {"own_model.py", "own_loop.py", "other_framework.py"}
