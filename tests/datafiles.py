"""Tiny data sets written in the on-disk formats torchvision reads, for tests only.

MNIST: idx files under MNIST/raw. CIFAR-10/100: the pickled batches of the "python
version" (the format is pickle; torchvision reads it, repflat never does). SVHN: .mat
files. ImageFolder: PNGs in one folder per class. CIFAR and SVHN loaders also check
the md5 of the real downloads, which tiny files cannot match: `skip_md5` bypasses that
one check and nothing else.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_mnist(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 0) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = _rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return root


def _cifar_batch(path: Path, n: int, key: str, n_classes: int, rng) -> None:
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    with open(path, "wb") as fh:
        pickle.dump({"data": data, key: [int(i % n_classes) for i in range(n)]}, fh)


def make_cifar10(root: Path, n_per_batch: int = 6, n_test: int = 12, seed: int = 0) -> Path:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = _rng(seed)
    for i in range(1, 6):
        _cifar_batch(base / f"data_batch_{i}", n_per_batch, "labels", 10, rng)
    _cifar_batch(base / "test_batch", n_test, "labels", 10, rng)
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    return root


def make_cifar100(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    rng = _rng(seed)
    _cifar_batch(base / "train", n_train, "fine_labels", 100, rng)
    _cifar_batch(base / "test", n_test, "fine_labels", 100, rng)
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, fh)
    return root


def make_svhn(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        digit = np.arange(n) % 10
        y = np.where(digit == 0, 10, digit).reshape(n, 1)  # SVHN stores digit 0 as label 10
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return root


def make_imagefolder(root: Path, classes=("cat", "dog", "emu"), per_class: int = 4,
                     size: int = 16, seed: int = 0) -> Path:
    from PIL import Image

    rng = _rng(seed)
    for split in ("train", "val"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def skip_md5(monkeypatch) -> None:
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.svhn as svhn

    for module in (cifar, svhn):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)
