"""The toy CLIP `vs2mini-toyclip` as shipped: its open_clip config, its weights file and their checksum record.

`load_toy_clip` builds the model from `model_configs/vs2mini-toyclip.json` and loads the weights
(`toy_weights_path()`: the shipped `toy_weights/` or $VS2MINI_TOY_WEIGHTS) after checking them: the shipped file
against TOY_WEIGHTS_SHA256 below, a rebuilt one against the record beside it. `save_toy_weights` writes a file and
its record (vs2mini.clip.pretrain trains the model; `pretrain-toy` writes runs/toy_clip/, never the package).
`vs2mini-tiny` is a small random-weight model for tests.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch


TINY_MODEL = "vs2mini-tiny"
TOY_MODEL = "vs2mini-toyclip"     # pretrained by vs2mini on the toy world (vs2mini.clip.pretrain)
TOY_TAG = "toy"
CONFIG_DIR = Path(__file__).parent / "model_configs"
WEIGHTS_DIR = Path(__file__).parent / "toy_weights"
WEIGHTS_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.safetensors"
META_FILE = WEIGHTS_DIR / f"{TOY_MODEL}.json"
TOKEN_KEY = "token_embedding.weight"
TOY_WEIGHTS_ENV = "VS2MINI_TOY_WEIGHTS"     # load a rebuilt toy CLIP instead of the shipped one
# The SHA-256 of the shipped weights file, in the code so that a file and its sidecar cannot be replaced together
# unnoticed. Rebuilding the shipped weights means updating this line (and the sidecar) in the same commit.
TOY_WEIGHTS_SHA256 = "a249517cf82006b4837040af54b41e68243bd037f8c1222c73194e59f93c8573"
DEFAULT_OUT = Path("runs") / "toy_clip" / f"{TOY_MODEL}.safetensors"   # `pretrain-toy` without --out


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


def save_toy_weights(model, config: dict, path: Path = DEFAULT_OUT, extra: dict | None = None,
                     exclusive: bool = False) -> dict:
    """Write the weights (safetensors) and, beside them, `<name>.json` with their SHA-256 and the pretraining
    config, both through vs2mini.disk (atomic; one-line disk errors). `exclusive`: the weights file is claimed at
    placement (OutputExists if it exists by then: a concurrent run never replaces it silently). Returns the record."""
    from safetensors.torch import save
    from ..disk import write_bytes, write_json
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
                "vs2mini/clip/toy_weights`), or rebuild one with `python -m vs2mini pretrain-toy` and point "
                f"${TOY_WEIGHTS_ENV} at it")
    return f"rebuild it with `python -m vs2mini pretrain-toy --out {path} --force` (under 3 CPU-minutes)"


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
                              f"{type(record).__name__}{f' with sha256={sha!r}' if isinstance(record, dict) else ''}"
                              f"); {_restore_hint(path)}")
    if _is_shipped(path) and sha != TOY_WEIGHTS_SHA256:
        raise ToyWeightsError(f"{meta} records sha256 {sha[:12]}..., but this vs2mini ships {TOY_WEIGHTS_SHA256[:12]}"
                              f"... (TOY_WEIGHTS_SHA256 in vs2mini/clip/toyclip.py): the package's toy weights were "
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


def load_toy_clip(device: str | torch.device = "cpu"):
    """(model in eval mode on `device`, tokenizer, weights SHA-256) of the shipped toy CLIP."""
    model, tokenizer = build_model()
    sha = load_toy_weights(model)
    return model.to(device).eval().requires_grad_(False), tokenizer, sha
