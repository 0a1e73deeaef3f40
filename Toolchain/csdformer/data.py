"""Data sets read from local files only (no downloads).

* ``fashion-mnist``: IDX files, by default from /usr/share/datasets/fashion-mnist
  (Debian package dataset-fashion-mnist), or from --data-dir.
* ``mnist``: IDX files (gzipped or not) from --data-dir.
* ``cifar10``: the python pickle batches (data_batch_1..5, test_batch) from
  --data-dir or its cifar-10-batches-py/ subfolder.

Images are kept as uint8 [N, C, H, W]: the integer runtime consumes the same
bytes. ``to_model_input`` maps them to pixels / 255 for the PyTorch model.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np
import torch

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("fashion-mnist", "mnist", "cifar10")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
SHAPES = {"fashion-mnist": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


class DatasetError(Exception):
    """A data set is missing or malformed; the message names the path and what was expected."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, limit: int | None) -> "Split":
        if limit is None or limit >= len(self):
            return self
        return Split(self.images[:limit], self.labels[:limit])


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float pixels / 255 (no mean subtraction: zero padding stays pixel 0,
    so the packer folds this scale exactly into the encoding layer)."""
    return images.to(torch.float32) / 255.0


def _open_idx(directory: str, stem: str):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path, (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb"))
    raise DatasetError(f"{directory}: missing {stem}.gz (or {stem}); expected the IDX files "
                       f"{', '.join(f + '.gz' for pair in IDX_FILES.values() for f in pair)}")


def _read_idx(directory: str, stem: str, ndim: int) -> np.ndarray:
    path, f = _open_idx(directory, stem)
    try:
        with f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: unreadable ({e})") from e
    if len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header ({len(data)} bytes)")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08 or dims != ndim:
        raise DatasetError(f"{path}: not an IDX uint8 file of {ndim} dimension(s) "
                           f"(magic 0x{zero:04x}, type 0x{dtype:02x}, dims {dims})")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DatasetError(f"{path}: expected {int(np.prod(shape))} bytes of data for shape {shape}, found {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _load_idx(directory: str, split: str, name: str) -> Split:
    img_stem, lbl_stem = IDX_FILES[split]
    images = _read_idx(directory, img_stem, 3)
    labels = _read_idx(directory, lbl_stem, 1)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{directory}: {split} has {images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[1:] != SHAPES[name][1:]:
        raise DatasetError(f"{directory}: {split} images are {images.shape[1:]}, expected {SHAPES[name][1:]}")
    if labels.max(initial=0) > 9:
        raise DatasetError(f"{directory}: {split} labels exceed 9")
    return Split(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def _load_cifar(directory: str, split: str) -> Split:
    sub = os.path.join(directory, "cifar-10-batches-py")
    if os.path.isdir(sub):
        directory = sub
    xs, ys = [], []
    for name in CIFAR_FILES[split]:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise DatasetError(f"{directory}: missing {name}; expected the CIFAR-10 python batches "
                               f"{', '.join(CIFAR_FILES['train'] + CIFAR_FILES['test'])}")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as e:  # a pickle can fail in many ways; all mean "malformed"
            raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from e
        if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
            raise DatasetError(f"{path}: expected data [N, 3072] and N labels, found {data.shape} and {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return Split(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))


def load(name: str, split: str, data_dir: str | None = None) -> Split:
    """Load ``split`` ('train' or 'test') of data set ``name``."""
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if split not in IDX_FILES:
        raise DatasetError(f"unknown split {split!r}; known: train, test")
    if name == "fashion-mnist":
        directory = data_dir or FASHION_MNIST_DIR
        if not os.path.isdir(directory):
            hint = " (install the Debian package dataset-fashion-mnist, e.g. `make deps`)" if data_dir is None else ""
            raise DatasetError(f"{directory}: no such directory{hint}")
        return _load_idx(directory, split, name)
    if data_dir is None:
        raise DatasetError(f"data set {name!r} needs --data-dir (it is not bundled)")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"{data_dir}: no such directory")
    if name == "mnist":
        return _load_idx(data_dir, split, name)
    return _load_cifar(data_dir, split)


def augment(images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random shift by up to ``pad`` pixels (zero fill) and random horizontal flip, on uint8 or float."""
    b, c, h, w = images.shape
    if pad > 0:
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])  # [B, H]
        cols = (dx[:, None] + torch.arange(w)[None, :])  # [B, W]
        idx_b = torch.arange(b)[:, None, None]
        images = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, generator=generator) < 0.5
        images = torch.where(mask[:, None, None, None], images.flip(3), images)
    return images
