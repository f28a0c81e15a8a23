"""Benchmark of event generation, as a ratio against bare ``Pythia.nextBatch`` in the same run.

For every process of ``config.yaml`` two Pythia instances are initialised with the same settings and
seed (so both generate the very same events) and run interleaved, batch by batch:

* fast2full: :func:`fast2full.generate.generate_chunk` (nextBatch + vectorised pruning and mother
  remapping + event fields) and :func:`fast2full.generate.write_particles` (zstd parquet);
* baseline: after each fast2full batch, bare ``nextBatch`` of the same size on the other instance,
  result dropped (no pruning, no output).

Two ratios are reported: fast2full against the bare instance (noisy on a shared machine: two
Pythia instances, interleaved, see different cache and load conditions), and fast2full against the
CPU time of the ``nextBatch`` calls inside its own run (the same calls a bare loop makes; robust),
with the overhead in ms/event that fast2full adds (pruning, remapping, event fields, parquet write).

Interleaving at the batch level makes both see the same machine load, which matters on a shared
machine.  Times are CPU seconds of this process (``time.process_time``); Pythia's ``init()`` is
timed apart (paid once per chunk).  Reported: events/s of both, the ratio of times (fast2full /
baseline; target <= 1.15), bytes per event on disk and the fraction of the Pythia record kept.

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
from statistics import median

import awkward as ak

from fast2full import generate as gen
from fast2full.config import load_config

ROOT = Path(__file__).resolve().parents[1]


class _TimedPythia:
    """Delegates to a Pythia instance and accumulates the CPU time spent inside ``nextBatch``."""

    def __init__(self, pythia):
        self._pythia = pythia
        self.next_batch_s = 0.0

    def nextBatch(self, n, mode):  # noqa: N802 (Pythia's name)
        t0 = time.process_time()
        events = self._pythia.nextBatch(n, mode)
        self.next_batch_s += time.process_time() - t0
        return events

    def __getattr__(self, name):
        return getattr(self._pythia, name)


def measure(spec: gen.ChunkSpec, batch: int, out: Path) -> dict:
    """One interleaved run: CPU seconds of fast2full (and of the nextBatch calls inside it) and of
    bare nextBatch on a second instance; sizes."""
    t0 = time.process_time()
    fast, hook = gen.make_pythia(spec.settings, spec.process)
    init_s = time.process_time() - t0
    timed = _TimedPythia(fast)
    bare, _hook = gen.make_pythia(spec.settings, spec.process)
    acc = {"base_s": 0.0, "callback_s": 0.0}

    def on_batch(n: int) -> None:
        ta = time.process_time()
        events = bare.nextBatch(n, "skip")
        del events
        tb = time.process_time()
        acc["base_s"] += tb - ta
        acc["callback_s"] += time.process_time() - ta

    t0 = time.process_time()
    events = gen.generate_chunk(spec, batch=batch, pythia=(timed, hook), on_batch=on_batch)
    gen.write_particles(events, out)
    total = time.process_time() - t0 - acc["callback_s"]
    return {
        "init_s": init_s,
        "base_s": acc["base_s"],
        "fast2full_s": total,
        "inner_next_batch_s": timed.next_batch_s,
        "kept": int(ak.sum(ak.num(events.particles))),
        "bytes": out.stat().st_size,
    }


def full_record_size(spec: gen.ChunkSpec, batch: int) -> int:
    """Particles in Pythia's full records for the chunk (a separate, untimed run)."""
    pythia, _ = gen.make_pythia(spec.settings, spec.process)
    done = total = 0
    while done < spec.n_events:
        events = pythia.nextBatch(min(batch, spec.n_events - done), "skip")
        done += len(events)
        total += int(ak.sum(ak.num(events.prt)))
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--events", type=int, default=300, help="events per process")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs; the median ratio is reported")
    ap.add_argument("--batch", type=int, default=gen.DEFAULT_BATCH)
    ap.add_argument("--processes", nargs="*", default=None)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "generate.json"))
    args = ap.parse_args(argv)
    config = load_config(args.config, base_dir=ROOT)
    processes = args.processes or list(config["processes"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: first-call imports of the parquet writer are not per-event costs
        gen.write_particles(ak.Array([{"x": 1}]), Path(tmp) / "warmup.parquet")
        for process in processes:
            config["processes"][process]["events_per_chunk"] = args.events
            spec = gen.chunk_spec(config, process, 0)
            runs = [measure(spec, args.batch, Path(tmp) / f"{process}{r}.parquet") for r in range(args.repeats)]
            ratios = [x["fast2full_s"] / x["base_s"] for x in runs]
            inner = [x["fast2full_s"] / x["inner_next_batch_s"] for x in runs]
            overhead = [(x["fast2full_s"] - x["inner_next_batch_s"]) / spec.n_events for x in runs]
            n = spec.n_events
            full_particles = full_record_size(spec, args.batch)
            rows.append(
                {
                    "process": process,
                    "events": n,
                    "init_s": min(x["init_s"] for x in runs),
                    "baseline_events_per_s": n / min(x["base_s"] for x in runs),
                    "fast2full_events_per_s": n / min(x["fast2full_s"] for x in runs),
                    "ratio_vs_bare_instance": median(ratios),
                    "ratio_vs_bare_instance_all": ratios,
                    "ratio_vs_own_nextbatch": median(inner),
                    "overhead_ms_per_event": 1e3 * median(overhead),
                    "bytes_per_event": runs[0]["bytes"] / n,
                    "particles_per_event_full": full_particles / n,
                    "particles_per_event_kept": runs[0]["kept"] / n,
                }
            )
            r_ = rows[-1]
            print(
                f"{process:8s} {r_['baseline_events_per_s']:8.1f} {r_['fast2full_events_per_s']:8.1f} "
                f"{r_['ratio_vs_bare_instance']:6.3f} {r_['ratio_vs_own_nextbatch']:6.3f} "
                f"{r_['overhead_ms_per_event']:6.3f} ms {r_['bytes_per_event'] / 1e3:7.1f} kB "
                f"{r_['particles_per_event_kept']:6.0f}/{r_['particles_per_event_full']:.0f} "
                f"init {r_['init_s']:.1f} s",
                flush=True,
            )
    header = (
        "| process | bare nextBatch (ev/s) | fast2full generate + write (ev/s) | ratio vs bare "
        "instance | ratio vs its own nextBatch time | fast2full overhead (ms/event) | bytes/event | "
        "particles kept / Pythia record | init (s) |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {r['process']} | {r['baseline_events_per_s']:.1f} | {r['fast2full_events_per_s']:.1f} | "
        f"{r['ratio_vs_bare_instance']:.3f} | {r['ratio_vs_own_nextbatch']:.3f} | "
        f"{r['overhead_ms_per_event']:.3f} | {r['bytes_per_event'] / 1e3:.1f} kB | "
        f"{r['particles_per_event_kept']:.0f} / {r['particles_per_event_full']:.0f} | {r['init_s']:.1f} |"
        for r in rows
    ]
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "stage": "generate",
                "machine": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "events": args.events,
                "repeats": args.repeats,
                "batch": args.batch,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
