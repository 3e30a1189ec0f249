"""Claims the book's prose makes about the code, checked against the code (the numbers a notebook computes are
glued from its own run instead). Each test names the page that makes the claim."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import yaml

from vs2mini.paper import PAPER
from vs2mini.config import get_profile
from vs2mini.method.train import training_schedule

ROOT = Path(__file__).resolve().parents[2]
WORDS = {6: "Six", 7: "Seven", 8: "Eight", 9: "Nine", 10: "Ten"}


def notebook_text(stem: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells)


def test_intro_lists_every_notebook_and_counts_them():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    nbs = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("notebooks/")]
    intro = (ROOT / "book" / "intro.md").read_text()
    assert f"{WORDS[len(nbs)]} executable notebooks" in intro
    for nb in nbs:
        assert f"{{doc}}`../{nb}`" in intro, nb
    first = intro.split("\n## ")[0]
    assert "admonition} The numbers in the notebooks come from a toy model" in first, "the warning at the top"


def test_teaching_plan_covers_every_notebook():
    teaching = (ROOT / "book" / "teaching.md").read_text()
    plan = teaching[teaching.index("## A three-session plan"):teaching.index("### The exercises at a glance")]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"../notebooks/{path.stem}" in plan, path.stem
    glance = teaching[teaching.index("### The exercises at a glance"):teaching.index("## Exercises and their")]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"\n| {path.stem[:2]} |" in glance, path.stem


def test_teaching_paper_column_is_the_papers():
    teaching = (ROOT / "book" / "teaching.md").read_text()
    table = teaching[teaching.index("## What students see offline"):teaching.index("## Figures for slides")]
    rows = {"CLIP zero-shot": "CLIP zero-shot", "SAE rec.": "SAE^F_REC", "SAE rec. ×γ": "SAE^{F+g}_REC",
            "VS2": "VS2", "VS2++ (pseudo-labels)": "VS2++ (pseudo)", "VS2++ (oracle)": "VS2++ (oracle)",
            "VS2 + PASS": "VS2 + PASS"}
    for shown, key in rows.items():
        line = next(l for l in table.splitlines() if l.startswith(f"| {shown} |"))
        assert line.rstrip().rstrip("|").strip().endswith(f"{PAPER[key][('cifar100', 'ViT-B-32')]:.2f}"), line


def test_notebook_01_float32_features_by_default():
    assert "float32" in notebook_text("01_clip_zero_shot")
    assert all(not get_profile(n).data.feature_amp for n in ("toy", "lite", "full"))


def test_notebook_02_and_07_training_budget():
    full = get_profile("full")
    assert full.train.min_steps == 1000 and full.train.holdout == 0.1 and full.train.epochs == 30
    plan = training_schedule(50_000, epochs=full.train.epochs, batch_size=full.train.batch_size, min_steps=full.train.min_steps,
                             holdout=full.train.holdout)
    assert plan.steps >= 1000 and plan.n_heldout == 5000
    assert "at least 1,000 optimiser steps" in notebook_text("02_training_a_topk_sae")
    assert "1,000 optimiser steps, 10 % of the train split held out" in notebook_text("07_reproducing_the_paper")


def test_notebook_06_and_07_pass_and_gate_defaults():
    full = get_profile("full")
    assert full.pass_.variant == "eq7"
    assert full.gate.tau_datasets == ("cifar100", "tinyimagenet")
    nb6, nb7 = notebook_text("06_pass_prototypes"), notebook_text("07_reproducing_the_paper")
    assert "`variant=\"eq7\"`, is the literal sum" in nb6 and "divides by the code variance" not in \
        nb6.split("`variant=\"eq7\"`, is the literal sum")[0].split("The scale of")[-1]
    assert 'pass_variant="eq7"' in nb7 and "CIFAR-100 + Tiny-ImageNet train union in `full`" in nb7


def test_notebook_07_asks_before_the_large_download():
    nb7 = notebook_text("07_reproducing_the_paper")
    assert re.search(r"^ALLOW_LARGE_DOWNLOAD = False$", nb7, re.M)
    assert "This is the last notebook" not in nb7 and "08_every_table.ipynb" in nb7


def test_notebooks_glue_through_book_glue():
    """Colab has no myst-nb: notebooks import the no-op-safe wrapper, never myst_nb itself."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert "from myst_nb import" not in path.read_text(), path.name
