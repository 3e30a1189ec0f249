"""The book's Results page: the table of a real `reproduce` run, read from its JSON, or a plain note that there is none.

The online build (.github/workflows/book.yml) runs `python -m vs2mini reproduce --profile lite --json
book/_results/lite.json` with OpenAI weights before building the book; offline builds have no such file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..tables.main import GAIN, SE, STEERED, TOP1
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
    """The runs in a `reproduce --json` file (one dict per dataset), or None when the file does not exist.
    Anything else (not JSON, an empty list, a `--table` result, a field of the wrong type) is a ValueError that
    names the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-run `python -m vs2mini reproduce --json {path}`") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from e
    runs = data if isinstance(data, list) else [data]
    if not runs:
        raise ValueError(f"{path} holds an empty list: no run to show; re-run `python -m vs2mini reproduce --json "
                         f"{path}`")
    for i, run in enumerate(runs):
        problem = run_problem(run)
        if problem:
            where = f"{path}" + (f" (run {i + 1} of {len(runs)})" if len(runs) > 1 else "")
            raise ValueError(f"{where}: {problem}")
    return runs


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_problem(run) -> str | None:
    """What makes `run` unlike one dataset's `reproduce --json` output (a TableResult named "main", as a dict), or
    None when it is well formed."""
    if not isinstance(run, dict):
        return f"each run must be a JSON object, got {type(run).__name__}"
    if not {"name", "rows", "columns"} <= set(run):
        return "not the output of `vs2mini reproduce --json` (no 'name', 'rows' or 'columns')"
    if run.get("name") != "main":
        return (f"this is the output of `reproduce --table {run.get('name')}`; the Results page shows the main table "
                "(`python -m vs2mini reproduce --json FILE`, without --table)")
    for key in ("dataset", "model", "profile"):
        if not isinstance(run.get(key), str) or not run[key]:
            return f"'{key}' must be a non-empty string, got {run.get(key)!r}"
    if not isinstance(run.get("real"), bool):
        return f"'real' must be true or false (a JSON boolean), got {run.get('real')!r}"
    if run.get("pretrained") is not None and not isinstance(run["pretrained"], str):
        return f"'pretrained' must be a string or null, got {run['pretrained']!r}"
    if "settings" in run and not isinstance(run["settings"], dict):
        return f"'settings' must be an object, got {type(run['settings']).__name__}"
    rows = run["rows"]
    if not isinstance(rows, list) or not rows:
        return "'rows' must be a non-empty list of the table's rows"
    for j, r in enumerate(rows):
        if not isinstance(r, dict):
            return f"row {j + 1} must be an object, got {type(r).__name__}"
        if not isinstance(r.get("label"), str):
            return f"row {j + 1}: 'label' must be a string, got {r.get('label')!r}"
        ours, ref = r.get("ours"), r.get("paper", {})
        if not isinstance(ours, dict) or not isinstance(ref, dict):
            return f"row {j + 1} ({r['label']}): 'ours' and 'paper' must be objects (column -> value)"
        for key in (TOP1, GAIN):
            if not _number(ours.get(key)):
                return f"row {j + 1} ({r['label']}): '{key}' must be a finite number, got {ours.get(key)!r}"
        cov = ours.get(STEERED)
        if cov is not None and not (_number(cov) and 0 <= cov <= 100):
            return f"row {j + 1} ({r['label']}): '{STEERED}' must be null or a percentage in [0, 100], got {cov!r}"
        if ref.get(TOP1) is not None and not _number(ref[TOP1]):
            return f"row {j + 1} ({r['label']}): the paper's '{TOP1}' must be null or a number, got {ref[TOP1]!r}"
    return None


def results_frame(run: dict):
    """One run as a table with readable method names: top-1, gain over zero-shot, coverage, the paper's number."""
    import pandas as pd

    def rounded(v, n):
        return None if v is None else round(v, n)
    rows = [{"method": display_name(r["label"]), "top-1 (%)": round(r["ours"][TOP1], 2),
             "vs. zero-shot": round(r["ours"][GAIN], 2), "± se": rounded(r["ours"].get(SE), 2),
             "steered (%)": rounded(r["ours"].get(STEERED), 1), "paper (%)": r.get("paper", {}).get(TOP1)}
            for r in run["rows"]]
    return pd.DataFrame(rows).set_index("method")


def caption(run: dict) -> str:
    """What the run was, whether its numbers are real, and whose setting the paper column is."""
    s = run.get("settings", {})
    what = (f"{run['dataset']}, {run['model']} ({run.get('pretrained') or 'offline weights'}), profile "
            f"`{run['profile']}`: {s.get('n_train', '?')} training and {s.get('n_test', '?')} test images")
    ref = f" The paper column: {run['paper_setting']}." if run.get("paper_setting") else ""
    if run.get("real") is not True:                 # only a JSON true is a real run (never the string "false")
        return (f"**Toy run, not a real result.** {what}. These numbers come from the offline toy model, "
                f"not from CLIP; the online build replaces them with a run on real weights.{ref}")
    return (f"**Real run.** {what}. The `lite` profile uses subsets of the splits, so expect a few points of "
            f"sampling noise around the paper's numbers.{ref}")


def centroid_note(run: dict) -> str | None:
    """The run's centroid geometry and its centroid-steering row, in words (None for runs without them): how
    much of a CLS token is the shared centroid, and what steering away from it does."""
    cen = run.get("settings", {}).get("centroid")
    row = next((r for r in run["rows"] if r["label"] == "centroid steering (no SAE)"), None)
    if not cen or row is None:
        return None
    se = f" ± {row['ours'][SE]:.2f}" if row["ours"].get(SE) is not None else ""
    return (f"**Centroid geometry** (the question of the chapter *When does VS2 help?*): with $\\mu$ the mean of "
            f"the unlabelled train CLS tokens, $\\lVert\\mu\\rVert$ = {cen['mu_norm']:.3f} and the mean "
            f"$\\lVert x - \\mu\\rVert$ over test tokens = {cen['deviation_norm']:.3f}, a ratio of "
            f"{cen['ratio']:.3f}. Centroid steering with no SAE ($x + \\alpha(x - \\mu)$, VS2's $\\alpha$) "
            f"changes top-1 by {row['ours'][GAIN]:+.2f}{se} points (paired standard error over test images).")


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
