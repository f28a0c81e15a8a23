"""Contract 1 — **particles**: Pythia8 event generation, one parquet file per (process, chunk).

Events come from ``pythia8mc.Pythia.nextBatch`` (whole events as awkward arrays, no per-particle
Python); the record is pruned and written with :func:`awkward.to_parquet` (zstd) through
:func:`fast2full.common.atomic_output`.  The fields, status codes and event-ID layout are declared
once in :mod:`fast2full.particles` (which also reads the files back).  One event = one record:

==========  ===========================================  =============================================
field       type                                         meaning
==========  ===========================================  =============================================
event_id    int64                                        process hash | chunk | index in chunk (20, 16
                                                         and 24 bits: :mod:`fast2full.particles`)
process     string                                       process name from the config (ttbar, ...)
seed        int64                                        the chunk's Pythia ``Random:seed``
weight      float64                                      Pythia event weight (1 for unweighted
                                                         processes; 1/bias with
                                                         ``PhaseSpace:bias2Selection``)
sigma_pb    float64                                      Pythia's cross-section estimate for the
                                                         chunk (``Info::sigmaGen``, mb -> pb), the
                                                         same for every event of the chunk
particles   var * {pid: int32, status: int32,            the pruned particle list (order of the
                   px, py, pz, e, mass: float32,         Pythia record kept), momenta and masses in
                   mother1: int32, mother2: int32}       GeV, Pythia status codes unchanged; mothers
                                                         are indices into THIS list, -1 if absent
                                                         or pruned
==========  ===========================================  =============================================

Kept particles (:func:`prune_mask`): every final-state particle (``status > 0``, neutrinos included,
so true MET is their summed pT), the two beam protons (``status == -12``), the hard-process partons
and their resonance decay products (``21 <= |status| <= 29``, flavours kept) and every copy of the
heavy resonances t, W, Z (so the top decay chain t -> W b, W -> l nu is there for truth matching),
the c and b quarks as they enter hadronisation (``71 <= |status| <= 79``), so jets with heavy
flavour from the shower (g -> b bbar) can be flavour-labelled, and every other quark and gluon
with pT >= ``PARTON_PT_MIN`` (1 GeV), so a Delphes ``JetFlavorAssociation`` sees the partons it
would see in the full record.

Cross-section normalisation: a weighted histogram of a chunk is normalised to picobarn by
``sigma_pb / sum(weight)`` (Pythia's ``sigmaGen / weightSum``); for unweighted processes
``sum(weight)`` is the event count.  From the Delphes skim on, every event carries its physical weight
in pb, ``weight * sigma_pb / (sum(weight) * chunks)`` (:mod:`fast2full.weights`,
:func:`fast2full.readers.delphes.chunk_normalisation`).  Every Pythia line of the config is checked
before generation (:mod:`fast2full.pythia_settings`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from fast2full.common import Fast2FullError, Progress, atomic_output, stable_hash64
from fast2full.particles import PARTICLE_FIELDS, STATUS_BEAM, event_ids

log = logging.getLogger("fast2full.generate")

#: Pythia's valid ``Random:seed`` range for an explicit seed (Pythia 8.3 manual, "Random Numbers").
PYTHIA_SEED_MIN = 1
PYTHIA_SEED_MAX = 900_000_000
#: Pythia reports cross sections in millibarn.
MB_TO_PB = 1.0e9
#: |status| range of the hard process (incoming, intermediate, outgoing, resonance decays).
STATUS_HARD_MIN, STATUS_HARD_MAX = 21, 29
#: |status| range of partons entering hadronisation (copies of the shower's final partons).
STATUS_PREHAD_MIN, STATUS_PREHAD_MAX = 71, 79
#: heavy-flavour quarks kept as they enter hadronisation (c, b), e.g. from gluon splitting.
PDG_C, PDG_B = 4, 5
HEAVY_QUARKS = (PDG_C, PDG_B)
#: gluon PDG ID; quarks and gluons of the shower with pT >= PARTON_PT_MIN [GeV] are kept, so a
#: JetFlavorAssociation (Delphes: partons of the whole record above its PartonPTMin, 1 GeV in most
#: stock cards, 5 GeV in the project's) sees what it would see in the full record
PDG_GLUON = 21
PARTON_PT_MIN = 1.0
#: PDG IDs of the heavy resonances kept with all their copies: top, Z, W.
PDG_TOP, PDG_Z, PDG_W = 6, 23, 24
HEAVY_RESONANCES = (PDG_TOP, PDG_Z, PDG_W)
#: events asked of nextBatch per call (bounds memory: the full record is ~1600 particles and
#: ~0.2 MB per event; larger batches spread the fixed per-call overhead of the pruning).
DEFAULT_BATCH = 250
#: settings that silence Pythia's per-event listings (always applied, before the config's).
QUIET_SETTINGS = (
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Next:numberShowLHA = 0",
)


@dataclass(frozen=True)
class ChunkSpec:
    """Everything that defines one generation chunk (and so its output, bit for bit)."""

    process: str
    chunk: int
    n_events: int
    seed: int
    settings: tuple[str, ...]
    max_abort_fraction: float


# ---------------------------------------------------------------------------------------------
# seeds, IDs and settings from the config
# ---------------------------------------------------------------------------------------------


def chunk_seed(global_seed: int, process: str, chunk: int) -> int:
    """The Pythia ``Random:seed`` of a chunk: stable_hash64(global seed, process, chunk) mapped into
    Pythia's valid range 1..900000000."""
    return PYTHIA_SEED_MIN + stable_hash64(global_seed, process, chunk) % (PYTHIA_SEED_MAX - PYTHIA_SEED_MIN + 1)


def all_chunk_seeds(config: dict[str, Any]) -> dict[tuple[str, int], int]:
    """(process, chunk) -> seed for every chunk the config asks for."""
    return {
        (proc, c): chunk_seed(config["seed"], proc, c)
        for proc, pc in config["processes"].items()
        for c in range(pc.get("chunks", 0))
    }


def check_unique_seeds(config: dict[str, Any]) -> None:
    """Raise if two chunks of the config would share a Pythia seed (a hash collision; change the
    global ``seed`` then)."""
    seen: dict[int, tuple[str, int]] = {}
    for key, s in all_chunk_seeds(config).items():
        if s in seen:
            raise Fast2FullError(
                f"config key 'seed': chunks {seen[s][0]}/{seen[s][1]} and {key[0]}/{key[1]} would share "
                f"the Pythia seed {s}; choose another global seed"
            )
        seen[s] = key


def chunk_spec(config: dict[str, Any], process: str, chunk: int) -> ChunkSpec:
    """Build the chunk's settings: quiet output, generation.common_settings, Beams:eCM, the process's
    own settings, then the seed (last, so a process cannot override it)."""
    procs = config.get("processes", {})
    if process not in procs:
        raise Fast2FullError(f"config key 'processes': unknown process '{process}' (known: {', '.join(sorted(procs))})")
    pc = procs[process]
    if chunk < 0 or ("chunks" in pc and chunk >= pc["chunks"]):  # a job's slice has no chunks
        raise Fast2FullError(
            f"config key 'processes.{process}.chunks': chunk {chunk} out of range 0..{pc.get('chunks', 0) - 1}"
        )
    gen = config["generation"]
    seed = chunk_seed(config["seed"], process, chunk)
    settings = (
        *QUIET_SETTINGS,
        *gen.get("common_settings", []),
        f"Beams:eCM = {float(gen['sqrt_s_gev'])!r}",
        *pc["settings"],
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    )
    return ChunkSpec(
        process=process,
        chunk=chunk,
        n_events=int(pc["events_per_chunk"]),
        seed=seed,
        settings=settings,
        max_abort_fraction=float(gen.get("max_abort_fraction", 0.05)),
    )


# ---------------------------------------------------------------------------------------------
# Pythia
# ---------------------------------------------------------------------------------------------


def make_pythia(settings: tuple[str, ...] | list[str], process: str = "?"):
    """A configured and initialised ``pythia8mc.Pythia`` and its ``ResonanceDecayFilterHook``.

    The hook is always attached (it does nothing unless ``ResonanceDecayFilter:filter = on``), so
    the ``ResonanceDecayFilter:*`` settings are available to every process.  A rejected setting or
    a failed ``init()`` raises Fast2FullError naming the process and the setting.
    """
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    hook = pythia8mc.ResonanceDecayFilterHook(pythia.settings)  # registers ResonanceDecayFilter:*
    if not pythia.setUserHooksPtr(hook):
        raise Fast2FullError(f"process '{process}': could not attach Pythia's ResonanceDecayFilterHook")
    for s in settings:
        if not pythia.readString(s):
            raise Fast2FullError(f"process '{process}': Pythia rejected the setting '{s}'")
    if not pythia.init():
        raise Fast2FullError(
            f"process '{process}': Pythia init() failed with the settings "
            f"{list(settings)} (see the PYTHIA Error lines above)"
        )
    return pythia, hook


def prune_mask(pid: np.ndarray, status: np.ndarray, pt: np.ndarray | None = None) -> np.ndarray:
    """Which particles of the (flat) Pythia record to keep: final state, beams, hard process,
    t/W/Z copies, c/b quarks entering hadronisation, and every other quark or gluon of the record
    with pT >= PARTON_PT_MIN (``pt`` given; without ``pt`` every quark and gluon passes)."""
    abs_status = np.abs(status)
    abs_pid = np.abs(pid)
    parton = ((abs_pid >= 1) & (abs_pid <= PDG_B)) | (abs_pid == PDG_GLUON)
    if pt is not None:
        parton &= pt >= PARTON_PT_MIN
    return (
        (status > 0)
        | (status == STATUS_BEAM)
        | ((abs_status >= STATUS_HARD_MIN) & (abs_status <= STATUS_HARD_MAX))
        | np.isin(abs_pid, HEAVY_RESONANCES)
        | (np.isin(abs_pid, HEAVY_QUARKS) & (abs_status >= STATUS_PREHAD_MIN) & (abs_status <= STATUS_PREHAD_MAX))
        | parton
    )


def _flat_particle_columns(prt: ak.Array) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(per-event counts, flat numpy columns) of nextBatch's ``prt`` without copies where possible.

    Reads the layout's buffers directly (nextBatch returns a ListOffsetArray of records): the
    high-level ``ak.flatten``/field access costs more Python overhead than the numpy work here.
    """
    layout = ak.to_layout(prt)
    if not isinstance(layout, ak.contents.ListOffsetArray):
        layout = ak.to_layout(ak.to_packed(prt))
    offsets = np.asarray(layout.offsets, dtype=np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    rec = layout.content
    mom = rec.content("p")

    def col(content, name: str) -> np.ndarray:
        return np.asarray(content.content(name).data)[lo:hi]

    cols = {
        "pid": col(rec, "id"),
        "status": col(rec, "status"),
        "mother1": col(rec, "mother1"),
        "mother2": col(rec, "mother2"),
        "px": col(mom, "px"),
        "py": col(mom, "py"),
        "pz": col(mom, "pz"),
        "e": col(mom, "e"),
        "mass": col(rec, "m"),
    }
    return np.diff(offsets), cols


def prune_events(prt: ak.Array) -> ak.Array:
    """Full nextBatch particle records -> the contract's pruned particle lists, vectorised.

    Mother indices (Pythia: 0 = none, pointing into the full record) are remapped to indices in
    the pruned list; a pruned mother becomes -1.
    """
    counts, flat = _flat_particle_columns(prt)
    n_events = len(counts)
    keep = prune_mask(flat["pid"], flat["status"], np.hypot(flat["px"], flat["py"]))
    kept = np.flatnonzero(keep)

    starts = np.zeros(n_events, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    event_of_kept = np.repeat(np.arange(n_events), counts)[kept]
    kept_per_event = np.bincount(event_of_kept, minlength=n_events)
    out_offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(kept_per_event, out=out_offsets[1:])
    # new index (within its event's pruned list) of every particle of the flat record
    new_index = np.cumsum(keep) - 1 - np.repeat(out_offsets[:-1], counts)

    def remap(mother: np.ndarray) -> np.ndarray:
        mother = mother[kept].astype(np.int64)
        ok = mother > 0  # index 0 is Pythia's "system" entry: no mother
        glob = np.where(ok, starts[event_of_kept] + mother, 0)
        ok &= keep[glob]
        return np.where(ok, new_index[glob], -1).astype(np.int32)

    m1 = remap(flat["mother1"])
    m2 = remap(flat["mother2"])
    # Pythia's mother2 == mother1 or 0 means "one mother": store -1 then
    m2[m2 == m1] = -1
    columns = {"pid": flat["pid"][kept].astype(np.int32), "status": flat["status"][kept].astype(np.int32)}
    for name in ("px", "py", "pz", "e", "mass"):
        columns[name] = flat[name][kept].astype(np.float32)
    columns["mother1"], columns["mother2"] = m1, m2
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(columns[f]) for f in PARTICLE_FIELDS], list(PARTICLE_FIELDS)
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(out_offsets), record))


def generate_chunk(
    spec: ChunkSpec, batch: int = DEFAULT_BATCH, pythia=None, on_batch: Callable[[int], None] | None = None
) -> ak.Array:
    """Run Pythia for one chunk and return the contract-1 event records.

    Aborted events (``Pythia::next`` returned false; nextBatch "skip" mode drops them) are replaced
    until ``n_events`` are accepted; more than ``max_abort_fraction * n_events`` aborts raise.
    ``pythia``: an already initialised ``(Pythia, hook)`` pair from :func:`make_pythia` with
    ``spec.settings`` (the benchmark times generation apart from init); by default one is made.
    ``on_batch(n_asked)``: called after each batch (the benchmark runs bare nextBatch there).
    """
    pythia, hook = pythia if pythia is not None else make_pythia(spec.settings, spec.process)
    log.info("Pythia %.3f initialised for %s chunk %d", pythia.parm("Pythia:versionNumber"), spec.process, spec.chunk)
    max_aborts = spec.max_abort_fraction * spec.n_events
    parts: list[ak.Array] = []
    weights: list[np.ndarray] = []
    accepted = aborted = 0
    progress = Progress(spec.n_events, what="events", logger=log)
    while accepted < spec.n_events:
        ask = min(batch, spec.n_events - accepted)
        events = pythia.nextBatch(ask, "skip")
        got = len(events)
        aborted += ask - got
        if aborted > max_aborts:
            raise Fast2FullError(
                f"process '{spec.process}' chunk {spec.chunk}: {aborted} aborted events after "
                f"{accepted + got} accepted, more than generation.max_abort_fraction = "
                f"{spec.max_abort_fraction} of {spec.n_events}"
            )
        if got:
            parts.append(prune_events(events.prt))
            # group weight 0 is the nominal event weight (bias2Selection weight included)
            weights.append(ak.to_numpy(events.info.weights[:, 0]).astype(np.float64))
        accepted += got
        progress.update(got)
        if on_batch is not None:
            on_batch(ask)
    progress.done()
    sigma_pb = float(pythia.infoPython().sigmaGen()) * MB_TO_PB
    if pythia.flag("ResonanceDecayFilter:filter"):
        # Vetoed decay chains are redone for the same hard process, so sigmaGen does not include
        # the filter: scale it by the fraction of decay chains that passed (every accepted or
        # later-aborted event passed once; the hook counts every chain it was shown).
        tries = hook.returnCounter()
        efficiency = (accepted + aborted) / tries if tries else 1.0
        log.info("resonance-decay filter efficiency %.4f (%d decay chains tried)", efficiency, tries)
        sigma_pb *= efficiency
    if aborted:
        log.warning("process %s chunk %d: %d aborted events replaced", spec.process, spec.chunk, aborted)
    particles = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    n = spec.n_events
    weight = np.concatenate(weights)
    return ak.zip(
        {
            "event_id": event_ids(spec.process, spec.chunk, n),
            "process": np.full(n, spec.process, dtype=object).astype(str),
            "seed": np.full(n, spec.seed, dtype=np.int64),
            "weight": weight,
            "sigma_pb": np.full(n, sigma_pb, dtype=np.float64),
            "particles": particles,
        },
        depth_limit=1,
    )


def write_particles(events: ak.Array, path: str | os.PathLike) -> None:
    """Write contract-1 events atomically as zstd parquet."""
    with atomic_output(path) as tmp:
        ak.to_parquet(events, tmp, compression="zstd")


def run_generate(
    config: dict[str, Any], process: str, chunk: int, out: str | os.PathLike, batch: int = DEFAULT_BATCH
) -> Path:
    """Generate one chunk of the config and write it to ``out`` (atomically)."""
    from fast2full.pythia_settings import check_config

    check_unique_seeds(config)
    spec = chunk_spec(config, process, chunk)
    check_config(config, source=f"process '{process}'", processes=[process])
    log.info("generating %s chunk %d: %d events, seed %d", process, chunk, spec.n_events, spec.seed)
    events = generate_chunk(spec, batch=batch)
    write_particles(events, out)
    size = Path(out).stat().st_size
    log.info("wrote %s: %d events, %.1f kB/event", out, len(events), size / 1e3 / max(len(events), 1))
    return Path(out)
