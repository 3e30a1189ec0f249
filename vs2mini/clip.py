"""CLIP models through open_clip, and zero-shot text heads.

OpenAI CLIP weights were trained with QuickGELU. open_clip >= 2.29 builds `('ViT-B-32', 'openai')` with plain GELU
and only warns, which costs accuracy (SAE_ANCHORS 3.13), so `load_clip` maps the OpenAI B/32 and B/16 requests to
the `*-quickgelu` model names. `vs2mini-toyclip` with `pretrained="toy"` is the toy CLIP that vs2mini pretrains on its
generated toy world (weights shipped in the package, see vs2mini.pretrain); it is the offline `toy` profile's model.
`vs2mini-tiny` is a small random-weight model for tests.
"""
from __future__ import annotations

import contextlib
import difflib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

TINY_MODEL = "vs2mini-tiny"
TOY_MODEL = "vs2mini-toyclip"     # pretrained by vs2mini on the toy world (vs2mini.pretrain)
TOY_TAG = "toy"
_CONFIG_DIR = Path(__file__).parent / "model_configs"

# "a photo of a {}." is our reading of the paper's single-template CLIP_ZS baseline (SPEC 2.4: prompts NOT FOUND).
SINGLE_TEMPLATE = ("a photo of a {}.",)
# The 18 CIFAR templates of the CLIP paper (openai/CLIP data/prompts.md; SAE_ANCHORS 6).
_CIFAR9 = ("a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
           "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
           "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.")
CIFAR_TEMPLATES = _CIFAR9 + tuple(t.replace(" a ", " the ") for t in _CIFAR9)
TEMPLATES = {"single": SINGLE_TEMPLATE, "cifar18": CIFAR_TEMPLATES}

# Paper backbones (SPEC 2.1): OpenAI weights, loaded with the activation they were trained with.
QUICKGELU_ALIASES = {"ViT-B-32": "ViT-B-32-quickgelu", "ViT-B-16": "ViT-B-16-quickgelu",
                     "ViT-L-14": "ViT-L-14-quickgelu"}


RANDOM_WEIGHTS_SEED = 0


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

    @property
    def real(self) -> bool:
        """False for random weights and for the toy CLIP: results from such a model are not real results."""
        return self.pretrained is not None and self.pretrained != TOY_TAG

    @property
    def tag(self) -> str:
        if self.pretrained == TOY_TAG:
            return f"{self.name}/{TOY_TAG}-{self.weights_sha256[:12]}"     # a rebuilt model is a new cache key
        return f"{self.name}/{self.pretrained or f'random-seed{RANDOM_WEIGHTS_SEED}'}"


def register_local_configs() -> None:
    """Make open_clip know vs2mini's model configs (`vs2mini-tiny`, `vs2mini-toyclip`)."""
    import open_clip
    if not {TINY_MODEL, TOY_MODEL} <= set(open_clip.list_models()):
        open_clip.add_model_config(_CONFIG_DIR)


_register_local_configs = register_local_configs      # old name


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
                         f"See open_clip.list_models(); '{TOY_MODEL}' (pretrained={TOY_TAG!r}) is the offline toy model.")
    if name == TOY_MODEL or pretrained == TOY_TAG:
        if (name, pretrained) not in ((TOY_MODEL, TOY_TAG), (TOY_MODEL, None)):
            raise ValueError(f"the toy weights {TOY_TAG!r} belong to {TOY_MODEL!r} (got {name!r} with {pretrained!r})")
    elif pretrained is not None:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ValueError(f"unknown pretrained tag {pretrained!r} for {name}; available: {tags}")
    return name


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """True if the Hugging Face hub answers a TCP connection (open_clip downloads weights from it)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


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


class _DropRandomInitWarning(logging.Filter):
    """open_clip logs "No pretrained weights loaded ... initialized randomly" on the root logger whenever it builds a
    model without a download; vs2mini asks for that on purpose (offline models, whose weights it loads itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def load_clip(name: str = "ViT-B-32", pretrained: str | None = "openai", device: str | torch.device | None = None,
              cache_dir: str | None = None) -> Clip:
    """Build an open_clip model in eval mode. `pretrained=None` gives random weights (offline)."""
    import open_clip
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = resolve_model_name(name, pretrained)
    if pretrained == TOY_TAG:                  # shipped in the package: no download, checksum-checked
        from .pretrain import build_model, load_toy_weights
        model, _ = build_model()
        sha = load_toy_weights(model)
        model = model.to(device).eval().requires_grad_(False)
        check_vision_tower(model.visual)
        return Clip(model, open_clip.get_tokenizer(name), name, pretrained, device, sha)
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
        raise WeightsNotAvailable(
            f"could not load {name} weights {pretrained!r}: {type(e).__name__}: {e}\n"
            "These are downloaded from the Hugging Face hub on first use; this machine may be offline. "
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
    prompts = [t.format(c) for c in classnames for t in templates]
    embs = []
    for i in range(0, len(prompts), batch_size):
        tokens = clip.tokenizer(prompts[i:i + batch_size]).to(clip.device)
        embs.append(F.normalize(clip.model.encode_text(tokens).float(), dim=-1))
    embs = torch.cat(embs).view(len(classnames), len(templates), -1)
    return F.normalize(embs.mean(dim=1), dim=-1)
