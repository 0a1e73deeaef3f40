"""Local data sets and augmentation (csdformer.data)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from conftest import needs_fashion_mnist
from csdformer import data as datasets
from csdformer.data import DatasetError


def _idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file written from the format description: 0x0000, type 0x08 (uint8), ndim, big-endian dims."""
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx_set(directory, split="test", n=6, size=28, gz=False, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8) if labels is None else np.asarray(labels, np.uint8)
    os.makedirs(directory, exist_ok=True)
    img_stem, lbl_stem = datasets.IDX_FILES[split]
    for stem, arr in ((img_stem, images), (lbl_stem, labels)):
        raw = _idx_bytes(arr)
        if gz:
            with gzip.open(os.path.join(directory, stem + ".gz"), "wb") as f:
                f.write(raw)
        else:
            with open(os.path.join(directory, stem), "wb") as f:
                f.write(raw)
    return images, labels


# ----------------------------------------------------------------------------- Fashion-MNIST

@needs_fashion_mnist
def test_fashion_mnist_test_split():
    split = datasets.load("fashion-mnist", "test")
    assert split.images.shape == (10000, 1, 28, 28)
    assert split.images.dtype == torch.uint8
    assert split.labels.shape == (10000,)
    assert split.labels.dtype == torch.int64
    assert int(split.labels.min()) == 0 and int(split.labels.max()) == 9
    # the test split is balanced: 1000 images per class
    assert torch.bincount(split.labels, minlength=10).tolist() == [1000] * 10
    assert len(split) == 10000
    assert int(split.images.max()) > 200 and int(split.images.min()) == 0
    sub = split.subset(64)
    assert len(sub) == 64 and torch.equal(sub.images, split.images[:64])
    assert split.subset(None) is split and split.subset(10**6) is split


@needs_fashion_mnist
def test_fashion_mnist_matches_raw_idx_bytes():
    # read the first image and label directly from the gz files
    d = datasets.FASHION_MNIST_DIR
    with gzip.open(os.path.join(d, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read(16 + 28 * 28)
    with gzip.open(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        lraw = f.read(9)
    assert struct.unpack(">I", raw[4:8])[0] == 10000
    split = datasets.load("fashion-mnist", "test")
    assert split.images[0, 0].flatten().tolist() == list(raw[16:])
    assert int(split.labels[0]) == lraw[8]


def test_to_model_input_scales_pixels():
    x = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)
    y = datasets.to_model_input(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y, torch.tensor([[[[0.0, 0.2, 1.0]]]]))


# ----------------------------------------------------------------------------- IDX files from tmp_path

@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_load_exactly(tmp_path, gz):
    images, labels = _write_idx_set(tmp_path, "test", n=5, gz=gz)
    for name in ("fashion-mnist", "mnist"):
        split = datasets.load(name, "test", str(tmp_path))
        assert split.images.shape == (5, 1, 28, 28) and split.images.dtype == torch.uint8
        assert np.array_equal(split.images[:, 0].numpy(), images)
        assert split.labels.tolist() == labels.astype(int).tolist()


def test_idx_dotted_name_is_accepted(tmp_path):
    images, labels = _write_idx_set(tmp_path, "train", n=3)
    for stem in datasets.IDX_FILES["train"]:
        os.rename(tmp_path / stem, tmp_path / stem.replace("-idx", ".idx"))
    split = datasets.load("mnist", "train", str(tmp_path))
    assert np.array_equal(split.images[:, 0].numpy(), images)


def test_missing_directory(tmp_path):
    missing = str(tmp_path / "nowhere")
    for name in ("fashion-mnist", "mnist", "cifar10"):
        with pytest.raises(DatasetError) as e:
            datasets.load(name, "test", missing)
        assert missing in str(e.value)


def test_missing_idx_file(tmp_path):
    _write_idx_set(tmp_path, "test")
    os.remove(tmp_path / datasets.IDX_FILES["test"][1])
    with pytest.raises(DatasetError) as e:
        datasets.load("fashion-mnist", "test", str(tmp_path))
    assert str(tmp_path) in str(e.value) and "t10k-labels-idx1-ubyte" in str(e.value)


def _expect_bad(tmp_path, filename, content):
    _write_idx_set(tmp_path, "test")
    path = tmp_path / filename
    for stem in datasets.IDX_FILES["test"]:  # the bad file must be the one found
        if filename.startswith(stem) and filename != stem and (tmp_path / stem).exists():
            os.remove(tmp_path / stem)
    path.write_bytes(content)
    with pytest.raises(DatasetError) as e:
        datasets.load("mnist", "test", str(tmp_path))
    assert str(path) in str(e.value)
    return str(e.value)


def test_truncated_header(tmp_path):
    msg = _expect_bad(tmp_path, "t10k-images-idx3-ubyte", b"\x00\x00\x08\x03\x00\x00")
    assert "truncated" in msg


def test_truncated_body(tmp_path):
    arr = np.zeros((4, 28, 28), np.uint8)
    msg = _expect_bad(tmp_path, "t10k-images-idx3-ubyte", _idx_bytes(arr)[:-10])
    assert "expected" in msg


def test_garbage_idx(tmp_path):
    msg = _expect_bad(tmp_path, "t10k-images-idx3-ubyte", b"this is certainly not an idx file at all")
    assert "not an IDX" in msg


def test_wrong_dimension_count(tmp_path):
    # a 1-D IDX file where the 3-D image file belongs
    _expect_bad(tmp_path, "t10k-images-idx3-ubyte", _idx_bytes(np.arange(10, dtype=np.uint8)))


def test_garbage_gzip(tmp_path):
    _expect_bad(tmp_path, "t10k-labels-idx1-ubyte.gz", b"\x1f\x8bnot really gzip")


def test_truncated_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.zeros((6, 28, 28), np.uint8)))
    _expect_bad(tmp_path, "t10k-images-idx3-ubyte.gz", good[: len(good) // 2])


def test_label_out_of_range(tmp_path):
    _write_idx_set(tmp_path, "test", n=3, labels=[1, 10, 2])
    with pytest.raises(DatasetError, match="exceed 9"):
        datasets.load("mnist", "test", str(tmp_path))


def test_image_label_count_mismatch(tmp_path):
    _write_idx_set(tmp_path, "test", n=4)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match="4 images but 3 labels"):
        datasets.load("mnist", "test", str(tmp_path))


def test_wrong_image_size(tmp_path):
    _write_idx_set(tmp_path, "test", n=2, size=32)
    with pytest.raises(DatasetError) as e:
        datasets.load("mnist", "test", str(tmp_path))
    assert str(tmp_path) in str(e.value)


def test_mnist_needs_data_dir():
    with pytest.raises(DatasetError, match="--data-dir"):
        datasets.load("mnist", "test")
    with pytest.raises(DatasetError, match="--data-dir"):
        datasets.load("cifar10", "train")


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(DatasetError, match="unknown data set"):
        datasets.load("imagenet", "test", str(tmp_path))
    with pytest.raises(DatasetError, match="unknown split"):
        datasets.load("mnist", "val", str(tmp_path))


# ----------------------------------------------------------------------------- CIFAR-10 pickles

def _write_cifar(directory, sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, list[int]]]:
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1)
    written = {}
    for name, n in sizes.items():
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        with open(os.path.join(directory, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * n}, f)
        written[name] = (data, labels)
    return written


CIFAR_SIZES = {**{f"data_batch_{i}": i for i in range(1, 6)}, "test_batch": 4}


@pytest.mark.parametrize("subfolder", [False, True])
def test_cifar10_loads_tiny_batches(tmp_path, subfolder):
    directory = tmp_path / "cifar-10-batches-py" if subfolder else tmp_path
    written = _write_cifar(directory, CIFAR_SIZES)
    train = datasets.load("cifar10", "train", str(tmp_path))
    test = datasets.load("cifar10", "test", str(tmp_path))
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 32, 32)
    assert train.labels.dtype == torch.int64
    # batches are concatenated in order 1..5; each row is 1024 red, 1024 green, 1024 blue, row-major
    expected_rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.labels.tolist() == expected_labels
    imgs = train.images.numpy()
    for n in (0, 7, 14):
        for c, y, x in ((0, 0, 0), (1, 5, 31), (2, 31, 17), (0, 12, 3)):
            assert imgs[n, c, y, x] == expected_rows[n, c * 1024 + y * 32 + x]
    assert np.array_equal(test.images.numpy().reshape(4, -1), written["test_batch"][0])


def test_cifar10_missing_batch(tmp_path):
    _write_cifar(tmp_path, {"test_batch": 2})
    with pytest.raises(DatasetError) as e:
        datasets.load("cifar10", "train", str(tmp_path))
    assert str(tmp_path) in str(e.value) and "data_batch_1" in str(e.value)


def test_cifar10_malformed_batch(tmp_path):
    (tmp_path / "test_batch").write_bytes(b"garbage, not a pickle")
    with pytest.raises(DatasetError) as e:
        datasets.load("cifar10", "test", str(tmp_path))
    assert str(tmp_path / "test_batch") in str(e.value)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DatasetError, match="3072"):
        datasets.load("cifar10", "test", str(tmp_path))


# ----------------------------------------------------------------------------- augmentation

def _images(n=64, c=1, h=9, w=7, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 256, (n, c, h, w), generator=g)  # no zeros: padding is recognisable
    return x.to(dtype) if dtype == torch.uint8 else x.to(dtype) / 255


def _match_shift(src: torch.Tensor, out: torch.Tensor, pad: int, flip: bool):
    """The (dy, dx, flipped) for which out is a window of the zero-padded src; None if none is."""
    c, h, w = src.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=src.dtype)
    padded[:, pad:pad + h, pad:pad + w] = src
    found = []
    for flipped in ((False, True) if flip else (False,)):
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                window = padded[:, dy:dy + h, dx:dx + w]
                if flipped:
                    window = window.flip(2)
                if torch.equal(window, out):
                    found.append((dy, dx, flipped))
    return found


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_identity_without_pad_or_flip(dtype):
    x = _images(dtype=dtype)
    y = datasets.augment(x, 0, False, torch.Generator().manual_seed(1))
    assert y.dtype == dtype and torch.equal(y, x)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("pad, flip", [(2, False), (0, True), (1, True), (3, True)])
def test_augment_is_a_random_shift_and_flip(dtype, pad, flip):
    x = _images(c=2, dtype=dtype)
    y = datasets.augment(x, pad, flip, torch.Generator().manual_seed(2))
    assert y.shape == x.shape and y.dtype == x.dtype
    shifts, flips = set(), set()
    for i in range(x.shape[0]):
        found = _match_shift(x[i], y[i], pad, flip)
        assert found, f"image {i} is not a zero-padded shift{' / flip' if flip else ''} of its input"
        dy, dx, flipped = found[0]
        shifts.add((dy, dx))
        flips.add(flipped)
        assert 0 <= dy <= 2 * pad and 0 <= dx <= 2 * pad
    # 64 images: the augmentation really varies (a fixed shift or a constant flip would fail this)
    if pad:
        assert len(shifts) > 1
    if flip:
        assert flips == {False, True}


def test_augment_is_reproducible_with_the_generator():
    x = _images()
    a = datasets.augment(x, 2, True, torch.Generator().manual_seed(3))
    b = datasets.augment(x, 2, True, torch.Generator().manual_seed(3))
    c = datasets.augment(x, 2, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, _images())  # the input is not modified in place
