"""Cosine k-NN and the VS2++ positive masks (vs2mini/method/retrieval.py; paper v3 §3.3 eq. 4 and §4.2)."""
from __future__ import annotations

import pytest
import torch

from vs2mini.method.retrieval import POSITIVE_RULES, knn, positive_mask

BANK = torch.tensor([[1., 0], [0, 1], [1, 1], [-1, 0], [1, 0.1]])


def test_knn_hand_vectors_in_order():
    # cosines to (1, 0): b0 = 1, b4 = 0.995, b2 = 0.707, b1 = 0, b3 = -1
    sims, idx = knn(torch.tensor([[1., 0], [0, 2]]), BANK, k=3)
    assert idx[0].tolist() == [0, 4, 2]
    assert torch.allclose(sims[0], torch.tensor([1.0, 1 / 1.01 ** 0.5, 2 ** -0.5]), atol=1e-6)
    # cosines to (0, 2): b1 = 1, b2 = 0.707, b4 = 0.0995
    assert idx[1].tolist() == [1, 2, 4]
    assert torch.allclose(sims[1], torch.tensor([1.0, 2 ** -0.5, 0.1 / 1.01 ** 0.5]), atol=1e-6)


def test_knn_is_cosine_not_dot_product():
    scaled = BANK.clone()
    scaled[2] *= 10                        # a dot product would now rank b2 first for (1, 0)
    _, idx = knn(torch.tensor([[1., 0]]), scaled, k=3)
    assert idx[0].tolist() == [0, 4, 2]
    _, idx = knn(torch.tensor([[0.001, 0]]), BANK, k=3)       # query scale does not matter either
    assert idx[0].tolist() == [0, 4, 2]


def test_knn_exclude_self():
    sims, idx = knn(BANK, BANK, k=2, exclude_self=True)
    for i, row in enumerate(idx.tolist()):
        assert i not in row
    assert idx[0].tolist() == [4, 2]       # b0's nearest other vector is its near-duplicate b4
    assert idx[4].tolist() == [0, 2]
    _, idx_all = knn(BANK, BANK, k=1)
    assert idx_all[:, 0].tolist() == [0, 1, 2, 3, 4]       # without exclusion each vector finds itself


@pytest.mark.parametrize("exclude_self", [False, True])
def test_knn_chunking_same_answer(exclude_self):
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(200, 8, generator=g)
    q = bank[:50] if exclude_self else torch.randn(50, 8, generator=g)
    s1, i1 = knn(q, bank, k=5, chunk=4096, exclude_self=exclude_self)
    s2, i2 = knn(q, bank, k=5, chunk=7, exclude_self=exclude_self)
    assert torch.equal(i1, i2)
    assert torch.allclose(s1, s2, atol=1e-6)
    # brute-force reference
    cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(bank, dim=-1).T
    if exclude_self:
        cos[torch.arange(50), torch.arange(50)] = -2
    assert torch.equal(cos.topk(5, dim=-1).indices, i1)


@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 3, 64])
def test_knn_equals_brute_force_with_ties(exclude_self, chunk):
    """Vectors with four entries of +-1 (norm 2, so normalised entries are +-0.5 and every cosine is exact in any
    summation order) and repeated rows: many exact ties; every chunking gives the brute-force answer."""
    g = torch.Generator().manual_seed(1)

    def vectors(n):
        v = torch.zeros(n, 8)
        for row in v:
            row[torch.randperm(8, generator=g)[:4]] = torch.randint(0, 2, (4,), generator=g).float() * 2 - 1
        return v
    base = vectors(12)
    bank = torch.cat([base, base, 4 * base[:6]])                 # exact duplicates and scaled copies: equal cosines
    q = bank if exclude_self else vectors(9)
    sims, idx = knn(q, bank, k=7, chunk=chunk, exclude_self=exclude_self)
    cos = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(bank, dim=-1).T
    if exclude_self:
        cos[torch.arange(len(q)), torch.arange(len(q))] = -torch.inf
    ref_s, ref_i = cos.topk(7, dim=-1)
    assert torch.equal(idx, ref_i) and torch.equal(sims, ref_s)
    if exclude_self:
        assert not (idx == torch.arange(len(q))[:, None]).any()


def test_knn_errors():
    with pytest.raises(ValueError, match="share D"):
        knn(torch.zeros(2, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="share D"):
        knn(torch.zeros(3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="bank of 5"):
        knn(torch.zeros(2, 2), BANK, k=6)
    with pytest.raises(ValueError, match="bank of 5"):
        knn(BANK, BANK, k=5, exclude_self=True)
    with pytest.raises(ValueError):
        knn(BANK, BANK, k=0)
    with pytest.raises(ValueError, match="chunk"):
        knn(BANK, BANK, k=2, chunk=0)


def test_positive_mask_query_rule():
    labels = torch.tensor([[1, 2, 1], [0, 0, 3]])
    m = positive_mask(labels, torch.tensor([1, 3]), "query")
    assert m.tolist() == [[True, False, True], [False, False, True]]
    with pytest.raises(ValueError, match="query_labels"):
        positive_mask(labels, None, "query")


def test_positive_mask_majority_rule_and_ties():
    labels = torch.tensor([[4, 2, 4, 4, 1],       # majority 4
                           [2, 2, 1, 1, 3],       # tie 1 vs 2 -> smallest label id 1
                           [7, 5, 7, 5, 6]])      # tie 5 vs 7 -> 5
    m = positive_mask(labels, rule="majority")
    assert m.tolist() == [[True, False, True, True, False],
                          [False, False, True, True, False],
                          [False, True, False, True, False]]
    # the query's own label is ignored by this rule
    assert torch.equal(positive_mask(labels, torch.tensor([2, 2, 6]), "majority"), m)


def test_positive_mask_unknown_rule():
    assert POSITIVE_RULES == ("query", "majority")
    with pytest.raises(ValueError, match="unknown positive rule 'oracle'.*query.*majority"):
        positive_mask(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long), "oracle")
