"""The paper's numbers in vs2mini.reproduce.PAPER agree with SPEC.md's summary table (section 12)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vs2mini.reproduce import PAPER, PAPER_COLUMNS

SPEC = Path(__file__).resolve().parents[2] / "shared" / "paper" / "SPEC.md"


def spec_summary_rows() -> dict[str, list[float]]:
    text = SPEC.read_text(encoding="utf-8")
    table = text[text.index("| top‑1 % | CIFAR‑100 B/32"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/paper/SPEC.md is not beside this checkout")
def test_paper_table_matches_spec_section_12():
    rows = spec_summary_rows()
    assert set(rows) == {"CLIP zero-shot", "VS2", "VS2++ (pseudo)", "VS2++ (oracle)", "VS2 + PASS"}
    # SPEC's columns: CIFAR B/32, CIFAR B/16, CUB B/32, CUB B/16, Tiny B/32, Tiny B/16 = PAPER_COLUMNS' order
    for method, values in rows.items():
        assert [PAPER[method][col] for col in PAPER_COLUMNS] == values, method
