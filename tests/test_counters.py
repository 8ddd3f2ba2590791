"""One `repflat run` does each piece of work once where once is enough.

benchmarks/counters.py runs a tiny experiment in a process of its own (its audit hook
cannot be removed) with the work counted; these are the bounds on the repflat side:

- the experiment file is read and parsed once: the CLI hands the parsed experiment on;
- each run directory is prepared once and its config made plain once;
- while training, config.yaml, run.json and metrics.csv are written and never read back
  (what a finished run says is known in memory); features/manifest.json is held in memory
  by the one process writing it: read at most once per run (none in a new directory) and
  written once per commit, never more often than arrays are added (each commit must be on
  disk before the next array starts, so that a killed run lists exactly its complete
  arrays and resumes from them);
- the analysis opens each run once (config.yaml, run.json, metrics.csv, the manifest: the
  run record), and the report reads what the record holds;
- every saved array is hashed once by its writer and once by the analysis, however often
  it is loaded. Not once in all: a reader must check what it reads, and a digest the
  writer remembered would not show a change made within the same tick of the file's
  clock (repflat.files.SETTLED_NS); a digest the reader computed of a file settled by then
  does, so a second load of the same array is not hashed again.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_report import SPIRALS

ROOT = Path(__file__).resolve().parent.parent
RUN_JSON_READS = 1
"""run.json reads per run while analysing: the run record's (the report's Corollary 1
bound and mixing table read `run.results`; they read the file again, twice, before)."""


def count(tmp_path_factory, *options: str) -> dict:
    path = tmp_path_factory.mktemp("counters") / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPIRALS))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/counters.py"), "--experiment",
                           str(path), "--json", *options], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> dict:
    return count(tmp_path_factory)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict:
    """With the figures that read saved arrays again, once every file has settled."""
    return count(tmp_path_factory, "--figures", "figure1,planes,boundaries", "--settle")


def opened(c: dict, what: str, mode: str, phase: str | None = None) -> int:
    return sum(v for k, v in c["opens"].items() if k.startswith(f"{what}/{mode}/")
               and (phase is None or k.endswith("/" + phase)))


def test_the_experiment_is_read_and_parsed_once(counted):
    assert counted["status"] == 0 and counted["runs"] == 6
    assert opened(counted, "experiment", "read") == 1
    assert counted["calls"]["parse_experiment"] == 1


def test_each_run_is_prepared_and_made_plain_once(counted):
    n = counted["runs"]
    assert counted["calls"]["prepare_run_dir"] == n
    assert counted["calls"]["to_plain(RunConfig)"] == n


@pytest.mark.parametrize("name", ["config.yaml", "run.json", "metrics.csv"])
def test_training_never_reads_back_what_it_wrote(counted, name):
    assert opened(counted, name, "write", "training") > 0
    assert opened(counted, name, "read", "training") == 0


def test_the_manifest_is_held_in_memory_by_its_writer(counted):
    n, arrays = counted["runs"], counted["arrays"]
    assert opened(counted, "manifest.json", "read", "training") <= n
    assert opened(counted, "manifest.json", "write", "training") // 2 <= arrays


def test_the_analysis_opens_each_run_once(counted):
    n = counted["runs"]
    assert opened(counted, "config.yaml", "read", "analysis") == n
    assert opened(counted, "metrics.csv", "read", "analysis") == n
    assert opened(counted, "run.json", "read", "analysis") <= RUN_JSON_READS * n
    # the manifest: read by the run record, which keeps its digest for analysis.json
    assert opened(counted, "manifest.json", "read", "analysis") <= n


@pytest.mark.parametrize("run", ["counted", "drawn"])
def test_every_array_is_hashed_once_by_its_writer_and_once_by_its_reader(run, request):
    c = request.getfixturevalue(run)
    assert c["most_hashes_of_one_array_while"] == {"training": 1, "analysis": 1}
    assert c["most_hashes_of_one_array"] == 2


def test_an_array_is_hashed_once_per_reader_and_again_when_its_file_changes(tmp_path, monkeypatch):
    """Features remembers a file that matched its checksum (size, mtime, inode, device):
    reading it again costs no hash; a file rewritten in place is hashed again, and a
    tampered one refused."""
    import os

    import numpy as np
    import pytest

    from repflat.errors import UserError
    from repflat.rundir import arrays
    from repflat.rundir.features import FeatureWriter, Features

    w = FeatureWriter(tmp_path / "run")
    w.add_labels("train", np.repeat([0, 1], 10))
    w.add("train", 1, "fc", np.arange(40, dtype=np.float32).reshape(20, 2))
    hashed = []
    real = arrays.load_npy
    monkeypatch.setattr("repflat.rundir.features.reader.load_npy",
                        lambda path, digest, *a, **k: (hashed.append(digest is not None), real(path, digest, *a, **k))[1])
    fs = Features(tmp_path / "run")
    entry = fs.get("train", 1, "fc")
    fs.load(entry), fs.load(entry), fs.load(entry, mmap=True)
    assert hashed == [True, False, False]
    path = fs.root / entry.path
    data = np.load(path)
    data[0, 0] = 99.0
    np.save(path, data)  # same size, new content and mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(UserError, match="sha256|checksum|changed"):
        fs.load(entry)
