"""Fuzzing the run-directory readers: random and mutated manifests and arrays.

The only acceptable outcomes are the correct data or `UserError` (the documented
error, which the CLI prints as one line). Anything else (a KeyError, a MemoryError
from a header claiming a huge shape, an unpickled object) fails the test.
The budget is stated in docs/reliability.md: FUZZ_EXAMPLES per property.
"""
import io
import json
import shutil
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repflat.errors import UserError
from repflat.rundir.features import FeatureWriter, Features
from repflat.files import sha256_file

FUZZ_EXAMPLES = 300
fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

X = np.arange(12, dtype=np.float32).reshape(4, 3)
Y = np.array([0, 1, 0, 1])


def make_run(root):
    w = FeatureWriter(root)
    w.add_labels("train", Y)
    w.add("train", 1, "fc1", X)
    return json.loads((root / "features/manifest.json").read_text())


def read_everything(root):
    """What analysis does with a run: open the manifest, load every array and label set."""
    fs = Features(root)
    out = [fs.load(e) for e in fs.entries]
    out += [fs.labels(s) for s in fs.label_paths]
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
    | st.text(string.printable, max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
KEYS = ["format", "entries", "labels", "labels_sha256", "splits"]
ENTRY_KEYS = ["split", "epoch", "layer", "path", "shape", "dtype", "sha256"]


@fuzz
@given(data=st.data())
def test_mutated_manifests_give_the_data_or_a_user_error(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("run")
    manifest = make_run(root)
    where = data.draw(st.sampled_from(["top", "entry", "labels", "raw"]))
    if where == "top":
        manifest[data.draw(st.sampled_from(KEYS + ["extra"]))] = data.draw(json_values)
    elif where == "entry":
        manifest["entries"][0][data.draw(st.sampled_from(ENTRY_KEYS))] = data.draw(
            json_values | st.sampled_from(["../../x.npy", "/etc/passwd", "a\x00b", "features",
                                           "features/train/labels.npy", "x" * 5000]))
    elif where == "labels":
        manifest["labels"]["train"] = data.draw(json_values | st.just("../outside.npy"))
    text = json.dumps(manifest)
    if where == "raw":  # byte-level damage to the JSON text itself
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.text(max_size=5)) + text[cut + data.draw(st.integers(0, 3)):]
    (root / "features/manifest.json").write_text(text)
    try:
        arrays = read_everything(root)
    except UserError:
        return
    # whatever was accepted must be exactly what was written
    for a in arrays:
        assert np.array_equal(a, X) or np.array_equal(a, Y)


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


@fuzz
@given(data=st.data())
def test_mutated_arrays_give_the_data_or_a_user_error(tmp_path_factory, data):
    """Damaged .npy files, with the manifest's checksum updated to match them, so the
    reader's own checks (header, size, dtype, shape) are what is exercised."""
    root = tmp_path_factory.mktemp("run")
    manifest = make_run(root)
    path = root / "features/train/epoch0001/fc1.npy"
    raw = bytearray(path.read_bytes())
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "replace", "object", "shape"]))
    if kind == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "replace":
        raw = bytearray(data.draw(st.binary(max_size=256)))
    elif kind == "object":  # an object array: loading it would need pickle
        raw = bytearray(npy_bytes(np.array([{"a": 1}, None], dtype=object)))
    else:  # a well-formed header claiming an enormous shape
        n = data.draw(st.integers(5, 2**62))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (n, 3)})
        raw = bytearray(header.getvalue()) + raw[128:]
    path.write_bytes(bytes(raw))
    manifest["entries"][0]["sha256"] = sha256_file(path)
    (root / "features/manifest.json").write_text(json.dumps(manifest))
    try:
        arrays = read_everything(root)
    except UserError:
        return
    # accepted: it must be the manifest's shape and dtype, holding the bytes on disk
    # (a flipped data bit under an updated checksum is data the reader cannot doubt)
    assert arrays[0].shape == X.shape and arrays[0].dtype == X.dtype
    assert arrays[0].tobytes() == bytes(raw[-X.nbytes:])


@pytest.mark.parametrize("junk", [b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 100,
                                  npy_bytes(np.array([object()], dtype=object))])
def test_specific_bad_arrays(tmp_path, junk):
    manifest = make_run(tmp_path)
    path = tmp_path / "features/train/labels.npy"
    path.write_bytes(junk)
    manifest["labels_sha256"]["train"] = sha256_file(path)
    (tmp_path / "features/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError):
        read_everything(tmp_path)
    shutil.rmtree(tmp_path / "features")
