"""Benchmark of the fast simulation: builtin engine and real Delphes on the same events, as
ratios to Pythia8 generation of those events and to each other, all measured in the same run.

Pythia8 generates N ttbar events with the default config's settings
(``fast2full.generate.generate_chunk``, initialisation included); every card then simulates exactly
those events with the builtin engine (``fast2full.delphes.engine.simulate``: read the parquet, all
modules, write the ROOT file) and, where real Delphes is found (``fast2full.delphes.real``), with
``DelphesHepMC3`` on their HepMC3 export (reading the HepMC text included; the export itself is
timed apart).  Ratios: builtin / generation, real / generation, builtin / real.  A per-module
breakdown of one batch of the builtin engine is printed.

Run: ``python bench/bench_simulate.py [--events N] [--repeats R] [--no-real]``; prints a table and
writes ``results/bench/simulate.json``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import write_results

from fast2full import generate
from fast2full.config import load_config
from fast2full.delphes.engine import Simulation, input_arrays, particles_to_coll, read_generation, simulate
from fast2full.delphes.modules import Context
from fast2full.delphes.real import find_delphes, run_delphes
from fast2full.hepmc import write_hepmc

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


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2, help="simulation repeats (best is kept)")
    ap.add_argument("--no-real", action="store_true", help="skip real Delphes")
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
        exe = None if args.no_real else find_delphes(ROOT)
        hepmc_path = Path(tmp) / "ttbar.hepmc"
        t0 = time.perf_counter()
        write_hepmc(events, hepmc_path)
        t_export = time.perf_counter() - t0
        one_path = Path(tmp) / "one.hepmc"  # Delphes' fixed cost: ROOT start, card, dictionaries
        write_hepmc(events[:1], one_path)
        rows = []
        for det, card in CARDS.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                simulate(ROOT / card, gen_path, Path(tmp) / f"{det}.root")
                times.append(time.perf_counter() - t0)
            t_sim = min(times)
            t_real = t_start = None
            if exe is not None:
                real_times = []
                for k in range(args.repeats):
                    out = Path(tmp) / f"{det}_real{k}.root"
                    t0 = time.perf_counter()
                    run_delphes(ROOT / card, hepmc_path, out, exe=exe)
                    real_times.append(time.perf_counter() - t0)
                t_real = min(real_times)
                t_start = min(
                    _timed(
                        lambda k=k, card=card, det=det: run_delphes(
                            ROOT / card, one_path, Path(tmp) / f"{det}_one{k}.root", exe=exe
                        )
                    )
                    for k in range(args.repeats)
                )
            mods = module_times(ROOT / card, read_generation(gen_path)[:500])
            top = sorted(mods.items(), key=lambda kv: -kv[1])[:4]
            n = args.events
            rows.append(
                {
                    "card": det,
                    "events": n,
                    "sim_s": t_sim,
                    "sim_ms_per_event": 1e3 * t_sim / n,
                    "real_s": t_real,
                    "real_ms_per_event": None if t_real is None else 1e3 * t_real / n,
                    "real_startup_s": t_start,
                    "real_marginal_ms_per_event": None if t_real is None else 1e3 * (t_real - t_start) / max(n - 1, 1),
                    "gen_s": t_gen,
                    "gen_ms_per_event": 1e3 * t_gen / n,
                    "hepmc_export_s": t_export,
                    "ratio_sim_to_gen": t_sim / t_gen,
                    "ratio_real_to_gen": None if t_real is None else t_real / t_gen,
                    "ratio_sim_to_real": None if t_real is None else t_sim / t_real,
                    "ratio_sim_to_real_marginal": None if t_real is None else t_sim / (t_real - t_start),
                    "slowest_modules_s": {k: round(v, 3) for k, v in top},
                }
            )
    if exe is None:
        print("real Delphes: " + ("skipped (--no-real)" if args.no_real else "not found"))
    print(
        f"{'card':<12}{'events':>8}{'builtin ms/ev':>15}{'real ms/ev':>12}{'gen ms/ev':>11}"
        f"{'builtin/gen':>13}{'real/gen':>10}{'builtin/real':>14}"
    )

    def fmt(x, f):
        return f"{x:{f}}" if x is not None else f"{'-':>{f.split('.')[0]}}"

    for r in rows:
        print(
            f"{r['card']:<12}{r['events']:>8}{r['sim_ms_per_event']:>15.2f}"
            f"{fmt(r['real_ms_per_event'], '12.2f')}{r['gen_ms_per_event']:>11.2f}"
            f"{r['ratio_sim_to_gen']:>13.3f}{fmt(r['ratio_real_to_gen'], '10.3f')}"
            f"{fmt(r['ratio_sim_to_real'], '14.3f')}"
        )
        if r["real_s"] is not None:
            print(
                f"{'':<12}real Delphes: {r['real_startup_s']:.2f} s start-up (1-event file), "
                f"{r['real_marginal_ms_per_event']:.2f} ms/event after it; builtin / real "
                f"without the start-up: {r['ratio_sim_to_real_marginal']:.3f}"
            )
        print(f"{'':<12}slowest builtin modules (500 events): {r['slowest_modules_s']}")
    print(
        f"HepMC3 export of the {args.events} events (needed by real Delphes only): "
        f"{1e3 * t_export / args.events:.2f} ms/event"
    )
    write_results("simulate", rows, ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
