"""Which `reproduce` flags each `--table` honours, and the `--table` run itself (results written as each is done).

A flag that shapes rows (`--positives`, `--gate-q`, `--retrieval`, `--pass-variant`, `--k` on real profiles) is
mapped to the table's declared options (`Table.options`, `Table.paper_k`) or refused with the tables that do use
it: no flag is accepted and silently ignored.
"""
from __future__ import annotations

import sys

from .registry import TABLES, run_all, run_table
from .shift import ood_gate_datasets


# the reproduce flags that shape one table's rows: (argparse name, flag, the table option it sets, its value)
TABLE_FLAGS = (("retrieval", "--retrieval", None, None), ("positives", "--positives", "positives", lambda v: v),
               ("gate_q", "--gate-q", "qs", lambda q: (q,)), ("pass_variant", "--pass-variant", None, None))


def table_options(args, profile) -> dict:
    """The options of `--table NAME` from the flags given. A flag that the table would not use is refused with the
    tables that do use it: no flag is accepted and silently ignored."""
    names = list(TABLES) if args.table == "all" else [args.table]
    options = {}
    for attr, flag, option, value in TABLE_FLAGS:
        given = getattr(args, attr, None)
        if given is None:
            continue
        users = ["main (no --table)"] + [t.name for t in TABLES.values() if option and option in t.options]
        if args.table == "all" or option not in TABLES[args.table].options:
            raise ValueError(f"{flag} is not used by --table {args.table} (it applies to: {', '.join(users)}); "
                             f"drop it, or run one of those tables")
        options[option] = value(given)
    if args.k is not None and profile.real:
        fixed = [n for n in names if TABLES[n].paper_k]
        if fixed:
            raise ValueError(f"--k is not used by --table {', '.join(fixed)} on the {profile.name} profile (it runs "
                             "the paper's k for its setting); drop --k, or use an offline profile")
    return options


def run_datasets(args, profile, datasets: list[str]) -> list[str]:
    """Every dataset this reproduce run will read: the named ones, and the shifted datasets of ood-gate (Table 3
    evaluates nine datasets whatever --dataset says when none is given)."""
    if args.table in ("ood-gate", "all") and not args.dataset:
        return list(dict.fromkeys(datasets + [d for group in ood_gate_datasets(profile) for d in group]))
    return datasets


def run_tables(args, profile, datasets: list[str], write_json) -> dict | list:
    """`reproduce --table NAME`: one of the paper's other tables per dataset; `write_json(path, obj, quiet=True)`
    puts each result on disk as soon as it is done (a later failure loses nothing)."""
    kw = dict(model=args.model, pretrained=args.pretrained or "", device=args.device, progress=not args.quiet)
    options = table_options(args, profile)
    single = args.table != "all" and (not TABLES[args.table].per_dataset or len(datasets) == 1)
    if args.table == "all":
        runs = run_all(profile, [args.dataset] if args.dataset else None, **kw)
    elif not TABLES[args.table].per_dataset:     # spans several datasets itself
        runs = (run_table(args.table, profile, args.dataset, options=options, **kw) for _ in range(1))
    else:
        runs = (run_table(args.table, profile, ds, options=options, **kw) for ds in datasets)
    results = []
    while True:
        try:
            r = next(runs)
        except StopIteration:
            break
        except Exception:
            if results and args.json:
                print(f"--table {args.table} failed after {len(results)} result(s); those are in {args.json}",
                      file=sys.stderr)
            raise
        results.append(r.to_dict())
        # each result is on disk as soon as it is done, as in the main table: a later failure loses nothing
        write_json(args.json, results[0] if single else results, quiet=True)
        print(r.table() + "\n")
    return results[0] if single else results
