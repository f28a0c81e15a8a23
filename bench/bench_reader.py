"""Benchmark of the Delphes-tree reader (``fast2full skim --source delphes``).

Baseline, measured in the same run on the same file: a plain ``uproot`` open and read of exactly the
branches the reader needs (``uproot.open(f)["Delphes"].arrays([...])``), no objects, no output.
Reported: events/s of the
baseline, of the track-variable step alone, and of the full skim (read + objects + selection + parquet),
and the skim's cost as a ratio to the baseline (1.0 = as fast as reading).

    python bench/bench_reader.py [--repeat 5] [--data ../shared/data]

Writes results/bench/reader.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _best(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tile", type=int, default=20, help="copies of the 100 events in the large-file rows")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "reader.json"))
    args = ap.parse_args(argv)

    import awkward as ak
    import uproot

    from fast2full.readers.common import jet_track_variables
    from fast2full.readers.delphes import BRANCHES, OPTIONAL_BRANCHES, TREE, skim_delphes

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    branches = [b for bs in BRANCHES.values() for b in bs] + OPTIONAL_BRANCHES
    rows = []

    def measure(label: str, path: Path, tmp: str) -> dict:
        tree = uproot.open(path)[TREE]
        n = tree.num_entries
        paths = {p.rsplit("/", 1)[-1]: p for p in tree.keys(recursive=True)}
        wanted = [paths[b] for b in branches if b in paths]

        def read():
            return uproot.open(path)[TREE].arrays(wanted)

        raw = read()
        a = {p.rsplit("/", 1)[-1]: raw[p] for p in wanted}

        def trackvars():
            jet_track_variables(a["Jet.Eta"], a["Jet.Phi"], a["Track.PT"], a["Track.Eta"], a["Track.Phi"])

        def skim():
            skim_delphes(str(path), f"{tmp}/out.parquet", config, "ttbar", chunk=0)

        skim()  # warm-up (imports, vector behaviours)
        t_read, m_read = _best(read, args.repeat)
        t_trk, m_trk = _best(trackvars, args.repeat)
        t_skim, m_skim = _best(skim, args.repeat)
        return {
            "file": label,
            "events": n,
            "tracks_per_event": float(ak.mean(ak.num(a["Track.PT"]))),
            "read_s": t_read,
            "trackvars_s": t_trk,
            "skim_s": t_skim,
            "read_median_s": m_read,
            "trackvars_median_s": m_trk,
            "skim_median_s": m_skim,
            "read_ev_per_s": n / t_read,
            "trackvars_ev_per_s": n / t_trk,
            "skim_ev_per_s": n / t_skim,
            "skim_over_read": t_skim / t_read,
            "trackvars_over_read": t_trk / t_read,
        }

    with tempfile.TemporaryDirectory() as tmp:
        for det in ("ATLAS", "CMS"):
            path = Path(args.data) / f"delphes_{det}_ttbar100.root"
            if not path.is_file():
                print(f"skip {det}: {path} not found", file=sys.stderr)
                continue
            rows.append(measure(path.name, path, tmp))
            # the same events tiled x args.tile into a flat-named tree (throughput without the
            # fixed cost of opening Delphes' ~400-branch tree)
            big = Path(tmp) / f"{det}_x{args.tile}.root"
            tree = uproot.open(path)[TREE]
            paths = {p.rsplit("/", 1)[-1]: p for p in tree.keys(recursive=True)}
            raw = tree.arrays([paths[b] for b in branches if b in paths])
            tiled = {b: ak.concatenate([raw[paths[b]]] * args.tile) for b in branches if b in paths}
            with uproot.recreate(big) as f:
                f.mktree(TREE, {b: str(v.type.content) for b, v in tiled.items()}).extend(tiled)
            rows.append(measure(f"{path.stem} x{args.tile} (flat tree)", big, tmp))

    hdr = (
        f"{'file':40s} {'events':>6s} {'trk/ev':>7s} {'read ev/s':>10s} {'trkvar ev/s':>12s} "
        f"{'skim ev/s':>10s} {'skim/read':>10s}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['file']:40s} {r['events']:6d} {r['tracks_per_event']:7.0f} {r['read_ev_per_s']:10.0f} "
            f"{r['trackvars_ev_per_s']:12.0f} {r['skim_ev_per_s']:10.0f} {r['skim_over_read']:10.2f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "reader",
                "baseline": "uproot.open + tree.arrays of the same branches",
                "repeat": args.repeat,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
