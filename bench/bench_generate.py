"""Benchmark of event generation, as a ratio against bare ``Pythia.nextBatch`` in the same run.

For every process of ``config.yaml`` (same settings and seed for both measurements, so both
generate the very same events):

* baseline: ``nextBatch`` in the same batch sizes, results dropped (no pruning, no output);
* fast2full: :func:`fast2full.generate.generate_chunk` (nextBatch + vectorised pruning and mother
  remapping + event fields) and :func:`fast2full.generate.write_particles` (zstd parquet).

Times are CPU seconds of this process (``time.process_time``), so other jobs on a shared machine do
not inflate them; Pythia's ``init()`` is timed apart (it is paid once per chunk).  Reported: events/s of both, the
ratio of times (fast2full / baseline; target <= 1.15), bytes per event on disk and the fraction of
the Pythia record kept.  One core: run it with nothing else heavy on the machine.

Run: ``python bench/bench_generate.py [--events N] [--repeats R] [--processes ttbar ...]``; prints a
table and writes ``results/bench/generate.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import awkward as ak

from fast2full import generate as gen
from fast2full.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def time_baseline(spec: gen.ChunkSpec, batch: int) -> tuple[float, float, int]:
    """(init s, nextBatch s, full-record particles) for bare nextBatch."""
    t0 = time.process_time()
    pythia, _hook = gen.make_pythia(spec.settings, spec.process)
    t1 = time.process_time()
    done = n_particles = 0
    t_gen = 0.0
    while done < spec.n_events:
        ta = time.process_time()
        events = pythia.nextBatch(min(batch, spec.n_events - done), "skip")
        t_gen += time.process_time() - ta
        done += len(events)
        n_particles += int(ak.sum(ak.num(events.prt)))  # not timed
    return t1 - t0, t_gen, n_particles


def time_fast2full(spec: gen.ChunkSpec, batch: int, out: Path) -> tuple[float, float, int, int]:
    """(init s, generate+write s, kept particles, bytes) for fast2full's chunk generation."""
    t0 = time.process_time()
    pythia = gen.make_pythia(spec.settings, spec.process)
    t1 = time.process_time()
    events = gen.generate_chunk(spec, batch=batch, pythia=pythia)
    gen.write_particles(events, out)
    t2 = time.process_time()
    return t1 - t0, t2 - t1, int(ak.sum(ak.num(events.particles))), out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--events", type=int, default=300, help="events per process")
    ap.add_argument("--repeats", type=int, default=2, help="best of R for each measurement")
    ap.add_argument("--batch", type=int, default=gen.DEFAULT_BATCH)
    ap.add_argument("--processes", nargs="*", default=None)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "generate.json"))
    args = ap.parse_args(argv)
    config = load_config(args.config, base_dir=ROOT)
    processes = args.processes or list(config["processes"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for process in processes:
            config["processes"][process]["events_per_chunk"] = args.events
            spec = gen.chunk_spec(config, process, 0)
            base, full = [], []
            for r in range(args.repeats):  # alternate the order: drifts in machine load cancel
                if r % 2:
                    full.append(time_fast2full(spec, args.batch, Path(tmp) / f"{process}{r}.parquet"))
                base.append(time_baseline(spec, args.batch))
                if not r % 2:
                    full.append(time_fast2full(spec, args.batch, Path(tmp) / f"{process}{r}.parquet"))
            b = min(base, key=lambda x: x[1])
            f = min(full, key=lambda x: x[1])
            n = spec.n_events
            rows.append({
                "process": process, "events": n,
                "init_s": min(x[0] for x in base + full),
                "baseline_events_per_s": n / b[1], "fast2full_events_per_s": n / f[1],
                "ratio_time": f[1] / b[1],
                "bytes_per_event": f[3] / n,
                "particles_per_event_full": b[2] / n, "particles_per_event_kept": f[2] / n,
            })
            r_ = rows[-1]
            print(f"{process:8s} {r_['baseline_events_per_s']:8.1f} {r_['fast2full_events_per_s']:8.1f} "
                  f"{r_['ratio_time']:6.3f} {r_['bytes_per_event'] / 1e3:7.1f} kB "
                  f"{r_['particles_per_event_kept']:6.0f}/{r_['particles_per_event_full']:.0f} "
                  f"init {r_['init_s']:.1f} s", flush=True)
    header = ("| process | nextBatch only (ev/s) | fast2full generate+write (ev/s) | time ratio | "
              "bytes/event | particles kept / Pythia record | init (s) |\n|---|---|---|---|---|---|---|")
    lines = [header] + [
        f"| {r['process']} | {r['baseline_events_per_s']:.1f} | {r['fast2full_events_per_s']:.1f} | "
        f"{r['ratio_time']:.3f} | {r['bytes_per_event'] / 1e3:.1f} kB | "
        f"{r['particles_per_event_kept']:.0f} / {r['particles_per_event_full']:.0f} | {r['init_s']:.1f} |"
        for r in rows]
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"stage": "generate", "machine": platform.processor() or platform.machine(),
                               "python": platform.python_version(), "events": args.events,
                               "repeats": args.repeats, "batch": args.batch, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
