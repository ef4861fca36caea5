import numpy as np
import pytest

from bench.core.errors import DatasetError
from datasets.folder import check_same_classes, read_image_folder
from datasets.loader import BatchLoader
from datasets.transforms import EvalTransform, TrainTransform

from ..conftest import write_image_folder


def test_reads_classes_sorted_and_labels(image_folder):
    ds = read_image_folder(image_folder, "train")
    assert ds.classes == ["a", "b"]
    assert len(ds) == 12
    assert sorted(set(ds.labels.tolist())) == [0, 1]
    assert ds.load(0).mode == "RGB"


def test_missing_split_names_path_and_present_splits(image_folder):
    with pytest.raises(DatasetError, match=r"split 'val' not found.*splits present: test, train"):
        read_image_folder(image_folder, "val")


def test_empty_class_is_named(image_folder):
    (image_folder / "train" / "c").mkdir()
    with pytest.raises(DatasetError, match=r"class 'c' is empty"):
        read_image_folder(image_folder, "train")


def test_non_image_file_is_named(image_folder):
    bad = image_folder / "train" / "a" / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DatasetError, match="notes.txt is not an image"):
        read_image_folder(image_folder, "train")
    assert len(read_image_folder(image_folder, "train", skip_bad_images=True)) == 12


def test_corrupt_image_is_named_on_decode(image_folder):
    bad = image_folder / "train" / "b" / "zz_corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    ds = read_image_folder(image_folder, "train")
    with pytest.raises(DatasetError, match="zz_corrupt.png"):
        ds.verify()
    ds = read_image_folder(image_folder, "train", skip_bad_images=True)
    ds.verify()
    assert len(ds) == 12 and ds.skipped and ds.skipped[0]["path"].endswith("zz_corrupt.png") and "Truncated" in ds.skipped[0]["why"]


def test_truncated_jpeg_is_reported(tmp_path):
    root = write_image_folder(tmp_path / "d", per_class=2)
    from PIL import Image
    jpg = root / "train" / "a" / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg)
    jpg.write_bytes(jpg.read_bytes()[:200])
    with pytest.raises(DatasetError, match="big.jpg"):
        read_image_folder(root, "train").verify()


def test_zero_byte_image_rejected_at_scan(image_folder):
    (image_folder / "train" / "a" / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="empty.png is empty"):
        read_image_folder(image_folder, "train")


def test_class_mismatch_between_splits(tmp_path):
    root = write_image_folder(tmp_path / "d", classes=("a", "b"), splits=("train",))
    write_image_folder(root, classes=("a", "c"), splits=("test",))
    with pytest.raises(DatasetError, match=r"only in train: \['b'\].*only in test: \['c'\]"):
        check_same_classes(read_image_folder(root, "train"), read_image_folder(root, "test"))


def test_shots_subsample_is_fixed_and_per_class(image_folder):
    ds = read_image_folder(image_folder, "train")
    a, b = ds.subsample(2), ds.subsample(2)
    assert a.samples == b.samples and len(a) == 4
    with pytest.raises(DatasetError, match="fewer than --shots 50"):
        ds.subsample(50)


def test_loader_batches_are_deterministic_and_shaped(image_folder):
    ds = read_image_folder(image_folder, "train")
    mk = lambda: BatchLoader(ds, TrainTransform(8, (0.5, 1.0)), 5, train=True, seed=3)
    (x1, y1), (x2, y2) = next(iter(mk())), next(iter(mk()))
    assert x1.shape == (5, 3, 8, 8) and x1.dtype == np.float32 and y1.dtype == np.int32
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert len(mk()) == 2  # 12 images, batch 5, last incomplete batch dropped
    ev = BatchLoader(ds, EvalTransform(8), 5, train=False)
    assert [len(y) for _, y in ev] == [5, 5, 2]


def test_validation_shots_never_overlap_the_training_shots(tmp_path):
    root = write_image_folder(tmp_path / "d", classes=("a", "b"), per_class=9)
    split = read_image_folder(root, "train")
    train, val = split.shots_and_validation(4, 3)
    assert train.samples == split.subsample(4).samples  # the same training images as without a validation split
    assert len(val) == 6 and not set(train.samples) & set(val.samples)
    rest, held = split.shots_and_validation(None, 3)
    assert len(held) == 6 and len(rest) == 12 and not set(rest.samples) & set(held.samples)
    with pytest.raises(DatasetError, match="fewer than --shots 7 \\+ --val-shots 3"):
        split.shots_and_validation(7, 3)


def test_eval_batches_are_decoded_once(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "d", per_class=5)
    split = read_image_folder(root, "test")
    calls = []
    load = split.load
    monkeypatch.setattr(split, "load", lambda i: calls.append(i) or load(i))
    loader = BatchLoader(split, EvalTransform(8), 4, train=False)
    first, second = [b for b in loader], [b for b in loader]
    assert len(calls) == len(split) and all((a[0] == b[0]).all() for a, b in zip(first, second))
    tiny = BatchLoader(split, EvalTransform(8), 4, train=False, cache_bytes=10)  # too small to keep
    calls.clear()
    list(tiny), list(tiny)
    assert len(calls) == 2 * len(split)
