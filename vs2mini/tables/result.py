"""What every table run returns: `TableResult` (rows of ours beside the paper's, matrices, notes, the run's settings)
and its one text renderer. The main table (vs2mini.tables.main) is a `TableResult` named "main" too.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .. import paper
from ..config import TOY_BANNER
from ..pipeline import Setup

# Where each table comes from in the paper (the CLI's --help lists them; vs2mini.tables.registry runs them).
SOURCES = {
    "main": "Table 1a, Table 11 (ViT-B/16) and Table 3's FVU gate (§4.3)",
    "prompts": "Table 1b (prompt ensembles, TTA)",
    "sweep-width-k": "Table 8 and Table 16 (App. F)",
    "sweep-gamma-lambda": "Figs. 3 and 5 (App. B)",
    "sweep-neighbours": "Fig. 7 (App. J)",
    "baselines": "Table 1a RAG rows, App. D and App. L",
    "depth": "Table 7 (App. E) and SAE^A_REC (Table 1a)",
    "vit-l14": "Table 9 (App. H)",
    "ood-gate": "Table 3 (§4.3)",
    "shift": "Table 1a's rows under a pretraining-to-evaluation shift (the toy world's resolution domains; "
             "Table 3's wrong-centroid pattern)",
}

# A column whose name starts with this is a change (points): the text table prints it with its sign.
CHANGE_PREFIX = "vs "


@dataclass
class TableRow:
    label: str
    ours: dict[str, float | None]                     # column -> our value
    paper: dict[str, float | None] = field(default_factory=dict)   # column -> the paper's value (its setting)
    note: str = ""


@dataclass
class Matrix:
    """A labelled square or rectangular grid (Table 16's cosines, a sweep's grid)."""
    title: str
    row_labels: list[str]
    col_labels: list[str]
    values: list[list[float]]


@dataclass
class TableResult:
    name: str                   # CLI name, e.g. "sweep-width-k"; "main" for the main table
    source: str                 # the paper's table / figure
    setting: str                # what this run used, in words
    paper_setting: str          # the setting the paper's numbers belong to
    real: bool
    columns: list[str]
    rows: list[TableRow] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    banner: str = ""
    dataset: str = ""           # the run, machine-readable (`setting` says it in words)
    model: str = ""
    pretrained: str | None = None
    profile: str = ""
    settings: dict = field(default_factory=dict)   # what shaped the rows (the main table: gamma, lam, SAE training)

    @property
    def warning(self) -> str | None:
        return None if self.real else (self.banner or TOY_BANNER)

    def row(self, label: str) -> TableRow:
        """The row called `label` (a KeyError that lists the labels otherwise)."""
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(f"no row {label!r} in table {self.name}; rows: {[r.label for r in self.rows]}")

    def column(self, col: str, paper_side: bool = False) -> dict[str, float | None]:
        """{row label: our value in `col`} (the paper's with `paper_side=True`), in row order."""
        if col not in self.columns:
            raise KeyError(f"no column {col!r} in table {self.name}; columns: {self.columns}")
        return {r.label: (r.paper if paper_side else r.ours).get(col) for r in self.rows}

    def _paper_columns(self) -> dict[str, bool]:
        """{column: whether the paper reports it for any row} (those get a paper value beside ours)."""
        return {c: any(r.paper.get(c) is not None for r in self.rows) for c in self.columns}

    def table(self) -> str:
        """Text table: each column as `ours` and `paper`, the toy-model warning once at the top."""
        out = [f"vs2mini reproduce --table {self.name}: {self.source}", f"this run: {self.setting}",
               f"paper:    {self.paper_setting}"]
        if self.warning:
            out.append(f"*** {self.warning} ***")
        width = max([len(r.label) for r in self.rows] + [12])
        cw = {c: max(8, len(c)) for c in self.columns}
        has_paper = self._paper_columns()
        head = f"{'':<{width}} " + " ".join(f"{c:>{cw[c]}}" + (f" {'paper':>7}" if has_paper[c] else "")
                                           for c in self.columns)
        out += [head, "-" * len(head)]

        def fmt(v, w, c):
            sign = "+" if c.startswith(CHANGE_PREFIX) else ""
            return f"{v:{sign}{w}.2f}" if v is not None else f"{'-':>{w}}"
        for r in self.rows:
            cells = " ".join(fmt(r.ours.get(c), cw[c], c) + (f" {fmt(r.paper.get(c), 7, c)}" if has_paper[c] else "")
                             for c in self.columns)
            out.append(f"{r.label:<{width}} {cells}" + (f"  {r.note}" if r.note else ""))
        for m in self.matrices:
            lw = max(len(x) for x in m.row_labels)
            mw = max([9] + [len(c) + 1 for c in m.col_labels])
            out += ["", m.title, " " * lw + "".join(f"{c:>{mw}}" for c in m.col_labels)]
            out += [f"{lab:<{lw}}" + "".join(f"{v:{mw}.3f}" for v in vals) for lab, vals in zip(m.row_labels, m.values)]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out)

    def to_frame(self):
        """The rows as a pandas DataFrame indexed by label: one column per value of ours, "(paper)" beside each
        column the paper reports, the row notes in a last column."""
        import pandas as pd
        has_paper, has_note = self._paper_columns(), any(r.note for r in self.rows)
        records = []
        for r in self.rows:
            rec = {}
            for c in self.columns:
                rec[c] = r.ours.get(c)
                if has_paper[c]:
                    rec[f"{c} (paper)"] = r.paper.get(c)
            if has_note:
                rec["note"] = r.note
            records.append(rec)
        return pd.DataFrame(records, index=pd.Index([r.label for r in self.rows], name="label"))

    def to_dict(self) -> dict:
        return {**asdict(self), "warning": self.warning}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _paper_key(s: Setup, default: tuple[str, str] = ("cifar100", "ViT-B-32")) -> tuple[tuple[str, str], str]:
    """The paper's (dataset, backbone) this run corresponds to, or `default` for other runs, with a description."""
    key = (s.dataset, paper.paper_backbone(s.clip.name))
    if s.real and s.clip.pretrained == "openai" and key in paper.PAPER_COLUMNS:
        return key, f"{key[0]}, {key[1]} (this run's setting)"
    return default, f"{default[0]}, {default[1]} (the paper's setting; not this run's)"


def _table_1a(method: str, key: tuple[str, str], col: str) -> dict[str, float]:
    """{col: Table 1a's number for `method` at the paper's (dataset, backbone) `key`}."""
    return {col: paper.TABLE_1A[method][paper.PAPER_COLUMNS.index(key)]}


def _setting(s: Setup, **extra) -> str:
    more = "".join(f", {k} {v}" for k, v in extra.items())
    return (f"{s.dataset}, {s.clip.name} ({s.clip.pretrained or 'random weights'}), profile {s.profile.name}, "
            f"{len(s.train.labels)} train / {len(s.test.labels)} test{more}")


def _result(name: str, s: Setup, columns, paper_setting: str, **extra) -> TableResult:
    return TableResult(name, SOURCES[name], _setting(s, **extra), paper_setting, s.real, list(columns),
                       banner=s.banner, dataset=s.dataset, model=s.clip.name, pretrained=s.clip.pretrained,
                       profile=s.profile.name)
