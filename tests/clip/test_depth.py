"""Any-layer CLS capture, steering and continuation (vs2mini/clip/depth.py) on the small offline CLIP."""
from __future__ import annotations

import pytest
import torch

from vs2mini.clip import depth
from vs2mini.method import steer
from vs2mini.clip import models as vclip
from vs2mini.clip import toyclip
from vs2mini.clip.features import cls_to_logits, encode_images
from vs2mini.method.sae import TopKSAE

from saes import pm_identity_sae  # tests/ is on sys.path (conftest.py), as for datasets_fixtures


@pytest.fixture(scope="module")
def tiny():
    return vclip.load_clip(toyclip.TOY_MODEL, toyclip.TOY_TAG, "cpu")      # the toy CLIP: 2 blocks, d = 64


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def head(tiny):
    return vclip.zeroshot_head(tiny, ["red circle", "blue square", "green ring"])


def random_sae(d: int, seed: int = 0, centre: torch.Tensor | None = None) -> TopKSAE:
    sae = TopKSAE(d, 4 * d, 8, seed=seed)
    with torch.no_grad():
        if centre is not None:
            sae.b_pre.copy_(centre)
    return sae.eval().requires_grad_(False)


def exact_sae(d: int) -> TopKSAE:
    """n = 2d, W_enc = W_dec = [I; -I], k = 2d, zero biases: ReLU(x) - ReLU(-x) = x, an exact reconstruction."""
    return pm_identity_sae(d, 2 * d).eval().requires_grad_(False)


def test_unedited_tower_matches_encode_images(tiny, images):
    n = depth.n_layers(tiny)
    final, caps = depth.run_tower(tiny, images, capture=(n,))
    cls, _ = encode_images(tiny, images)
    torch.testing.assert_close(final, cls, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(caps[n], cls, atol=1e-5, rtol=1e-5)


def test_steering_the_last_layer_equals_the_final_layer_path(tiny, images, head):
    n = depth.n_layers(tiny)
    cls, _ = encode_images(tiny, images)
    sae = random_sae(cls.shape[1], centre=cls.mean(0))
    ref = cls_to_logits(tiny, steer.vs2(cls, sae, 2.0, 3.0), head)
    final, _ = depth.run_tower(tiny, images, {n: steer.vs2_edit(sae, 2.0, 3.0)})
    torch.testing.assert_close(cls_to_logits(tiny, final, head), ref, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(final, cls, atol=1e-3)          # the edit did something


def test_steering_an_earlier_layer_changes_later_cls_tokens(tiny, images):
    n = depth.n_layers(tiny)
    assert n >= 2
    layers = tuple(range(1, n + 1))
    _, plain = depth.run_tower(tiny, images, capture=layers)
    sae = random_sae(plain[1].shape[1], centre=plain[1].mean(0))
    _, edited = depth.run_tower(tiny, images, {1: steer.vs2_edit(sae, 2.0, 3.0)}, capture=layers)
    torch.testing.assert_close(edited[1], steer.vs2(plain[1], sae, 2.0, 3.0))    # the edited token itself
    for layer in layers[1:]:
        assert (edited[layer] - plain[layer]).norm(dim=-1).min() > 1e-4, layer   # every image moves downstream


def test_sae_a_rec_with_exact_saes_is_the_identity(tiny, images):
    n = depth.n_layers(tiny)
    plain, _ = depth.run_tower(tiny, images)
    d = plain.shape[1]
    sae = exact_sae(d)
    x = torch.randn(5, d)
    torch.testing.assert_close(steer.sae_reconstruction(x, sae), x)               # exact, one layer
    edits = {layer: steer.reconstruction_edit(sae) for layer in range(1, n + 1)}
    final, _ = depth.run_tower(tiny, images, edits)
    torch.testing.assert_close(final, plain, atol=1e-5, rtol=1e-5)
    # and a lossy SAE at every layer is not the identity (the test can fail)
    lossy = {layer: steer.reconstruction_edit(random_sae(d, seed=layer)) for layer in range(1, n + 1)}
    assert not torch.allclose(depth.run_tower(tiny, images, lossy)[0], plain, atol=1e-3)


def test_layer_names_are_checked_before_running(tiny, images):
    n = depth.n_layers(tiny)
    assert depth.block_index(n) == n - 1
    assert depth.check_layers(tiny, [n, 1, n]) == (1, n)
    for bad in (0, n + 1):
        with pytest.raises(ValueError, match=f"layers 1..{n}"):
            depth.run_tower(tiny, images, capture=(bad,))


def test_layer_features_and_edited_features_on_a_dataset(tiny):
    from vs2mini.data.registry import load_dataset
    ds = load_dataset("toy", "test", limit=12)
    n = depth.n_layers(tiny)
    feats = depth.layer_features(tiny, ds, [1, n], batch_size=5, progress=False)
    cls, _ = encode_images(tiny, ds.images)
    torch.testing.assert_close(feats[n], cls, atol=1e-5, rtol=1e-5)
    assert feats[1].shape == cls.shape and not torch.allclose(feats[1], cls)
    again = depth.layer_features(tiny, ds, [1, n], batch_size=5, progress=False)      # from the cache
    torch.testing.assert_close(again[1], feats[1])
    sae = exact_sae(cls.shape[1])
    torch.testing.assert_close(depth.edited_features(tiny, ds, {1: steer.reconstruction_edit(sae)}, batch_size=5),
                               cls, atol=1e-5, rtol=1e-5)
