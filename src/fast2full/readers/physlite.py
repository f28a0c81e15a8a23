"""ATLAS PHYSLITE (full simulation) -> the objects contract, with coffea NanoEvents.

One PHYSLITE file is read in entry ranges of ``opendata.chunk_size`` events with
``NanoEventsFactory.from_root(..., schemaclass=PHYSLITESchema, mode="virtual")`` (only the branches in
:data:`BRANCHES` are ever read, and only one chunk is in memory at a time).  Per chunk:

1. object definitions (:func:`physlite_objects`): calibrated kinematics converted from MeV to GeV,
   object identification (electron LH Tight, muon Medium, photon IsEM Tight, jet NNJvt), b-tagging
   (DL1dv01 at the 77 % fixed-cut working point), track-based jet variables for the primary vertex,
   relative isolation, truth labels;
2. the one shared selection :func:`fast2full.objects.select` (config ``selection``);
3. a simple ATLAS-style overlap removal (:func:`overlap_removal`) on the selected objects;
4. MET rebuilt as minus the vector sum of the selected objects plus the PHYSLITE track soft term
   (:func:`fast2full.readers.common.met_from_objects`), true MET from ``MET_Truth`` ``NonInt``;
5. :func:`fast2full.objects.check`, then the chunk becomes one row group of the output parquet.

Every constant below names its source; see docs/opendata.md for the physics choices and limitations.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full import objects
from fast2full.common import Fast2FullError, InputError, Progress
from fast2full.readers.common import is_signal, met_from_objects, write_objects

log = logging.getLogger("fast2full.physlite")

#: xAOD stores energies and momenta in MeV; the objects contract is in GeV
MEV_PER_GEV = 1000.0
#: the PHYSLITE event tree
TREE_NAME = "CollectionTree"
#: events per entry range read at once (config ``opendata.chunk_size`` overrides)
DEFAULT_CHUNK_SIZE = 20_000

# --- b-tagging: DL1dv01 on EMPFlow jets, 77 % b-efficiency fixed cut -------------------------------
#: DL1dv01 discriminant D = ln(p_b / (f_c p_c + (1 - f_c) p_u)) with the charm fraction f_c = 0.018
#: (ATLAS flavour-tagging recommendations for release 22, EMPFlow jets, CDI 2022-22-13TeV-MC20)
DL1D_CHARM_FRACTION = 0.018
#: DL1dv01 FixedCutBEff_77 cut on D (same source)
DL1D_CUT_77 = 2.456
#: the b-tagging container linked from AnalysisJets.btaggingLink
BTAG_COLLECTION = "BTagging_AntiKt4EMPFlow"

# --- jet vertex tagger (pile-up jet suppression) -------------------------------------------------
#: NNJvt is applied to jets with pT below this and |eta| below JVT_ABS_ETA_MAX (ATLAS recommendation)
JVT_PT_MAX_GEV = 60.0
JVT_ABS_ETA_MAX = 2.4

# --- lepton / photon identification --------------------------------------------------------------
#: derivation-framework decisions written into PHYSLITE
ELECTRON_ID_FLAG = "DFCommonElectronsLHTight"
PHOTON_ID_FLAG = "DFCommonPhotonsIsEMTight"
#: xAOD::Muon quality byte: bits 0-1 the Quality enum (Tight 0, Medium 1, Loose 2, VeryLoose 3),
#: bit 3 (value 8) passesIDCuts (xAODMuon/Root/Muon_v1.cxx)
MUON_QUALITY_MASK = 0b11
MUON_QUALITY_MEDIUM = 1
MUON_PASSES_ID_CUTS_BIT = 0b1000

#: isolation variables, first one present wins (names differ between PHYSLITE production tags)
ELECTRON_ISO_VARS = ("ptvarcone30_Nonprompt_All_MaxWeightTTVALooseCone_pt1000", "ptvarcone30",
                     "ptvarcone20", "topoetcone20")
MUON_ISO_VARS = ("ptvarcone30_Nonprompt_All_MaxWeightTTVA_pt1000", "ptvarcone30", "ptcone30", "topoetcone20")
PHOTON_ISO_VARS = ("topoetcone20", "topoetcone20_CloseByCorr", "ptcone20")

#: parton-label values kept as they are (quarks d..b and the gluon); anything else -> 0 (unmatched)
PARTON_LABELS = (1, 2, 3, 4, 5, 21)

#: MET soft term (track-based, the PHYSLITE "core" term) and the true-MET term
MET_CORE = "MET_Core_AnalysisMET"
MET_SOFT_TERM = "PVSoftTrkCore"
MET_TRUTH_TERM = "NonInt"

#: branches read (exact names); entries under OPTIONAL may be absent (data files, older tags)
_REQUIRED = {
    "AnalysisJetsAuxDyn": ("pt", "eta", "phi", "m", "NumTrkPt500", "TrackWidthPt1000", "btaggingLink"),
    "AnalysisElectronsAuxDyn": ("pt", "eta", "phi", "m", "charge", ELECTRON_ID_FLAG),
    "AnalysisMuonsAuxDyn": ("pt", "eta", "phi", "charge", "quality"),
    "AnalysisPhotonsAuxDyn": ("pt", "eta", "phi", "m", PHOTON_ID_FLAG),
    f"{BTAG_COLLECTION}AuxDyn": ("DL1dv01_pb", "DL1dv01_pc", "DL1dv01_pu"),
    f"{MET_CORE}AuxDyn": ("name", "mpx", "mpy"),
    "EventInfoAuxDyn": ("eventNumber",),
}
_OPTIONAL = {
    "AnalysisJetsAuxDyn": ("PartonTruthLabelID", "NNJvtPass"),
    "AnalysisElectronsAuxDyn": ELECTRON_ISO_VARS,
    "AnalysisMuonsAuxDyn": MUON_ISO_VARS,
    "AnalysisPhotonsAuxDyn": PHOTON_ISO_VARS,
    "MET_TruthAuxDyn": ("name", "mpx", "mpy"),
    "EventInfoAuxDyn": ("mcEventWeights",),
}


def _names(spec: dict[str, tuple[str, ...]]) -> set[str]:
    return {f"{coll}.{field}" for coll, fields in spec.items() for field in fields}


REQUIRED_BRANCHES = _names(_REQUIRED)
OPTIONAL_BRANCHES = _names(_OPTIONAL)
BRANCHES = REQUIRED_BRANCHES | OPTIONAL_BRANCHES


# --------------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------------

def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def open_tree(in_path: str, timeout_s: float = 60.0):
    """Open ``in_path`` (local file or a URL uproot can stream) and return ``(file, tree, branch names)``.

    Raises InputError naming the file for a missing, unreadable or non-PHYSLITE file.
    """
    import uproot

    if not _is_remote(in_path) and not Path(in_path).is_file():
        raise InputError(in_path, "file not found")
    try:
        f = uproot.open(in_path, timeout=timeout_s) if _is_remote(in_path) else uproot.open(in_path)
    except Exception as exc:  # uproot raises many types for a corrupt or truncated file
        raise InputError(in_path, f"not a readable ROOT file ({type(exc).__name__}: {exc})") from exc
    try:
        tree = f[TREE_NAME]
    except Exception as exc:
        f.close()
        raise InputError(in_path, f"no '{TREE_NAME}' tree: not a PHYSLITE file ({exc})") from exc
    try:
        names = set(tree.keys(recursive=True, full_paths=False))
    except Exception as exc:
        f.close()
        raise InputError(in_path, f"cannot list the branches of '{TREE_NAME}' ({exc})") from exc
    missing = sorted(REQUIRED_BRANCHES - names)
    if missing:
        f.close()
        raise InputError(in_path, f"not a PHYSLITE file: missing branches {', '.join(missing[:6])}"
                                  f"{' ...' if len(missing) > 6 else ''}")
    return f, tree, names


def _events(file, names: set[str], entry_start: int, entry_stop: int):
    """coffea NanoEvents (virtual mode: branches read on access) for one entry range."""
    from coffea.nanoevents import NanoEventsFactory, PHYSLITESchema

    wanted = BRANCHES & names
    with warnings.catch_warnings():
        # coffea warns about every xAOD branch it cannot represent; we read none of them
        warnings.filterwarnings("ignore", message="Skipping .*", category=UserWarning)
        return NanoEventsFactory.from_root(
            file, treepath=TREE_NAME, schemaclass=PHYSLITESchema, mode="virtual",
            entry_start=entry_start, entry_stop=entry_stop,
            iteritems_options={"filter_name": lambda n: n in wanted},
        ).events()


# --------------------------------------------------------------------------------------------------
# object definitions
# --------------------------------------------------------------------------------------------------

def _first_field(coll: ak.Array, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in coll.fields), None)


def _rel_iso(coll: ak.Array, candidates: tuple[str, ...]) -> ak.Array:
    """Isolation (first available variable) divided by pT; 0 where no variable exists."""
    var = _first_field(coll, candidates)
    if var is None:
        return ak.zeros_like(coll.pt)
    return coll[var] / ak.where(coll.pt > 0, coll.pt, 1.0)


def _pv_value(per_vertex: ak.Array, fill) -> ak.Array:
    """Jet moment vector indexed by vertex -> its value for the primary vertex (index 0)."""
    return ak.fill_none(ak.firsts(per_vertex, axis=2), fill)


def _plain(coll: dict[str, ak.Array]) -> dict[str, ak.Array]:
    """Drop coffea's per-branch parameters (docstrings, C++ type names) so they do not reach the output."""
    return {k: ak.without_parameters(v) for k, v in coll.items()}


def dl1d_discriminant(pb: ak.Array, pc: ak.Array, pu: ak.Array,
                      charm_fraction: float = DL1D_CHARM_FRACTION) -> ak.Array:
    """DL1dv01 b-tagging discriminant ln(p_b / (f_c p_c + (1 - f_c) p_u))."""
    denom = charm_fraction * pc + (1.0 - charm_fraction) * pu
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(pb / denom)


def muon_id(quality):
    """Medium-or-tighter muons that pass the ID cuts, from the xAOD muon quality byte."""
    q = ak.values_astype(quality, np.int32) if isinstance(quality, ak.Array) else np.asarray(quality, np.int32)
    return ((q & MUON_QUALITY_MASK) <= MUON_QUALITY_MEDIUM) & ((q & MUON_PASSES_ID_CUTS_BIT) != 0)


def _jet_btag(events, jets) -> ak.Array:
    """b-tag decision per jet, following AnalysisJets.btaggingLink into the b-tagging container."""
    btag = events[BTAG_COLLECTION]
    idx = jets.btaggingLink.m_persIndex
    valid = idx < ak.num(btag, axis=1)
    safe = ak.where(valid, idx, 0)
    disc = dl1d_discriminant(btag.DL1dv01_pb, btag.DL1dv01_pc, btag.DL1dv01_pu)
    # an event whose b-tagging container is empty while it has jets cannot be indexed: pad it
    disc = ak.fill_none(ak.pad_none(disc, 1, axis=1), -np.inf)
    tagged = disc[safe] > DL1D_CUT_77
    return ak.fill_none(valid & ak.nan_to_num(tagged, nan=False), False)


def _met_term(met_coll, term: str) -> tuple[np.ndarray, np.ndarray]:
    """(mpx, mpy) in GeV of the MissingET term called ``term`` (0 if the event lacks it)."""
    sel = met_coll[met_coll.name == term]
    mpx = ak.to_numpy(ak.sum(sel.mpx, axis=1)) / MEV_PER_GEV
    mpy = ak.to_numpy(ak.sum(sel.mpy, axis=1)) / MEV_PER_GEV
    return mpx.astype(np.float64), mpy.astype(np.float64)


def physlite_objects(events, *, process: str, signal: bool) -> tuple[ak.Array, np.ndarray, np.ndarray]:
    """One chunk of PHYSLITE NanoEvents -> (objects before selection, soft-term mpx, mpy in GeV).

    Object identification is applied here (it is PHYSLITE-specific); the kinematic selection is not
    (that is :func:`fast2full.objects.select`, shared by every domain).  ``met`` is left at zero and is
    rebuilt after selection and overlap removal by :func:`skim_chunk`.
    """
    n = len(events)
    # jets: calibrated 4-momenta, NNJvt for low-pT central jets
    j = events.Jets
    jpt = j.pt / MEV_PER_GEV
    jet_ok = ak.ones_like(jpt, dtype=bool)
    if "NNJvtPass" in j.fields:
        needs_jvt = (jpt < JVT_PT_MAX_GEV) & (abs(j.eta) < JVT_ABS_ETA_MAX)
        jet_ok = ~needs_jvt | (j.NNJvtPass != 0)
    if "PartonTruthLabelID" in j.fields:
        lab = abs(j.PartonTruthLabelID)
        known = ak.zeros_like(lab, dtype=bool)
        for v in PARTON_LABELS:
            known = known | (lab == v)
        flavor = ak.where(known, lab, 0)
    else:
        flavor = ak.zeros_like(j.pt, dtype=np.int32)
    trk_width = _pv_value(j.TrackWidthPt1000, 0.0)
    jets = {
        "pt": jpt, "eta": j.eta, "phi": j.phi, "mass": j.m / MEV_PER_GEV,
        "btag": _jet_btag(events, j),
        "flavor": flavor,
        "ntrk": _pv_value(j.NumTrkPt500, 0),
        # xAOD writes -1 for a jet without tracks above 1 GeV; the contract uses 0 (as the Delphes reader)
        "trk_width": ak.where(trk_width < 0, 0.0, trk_width),
    }
    jets = {k: v[jet_ok] for k, v in jets.items()}

    e = events.Electrons
    e = e[e[ELECTRON_ID_FLAG] != 0]
    electrons = {"pt": e.pt / MEV_PER_GEV, "eta": e.eta, "phi": e.phi, "charge": e.charge,
                 "rel_iso": _rel_iso(e, ELECTRON_ISO_VARS)}

    m = events.Muons
    m = m[muon_id(m.quality)]
    muons = {"pt": m.pt / MEV_PER_GEV, "eta": m.eta, "phi": m.phi, "charge": m.charge,
             "rel_iso": _rel_iso(m, MUON_ISO_VARS)}

    g = events.Photons
    g = g[g[PHOTON_ID_FLAG] != 0]
    photons = {"pt": g.pt / MEV_PER_GEV, "eta": g.eta, "phi": g.phi, "rel_iso": _rel_iso(g, PHOTON_ISO_VARS)}

    info = events.EventInfo
    if "mcEventWeights" in info.fields:
        weight = ak.to_numpy(ak.fill_none(ak.firsts(info.mcEventWeights), 1.0))
    else:  # collision data
        weight = np.ones(n)
    if "MET_Truth" in events.fields:
        tx, ty = _met_term(events.MET_Truth, MET_TRUTH_TERM)
    else:
        tx = ty = np.zeros(n)
    soft_x, soft_y = _met_term(events[MET_CORE.replace("Analysis", "")], MET_SOFT_TERM)

    zeros = np.zeros(n, dtype=np.float32)
    jets, electrons, muons, photons = (_plain(c) for c in (jets, electrons, muons, photons))
    arr = objects.build(
        event_id=ak.to_numpy(info.eventNumber).astype(np.int64),
        weight=weight, process=process, is_signal=signal,
        jets=jets, electrons=electrons, muons=muons, photons=photons,
        met={"met": zeros, "phi": zeros},
        gen_met={"met": np.hypot(tx, ty), "phi": np.arctan2(ty, tx)},
    )
    return arr, soft_x, soft_y


#: the overlap removal is the shared one (one selection for every domain)
overlap_removal = objects.overlap_removal


def skim_chunk(events, config: dict, sample: str) -> ak.Array:
    """One chunk of NanoEvents -> selected objects (the contract) with the rebuilt MET."""
    arr, soft_x, soft_y = physlite_objects(events, process=sample, signal=is_signal(config, sample))
    sel = overlap_removal(objects.select(arr, config["selection"]))
    met = met_from_objects([sel.jets, sel.electrons, sel.muons, sel.photons], soft_x, soft_y)
    out = {f: sel[f] for f in sel.fields}
    out["met"] = ak.zip({k: np.asarray(v, dtype=np.float32) for k, v in met.items()})
    out = ak.zip(out, depth_limit=1)
    objects.check(out)
    return out


def iter_chunks(in_path: str, config: dict, sample: str, chunk_size: int | None = None) -> Iterator[ak.Array]:
    """Yield the skimmed objects of ``in_path`` one entry range at a time."""
    od = config.get("opendata", {})
    step = int(chunk_size or od.get("chunk_size", DEFAULT_CHUNK_SIZE))
    if step < 1:
        raise Fast2FullError(f"config: invalid key 'opendata.chunk_size': {step} (must be >= 1)")
    f, tree, names = open_tree(in_path, timeout_s=float(od.get("timeout_s", 60.0)))
    try:
        n = tree.num_entries
        prog = Progress(total=n, what="events", logger=log)
        for start in range(0, n, step):
            stop = min(start + step, n)
            try:
                events = _events(f, names, start, stop)
                out = skim_chunk(events, config, sample)
            except (Fast2FullError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:  # decompression / deserialisation errors from a damaged file
                raise InputError(in_path, f"cannot read entries {start}-{stop} "
                                          f"({type(exc).__name__}: {exc})") from exc
            prog.update(stop - start)
            yield out
        prog.done()
    finally:
        f.close()


def skim_physlite(in_path: str, out_path: str, config: dict, sample: str) -> int:
    """Skim one PHYSLITE file to an objects parquet file (atomically); returns the events written.

    ``in_path`` may be a local file or, with ``opendata.stream``, a URL uproot can read.
    """
    in_path = str(in_path)
    log.info("skimming %s (sample %s) -> %s", in_path, sample, out_path)
    return write_objects(iter_chunks(in_path, config, sample), out_path)
