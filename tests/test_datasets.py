import numpy as np
import pytest
import torch

from repflat.config import DigitsData, ImageData
from repflat.base.data import load_data
from repflat.errors import UserError
from tests.datafiles import (make_cifar10, make_cifar100, make_imagefolder, make_mnist,
                             make_svhn, skip_md5)


@pytest.mark.parametrize("name, make, shape, n_classes, n_train, n_test", [
    ("mnist", make_mnist, (1, 28, 28), 10, 30, 20),
    ("cifar10", make_cifar10, (3, 32, 32), 10, 30, 12),
    ("cifar100", make_cifar100, (3, 32, 32), 100, 20, 10),
    ("svhn", make_svhn, (3, 32, 32), 10, 20, 10),
])
def test_torchvision_formats_load(tmp_path, monkeypatch, name, make, shape, n_classes, n_train, n_test):
    skip_md5(monkeypatch)
    make(tmp_path)
    data = load_data(ImageData(name=name, root=str(tmp_path)))
    assert data.input_shape == shape and data.n_classes == n_classes
    assert len(data.datasets["train"]) == n_train and len(data.datasets["test"]) == n_test
    x, y = data.datasets["test"][3]
    assert x.shape == shape and x.dtype == torch.float32
    assert y == data.labels["test"][3] == 3  # the files label row i with class i mod 10
    assert data.labels["train"].dtype == np.int64


def test_imagefolder(tmp_path):
    make_imagefolder(tmp_path)
    data = load_data(ImageData(name="imagefolder", root=str(tmp_path)))
    assert data.n_classes == 3 and data.input_shape == (3, 16, 16)
    assert data.labels["test"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    resized = load_data(ImageData(name="imagefolder", root=str(tmp_path), image_size=8, augment=True))
    assert resized.input_shape == (3, 8, 8) and resized.augmented[0][0].shape == (3, 8, 8)


def test_augmentation_changes_training_images_only(tmp_path, monkeypatch):
    skip_md5(monkeypatch)
    make_cifar10(tmp_path)
    plain = load_data(ImageData(name="cifar10", root=str(tmp_path)))
    aug = load_data(ImageData(name="cifar10", root=str(tmp_path), augment=True))
    torch.manual_seed(0)
    assert any(not torch.equal(aug.augmented[i][0], plain.datasets["train"][i][0]) for i in range(5))
    # what evaluation and capture read stays unaugmented
    assert torch.equal(aug.datasets["train"][0][0], plain.datasets["train"][0][0])
    assert plain.augmented is None


def test_digits_are_real_and_offline():
    data = load_data(DigitsData())
    assert data.n_classes == 10 and data.input_shape == (1, 8, 8)
    assert len(data.labels["train"]) + len(data.labels["test"]) == 1797
    assert 0.0 <= data.arrays["train"].min() and data.arrays["train"].max() <= 1.0


@pytest.mark.parametrize("cfg, message", [
    (ImageData(name="mnist", root="/nonexistent/data"), "data.root: expected an existing directory with the mnist files"),
    (ImageData(name="imagefolder", root="/nonexistent"), "data.root: expected a directory holding train/ and val/"),
])
def test_missing_data_without_download_is_a_clear_error(cfg, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_data(cfg)


def test_empty_directory_says_how_to_download(tmp_path):
    with pytest.raises(UserError, match="no readable cifar10 train split .* set data.download"):
        load_data(ImageData(name="cifar10", root=str(tmp_path)))
