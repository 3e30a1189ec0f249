"""What the thread count may change (README, "Threads and reproducibility"), tested with 1 vs 2 threads on small
inputs; and the limit on generated toy-world sizes, checked before anything is allocated."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vs2mini.clip import pretrain
from vs2mini.clip.features import extract_features
from vs2mini.clip.models import load_clip
from vs2mini.data import toyworld
from vs2mini.data.registry import load_dataset
from vs2mini.method.train import train_sae


@pytest.fixture
def threads():
    """Run a function under 1 and then 2 torch threads; the caller's count is restored."""
    before = torch.get_num_threads()

    def run(fn):
        out = []
        for t in (1, 2):
            torch.set_num_threads(t)
            out.append(fn())
        return out
    yield run
    torch.set_num_threads(before)


def test_toy_world_is_bitwise_stable(threads):
    a, b = threads(lambda: toyworld.render("shifted", "test", 300, seed=3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_pretraining_is_bitwise_stable_and_restores_the_thread_count(threads):
    cfg = pretrain.PretrainConfig(steps=2, batch_size=32, n_train=96, warmup=1)

    def run():
        t = torch.get_num_threads()
        model, _ = pretrain.pretrain_toy_clip(cfg, progress=False)
        assert torch.get_num_threads() == t
        return model.state_dict()
    s1, s2 = threads(run)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_features_and_sae_agree_to_rounding_and_top1_to_one_image(threads):
    """Features and SAE training may differ in the last bits across thread counts (the BLAS splits sums
    differently); the accuracies they give then differ by at most a test image or two."""
    clip = load_clip("vs2mini-toyclip", "toy", "cpu")
    ds = load_dataset("toy", "test", limit=240)

    def run():
        f = extract_features(clip, ds, batch_size=64, num_workers=0, progress=False)
        sae, _ = train_sae(f.cls, expansion=4, k=8, epochs=2, min_steps=10, batch_size=64, progress=False)
        return f, sae
    (f1, s1), (f2, s2) = threads(run)
    torch.testing.assert_close(f1.cls, f2.cls, rtol=1e-4, atol=1e-5)
    for k, v in s1.state_dict().items():
        torch.testing.assert_close(v, s2.state_dict()[k], rtol=1e-3, atol=1e-4)
    from vs2mini.clip.features import cls_to_logits
    from vs2mini.clip.models import zeroshot_head
    from vs2mini.method import steer
    head = zeroshot_head(clip, ds.classnames)
    acc = [100.0 * (cls_to_logits(clip, steer.vs2(f.cls, s, 1.5, 2.1), head).argmax(-1) == ds.labels).float().mean()
           for f, s in ((f1, s1), (f2, s2))]
    assert abs(acc[0] - acc[1]) <= 2 * 100.0 / len(ds) + 1e-6


@pytest.mark.parametrize("n", [10**8, toyworld.MAX_IMAGES + 1])
def test_absurd_toy_sizes_are_refused_up_front(n):
    with pytest.raises(ValueError, match=f"n = {n} toy images is above the limit"):
        toyworld.render("base", "train", n)


@pytest.mark.parametrize("n", [2.5, "100", True, -1])
def test_toy_sizes_must_be_whole_numbers(n):
    with pytest.raises(ValueError, match="n must be"):
        toyworld.render("base", "train", n)


def test_profile_sizes_reach_the_same_limit():
    with pytest.raises(ValueError, match="above the limit"):
        load_dataset("toy", "train", limit=10**9)
