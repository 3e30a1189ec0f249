"""Contrastive pretraining of the toy CLIP `vs2mini-toyclip` on the toy world's images and captions.

The offline world needs a CLIP whose CLS token carries class information, or steering has nothing to act on. This
module trains one, the way CLIP was trained (InfoNCE between image and caption embeddings, learnable temperature),
on `toyworld.render("base", "train")`. The model is an ordinary open_clip `CLIP` built from
`model_configs/vs2mini-toyclip.json` (2-layer, 64-wide ViT on 32-px images, patch 8; 2-layer, 64-wide text
transformer), so features, the CLS path and the text head are the same code as for OpenAI CLIP.

Choices (ours; the paper uses OpenAI's CLIP and pretrains nothing):
- Many captions repeat ("a photo of a red circle."), so the loss is InfoNCE over the batch's *distinct* captions:
  image -> text is cross-entropy over the distinct captions (exactly one is right), text -> image averages the
  log-softmax over the images that carry that caption. Identical captions are thus never false negatives.
- Rows of the 49,408-token embedding that no caption or prompt uses start at zero and, never looked up, stay
  zero (their gradient is zero, so Adam and weight decay leave them at zero). Only the used rows are stored,
  which keeps the shipped file near 1 MB.
- Deterministic: fixed seeds, one intra-op thread during training (`torch.set_num_threads(1)`); the same code,
  torch version and CPU give a bit-identical file. Another torch version or CPU may differ in the last bits;
  a rebuild is then a new file with its own checksum (recorded beside it): `pretrain-toy` writes to
  runs/toy_clip/ (never into the package), and $VS2MINI_TOY_WEIGHTS selects it. The shipped file is checked
  against TOY_WEIGHTS_SHA256 in vs2mini/clip/toyclip.py, a rebuilt one against its sidecar record.

    model, history = pretrain_toy_clip()              # about 2 minutes on one CPU core
    save_toy_weights(model, history["config"], DEFAULT_OUT)   # runs/toy_clip/vs2mini-toyclip.safetensors + .json
                                                      # (save_toy_weights, DEFAULT_OUT: vs2mini.clip.toyclip)
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data import toyworld
from .preprocess import preprocess_batch, preprocess_config
from .toyclip import build_model

ZERO_SHOT_PROMPT = "a photo of a {}."


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of the shipped toy CLIP (`python -m vs2mini pretrain-toy` rebuilds it from these)."""
    steps: int = 400
    batch_size: int = 256
    lr: float = 2e-3
    warmup: int = 20                # linear warm-up steps, then cosine decay to 0
    weight_decay: float = 0.05      # AdamW, on matrices only (not biases, norms, embeddings)
    n_train: int = toyworld.SPLIT_SIZE["train"]
    seed: int = 0                   # model init and batch order
    data_seed: int = 0              # toy world seed


class CompactEmbedding(torch.nn.Module):
    """Drop-in for `nn.Embedding(vocab, w)` that only holds the rows in `ids`: tokens are mapped to compact
    indices first. Same forward as the full embedding restricted to those tokens; used while training so the
    optimiser state is (U, w) instead of (49408, w)."""

    def __init__(self, weight: torch.Tensor, ids: torch.Tensor):
        super().__init__()
        self.register_buffer("remap", torch.full((weight.shape[0],), -1, dtype=torch.long))
        self.remap[ids] = torch.arange(len(ids))
        self.ids = ids
        self.weight = torch.nn.Parameter(weight[ids].clone())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        idx = self.remap[tokens]
        if (idx < 0).any():
            raise ValueError("a token outside the compact vocabulary")
        return F.embedding(idx, self.weight)


def vocabulary(tokenizer, texts: list[str]) -> torch.Tensor:
    """Sorted token ids (U,) used by `texts`, by the zero-shot prompts of every class, and padding/SOT/EOT."""
    prompts = [ZERO_SHOT_PROMPT.format(c) for c in toyworld.CLASSNAMES]
    return torch.unique(torch.cat([tokenizer(list(set(texts)) + prompts).flatten(), torch.tensor([0])]))


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, caption_of: torch.Tensor, scale: torch.Tensor
                     ) -> torch.Tensor:
    """InfoNCE over distinct captions. img: (B, D), txt: (U, D) unit-norm; caption_of: (B,) index into txt."""
    logits = scale * img @ txt.T                                             # (B, U)
    i2t = F.cross_entropy(logits, caption_of)
    pos = F.one_hot(caption_of, txt.shape[0]).T.float()                    # (U, B)
    t2i = -(pos * logits.T.log_softmax(-1)).sum(-1) / pos.sum(-1)
    return (i2t + t2i.mean()) / 2


def pretrain_toy_clip(config: PretrainConfig = PretrainConfig(), progress: bool = True):
    """Train `vs2mini-toyclip` on the toy train split. Returns (model in eval mode, history dict)."""
    images, _, captions = toyworld.render("base", "train", config.n_train, seed=config.data_seed)
    model, tokenizer = build_model(config.seed)
    uniq, caption_id = np.unique(np.array(captions), return_inverse=True)
    tokens = tokenizer(list(uniq))                                          # (U_all, L)
    caption_id = torch.from_numpy(caption_id.reshape(-1))
    ids = vocabulary(tokenizer, captions)
    with torch.no_grad():                                                   # unused rows: zero, forever
        keep = torch.zeros(model.token_embedding.weight.shape[0], dtype=torch.bool)
        keep[ids] = True
        model.token_embedding.weight[~keep] = 0
    full_embedding = model.token_embedding
    model.token_embedding = CompactEmbedding(full_embedding.weight.data, ids)
    cfg = preprocess_config(model)
    x_all = torch.from_numpy(images)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / config.warmup, 0.5 * (
        1 + math.cos(math.pi * min(1.0, (s - config.warmup) / max(1, config.steps - config.warmup))))))
    gen = torch.Generator().manual_seed(config.seed)
    hist = {"loss": [], "config": asdict(config)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                               # bit-exact rebuilds (see module doc)
    t0 = time.perf_counter()
    try:
        model.train()
        perm, pos = torch.randperm(len(x_all), generator=gen), 0
        for _ in tqdm(range(config.steps), disable=not progress, desc="pretrain toy CLIP"):
            if pos + config.batch_size > len(perm):
                perm, pos = torch.randperm(len(x_all), generator=gen), 0
            b = perm[pos:pos + config.batch_size]
            pos += config.batch_size
            ucap, cap_of = torch.unique(caption_id[b], return_inverse=True)
            img = F.normalize(model.encode_image(preprocess_batch(x_all[b], cfg)), dim=-1)
            txt = F.normalize(model.encode_text(tokens[ucap]), dim=-1)
            loss = contrastive_loss(img, txt, cap_of, model.logit_scale.exp())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))                  # as open_clip's training does
            hist["loss"].append(loss.item())
    finally:
        torch.set_num_threads(threads)
    hist["seconds"] = time.perf_counter() - t0
    with torch.no_grad():                                                   # put the trained rows back
        full_embedding.weight[ids] = model.token_embedding.weight
    model.token_embedding = full_embedding
    return model.eval().requires_grad_(False), hist


@torch.no_grad()
def zero_shot_accuracy(model, tokenizer, domain: str = "base", split: str = "test", n: int | None = None,
                       seed: int = 0) -> float:
    """Top-1 (%) of `model` on toy images with the "a photo of a {}." head (a quick check; the pipeline's
    `Setup.accuracy` is the reference path)."""
    images, labels, _ = toyworld.render(domain, split, n, seed=seed)
    head = F.normalize(model.encode_text(tokenizer([ZERO_SHOT_PROMPT.format(c) for c in toyworld.CLASSNAMES])),
                       dim=-1)
    cfg = preprocess_config(model)
    x = torch.from_numpy(images)
    pred = torch.cat([(model.encode_image(preprocess_batch(x[i:i + 512], cfg)) @ head.T).argmax(-1)
                      for i in range(0, len(x), 512)])
    return 100.0 * (pred == torch.from_numpy(labels)).float().mean().item()
