"""The toy world's resolution-shift domains (`toy-16px`, `toy-12px`, `toy-8px`): sizes, determinism, the area filter
against a hand computation, and that the upsampling back to 32 px happens in the model's preprocessing."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vs2mini import toyworld as tw
from vs2mini.data import DATASETS, EVAL_SPLIT, TOY_DATASETS, classnames, load_dataset, superclasses
from vs2mini.preprocess import PreprocessConfig, preprocess_batch


def test_rules_are_stated():
    assert tw.RESOLUTIONS == (16, 12, 8) and tw.SIZE == 32
    # the main thread: the nearest grid size to the paper's 32/224 ratio applied to the toy pretraining size
    assert tw.MAIN_RESOLUTION == min(tw.RESOLUTIONS, key=lambda r: abs(r - tw.SIZE * tw.PAPER_SIZE_RATIO))
    assert [tw.resolution_dataset(p) for p in (32, 16, 12, 8)] == ["toy", "toy-16px", "toy-12px", "toy-8px"]
    with pytest.raises(ValueError, match="no toy domain at 10 px"):
        tw.resolution_dataset(10)


def test_area_weights_by_hand():
    # 3 -> 2 pixels: output 0 covers [0, 1.5): all of pixel 0, half of pixel 1; output 1: half of 1, all of 2
    np.testing.assert_allclose(tw.area_weights(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(tw.area_weights(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(tw.area_weights(32, 12).sum(1), 1.0)
    with pytest.raises(ValueError):
        tw.area_weights(4, 5)


def test_downsample_is_the_area_average_by_hand():
    img = np.zeros((1, 3, 3, 3), np.uint8)
    img[0, 0] = [[0, 30, 90], [60, 120, 150], [210, 240, 255]]
    out = tw.downsample(img, 2)
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.uint8
    # output (0, 0) covers rows [0, 1.5) x cols [0, 1.5): weights (1, .5) x (1, .5) / 2.25
    w = np.array([1.0, 0.5])
    want00 = (w[:, None] * w[None, :] * np.array([[0, 30], [60, 120]])).sum() / 2.25
    want11 = (w[::-1, None] * w[None, ::-1] * np.array([[120, 150], [240, 255]])).sum() / 2.25
    assert out[0, 0, 0, 0] == np.rint(want00) and out[0, 0, 1, 1] == np.rint(want11)
    assert (out[0, 1:] == 0).all()
    # integer factor: a plain 2x2 block mean of the 32-px render
    im32, _, _ = tw.render("base", "test", 4)
    blocks = im32.astype(np.float64).reshape(4, 3, 16, 2, 16, 2).mean((3, 5))
    np.testing.assert_array_equal(tw.downsample(im32, 16), np.clip(np.rint(blocks), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("px", tw.RESOLUTIONS)
def test_resolution_datasets(px):
    name = f"toy-{px}px"
    assert name in DATASETS and name in TOY_DATASETS and EVAL_SPLIT[name] == "test"
    te = load_dataset(name, "test", limit=48)
    tr = load_dataset(name, "train", limit=48)
    assert te.images.shape == (48, 3, px, px) and te.images.dtype == torch.uint8 and te.image_size == px
    assert te.synthetic and te.name == name and classnames(name) == tw.CLASSNAMES == te.classnames
    assert torch.equal(superclasses(name), superclasses("toy"))
    base = load_dataset("toy", "test", limit=48)
    assert torch.equal(te.labels, base.labels)                             # the same scenes as the 32-px domain
    assert torch.equal(te.images, torch.from_numpy(tw.downsample(base.images.numpy(), px)))
    again = load_dataset(name, "test", limit=48)
    assert torch.equal(again.images, te.images)                            # deterministic
    assert not torch.equal(tr.images, te.images)                           # its own train split
    assert te.fingerprint() != base.fingerprint() != tr.fingerprint()      # a new feature-cache key


def test_upsampling_happens_in_the_model_preprocessing():
    cfg = PreprocessConfig(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    small = load_dataset("toy-8px", "test", limit=4).images
    x = preprocess_batch(small, cfg)
    assert x.shape == (4, 3, 32, 32)
    up = F.interpolate(small.float(), size=(32, 32), mode="bicubic", antialias=True, align_corners=False)
    want = (up.round().clamp(0, 255) / 255 - 0.5) / 0.25
    torch.testing.assert_close(x, want)
