"""Helpers both object readers share (Delphes tree, PHYSLITE): jet track variables, sample roles, and
writing an objects parquet atomically (the PHYSLITE MET rebuild is ``physlite.rebuild_met``).

Everything here works on whole chunks of events (awkward arrays), never event by event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import vector

from fast2full import objects
from fast2full.common import Fast2FullError, atomic_output

log = logging.getLogger("fast2full.readers")

#: jet radius of the anti-kt jets; tracks are associated to a jet within this DeltaR of its axis
JET_TRACK_DELTA_R = 0.4
#: xAOD NumTrkPt500: tracks with pT above 500 MeV
NTRK_PT_MIN_GEV = 0.5
#: xAOD TrackWidthPt1000: tracks with pT above 1000 MeV
TRK_WIDTH_PT_MIN_GEV = 1.0
#: trk_width of a jet without any track above TRK_WIDTH_PT_MIN_GEV (xAOD writes -1; the contract uses 0
#: in every domain, the PHYSLITE reader maps -1 to 0; see docs/objects.md)
TRK_WIDTH_NO_TRACK = 0.0

#: parquet writing options shared by every objects file (32-bit list offsets: one Arrow schema for
#: every row group whatever awkward layout a chunk has)
PARQUET_OPTIONS = {"compression": "zstd", "list_to32": True, "string_to32": True}


def jet_track_variables(
    jet_eta: ak.Array,
    jet_phi: ak.Array,
    trk_pt: ak.Array,
    trk_eta: ak.Array,
    trk_phi: ak.Array,
    *,
    delta_r: float = JET_TRACK_DELTA_R,
    ntrk_pt_min: float = NTRK_PT_MIN_GEV,
    width_pt_min: float = TRK_WIDTH_PT_MIN_GEV,
    sum_pt: bool = False,
) -> tuple[ak.Array, ...]:
    """Per jet: ``ntrk`` and ``trk_width`` from the event's tracks (jagged inputs, one list per event).

    Defined as ATLAS defines them on xAOD jets (JetTrackMomentsTool / JetTrackSumMomentsTool):

    - ``ntrk`` = number of tracks with pT > ``ntrk_pt_min`` (0.5 GeV: NumTrkPt500) associated to the jet;
    - ``trk_width`` = sum(pT_trk * DeltaR(trk, jet)) / sum(pT_trk) over associated tracks with
      pT > ``width_pt_min`` (1 GeV: TrackWidthPt1000); :data:`TRK_WIDTH_NO_TRACK` (0) without such a track.

    ATLAS associates tracks by ghost association; here a track belongs to a jet when it lies within
    DeltaR < ``delta_r`` (the jet radius) of the jet axis, so a track may count for two nearby jets.
    Returns ``(ntrk int32, trk_width float32)`` with the jets' jagged structure; with ``sum_pt=True``
    also ``sum_trk_pt`` (float32), the scalar pT sum of the tracks counted in ``ntrk`` (SumPtTrkPt500).
    """
    keep = trk_pt > min(ntrk_pt_min, width_pt_min)
    trk = vector.zip({"pt": trk_pt[keep], "eta": trk_eta[keep], "phi": trk_phi[keep]})
    jet = vector.zip({"pt": ak.ones_like(jet_eta), "eta": jet_eta, "phi": jet_phi})
    # event -> jet -> track by broadcasting (about twice as fast as ak.cartesian(nested=True) here)
    dr = jet[:, :, np.newaxis].deltaR(trk[:, np.newaxis, :])
    pt = ak.broadcast_arrays(trk.pt[:, np.newaxis, :], dr)[0]
    in_cone = dr < delta_r
    ntrk = ak.sum(in_cone & (pt > ntrk_pt_min), axis=2)
    w = ak.where(in_cone & (pt > width_pt_min), pt, 0.0)
    sum_w = ak.sum(w, axis=2)
    sum_wdr = ak.sum(w * dr, axis=2)
    width = ak.where(sum_w > 0, sum_wdr / ak.where(sum_w > 0, sum_w, 1.0), TRK_WIDTH_NO_TRACK)
    out = (ak.values_astype(ntrk, np.int32), ak.values_astype(width, np.float32))
    if sum_pt:
        out += (ak.values_astype(ak.sum(ak.where(in_cone & (pt > ntrk_pt_min), pt, 0.0), axis=2), np.float32),)
    return out


def sample_role(config: dict, sample: str) -> str:
    """The role (signal / background / pileup) of a generated process or an Open Data sample."""
    for section in (config.get("processes", {}), config.get("opendata", {}).get("samples", {})):
        if sample in section:
            return str(section[sample].get("role", "background"))
    known = sorted(set(config.get("processes", {})) | set(config.get("opendata", {}).get("samples", {})))
    raise Fast2FullError(
        f"config: sample '{sample}' is neither under processes nor under opendata.samples (known: {', '.join(known)})"
    )


def is_signal(config: dict, sample: str) -> bool:
    """True for the signal process (config role ``signal``: ttbar)."""
    return sample_role(config, sample) == "signal"


def write_objects(chunks: Iterable[ak.Array], out_path: str | Path) -> int:
    """Write objects chunks (each already :func:`fast2full.objects.check`-ed) as the row groups of one
    zstd parquet file, atomically: nothing appears under ``out_path`` unless every chunk succeeded.

    Chunks are consumed one at a time, so memory stays bounded by one chunk. An empty iterable writes
    a valid file with zero events. Returns the number of events written.
    """
    n = 0
    failure: list[BaseException] = []

    def counted(it: Iterable[ak.Array]) -> Iterator[ak.Array]:
        # An error inside the producer is kept and re-raised after awkward returns, so that it
        # reaches the caller as raised (awkward would decorate its message) and the temporary
        # file is removed by atomic_output.
        nonlocal n
        first = True
        try:
            for arr in it:
                objects.check(arr)
                if len(arr) == 0 and not first:
                    continue
                first = False
                n += len(arr)
                yield arr
        except Exception as exc:
            failure.append(exc)
        if first:  # nothing at all (or an early failure): one empty row group with the contract's types
            yield objects.empty()

    with atomic_output(out_path) as tmp:
        ak.to_parquet_row_groups(counted(chunks), tmp, **PARQUET_OPTIONS)
        if failure:
            raise failure[0]
    log.info("%s: wrote %d events", out_path, n)
    return n


def read_objects(path: str | Path) -> ak.Array:
    """Read an objects parquet file and check it follows the contract (InputError otherwise)."""
    from fast2full.common import InputError

    try:
        arr = ak.from_parquet(path)
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    try:
        objects.check(arr)
    except objects.ObjectSchemaError as exc:
        raise InputError(path, f"not an objects file: {exc}") from exc
    return arr
