"""The table of open defaults (vs2mini/teach/defaults.py): every location exists and holds the recorded value, and the
method page carries exactly the generated table."""
from __future__ import annotations

import pytest

from vs2mini.teach import defaults


@pytest.mark.parametrize("entry", defaults.OPEN_DEFAULTS, ids=lambda e: e.topic)
def test_every_default_lives_where_the_table_says(entry):
    module, name = entry.where.split(":")
    mod = __import__(f"vs2mini.{module}", fromlist=["_"])
    obj = mod
    for part in name.split("."):
        obj = getattr(obj, part)                 # the named place exists
    assert defaults.resolve(entry) == entry.value


def test_topics_are_unique_and_cells_filled():
    topics = [e.topic for e in defaults.OPEN_DEFAULTS]
    assert len(topics) == len(set(topics))
    assert all(e.paper and e.choice and e.why for e in defaults.OPEN_DEFAULTS)


def test_method_page_shows_exactly_the_generated_table():
    text = defaults.METHOD_PAGE.read_text()
    assert text.count(defaults.BEGIN) == 1 and text.count(defaults.END) == 1
    section = text.split(defaults.BEGIN, 1)[1].split(defaults.END, 1)[0]
    assert section == "\n" + defaults.defaults_markdown() + "\n", "run: python -m vs2mini.teach.defaults"


def test_update_page_rewrites_only_the_section(tmp_path):
    page = tmp_path / "m.md"
    page.write_text(f"before\n{defaults.BEGIN}\nstale\n{defaults.END}\nafter\n")
    assert defaults.update_page(page) is True
    assert page.read_text() == f"before\n{defaults.BEGIN}\n{defaults.defaults_markdown()}\n{defaults.END}\nafter\n"
    assert defaults.update_page(page) is False
    page.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        defaults.update_page(page)
