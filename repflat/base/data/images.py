"""Image data sets through torchvision, from a directory in torchvision's own layout.

MNIST, CIFAR-10/100 and SVHN download into `root` only when `download` is set;
ImageFolder (Tiny-ImageNet, your own data) reads `root/train_dir` and `root/test_dir`,
one subfolder per class (only the folders of the splits asked for need to exist).
Inputs are normalised with the data set's channel mean and standard deviation
(ImageNet's for ImageFolder).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torchvision import datasets as tvd
from torchvision import transforms as T

from repflat.config import ImageData
from repflat.errors import UserError, expected
from repflat.rundir.names import SPLITS, TEST, TRAIN

STATS = {  # channel mean and std of each training set
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
CLASSES = {"mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}
FLIPS = {"cifar10", "cifar100", "imagefolder"}  # digits are not mirror-symmetric


def _transform(cfg: ImageData, side: int | None):
    """Tensor conversion and normalisation; with `side` (the image size), augmentation."""
    steps = []
    if cfg.name == "imagefolder" and cfg.image_size is not None:
        steps += [T.Resize(cfg.image_size), T.CenterCrop(cfg.image_size)]
    if side is not None:
        pad = 2 if side is None or side <= 32 else max(2, side // 16)
        steps.append(T.RandomCrop(cfg.image_size or side, padding=pad))
        if cfg.name in FLIPS:
            steps.append(T.RandomHorizontalFlip())
    mean, std = STATS[cfg.name]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def _open(cfg: ImageData, split: str, augment_side: int | None = None):
    root, train = Path(cfg.root), split == TRAIN
    tf = _transform(cfg, augment_side)
    if cfg.name == "imagefolder":
        return tvd.ImageFolder(root / (cfg.train_dir if train else cfg.test_dir), transform=tf)
    if not cfg.download and not root.is_dir():
        raise expected("data.root", f"an existing directory with the {cfg.name} files "
                       "(or set data.download / --download)", str(root))
    cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}.get(cfg.name)
    try:
        if cls is not None:
            return cls(root, train=train, transform=tf, download=cfg.download)
        return tvd.SVHN(root, split=split, transform=tf, download=cfg.download)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise UserError(f"no readable {cfg.name} {split} split in {root} ({err}); "
                        "set data.download / --download to fetch it",
                        argument="data.root") from None


def dataset_labels(ds) -> np.ndarray:
    for attr in ("targets", "labels"):
        if hasattr(ds, attr):
            return np.asarray(getattr(ds, attr), dtype=np.int64)
    raise TypeError(f"{type(ds).__name__} exposes no targets")


def _check_folders(cfg: ImageData, splits: Sequence[str]) -> None:
    folders = [cfg.train_dir if s == TRAIN else cfg.test_dir for s in splits]
    missing = [f for f in folders if not (Path(cfg.root) / f).is_dir()]
    if missing:
        raise expected("data.root", f"a directory holding {' and '.join(f'{f}/' for f in folders)} "
                       "with one subfolder of images per class", str(Path(cfg.root) / missing[0]))


def load_images(cfg: ImageData, splits: Sequence[str] = SPLITS):
    """The `splits` of an image data set (only those are opened), with the class names
    torchvision gives (ImageFolder: the folder names; SVHN, which has none: the digits)."""
    from repflat.base.data import Data

    if cfg.name == "imagefolder":
        _check_folders(cfg, splits)
    sets = {s: _open(cfg, s) for s in splits}
    first = sets[splits[0]]
    x0 = first[0][0]
    augmented = (_open(cfg, TRAIN, augment_side=int(x0.shape[-1]))
                 if cfg.augment and TRAIN in sets else None)
    if cfg.name == "imagefolder":
        n_classes = len(first.classes)
        if any(ds.classes != first.classes for ds in sets.values()):
            raise UserError(f"{cfg.test_dir}/ and {cfg.train_dir}/ hold different "
                            f"classes ({len(sets[TEST].classes)} and {len(sets[TRAIN].classes)})",
                            argument="data.root")
    else:
        n_classes = CLASSES[cfg.name]
    names = getattr(first, "classes", None) or [str(k) for k in range(n_classes)]
    labels = {s: dataset_labels(d) for s, d in sets.items()}
    mean, std = STATS[cfg.name]
    return Data(sets, labels, n_classes, tuple(x0.shape), augmented=augmented,
                pixel_mean=mean, pixel_std=std, class_names=tuple(str(n) for n in names))
