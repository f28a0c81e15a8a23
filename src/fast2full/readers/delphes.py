"""Delphes tree (``Delphes``) -> the objects contract (:mod:`fast2full.objects`).

Works on real Delphes 3 output and on the builtin engine's trees, which use the same branch names.
Only the branches in :data:`BRANCHES` are read, chunk by chunk (``uproot`` ``iterate`` with
``step_size`` events), so memory is bounded by one chunk.  Each chunk is built into objects with
:func:`fast2full.objects.build`, reduced by the one shared selection (:func:`fast2full.objects.select`
with ``config["selection"]``, then :func:`fast2full.objects.overlap_removal`) and appended as a row
group of the output parquet (written atomically).

Field by field (Delphes ``Branch.Leaf`` -> objects):

===================  ==========================================================================
objects field        from
===================  ==========================================================================
jets.pt/eta/phi/mass Jet.PT / Jet.Eta / Jet.Phi / Jet.Mass
jets.btag            bit 0 of Jet.BTag (the card's first BTagging module)
jets.flavor          \\|Jet.Flavor\\| (JetFlavorAssociation: 1-5 quarks, 21 gluon); any other value -> 0
jets.ntrk            tracks (Track branch) with pT > 0.5 GeV within DeltaR < 0.4 (xAOD NumTrkPt500)
jets.trk_width       sum(pT DeltaR)/sum(pT) of tracks with pT > 1 GeV within DeltaR < 0.4
                     (xAOD TrackWidthPt1000); 0 for a jet without such a track
jets.sum_trk_pt      scalar pT sum of the tracks counted in ntrk (xAOD SumPtTrkPt500)
pflow                EFlowTrack (kind 0; PT/Eta/Phi/Charge, is_pu = IsPU != 0), EFlowPhoton and
                     EFlowNeutralHadron (kinds 1, 2; ET/Eta/Phi, charge 0, is_pu False): the
                     particle-flow candidates the card's MissingET sums, pT-ordered
electrons, muons     PT / Eta / Phi / Charge, rel_iso = IsolationVar (Delphes' relative isolation)
photons              PT / Eta / Phi, rel_iso = IsolationVar
met                  MissingET.MET / MissingET.Phi (first entry)
gen_met              GenMissingET.MET / GenMissingET.Phi (first entry)
weight               physical weight in pb per event: Event.Weight x sigma / (sum of Event.Weight over
                     the file x chunks of the process), sigma = Event.CrossSection (pb; the
                     generation's sigma_pb x filter efficiency); see :func:`chunk_normalisation`
event_id             Event.Number completed to the generation event ID (:func:`fast2full.particles.complete_event_ids`)
process, is_signal   the sample name; its role in the config is ``signal``
===================  ==========================================================================

The weights of all chunks of a process sum to its cross-section (each chunk file is one full,
independent estimate; their mean is taken), so processes and pTHat slices add up by plain summing
of weights: ``weight * L`` (L in pb^-1) is the expected event count (:mod:`fast2full.weights`).

Tracks flagged as pile-up (``Track.IsPU`` != 0, where the tree has that leaf) are left out of the
track variables, as xAOD counts only tracks from the primary vertex.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full import objects
from fast2full.common import Fast2FullError, InputError, Progress
from fast2full.particles import complete_event_ids
from fast2full.readers.common import is_signal, jet_track_variables, write_objects

log = logging.getLogger("fast2full.readers.delphes")

TREE = "Delphes"

#: Delphes leaves read, by collection (all must exist)
BRANCHES = {
    "Event": ["Event.Number", "Event.Weight"],
    "Jet": ["Jet.PT", "Jet.Eta", "Jet.Phi", "Jet.Mass", "Jet.Flavor", "Jet.BTag"],
    "Electron": ["Electron.PT", "Electron.Eta", "Electron.Phi", "Electron.Charge", "Electron.IsolationVar"],
    "Muon": ["Muon.PT", "Muon.Eta", "Muon.Phi", "Muon.Charge", "Muon.IsolationVar"],
    "Photon": ["Photon.PT", "Photon.Eta", "Photon.Phi", "Photon.IsolationVar"],
    "MissingET": ["MissingET.MET", "MissingET.Phi"],
    "GenMissingET": ["GenMissingET.MET", "GenMissingET.Phi"],
    "Track": ["Track.PT", "Track.Eta", "Track.Phi"],
    # particle-flow candidates (the card's MissingET sums them; every card's TreeWriter writes them)
    "EFlowTrack": ["EFlowTrack.PT", "EFlowTrack.Eta", "EFlowTrack.Phi", "EFlowTrack.Charge"],
    "EFlowPhoton": ["EFlowPhoton.ET", "EFlowPhoton.Eta", "EFlowPhoton.Phi"],
    "EFlowNeutralHadron": ["EFlowNeutralHadron.ET", "EFlowNeutralHadron.Eta", "EFlowNeutralHadron.Phi"],
}
#: read when present
OPTIONAL_BRANCHES = ["Track.IsPU", "Event.CrossSection", "EFlowTrack.IsPU"]

#: events per chunk read from the tree (a ttbar event with its tracks is ~60 kB in memory)
STEP_SIZE = 2000

#: parton flavours kept as labels: quarks d, u, s, c, b (1..5) and the gluon (21); anything else is 0
HEAVIEST_QUARK = 5
GLUON = 21
UNMATCHED = 0
#: bit of Jet.BTag holding the first BTagging module's decision
BTAG_BIT = 0


def _first(arr: ak.Array, default: float) -> np.ndarray:
    """The first entry of a one-per-event Delphes collection (MissingET, Event), ``default`` if empty."""
    return ak.to_numpy(ak.fill_none(ak.firsts(arr, axis=1), default))


def chunk_normalisation(tree, branches: dict[str, str], path: str, n_chunks: int = 1) -> float:
    """pb per unit generator weight for the events of one chunk file: ``sigma / (sum w * n_chunks)``.

    ``sigma`` is ``Event.CrossSection`` (pb; written by the builtin engine from the generation's
    ``sigma_pb`` and by real Delphes from the HepMC ``GenCrossSection``), the mean over the file;
    ``sum w`` the sum of ``Event.Weight`` over every event of the file (the simulation keeps every
    generated event); ``n_chunks`` the number of chunk files of the process.  A file without a
    cross-section (0 or no leaf: e.g. a tree from another generator) is normalised to 1 pb, with a
    warning naming the file.
    """
    from fast2full.weights import WeightError

    ev = tree.arrays([branches[b] for b in ("Event.Weight", "Event.CrossSection") if b in branches], library="ak")
    w = ak.to_numpy(ak.fill_none(ak.firsts(ev[branches["Event.Weight"]], axis=1), 1.0)).astype(np.float64)
    sum_w = float(w.sum())
    if not np.isfinite(sum_w) or sum_w == 0:
        raise InputError(path, f"the sum of Event.Weight over the file is {sum_w}: cannot normalise the weights")
    xs = None
    if "Event.CrossSection" in branches:
        xs = ak.to_numpy(ak.fill_none(ak.firsts(ev[branches["Event.CrossSection"]], axis=1), 0.0)).astype(np.float64)
    sigma = float(xs.mean()) if xs is not None and len(xs) else 0.0
    if not (np.isfinite(sigma) and sigma > 0):
        log.warning("%s: no cross-section in Event.CrossSection; weights normalised to 1 pb for the process", path)
        sigma = 1.0
    try:
        from fast2full.weights import physical_weight

        return float(physical_weight(np.ones(1), sigma, sum_w * n_chunks)[0])
    except WeightError as exc:
        raise InputError(path, str(exc)) from exc


def objects_from_arrays(
    a: Mapping[str, ak.Array], *, process: str, signal: bool, chunk: int, norm: float = 1.0
) -> ak.Array:
    """One chunk of Delphes leaves (keyed ``Branch.Leaf``, e.g. ``Jet.PT``) -> objects (unselected);
    ``weight = Event.Weight * norm`` (``norm`` from :func:`chunk_normalisation`)."""
    trk_pt, trk_eta, trk_phi = a["Track.PT"], a["Track.Eta"], a["Track.Phi"]
    if "Track.IsPU" in a:
        hs = a["Track.IsPU"] == 0
        trk_pt, trk_eta, trk_phi = trk_pt[hs], trk_eta[hs], trk_phi[hs]
    ntrk, width, sum_pt = jet_track_variables(a["Jet.Eta"], a["Jet.Phi"], trk_pt, trk_eta, trk_phi, sum_pt=True)

    flavor = abs(ak.values_astype(a["Jet.Flavor"], np.int64))
    is_parton = ((flavor >= 1) & (flavor <= HEAVIEST_QUARK)) | (flavor == GLUON)
    flavor = ak.where(is_parton, flavor, UNMATCHED)
    btag = (a["Jet.BTag"] >> BTAG_BIT) & 1

    def lepton(b: str) -> dict:
        return {
            "pt": a[f"{b}.PT"],
            "eta": a[f"{b}.Eta"],
            "phi": a[f"{b}.Phi"],
            "charge": a[f"{b}.Charge"],
            "rel_iso": a[f"{b}.IsolationVar"],
        }

    return objects.build(
        event_id=complete_event_ids(_first(a["Event.Number"], -1), process, chunk),
        weight=_first(a["Event.Weight"], 1.0).astype(np.float64) * norm,
        process=process,
        is_signal=signal,
        jets={
            "pt": a["Jet.PT"],
            "eta": a["Jet.Eta"],
            "phi": a["Jet.Phi"],
            "mass": a["Jet.Mass"],
            "btag": btag == 1,
            "flavor": flavor,
            "ntrk": ntrk,
            "trk_width": width,
            "sum_trk_pt": sum_pt,
        },
        electrons=lepton("Electron"),
        muons=lepton("Muon"),
        photons={
            "pt": a["Photon.PT"],
            "eta": a["Photon.Eta"],
            "phi": a["Photon.Phi"],
            "rel_iso": a["Photon.IsolationVar"],
        },
        met={"met": _first(a["MissingET.MET"], 0.0), "phi": _first(a["MissingET.Phi"], 0.0)},
        gen_met={"met": _first(a["GenMissingET.MET"], 0.0), "phi": _first(a["GenMissingET.Phi"], 0.0)},
        pflow=pflow_candidates(a),
    )


def pflow_candidates(a: Mapping[str, ak.Array]) -> dict:
    """EFlowTrack + EFlowPhoton + EFlowNeutralHadron -> the ``pflow`` collection (pT-ordered)."""
    trk_pu = (a["EFlowTrack.IsPU"] != 0) if "EFlowTrack.IsPU" in a else a["EFlowTrack.PT"] < -1
    parts = []
    for branch, pt, kind in (
        ("EFlowTrack", "PT", objects.PFLOW_TRACK),
        ("EFlowPhoton", "ET", objects.PFLOW_PHOTON),
        ("EFlowNeutralHadron", "ET", objects.PFLOW_NEUTRAL_HADRON),
    ):
        p = a[f"{branch}.{pt}"]
        parts.append(
            ak.zip(
                {
                    "pt": ak.values_astype(p, np.float32),
                    "eta": ak.values_astype(a[f"{branch}.Eta"], np.float32),
                    "phi": ak.values_astype(a[f"{branch}.Phi"], np.float32),
                    "charge": ak.values_astype(a["EFlowTrack.Charge"], np.int32)
                    if kind == objects.PFLOW_TRACK
                    else ak.values_astype(p * 0, np.int32),
                    "kind": ak.values_astype(p * 0 + kind, np.int32),
                    "is_pu": trk_pu if kind == objects.PFLOW_TRACK else (p < -1),
                }
            )
        )
    c = ak.concatenate(parts, axis=1)
    c = c[ak.argsort(c.pt, axis=1, ascending=False, stable=True)]
    return {f: c[f] for f in objects.PFLOW_FIELDS}


def _short(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception message, capped (uproot's messages span many lines)."""
    line = (str(exc).strip().splitlines() or [""])[0].strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _open_tree(path: str):
    import uproot

    p = Path(path)
    if not p.is_file():
        raise InputError(path, "file not found")
    try:
        f = uproot.open(p)
    except Exception as exc:  # uproot raises ValueError/OSError/struct errors for non-ROOT or cut files
        raise InputError(path, f"not a readable ROOT file ({type(exc).__name__}: {_short(exc)})") from exc
    try:
        keys = f.keys(cycle=False)
    except Exception as exc:
        raise InputError(path, f"cannot read the ROOT file's directory ({type(exc).__name__}: {exc})") from exc
    if not keys:
        raise InputError(path, "the ROOT file holds no objects (empty or damaged file): not a Delphes output")
    if TREE not in keys:
        raise InputError(
            path, f"no '{TREE}' tree in the file (keys: {', '.join(keys) or 'none'}): not a Delphes output"
        )
    try:
        tree = f[TREE]
    except Exception as exc:
        raise InputError(path, f"cannot read the '{TREE}' tree ({type(exc).__name__}: {exc})") from exc
    if not isinstance(tree, uproot.TTree):
        raise InputError(path, f"'{TREE}' is a {type(tree).__name__}, not a TTree")
    # leaf name (Jet.PT) -> the branch's full path (Jet/Jet.PT in real Delphes, Jet.PT if written flat)
    paths = {p.rsplit("/", 1)[-1]: p for p in tree.keys(recursive=True, full_paths=True)}
    required = [b for bs in BRANCHES.values() for b in bs]
    missing = [b for b in required if b not in paths]
    if missing:
        raise InputError(path, f"'{TREE}' tree lacks the branches {', '.join(missing)}")
    return tree, {b: paths[b] for b in required + OPTIONAL_BRANCHES if b in paths}


def iterate_objects(
    in_path: str,
    process: str,
    signal: bool,
    chunk: int,
    selection: dict | None,
    step_size: int = STEP_SIZE,
    n_chunks: int = 1,
) -> Iterator[ak.Array]:
    """Yield selected objects chunk by chunk from a Delphes file (InputError on unreadable input);
    weights in pb per event for a process of ``n_chunks`` chunk files."""
    tree, branches = _open_tree(in_path)
    try:
        norm = chunk_normalisation(tree, branches, in_path, n_chunks)
    except Fast2FullError:
        raise
    except Exception as exc:  # damaged baskets (the Event branch is read first, from entry 0)
        raise InputError(
            in_path,
            f"cannot read the '{TREE}' tree at entry 0 ({type(exc).__name__}: "
            f"{_short(exc)}; reading Event.Weight for the normalisation)",
        ) from exc
    log.info("%s: %.6g pb per unit generator weight (%d chunk(s) of %s)", in_path, norm, n_chunks, process)
    progress = Progress(tree.num_entries, what="events")
    # Branches by exact path: uproot's filter_name matching scans every branch of Delphes' ~400 and
    # costs ~0.5 s per call, ten times the read itself for a 100-event file.
    it = tree.iterate(list(branches.values()), step_size=step_size, library="ak")
    while True:
        try:
            chunk_arrays = next(it)
            arrays = {leaf: chunk_arrays[p] for leaf, p in branches.items()}
        except StopIteration:
            break
        except Exception as exc:  # decompression/deserialisation errors of a damaged file
            raise InputError(
                in_path, f"cannot read the '{TREE}' tree at entry {progress.n} ({type(exc).__name__}: {_short(exc)})"
            ) from exc
        try:
            evs = objects_from_arrays(arrays, process=process, signal=signal, chunk=chunk, norm=norm)
        except ValueError as exc:
            raise InputError(in_path, f"bad values in the '{TREE}' tree near entry {progress.n}: {exc}") from exc
        progress.update(len(chunk_arrays))
        yield objects.overlap_removal(objects.select(evs, selection)) if selection is not None else evs
    progress.done()


def skim_delphes(
    in_path: str, out_path: str, config: dict, sample: str, *, chunk: int | None = None, step_size: int = STEP_SIZE
) -> int:
    """Delphes ROOT file -> selected objects parquet (atomic).  Returns the number of events written.

    ``sample``: the process name (``process`` field; ``is_signal`` from its config role).
    ``chunk``: the generation chunk index used to complete event IDs
    (:func:`fast2full.particles.complete_event_ids`); by default the
    input file's stem when it is an integer (``results/sim/{detector}/{process}/{chunk}.root``), else 0.
    Weights are in pb per event; the process's number of chunks comes from ``config["processes"]``
    (1 for a sample the config does not list).
    """
    if chunk is None:
        stem = Path(in_path).stem
        chunk = int(stem) if stem.isdigit() else 0
    signal = is_signal(config, sample)
    log.info("skim %s (sample %s, chunk %d, signal %s) -> %s", in_path, sample, chunk, signal, out_path)
    n_chunks = int((config.get("processes", {}).get(sample) or {}).get("chunks", 1))
    return write_objects(
        iterate_objects(
            str(in_path), sample, signal, chunk, config.get("selection"), step_size=step_size, n_chunks=n_chunks
        ),
        out_path,
    )
