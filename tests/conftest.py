"""Shared test set-up: keep every test out of the repository and offline.

For the whole session VS2MINI_CACHE and VS2MINI_DATA point at temporary directories and matplotlib uses Agg,
so no test writes a feature cache, a dataset or a figure window into the working tree.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# Tests live in folders that mirror the package's wings (tests/method, tests/data, ...); their shared helpers
# (datasets_fixtures.py, saes.py) sit in tests/ itself, which is put on the path once here.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The tests use small tensors: one intra-op thread is faster than several and avoids oversubscribing the CPU
# when other jobs (notebooks, benchmarks) run beside the test suite. Results do not depend on it.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VS2MINI_CACHE", str(tmp_path_factory.mktemp("vs2mini_cache")))
    mp.setenv("VS2MINI_DATA", str(tmp_path_factory.mktemp("vs2mini_data")))
    mp.setenv("MPLBACKEND", "Agg")
    mp.delenv("VS2MINI_PROFILE", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def toy_setup(_isolated_env):
    """The offline `toy` set-up (the toy CLIP on the toy world's train and test splits), built once per session."""
    from vs2mini.pipeline import load_setup
    return load_setup("toy", progress=False)


def make_hand_sae():
    """d=3, n=4, k=2 SAE with hand-set weights (used by the SAE and steering tests).

    W_enc rows: e0, e1, e2, e0+e1;  b_enc = (0, 0.5, 0, -1);  b_pre = (1, 0, 0)
    W_dec rows: e0, e1, e2, (0.6, 0.8, 0)   (all unit norm)
    """
    from vs2mini.method.sae import TopKSAE
    sae = TopKSAE(3, 4, 2, seed=0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]))
        sae.b_enc.copy_(torch.tensor([0., 0.5, 0, -1]))
        sae.W_dec.copy_(torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0.6, 0.8, 0]]))
        sae.b_pre.copy_(torch.tensor([1., 0, 0]))
    return sae


@pytest.fixture
def hand_sae():
    return make_hand_sae()
