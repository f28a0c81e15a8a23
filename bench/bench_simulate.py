"""Benchmark of the builtin fast simulation, as a ratio to Pythia8 generation of the same events.

The baseline is measured in the same run: Pythia8 generates N ttbar events with the default
config's settings (``fast2full.generate.generate_chunk``, initialisation included), then every card
simulates exactly those events (``fast2full.delphes.engine.simulate``: read the parquet, all modules,
write the ROOT file).  Ratio = simulation time / generation time (real Delphes with its stock ATLAS
card costs ~0.3x Pythia8's time; goal <= 0.25x).  A per-module breakdown of one batch is printed.

Run: ``python bench/bench_simulate.py [--events N] [--repeats R]``; prints a table and writes
``results/bench/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from fast2full import generate
from fast2full.common import atomic_output
from fast2full.config import load_config
from fast2full.delphes.engine import Simulation, input_arrays, particles_to_coll, read_generation, simulate
from fast2full.delphes.modules import Context

ROOT = Path(__file__).resolve().parents[1]
CARDS = {"atlas_like": "cards/atlas_like.tcl", "cms_like": "cards/cms_like.tcl"}


def module_times(card: Path, events) -> dict[str, float]:
    sim = Simulation.from_card(card)
    gen = particles_to_coll(events)
    ctx = Context(n_events=len(events), rng=np.random.default_rng(1), next_uid=len(gen))
    ctx.arrays.update(input_arrays(gen))
    out = {}
    for m in sim.modules:
        t0 = time.perf_counter()
        m.process(ctx)
        out[m.name] = time.perf_counter() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2, help="simulation repeats (best is kept)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    cfg = load_config(ROOT / "config.yaml")
    cfg["processes"]["ttbar"]["events_per_chunk"] = args.events
    spec = generate.chunk_spec(cfg, "ttbar", 0)
    with tempfile.TemporaryDirectory() as tmp:
        gen_path = Path(tmp) / "ttbar.parquet"
        t0 = time.perf_counter()
        events = generate.generate_chunk(spec)
        t_gen = time.perf_counter() - t0
        generate.write_particles(events, gen_path)
        # warm-up (imports, fastjet banner) on a few events, not timed
        simulate(ROOT / CARDS["atlas_like"], gen_path, Path(tmp) / "warm.root", batch_size=50)
        rows = []
        for det, card in CARDS.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                simulate(ROOT / card, gen_path, Path(tmp) / f"{det}.root")
                times.append(time.perf_counter() - t0)
            t_sim = min(times)
            mods = module_times(ROOT / card, read_generation(gen_path)[:500])
            top = sorted(mods.items(), key=lambda kv: -kv[1])[:4]
            rows.append({"card": det, "events": args.events, "sim_s": t_sim,
                         "sim_events_per_s": args.events / t_sim, "gen_s": t_gen,
                         "gen_events_per_s": args.events / t_gen, "ratio_sim_to_gen": t_sim / t_gen,
                         "slowest_modules_s": {k: round(v, 3) for k, v in top}})
    print(f"{'card':<12}{'events':>8}{'sim [s]':>10}{'sim ev/s':>10}{'gen [s]':>10}"
          f"{'gen ev/s':>10}{'sim/gen':>9}")
    for r in rows:
        print(f"{r['card']:<12}{r['events']:>8}{r['sim_s']:>10.2f}{r['sim_events_per_s']:>10.1f}"
              f"{r['gen_s']:>10.2f}{r['gen_events_per_s']:>10.1f}{r['ratio_sim_to_gen']:>9.3f}")
        print(f"{'':<12}slowest modules (500 events): {r['slowest_modules_s']}")
    out = ROOT / "results" / "bench" / "simulate.json"
    with atomic_output(out) as tmp_out:
        tmp_out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                       "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
