"""Synthetic generation-contract events for validating the detector simulation.

``single_particle_events`` builds contract-1 events (the same layout as ``fast2full generate``
writes) holding one final-state particle each, at a fixed energy and pseudorapidity and a random
azimuth, so a card's efficiency and resolution can be measured against its own formulas.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

#: PDG masses [GeV] of the particles used in validation (PDG Review of Particle Physics 2024)
PDG_MASS = {11: 0.000511, 13: 0.10566, 211: 0.13957, 130: 0.49761, 22: 0.0, 12: 0.0, 14: 0.0}


def single_particle_events(pid: int, energy: float, eta: float, n: int, seed: int = 1,
                           process: str = "single") -> ak.Array:
    """``n`` events with one particle ``pid`` of energy ``energy`` [GeV] at pseudorapidity ``eta``
    (sign chosen at random) and uniform azimuth, in the generation contract's layout."""
    rng = np.random.default_rng(seed)
    m = PDG_MASS.get(abs(pid), 0.0)
    p = np.sqrt(max(energy * energy - m * m, 0.0))
    eta_v = eta * np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    phi = rng.uniform(-np.pi, np.pi, size=n)
    pt = p / np.cosh(eta_v)
    one = np.ones(n, np.int64)

    def jag(x, dtype):
        return ak.unflatten(np.asarray(x, dtype=dtype), one)

    particles = ak.zip({
        "pid": jag(np.full(n, pid), np.int32), "status": jag(np.ones(n), np.int32),
        "px": jag(pt * np.cos(phi), np.float32), "py": jag(pt * np.sin(phi), np.float32),
        "pz": jag(pt * np.sinh(eta_v), np.float32), "e": jag(np.full(n, energy), np.float32),
        "mass": jag(np.full(n, m), np.float32), "mother1": jag(-np.ones(n), np.int32),
        "mother2": jag(-np.ones(n), np.int32)})
    return ak.zip({"event_id": np.arange(n, dtype=np.int64),
                   "process": np.full(n, process, dtype=object).astype(str),
                   "seed": np.full(n, seed, dtype=np.int64), "weight": np.ones(n),
                   "sigma_pb": np.ones(n), "particles": particles}, depth_limit=1)
