"""`reproduce --table shift` end to end on a small toy world: every row on every resolution, and the invariants
that hold whatever the numbers are (at 32 px the references reduce to the domain's own rows)."""
from __future__ import annotations

import json

import pytest

from vs2mini.tables import shift as shift_table
from vs2mini.cli import main
from vs2mini.config import get_profile

SMALL = dict(n_train=1200, n_test=240, epochs=3, min_steps=0)


@pytest.fixture(scope="module")
def shift_json(tmp_path_factory, _isolated_env):
    from vs2mini import config as profiles
    mp = pytest.MonkeyPatch()
    mp.setitem(profiles.PROFILES, "toy", profiles.PROFILES["toy"].set(**SMALL))
    path = tmp_path_factory.mktemp("shift") / "shift.json"
    try:
        assert main(["reproduce", "--profile", "toy", "--quiet", "--table", "shift", "--json", str(path)]) == 0
    finally:
        mp.undo()
    return json.loads(path.read_text())


def test_every_row_on_every_resolution(shift_json):
    res = shift_json
    assert res["name"] == "shift" and res["real"] is False and res["columns"] == ["32px", "16px", "12px", "8px"]
    assert [r["label"] for r in res["rows"]] == list(shift_table.GRID_ROWS)
    gain, se = res["matrices"][0], res["matrices"][1]
    assert gain["row_labels"] == se["row_labels"] == list(shift_table.GRID_ROWS)
    for r, g in zip(res["rows"], gain["values"]):
        zs = res["rows"][0]["ours"]
        for col, v in zip(res["columns"], g):
            assert v == pytest.approx(r["ours"][col] - zs[col])               # gain = top-1 - zero-shot
    assert all(v >= 0 for row in se["values"] for v in row)
    assert gain["values"][0] == [0, 0, 0, 0] and se["values"][0] == [0, 0, 0, 0]


def test_references_reduce_to_the_domains_own_rows_at_32_px(shift_json):
    top = {r["label"]: r["ours"]["32px"] for r in shift_json["rows"]}
    assert top["re-centring on the 32-px mean"] == top["CLIP zero-shot"]           # x - mu + mu = x
    assert top["VS2 with the 32-px SAE (wrong centroid)"] == top["VS2"]
    assert top["centroid steering with the 32-px mean (wrong centroid)"] == top["centroid steering (no SAE)"]
    sig = shift_json["matrices"][2]
    assert sig["values"][1][0] == 0.0                                             # ||mu_32 - mu_32|| = 0


def test_bad_arguments_fail_before_any_work():
    with pytest.raises(ValueError, match="leave out --dataset"):
        shift_table.shift_table("toy", "cifar100")
    with pytest.raises(ValueError, match="not toy domains"):
        shift_table.shift_grid("toy", (32, 10))
    res = shift_table.shift_table(get_profile("lite"))                            # `--table all` on a real profile
    assert not res.rows and "toy world" in res.notes[0]
