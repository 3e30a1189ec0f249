"""The book's Results page: the table of a real `reproduce` run, read from its JSON, or a plain note that there is none.

The online build (.github/workflows/book.yml) runs `python -m vs2mini reproduce --profile lite --json
book/_results/lite.json` with OpenAI weights before building the book; offline builds have no such file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .plots import display_name

RESULTS_ENV = "VS2MINI_RESULTS"
DEFAULT_RESULTS = Path("_results") / "lite.json"     # relative to book/, where the page's kernel runs

MISSING = ("**No real run in this build.** This copy of the book was built without internet access, so it has no "
           "run with real CLIP weights to show. The online build (the GitHub Actions workflow "
           "`.github/workflows/book.yml`) runs `python -m vs2mini reproduce --profile lite --json "
           "book/_results/lite.json` with the OpenAI ViT-B/32 weights on a CPU and shows its table here. "
           "Run the same command yourself to get it, or `--profile full` on a GPU for the paper's setting.")


def results_path() -> Path:
    """$VS2MINI_RESULTS if set, else book/_results/lite.json (relative to the page's folder)."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)


def load_results(path: str | Path) -> list[dict] | None:
    """The runs in a `reproduce --json` file (one dict per dataset), or None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-run `python -m vs2mini reproduce --json {path}`") from e
    runs = data if isinstance(data, list) else [data]
    for run in runs:
        if not isinstance(run, dict) or "rows" not in run:
            raise ValueError(f"{path} is not the output of `vs2mini reproduce --json` (no 'rows')")
    return runs


def results_frame(run: dict):
    """One run as a table with readable method names: top-1, gain over zero-shot, coverage, the paper's number."""
    import pandas as pd
    rows = [{"method": display_name(r["method"]), "top-1 (%)": round(r["top1"], 2),
             "vs. zero-shot": round(r["delta"], 2),
             "± se": None if r.get("se") is None else round(r["se"], 2),
             "steered (%)": None if r.get("coverage") is None else round(100 * r["coverage"], 1),
             "paper (%)": r.get("paper")} for r in run["rows"]]
    return pd.DataFrame(rows).set_index("method")


def caption(run: dict) -> str:
    """What the run was, and whether its numbers are real."""
    s = run.get("settings", {})
    what = (f"{run['dataset']}, {run['model']} ({run.get('pretrained') or 'offline weights'}), profile "
            f"`{run['profile']}`: {s.get('n_train', '?')} training and {s.get('n_test', '?')} test images")
    if not run.get("real", False):
        return (f"**Toy run, not a real result.** {what}. These numbers come from the offline toy model, "
                "not from CLIP; the online build replaces them with a run on real weights.")
    return (f"**Real run.** {what}. The `lite` profile uses subsets of the splits, so expect a few points of "
            "sampling noise around the paper's numbers (the `paper` column, where this is one of its settings).")


def centroid_note(run: dict) -> str | None:
    """The run's centroid geometry and its centroid-steering row, in words (None for runs written before the
    centroid rows existed): how much of a CLS token is the shared centroid, and what steering away from it does."""
    cen = run.get("settings", {}).get("centroid")
    row = next((r for r in run["rows"] if r["method"] == "centroid steering (no SAE)"), None)
    if not cen or row is None:
        return None
    se = f" ± {row['se']:.2f}" if row.get("se") is not None else ""
    return (f"**Centroid geometry** (the question of the chapter *When does VS2 help?*): with $\\mu$ the mean of "
            f"the unlabelled train CLS tokens, $\\lVert\\mu\\rVert$ = {cen['mu_norm']:.3f} and the mean "
            f"$\\lVert x - \\mu\\rVert$ over test tokens = {cen['deviation_norm']:.3f}, a ratio of "
            f"{cen['ratio']:.3f}. Centroid steering with no SAE ($x + \\alpha(x - \\mu)$, VS2's $\\alpha$) "
            f"changes top-1 by {row['delta']:+.2f}{se} points (paired standard error over test images).")


def show(path: str | Path | None = None) -> None:
    """Display the page's content in a notebook: the caption and table of each run, or the MISSING note."""
    from IPython.display import Markdown, display
    runs = load_results(results_path() if path is None else path)
    if runs is None:
        display(Markdown(MISSING))
        return
    for run in runs:
        display(Markdown(caption(run)))
        display(results_frame(run))
        note = centroid_note(run)
        if note:
            display(Markdown(note))
