import numpy as np
from PIL import Image

from datasets.transforms import EvalTransform, TrainTransform, random_resized_crop_box


def test_eval_keeps_aspect_then_center_crops():
    # a 200x100 image whose left and right quarters are black: after resize of the
    # shorter side to 256 and a center crop of 224, no black remains (Gluon's
    # Resize(int) would square the image and keep the black bands).
    arr = np.full((100, 200, 3), 255, np.uint8)
    arr[:, :50] = 0
    arr[:, 150:] = 0
    out = EvalTransform(224)(Image.fromarray(arr))
    assert out.shape == (3, 224, 224)
    white = (1.0 - 0.485) / 0.229
    assert np.allclose(out[0], white, atol=1e-4)


def test_random_resized_crop_box_within_image_and_scale():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = random_resized_crop_box(64, 48, rng, (0.08, 1.0))
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 48


def test_train_transform_shape_and_flip_determinism():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8))
    t = TrainTransform(16, (0.5, 1.0), hflip=True)
    a = t(img, np.random.default_rng(7))
    b = t(img, np.random.default_rng(7))
    assert a.shape == (3, 16, 16)
    np.testing.assert_array_equal(a, b)
