import json

import numpy as np
import pytest

from repflat.errors import UserError
from repflat.rundir.features import FeatureWriter, Features


def write_some(root):
    w = FeatureWriter(root)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    w.add_labels("train", np.arange(10) % 2)
    w.add("train", 5, "fc1", x)
    return x


def test_round_trip(tmp_path):
    x = write_some(tmp_path)
    fs = Features(tmp_path)
    e = fs.get("train", 5, "fc1")
    assert (e.shape, e.dtype) == ((10, 3), "float32")
    np.testing.assert_array_equal(fs.load(e), x)
    np.testing.assert_array_equal(fs.labels("train"), np.arange(10) % 2)
    assert fs.labels("train").dtype == np.int64
    data = json.loads((tmp_path / "features/manifest.json").read_text())
    assert set(data["entries"][0]) >= {"split", "epoch", "layer", "path", "shape", "dtype", "sha256"}
    assert data["labels"] == {"train": "features/train/labels.npy"}


def test_checksum_mismatch_is_detected(tmp_path):
    write_some(tmp_path)
    path = tmp_path / "features/train/epoch0005/fc1.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit of data, header intact: np.load alone would not notice
    path.write_bytes(bytes(raw))
    fs = Features(tmp_path)
    with pytest.raises(UserError, match="checksum mismatch"):
        fs.load(fs.get("train", 5, "fc1"))
    assert fs.load(fs.get("train", 5, "fc1"), verify=False).shape == (10, 3)


def test_an_array_is_hashed_once_per_reader_and_again_once_changed(tmp_path, monkeypatch):
    """A file hashed when settled (unchanged for a while: repflat.files.SETTLED_NS, here
    every file) is not hashed again while its times and size stay; a changed one is."""
    import os

    from repflat import files

    write_some(tmp_path)  # the writer's digests: of files just written, never remembered
    monkeypatch.setattr(files, "SETTLED_NS", -1)
    hashed = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p, *a: hashed.append(p) or real(p, *a))
    fs = Features(tmp_path)
    entry = fs.get("train", 5, "fc1")
    first, again = fs.load(entry), Features(tmp_path).load(entry)
    np.testing.assert_array_equal(first, again)
    assert len(hashed) == 1
    path = tmp_path / entry.path
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    st = os.stat(path)
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a tick later, whatever the clock
    with pytest.raises(UserError, match="checksum mismatch"):
        fs.load(entry)
    assert len(hashed) == 2


def test_no_temporary_files_remain_and_manifest_lists_only_complete_arrays(tmp_path):
    write_some(tmp_path)
    assert not list(tmp_path.rglob("*.repflat-tmp"))
    for e in Features(tmp_path).entries:
        assert (tmp_path / e.path).is_file()


def test_a_failed_write_leaves_the_manifest_untouched(tmp_path):
    write_some(tmp_path)
    before = (tmp_path / "features/manifest.json").read_text()
    w = FeatureWriter(tmp_path)
    with pytest.raises(ValueError):  # object arrays are refused before anything is listed
        w.add("train", 6, "fc1", np.array([object()], dtype=object))
    assert (tmp_path / "features/manifest.json").read_text() == before
    assert not list(tmp_path.rglob("*.repflat-tmp"))


@pytest.mark.parametrize("manifest, message", [
    ("not json", "is not valid JSON"),
    ('{"format": 99, "entries": []}', "format: expected 1 or 2, got 99"),
    ('{"format": 1}', "entries: expected a list"),
    ('{"format": 1, "entries": [{"split": "train"}]}', "entries[0].epoch: expected int"),
    ('{"format": 1, "entries": [{"split": "t", "epoch": 1, "layer": "l", "path": "../../etc/passwd",'
     ' "shape": [1], "dtype": "float32", "sha256": "0"}]}', "a path inside the run directory"),
])
def test_bad_manifests_are_refused(tmp_path, manifest, message):
    (tmp_path / "features").mkdir()
    (tmp_path / "features/manifest.json").write_text(manifest)
    with pytest.raises(UserError) as err:
        Features(tmp_path)
    assert message in str(err.value)


def test_missing_run_directory(tmp_path):
    with pytest.raises(UserError, match="a run directory with features/manifest.json"):
        Features(tmp_path / "nope")
