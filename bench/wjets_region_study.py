"""W+jets in the 1-lepton regions: effective events per generated event for sampling designs.

Generates unbiased W+jets pTHat slices (the config's W+jets process settings without its
``PhaseSpace:*`` lines), simulates each with the builtin engine through both project cards, skims with
the config's object selection, and prints per slice and region the events and cross-section, then the
effective number of W+jets events (sum w)^2 / sum w^2 in the region per 1 000 generated events for a
pTHat bias (pTHat / pTHatMin)^pow from ``--pthat-min`` and for optimally allocated slices (see
docs/generation.md).  JSON in ``results/bench/wjets_region.json``.

    python bench/wjets_region_study.py [--scale 1.0] [--config config.yaml]

``--scale`` multiplies the slice sizes (8000, 4000, 3000, 3000 events at 1.0; ~3.5 min CPU at 10 ms
per event).  Not a speed benchmark: the only timing reported is CPU ms per event of the chain.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import yaml

from fast2full import generate as G
from fast2full.delphes.engine import simulate
from fast2full.readers.delphes import skim_delphes

SLICES = ((20.0, 45.0, 8000), (45.0, 80.0, 4000), (80.0, 150.0, 3000), (150.0, None, 3000))
REGIONS = {"1l>=3j": (3, 0), "1l>=4j": (4, 0), "1l>=4j>=1b": (4, 1)}
DETECTORS = ("atlas_like", "cms_like")
POWS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def run_slice(cfg: dict, lo: float, hi: float | None, n: int, seed: int, work: Path) -> dict:
    base = [s for s in cfg["processes"]["wjets"]["settings"] if not s.startswith("PhaseSpace:")]
    cuts = [f"PhaseSpace:pTHatMin = {lo}"] + ([f"PhaseSpace:pTHatMax = {hi}"] if hi else [])
    settings = (
        *G.QUIET_SETTINGS,
        *cfg["generation"]["common_settings"],
        f"Beams:eCM = {float(cfg['generation']['sqrt_s_gev'])!r}",
        *base,
        *cuts,
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    )
    t0 = time.process_time()
    ev = G.generate_chunk(G.ChunkSpec("wjets", 0, n, seed, settings, 0.05))
    hard = ev.particles[(abs(ev.particles.status) == 23) & (abs(ev.particles.pid) != 24)]
    out = {
        "lo": lo,
        "hi": hi,
        "n": n,
        "sigma_pb": float(ev.sigma_pb[0]),
        "pthat": ak.to_numpy(ak.firsts(np.hypot(hard.px, hard.py))).tolist(),
    }
    G.write_particles(ev, work / "gen.parquet")
    for det in DETECTORS:
        simulate(Path("cards") / f"{det}.tcl", work / "gen.parquet", work / f"{det}.root")
        skim_delphes(str(work / f"{det}.root"), str(work / f"{det}.parquet"), cfg, "wjets", chunk=0)
        o = ak.from_parquet(work / f"{det}.parquet")
        out[det] = {
            "nl": ak.to_numpy(ak.num(o.electrons) + ak.num(o.muons)).tolist(),
            "nj": ak.to_numpy(ak.num(o.jets)).tolist(),
            "nb": ak.to_numpy(ak.sum(o.jets.btag, axis=1)).tolist(),
        }
    out["cpu_ms_per_event"] = (time.process_time() - t0) / n * 1e3
    return out


def designs(slices: list[dict], det: str, nj: int, nb: int, pthat_min: float) -> dict:
    """Effective region events per 1000 generated, for biases (pTHat/pthat_min)^pow above pthat_min and
    for the slices above it with optimal allocation N_s ~ sigma_s sqrt(eps_s)."""
    pt = np.concatenate([np.asarray(s["pthat"]) for s in slices])
    f = np.concatenate([np.full(s["n"], s["sigma_pb"] / s["n"]) for s in slices])
    eps = np.concatenate(
        [
            (
                (np.asarray(s[det]["nl"]) == 1) & (np.asarray(s[det]["nj"]) >= nj) & (np.asarray(s[det]["nb"]) >= nb)
            ).astype(float)
            for s in slices
        ]
    )
    keep = pt >= pthat_min
    pt, f, eps = pt[keep], f[keep], eps[keep]
    r = float((f * eps).sum())
    out = {"sigma_region_pb": r}
    for p in POWS:
        b = (pt / pthat_min) ** p
        den = (f * b).sum() * (f * eps / b).sum()
        out[f"pow{p}"] = 1000 * r * r / den if den > 0 else 0.0
    sig, e = [], []
    for s in slices:
        if s["lo"] >= pthat_min:
            m = (pt >= s["lo"]) & (pt < (s["hi"] or np.inf))
            sig.append(f[m].sum())
            e.append((f[m] * eps[m]).sum() / f[m].sum())
    sig, e = np.array(sig), np.array(e)
    den = (sig * np.sqrt(e)).sum() ** 2
    out["slices_optimal"] = 1000 * (sig * e).sum() ** 2 / den if den > 0 else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--pthat-min", type=float, default=45.0)
    ap.add_argument("--seed", type=int, default=111)
    ap.add_argument("--out", default="results/bench/wjets_region.json")
    args = ap.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    slices = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (lo, hi, n) in enumerate(SLICES):
            slices.append(run_slice(cfg, lo, hi, max(int(n * args.scale), 50), args.seed + i, Path(tmp)))
    print(
        "| slice (GeV) | sigma (pb) | events | ms/event | "
        + " | ".join(f"{r} {d}" for r in REGIONS for d in DETECTORS)
        + " |"
    )
    for s in slices:
        cells = []
        for nj, nb in REGIONS.values():
            for d in DETECTORS:
                k = int(
                    (
                        (np.asarray(s[d]["nl"]) == 1) & (np.asarray(s[d]["nj"]) >= nj) & (np.asarray(s[d]["nb"]) >= nb)
                    ).sum()
                )
                cells.append(f"{k} ({s['sigma_pb'] * k / s['n']:.3g} pb)")
        print(
            f"| {s['lo']:.0f}-{s['hi'] or 'inf'} | {s['sigma_pb']:.1f} | {s['n']} | {s['cpu_ms_per_event']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    result = {
        "slices": [
            {k: v for k, v in s.items() if k in ("lo", "hi", "n", "sigma_pb", "cpu_ms_per_event")} for s in slices
        ],
        "designs": {},
    }
    print(f"\neffective W+jets events in the region per 1000 generated (pTHat > {args.pthat_min} GeV)")
    for r, (nj, nb) in REGIONS.items():
        for d in DETECTORS:
            res = designs(slices, d, nj, nb, args.pthat_min)
            result["designs"][f"{r}/{d}"] = res
            print(
                f"{r:11s} {d:10s} sigma {res['sigma_region_pb']:.3g} pb: "
                + ", ".join(f"{k} {v:.1f}" for k, v in res.items() if k != "sigma_region_pb")
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
