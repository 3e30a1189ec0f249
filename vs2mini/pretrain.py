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
  against TOY_WEIGHTS_SHA256 in this module, a rebuilt one against its sidecar record.

    model, history = pretrain_toy_clip()              # about 2 minutes on one CPU core
    save_toy_weights(model, history["config"], DEFAULT_OUT)   # runs/toy_clip/vs2mini-toyclip.safetensors + .json
    # VS2MINI_TOY_WEIGHTS=runs/toy_clip/vs2mini-toyclip.safetensors makes every later run use it
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
TOY_WEIGHTS_ENV = "VS2MINI_TOY_WEIGHTS"     # load a rebuilt toy CLIP instead of the shipped one
# The SHA-256 of the shipped weights file, in the code so that a file and its sidecar cannot be replaced together
# unnoticed. Rebuilding the shipped weights means updating this line (and the sidecar) in the same commit.
TOY_WEIGHTS_SHA256 = "7cb279fd4db0c36bef1b210692f39e83296336c4e9d4456b1c91b8ba4c4161e7"
DEFAULT_OUT = Path("runs") / "toy_clip" / f"{TOY_MODEL}.safetensors"   # `pretrain-toy` without --out
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


def save_toy_weights(model, config: dict, path: Path = DEFAULT_OUT, extra: dict | None = None,
                     exclusive: bool = False) -> dict:
    """Write the weights (safetensors) and, beside them, `<name>.json` with their SHA-256 and the pretraining
    config, both through vs2mini.disk (atomic; one-line disk errors). `exclusive`: the weights file is claimed at
    placement (OutputExists if it exists by then: a concurrent run never replaces it silently). Returns the record."""
    from safetensors.torch import save
    from .disk import write_bytes, write_json
    path = Path(path)
    # one metadata key: safetensors keeps metadata in a hash map, so several keys come out in a random order
    blob = save(_state_for_file(model),
                metadata={"vs2mini": json.dumps({"model": TOY_MODEL, "config": config}, sort_keys=True)})
    record = {"model": TOY_MODEL, "file": path.name, "sha256": hashlib.sha256(blob).hexdigest(), "config": config,
              **(extra or {})}
    write_bytes(path, blob, exclusive=exclusive)          # the claim: the sidecar below belongs to this file
    write_json(path.with_suffix(".json"), record)
    return record


class ToyWeightsError(RuntimeError):
    """The toy weights are missing, malformed or do not match their checksum; the message says how to restore them."""


def toy_weights_path() -> Path:
    """The toy CLIP weights to load: $VS2MINI_TOY_WEIGHTS (a file rebuilt by `pretrain-toy`) or the shipped file."""
    return Path(os.environ.get(TOY_WEIGHTS_ENV) or WEIGHTS_FILE).expanduser()


def _is_shipped(path: Path) -> bool:
    try:
        return path.resolve() == WEIGHTS_FILE.resolve()
    except OSError:
        return False


def _restore_hint(path: Path) -> str:
    if _is_shipped(path):
        return ("restore the shipped file: `pip install --force-reinstall vs2mini` (in a git clone: `git checkout "
                "vs2mini/toy_weights`), or rebuild one with `python -m vs2mini pretrain-toy` and point "
                f"${TOY_WEIGHTS_ENV} at it")
    return f"rebuild it with `python -m vs2mini pretrain-toy --out {path} --force` (about 2 minutes on a CPU)"


def expected_sha256(path: Path) -> str:
    """The checksum `path` must have: the one in the code (TOY_WEIGHTS_SHA256) for the shipped file, whose sidecar
    must agree with it; for a rebuilt file the one its sidecar `<name>.json` records (written by `pretrain-toy`)."""
    meta = path.with_suffix(".json")
    try:
        record = json.loads(meta.read_text())
    except FileNotFoundError:
        raise ToyWeightsError(f"toy CLIP weights record not found: {meta}; {_restore_hint(path)}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ToyWeightsError(f"{meta} is not a readable JSON record ({type(e).__name__}); "
                              f"{_restore_hint(path)}") from None
    sha = record.get("sha256") if isinstance(record, dict) else None
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ToyWeightsError(f"{meta} has no valid 'sha256' entry (want a JSON object with a 64-hex sha256, got "
                              f"{type(record).__name__}{'' if not isinstance(record, dict) else f' with sha256={sha!r}'}"
                              f"); {_restore_hint(path)}")
    if _is_shipped(path) and sha != TOY_WEIGHTS_SHA256:
        raise ToyWeightsError(f"{meta} records sha256 {sha[:12]}..., but this vs2mini ships {TOY_WEIGHTS_SHA256[:12]}"
                              f"... (TOY_WEIGHTS_SHA256 in vs2mini/pretrain.py): the package's toy weights were "
                              f"replaced; {_restore_hint(path)}")
    return sha


def load_toy_weights(model, path: Path | None = None) -> str:
    """Load the toy weights (default: `toy_weights_path()`) into an open_clip `vs2mini-toyclip` model after checking
    the file's SHA-256 (`expected_sha256`) and its contents. Returns the checksum. Every fault is one
    ToyWeightsError line that names the file and how to restore it."""
    from safetensors.torch import load
    path = Path(path) if path is not None else toy_weights_path()
    meta = path.with_suffix(".json")
    if not path.is_file():
        raise ToyWeightsError(f"toy CLIP weights not found: {path} (with its record {meta.name}); "
                              f"{_restore_hint(path)}")
    want = expected_sha256(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ToyWeightsError(f"{path}: cannot read ({e.strerror or e}); {_restore_hint(path)}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise ToyWeightsError(f"{path}: SHA-256 {got[:12]}... differs from {want[:12]}... "
                              f"{'shipped with this vs2mini' if _is_shipped(path) else f'recorded in {meta}'}; the "
                              f"file is damaged or stale; {_restore_hint(path)}")
    try:
        state = load(data)
        ids, rows = state.pop("token_embedding.ids"), state.pop("token_embedding.rows")
        emb = torch.zeros_like(model.token_embedding.weight, device="cpu")
        emb[ids] = rows
        state[TOKEN_KEY] = emb
        model.load_state_dict(state)
    except Exception as e:          # safetensors' own errors, missing keys, wrong shapes: all one line
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ToyWeightsError(f"{path} is not a vs2mini-toyclip weights file ({type(e).__name__}: {why[:120]}); "
                              f"{_restore_hint(path)}") from None
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
