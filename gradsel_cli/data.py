"""MNIST reading (gzip or plain IDX, checked) and few-shot subsets.

The loader finds the data in this order: an explicit directory, the
``GRADSEL_DATA_DIR`` environment variable, the copy shipped in the package
(wheel: plain IDX files, read without decompressing) or beside it (source
tree / editable install: gzip-compressed).
"""

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from .choices import SUBSETS
from .seeding import rng

N_PIXELS = 784
N_CLASSES = 10
N_TRAIN = 60000  # MNIST's training images

# SHA-256 of the decompressed IDX bytes, magic number, expected shape.
FILES = {
    "train-images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        2051,
        (60000, 28, 28),
    ),
    "train-labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        2049,
        (60000,),
    ),
    "test-images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        2051,
        (10000, 28, 28),
    ),
    "test-labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        2049,
        (10000,),
    ),
}


IDX_KINDS = {2049: "a labels file", 2051: "an images file"}


class DataError(ValueError):
    """The MNIST files are missing, unreadable or not what they should be."""


def _shipped_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / "_data" / "mnist", here.parent / "data" / "mnist"]


def find_data_dir(data_dir=None) -> Path:
    """The directory to read MNIST from (see the module docstring for the order)."""
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise DataError(
                f"data directory {str(path)!r} does not exist; give a folder holding the four MNIST IDX files"
            )
        return path
    env = os.environ.get("GRADSEL_DATA_DIR")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise DataError(f"GRADSEL_DATA_DIR={env!r} is not a directory; unset it or point it at the MNIST files")
        return path
    for path in _shipped_dirs():
        if path.is_dir():
            return path
    raise DataError("no MNIST data found; pass --data-dir or set GRADSEL_DATA_DIR")


def _read_bytes(directory: Path, stem: str, size: int) -> tuple[memoryview, Path]:
    """The file's (decompressed) bytes, read into one buffer of the expected `size`.

    One read into a preallocated buffer: no transient second copy of the
    47 MB training images. A longer file fills the buffer and leaves a byte,
    a shorter one comes up short: both are reported by the caller.
    """
    for name in (stem + ".gz", stem):
        path = directory / name
        if path.is_file():
            buf = bytearray(size + 1)
            view = memoryview(buf)
            got = 0
            try:
                with gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb") as fh:
                    while got < len(buf):
                        n = fh.readinto(view[got:])
                        if not n:
                            break
                        got += n
            except (OSError, EOFError, zlib.error) as exc:  # a damaged gzip: bad header (OSError) or stream
                raise DataError(f"{path}: cannot be read ({exc}); restore it from a fresh copy of the data") from None
            return view[:got], path
    raise DataError(f"{directory}: missing {stem}(.gz); put the four MNIST IDX files there or pass another --data-dir")


def read_idx(directory: Path, key: str, verify: bool = True) -> np.ndarray:
    """One IDX file as a uint8 array of its documented shape, checked."""
    stem, sha, magic, shape = FILES[key]
    ndim = len(shape)
    header = 4 + 4 * ndim
    raw, path = _read_bytes(directory, stem, header + int(np.prod(shape)))
    if len(raw) < header:
        raise DataError(f"{path}: truncated ({len(raw)} bytes); restore it from a fresh copy of the data")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        looks = f", the magic of {IDX_KINDS[got_magic]}" if got_magic in IDX_KINDS else ""
        raise DataError(
            f"{path}: wrong IDX magic number {got_magic}{looks} (expected {magic}, "
            f"{IDX_KINDS[magic]}); is it the right file?"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * d : 8 + 4 * d], "big") for d in range(ndim))
    if dims != shape:
        raise DataError(f"{path}: shape {dims} (expected {shape}); is it the right file?")
    if len(raw) != header + int(np.prod(shape)):
        state = "truncated" if len(raw) < header + int(np.prod(shape)) else "longer than expected"
        raise DataError(f"{path}: {state} (expected {header + int(np.prod(shape))} bytes); restore it")
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    if ndim == 1 and arr.max() >= N_CLASSES:  # checked before the checksum: the more telling message
        raise DataError(f"{path}: labels out of range 0-9 (found {arr.max()}); is it the right file?")
    if verify and hashlib.sha256(raw).hexdigest() != sha:
        raise DataError(
            f"{path}: SHA-256 of the decompressed bytes does not match MNIST; the file is altered, restore it"
        )
    return arr


def load_mnist_raw(data_dir=None, verify: bool = True):
    """(x_train uint8 (60000, 784), y_train int64, x_test uint8 (10000, 784), y_test int64)."""
    directory = find_data_dir(data_dir)
    xtr = read_idx(directory, "train-images", verify).reshape(60000, N_PIXELS)
    ytr = read_idx(directory, "train-labels", verify).astype(np.int64)
    xte = read_idx(directory, "test-images", verify).reshape(10000, N_PIXELS)
    yte = read_idx(directory, "test-labels", verify).astype(np.int64)
    return xtr, ytr, xte, yte


def to_float(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """uint8 pixels -> floats in [0, 1] (float64 unless told), C-contiguous; divided in place, so the
    only new memory is the result."""
    out = np.array(x, dtype=dtype, order="C")
    out /= 255.0
    return out


IMAGE_DTYPES = ("float64", "float32", "uint8")


def load_mnist(data_dir=None, dtype="float64"):
    """(x_train, y_train, x_test, y_test): images of shape (N, 784), labels int64.

    dtype float64 (the default): pixels in [0, 1], 439 MB of images; float32: half that (each
    pixel rounded to float32, so training from it is not bitwise the float64 run); uint8: the
    stored grey levels 0-255, 55 MB, as lean as the command line — ``few_shot``, ``predict``
    and ``accuracy`` take uint8 images and convert what they use.
    """
    name = np.dtype(dtype).name
    if name not in IMAGE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(IMAGE_DTYPES)}, got {dtype!r}")
    xtr, ytr, xte, yte = load_mnist_raw(data_dir)
    if name == "uint8":
        return xtr, ytr, xte, yte
    xtr = to_float(xtr, name)  # the uint8 copy is freed here, before the test set is converted
    return xtr, ytr, to_float(xte, name), yte


def few_shot_indices(y: np.ndarray, shots: int, subset: str = "first", seed: int = 0) -> np.ndarray:
    """Indices of `shots` images per class: the first in file order, or a seeded random draw; or (subset "all")
    every image, in file order (shots not read)."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of: {', '.join(SUBSETS)}")
    if subset == "all":
        return np.arange(len(y))
    counts = np.bincount(y, minlength=N_CLASSES)
    if not 1 <= shots <= counts.min():
        raise ValueError(f"shots must be between 1 and {counts.min()} (the smallest class), got {shots}")
    gen = rng(seed, "subset")
    picked = []
    for c in range(N_CLASSES):
        members = np.flatnonzero(y == c)
        if subset == "first":
            picked.append(members[:shots])
        else:
            picked.append(np.sort(gen.choice(members, size=shots, replace=False)))
    return np.concatenate(picked)


def train_size(shots: int, subset: str = "first") -> int:
    """How many training images a run of `shots` per class on `subset` trains on (few_shot_indices' count)."""
    return N_TRAIN if subset == "all" else shots * N_CLASSES


def few_shot(x: np.ndarray, y: np.ndarray, shots: int, subset: str = "first", seed: int = 0):
    """The few-shot subset (x, y), class by class; x float64 in [0, 1]."""
    idx = few_shot_indices(y, shots, subset, seed)
    xs = x[idx]
    return (to_float(xs) if xs.dtype == np.uint8 else np.ascontiguousarray(xs, dtype=np.float64)), y[idx].copy()
