"""`python -m vs2mini.teach.figures`: every book figure as files, for slides."""
from __future__ import annotations

from vs2mini.teach import figures


def test_figures_writes_every_diagram_as_svg_and_png(tmp_path):
    from vs2mini.teach import diagrams
    out = tmp_path / "figs"
    assert figures.main(["--out", str(out), "--diagrams-only"]) == 0
    for name in diagrams.DIAGRAMS:
        for fmt in ("svg", "png"):
            path = out / f"diagram_{name}.{fmt}"
            assert path.exists() and path.stat().st_size > 1000, path
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]        # no temporary left behind
    afile = tmp_path / "a_file"
    afile.write_text("x")
    assert figures.main(["--out", str(afile), "--diagrams-only"]) == 2  # not a folder: a clear error
