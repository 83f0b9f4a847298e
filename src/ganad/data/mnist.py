"""MNIST from the original IDX files (gzipped or not), read with NumPy alone.

Expected files in the folder (either spelling, with or without ``.gz``)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte
    (or train-images.idx3-ubyte ... as some mirrors name them)

Example::

    from ganad.data.mnist import load_mnist
    X, y = load_mnist("/data/mnist", split="test")    # uint8 (10000, 1, 28, 28), int64 (10000,)
    normal = X[y == 0]                                  # one digit as the normal class
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ganad.exceptions import DataFileError, InputError, _fmt

#: IDX type code -> big-endian NumPy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into an array in native byte order.

    The magic number (two zero bytes, a type code, the number of dimensions) and the
    announced size are checked: a wrong magic number, a truncated file or trailing bytes
    raise :class:`DataFileError` naming the file.
    """
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as fh:
                raw = fh.read()
        else:
            raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise DataFileError(_fmt(str(p), "does not exist", "pass the folder holding the MNIST IDX files")) from exc
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataFileError(_fmt(str(p), f"is a truncated or corrupt gzip file ({type(exc).__name__}: {exc})",
                                 "download the file again")) from exc
    if len(raw) < 4:
        raise DataFileError(_fmt(str(p), f"is truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic number",
                                 "download the file again"))
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataFileError(_fmt(str(p), f"does not start with an IDX magic number (got 0x{raw[:4].hex()})",
                                 "pass an IDX file such as train-images-idx3-ubyte.gz (not an image or a PNG archive)"))
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(_fmt(str(p), f"is truncated inside its header ({len(raw)} of {header} bytes)", "download the file again"))
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) < expected:
        raise DataFileError(_fmt(str(p), f"is truncated: {len(raw)} bytes, but its header announces shape {shape} ({expected} bytes)",
                                 "download the file again"))
    if len(raw) > expected:
        raise DataFileError(_fmt(str(p), f"has {len(raw) - expected} bytes beyond the shape {shape} its header announces",
                                 "download the file again"))
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find(directory: Path, split_prefix: str, kind: str, idx: str) -> Path:
    stems = [f"{split_prefix}-{kind}-{idx}-ubyte", f"{split_prefix}-{kind}.{idx}-ubyte"]
    for stem in stems:
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    raise DataFileError(_fmt(str(directory), f"has no MNIST file {stems[0]}.gz (nor {stems[0]}, {stems[1]}.gz, {stems[1]})",
                             "pass the folder holding the four original MNIST IDX files"))


def load_mnist(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and digit labels of one split.

    Parameters
    ----------
    path : folder holding the IDX files (see the module docstring for the names).
    split : ``"train"`` (60,000 images) or ``"test"`` (10,000 images).

    Returns
    -------
    X : uint8 array (n, 1, 28, 28), pixel values 0..255 (scale them yourself).
    y : int64 array (n,), the digit 0..9.
    """
    key = str(split).lower()
    if key not in _PREFIX:
        raise InputError(_fmt("split", f"is {split!r}", "pass 'train' or 'test'"))
    d = Path(path)
    if not d.is_dir():
        raise DataFileError(_fmt(str(d), "is not a directory", "pass the folder holding the MNIST IDX files"))
    img_path = _find(d, _PREFIX[key], "images", "idx3")
    lab_path = _find(d, _PREFIX[key], "labels", "idx1")
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFileError(_fmt(str(img_path), f"holds a {images.dtype} array of shape {images.shape}, not uint8 images (n, rows, cols)",
                                 "pass the MNIST image file (idx3-ubyte)"))
    if labels.ndim != 1:
        raise DataFileError(_fmt(str(lab_path), f"holds an array of shape {labels.shape}, not a label vector",
                                 "pass the MNIST label file (idx1-ubyte)"))
    if labels.shape[0] != images.shape[0]:
        raise DataFileError(_fmt(str(lab_path), f"holds {labels.shape[0]} labels for the {images.shape[0]} images of {img_path.name}",
                                 "use the image and label files of the same split"))
    return images[:, None, :, :], labels.astype(np.int64)
