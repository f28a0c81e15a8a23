"""Export contract-1 particle files to HepMC3 ASCII (for real ``DelphesHepMC3``).

Vertex structure built from the pruned particle list (mother indices into that list):

* the two beam protons (Pythia status -12, HepMC status 4) are the incoming particles of the
  primary vertex;
* a particle whose mothers are kept is produced at the end vertex of its mothers (Pythia's
  ``mother1..mother2`` is a range when ``mother2 > mother1``; otherwise ``mother1`` alone);
* a particle whose mother was pruned, or is a beam (beam remnants), or is listed after it (only
  the incoming hard partons, whose mothers are pruned ISR partons) is attached to the primary vertex.

HepMC status codes follow Pythia's own HepMC interface (``Particle::statusHepMC``): final state 1,
beams 4, every other kept particle its |Pythia status| (21-29 hard process, 44/51/52/62 resonance
copies, 71-79 heavy quarks before hadronisation).  Units are GeV and mm; vertices sit at the
origin (the generator-level beam spot is left to the detector simulation).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full.common import Fast2FullError, Progress, atomic_output
from fast2full.particles import PARTICLE_FIELDS, STATUS_BEAM, read_particles, split_event_ids

log = logging.getLogger("fast2full.hepmc")

#: HepMC3 status codes (HepMC3 manual, "status code conventions").
HEPMC_FINAL, HEPMC_BEAM = 1, 4


def hepmc_status(status: np.ndarray) -> np.ndarray:
    """Pythia status -> HepMC status: final 1, beam 4, else |status|."""
    out = np.abs(status).astype(np.int32)
    out[status > 0] = HEPMC_FINAL
    out[status == STATUS_BEAM] = HEPMC_BEAM
    return out


def hepevt_parents(mother1: np.ndarray, mother2: np.ndarray, status: np.ndarray) -> np.ndarray:
    """(N, 2) zero-based inclusive parent ranges for ``GenEvent.from_hepevt``.

    Beams get no parents; orphans (pruned mother, or a mother not before the particle) get the
    two beams, i.e. the primary vertex.
    """
    n = len(mother1)
    idx = np.arange(n)
    beams = np.flatnonzero(status == STATUS_BEAM)
    if len(beams) != 2:
        raise Fast2FullError(f"event has {len(beams)} beam particles (status {STATUS_BEAM}), expected 2")
    m1 = mother1.astype(np.int64)
    m2 = mother2.astype(np.int64)
    orphan = (m1 < 0) | (m1 >= idx)
    orphan |= np.isin(m1, beams)  # beam remnants and the like: produced at the primary vertex too
    is_range = (m2 > m1) & (m2 < idx)
    parents = np.empty((n, 2), dtype=np.int64)
    parents[:, 0] = m1
    parents[:, 1] = np.where(is_range, m2, m1)
    parents[orphan] = (beams[0], beams[1])
    parents[beams] = -1
    # A HepMC particle ends in one vertex: two different parent sets sharing a particle (a parton
    # that is both in a string's mother range and the single mother of another particle) cannot
    # be written; pyhepmc would write a vertex count that DelphesHepMC3 then mis-reads (it merges
    # events).  Such a particle's other children attach to the first set's vertex instead.
    sets, first = np.unique(parents[parents[:, 0] >= 0], axis=0, return_index=True)
    if len(sets) > 1:
        order = np.argsort(sets[:, 0], kind="stable")
        sets = sets[order]
        cover = np.zeros(n + 1, np.int64)
        np.add.at(cover, sets[:, 0], 1)
        np.add.at(cover, sets[:, 1] + 1, -1)
        if (np.cumsum(cover)[:n] > 1).any():
            parents = _disjoint_parent_sets(parents, n)
    return parents


def _disjoint_parent_sets(parents: np.ndarray, n: int) -> np.ndarray:
    """Make the children's parent ranges disjoint: a range that overlaps one met earlier (in
    particle order) is replaced by that earlier range (its children join the earlier vertex)."""
    owner = np.full(n, -1, np.int64)  # particle -> index of the range it ends in
    ranges: list[tuple[int, int]] = []
    out = parents.copy()
    for i in range(n):
        a, b = int(parents[i, 0]), int(parents[i, 1])
        if a < 0:
            continue
        taken = owner[a : b + 1]
        if (taken < 0).all():
            owner[a : b + 1] = len(ranges)
            ranges.append((a, b))
        elif len(set(taken.tolist())) == 1 and ranges[taken[0]] == (a, b):
            pass
        else:
            out[i] = ranges[int(taken[taken >= 0][0])]
    return out


def write_hepmc(events: ak.Array, path: str | os.PathLike, source: str = "?") -> int:
    """Write contract-1 ``events`` as HepMC3 ASCII to ``path`` (atomically); returns the count."""
    import pyhepmc

    n = len(events)
    progress = Progress(n, what="events", logger=log)
    p = events.particles
    # one conversion of every column to numpy; per-event slices below are views
    counts = ak.to_numpy(ak.num(p, axis=1))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    cols = {f: ak.to_numpy(ak.flatten(p[f], axis=1)) for f in PARTICLE_FIELDS}
    weights = ak.to_numpy(events.weight).astype(np.float64)
    sigma = ak.to_numpy(events.sigma_pb).astype(np.float64)
    event_ids = ak.to_numpy(events.event_id)
    index_in_chunk = split_event_ids(event_ids)[2]

    run_info = pyhepmc.GenRunInfo()
    run_info.weight_names = ["Weight"]
    ev = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
    with atomic_output(path) as tmp:
        with pyhepmc.io.WriterAscii(str(tmp), run_info) as writer:
            for i in range(n):  # one pyhepmc call per event; the particle work is in numpy / C++
                s = slice(offsets[i], offsets[i + 1])
                status = cols["status"][s]
                try:
                    parents = hepevt_parents(cols["mother1"][s], cols["mother2"][s], status)
                except Fast2FullError as exc:
                    raise Fast2FullError(f"{source}: event {i}: {exc}") from exc
                ev.from_hepevt(
                    int(index_in_chunk[i]),  # HepMC event numbers are C ints: the ID's index in the chunk
                    cols["px"][s].astype(np.float64),
                    cols["py"][s].astype(np.float64),
                    cols["pz"][s].astype(np.float64),
                    cols["e"][s].astype(np.float64),
                    cols["mass"][s].astype(np.float64),
                    cols["pid"][s].astype(np.int32),
                    hepmc_status(status),
                    parents=parents,
                    fortran=False,
                )
                ev.run_info = run_info
                ev.set_units(pyhepmc.Units.GEV, pyhepmc.Units.MM)
                ev.weights = [float(weights[i])]
                ev.attributes["fast2full_event_id"] = str(event_ids[i])  # int64 has no pyhepmc cast
                xs = pyhepmc.GenCrossSection()
                xs.set_cross_section(float(sigma[i]), 0.0)
                ev.cross_section = xs
                writer.write(ev)
                progress.update()
    progress.done()
    return n


def export_hepmc(src: str | os.PathLike, out: str | os.PathLike) -> int:
    """Read a generation parquet file and write it as HepMC3 ASCII."""
    events = read_particles(src)
    n = write_hepmc(events, out, source=str(src))
    log.info("wrote %s: %d events (%.1f kB/event)", out, n, Path(out).stat().st_size / 1e3 / max(n, 1))
    return n


def head_hepmc(src: str | os.PathLike, out: str | os.PathLike, n_events: int) -> int:
    """Write the first ``n_events`` events of the HepMC3 ASCII file ``src`` to ``out`` (the header kept,
    the end-of-listing line added); return how many were written.  For quick real-Delphes runs
    (a one-event file measures its start-up) without exporting the sample again."""
    lines, n = [], 0
    with open(src) as fh:
        for line in fh:
            if line.startswith("E "):  # HepMC3 ASCII starts each event with an 'E ' line
                n += 1
                if n > n_events:
                    n = n_events
                    break
            elif line.startswith("HepMC::Asciiv3-END_EVENT_LISTING"):
                break
            lines.append(line)
    with atomic_output(Path(out)) as tmp:
        tmp.write_text("".join(lines) + "HepMC::Asciiv3-END_EVENT_LISTING\n")
    return n
