"""The registry of the paper's tables beyond the main one: `TABLES`, `run_table` (one table) and `run_all` (every
table, sharing set-ups and SAEs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import Profile, get_profile
from .ablations import depth, prompts, sweep_gamma_lambda, sweep_neighbours, sweep_width_k, vit_l14, vit_l14_model
from .baselines import baselines
from .result import SOURCES, TableResult
from .run import Run
from .shift import ood_gate, shift_table


@dataclass(frozen=True)
class Table:
    name: str
    source: str
    run: Callable[..., TableResult]
    help: str
    per_dataset: bool = True        # False: the table spans several datasets (run(profile, dataset, ...))
    shares_sae: bool = True         # run(setup, sae=...) accepts the profile's SAE instead of training it
    options: tuple[str, ...] = ()   # keyword options of `run` a caller may set (the CLI maps its flags to them)
    paper_k: bool = False           # real profiles use the paper's k for this table, whatever the profile's k


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("prompts", SOURCES["prompts"], prompts, "Ens (18 CIFAR templates) and VS2 + Ens"),
    Table("sweep-width-k", SOURCES["sweep-width-k"], sweep_width_k,
          "SAE width x k: VS2 top-1/top-5 and the cosine of steering vectors across configs", paper_k=True),
    Table("sweep-gamma-lambda", SOURCES["sweep-gamma-lambda"], sweep_gamma_lambda, "the (gamma, lambda) grid"),
    Table("sweep-neighbours", SOURCES["sweep-neighbours"], sweep_neighbours, "VS2++ with N in {10, 25, 50, 100}",
          options=("positives",)),
    Table("baselines", SOURCES["baselines"], baselines,
          "CLIP Steering, weighted RAG (alpha x k, Fig. 6), oracle prototypes, beside VS2++", options=("positives",)),
    Table("depth", SOURCES["depth"], depth,
          "steering at the last 1-3 layers with one SAE per layer; every layer reconstructed", paper_k=True),
    Table("vit-l14", SOURCES["vit-l14"], vit_l14, "ViT-L/14, layer 23, 10x width, k = 128", shares_sae=False,
          paper_k=True),
    Table("ood-gate", SOURCES["ood-gate"], ood_gate, "generalized SAE under shift, FVU gate with q in "
          "{0.9, 0.95, 0.99, 0.995} and coverage, beside the target-domain SAE", per_dataset=False,
          shares_sae=False, options=("qs",)),
    Table("shift", SOURCES["shift"], shift_table, "every row on the toy world at 32/16/12/8 px, gains with paired "
          "standard errors, re-centring and the wrong-centroid case", per_dataset=False, shares_sae=False),
)}


def run_table(name: str, profile: str | Profile | None = None, dataset: str | None = None, *, model: str | None = None,
              pretrained: str | None = "", device: str | None = None, progress: bool = False,
              run: Run | None = None, options: dict | None = None) -> TableResult:
    """Run one table by its CLI name on one dataset (the profile's first by default). `run`: a `Run` whose set-ups
    and SAEs are reused (`Run.of(setup, sae=...)` around ones already trained). `options`: keyword options the table
    declares (`Table.options`), e.g. {"positives": "majority"}; any other is refused."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; choose one of {sorted(TABLES)}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(TABLES[name].options))
    if unknown:
        raise ValueError(f"table {name!r} takes no option {unknown[0]!r} (it takes: "
                         f"{', '.join(TABLES[name].options) or 'none'})")
    if run is not None and profile is not None:
        raise ValueError("pass either a profile or a run (whose profile it is), not both")
    t = TABLES[name]
    if run is None:
        p = profile if isinstance(profile, Profile) else get_profile(profile)
        if name == "vit-l14":
            m, pt = vit_l14_model(p)
            model, pretrained = model or m, pt if pretrained == "" else pretrained
        run = Run(p, model=model, pretrained=pretrained, device=device, progress=progress)
    if not t.per_dataset:
        return t.run(dataset=dataset, run=run, **options)
    extra = {"sae": run.sae(dataset)} if t.shares_sae else {}
    return t.run(run.setup(dataset), progress=run.progress, **extra, **options)


def run_all(profile: str | Profile | None = None, datasets: list[str] | None = None, *, model: str | None = None,
            pretrained: str | None = "", device: str | None = None, progress: bool = False):
    """Every table, in the registry's order, on one `Run`: per dataset (the profile's by default) one set-up and one
    profile SAE serve every table that uses them; the multi-dataset tables run once at the end, reusing both.
    Yields each `TableResult` as it finishes."""
    run = Run(profile, model=model, pretrained=pretrained, device=device, progress=progress)
    kw = dict(model=model, pretrained=pretrained, device=device, progress=progress)
    for ds in datasets or run.profile.datasets:
        for name, t in TABLES.items():
            if not t.per_dataset:
                continue
            if name == "vit-l14" and run.profile.real:   # its own backbone: a run of its own
                yield run_table(name, run.profile, ds, **kw)
            else:
                yield run_table(name, dataset=ds, run=run)
    for name, t in TABLES.items():
        if not t.per_dataset:
            yield run_table(name, dataset=datasets[0] if datasets and len(datasets) == 1 else None, run=run)
