"""open_clip loading, text heads, feature extraction and caching, and the pipeline set-up
(vs2mini/clip/models.py, features.py, pipeline.py; the device preprocessing: tests/clip/test_preprocess.py). Offline: the tiny random-weight `vs2mini-tiny`."""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU

from vs2mini.clip import features
from vs2mini.clip import models as vclip
from vs2mini.clip import toyclip
from vs2mini.data.registry import DATASETS, load_dataset
from vs2mini.pipeline import load_setup
from vs2mini.clip.preprocess import preprocess_batch, preprocess_config
from pixels import open_clip_eval_transforms, smooth_images  # tests/pixels.py

# Logit tolerance: logits are 100 * cosine; both sides run the same fp32 CPU ops, in a different grouping
# (ln_post/proj applied to a captured CLS token vs inside encode_image), so they agree to ~1e-5; we allow 1e-4.
LOGIT_ATOL = 1e-4


@pytest.fixture(scope="module")
def tiny():
    return vclip.load_clip(toyclip.TINY_MODEL, None, "cpu")


@pytest.fixture(scope="module")
def pil_transforms():
    return open_clip_eval_transforms()


# ---------------------------------------------------------------------------------------------- model loading
def test_load_tiny_clip(tiny):
    assert tiny.name == "vs2mini-tiny" and tiny.pretrained is None and tiny.real is False
    assert tiny.tag == "vs2mini-tiny/random-seed0"
    assert tiny.device == torch.device("cpu")
    assert not tiny.model.training
    assert not any(p.requires_grad for p in tiny.model.parameters())
    assert any(isinstance(m, QuickGELU) for m in tiny.model.modules())
    # random weights are seeded: a second load is the same model (cache and text head must agree)
    again = vclip.load_clip(toyclip.TINY_MODEL, None, "cpu")
    for (n1, p1), (_, p2) in zip(tiny.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(p1, p2), n1


def test_templates():
    t = vclip.CIFAR_TEMPLATES
    assert len(t) == 18 and len(set(t)) == 18
    assert all(s.count("{}") == 1 for s in t)
    assert "a photo of a {}." in t and "a photo of the big {}." in t and "a blurry photo of the {}." in t
    assert vclip.TEMPLATES["single"] == ("a photo of a {}.",)
    assert vclip.TEMPLATES["cifar18"] == t


def test_zeroshot_head_is_template_average(tiny):
    classes, templates = ["cat", "lawn mower"], ("a photo of a {}.", "a blurry photo of the {}.")
    head = vclip.zeroshot_head(tiny, classes, templates)
    rows = []
    with torch.no_grad():
        for c in classes:
            e = tiny.model.encode_text(tiny.tokenizer([t.format(c) for t in templates]))
            rows.append(F.normalize(F.normalize(e, dim=-1).mean(0), dim=-1))
    assert head.shape == (2, 64)
    assert torch.allclose(head, torch.stack(rows), atol=1e-6)
    assert torch.allclose(head.norm(dim=-1), torch.ones(2), atol=1e-6)
    # batching the prompts does not change the result
    assert torch.allclose(vclip.zeroshot_head(tiny, classes, templates, batch_size=1), head, atol=1e-6)
    # a single template: the normalised prompt embedding itself
    single = vclip.zeroshot_head(tiny, classes, "single")
    with torch.no_grad():
        want = F.normalize(tiny.model.encode_text(tiny.tokenizer(["a photo of a cat.", "a photo of a lawn mower."])),
                           dim=-1)
    assert torch.allclose(single, want, atol=1e-6)


def test_zeroshot_head_is_computed_once_per_class_and_template_set():
    clip = vclip.load_clip(toyclip.TINY_MODEL, None, "cpu")
    calls = []
    encode = clip.model.encode_text
    clip.model.encode_text = lambda tokens: calls.append(len(tokens)) or encode(tokens)
    classes, templates = ["cat", "dog"], ("a photo of a {}.", "a drawing of a {}.")
    first = vclip.zeroshot_head(clip, classes, templates)
    assert calls == [4]                                   # 2 classes x 2 templates, one batch
    first.zero_()                                         # a caller's in-place edit stays with the caller
    again = vclip.zeroshot_head(clip, classes, templates)
    assert calls == [4]                                   # from the memo: no prompt encoded again
    assert torch.allclose(again.norm(dim=-1), torch.ones(2), atol=1e-6)
    vclip.zeroshot_head(clip, classes, "single")          # another template set is its own head
    vclip.zeroshot_head(clip, ["cat"], templates)         # and so is another class list
    assert calls == [4, 2, 2]


def test_zeroshot_head_errors(tiny):
    with pytest.raises(ValueError, match="unknown template set 'imagenet80'"):
        vclip.zeroshot_head(tiny, ["cat"], "imagenet80")
    with pytest.raises(ValueError, match="at least one"):
        vclip.zeroshot_head(tiny, [], "single")


def test_quickgelu_mapping(pil_transforms):
    assert vclip.resolve_model_name("ViT-B-32", "openai") == "ViT-B-32-quickgelu"
    assert vclip.resolve_model_name("ViT-B-16", "openai") == "ViT-B-16-quickgelu"
    assert vclip.resolve_model_name("ViT-B-32", None) == "ViT-B-32"                  # no OpenAI weights: no change
    assert vclip.resolve_model_name("ViT-B-32", "laion2b_s34b_b79k") == "ViT-B-32"
    assert open_clip.get_model_config("ViT-B-32-quickgelu").get("quick_gelu") is True
    assert not open_clip.get_model_config("ViT-B-32").get("quick_gelu", False)
    model, _ = pil_transforms["ViT-B-32-quickgelu"]
    assert sum(isinstance(m, QuickGELU) for m in model.modules()) == 24              # 12 vision + 12 text blocks


def test_unknown_model_and_tag():
    with pytest.raises(ValueError, match=r"unknown open_clip model 'ViT-B-33'.*Close matches:.*ViT-B-32"):
        vclip.resolve_model_name("ViT-B-33", None)
    with pytest.raises(ValueError, match=r"unknown pretrained tag 'opnai'.*openai"):
        vclip.resolve_model_name("ViT-B-32", "opnai")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        vclip.load_clip("no-such-model", None, "cpu")


def test_weights_not_available_mentions_toy(monkeypatch):
    def fail(*a, **k):
        raise OSError("offline: cannot reach huggingface.co")
    monkeypatch.setattr(open_clip, "create_model", fail)
    with pytest.raises(vclip.WeightsNotAvailable, match="(?s)offline: cannot reach.*toy") as e:
        vclip.load_clip(toyclip.TINY_MODEL, None, "cpu")
    assert "--profile toy" in str(e.value)


# ------------------------------------------------------------------------------------------ CLS -> logits path
def test_cls_to_logits_matches_encode_image(tiny):
    images = smooth_images(6, 32, 32, seed=1)
    head = vclip.zeroshot_head(tiny, ["red", "green", "blue"], "single")
    cls, emb = features.encode_images(tiny, images, amp=False)
    assert cls.shape == (6, 64) and emb.shape == (6, 64)
    with torch.no_grad():
        direct = tiny.model.encode_image(preprocess_batch(images, preprocess_config(tiny.model)))
    want = 100 * F.normalize(direct, dim=-1) @ head.T
    assert torch.allclose(emb, direct, atol=1e-5)
    assert torch.allclose(features.cls_to_logits(tiny, cls, head), want, atol=LOGIT_ATOL)
    assert torch.allclose(features.cls_to_logits(tiny, cls, head, chunk=4), want, atol=LOGIT_ATOL)
    assert torch.allclose(features.embedding_logits(emb, head), want, atol=LOGIT_ATOL)
    assert torch.allclose(features.cls_to_embedding(tiny, cls), F.normalize(direct, dim=-1), atol=1e-5)
    # the CLS token is the pre-ln_post token 0, not the embedding
    assert not torch.allclose(cls[:, :emb.shape[1]], emb, atol=1e-2)


def test_cls_to_embedding_rejects_wrong_shapes(tiny):
    for bad in (torch.zeros(3, 63), torch.zeros(64), torch.zeros(2, 3, 64)):
        with pytest.raises(ValueError, match=r"\(N, 64\)"):
            features.cls_to_embedding(tiny, bad)


# ------------------------------------------------------------------------------------------------ feature cache
def test_cached_features_round_trip(tiny, tmp_path, monkeypatch):
    calls = []
    original = features.extract_features

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(features, "extract_features", counting)
    ds = load_dataset("toy", "test", limit=24)
    first = features.cached_features(tiny, ds, batch_size=10, progress=False, root=tmp_path)
    assert len(calls) == 1
    assert len(list(tmp_path.glob("*.pt"))) == 1
    second = features.cached_features(tiny, ds, batch_size=10, progress=False, root=tmp_path)
    assert len(calls) == 1                                           # loaded, not re-encoded
    for name in ("cls", "emb", "labels"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert first.cls.shape == (24, 64) and first.emb.shape == (24, 64)
    assert torch.equal(first.labels, ds.labels)
    direct = original(tiny, ds, batch_size=24, progress=False)
    assert torch.allclose(direct.cls, first.cls, atol=1e-5) and torch.allclose(direct.emb, first.emb, atol=1e-5)
    # a different dataset (other split) gets its own entry
    features.cached_features(tiny, load_dataset("toy", "train", limit=8), progress=False, root=tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.glob("*.pt"))) == 2


def test_cached_features_default_root_is_env(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("VS2MINI_CACHE", str(tmp_path / "envcache"))
    features.cached_features(tiny, load_dataset("toy", "test", limit=4), progress=False)
    assert len(list((tmp_path / "envcache").glob("*.pt"))) == 1


# ----------------------------------------------------------------------------------------------------- pipeline
def test_load_setup_toy(toy_setup):
    s = toy_setup
    assert s.real is False
    assert "NOT A REAL RESULT" in s.banner and "toy CLIP" in s.banner
    assert s.dataset == "toy" and len(s.classnames) == 24
    assert s.train.cls.shape == (12000, 64) and s.test.cls.shape == (2400, 64)
    assert s.head.shape == (24, 64)
    logits = s.logits(s.test.cls)
    assert logits.shape == (2400, 24)
    assert torch.allclose(logits, features.embedding_logits(s.test.emb, s.head), atol=LOGIT_ATOL)
    assert s.accuracy(s.test.cls) == pytest.approx(
        100 * (logits.argmax(-1) == s.test.labels).float().mean().item())


def test_load_setup_errors():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'.*cifar100"):
        load_setup("toy", "imagenet", progress=False)
    with pytest.raises(ValueError, match=r"unknown profile 'huge'.*toy"):
        load_setup("huge", progress=False)
    assert "toy" in DATASETS
