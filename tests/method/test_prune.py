"""The paper's dead-feature pruning as an option (vs2mini/method/prune.py): firing counts and pruning by hand.
(The option inside train_sae: tests/method/test_pass_selection.py.)"""
from __future__ import annotations

import torch

from vs2mini.method import prune
from vs2mini.method.sae import TopKSAE


def test_firing_counts_and_pruning_by_hand():
    """W_enc = [I; -I; 0] on d = 2 (6 latents, k = 1), b_pre = (0.5, 0): x = (3, 0) fires latent 0, (0, -2) fires latent 3,
    (1, 0) latent 0; latents 1, 2, 4, 5 never fire. Pruning below 1 keeps {0, 3} and every reconstruction;
    below 2 keeps latent 0 and another (at least k = 1 latents are always kept)."""
    sae = TopKSAE(2, 6, 1)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1., 0], [0, 1], [-1, 0], [0, -1], [0, 0], [0, 0]]))
        sae.W_dec.copy_(sae.W_enc.detach())
        sae.W_dec[4:] = torch.tensor([1.0, 0.0])
        sae.b_pre.copy_(torch.tensor([0.5, 0.0]))                    # x - b_pre fires the same latents
    X = torch.tensor([[3.0, 0.0], [0.0, -2.0], [1.0, 0.0]])
    assert prune.firing_counts(sae, X).tolist() == [2, 0, 0, 1, 0, 0]
    assert prune.firing_counts(sae, X, chunk=1).tolist() == [2, 0, 0, 1, 0, 0]      # chunks add up
    pruned, keep = prune.prune_rare_latents(sae, X, 1)
    assert keep.tolist() == [0, 3] and pruned.n_latents == 2
    torch.testing.assert_close(pruned.reconstruct(X), sae.reconstruct(X))
    assert torch.equal(pruned.W_enc, sae.W_enc[keep]) and torch.equal(pruned.b_pre, sae.b_pre)
    assert not pruned.training and not any(p.requires_grad for p in pruned.parameters())
    assert prune.prune_rare_latents(sae, X, 2)[1].tolist() == [0]
    assert prune.prune_rare_latents(sae, X, 5)[0].n_latents == 1      # none fires 5 times: keep k latents
