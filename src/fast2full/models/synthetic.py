"""Synthetic tensor files (contract 3) for tests, benchmarks and smoke runs of the training stage.

A learnable toy with the real files' layout: N padded objects with (pt, eta, phi, mass, px, py) and a
variable number of real objects per event.  ``sigbkg`` / ``qg``: class 1 has harder, more central
objects (separable, not perfectly).  ``met``: the true MET is minus the vector sum of the objects'
(px, py) plus an invisible component; the baseline is that vector sum smeared, and it is also the last
input object (as the real met tensors carry the reconstructed MET as an object).  A domain ``shift``
scales the momenta and widens eta, as a different detector response would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fast2full import tensorio
from fast2full.common import atomic_output

FEATURES = ["pt", "eta", "phi", "mass", "px", "py"]
UNITS = ["GeV", "", "rad", "GeV", "GeV", "GeV"]
#: smearing of the toy baseline MET (GeV)
BASELINE_MET_SMEAR_GEV = 25.0
#: width of the toy's invisible MET component (GeV)
INVISIBLE_MET_GEV = 10.0


def synthetic_arrays(task: str, n: int, max_objects: int = 8, seed: int = 0, shift: float = 0.0) -> dict:
    """Raw arrays x, mask, y, baseline, weight, event_id of one toy split."""
    rng = np.random.default_rng(seed)
    n_obj = rng.integers(1, max_objects + 1, n)
    mask = np.arange(max_objects)[None, :] < n_obj[:, None]
    label = (rng.random(n) < 0.5).astype(np.float32)
    hard = 1.0 + 0.6 * label[:, None] if task != "met" else np.ones((n, 1))
    pt = rng.exponential(40.0, (n, max_objects)) * hard * (1.0 + shift) + 20.0
    eta = rng.normal(0.0, 1.5 / hard * (1.0 + shift), (n, max_objects))
    phi = rng.uniform(-np.pi, np.pi, (n, max_objects))
    mass = np.abs(rng.normal(5.0 * hard, 3.0, (n, max_objects)))
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    x = np.stack([pt, eta, phi, mass, px, py], axis=-1).astype(np.float32)
    x[~mask] = 0.0
    if task == "met":  # the last slot is kept for the MET object
        mask[:, -1] = False
        x[:, -1] = 0.0
        vis = -np.stack([(px * mask).sum(1), (py * mask).sum(1)], axis=1)
        y = vis + rng.normal(0.0, INVISIBLE_MET_GEV, (n, 2))
        baseline = vis + rng.normal(0.0, BASELINE_MET_SMEAR_GEV, (n, 2))
        # like the real met tensors, the reconstructed MET is also an input object (the last slot)
        met_pt = np.hypot(baseline[:, 0], baseline[:, 1])
        x[:, -1] = np.stack(
            [
                met_pt,
                np.zeros(n),
                np.arctan2(baseline[:, 1], baseline[:, 0]),
                np.zeros(n),
                baseline[:, 0],
                baseline[:, 1],
            ],
            axis=-1,
        )
        mask[:, -1] = True
    else:
        y = label
        baseline = (pt * mask).sum(1) / 100.0  # scalar-sum score: a weaker classifier
    return {
        "x": x,
        "mask": mask,
        "y": y.astype(np.float32),
        "baseline": baseline.astype(np.float32),
        "weight": np.ones(n),
        "event_id": np.arange(n, dtype=np.int64) + 10_000_000 * (seed % 1000),
    }


def write_synthetic_tensors(
    root: str | Path,
    task: str,
    domains: dict[str, float],
    sizes: dict[str, int] | None = None,
    max_objects: int = 8,
    seed: int = 0,
    source: str | None = None,
) -> dict[str, dict[str, Path]]:
    """Write ``root/{task}/{domain}/{train,val,test}.parquet`` for each domain (name -> shift).

    Normalisation comes from the first (or ``source``) domain's train split, as in the real pipeline.
    """
    sizes = sizes or {"train": 400, "val": 200, "test": 300}
    source = source or next(iter(domains))
    data = {
        (d, s): synthetic_arrays(task, n, max_objects, seed=seed * 1000 + 17 * i + j, shift=shift)
        for i, (d, shift) in enumerate(domains.items())
        for j, (s, n) in enumerate(sizes.items())
    }
    src = data[(source, "train")]
    real = src["x"][src["mask"]]
    norm = {"mean": real.mean(0).tolist(), "std": real.std(0).tolist()}
    out: dict[str, dict[str, Path]] = {}
    for (d, s), arr in data.items():
        p = Path(root) / task / d / f"{s}.parquet"
        meta = {
            "task": task,
            "domain": d,
            "split": s,
            "features": FEATURES,
            "units": UNITS,
            "targets": ["met_x", "met_y"] if task == "met" else ["label"],
            "baseline": "smeared visible MET" if task == "met" else "scalar pt sum / 100 GeV",
            "norm": norm,
        }
        with atomic_output(p) as tmp:
            tensorio.write(tmp, meta=meta, **arr)
        out.setdefault(d, {})[s] = p
    return out
