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


def single_particle_events(
    pid: int, energy: float, eta: float, n: int, seed: int = 1, process: str = "single"
) -> ak.Array:
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

    particles = ak.zip(
        {
            "pid": jag(np.full(n, pid), np.int32),
            "status": jag(np.ones(n), np.int32),
            "px": jag(pt * np.cos(phi), np.float32),
            "py": jag(pt * np.sin(phi), np.float32),
            "pz": jag(pt * np.sinh(eta_v), np.float32),
            "e": jag(np.full(n, energy), np.float32),
            "mass": jag(np.full(n, m), np.float32),
            "mother1": jag(-np.ones(n), np.int32),
            "mother2": jag(-np.ones(n), np.int32),
        }
    )
    return ak.zip(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "process": np.full(n, process, dtype=object).astype(str),
            "seed": np.full(n, seed, dtype=np.int64),
            "weight": np.ones(n),
            "sigma_pb": np.ones(n),
            "particles": particles,
        },
        depth_limit=1,
    )


def _four(pid, e, eta, phi):
    m = np.vectorize(lambda p: PDG_MASS.get(abs(int(p)), 0.0))(pid) if np.size(pid) else np.zeros(0)
    p = np.sqrt(np.maximum(e * e - m * m, 0.0))
    pt = p / np.cosh(eta)
    return pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), m


def toy_events(n: int, seed: int = 1, process: str = "toy") -> ak.Array:
    """``n`` small contract-1 events exercising every output branch: an electron, a muon and a
    photon (isolated, 30-80 GeV, |eta| < 2), a neutrino (true MET), and two collimated hadron sprays
    ("jets", 60-120 GeV of pi+-, photons and K0L within dR < 0.15) with a b quark and a gluon of
    status -23 along their axes (parton flavour)."""
    rng = np.random.default_rng(seed)
    n_spray = 10
    rows = []
    # isolated objects: e-, mu+, photon, nu_e at well separated azimuths
    phi0 = rng.uniform(-np.pi, np.pi, size=n)
    for k, (pid, status) in enumerate([(11, 1), (-13, 1), (22, 1), (12, 1)]):
        e = rng.uniform(30, 80, size=n)
        eta = rng.uniform(-2.0, 2.0, size=n)
        phi = (phi0 + k * np.pi / 2 + np.pi) % (2 * np.pi) - np.pi
        rows.append((np.full(n, pid), np.full(n, status), e, eta, phi))
    # two sprays at phi0 + pi/4 and phi0 + 5pi/4 with partons b (5) and gluon (21)
    for k, parton in enumerate([5, 21]):
        axis_eta = rng.uniform(-1.5, 1.5, size=n)
        axis_phi = (phi0 + np.pi / 4 + k * np.pi + np.pi) % (2 * np.pi) - np.pi
        etot = rng.uniform(60, 120, size=n)
        rows.append((np.full(n, parton), np.full(n, -23), etot, axis_eta, axis_phi))
        frac = rng.dirichlet(np.ones(n_spray), size=n)
        pids = rng.choice([211, -211, 22, 130], size=(n, n_spray), p=[0.35, 0.35, 0.2, 0.1])
        for j in range(n_spray):
            r = 0.15 * np.sqrt(rng.uniform(size=n))
            a = rng.uniform(0, 2 * np.pi, size=n)
            rows.append(
                (
                    pids[:, j],
                    np.ones(n, np.int64),
                    np.maximum(frac[:, j] * etot, 0.6),
                    axis_eta + r * np.cos(a),
                    axis_phi + r * np.sin(a),
                )
            )
    npart = len(rows)
    pid = np.stack([r[0] for r in rows], axis=1).ravel()
    status = np.stack([r[1] for r in rows], axis=1).ravel()
    e = np.stack([r[2] for r in rows], axis=1).ravel()
    eta = np.stack([r[3] for r in rows], axis=1).ravel()
    phi = np.stack([r[4] for r in rows], axis=1).ravel()
    px, py, pz, m = _four(pid, e, eta, phi)
    counts = np.full(n, npart)

    def jag(x, dtype):
        return ak.unflatten(np.asarray(x, dtype=dtype), counts)

    particles = ak.zip(
        {
            "pid": jag(pid, np.int32),
            "status": jag(status, np.int32),
            "px": jag(px, np.float32),
            "py": jag(py, np.float32),
            "pz": jag(pz, np.float32),
            "e": jag(e, np.float32),
            "mass": jag(m, np.float32),
            "mother1": jag(-np.ones(len(pid)), np.int32),
            "mother2": jag(-np.ones(len(pid)), np.int32),
        }
    )
    return ak.zip(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "process": np.full(n, process, dtype=object).astype(str),
            "seed": np.full(n, seed, dtype=np.int64),
            "weight": np.full(n, 0.5),
            "sigma_pb": np.full(n, 2.0),
            "particles": particles,
        },
        depth_limit=1,
    )


# --- real Pythia8 samples for the fidelity and regression tests ------------------------------------
#: the processes of config.yaml (same settings, written out so the tests do not follow config edits;
#: W+jets keeps the config's pTHat bias: the events are compared unweighted, engine against engine)
PYTHIA_PROCESSES: dict[str, tuple[str, ...]] = {
    "ttbar": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "ResonanceDecayFilter:filter = on",
        "ResonanceDecayFilter:exclusive = off",
        "ResonanceDecayFilter:eMuTauAsEquivalent = on",
        "ResonanceDecayFilter:mothers = 24",
        "ResonanceDecayFilter:daughters = 11",
    ),
    "wjets": (
        "WeakBosonAndParton:qqbar2Wg = on",
        "WeakBosonAndParton:qg2Wq = on",
        "24:onMode = off",
        "24:onIfAny = 11 13 15",
        "PhaseSpace:pTHatMin = 20.",
        "PhaseSpace:bias2Selection = on",
        "PhaseSpace:bias2SelectionPow = 3.",
        "PhaseSpace:bias2SelectionRef = 20.",
    ),
}


def pythia_sample(process: str, n: int, cache_dir, seed: int = 20260507, hepmc: bool = True):
    """``n`` Pythia8 events of ``process`` (:data:`PYTHIA_PROCESSES`) generated with the project's
    own code (:func:`fast2full.generate.generate_chunk`, pruning included) and, if ``hepmc``, their
    HepMC3 export (:func:`fast2full.hepmc.write_hepmc`), cached in ``cache_dir`` under a key of the
    settings, ``n``, the seed and the source of ``generate.py``, ``particles.py`` and ``hepmc.py`` (so
    a change of any regenerates).  Returns ``(parquet_path, hepmc_path or None)``."""
    import fcntl
    import hashlib
    from pathlib import Path

    from fast2full import generate, particles
    from fast2full import hepmc as hepmc_mod
    from fast2full.common import stable_hash64

    settings = (
        *generate.QUIET_SETTINGS,
        "Next:numberCount = 0",
        "Init:showChangedSettings = off",
        "Init:showProcesses = off",
        "Init:showChangedParticleData = off",
        "Init:showMultipartonInteractions = off",
        "Beams:eCM = 13000.0",
        *PYTHIA_PROCESSES[process],
        "Random:setSeed = on",
        f"Random:seed = {generate.chunk_seed(seed, process, 0)}",
    )
    sources = (generate.__file__, particles.__file__, hepmc_mod.__file__)
    code = hashlib.sha256(b"".join(Path(f).read_bytes() for f in sources)).hexdigest()[:16]
    key = f"{process}_{n}_{stable_hash64(*settings, code) % 10**12:012d}"
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    pq, hm = cache / f"{key}.parquet", cache / f"{key}.hepmc"
    # one writer at a time per cache: several processes (pytest-xdist workers, benchmarks) may ask for
    # the same sample, and a second writer's atomic_output would remove the first one's temporary
    with open(cache / ".pythia_sample.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in cache.glob(f"*{process}_{n}_*"):  # other settings or code: never read again
            if key not in stale.name:
                stale.unlink(missing_ok=True)
        if not pq.is_file():
            spec = generate.ChunkSpec(
                process=process,
                chunk=0,
                n_events=n,
                seed=generate.chunk_seed(seed, process, 0),
                settings=settings,
                max_abort_fraction=0.05,
            )
            generate.write_particles(generate.generate_chunk(spec), pq)
        if hepmc and not hm.is_file():
            hepmc_mod.write_hepmc(particles.read_particles(pq), hm, source=str(pq))
    return pq, (hm if hepmc else None)
