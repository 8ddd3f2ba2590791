"""Moving code changes no number: a small experiment's features and tables, bit for bit.

tests/data/regression.json was written by `python -m tests.regression` on the code
before the restructure of issue 11; this test reruns the same experiment and compares.
Features are compared by sha256 (bit-identical on the CPU for the same seed and thread
count; these layers are too small for BLAS to split by thread); summary values to 1e-12
relative, the round-off of a different order of float64 summation.
"""
import json

import pytest

from tests.regression import RECORD, outputs, run_reference


@pytest.mark.slow
def test_same_seeds_give_the_recorded_features_and_tables(tmp_path):
    recorded = json.loads(RECORD.read_text())
    torch = pytest.importorskip("torch")
    if recorded.get("torch") != torch.__version__:
        pytest.skip(f"the record is of torch {recorded.get('torch')}, this is {torch.__version__}: "
                    "float bits differ between builds; re-record with python -m tests.regression")
    now = outputs(run_reference(tmp_path))
    assert now["arrays"] == recorded["arrays"]
    assert now["summary"].keys() == recorded["summary"].keys()
    for key, (mean, std) in recorded["summary"].items():
        assert now["summary"][key] == pytest.approx([mean, std], rel=1e-12, abs=1e-300), key
