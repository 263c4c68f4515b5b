"""Real MNIST from local files (nothing is downloaded): the four IDX files (raw or .gz) or an .npz archive,
read once per process, each file checked (header, shape, dtype, label range) with errors naming it."""

from __future__ import annotations

import functools
import gzip
import math
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["MNIST_FILES", "MNIST_SHAPE", "read_idx", "mnist_images", "check_image_source"]

MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def read_idx(path) -> np.ndarray:
    """One IDX file (the MNIST format; gzipped when the name ends in .gz) as a uint8 numpy array.

    Layout: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions k, k big-endian int32
    sizes, then prod(sizes) bytes. Raises ValueError naming the file when any part is missing or wrong
    (a truncated file: fewer data bytes than the sizes announce).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"MNIST file {path} cannot be read: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] == 0:
        raise ValueError(f"MNIST file {path} is not an unsigned-byte IDX file (its first 4 bytes are "
                         f"{raw[:4].hex() or 'missing'}; expected 0000 08 then the number of dimensions)")
    k = raw[3]
    if len(raw) < 4 + 4 * k:
        raise ValueError(f"MNIST file {path} is truncated inside its header ({len(raw)} bytes, header needs {4 + 4 * k})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=k, offset=4))
    if min(shape) < 0:
        raise ValueError(f"MNIST file {path} is malformed: its header announces negative sizes {shape}")
    need, have = math.prod(shape), len(raw) - 4 - 4 * k
    if have != need:
        raise ValueError(f"MNIST file {path} is malformed: its header announces shape {shape} ({need} bytes of "
                         f"data) but {have} bytes follow (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * k).reshape(shape)


def _mnist_sources(data_dir: str) -> dict:
    """Where MNIST is in data_dir: {'idx': {part: path}} for the four IDX files (raw or .gz), else {'npz': path}
    for an .npz file given directly or data_dir/mnist.npz. Raises ValueError naming the first missing file."""
    root = Path(data_dir)
    if root.is_file() and root.suffix == ".npz":
        return {"npz": root}
    if not root.is_dir():
        raise ValueError(f"data_dir {data_dir!r} is neither a directory nor an .npz file; for dataset 'mnist' give the "
                         f"folder with the MNIST IDX files ({', '.join(MNIST_FILES.values())}, raw or .gz) or mnist.npz")
    found = {k: next((p for p in (root / s, root / f"{s}.gz") if p.is_file()), None) for k, s in MNIST_FILES.items()}
    if all(found.values()):
        return {"idx": found}
    if (root / "mnist.npz").is_file():
        return {"npz": root / "mnist.npz"}
    missing = next(MNIST_FILES[k] for k, p in found.items() if p is None)
    raise ValueError(f"MNIST file {root / missing} (or {missing}.gz) not found, and no {root / 'mnist.npz'} either; "
                     "put the four IDX files or mnist.npz in data_dir")


def _read_npz(path) -> dict:
    """The arrays x_train, y_train, x_test, y_test of an .npz file (Keras' mnist.npz layout)."""
    keys = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}
    try:
        with np.load(path) as z:
            absent = [v for v in keys.values() if v not in z.files]
            if absent:
                raise ValueError(f"MNIST file {path} lacks the arrays {absent} (it holds {z.files})")
            return {k: np.asarray(z[v]) for k, v in keys.items()}
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"MNIST file {path} is not a readable .npz archive: {err}") from None


MNIST_SHAPE = (28, 28)  # one image, pixels


def _mnist_part(x: np.ndarray, y: np.ndarray, images: str, labels: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked (x [n, 784] float64 in [0, 1], y [n] int64) from images x [n, 28, 28] (integers 0..255) and labels
    y [n] (integers 0..9); `images`, `labels` name where they came from (a file, or an array of an .npz)."""
    if x.ndim != 3 or tuple(x.shape[1:]) != MNIST_SHAPE:
        raise ValueError(f"MNIST images in {images} have shape {x.shape}; expected [n, 28, 28]")
    if x.dtype.kind not in "iu" or (x.size and (int(x.min()) < 0 or int(x.max()) > 255)):
        raise ValueError(f"MNIST images in {images} must be integers 0..255 (uint8); got dtype {x.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"MNIST labels in {labels} have shape {y.shape}; expected [{len(x)}] (one per image in "
                         f"{images})")
    if y.dtype.kind not in "iu":
        raise ValueError(f"MNIST labels in {labels} must be integers 0..9; got dtype {y.dtype}")
    if y.size and (int(y.min()) < 0 or int(y.max()) > 9):
        raise ValueError(f"MNIST labels in {labels} must lie in 0..9; got {int(y.min())}..{int(y.max())}")
    return torch.from_numpy(x.reshape(len(x), -1) / 255.0), torch.from_numpy(y.astype("int64"))


@functools.lru_cache(maxsize=2)
def _mnist_cached(sources: tuple) -> dict:
    """`mnist_images` for ((kind, part, path, size, mtime), ...): read once per process while the files are unchanged."""
    kind = sources[0][0]
    if kind == "idx":
        arrays = {part: read_idx(path) for _, part, path, _, _ in sources}
        where = {part: path for _, part, path, _, _ in sources}
    else:
        arrays = _read_npz(sources[0][2])
        names = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}
        where = {part: f"{sources[0][2]} ({names[part]})" for part in names}
    return {part: _mnist_part(arrays[f"{part}_images"], arrays[f"{part}_labels"], where[f"{part}_images"],
                              where[f"{part}_labels"]) for part in ("train", "test")}


def mnist_images(data_dir: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Real MNIST from local files (nothing is downloaded): {'train': (x, y), 'test': (x, y)} with x [n, 784]
    float64 in [0, 1] (pixel / 255) and y [n] int64 in 0..9.

    data_dir holds the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte, each raw or .gz) or mnist.npz (arrays x_train, y_train, x_test, y_test), or is such an
    .npz file. A missing or malformed file raises one ValueError naming it.
    """
    src = _mnist_sources(data_dir)
    paths = src["idx"].items() if "idx" in src else [("npz", src["npz"])]
    kind = "idx" if "idx" in src else "npz"
    return _mnist_cached(tuple((kind, part, str(p), p.stat().st_size, p.stat().st_mtime_ns) for part, p in paths))


def check_image_source(dataset: str, data_dir: str, n_train: int, n_test: int) -> None:
    """Raise ValueError unless `dataset` can give n_train training and n_test test images: for mnist, data_dir
    holds readable files of the right shape and dtype with enough images (read once, then cached)."""
    if dataset != "mnist":
        return
    if not data_dir:
        raise ValueError("dataset 'mnist' reads local files: give data_dir (the folder with the four MNIST IDX files "
                         "or mnist.npz, or the .npz itself)")
    parts = mnist_images(data_dir)
    for part, n in (("train", n_train), ("test", n_test)):
        if n > len(parts[part][1]):
            raise ValueError(f"MNIST {part} set in {data_dir} has {len(parts[part][1])} images; asked for {n}")
