"""CLIP models through open_clip, and zero-shot text heads.

OpenAI CLIP weights were trained with QuickGELU. open_clip >= 2.29 builds `('ViT-B-32', 'openai')` with plain GELU
and only warns, although the activation mismatch costs accuracy, so `load_clip` maps the OpenAI B/32 and B/16
requests to the `*-quickgelu` model names. `vs2mini-toyclip` with `pretrained="toy"` is the toy CLIP that vs2mini
pretrains on its generated toy world (weights shipped in the package: vs2mini.clip.toyclip, trained by
vs2mini.clip.pretrain); it is the offline `toy` profile's model. `vs2mini-tiny` (vs2mini.clip.toyclip.TINY_MODEL) is
a small random-weight model for tests.
"""
from __future__ import annotations

import contextlib
import difflib
import logging
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..data import download
from .toyclip import TOY_MODEL, TOY_TAG, load_toy_clip, register_local_configs

log = logging.getLogger(__name__)


# "a photo of a {}." is our reading of the paper's single-template CLIP_ZS baseline (the paper does not state its prompts).
SINGLE_TEMPLATE = ("a photo of a {}.",)
# The 18 CIFAR templates of the CLIP paper (openai/CLIP data/prompts.md).
_CIFAR9 = ("a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
           "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
           "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.")
CIFAR_TEMPLATES = _CIFAR9 + tuple(t.replace(" a ", " the ") for t in _CIFAR9)
TEMPLATES = {"single": SINGLE_TEMPLATE, "cifar18": CIFAR_TEMPLATES}

# Paper backbones (v3 §4, App. C, App. H): OpenAI weights, loaded with the activation they were trained with.
QUICKGELU_ALIASES = {"ViT-B-32": "ViT-B-32-quickgelu", "ViT-B-16": "ViT-B-16-quickgelu",
                     "ViT-L-14": "ViT-L-14-quickgelu"}


RANDOM_WEIGHTS_SEED = 0
HUB_URL = "https://huggingface.co"     # where open_clip fetches weights; probed (with a time-out) before loading


class WeightsNotAvailable(RuntimeError):
    """Pretrained weights could not be loaded (usually: no internet and nothing cached)."""


@dataclass
class Clip:
    """An open_clip model with what the pipeline needs to use it."""
    model: torch.nn.Module
    tokenizer: object
    name: str
    pretrained: str | None
    device: torch.device

    weights_sha256: str | None = None   # of the toy weights file
    # zeroshot_head's results by (class names, templates): the model is frozen, so a head is computed once
    heads: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def real(self) -> bool:
        """False for random weights and for the toy CLIP: results from such a model are not real results."""
        return self.pretrained is not None and self.pretrained != TOY_TAG

    @property
    def tag(self) -> str:
        if self.pretrained == TOY_TAG:
            return f"{self.name}/{TOY_TAG}-{self.weights_sha256[:12]}"     # a rebuilt model is a new cache key
        return f"{self.name}/{self.pretrained or f'random-seed{RANDOM_WEIGHTS_SEED}'}"


def resolve_model_name(name: str, pretrained: str | None) -> str:
    """Check the name against open_clip and apply the QuickGELU fix for OpenAI weights."""
    import open_clip
    register_local_configs()
    if pretrained == "openai" and name in QUICKGELU_ALIASES:
        log.info("using %s for OpenAI weights (they were trained with QuickGELU)", QUICKGELU_ALIASES[name])
        name = QUICKGELU_ALIASES[name]
    models = open_clip.list_models()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=5)
        raise ValueError(f"unknown open_clip model {name!r}. Close matches: {close}. "
                         f"See open_clip.list_models(); '{TOY_MODEL}' (pretrained={TOY_TAG!r}) is the offline toy "
                         "model.")
    if name == TOY_MODEL or pretrained == TOY_TAG:
        if (name, pretrained) not in ((TOY_MODEL, TOY_TAG), (TOY_MODEL, None)):
            raise ValueError(f"the toy weights {TOY_TAG!r} belong to {TOY_MODEL!r} (got {name!r} with {pretrained!r})")
    elif pretrained is not None and not os.path.isfile(pretrained):     # a local checkpoint file loads as is
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ValueError(f"unknown pretrained tag {pretrained!r} for {name}; available: {tags} "
                             "(or the path of a local open_clip checkpoint file)")
    return name


def check_device(device: str | torch.device) -> torch.device:
    """torch.device(device), with a clear error when it names a GPU this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device {device!r} is not a device name; use cpu or cuda ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no GPU is visible to PyTorch here (torch.cuda.is_available() is "
                         "False); use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


def hub_reachable(url: str | None = None, timeout: float | None = None) -> bool:
    """True if the Hugging Face hub answers an HTTP request within `timeout` seconds (open_clip downloads weights
    from it). A TCP connect alone is not enough: a network that accepts connections and never answers must count
    as offline."""
    return download.reachable(url or HUB_URL, download.PROBE_TIMEOUT if timeout is None else timeout)


@contextlib.contextmanager
def _offline_if_unreachable(needs_hub: bool):
    """Without a network, put huggingface_hub in offline mode: cached weights still load, and a missing file fails
    at once instead of after a minute of retries."""
    if not needs_hub or hub_reachable():
        yield
        return
    from huggingface_hub import constants
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def weights_help(name: str, pretrained: str) -> str:
    """Where the weights of (name, pretrained) come from, and how to use them on a machine without internet."""
    import open_clip
    cfg = open_clip.get_pretrained_cfg(name, pretrained) or {}
    where = []
    if cfg.get("hf_hub"):
        repo, fname = os.path.split(cfg["hf_hub"])          # "org/model/" or "org/model/file.bin"
        where.append(f"{HUB_URL}/{repo}/resolve/main/{fname or 'open_clip_pytorch_model.bin'}")
    if cfg.get("url"):
        where.append(cfg["url"])
    src = where[0] if where else f"the open_clip release of {name}/{pretrained}"   # the hub file: a plain state_dict
    return (f"Download {src} on a machine with internet and pass the file's path: --pretrained /path/to/file "
            f"(load_clip('{name}', '/path/to/file')); or copy a Hugging Face cache that holds it "
            "(~/.cache/huggingface/hub, or $HF_HOME) to this machine.")


class _DropRandomInitWarning(logging.Filter):
    """open_clip logs "No pretrained weights loaded ... initialized randomly" on the root logger whenever it builds a
    model without a download; vs2mini asks for that on purpose (offline models, whose weights it loads itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def load_clip(name: str = "ViT-B-32", pretrained: str | None = "openai", device: str | torch.device | None = None,
              cache_dir: str | None = None) -> Clip:
    """Build an open_clip model in eval mode. `pretrained=None` gives random weights (offline)."""
    import open_clip
    device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = resolve_model_name(name, pretrained)
    if pretrained == TOY_TAG:                  # shipped in the package: no download, checksum-checked
        model, tokenizer, sha = load_toy_clip(device)
        check_vision_tower(model.visual)
        return Clip(model, tokenizer, name, pretrained, device, sha)
    try:
        # Random weights come from a fixed seed: the feature cache and the text head must see the same model.
        with _offline_if_unreachable(pretrained is not None), torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            quiet = _DropRandomInitWarning()
            logging.getLogger().addFilter(quiet)
            try:
                model = open_clip.create_model(name, pretrained=pretrained, device=device, cache_dir=cache_dir)
            finally:
                logging.getLogger().removeFilter(quiet)
    except Exception as e:  # hub/network errors come in many types; say what to do instead
        if pretrained is not None and os.path.isfile(pretrained):
            raise WeightsNotAvailable(f"{pretrained}: not an open_clip checkpoint for {name} "
                                      f"({type(e).__name__}: {e})") from e
        raise WeightsNotAvailable(
            f"could not load {name} weights {pretrained!r}: {type(e).__name__}: {e}\n"
            f"These are downloaded from the Hugging Face hub on first use; this machine may be offline. "
            f"{weights_help(name, pretrained) if isinstance(pretrained, str) else ''} "
            "The 'toy' profile works offline (--profile toy or VS2MINI_PROFILE=toy).") from e
    model.eval().requires_grad_(False)
    check_vision_tower(model.visual)
    return Clip(model, open_clip.get_tokenizer(name), name, pretrained, device)


def check_vision_tower(visual: torch.nn.Module) -> None:
    """The CLS-token path (features.cls_to_embedding) assumes a ViT with token pooling and ln_post."""
    ok = (getattr(visual, "pool_type", None) == "tok" and getattr(visual, "attn_pool", None) is None
          and hasattr(visual, "ln_post") and getattr(visual, "proj", None) is not None)
    if not ok:
        raise ValueError("vs2mini steers the final CLS token of an open_clip VisionTransformer with "
                         "pool_type='tok', no attention pooling and a projection; this model has another head.")


@torch.no_grad()
def zeroshot_head(clip: Clip, classnames: list[str], templates: str | tuple[str, ...] = "single",
                  batch_size: int = 256) -> torch.Tensor:
    """Class text embeddings (C, D): each template's embedding normalised, averaged per class, renormalised."""
    if isinstance(templates, str):
        if templates not in TEMPLATES:
            raise ValueError(f"unknown template set {templates!r}; choose one of {sorted(TEMPLATES)}")
        templates = TEMPLATES[templates]
    if not classnames or not templates:
        raise ValueError("need at least one class name and one template")
    key = (tuple(classnames), tuple(templates), batch_size)
    if key in clip.heads:
        return clip.heads[key].clone()      # a clone: a caller's in-place edit must not reach the memo
    prompts = [t.format(c) for c in classnames for t in templates]
    embs = []
    for i in range(0, len(prompts), batch_size):
        tokens = clip.tokenizer(prompts[i:i + batch_size]).to(clip.device)
        embs.append(F.normalize(clip.model.encode_text(tokens).float(), dim=-1))
    embs = torch.cat(embs).view(len(classnames), len(templates), -1)
    clip.heads[key] = F.normalize(embs.mean(dim=1), dim=-1)
    return clip.heads[key].clone()
