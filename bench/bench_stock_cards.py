"""Benchmark: Delphes' stock ATLAS and CMS cards in the builtin engine next to real Delphes, same events.

The baseline is measured in the same run: Pythia8 generates N ttbar events (the default config's
settings), they are exported to HepMC3 (``fast2full.hepmc``), real Delphes (``DelphesHepMC3``,
:func:`fast2full.delphes.real.run_delphes`) simulates the HepMC file and the builtin engine
(:func:`fast2full.delphes.engine.simulate`) the parquet file, each card unchanged.  Real Delphes is
also run on the first event alone: its start-up (ROOT, dictionaries, reading the card) is subtracted
to give its per-event time; the builtin engine's time includes reading the parquet and writing the
ROOT file.  Card loading (the safe Tcl interpreter, :func:`fast2full.delphes.card.evaluate_card`) is
timed per card, best of 5, next to Delphes' start-up.

Run: ``python bench/bench_stock_cards.py [--events N]``; prints a table and writes
``results/bench/stock_cards.json``.  Needs real Delphes (see ``../shared/delphes/README.md``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from _timing import best_of, write_results  # noqa: E402

from fast2full import generate  # noqa: E402
from fast2full.config import load_config  # noqa: E402
from fast2full.delphes.card import evaluate_card  # noqa: E402
from fast2full.delphes.engine import simulate  # noqa: E402
from fast2full.delphes.real import find_delphes, run_delphes  # noqa: E402
from fast2full.hepmc import head_hepmc, write_hepmc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STOCK = ROOT / ".." / "shared" / "delphes" / "cards"
CARDS = {"ATLAS": "delphes_card_ATLAS.tcl", "CMS": "delphes_card_CMS.tcl"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2, help="builtin-engine repeats (best is kept)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    exe = find_delphes(ROOT)
    if exe is None:
        print("real Delphes not found (../shared/delphes/bin/DelphesHepMC3, PATH, $FAST2FULL_DELPHES)")
        return 1
    cfg = load_config(ROOT / "config.yaml")
    cfg["processes"]["ttbar"]["events_per_chunk"] = args.events
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        events = generate.generate_chunk(generate.chunk_spec(cfg, "ttbar", 0))
        pq, hm, one = tmp / "ttbar.parquet", tmp / "ttbar.hepmc", tmp / "one.hepmc"
        generate.write_particles(events, pq)
        write_hepmc(events, hm)
        head_hepmc(hm, one, 1)
        simulate(STOCK / CARDS["ATLAS"], pq, tmp / "warm.root", batch_size=50)  # imports, not timed
        for det, name in CARDS.items():
            card = tmp / name
            shutil.copy(STOCK / name, card)
            t_load = best_of(lambda: evaluate_card(STOCK / name), 5)
            t_start = run_delphes(card, one, tmp / f"one_{det}.root", exe=exe)
            t_real = run_delphes(card, hm, tmp / f"real_{det}.root", exe=exe)
            t_ours = best_of(lambda: simulate(STOCK / name, pq, tmp / f"ours_{det}.root"), args.repeats)
            real_ms = 1e3 * (t_real - t_start) / args.events
            ours_ms = 1e3 * t_ours / args.events
            rows.append(
                {
                    "card": name,
                    "events": args.events,
                    "builtin_ms_per_event": ours_ms,
                    "real_ms_per_event": real_ms,
                    "real_startup_s": t_start,
                    "real_total_s": t_real,
                    "builtin_total_s": t_ours,
                    "ratio_builtin_to_real": ours_ms / real_ms,
                    "card_load_s": t_load,
                    "ratio_card_load_to_real_startup": t_load / t_start,
                }
            )
    print(
        f"{'card':<26}{'events':>7}{'builtin ms/ev':>15}{'real ms/ev':>12}{'ratio':>8}"
        f"{'card load s':>13}{'Delphes start s':>17}"
    )
    for r in rows:
        print(
            f"{r['card']:<26}{r['events']:>7}{r['builtin_ms_per_event']:>15.2f}"
            f"{r['real_ms_per_event']:>12.2f}{r['ratio_builtin_to_real']:>8.2f}"
            f"{r['card_load_s']:>13.3f}{r['real_startup_s']:>17.2f}"
        )
    write_results("stock_cards", rows, ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
