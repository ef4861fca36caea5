"""Images with a budget: bombs, thin images, 16-bit and rotated photos, and what a run records
of the images it skipped."""
import numpy as np
import pytest
from PIL import Image

from bench.core.errors import DatasetError
from datasets.folder import MAX_PIXELS, decode, read_image_folder
from datasets.loader import BatchLoader
from datasets.transforms import EvalTransform, TrainTransform

from ..conftest import write_image_folder


def _folder_with(tmp_path, name, img: Image.Image, **save):
    root = write_image_folder(tmp_path / "d", per_class=3)
    img.save(root / "test" / "a" / name, **save)
    return root


@pytest.mark.parametrize("size", [(1, 200_000), (1_000_000, 1)])
def test_a_thin_image_is_a_bad_image_not_a_gigabyte(tmp_path, size):
    root = _folder_with(tmp_path, "thin.png", Image.new("L", size))
    assert (root / "test" / "a" / "thin.png").stat().st_size < 5000
    with pytest.raises(DatasetError, match="thin.png.*aspect ratio"):
        read_image_folder(root, "test").verify()
    split = read_image_folder(root, "test", skip_bad_images=True)
    split.verify()
    assert [s["path"].endswith("thin.png") and "aspect" in s["why"] for s in split.skipped] == [True]


def test_a_decompression_bomb_is_skipped_like_any_bad_image(tmp_path):
    side = int((3 * MAX_PIXELS) ** 0.5)  # 192 megapixels of 1-bit zeros: a small PNG
    root = _folder_with(tmp_path, "bomb.png", Image.new("1", (side, side)), optimize=True)
    with pytest.raises(DatasetError, match="bomb.png"):
        read_image_folder(root, "test").verify()
    split = read_image_folder(root, "test", skip_bad_images=True)
    split.verify()
    assert len(split.skipped) == 1 and "pixels" in split.skipped[0]["why"]


def test_a_thin_image_within_the_cap_stays_small_through_the_transforms():
    img = Image.new("RGB", (40, 2000))
    assert EvalTransform(32)(img).shape == (3, 32, 32)
    assert TrainTransform(32)(img, np.random.default_rng(0)).shape == (3, 32, 32)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    a = np.full((8, 8), 40_000, np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    assert np.asarray(decode(path))[0, 0].tolist() == [40_000 >> 8] * 3  # 156, not 255


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 10))         # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6                               # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    upright = decode(path)
    assert upright.size == (10, 20)
    top = np.asarray(upright)[2, 5]
    assert top[2] > 200 and top[0] < 60            # the blue half is now on top


def test_a_batch_of_one_bad_image_is_skipped_not_a_crash(tmp_path):
    root = _folder_with(tmp_path, "bad.png", Image.new("L", (1, 5000)))
    split = read_image_folder(root, "test", skip_bad_images=True)
    loader = BatchLoader(split, EvalTransform(8), 1, train=False)
    batches = list(loader)
    assert len(batches) == len(split) - 1 and all(len(y) == 1 for _, y in batches)


def test_a_run_lists_every_skipped_image_and_why(fake_backend, tmp_path):
    from bench.execute.runner import execute
    from bench.plan.config import RunConfig
    root = _folder_with(tmp_path, "thin.png", Image.new("L", (1, 5000)))
    (root / "train" / "b" / "notes.txt").write_text("not an image")
    cfg = RunConfig(backend="fake", model="fake_mlp", experiment="folder", dataset="folder", data_dir=str(root),
                    pretrained="none", arm="finetune", strategy="full", epochs=2, batch_size=2, image_size=8)
    rec = execute(cfg, tmp_path / "out", progress=False, skip_bad_images=True)
    assert rec["status"] == "ok", rec["error"]
    whys = {s["path"].rsplit("/", 1)[1]: s["why"] for s in rec["data"]["skipped"]}
    assert set(whys) == {"thin.png", "notes.txt"} and "aspect" in whys["thin.png"] and "not an image" in whys["notes.txt"]
