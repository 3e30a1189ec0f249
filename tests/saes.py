"""Hand-built SAEs shared by test files (tests/ is on sys.path: see conftest.py)."""
from __future__ import annotations

import torch

from vs2mini.method.sae import TopKSAE


def pm_identity_sae(d: int, k: int) -> TopKSAE:
    """n = 2d latents with W_enc = W_dec = [I; -I], zero biases. For x with no zero entry exactly d pre-acts are
    positive (|x_i| at latent i or d+i) and, with k = d, the reconstruction is exact."""
    sae = TopKSAE(d, 2 * d, k)
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye]))
        sae.W_dec.copy_(torch.cat([eye, -eye]))
        sae.b_enc.zero_()
        sae.b_pre.zero_()
    return sae
