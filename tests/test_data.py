"""The MNIST loader (gzip or plain IDX, checked against SHA-256) and the few-shot subsets."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from gradsel_cli import data
from gradsel_cli.cli.commands import cli

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # data/mnist/README.md
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MEAN_TRAIN_PIXEL = 33.318  # of 255, README precision
MEAN_PIXEL_ATOL = 5e-4

STEMS = {key: stem for key, (stem, *_rest) in data.FILES.items()}


@pytest.fixture(autouse=True)
def no_data_dir_from_the_environment(monkeypatch):
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def shipped_dir():
    """The copy beside the package (found with GRADSEL_DATA_DIR unset)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GRADSEL_DATA_DIR", raising=False)
        return data.find_data_dir()


@pytest.fixture(scope="session")
def idx_bytes(shipped_dir):
    """The decompressed bytes of the two label files and the test images (small enough to copy per test)."""
    return {
        key: gzip.decompress((shipped_dir / f"{STEMS[key]}.gz").read_bytes())
        for key in ("train-labels", "test-labels", "test-images")
    }


@pytest.fixture(scope="session")
def plain_dir(tmp_path_factory, shipped_dir):
    """All four files decompressed: plain IDX, as some other copies of MNIST come."""
    directory = tmp_path_factory.mktemp("plain-idx")
    for stem in STEMS.values():
        (directory / stem).write_bytes(gzip.decompress((shipped_dir / f"{stem}.gz").read_bytes()))
    return directory


@pytest.fixture
def copy_dir(tmp_path, shipped_dir):
    """A data folder of links to the shipped .gz files, in which a test may replace one file."""
    for stem in STEMS.values():
        os.symlink(shipped_dir / f"{stem}.gz", tmp_path / f"{stem}.gz")
    return tmp_path


# --- the shipped copy -------------------------------------------------------------


def test_shipped_data_is_found_beside_the_package(shipped_dir):
    assert shipped_dir.is_dir()
    assert {p.name for p in shipped_dir.iterdir()} >= {f"{stem}.gz" for stem in STEMS.values()}


def test_shapes_and_dtypes(mnist_raw):
    xtr, ytr, xte, yte = mnist_raw
    assert xtr.shape == (60000, 784) and xtr.dtype == np.uint8
    assert xte.shape == (10000, 784) and xte.dtype == np.uint8
    assert ytr.shape == (60000,) and ytr.dtype == np.int64
    assert yte.shape == (10000,) and yte.dtype == np.int64


def test_label_counts(mnist_raw):
    assert np.bincount(mnist_raw[1]).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist_raw[3]).tolist() == TEST_COUNTS


def test_mean_train_pixel(mnist_raw):
    xtr = mnist_raw[0]
    assert xtr.mean(dtype=np.float64) == pytest.approx(MEAN_TRAIN_PIXEL, abs=MEAN_PIXEL_ATOL)
    assert xtr.max() == 255 and xtr.min() == 0


def test_to_float_scales_to_unit_interval(mnist_raw):
    x = data.to_float(mnist_raw[0][:100])
    assert x.dtype == np.float64 and x.flags.c_contiguous
    assert np.array_equal(x, mnist_raw[0][:100] / 255.0)
    assert x.min() == 0.0 and x.max() == 1.0


def test_plain_idx_files_load_the_same(plain_dir, mnist_raw):
    got = data.load_mnist_raw(plain_dir)
    for a, b in zip(got, mnist_raw):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_a_mix_of_plain_and_gzip_files_loads(copy_dir, idx_bytes, mnist_raw):
    (copy_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    (copy_dir / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes["test-labels"])
    assert np.array_equal(data.load_mnist_raw(copy_dir)[3], mnist_raw[3])


# --- broken files: one-line DataError naming the file -------------------------


def replace_file(directory: Path, key: str, content: bytes, compressed: bool):
    stem = STEMS[key]
    (directory / f"{stem}.gz").unlink()
    if compressed:
        (directory / f"{stem}.gz").write_bytes(content)
    else:
        (directory / stem).write_bytes(content)


def altered(raw: bytes, offset: int, value: int) -> bytes:
    b = bytearray(raw)
    b[offset] = value
    return bytes(b)


def broken_files(labels: bytes):
    """name -> (file content, compressed?, what the message says), all for train-labels."""
    magic_2051 = (2051).to_bytes(4, "big") + labels[4:]
    other_label = (labels[100] + 1) % 10  # a valid label, just not the right one
    return {
        "truncated gzip": (gzip.compress(labels)[:5000], True, "cannot be read"),
        "not gzip at all": (b"this is not a gzip file" * 10, True, "cannot be read"),
        "truncated plain": (labels[:-100], False, "expected"),
        "header cut off": (labels[:5], False, "truncated"),
        "padded plain": (labels + b"\0", False, "expected"),
        "wrong magic": (magic_2051, False, "magic"),
        "wrong count": ((59999).to_bytes(4, "big").join([labels[:4], labels[8:-1]]), False, "shape"),
        "altered byte": (altered(labels, 100, other_label), False, "SHA-256"),
        "altered byte, gzip": (gzip.compress(altered(labels, 100, other_label)), True, "SHA-256"),
    }


@pytest.fixture(params=list(broken_files(bytes(200))))
def broken(request, idx_bytes):
    return request.param, broken_files(idx_bytes["train-labels"])[request.param]


def test_broken_file_raises_data_error_naming_it(copy_dir, broken):
    name, (content, compressed, says) = broken
    replace_file(copy_dir, "train-labels", content, compressed)
    with pytest.raises(data.DataError) as info:
        data.read_idx(copy_dir, "train-labels")
    message = str(info.value)
    assert "train-labels-idx1-ubyte" in message, name
    assert says in message, name
    assert "\n" not in message


def test_broken_file_fails_the_whole_load(copy_dir, idx_bytes):
    labels = idx_bytes["test-labels"]
    replace_file(copy_dir, "test-labels", altered(labels, 50, (labels[50] + 3) % 10), compressed=False)
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte.*SHA-256"):
        data.load_mnist_raw(copy_dir)


def test_missing_file_raises_data_error_naming_it(copy_dir):
    (copy_dir / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match="missing train-images-idx3-ubyte"):
        data.load_mnist_raw(copy_dir)


def test_altered_image_byte_is_caught(copy_dir, idx_bytes):
    raw = idx_bytes["test-images"]
    replace_file(copy_dir, "test-images", altered(raw, 16 + 300, (raw[16 + 300] + 1) % 256), compressed=False)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte"):
        data.read_idx(copy_dir, "test-images")
    assert data.read_idx(copy_dir, "test-images", verify=False).shape == (10000, 28, 28)


def test_labels_out_of_range_are_caught_even_unverified(copy_dir, idx_bytes):
    replace_file(copy_dir, "train-labels", altered(idx_bytes["train-labels"], 8, 10), compressed=False)
    with pytest.raises(data.DataError, match=r"train-labels-idx1-ubyte.*out of range"):
        data.read_idx(copy_dir, "train-labels", verify=False)


def test_a_damaged_file_is_a_value_error_to_the_library_caller(copy_dir, idx_bytes):
    """The library raises ValueError for bad input (only the CLI turns it into one line): a caller catching
    ValueError catches a damaged MNIST file, and the message names the file."""
    replace_file(copy_dir, "train-labels", altered(idx_bytes["train-labels"], 8, 10), compressed=False)
    try:
        data.read_idx(copy_dir, "train-labels", verify=False)
    except ValueError as exc:
        assert "train-labels-idx1-ubyte" in str(exc)
    else:
        raise AssertionError("a label out of range was read without an error")


def _bad_stream(compressed: bytes) -> bytes:
    """A gzip file whose header is sound and whose deflate stream is not."""
    bad = bytearray(compressed)
    for i in range(20, 60):
        bad[i] ^= 0xFF
    return bytes(bad)


@pytest.mark.parametrize("key", ["test-labels", "test-images"])
def test_a_bad_deflate_stream_is_one_data_error_and_one_line_from_the_cli(key, copy_dir, idx_bytes, runner):
    stem = STEMS[key]
    os.remove(copy_dir / f"{stem}.gz")
    (copy_dir / f"{stem}.gz").write_bytes(_bad_stream(gzip.compress(idx_bytes[key])))
    with pytest.raises(data.DataError, match=rf"{stem}.gz: cannot be read .*decompress"):
        data.read_idx(copy_dir, key)
    for args in (["train", "--iters", "2"], ["compare", "--iters", "2", "--seeds", "1", "--show-digits", "2"]):
        result = runner.invoke(cli, [*args, "--data-dir", str(copy_dir)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and stem in result.stderr


# --- where the data comes from -------------------------------------------------


def test_environment_variable_is_honoured(monkeypatch, copy_dir, shipped_dir):
    monkeypatch.setenv("GRADSEL_DATA_DIR", str(copy_dir))
    assert data.find_data_dir() == copy_dir
    (copy_dir / "t10k-labels-idx1-ubyte.gz").unlink()  # so a load that really reads there must fail
    with pytest.raises(data.DataError, match="missing t10k-labels"):
        data.read_idx(data.find_data_dir(), "test-labels")
    assert data.find_data_dir(shipped_dir) == shipped_dir  # an explicit folder wins over the variable


def test_environment_variable_pointing_nowhere_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADSEL_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match="GRADSEL_DATA_DIR"):
        data.find_data_dir()


def test_nonexistent_data_dir_raises(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.find_data_dir(tmp_path / "nowhere")
    with pytest.raises(data.DataError):
        data.load_mnist_raw(tmp_path / "nowhere")


def test_empty_data_dir_raises(tmp_path):
    with pytest.raises(data.DataError, match="missing"):
        data.load_mnist_raw(tmp_path)


# --- few-shot subsets ----------------------------------------------------------


@pytest.mark.parametrize("shots", [1, 2, 4])
def test_first_subset_is_the_first_k_of_each_class_in_file_order(mnist_raw, shots):
    xtr, ytr = mnist_raw[0], mnist_raw[1]
    want = []
    for digit in range(10):
        found = [i for i in range(len(ytr)) if ytr[i] == digit]
        want.extend(found[:shots])
    idx = data.few_shot_indices(ytr, shots, "first")
    assert idx.tolist() == want
    x, y = data.few_shot(xtr, ytr, shots)
    assert y.tolist() == [d for d in range(10) for _ in range(shots)]
    assert x.dtype == np.float64 and x.shape == (10 * shots, 784)
    assert np.array_equal(x, xtr[want] / 255.0)


def test_first_subset_ignores_the_seed(mnist_raw):
    ytr = mnist_raw[1]
    assert np.array_equal(
        data.few_shot_indices(ytr, 3, "first", seed=0), data.few_shot_indices(ytr, 3, "first", seed=9)
    )


def test_random_subset_is_k_distinct_members_per_class_and_seeded(mnist_raw):
    ytr = mnist_raw[1]
    idx = data.few_shot_indices(ytr, 4, "random", seed=1)
    assert len(idx) == 40 and len(set(idx.tolist())) == 40
    assert ytr[idx].tolist() == [d for d in range(10) for _ in range(4)]
    assert np.array_equal(idx, data.few_shot_indices(ytr, 4, "random", seed=1))
    assert not np.array_equal(idx, data.few_shot_indices(ytr, 4, "random", seed=2))
    assert not np.array_equal(idx, data.few_shot_indices(ytr, 4, "first"))
    assert idx.max() > 1000  # drawn from the whole class, not its first members


def test_random_subset_without_replacement_can_take_a_whole_class():
    y = np.repeat(np.arange(10), 3)  # three of each class
    idx = data.few_shot_indices(y, 3, "random", seed=0)
    assert sorted(idx.tolist()) == list(range(30))


@pytest.mark.parametrize("shots", [0, -1, 5422])
def test_bad_shots_raise(mnist_raw, shots):
    with pytest.raises(ValueError, match="shots"):
        data.few_shot_indices(mnist_raw[1], shots)


def test_largest_allowed_shots(mnist_raw):
    assert len(data.few_shot_indices(mnist_raw[1], 5421)) == 54210


def test_the_all_subset_is_every_training_image_in_file_order_whatever_the_shots_and_seed(mnist_raw):
    y = mnist_raw[1]
    for shots, seed in ((1, 0), (5421, 7)):
        assert np.array_equal(data.few_shot_indices(y, shots, "all", seed), np.arange(60000))


def test_unknown_subset_raises(mnist_raw):
    with pytest.raises(ValueError, match="subset"):
        data.few_shot_indices(mnist_raw[1], 2, "last")


def test_few_shot_accepts_float_images(mnist_raw):
    xtr = mnist_raw[0][:2000] / 255.0
    x, _y = data.few_shot(xtr, mnist_raw[1][:2000], 2)
    assert x.dtype == np.float64 and x.max() <= 1.0
    assert np.array_equal(x, xtr[data.few_shot_indices(mnist_raw[1][:2000], 2)])


def test_load_mnist_dtypes(mnist_raw):
    # float64 as before; uint8 the stored pixels (as lean as the command line); float32 half of float64
    x64, y64, t64, _ = data.load_mnist()
    assert x64.dtype == np.float64 and x64.flags.c_contiguous
    assert np.array_equal(x64[:500], mnist_raw[0][:500] / 255.0) and np.array_equal(
        t64[-500:], mnist_raw[2][-500:] / 255.0
    )
    assert np.array_equal(y64, mnist_raw[1])
    del x64, t64
    x8, _, t8, _ = data.load_mnist(dtype="uint8")
    assert x8.dtype == np.uint8 and np.array_equal(x8, mnist_raw[0]) and np.array_equal(t8, mnist_raw[2])
    x32, _, _, _ = data.load_mnist(dtype=np.float32)
    assert x32.dtype == np.float32 and x32.nbytes == 60000 * 784 * 4
    assert np.array_equal(x32[:500], (mnist_raw[0][:500] / np.float32(255)).astype(np.float32))
    with pytest.raises(ValueError, match="dtype must be one of"):
        data.load_mnist(dtype="int16")


def test_uint8_images_train_the_same_as_float64(mnist_raw):
    x8, y = data.load_mnist(dtype="uint8")[:2]
    a, _ = data.few_shot(x8, y, shots=2)
    b, _ = data.few_shot(mnist_raw[0] / 255.0, y, shots=2)
    assert a.tobytes() == b.tobytes()


def test_rounding_k_over_255_in_float64_to_float32_is_the_textbooks_float32_division_for_every_grey_level():
    levels = np.arange(256, dtype=np.uint8)
    textbook = levels.astype(np.float32)
    textbook /= np.float32(255.0)  # its loader: x.astype(np.float32); x /= 255.0
    assert data.to_float(levels, np.float32).tobytes() == textbook.tobytes()
    assert data.to_float(levels).astype(np.float32).tobytes() == textbook.tobytes()


def test_float32_pixels_round_the_training_and_test_images_and_compute_in_the_runs_precision(mnist_raw):
    from gradsel_cli.config import TrainConfig
    from gradsel_cli.numerics.training import Dataset

    config = TrainConfig(shots=1, test_limit=50)
    plain = Dataset.for_config(mnist_raw, config)
    rounded = Dataset.for_config(mnist_raw, config.replace(pixels="float32"))
    assert plain.x_train.dtype == rounded.x_train.dtype == np.float64 and plain.x_test.dtype == np.uint8
    assert np.array_equal(rounded.x_train, plain.x_train.astype(np.float32).astype(np.float64))
    assert not np.array_equal(rounded.x_train, plain.x_train)  # most grey levels k/255 are not float32 numbers
    assert np.array_equal(rounded.x_test, (mnist_raw[2][:50] / 255.0).astype(np.float32))
    both = Dataset.for_config(mnist_raw, config.replace(pixels="float32", precision="float32"))
    alone = Dataset.for_config(mnist_raw, config.replace(precision="float32"))
    assert both.x_train.tobytes() == alone.x_train.tobytes()  # float32 arithmetic already rounds them so
