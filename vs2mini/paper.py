"""Every number the paper publishes, in one place, as plain data (arXiv 2506.01247 v3).

Each constant names the table (or section) it comes from. Accuracies are top-1 in percent unless stated.
These are PUBLISHED numbers, never outputs of vs2mini; `vs2mini.experiments` prints them beside a run's own.

Column keys: datasets "cifar100", "cub200", "tinyimagenet" and the OOD sets "aircraft", "food101", "flowers102",
"caltech101", "sun397", "eurosat"; backbones as open_clip names "ViT-B-32", "ViT-B-16", "ViT-L-14".
"""
from __future__ import annotations

MAIN_DATASETS = ("cifar100", "cub200", "tinyimagenet")
OOD_DATASETS = ("aircraft", "food101", "flowers102", "caltech101", "sun397", "eurosat")
BACKBONES = ("ViT-B-32", "ViT-B-16")

# ---------------------------------------------------------------- Table 1a (= App. Table 11 for shared rows)
# Columns: CIFAR-100 B/32, B/16, CUB-200 B/32, B/16, Tiny-ImageNet B/32, B/16 (the paper's order).
PAPER_COLUMNS = [(ds, bb) for ds in MAIN_DATASETS for bb in BACKBONES]
TABLE_1A = {
    # label-free, unsupervised steering
    "CLIP zero-shot": (61.07, 63.96, 51.76, 55.06, 56.64, 61.08),
    "SAE^A_REC": (58.01, 64.05, 47.45, 51.81, 30.56, 52.96),
    "SAE^F_REC": (58.22, 63.42, 48.08, 51.43, 36.33, 54.84),
    "SAE^{F+g}_REC": (62.69, 66.81, 49.41, 53.28, 39.49, 58.81),
    "VS2": (64.52, 68.08, 52.69, 56.14, 58.14, 62.92),
    # RAG-enhanced, oracle neighbour labels
    "Weighted RAG": (76.43, 69.78, 58.32, 60.65, 72.53, 67.84),
    "CLIP Steering (oracle)": (81.85, 84.12, 56.42, 61.51, 80.38, 84.07),
    "VS2++ (oracle)": (81.95, 85.40, 58.84, 61.91, 73.27, 81.55),
    # RAG-enhanced, CLIP pseudo-labels
    "CLIP Steering (pseudo)": (77.22, 78.97, 47.89, 53.95, 74.06, 76.79),
    "VS2++ (pseudo)": (77.11, 79.14, 52.81, 57.02, 72.12, 76.92),
}
# Table 11 (App. K/L): VS2 + PASS with w_aux = 0.8, same columns.
TABLE_11_PASS = (70.64, 68.23, 52.97, 56.63, 57.94, 62.98)

# The rows `vs2mini.reproduce` computes (its method names), by the columns above.
PAPER_ROWS = {m: TABLE_1A[m] for m in ("CLIP zero-shot", "SAE^F_REC", "SAE^{F+g}_REC", "VS2", "VS2++ (pseudo)",
                                       "VS2++ (oracle)")}
PAPER_ROWS["VS2 + PASS"] = TABLE_11_PASS
PAPER = {method: dict(zip(PAPER_COLUMNS, values)) for method, values in PAPER_ROWS.items()}


def paper_backbone(model: str) -> str:
    """open_clip name -> the paper's backbone key (`ViT-B-32-quickgelu` -> `ViT-B-32`)."""
    return model.replace("-quickgelu", "")


def paper_value(method: str, dataset: str, model: str, pretrained: str | None) -> float | None:
    """The paper's number for this row, if the run is one of the paper's settings (OpenAI B/32 or B/16)."""
    if pretrained != "openai":
        return None
    return PAPER.get(method, {}).get((dataset, paper_backbone(model)))


# ---------------------------------------------------------------- Abstract: headline gains (all versions)
# VS2 over CLIP zero-shot (B/32, B/16) per dataset, and the VS2++ oracle's best gain over the two backbones.
HEADLINE_VS2_GAINS = {"cifar100": (3.45, 4.12), "cub200": (0.93, 1.08), "tinyimagenet": (1.50, 1.84)}
HEADLINE_VS2PP_ORACLE_GAINS = {"cifar100": 21.44, "cub200": 7.08, "tinyimagenet": 20.47}
HEADLINE_PASS_OVER_VS2 = ("cifar100", "ViT-B-32", 6.12)            # v1 abstract
HEADLINE_PER_CLASS_GAINS = {"VS2": 25.0, "VS2++": 38.0}            # Table 2, points

# ---------------------------------------------------------------- Table 1b: test-time adaptation, ViT-B/32
# The paper does not state Ens's templates nor what "Aug" is.
TABLE_1B_COLUMNS = MAIN_DATASETS
TABLE_1B = {
    "CLIP zero-shot": (61.07, 51.76, 56.64),
    "Ens": (63.66, 51.54, 61.39),
    "TPT": (64.09, 51.83, 62.77),
    "C-TPT": (64.86, 52.54, 63.20),
    "Diff-TPT": (63.04, 52.80, 61.60),
    "VS2": (64.52, 52.69, 58.14),
    "VS2 + Ens": (65.48, 52.47, 62.79),
    "VS2 + Ens + Aug": (65.80, 51.54, 62.59),
}

# ---------------------------------------------------------------- Table 1c and Table 14: compute, ViT-B/32
TABLE_1C = {"CLIP": (8.7295, 4.3623, 87.46), "LoRA": (8.7885, 4.3918, 88.05), "VS2": (8.7342, 4.3647, 92.18)}
TABLE_1C_COLUMNS = ("GFLOPs", "GMACs", "params (M)")
TABLE_14 = {"SAE (cached activations)": (1.42e7, 4.72), "SAE (non-cached)": (8.74e9, 4.72),
            "LoRA (rank 16)": (2.64e10, 0.59), "Full fine-tuning": (2.62e10, 87.46)}
TABLE_14_COLUMNS = ("train FLOPs / sample", "trainable params (M)")

# ---------------------------------------------------------------- Table 2: top-5 CIFAR-100 class gains, ViT-B/32
TABLE_2_VS2 = {"tractor": (55.0, 80.0), "forest": (35.0, 58.0), "man": (53.0, 74.0), "bus": (51.0, 68.0),
               "snake": (61.0, 76.0)}                                # class: (ZS, VS2)
TABLE_2_VS2PP = {"spider": (53.0, 91.0), "tiger": (48.0, 84.0), "flatfish": (49.0, 85.0), "possum": (30.0, 65.0),
                 "lizard": (39.0, 74.0)}                             # class: (ZS, VS2++)

# ---------------------------------------------------------------- Table 3: FVU gate under shift, ViT-B/32
TABLE_3_COLUMNS = MAIN_DATASETS + OOD_DATASETS
TABLE_3 = {
    "CLIP zero-shot": (61.07, 51.76, 56.64, 24.87, 80.72, 63.70, 78.53, 51.79, 31.61),
    "VS2 (target-domain SAE)": (64.52, 52.69, 58.14, 27.69, 81.20, 64.81, 80.95, 54.80, 34.65),
    "VS2 (generalized SAE)": (64.63, 48.81, 59.73, 18.57, 81.06, 64.11, 79.72, 45.78, 30.76),
}
TABLE_3_GATE_Q = (0.90, 0.95, 0.99, 0.995)
# q -> (top-1, coverage %) per column; the gate uses the generalized SAE, tau = q-quantile of train FVU.
TABLE_3_GATE = {
    0.90: ((64.27, 99.93), (51.76, 0.0), (59.29, 85.0), (24.87, 0.00), (80.72, 0.00), (63.70, 0.11),
           (78.44, 2.30), (51.80, 0.11), (30.39, 54.20)),
    0.95: ((64.62, 99.97), (51.76, 0.04), (58.44, 92.16), (24.87, 0.00), (80.71, 0.02), (63.72, 1.32),
           (78.52, 5.51), (51.80, 0.49), (31.39, 63.15)),
    0.99: ((64.63, 100.0), (51.79, 0.62), (58.65, 98.63), (24.87, 0.09), (80.70, 0.89), (64.34, 22.72),
           (78.76, 23.82), (51.92, 6.97), (31.57, 85.52)),
    0.995: ((64.63, 100.0), (51.83, 1.54), (58.64, 99.34), (24.87, 0.21), (80.69, 3.10), (64.21, 40.62),
            (78.78, 35.26), (52.11, 15.28), (31.65, 92.09)),
}
# §4.3: gains of the generalized SAE (union of the three train splits) by backbone, and its FVU.
GENERALIZED_SAE_GAINS = {"cifar100": (3.56, 4.26, 0.21), "tinyimagenet": (3.09, 2.75, 0.44),
                         "cub200": (-2.95, -5.84, 1.93)}           # (B/32 gain, B/16 gain, FVU approx.)

# ---------------------------------------------------------------- Table 4: manipulating the codes, ViT-B/32
TABLE_4_COLUMNS = ("cifar100", "tinyimagenet")
TABLE_4 = {"CLIP zero-shot": (61.07, 56.64), "SAE^{F+g}_REC": (62.69, 39.49),
           "+ zero-out (gamma = 0)": (1.71, 16.11), "+ negate (gamma = -1)": (0.06, 0.82)}

# ---------------------------------------------------------------- Table 6: SAE FVU (B/32 k = 64, B/16 k = 256)
TABLE_6_FVU = {"cifar100": (0.2812, 0.1166), "cub200": (0.2487, 0.1653), "tinyimagenet": (0.5060, 0.3018)}

# ---------------------------------------------------------------- Table 7: steering depth, CIFAR-100, ViT-B/16
# 4x width, k = 128. Layers 1-indexed: 12 is the last block of ViT-B (0-indexed block 11).
TABLE_7 = {(12,): 68.08, (11, 12): 65.72, (10, 11, 12): 59.36}
TABLE_7_SETTING = {"dataset": "cifar100", "model": "ViT-B-16", "expansion": 4, "k": 128}

# ---------------------------------------------------------------- Table 8: SAE width x k, ViT-B/32 (CIFAR-100)
TABLE_8 = {(4, 128): (64.61, 87.95), (8, 128): (64.56, 87.76), (4, 64): (64.54, 87.79), (16, 64): (64.54, 87.78),
           (8, 64): (64.52, 87.96), (10, 128): (64.43, 87.81), (16, 512): (64.42, 87.71), (8, 512): (64.40, 87.91),
           (4, 256): (64.34, 87.62), (8, 256): (64.29, 87.80), (16, 256): (64.28, 87.75), (4, 512): (64.12, 87.87),
           (16, 128): (64.10, 87.79)}                                # (expansion, k): (top-1, top-5)

# ---------------------------------------------------------------- Table 16: cosine of VS2 vectors across configs
TABLE_16_CONFIGS = ((16, 64), (16, 512), (16, 128), (16, 256), (8, 128), (8, 512), (8, 256), (4, 256), (4, 512),
                    (4, 128), (10, 128), (4, 64), (8, 64))
TABLE_16 = (
    (1.000, 0.497, 0.577, 0.705, 0.726, 0.635, 0.680, 0.640, 0.591, 0.681, 0.536, 0.701, 0.716),
    (0.497, 1.000, 0.161, 0.399, 0.358, 0.817, 0.634, 0.618, 0.611, 0.584, 0.136, 0.316, 0.282),
    (0.577, 0.161, 1.000, 0.900, 0.865, 0.273, 0.298, 0.277, 0.265, 0.303, 0.952, 0.887, 0.678),
    (0.705, 0.399, 0.900, 1.000, 0.956, 0.527, 0.572, 0.495, 0.410, 0.542, 0.920, 0.936, 0.744),
    (0.726, 0.358, 0.865, 0.956, 1.000, 0.543, 0.650, 0.575, 0.483, 0.634, 0.896, 0.959, 0.829),
    (0.635, 0.817, 0.273, 0.527, 0.543, 1.000, 0.861, 0.811, 0.771, 0.796, 0.243, 0.483, 0.506),
    (0.680, 0.634, 0.298, 0.572, 0.650, 0.861, 1.000, 0.889, 0.771, 0.912, 0.289, 0.557, 0.624),
    (0.640, 0.618, 0.277, 0.495, 0.575, 0.811, 0.889, 1.000, 0.873, 0.941, 0.240, 0.532, 0.600),
    (0.591, 0.611, 0.265, 0.410, 0.483, 0.771, 0.771, 0.873, 1.000, 0.821, 0.191, 0.461, 0.549),
    (0.681, 0.584, 0.303, 0.542, 0.634, 0.796, 0.912, 0.941, 0.821, 1.000, 0.284, 0.594, 0.655),
    (0.536, 0.136, 0.952, 0.920, 0.896, 0.243, 0.289, 0.240, 0.191, 0.284, 1.000, 0.910, 0.678),
    (0.701, 0.316, 0.887, 0.936, 0.959, 0.483, 0.557, 0.532, 0.461, 0.594, 0.910, 1.000, 0.814),
    (0.716, 0.282, 0.678, 0.744, 0.829, 0.506, 0.624, 0.600, 0.549, 0.655, 0.678, 0.814, 1.000),
)

# ---------------------------------------------------------------- Table 9: ViT-L/14 (App. H)
# Dataset-specific SAE on layer 23 (0-indexed; the final block of 24), expansion 10, k = 128, last_n = 1.
TABLE_9_SETTING = {"model": "ViT-L-14", "pretrained": "openai", "block": 23, "expansion": 10, "k": 128}
TABLE_9 = {"cub200": (62.50, 64.26), "cifar100": (72.48, 74.12), "tinyimagenet": (72.58, 73.52)}   # (ZS, VS2)
TABLE_9_EVAL = {"cub200": ("test", 5794), "cifar100": ("test", 10000), "tinyimagenet": ("val", 10000)}

# ---------------------------------------------------------------- Table 10: SpLiCE comparison, CIFAR-100 (App. I)
TABLE_10_COLUMNS = BACKBONES
TABLE_10 = {"CLIP zero-shot": (61.07, 63.96), "SAE^A_REC": (58.01, 64.05), "SAE^F_REC": (58.22, 63.42),
            "SAE^{F+g}_REC": (62.69, 66.81), "SpLiCE": (55.57, 58.29), "VS2": (64.52, 68.08)}

# ---------------------------------------------------------------- Table 12: PASS trade-off, CIFAR-100 (App. L)
# Captioned ViT-B/16, k = 128, 4x; its accuracies sit at the B/32 PASS level (the paper is inconsistent here).
# w_aux: (FVU, top-1)
TABLE_12 = {0.1: (0.3437, 68.80), 0.5: (0.4887, 70.40), 1.0: (0.5393, 70.61), 2.0: (0.5702, 70.76)}

# ---------------------------------------------------------------- Table 13: prototype overlap (App. M)
TABLE_13_MEAN_COSINE = 0.23
TABLE_13 = (("beetle", "cockroach", 0.91), ("mouse", "shrew", 0.89), ("dolphin", "shark", 0.84),
            ("otter", "seal", 0.84), ("dolphin", "whale", 0.84), ("possum", "raccoon", 0.84), ("snake", "worm", 0.83),
            ("oak tree", "willow tree", 0.83), ("ray", "shark", 0.81), ("bowl", "cup", 0.80))

# ---------------------------------------------------------------- App. L: oracle prototype steering
# 10 most confident images per class, steered with the prototype of the TRUE class (ViT-B/32).
ORACLE_PROTOTYPES = {"cifar100": 97.5, "cub200": 91.04, "tinyimagenet": 90.1}

# ---------------------------------------------------------------- App. B, J, D: settings of the figures
SENSITIVITY_OPTIMUM = {"dataset": "cifar100", "model": "ViT-B-32", "gamma": 1.5, "lam": 2.1}   # Figs. 3 and 5
SENSITIVITY_BAND = (2.0, 3.0)                                     # "lambda * gamma in [2, 3]" is near-optimal
NEIGHBOUR_COUNTS = (10, 25, 50, 100)                              # Fig. 7 (ViT-B/16); numbers only in the figure
RAG_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)                          # Fig. 6's alpha axis (the paper: alpha in [0, 1])
RAG_KS = (10, 20, 50, 100, 300, 500)                              # Fig. 6's k curves (CIFAR-100; read from the figure)
ORACLE_PROTOTYPE_IMAGES = 10
SAE_REC_GAMMA = 1.5                                               # SAE^{F+g}_REC's fixed gamma (v3 §4.1, Table 1a)
