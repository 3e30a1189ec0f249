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
  the loader then still works (it checks the file against its recorded SHA-256, not against a rebuild).

    model, history = pretrain_toy_clip()              # under 3 CPU-minutes on one core (see the stopping rule)
    save_toy_weights(model, history["config"])        # vs2mini/toy_weights/vs2mini-toyclip.safetensors + .json
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import toyworld
from .preprocess import preprocess_batch, preprocess_config

TOY_MODEL = "vs2mini-toyclip"
TOY_TAG = "toy"
WEIGHTS_DIR = Path(__file__).parent / "toy_weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.safetensors"
META_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.json"
TOKEN_KEY = "token_embedding.weight"
ZERO_SHOT_PROMPT = "a photo of a {}."


# ---- The stopping rule (fixed before any steering result of the pretrained model was looked at).
# The first shipped toy CLIP stopped at a fixed 400 steps, still far from converged (contrastive loss 2.70 where
# 1,000 steps reach 2.02), so every steering result sat on an undertrained backbone. The paper steers a converged
# CLIP; so we pretrain until the loss stops improving, by this rule, deterministic (a function of the step count
# and the held-out losses only; no wall clock):
# - every HELDOUT_EVERY steps (and at step 0) evaluate the contrastive loss (`contrastive_loss`, the training loss)
#   on a fixed held-out set: HELDOUT_SIZE toy train-split images that pretraining never sees (indices 12,000 to
#   12,999 of the "base" train split; training uses indices 0 to 11,999, the test split is never touched), in
#   fixed batches of HELDOUT_BATCH, in eval mode;
# - at an evaluation step t >= MIN_STEPS, let s be the last evaluation step <= 0.8 t (the last 20 % of the steps so
#   far) and B(t) the best (lowest) held-out loss of the evaluations up to t; stop when the best loss improved by
#   less than STOP_REL_IMPROVEMENT (1 %) over the window: B(s) - B(t) < 0.01 B(s);
#   (revision, made on the pretraining curve alone, before any steering result: the first version of this rule
#   compared single evaluations, L(s) - L(t), and fired at step 500 on a held-out uptick of 0.01 while the learning
#   rate was still at 90 % of its peak and the held-out loss, 2.86, still fell by about 1 % per 100 steps; the best
#   loss so far cannot be stopped by one uptick);
# - otherwise stop at the cap `steps` (the cosine learning-rate schedule runs over the cap), chosen so that a run
#   stays within 3 CPU-minutes on one core (1,000 steps measured 151 s of CPU time; 1,100 steps plus 23 held-out
#   evaluations of 1,000 images stay under 180 s).
# The model returned is the one at the step where the rule stopped (no best-checkpoint selection).
HELDOUT_EVERY = 50
HELDOUT_SIZE = 1_000
HELDOUT_BATCH = 250
MIN_STEPS = 300
STOP_WINDOW = 0.2
STOP_REL_IMPROVEMENT = 0.01


def should_stop(evals: list[tuple[int, float]], window: float = STOP_WINDOW, rel: float = STOP_REL_IMPROVEMENT,
                min_steps: int = MIN_STEPS) -> bool:
    """The stopping rule on the held-out losses so far, evals = [(step, loss), ...] in step order: True when the
    last step t >= min_steps and B(s) - B(t) < rel * B(s), s the last evaluated step <= (1 - window) t and B(u) the
    lowest loss of the evaluations at steps <= u."""
    if not evals:
        return False
    t = evals[-1][0]
    if t < min_steps:
        return False
    earlier = [ls for s, ls in evals if s <= (1 - window) * t]
    if not earlier:
        return False
    best_s, best_t = min(earlier), min(ls for _, ls in evals)
    return best_s - best_t < rel * best_s


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of the shipped toy CLIP (`python -m vs2mini pretrain-toy` rebuilds it from these). `steps` is the
    cap; `early_stop` applies the stopping rule above (off: exactly `steps` steps, for short test runs)."""
    steps: int = 1100
    batch_size: int = 256
    lr: float = 2e-3
    warmup: int = 20                # linear warm-up steps, then cosine decay to 0
    weight_decay: float = 0.05      # AdamW, on matrices only (not biases, norms, embeddings)
    n_train: int = toyworld.SPLIT_SIZE["train"]
    seed: int = 0                   # model init and batch order
    data_seed: int = 0              # toy world seed
    early_stop: bool = True         # the stopping rule (module constants); False: run `steps` steps
    heldout_every: int = HELDOUT_EVERY


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


def build_model(seed: int = 0):
    """A freshly initialised open_clip `vs2mini-toyclip` (fixed seed) and its tokenizer."""
    import open_clip
    from .clip import register_local_configs
    register_local_configs()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)          # open_clip warns "initialized randomly"; that is the point here
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(TOY_MODEL, pretrained=None)
    finally:
        logging.disable(previous)
    return model, open_clip.get_tokenizer(TOY_MODEL)


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
    hist = {"loss": [], "heldout": [], "config": asdict(config)}
    held = heldout_set(tokenizer, config) if config.early_stop else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                               # bit-exact rebuilds (see module doc)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        model.train()
        perm, pos = torch.randperm(len(x_all), generator=gen), 0
        for step in tqdm(range(config.steps), disable=not progress, desc="pretrain toy CLIP"):
            if held is not None and step % config.heldout_every == 0:
                hist["heldout"].append((step, heldout_loss(model, held, cfg)))
                if should_stop(hist["heldout"]):
                    break
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
        else:
            if held is not None:                                             # the loss at the cap, for the record
                hist["heldout"].append((config.steps, heldout_loss(model, held, cfg)))
    finally:
        torch.set_num_threads(threads)
    hist["seconds"] = time.perf_counter() - t0
    hist["cpu_seconds"] = time.process_time() - c0
    hist["steps"] = len(hist["loss"])
    with torch.no_grad():                                                   # put the trained rows back
        full_embedding.weight[ids] = model.token_embedding.weight
    model.token_embedding = full_embedding
    return model.eval().requires_grad_(False), hist


def heldout_set(tokenizer, config: PretrainConfig) -> dict:
    """The stopping rule's fixed held-out set: images n_train .. n_train + HELDOUT_SIZE - 1 of the toy "base" train
    split (never trained on), their caption tokens and caption ids per fixed batch of HELDOUT_BATCH."""
    images, _, captions = toyworld.render("base", "train", config.n_train + HELDOUT_SIZE, seed=config.data_seed)
    images, captions = images[config.n_train:], captions[config.n_train:]
    batches = []
    for s in range(0, HELDOUT_SIZE, HELDOUT_BATCH):
        uniq, cap_of = np.unique(np.array(captions[s:s + HELDOUT_BATCH]), return_inverse=True)
        batches.append((torch.from_numpy(images[s:s + HELDOUT_BATCH]), tokenizer(list(uniq)),
                        torch.from_numpy(cap_of.reshape(-1))))
    return {"batches": batches}


@torch.no_grad()
def heldout_loss(model, held: dict, cfg) -> float:
    """Mean contrastive loss (`contrastive_loss`) over the held-out batches, in eval mode (training mode is
    restored)."""
    was = model.training
    model.eval()
    try:
        losses = []
        for x, tok, cap_of in held["batches"]:
            img = F.normalize(model.encode_image(preprocess_batch(x, cfg)), dim=-1)
            txt = F.normalize(model.encode_text(tok), dim=-1)
            losses.append(contrastive_loss(img, txt, cap_of, model.logit_scale.exp()).item())
    finally:
        model.train(was)
    return float(np.mean(losses))


def _state_for_file(model) -> dict[str, torch.Tensor]:
    """The state dict with the token embedding stored as (ids, rows) of its non-zero rows."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    emb = state.pop(TOKEN_KEY)
    ids = (emb != 0).any(-1).nonzero().flatten()
    state["token_embedding.ids"] = ids
    state["token_embedding.rows"] = emb[ids].contiguous()
    return state


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_toy_weights(model, config: dict, path: Path = WEIGHTS_FILE, extra: dict | None = None) -> dict:
    """Write the weights (safetensors) and, beside them, `<name>.json` with their SHA-256 and the pretraining
    config; both atomically. Returns the JSON record."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    # one metadata key: safetensors keeps metadata in a hash map, so several keys come out in a random order
    save_file(_state_for_file(model), str(tmp),
              metadata={"vs2mini": json.dumps({"model": TOY_MODEL, "config": config}, sort_keys=True)})
    record = {"model": TOY_MODEL, "file": path.name, "sha256": sha256_file(tmp), "config": config, **(extra or {})}
    meta = path.with_suffix(".json")
    tmp_meta = meta.with_name(f"{meta.name}.tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(record, indent=2) + "\n")
    os.chmod(tmp, 0o644)                                  # safetensors writes 0600; the file is package data
    os.replace(tmp, path)
    os.replace(tmp_meta, meta)
    return record


class ToyWeightsError(RuntimeError):
    """The shipped toy weights are missing or do not match their recorded checksum."""


def load_toy_weights(model, path: Path = WEIGHTS_FILE) -> str:
    """Load the toy weights into an open_clip `vs2mini-toyclip` model after checking the file's SHA-256 against
    the record beside it. Returns the checksum."""
    from safetensors.torch import load_file
    path, meta = Path(path), Path(path).with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        raise ToyWeightsError(f"toy CLIP weights not found: {path} and {meta} are both needed. Rebuild them with "
                              f"`python -m vs2mini pretrain-toy --out {path}` (about 2 minutes on a CPU).")
    want, got = json.loads(meta.read_text())["sha256"], sha256_file(path)
    if got != want:
        raise ToyWeightsError(f"{path}: SHA-256 {got[:12]}... differs from {want[:12]}... recorded in {meta}; the "
                              f"file is damaged or stale. Rebuild with `python -m vs2mini pretrain-toy --out {path}`.")
    state = load_file(str(path))
    ids, rows = state.pop("token_embedding.ids"), state.pop("token_embedding.rows")
    emb = torch.zeros_like(model.token_embedding.weight, device="cpu")
    emb[ids] = rows
    state[TOKEN_KEY] = emb
    model.load_state_dict(state)
    return got


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
