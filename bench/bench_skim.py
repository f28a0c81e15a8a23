"""Benchmark of the PHYSLITE skim against a plain uproot read of the same branches, same file, same run.

    python bench/bench_skim.py [--file PHYSLITE.root] [--copies 200] [--repeats 3] [--chunk-size 20000]

Without ``--file`` it builds a file of realistic size first: ``--copies`` copies of the shared
100-event example (``../shared/data/PHYSLITE_example.root``) concatenated with ROOT's ``hadd`` (all
~1500 branches kept, so opening it costs what a real PHYSLITE file costs) into
``results/bench/physlite_<N>.root`` (git-ignored; reused when it exists).

Measured, CPU time of this one process (so "per core"), median of ``--repeats``, the two sides
alternated so that drifts in the shared machine's load hit both:

* ``uproot``: ``uproot.open`` + ``tree.arrays`` of exactly the branches the skim reads, entry range by
  entry range (``--chunk-size``), nothing else: the read speed;
* ``skim``: the whole job :func:`fast2full.readers.physlite.skim_physlite` (open, read, object
  definitions, selection, overlap removal, MET, parquet write) with the same chunk size;
* ``objects``: :func:`fast2full.readers.physlite.skim_chunk` alone on one entry range already in
  memory (what the skim adds per event on top of the read).

The figure of merit is skim events/s divided by uproot events/s (goal >= 0.5).  Peak memory: each
chunk size in ``--memory-chunks`` runs the skim in a fresh child process; ``tracemalloc`` (which sees
numpy's and so awkward's buffers) gives the largest memory one entry range allocates while it is read,
turned into objects and written, and ``ru_maxrss`` the whole process's peak resident memory.
Prints a table and writes ``results/bench/skim.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import cpu_time

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT.parent / "shared" / "data" / "PHYSLITE_example.root"
SELECTION = {
    "jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
    "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47, "rel_iso_max": 0.15},
    "muons": {"pt_min": 15.0, "abs_eta_max": 2.5, "rel_iso_max": 0.15},
    "photons": {"pt_min": 20.0, "abs_eta_max": 2.37, "rel_iso_max": 0.15},
}


def config(chunk_size: int) -> dict:
    return {
        "selection": SELECTION,
        "opendata": {"chunk_size": chunk_size, "samples": {"bench": {"dsid": 0, "role": "background"}}},
    }


def find_hadd() -> str | None:
    """ROOT's hadd: on PATH, or inside the PyPI ``root`` package (found without importing ROOT)."""
    if found := shutil.which("hadd"):
        return found
    spec = importlib.util.find_spec("ROOT")
    if spec and spec.origin:
        cand = Path(spec.origin).parent / "bin" / "hadd"
        if cand.is_file():
            return str(cand)
    return None


def build_large_file(src: Path, copies: int, out: Path) -> Path:
    """``copies`` x the events of ``src`` in one file (ROOT hadd, baskets copied as they are)."""
    if out.is_file():
        return out
    hadd = find_hadd()
    if hadd is None:
        raise SystemExit(
            "bench_skim: building the large PHYSLITE file needs ROOT's hadd (pip install "
            "root==0.1a12, the package the real-Delphes tests use) or pass --file"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.root")
    subprocess.run([hadd, "-f", "-n", "0", str(tmp), *[str(src)] * copies], check=True, stdout=subprocess.DEVNULL)
    os.replace(tmp, out)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def child(path: str, chunk_size: int) -> int:
    """The skim of ``path`` in a fresh process, entry range by entry range, with the peak memory that
    each range allocates (read + objects + its parquet row group) traced by ``tracemalloc`` (numpy
    and awkward buffers included); prints JSON."""
    import tracemalloc

    from fast2full.readers import physlite
    from fast2full.readers.common import write_objects

    f, tree, names = physlite.open_tree(path)
    n = tree.num_entries
    peaks: list[int] = []
    cfg = config(chunk_size)

    def chunks():
        for start in range(0, n, chunk_size):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            out = physlite.skim_chunk(physlite.read_chunk(tree, names, start, min(start + chunk_size, n)), cfg, "bench")
            yield out
            peaks.append(tracemalloc.get_traced_memory()[1] - before)  # after its row group is written

    tracemalloc.start()
    with tempfile.TemporaryDirectory() as d:
        write_objects(chunks(), Path(d) / "out.parquet")
    tracemalloc.stop()
    f.close()
    print(json.dumps({"peak_chunk_mb": max(peaks) / 2**20, "n_chunks": len(peaks), "peak_rss_mb": peak_rss_mb()}))
    return 0


def run_child(path: str, chunk_size: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--file", path, "--chunk-size", str(chunk_size)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=os.environ.get("FAST2FULL_BENCH_PHYSLITE"))
    ap.add_argument("--copies", type=int, default=200, help="copies of the 100-event example (default 20,000 events)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=20_000)
    ap.add_argument("--memory-chunks", default="1000,5000,20000", help="chunk sizes of the memory measurement")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "skim.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.file, args.chunk_size)
    if args.file is None:
        if not EXAMPLE.is_file():
            print(f"{EXAMPLE}: shared PHYSLITE example not found (pass --file)", file=sys.stderr)
            return 2
        n = args.copies * 100
        args.file = str(build_large_file(EXAMPLE, args.copies, ROOT / "results" / "bench" / f"physlite_{n}.root"))
    if not Path(args.file).is_file():
        print(f"{args.file}: PHYSLITE file not found", file=sys.stderr)
        return 2

    import uproot

    from fast2full.readers import physlite

    f, tree, names = physlite.open_tree(args.file)
    branches = sorted(physlite.BRANCHES & names)
    n_events = tree.num_entries
    f.close()
    step = args.chunk_size

    def uproot_read():
        with uproot.open(args.file, array_cache=None) as g:
            t = g[physlite.TREE_NAME]
            for start in range(0, n_events, step):
                t.arrays(branches, entry_start=start, entry_stop=min(start + step, n_events), library="ak")

    def skim():
        with tempfile.TemporaryDirectory() as d:
            physlite.skim_physlite(args.file, str(Path(d) / "out.parquet"), config(step), "bench")

    uproot_read()  # warm: imports, the OS page cache of the file, uproot's interpretations
    t_base, t_skim = [], []
    for _ in range(args.repeats):
        t_base.append(cpu_time(uproot_read, 1))
        t_skim.append(cpu_time(skim, 1))
    t_base.sort(), t_skim.sort()
    tb, ts = t_base[len(t_base) // 2], t_skim[len(t_skim) // 2]

    f, tree, names = physlite.open_tree(args.file)
    chunk = physlite.read_chunk(tree, names, 0, min(step, n_events))
    f.close()
    t_obj = cpu_time(lambda: physlite.skim_chunk(chunk, config(step), "bench"), args.repeats)
    n_obj = chunk.n

    memory = []
    for c in (int(x) for x in args.memory_chunks.split(",")):
        m = run_child(args.file, c)
        memory.append({"chunk_size": c, **m, "per_1000_events_mb": m["peak_chunk_mb"] / min(c, n_events) * 1000})

    result = {
        "stage": "skim",
        "source": "physlite",
        "file": str(args.file),
        "events": n_events,
        "branches": len(branches),
        "chunk_size": step,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "uproot_cpu_s": tb,
        "skim_cpu_s": ts,
        "uproot_events_per_s": n_events / tb,
        "skim_events_per_s": n_events / ts,
        "skim_over_uproot_speed": tb / ts,
        "objects_only_events_per_s": n_obj / t_obj,
        "memory": memory,
    }
    print(
        f"PHYSLITE skim vs uproot read of the same {len(branches)} branches: {n_events} events, "
        f"entry ranges of {step}, CPU seconds of one process (median of {args.repeats})"
    )
    print(f"  uproot read      {result['uproot_events_per_s']:10.0f} events/s")
    print(
        f"  skim (whole job) {result['skim_events_per_s']:10.0f} events/s  ->  skim/uproot = "
        f"{result['skim_over_uproot_speed']:.2f}"
    )
    print(f"  objects only     {result['objects_only_events_per_s']:10.0f} events/s (one range already read)")
    for m in memory:
        print(
            f"  chunk_size {m['chunk_size']:6d}: peak memory of one entry range {m['peak_chunk_mb']:7.1f} MB "
            f"({m['per_1000_events_mb']:.1f} MB per 1000 events; whole process peak RSS {m['peak_rss_mb']:.0f} MB)"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
