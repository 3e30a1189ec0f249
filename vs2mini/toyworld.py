"""The toy world: procedurally generated 32-px images of coloured shapes, with captions, for offline runs.

24 classes in 6 super-classes. A super-class is a colour (red, yellow, green, cyan, blue, purple: hues 60 degrees
apart); its 4 members are shapes of that colour ("red circle", "red ring", "red square", "red triangle"). Colour is
easy for a small ViT and shape is hard (ring vs circle, cross vs star under rotation, occlusion and 8-px patches),
so most confusions fall inside a super-class, like the visually or taxonomically close classes that the paper's
steering disambiguates (paper v3 §1). We first grouped by shape with neighbouring hues as members, but the toy CLIP
then confused shapes, not hues (3 % of its errors stayed inside a super-class), so the grouping follows what is
visually close for the model. Nuisance factors: position, scale, rotation, lighting (a per-channel gain that moves
the hue), hue/saturation/value jitter, background gradient and clutter (small desaturated blobs), pixel noise and
partial occlusion (a grey bar).

Domains: "base" (plain backgrounds) and "shifted" (striped, saturated backgrounds and a warm colour cast), the
out-of-distribution case of the FVU gate. Image i depends only on (seed, domain, split, i), so a smaller `n` gives
a prefix of the same images; label i = i % 24 (balanced). Every image has a caption from `CAPTION_TEMPLATES`.

    images, labels, captions = render("base", "train", 12_000)   # uint8 (N, 3, 32, 32), int64 (N,), list[str]
"""
from __future__ import annotations

import numpy as np

SIZE = 32
# hue in degrees on the HSV wheel: six colours 60 degrees apart
HUES = {"red": 0.0, "yellow": 60.0, "green": 120.0, "cyan": 180.0, "blue": 240.0, "purple": 300.0}
SHAPES = ("circle", "ring", "square", "triangle", "cross", "star")
# super-class (a colour) -> its 4 member shapes; colour k gets shapes k..k+3 (mod 6), so every shape appears in
# four colours and the text tower must learn shape words, not just colour words
SUPERCLASSES = {c: tuple(SHAPES[(k + j) % len(SHAPES)] for j in range(4)) for k, c in enumerate(HUES)}
CLASSNAMES = [f"{colour} {shape}" for colour, shapes in SUPERCLASSES.items() for shape in shapes]
CLASS_SUPER = np.array([list(HUES).index(c.split()[0]) for c in CLASSNAMES])   # (24,) super-class per class
CLASS_SHAPE = np.array([SHAPES.index(c.split()[-1]) for c in CLASSNAMES])     # (24,) shape index per class
CLASS_HUE = np.array([HUES[c.split()[0]] for c in CLASSNAMES])
DOMAINS = ("base", "shifted")
SPLITS = ("train", "test")
SPLIT_SIZE = {"train": 12_000, "test": 2_400}      # 500 / 100 images per class
# Captions: the class name verbatim plus words for the nuisance factors (size, background, occlusion).
# "a photo of a {}." is also the zero-shot prompt (clip.SINGLE_TEMPLATE), so the text head sees familiar text.
CAPTION_TEMPLATES = ("a photo of a {name}.", "a {size} {name}.", "a {name} on a {bg} background.",
                     "a photo of a {size} {name} on a {bg} background.")
OCCLUDED_SUFFIX = " partly hidden."                # replaces the final "." of an occluded image's caption
# uniforms drawn per image, by name -> column (fixed, so adding a factor never moves the existing images)
_P = {name: j for j, name in enumerate(
    ["level", "grad_dir", "grad_amp", "tint_r", "tint_g", "tint_b", "period", "bg_h1", "bg_s1", "bg_v", "bg_h2",
     "bg_s2", *[f"blob{b}_{a}" for b in range(3) for a in ("y", "x", "r", "h", "s", "v")], "radius", "cy", "cx",
     "theta", "hue", "sat", "val", "occluded", "bar_pos", "bar_grey", "gain_r", "gain_g", "gain_b", "noise",
     "template", "noise_bank", "noise_shift"])}
_N_PARAMS = 48                                     # 47 used, 1 spare


def superclass_of(label: int | np.ndarray) -> int | np.ndarray:
    """Super-class index (into `list(SUPERCLASSES)`) of a class label (or an array of labels)."""
    return CLASS_SUPER[label] if isinstance(label, np.ndarray) else int(CLASS_SUPER[int(label)])


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """h in degrees, s, v in [0, 1], each (N,) -> (N, 3) RGB in [0, 1]."""
    h = (h % 360.0) / 60.0
    c = v * s
    x = c * (1 - np.abs(h % 2 - 1))
    z = np.zeros_like(h)
    sector = np.floor(h).astype(int) % 6
    table = np.stack([np.stack(t, -1) for t in ((c, x, z), (x, c, z), (z, c, x), (z, x, c), (x, z, c), (c, z, x))])
    return table[sector, np.arange(len(h))] + (v - c)[:, None]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A counter-based hash (splitmix64's finaliser) of uint64 values, vectorised."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _params(seed: int, domain: str, split: str, n: int) -> np.ndarray:
    """Per-image uniforms in [0, 1), (n, _N_PARAMS): a hash of (seed, domain, split, image i, parameter j), so image
    i depends on nothing else (a smaller n gives a prefix)."""
    key = _splitmix64(np.array([seed * 4 + DOMAINS.index(domain) * 2 + SPLITS.index(split)], np.uint64))
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)[:, None]
        j = np.arange(_N_PARAMS, dtype=np.uint64)[None, :]
        h = _splitmix64(_splitmix64(key ^ i) + j)
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


def _noise(seed: int, u_bank: np.ndarray, u_shift: np.ndarray) -> np.ndarray:
    """Pixel noise (n, 3, SIZE, SIZE) float32: each image takes one of 64 fixed Gaussian noise fields (from `seed`)
    and rolls it by a random offset; u_bank, u_shift: (n,) uniforms choosing which and how far."""
    bank = np.random.default_rng([seed, 7]).standard_normal((64, 3, SIZE, 2 * SIZE), dtype=np.float32)
    bank[..., SIZE:] = bank[..., :SIZE]                                   # periodic, so a shift is a crop
    pick = (u_bank * 64).astype(int)
    shift = (u_shift * SIZE).astype(int)
    cols = shift[:, None] + np.arange(SIZE)[None, :]                      # (n, S)
    return bank[pick[:, None, None, None], np.arange(3)[None, :, None, None],
                np.arange(SIZE)[None, None, :, None], cols[:, None, None, :]]


def _shape_mask(shape: str, uu: np.ndarray, vv: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean mask (m, S, S) of one shape; uu, vv: (m, S, S) rotated coordinates about the centre, r: (m, 1, 1)."""
    if shape in ("circle", "ring", "star"):
        d = np.hypot(uu, vv)
        if shape == "circle":
            return d <= r
        if shape == "ring":
            return (d <= r) & (d >= 0.5 * r)
        return d <= r * (0.62 + 0.38 * np.cos(5 * np.arctan2(vv, uu)))
    au, av = np.abs(uu), np.abs(vv)
    if shape == "square":
        return np.maximum(au, av) <= 0.8 * r
    if shape == "cross":
        return (np.minimum(au, av) <= 0.32 * r) & (np.maximum(au, av) <= r)
    # equilateral triangle: three half-planes at distance r/2 from the centre
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    return np.maximum(np.maximum(vv, -c * uu - s * vv), c * uu - s * vv) <= 0.5 * r


def render(domain: str = "base", split: str = "train", n: int | None = None, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 (n, 3, 32, 32), labels int64 (n,) and captions of the first `n` images of a split
    (default `SPLIT_SIZE[split]`)."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown toy domain {domain!r}; choose one of {DOMAINS}")
    if split not in SPLITS:
        raise ValueError(f"unknown toy split {split!r}; choose one of {SPLITS}")
    n = SPLIT_SIZE[split] if n is None else n
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    labels = np.arange(n, dtype=np.int64) % len(CLASSNAMES)
    u = _params(seed, domain, split, n)
    chunks = [_render_chunk(u[s:s + 2048], labels[s:s + 2048], domain, seed) for s in range(0, n, 2048)]
    images = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros((0, 3, SIZE, SIZE), np.uint8)
    occluded = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, bool)
    r = 6.0 + 5.0 * u[:, _P["radius"]]
    level = 0.25 + 0.5 * u[:, _P["level"]]
    size_word = np.where(r < 7.7, "small", np.where(r > 9.3, "big", "medium"))
    bg_word = np.full(n, "striped") if domain == "shifted" else np.where(level < 0.45, "dark", "light")
    tmpl = (u[:, _P["template"]] * len(CAPTION_TEMPLATES)).astype(int)
    captions = []
    for i in range(n):
        c = CAPTION_TEMPLATES[tmpl[i]].format(name=CLASSNAMES[labels[i]], size=size_word[i], bg=bg_word[i])
        captions.append(c[:-1] + "," + OCCLUDED_SUFFIX if occluded[i] else c)
    return images, labels, captions


def _render_chunk(u: np.ndarray, labels: np.ndarray, domain: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """u: (n, _N_PARAMS) uniforms, labels: (n,) -> (uint8 images (n, 3, S, S), occluded (n,) bool)."""
    n = len(labels)
    p = {name: u[:, j].astype(np.float32) for name, j in _P.items()}                  # each (n,)
    yy, xx = (np.mgrid[:SIZE, :SIZE] + 0.5).astype(np.float32)

    # ---- background: grey level with a linear gradient and a slight tint (base) or saturated stripes (shifted)
    level = 0.25 + 0.5 * p["level"]
    gx, gy = (f(2 * np.pi * p["grad_dir"])[:, None, None] for f in (np.cos, np.sin))
    ramp = ((xx - SIZE / 2) * gx + (yy - SIZE / 2) * gy) / SIZE                           # (n, S, S) in [-0.7, 0.7]
    tint = 0.12 * (np.stack([p["tint_r"], p["tint_g"], p["tint_b"]], 1) - 0.5)           # (n, 3)
    img = (level[:, None, None, None] + tint[:, :, None, None]
           + (0.25 * (p["grad_amp"] - 0.5))[:, None, None, None] * ramp[:, None]).astype(np.float32)
    if domain == "shifted":
        period = (4 + 6 * p["period"])[:, None, None]
        stripes = (np.sin(2 * np.pi * (xx * gx + yy * gy) / period) > 0)[:, None]         # (n, 1, S, S)
        c1 = _hsv_to_rgb(360 * p["bg_h1"], 0.6 + 0.3 * p["bg_s1"], 0.35 + 0.4 * p["bg_v"])
        c2 = _hsv_to_rgb(360 * p["bg_h2"], 0.6 + 0.3 * p["bg_s2"], 0.35 + 0.4 * p["bg_v"])
        img = np.where(stripes, c1[:, :, None, None], c2[:, :, None, None]).astype(np.float32)
    img = np.broadcast_to(img, (n, 3, SIZE, SIZE)).copy()

    # ---- clutter: three small desaturated blobs behind the object
    for b in range(3):
        q = {a: p[f"blob{b}_{a}"] for a in ("y", "x", "r", "h", "s", "v")}
        blob = np.hypot(yy - SIZE * q["y"][:, None, None], xx - SIZE * q["x"][:, None, None]) \
            <= (1.5 + 2.0 * q["r"])[:, None, None]
        bc = _hsv_to_rgb(360 * q["h"], 0.25 * q["s"], 0.2 + 0.7 * q["v"])
        img = np.where(blob[:, None], bc[:, :, None, None], img)

    # ---- the object: a shape of the class's hue (jittered), at a random place, size and rotation
    r = 6.0 + 5.0 * p["radius"]                                                            # radius 6-11 px
    cy = r + 1 + (SIZE - 2 * r - 2) * p["cy"]
    cx = r + 1 + (SIZE - 2 * r - 2) * p["cx"]
    dy, dx = yy - cy[:, None, None], xx - cx[:, None, None]
    ct, st = (f(2 * np.pi * p["theta"])[:, None, None] for f in (np.cos, np.sin))
    uu, vv = ct * dx + st * dy, -st * dx + ct * dy
    mask = np.zeros((n, SIZE, SIZE), bool)
    for k, shape in enumerate(SHAPES):
        m = CLASS_SHAPE[labels] == k
        mask[m] = _shape_mask(shape, uu[m], vv[m], r[m, None, None])
    hue = CLASS_HUE[labels] + 30.0 * (p["hue"] - 0.5)                                      # +-15 degrees
    fg = _hsv_to_rgb(hue, 0.6 + 0.4 * p["sat"], 0.6 + 0.4 * p["val"])
    img = np.where(mask[:, None], fg[:, :, None, None], img)

    # ---- partial occlusion: a third of the images get a grey bar across part of the object
    occluded = p["occluded"] < 1 / 3
    bar_c = (r * (2 * p["bar_pos"] - 1))[:, None, None]                  # bar offset from the centre along u
    bar = (np.abs(uu - bar_c) <= 0.3 * r[:, None, None]) & occluded[:, None, None]
    img = np.where(bar[:, None], (0.3 + 0.4 * p["bar_grey"])[:, None, None, None], img)

    # ---- lighting: a per-channel gain (it moves the perceived hue), then pixel noise
    gain = 1 + 0.32 * (np.stack([p["gain_r"], p["gain_g"], p["gain_b"]], 1) - 0.5)      # +-16 % per channel
    if domain == "shifted":
        gain = gain * np.array([1.15, 1.0, 0.8])                                        # warm colour cast
    noise = _noise(seed, p["noise_bank"], p["noise_shift"])
    img = img * gain[:, :, None, None] + (0.02 + 0.05 * p["noise"])[:, None, None, None] * noise
    images = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)

    return images, occluded


# ------------------------------------------------------------------------------------ resolution-shift domains
# Fixed before any steering result on them was looked at (issue "When VS2 helps").
# Why: in the paper, CLIP was pretrained on web photos at 224 px and is evaluated on 32-px CIFAR-100 (and 64-px
# Tiny-ImageNet) images that its preprocessing upsamples to 224 px: the evaluation images differ from the
# pretraining images. The "base" toy world has no such shift (the same renderer at the same 32 px trained the toy
# CLIP). These domains add it the same way: the toy images are rendered at the pretraining size SIZE (32 px),
# downsampled to RESOLUTIONS px with an antialiased AREA filter (exact box filter: each output pixel is the
# area-weighted mean of the input pixels it covers, fractional pixels weighted by the covered fraction, as PIL's
# Image.BOX filter; then rounded to uint8), and returned at that small size, so the model's own preprocessing
# (vs2mini.preprocess: antialiased bicubic resize of the shortest side to 32 px) upsamples them back, as
# CIFAR-100's 32-px images meet CLIP's 224-px input. Each domain has its own train split (the "base" train
# images, downsampled; unlabelled use for its SAE, as the paper trains an SAE on each dataset's train split) and
# test split (the "base" test images, downsampled), so every resolution sees the same scenes.
RESOLUTIONS = (16, 12, 8)                 # the shifted domains `toy-16px`, `toy-12px`, `toy-8px`
# The book's main thread, one resolution, by this rule: the paper's headline setting feeds 32-px CIFAR-100 images
# to a 224-px CLIP, a ratio of 32/224 = 1/7; the toy equivalent 32/7 = 4.6 px is below the grid (16, 12, 8), so the
# nearest grid size, 8 px, is the book's main thread. (Chosen by the ratio, not by which resolution makes a row win.)
PAPER_SIZE_RATIO = 32 / 224
MAIN_RESOLUTION = 8


def resolution_dataset(px: int) -> str:
    """The dataset name of a toy resolution: 32 -> "toy" (in-domain), 16 -> "toy-16px", ..."""
    if px == SIZE:
        return "toy"
    if px not in RESOLUTIONS:
        raise ValueError(f"no toy domain at {px} px; choose one of {(SIZE,) + RESOLUTIONS}")
    return f"toy-{px}px"


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) row-stochastic weights of exact area downsampling along one axis: output pixel i covers the
    input interval [i s, (i + 1) s), s = n_in / n_out; entry (i, j) = overlap of input pixel [j, j + 1) with it,
    divided by s."""
    if not 0 < n_out <= n_in:
        raise ValueError(f"area downsampling needs 0 < n_out <= n_in, got {n_out} and {n_in}")
    s = n_in / n_out
    lo, hi = np.arange(n_out)[:, None] * s, (np.arange(n_out)[:, None] + 1) * s
    j = np.arange(n_in)[None, :]
    return np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / s


def downsample(images: np.ndarray, px: int) -> np.ndarray:
    """uint8 (N, 3, S, S) -> uint8 (N, 3, px, px) by exact area averaging (see above), rounded half to even."""
    a = area_weights(images.shape[-1], px)
    b = area_weights(images.shape[-2], px)
    out = np.einsum("ih,nchw,jw->ncij", b, images.astype(np.float64), a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
