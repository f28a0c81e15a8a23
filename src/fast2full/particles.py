"""Contract 1 — **particles**, written once: the event and particle fields of a generation file,
the Pythia status codes the later stages rely on, and the event-ID bit layout.

Generation (:mod:`fast2full.generate`) writes this contract; the builtin Delphes engine
(:mod:`fast2full.delphes.engine`, its tau taggers) and the HepMC export (:mod:`fast2full.hepmc`)
read it; the Delphes reader (:mod:`fast2full.readers.delphes`) completes Delphes' ``Event.Number``
back to these event IDs.  The field meanings are in :mod:`fast2full.generate`'s docstring.

Event ID (int64), from the most significant bit down::

    | process hash: 20 bits | chunk: 16 bits | index in chunk: 24 bits |
    ((stable_hash64(process) % 2**20) << 40) | (chunk << 24) | index
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full.common import Fast2FullError, InputError, stable_hash64

#: one particle of an event's ``particles`` list: name -> dtype
PARTICLE_FIELDS: dict[str, str] = {
    "pid": "int32",
    "status": "int32",
    "px": "float32",
    "py": "float32",
    "pz": "float32",
    "e": "float32",
    "mass": "float32",
    "mother1": "int32",
    "mother2": "int32",
}
#: one event: name -> dtype (``particles``: a list of PARTICLE_FIELDS records)
EVENT_FIELDS: dict[str, str | None] = {
    "event_id": "int64",
    "process": "string",
    "seed": "int64",
    "weight": "float64",
    "sigma_pb": "float64",
    "particles": None,
}

#: Pythia status of the incoming beam particles (kept, two per event).
STATUS_BEAM = -12

#: event-ID bit layout: process hash | chunk | index in chunk
ID_PROCESS_BITS, ID_CHUNK_BITS, ID_INDEX_BITS = 20, 16, 24
#: where the chunk and the process hash start
ID_CHUNK_SHIFT = ID_INDEX_BITS
ID_PROCESS_SHIFT = ID_CHUNK_BITS + ID_INDEX_BITS


def process_hash(process: str) -> int:
    """The ``ID_PROCESS_BITS``-bit hash of a process name that heads its event IDs."""
    return stable_hash64(process) % (1 << ID_PROCESS_BITS)


def _check_chunk(chunk: int) -> None:
    if not 0 <= chunk < (1 << ID_CHUNK_BITS):
        raise Fast2FullError(f"chunk index {chunk} out of range for event IDs (0..{(1 << ID_CHUNK_BITS) - 1})")


def event_ids(process: str, chunk: int, n: int) -> np.ndarray:
    """The event IDs of the first ``n`` events of a chunk (what generation writes)."""
    _check_chunk(chunk)
    if n > (1 << ID_INDEX_BITS):
        raise Fast2FullError(f"{n} events per chunk exceed the event-ID limit of {1 << ID_INDEX_BITS}")
    base = (process_hash(process) << ID_PROCESS_SHIFT) | (chunk << ID_CHUNK_SHIFT)
    return base | np.arange(n, dtype=np.int64)


def split_event_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(process hash, chunk, index in chunk) of each event ID: the inverse of :func:`event_ids`."""
    ids = np.asarray(ids, dtype=np.int64)
    return (
        ids >> ID_PROCESS_SHIFT,
        (ids >> ID_CHUNK_SHIFT) & ((1 << ID_CHUNK_BITS) - 1),
        ids & ((1 << ID_INDEX_BITS) - 1),
    )


def complete_event_ids(number: np.ndarray, process: str, chunk: int) -> np.ndarray:
    """Complete a simulator's event number to the generation event ID.

    - ``number >= 2**ID_PROCESS_SHIFT``: it already is a full event ID (the builtin engine copies
      it): kept.
    - otherwise the missing fields are filled in: the process hash always, and the chunk index when
      ``number < 2**ID_CHUNK_SHIFT`` (a bare index within the chunk, as real Delphes writes from a
      HepMC file numbered 0, 1, ...; a 32-bit event number already holds chunk and index).

    So IDs are unique per (process, chunk, event) whichever simulator wrote the tree.
    """
    _check_chunk(chunk)
    number = np.asarray(number, dtype=np.int64)
    if np.any(number < 0):
        raise ValueError("negative event number")
    proc = np.int64(process_hash(process)) << np.int64(ID_PROCESS_SHIFT)
    full = number >= (1 << ID_PROCESS_SHIFT)
    bare = number < (1 << ID_CHUNK_SHIFT)
    completed = proc | np.where(bare, (np.int64(chunk) << np.int64(ID_CHUNK_SHIFT)) | number, number)
    return np.where(full, number, completed)


def read_particles(path: str | os.PathLike) -> ak.Array:
    """Read a generation parquet file; a missing, truncated or corrupt file, or one that does not
    hold contract 1, raises InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "generation file not found")
    try:
        events = ak.from_parquet(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise InputError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    missing = [f for f in EVENT_FIELDS if f not in events.fields]
    if missing:
        raise InputError(path, f"not a fast2full particles file: missing fields {missing}")
    pfields = ak.fields(events.particles)
    missing = [f for f in PARTICLE_FIELDS if f not in pfields]
    if missing:
        raise InputError(path, f"not a fast2full particles file: missing particle fields {missing}")
    return events


__all__ = [
    "EVENT_FIELDS",
    "ID_CHUNK_BITS",
    "ID_CHUNK_SHIFT",
    "ID_INDEX_BITS",
    "ID_PROCESS_BITS",
    "ID_PROCESS_SHIFT",
    "PARTICLE_FIELDS",
    "STATUS_BEAM",
    "complete_event_ids",
    "event_ids",
    "process_hash",
    "read_particles",
    "split_event_ids",
]
