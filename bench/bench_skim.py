"""Benchmark of the PHYSLITE skim against a plain uproot read of the same branches, same file, same run.

    python bench/bench_skim.py [--file PHYSLITE.root] [--repeats 3]

Two measurements, each the median of ``--repeats`` runs, CPU time of this one process (so "per core"):

* ``cold``: the whole job on one file — open, read, (skim: object definitions, selection, overlap
  removal, MET, parquet write) — against ``uproot.open`` + ``tree.arrays`` of the branches the skim reads;
* ``warm``: one entry range on an already open file:
  :func:`fast2full.readers.physlite.skim_chunk` on fresh NanoEvents against ``tree.arrays`` of the
  same range;
* ``marginal``: warm(all events) - warm(a fifth of them): the cost per extra event without the fixed
  per-call overhead, i.e. what large entry ranges approach (noisy on a 100-event file).

The ratio skim / uproot is the overhead of coffea + the physics over the bare read.  Prints a table and
writes ``results/bench/skim.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from _timing import cpu_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "data" / "PHYSLITE_example.root"
SELECTION = {"jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
             "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47, "rel_iso_max": 0.15},
             "muons": {"pt_min": 15.0, "abs_eta_max": 2.5, "rel_iso_max": 0.15},
             "photons": {"pt_min": 20.0, "abs_eta_max": 2.37, "rel_iso_max": 0.15}}
CONFIG = {"selection": SELECTION, "opendata": {"samples": {"bench": {"dsid": 0, "role": "background"}}}}



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=os.environ.get("FAST2FULL_BENCH_PHYSLITE", str(DEFAULT_FILE)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "skim.json"))
    args = ap.parse_args(argv)
    if not Path(args.file).is_file():
        print(f"{args.file}: PHYSLITE file not found (set --file or FAST2FULL_BENCH_PHYSLITE)", file=sys.stderr)
        return 2

    import uproot

    from fast2full.readers import physlite

    # what the skim reads: the same branch list for the uproot baseline
    f, tree, names = physlite.open_tree(args.file)
    branches = sorted(physlite.BRANCHES & names)
    n_events = tree.num_entries
    physlite._events(f, names, 0, n_events)  # warm caches (imports, interpretations) for both sides

    def uproot_cold():
        with uproot.open(args.file) as g:
            g["CollectionTree"].arrays(branches, library="ak")

    def skim_cold():
        with tempfile.TemporaryDirectory() as d:
            physlite.skim_physlite(args.file, str(Path(d) / "out.parquet"), CONFIG, "bench")

    def uproot_warm(stop=n_events):
        tree.arrays(branches, entry_start=0, entry_stop=stop, library="ak")

    def skim_warm(stop=n_events):
        physlite.skim_chunk(physlite._events(f, names, 0, stop), CONFIG, "bench")

    rows = []
    for name, base, skim in (("cold", uproot_cold, skim_cold), ("warm", uproot_warm, skim_warm)):
        t_base, t_skim = cpu_time(base, args.repeats), cpu_time(skim, args.repeats)
        rows.append({"case": name, "events": n_events, "uproot_cpu_s": t_base, "skim_cpu_s": t_skim,
                     "uproot_events_per_s": n_events / t_base, "skim_events_per_s": n_events / t_skim,
                     "overhead_ratio": t_skim / t_base})
    # marginal cost: (range of n events) - (range of SMALL events), i.e. without the per-call overhead
    small = max(1, n_events // 5)
    t_base = cpu_time(uproot_warm, args.repeats) - cpu_time(lambda: uproot_warm(small), args.repeats)
    t_skim = cpu_time(skim_warm, args.repeats) - cpu_time(lambda: skim_warm(small), args.repeats)
    if t_base > 0 and t_skim > 0:
        n = n_events - small
        rows.append({"case": "marginal", "events": n, "uproot_cpu_s": t_base, "skim_cpu_s": t_skim,
                     "uproot_events_per_s": n / t_base, "skim_events_per_s": n / t_skim,
                     "overhead_ratio": t_skim / t_base})
    f.close()

    print(f"PHYSLITE skim vs uproot read of the same {len(branches)} branches, {n_events} events, "
          f"CPU seconds of one process (median of {args.repeats})")
    print(f"{'case':6} {'uproot ev/s':>12} {'skim ev/s':>10} {'skim/uproot':>12}")
    for r in rows:
        print(f"{r['case']:6} {r['uproot_events_per_s']:12.1f} {r['skim_events_per_s']:10.1f} "
              f"{r['overhead_ratio']:12.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"stage": "skim", "source": "physlite", "file": str(args.file),
                               "branches": len(branches), "repeats": args.repeats,
                               "python": platform.python_version(), "machine": platform.machine(),
                               "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
