"""The Results page accepts only a well-formed `reproduce --json` file and says what is wrong with anything else
(one line naming the file), never a traceback or a wrong caption."""
from __future__ import annotations

import copy
import json

import pytest

from vs2mini.tables import result as experiments
from vs2mini.teach import results_page

GOOD = experiments.TableResult(
    "main", "Table 1a", "cifar100, 10 train / 5 test", "cifar100, ViT-B-32 (this run's setting)", True,
    ["top-1", "vs ZS", "se", "steered %"],
    [experiments.TableRow("CLIP zero-shot", {"top-1": 60.0, "vs ZS": 0.0, "se": 0.0, "steered %": None},
                          {"top-1": 62.0}),
     experiments.TableRow("VS2", {"top-1": 62.5, "vs ZS": 2.5, "se": 0.4, "steered %": 90.0}, {"top-1": None})],
    dataset="cifar100", model="ViT-B-32", pretrained="openai", profile="lite",
    settings={"n_train": 10, "n_test": 5}).to_dict()


def _with(**change):
    run = copy.deepcopy(GOOD)
    run.update(change)
    return run


def _row(key, value, side="ours"):
    """GOOD with row 1's `side` ("ours", "paper", or None for the row itself) set at `key`."""
    run = copy.deepcopy(GOOD)
    (run["rows"][0] if side is None else run["rows"][0][side])[key] = value
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
    "no rows": (_drop("rows"), "no 'name', 'rows' or 'columns'"),
    "rows empty": (_with(rows=[]), "non-empty list"),
    "rows a dict": (_with(rows={"a": 1}), "non-empty list"),
    "row a string": (_with(rows=["VS2"]), "row 1 must be an object"),
    "top-1 a string": (_row("top-1", "60"), "'top-1' must be a finite number"),
    "top-1 missing": (_row("top-1", None), "'top-1'"),
    "top-1 NaN": (_row("top-1", float("nan")), "'top-1'"),
    "top-1 a bool": (_row("top-1", True), "'top-1'"),
    "gain missing": (_row("vs ZS", None), "'vs ZS'"),
    "steered above 100 %": (_row("steered %", 101.0), "'steered %'"),
    "steered a string": (_row("steered %", "90"), "'steered %'"),
    "paper a string": (_row("top-1", "62", side="paper"), "the paper's 'top-1'"),
    "label a number": (_row("label", 3, side=None), "'label'"),
    "ours a list": (_row("ours", [60.0], side=None), "'ours' and 'paper' must be objects"),
    "no columns": (_drop("columns"), "not the output of `vs2mini reproduce --json`"),
    "no name": (_drop("name"), "not the output of `vs2mini reproduce --json`"),
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
