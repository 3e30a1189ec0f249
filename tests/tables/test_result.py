"""The tables' result type (vs2mini/tables/result.py): its text table and JSON, on a hand-built result."""
from __future__ import annotations

import json

from vs2mini.config import TOY_BANNER
from vs2mini.tables.result import SOURCES, Matrix, TableResult, TableRow


def hand_result(real: bool) -> TableResult:
    res = TableResult("prompts", SOURCES["prompts"], "this setting", "the paper's setting", real, ["top-1", "top-5"])
    res.rows += [TableRow("CLIP zero-shot", {"top-1": 50.0, "top-5": 90.0}, {"top-1": 61.07}),
                 TableRow("TPT", {"top-1": None}, {"top-1": 64.09}, "not implemented")]
    res.matrices.append(Matrix("grid", ["g=1"], ["l=1", "l=2"], [[0.5, 0.25]]))
    res.notes.append("a note")
    return res


def test_text_table_pairs_ours_with_the_paper_and_warns_once():
    text = hand_result(real=False).table()
    lines = text.splitlines()
    assert lines[0] == "vs2mini reproduce --table prompts: Table 1b (prompt ensembles, TTA)"
    assert text.count(TOY_BANNER) == 1                                  # no banner given: the toy label
    zs = next(line for line in lines if line.startswith("CLIP zero-shot"))
    assert zs.split() == ["CLIP", "zero-shot", "50.00", "61.07", "90.00"]    # top-5 has no paper column
    tpt = next(line for line in lines if line.startswith("TPT"))
    assert tpt.split() == ["TPT", "-", "64.09", "-", "not", "implemented"]
    assert "    0.500    0.250" in text and lines[-1] == "- a note"
    assert TOY_BANNER not in hand_result(real=True).table()


def test_json_round_trip():
    d = json.loads(hand_result(real=False).to_json())
    assert d["warning"] == TOY_BANNER and d["rows"][1]["ours"] == {"top-1": None}
    assert d["matrices"][0]["values"] == [[0.5, 0.25]] and json.loads(hand_result(real=True).to_json())["warning"] is None
