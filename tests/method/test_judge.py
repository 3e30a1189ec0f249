"""The held-out judge of SAE training (vs2mini/method/judge.py) by hand: the held-out size, the fixed split, which
history entry selects the checkpoint, the run's summary and the held-out objective. (Its use inside train_sae:
tests/method/test_train.py and test_pass_selection.py.)"""
from __future__ import annotations

import pytest
import torch

from saes import pm_identity_sae  # tests/saes.py
from vs2mini.method import judge


def test_holdout_size_by_hand():
    assert judge.holdout_size(100, 0.0) == 0
    assert judge.holdout_size(100, 0.1) == 10 and judge.holdout_size(105, 0.1) == 10   # round(10.5) = 10
    assert judge.holdout_size(10, 0.05) == 2                                          # at least 2
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"holdout must be a fraction in \[0, 1\)"):
            judge.holdout_size(100, bad)
    with pytest.raises(ValueError, match="leaves 1 of 3 vectors"):
        judge.holdout_size(3, 0.5)


def test_split_holdout_is_a_fixed_sorted_partition():
    fit, held = judge.split_holdout(20, 5, seed=3)
    assert len(held) == 5 and sorted(fit.tolist() + held.tolist()) == list(range(20))
    assert torch.equal(fit, fit.sort().values) and torch.equal(held, held.sort().values)
    again = judge.split_holdout(20, 5, seed=3)
    assert torch.equal(again[0], fit) and torch.equal(again[1], held)
    assert not torch.equal(judge.split_holdout(20, 5, seed=4)[1], held)
    assert judge.split_holdout(20, 0, seed=3)[1].numel() == 0


def test_selection_key():
    assert judge.selection_key({"fvu": [1.0], "heldout_fvu": [0.5], "heldout_objective": [0.7]}) == "heldout_objective"
    assert judge.selection_key({"fvu": [1.0], "heldout_fvu": [0.5], "heldout_objective": []}) == "heldout_fvu"
    assert judge.selection_key({"fvu": [1.0], "heldout_fvu": []}) is None


def test_summary_of_a_hand_made_history():
    hist = {"fvu": [0.9, 0.5, 0.4, 0.3], "step": [10, 20, 30, 40], "heldout_fvu": [0.95, 0.6, 0.55, 0.58],
            "heldout_objective": [1.2, 0.9, 1.0, 1.1]}
    s = judge.summary(hist)                                 # PASS: the lowest held-out objective, epoch 2
    assert s == {"steps": 40, "epochs": 4, "selected_epoch": 2, "selected_step": 20, "train_fvu": 0.5,
                 "heldout_fvu": 0.6, "selected_by": "heldout_objective", "heldout_objective": 0.9}
    plain = judge.summary({k: v for k, v in hist.items() if k != "heldout_objective"})
    assert (plain["selected_epoch"], plain["selected_by"], plain["train_fvu"]) == (3, "heldout_fvu", 0.4)
    last = judge.summary({"fvu": [0.9, 0.5], "step": [5, 10]})           # no held-out slice: the last epoch
    assert (last["selected_epoch"], last["heldout_fvu"], last["selected_by"]) == (2, None, None)
    assert judge.summary({"fvu": [], "step": []})["steps"] == 0


def test_heldout_objective_is_fvu_plus_w_aux_times_the_pass_term():
    sae = pm_identity_sae(2, 2)                              # exact reconstruction of x with no zero entry: FVU 0
    X = torch.tensor([[1., 2], [3., 4], [-1., 1], [2., -3]])
    y = torch.tensor([0, 0, 1, 1])
    fvu, obj = judge.heldout_objective(sae, X, None, 0.5, "eq7")
    assert fvu == pytest.approx(0.0, abs=1e-6) and obj == fvu            # no labels: the FVU
    assert judge.heldout_objective(sae, X, y, 0.0, "eq7")[1] == fvu     # w_aux 0: the FVU
    # codes z = (relu(x), relu(-x)): class 0 {(1,2,0,0), (3,4,0,0)}, mean (2,3,0,0): squared distances 2 + 2;
    # class 1 {(0,1,1,0), (2,0,0,3)}, mean (1,.5,.5,1.5): 3.75 + 3.75. Eq. 7 divides by the batch: 11.5 / 4
    _, obj = judge.heldout_objective(sae, X, y, 0.5, "eq7")
    assert obj == pytest.approx(fvu + 0.5 * 11.5 / 4, rel=1e-6)
