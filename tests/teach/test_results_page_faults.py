"""The Results page accepts only a well-formed `reproduce --json` file and says what is wrong with anything else
(one line naming the file), never a traceback or a wrong caption."""
from __future__ import annotations

import copy
import json

import pytest

from vs2mini.tables import result as experiments
from vs2mini.teach import results_page

GOOD = {"dataset": "cifar100", "model": "ViT-B-32", "pretrained": "openai", "profile": "lite", "real": True,
        "retrieval": "clip", "settings": {"n_train": 10, "n_test": 5},
        "rows": [{"method": "CLIP zero-shot", "top1": 60.0, "delta": 0.0, "coverage": None, "paper": 62.0},
                 {"method": "VS2", "top1": 62.5, "delta": 2.5, "coverage": 0.9, "paper": None}]}


def _with(**change):
    run = copy.deepcopy(GOOD)
    for key, value in change.items():
        if key.startswith("row_"):
            run["rows"][0][key[4:]] = value
        else:
            run[key] = value
    return run


def _drop(key):
    run = copy.deepcopy(GOOD)
    del run[key]
    return run


TABLE_JSON = experiments.TableResult("depth", "Table 7", "toy", "paper", False, ["top-1"],
                                     [experiments.TableRow("VS2", {"top-1": 1.0})]).to_dict()

BAD = {
    "real as a string": (_with(real="false"), "'real' must be true or false"),
    "real null": (_with(real=None), "'real'"),
    "empty list": ([], "empty list"),
    "a number": (5, "JSON object"),
    "a list of strings": (["a"], "JSON object"),
    "no rows": (_drop("rows"), "no 'rows'"),
    "rows empty": (_with(rows=[]), "non-empty list"),
    "rows a dict": (_with(rows={"a": 1}), "non-empty list"),
    "row a string": (_with(rows=["VS2"]), "row 1 must be an object"),
    "top1 a string": (_with(row_top1="60"), "'top1' must be a finite number"),
    "top1 missing": (_with(row_top1=None), "'top1'"),
    "top1 NaN": (_with(row_top1=float("nan")), "'top1'"),
    "top1 a bool": (_with(row_top1=True), "'top1'"),
    "delta missing": (_with(row_delta=None), "'delta'"),
    "coverage above 1": (_with(row_coverage=90), "'coverage'"),
    "coverage a string": (_with(row_coverage="0.9"), "'coverage'"),
    "paper a string": (_with(row_paper="62"), "'paper'"),
    "method a number": (_with(row_method=3), "'method'"),
    "dataset missing": (_drop("dataset"), "'dataset'"),
    "model a list": (_with(model=["ViT"]), "'model'"),
    "profile empty": (_with(profile=""), "'profile'"),
    "settings a list": (_with(settings=[1]), "'settings'"),
    "pretrained a number": (_with(pretrained=1), "'pretrained'"),
    "a --table result": (TABLE_JSON, "reproduce --table depth"),
    "a list of --table results": ([TABLE_JSON, TABLE_JSON], "reproduce --table depth"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_input_is_one_clear_line(tmp_path, case):
    data, words = BAD[case]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as e:
        results_page.load_results(path)
    msg = str(e.value)
    assert words in msg and str(path) in msg and "\n" not in msg


def test_well_formed_input_renders_with_the_right_caption(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps([GOOD, _with(real=False)]))
    runs = results_page.load_results(path)
    assert results_page.caption(runs[0]).startswith("**Real run.**")
    assert results_page.caption(runs[1]).startswith("**Toy run")
    assert results_page.caption({**GOOD, "real": "false"}).startswith("**Toy run")   # never "Real" for a string
    assert list(results_page.results_frame(runs[0])["steered (%)"].fillna(-1)) == [-1, 90.0]


def test_unreadable_bytes_are_a_clear_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not valid JSON"):
        results_page.load_results(path)
