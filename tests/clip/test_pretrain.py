"""Contrastive pretraining of the toy CLIP (vs2mini/clip/pretrain.py): the loss by hand, the compact embedding,
determinism, and the stopping rule on hand-made held-out curves (it fires exactly where the rule says)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from vs2mini import disk
from vs2mini.clip import pretrain
from vs2mini.clip import toyclip
from vs2mini.data import toyworld as tw


def first_stop(curve, **kw):
    """The first evaluation step at which the rule fires on a growing prefix of curve [(step, loss), ...]."""
    return next((curve[i][0] for i in range(len(curve)) if pretrain.should_stop(curve[:i + 1], **kw)), None)


def test_stopping_rule_fires_where_the_rule_says_on_a_hand_made_curve():
    # evaluations every 50 steps; the loss falls by 10 % per evaluation up to step 500, then stays flat.
    # At t: s = the last evaluation <= 0.8 t. t = 600: s = 450 and B(450) = B(500) / 0.9, 10 % better: go on.
    # t = 650: s = 500 (<= 520) and B(650) = B(500): no improvement over the window -> the first stop is 650.
    curve = [(t, 4.0 * 0.9 ** min(t // 50, 10)) for t in range(0, 1001, 50)]
    assert first_stop(curve) == 650
    # the same curve with min_steps 700: nothing may stop before 700, and at 700 (s = 550) it has not improved
    assert first_stop(curve, min_steps=700) == 700
    # a curve that improves by 2 % per evaluation for ever never stops (2 % > 1 % over any window)
    assert first_stop([(t, 0.98 ** (t // 50)) for t in range(0, 2001, 50)]) is None


def test_stopping_rule_boundaries():
    # window 0.5 keeps s exact: at t = 400, s = 200, and an evaluation at exactly 200 counts (s <= (1 - window) t)
    assert pretrain.should_stop([(0, 8.0), (200, 4.0), (400, 3.5)], window=0.5, rel=0.25, min_steps=0)  # 12.5 %
    # an improvement of exactly rel does not stop (strict <): 4 -> 3 is 25 %
    assert not pretrain.should_stop([(0, 8.0), (200, 4.0), (400, 3.0)], window=0.5, rel=0.25, min_steps=0)
    # min_steps: the same flat curve stops at t = min_steps, not one evaluation earlier
    flat = [(0, 2.0), (100, 2.0), (200, 2.0), (300, 2.0)]
    assert pretrain.should_stop(flat, min_steps=300) and not pretrain.should_stop(flat[:3], min_steps=300)
    # no evaluation old enough to compare with: go on
    assert not pretrain.should_stop([(300, 2.0)], min_steps=0)


def test_contrastive_loss_hand_computed():
    eye = torch.eye(2)
    one = torch.tensor(1.0)
    # two images, two distinct captions, perfectly matched: both directions give log(1 + e^-1)
    loss = pretrain.contrastive_loss(eye, eye, torch.tensor([0, 1]), one)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # two images with the same caption: one text, so image->text is certain (0) and text->image is log 2
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = pretrain.contrastive_loss(img, torch.tensor([[0.6, 0.8]]), torch.tensor([0, 0]), one)
    assert loss.item() == pytest.approx(math.log(2) / 2, abs=1e-6)


def test_compact_embedding_matches_full():
    w = torch.randn(50, 4)
    ids = torch.tensor([0, 3, 7, 49])
    emb = pretrain.CompactEmbedding(w, ids)
    tokens = torch.tensor([[3, 7, 0], [49, 49, 3]])
    assert torch.equal(emb(tokens), torch.nn.functional.embedding(tokens, w))
    with pytest.raises(ValueError, match="outside"):
        emb(torch.tensor([[5]]))


def test_pretraining_is_deterministic_and_keeps_unused_rows_zero(tmp_path):
    cfg = pretrain.PretrainConfig(steps=3, batch_size=32, n_train=96, warmup=2)
    m1, h1 = pretrain.pretrain_toy_clip(cfg, progress=False)
    m2, h2 = pretrain.pretrain_toy_clip(cfg, progress=False)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1) and h1["loss"] == h2["loss"]
    # the stopping rule's held-out loss: at step 0 and at the cap (every 50 steps), identical across runs
    assert [s for s, _ in h1["heldout"]] == [0, 3] and h1["heldout"] == h2["heldout"] and h1["steps"] == 3
    fresh = toyclip.build_model(cfg.seed)[0].state_dict()
    assert not torch.equal(s1["visual.conv1.weight"], fresh["visual.conv1.weight"])      # it did train
    used = (s1["token_embedding.weight"] != 0).any(-1).nonzero().flatten()
    _, tok = toyclip.build_model()
    captions = tw.render("base", "train", 96)[2]
    assert torch.equal(used, pretrain.vocabulary(tok, captions))
    r1 = toyclip.save_toy_weights(m1, h1["config"], tmp_path / "a.safetensors")
    r2 = toyclip.save_toy_weights(m2, h2["config"], tmp_path / "b.safetensors")
    assert r1["sha256"] == r2["sha256"] == disk.sha256_file(tmp_path / "a.safetensors")
    assert json.loads((tmp_path / "a.json").read_text())["sha256"] == r1["sha256"]
    m3, _ = toyclip.build_model(5)                                       # round trip through the file
    assert toyclip.load_toy_weights(m3, tmp_path / "a.safetensors") == r1["sha256"]
    assert all(torch.equal(v, m3.state_dict()[k]) for k, v in s1.items())


def test_stopping_rule_by_hand():
    stop = pretrain.should_stop
    assert pretrain.STOP_WINDOW == 0.2 and pretrain.STOP_REL_IMPROVEMENT == 0.01
    ev = [(0, 5.0), (100, 3.0), (200, 2.0), (300, 1.99), (400, 1.985)]
    # t = 400: s = 300 (<= 320); best up to 300 is 1.99, best up to 400 is 1.985: 0.25 % < 1 % -> stop
    assert stop(ev) and not stop(ev[:4], min_steps=400)
    # t = 300: s = 200 (<= 240): 2.0 -> 1.99 is 0.5 % -> stop; but t = 200 < MIN_STEPS
    assert stop(ev[:4]) and not stop(ev[:3])
    # one uptick cannot stop a run that improved before it: best-so-far, not the last value
    assert not stop([(0, 5.0), (300, 3.0), (350, 2.9), (400, 3.2)], min_steps=300)   # best 3.0 -> 2.9: 3 %
    assert stop([(0, 5.0), (300, 3.0), (400, 3.1)], min_steps=300)                    # no progress
    assert not stop([])


def test_pretraining_stops_where_the_rule_says(monkeypatch):
    monkeypatch.setattr(pretrain, "should_stop", lambda evals: evals[-1][0] >= 2)
    cfg = pretrain.PretrainConfig(steps=5, batch_size=32, n_train=96, warmup=2, heldout_every=1)
    _, hist = pretrain.pretrain_toy_clip(cfg, progress=False)
    assert hist["steps"] == len(hist["loss"]) == 2 and [s for s, _ in hist["heldout"]] == [0, 1, 2]


def test_toy_clip_zero_shot_above_floor(toy_setup):
    s = toy_setup
    assert s.clip.name == "vs2mini-toyclip" and s.clip.pretrained == "toy" and not s.clip.real and not s.real
    assert len(s.train.labels) == tw.SPLIT_SIZE["train"] and len(s.test.labels) == tw.SPLIT_SIZE["test"]
    assert s.train.cls.shape[1] == 64
    acc = s.accuracy(s.test.cls)
    assert acc > 40.0, acc                                   # chance is 100 / 24 = 4.2 %
    # the quick check in pretrain agrees with the pipeline path on a fixed subset (first 240 test images)
    sub = pretrain.zero_shot_accuracy(s.clip.model, s.clip.tokenizer, "base", "test", n=240)
    assert sub == pytest.approx(s.accuracy(s.test.cls[:240], s.test.labels[:240]), abs=1e-6)
