"""The Results page's code path, offline: a toy `reproduce --json` file renders; a missing file says so."""
from __future__ import annotations

import json

import pytest

from vs2mini.teach import results_page
from vs2mini.cli import main


@pytest.fixture(scope="module")
def toy_json(tmp_path_factory):
    path = tmp_path_factory.mktemp("results") / "lite.json"
    assert main(["reproduce", "--profile", "toy", "--quiet", "--json", str(path)]) == 0
    return path


def test_toy_run_renders_with_readable_names_and_a_warning(toy_json):
    runs = results_page.load_results(toy_json)
    assert len(runs) == 1
    table = results_page.results_frame(runs[0])
    written = json.loads(toy_json.read_text())["rows"]
    assert list(table.index) == [results_page.display_name(r["label"]) for r in written]
    assert "SAE rec. ×γ" in table.index and not any("^" in m for m in table.index)
    vs2 = next(r for r in written if r["label"] == "VS2")
    assert table.loc["VS2", "top-1 (%)"] == round(vs2["ours"]["top-1"], 2)
    assert table.loc["VS2", "paper (%)"] == vs2["paper"]["top-1"]
    assert results_page.caption(runs[0]).startswith("**Toy run, not a real result.**")
    assert results_page.caption(runs[0]).endswith("The paper column: cifar100, ViT-B-32 (the paper's setting; not "
                                                   "this run's).")


def test_missing_file_is_said_plainly(tmp_path, monkeypatch):
    assert results_page.load_results(tmp_path / "none.json") is None
    monkeypatch.setenv(results_page.RESULTS_ENV, str(tmp_path / "none.json"))
    assert results_page.results_path() == tmp_path / "none.json"
    assert "No real run in this build" in results_page.MISSING


def test_bad_file_gets_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        results_page.load_results(bad)
    bad.write_text(json.dumps({"dataset": "x"}))
    with pytest.raises(ValueError, match="not the output of `vs2mini reproduce --json`"):
        results_page.load_results(bad)


def test_real_run_caption():
    run = {"dataset": "cifar100", "model": "ViT-B-32-quickgelu", "pretrained": "openai", "profile": "lite",
           "real": True, "settings": {"n_train": 3000, "n_test": 1000}, "rows": []}
    assert results_page.caption(run).startswith("**Real run.** cifar100, ViT-B-32-quickgelu (openai)")


def test_centroid_geometry_and_row_are_shown(toy_json):
    run = results_page.load_results(toy_json)[0]
    cen = run["settings"]["centroid"]
    assert cen["ratio"] == pytest.approx(cen["mu_norm"] / cen["deviation_norm"])
    row = next(r["ours"] for r in run["rows"] if r["label"] == "centroid steering (no SAE)")
    note = results_page.centroid_note(run)
    assert f"{cen['ratio']:.3f}" in note and f"{row['vs ZS']:+.2f}" in note and f"{row['se']:.2f}" in note
    table = results_page.results_frame(run)
    assert table.loc["VS2", "± se"] == round(next(r for r in run["rows"] if r["label"] == "VS2")["ours"]["se"], 2)
    # runs written before the centroid rows existed still render, without the note
    old = {**run, "settings": {k: v for k, v in run["settings"].items() if k != "centroid"}}
    assert results_page.centroid_note(old) is None
