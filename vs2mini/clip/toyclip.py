"""The toy CLIP `vs2mini-toyclip` as shipped: its open_clip config, its weights file and their checksum record.

`load_toy_clip` builds the model from `model_configs/vs2mini-toyclip.json` and loads `toy_weights/` after checking
the file's SHA-256 against the record beside it; `save_toy_weights` writes both (vs2mini.clip.pretrain trains the
model). `vs2mini-tiny` is a small random-weight model for tests.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..disk import sha256_file, unique_tmp

TINY_MODEL = "vs2mini-tiny"
TOY_MODEL = "vs2mini-toyclip"     # pretrained by vs2mini on the toy world (vs2mini.clip.pretrain)
TOY_TAG = "toy"
CONFIG_DIR = Path(__file__).parent / "model_configs"
WEIGHTS_DIR = Path(__file__).parent / "toy_weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.safetensors"
META_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.json"
TOKEN_KEY = "token_embedding.weight"


def register_local_configs() -> None:
    """Make open_clip know vs2mini's model configs (`vs2mini-tiny`, `vs2mini-toyclip`)."""
    import open_clip
    if not {TINY_MODEL, TOY_MODEL} <= set(open_clip.list_models()):
        open_clip.add_model_config(CONFIG_DIR)


def build_model(seed: int = 0):
    """A freshly initialised open_clip `vs2mini-toyclip` (fixed seed) and its tokenizer."""
    import open_clip
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


def _state_for_file(model) -> dict[str, torch.Tensor]:
    """The state dict with the token embedding stored as (ids, rows) of its non-zero rows."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    emb = state.pop(TOKEN_KEY)
    ids = (emb != 0).any(-1).nonzero().flatten()
    state["token_embedding.ids"] = ids
    state["token_embedding.rows"] = emb[ids].contiguous()
    return state


def save_toy_weights(model, config: dict, path: Path = WEIGHTS_FILE, extra: dict | None = None) -> dict:
    """Write the weights (safetensors) and, beside them, `<name>.json` with their SHA-256 and the pretraining
    config; both atomically. Returns the JSON record."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_tmp(path)
    # one metadata key: safetensors keeps metadata in a hash map, so several keys come out in a random order
    save_file(_state_for_file(model), str(tmp),
              metadata={"vs2mini": json.dumps({"model": TOY_MODEL, "config": config}, sort_keys=True)})
    record = {"model": TOY_MODEL, "file": path.name, "sha256": sha256_file(tmp), "config": config, **(extra or {})}
    meta = path.with_suffix(".json")
    tmp_meta = unique_tmp(meta)
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
                              f"`python -m vs2mini pretrain-toy --out {path}` (under 3 CPU-minutes).")
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




def load_toy_clip(device: str | torch.device = "cpu"):
    """(model in eval mode on `device`, tokenizer, weights SHA-256) of the shipped toy CLIP."""
    model, tokenizer = build_model()
    sha = load_toy_weights(model)
    return model.to(device).eval().requires_grad_(False), tokenizer, sha
