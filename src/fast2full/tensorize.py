"""Objects (contract 2) -> padded tensors (contract 3): one schema per task for every domain.

Entry point: :func:`tensorize` reads the objects parquet files of one domain, applies the config's
object selection (:func:`fast2full.objects.select`, the same for every domain), builds one row per
event (``sigbkg``, ``met``) or per labelled jet (``qg``), splits the rows into train/val/test by a hash
of (process, event ID), and writes ``{outdir}/{train,val,test}.parquet`` through
:func:`fast2full.tensorio.write`.  Without a normalisation file it is the source domain: it computes
the masked per-feature mean/std from its own train split and writes ``{outdir}/norm.json``; with one
it stores those (source) statistics.  Every step is vectorised with awkward/numpy.

The readable description of every feature, unit and cut is ``docs/tensors.md``; the feature lists
themselves are in :mod:`fast2full.features`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full import features as F
from fast2full import objects, tensorio
from fast2full import weights as W
from fast2full.common import Fast2FullError, InputError, Progress, atomic_output, stable_hash64
from fast2full.plan import SPLITS

log = logging.getLogger("fast2full.tensorize")

#: salt of the split hash; changing it reshuffles every split
SPLIT_SALT = "fast2full-split-v1"
#: padded slots hold this value in x (and False in mask)
PAD_VALUE = 0.0
_U53 = float(1 << 53)


# --------------------------------------------------------------------------------------- input


def read_objects(paths: list[str | Path]) -> ak.Array:
    """Read and concatenate objects parquet files, checking each against the objects contract.

    A missing, unreadable or non-objects file raises :class:`InputError` naming it.
    """
    if not paths:
        raise Fast2FullError("tensorize: no input objects files given")
    from fast2full.readers.common import read_objects as read_one

    parts = []
    prog = Progress(len(paths), what="files", logger=log)
    for p in paths:
        if not Path(p).is_file():
            raise InputError(p, "objects file does not exist")
        parts.append(read_one(p))
        prog.update()
    return parts[0] if len(parts) == 1 else ak.concatenate(parts, axis=0)


# --------------------------------------------------------------------------------------- split


def _splitmix64(v: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic, vectorised)."""
    z = v.astype(np.uint64, copy=True)
    z += np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_index(process: np.ndarray, event_id: np.ndarray, fractions: dict[str, float]) -> np.ndarray:
    """0/1/2 (train/val/test) per row from a hash of (process, event ID): never from file order.

    The same event gets the same split in every domain (the Delphes domains share generated events)
    and whatever the order of the input files.
    """
    process = np.asarray(process)
    salt = np.zeros(len(process), dtype=np.uint64)
    for name in np.unique(process):
        salt[process == name] = np.uint64(stable_hash64(SPLIT_SALT, name))
    u = (_splitmix64(np.asarray(event_id).astype(np.int64).view(np.uint64) ^ salt) >> np.uint64(11)) / _U53
    edges = np.cumsum([fractions[s] for s in SPLITS])
    return np.minimum(np.searchsorted(edges, u, side="right"), len(SPLITS) - 1).astype(np.int8)


# --------------------------------------------------------------------------------------- rows


@dataclass
class Rows:
    """One task's rows before splitting (canonical order applied later)."""

    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    baseline: np.ndarray
    weight: np.ndarray
    event_id: np.ndarray
    process: np.ndarray
    sub: np.ndarray  # position of the row inside its event (qg: jet index), for a canonical order
    cutflow: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)  # per-row evaluation columns (tensorio aux_<name>)
    summary: dict = field(default_factory=dict)  # per-process task numbers (qg label fractions, ...)


def _f32(a) -> ak.Array:
    return ak.values_astype(a, np.float32)


def _objects_of(coll: ak.Array, kind: str, types: tuple[str, ...], with_pu: bool = False) -> ak.Array:
    """A collection as records with the shared object features (all float32); ``with_pu``: also
    ``is_pu`` (the candidate's pile-up flag for particle-flow kinds ``pf_*``, else 0)."""
    zero = _f32(coll.pt * 0)
    fields = {
        "pt": _f32(coll.pt),
        "eta": _f32(coll.eta) if kind != "met" and not kind.startswith("soft_") else zero,
        "phi": _f32(coll.phi),
        "mass": _f32(coll.mass) if kind == "jet" else zero,
        "px": _f32(coll.pt * np.cos(coll.phi)),
        "py": _f32(coll.pt * np.sin(coll.phi)),
        "btag": _f32(coll.btag) if kind == "jet" else zero,
        "charge": _f32(coll.charge) if kind in ("electron", "muon", "pf_track") else zero,
    }
    if with_pu:
        fields["is_pu"] = _f32(coll.is_pu) if kind.startswith("pf_") else zero
    for t in types:
        fields[f"is_{t}"] = zero + np.float32(t == kind)
    return ak.zip(fields)


def _met_object(met: ak.Array) -> ak.Array:
    counts = np.ones(len(met), dtype=np.int64)
    return ak.zip({"pt": ak.unflatten(ak.to_numpy(met.met), counts), "phi": ak.unflatten(ak.to_numpy(met.phi), counts)})


def _pad(objs: ak.Array, names: list[str], n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Jagged records -> (x[n, n_max, F] float32 with PAD_VALUE in empty slots, mask[n, n_max])."""
    padded = ak.pad_none(objs, n_max, axis=1, clip=True)
    mask = ak.to_numpy(~ak.is_none(padded, axis=1)).astype(bool)
    x = np.stack([ak.to_numpy(ak.fill_none(padded[f], PAD_VALUE)).astype(np.float32) for f in names], axis=-1)
    if len(objs) == 0:
        x = x.reshape(0, n_max, len(names))
        mask = mask.reshape(0, n_max)
    return x, mask


def _xy(met: ak.Array) -> np.ndarray:
    m, phi = ak.to_numpy(met.met).astype(np.float64), ak.to_numpy(met.phi).astype(np.float64)
    return np.stack([m * np.cos(phi), m * np.sin(phi)], axis=-1).astype(np.float32)


def _counts_by_process(process: np.ndarray, keep: np.ndarray | None = None) -> dict[str, int]:
    p = process if keep is None else process[keep]
    names, counts = np.unique(p, return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts)}


def _flow(
    process: np.ndarray, weight: np.ndarray, keep: np.ndarray | None = None, names: list[str] | None = None
) -> dict[str, dict]:
    """Cut-flow entries per process: ``{"n": rows, "sum_w": weight in pb, "ess": (sum w)^2 / sum w^2}``
    (:func:`fast2full.weights.count_summary`); ``names``: processes to list even when none pass."""
    p = process if keep is None else process[keep]
    w = np.asarray(weight, dtype=np.float64) if keep is None else np.asarray(weight, dtype=np.float64)[keep]
    out = {}
    for name in names if names is not None else np.unique(p):
        s = W.count_summary(w[p == name])
        out[str(name)] = {"n": s["n"], "sum_w": s["sum_w"], "ess": s["ess"]}
    return out


def _flow_text(entry: dict) -> str:
    return ", ".join(f"{k}={v['n']} (ESS {v['ess']:.1f})" for k, v in entry.items())


def build_sigbkg(events: ak.Array, process: np.ndarray, cfg: dict) -> Rows:
    """ttbar (1) vs W/Z+jets (0) in the analysis-like region; objects: MET, e, mu, jets, photons."""
    region = {**F.DEFAULT_REGION, **cfg.get("region", {})}
    n_max = F.input_slots("sigbkg", cfg)
    n_lep = ak.to_numpy(ak.num(events.electrons) + ak.num(events.muons))
    n_jet = ak.to_numpy(ak.num(events.jets))
    n_b = ak.to_numpy(ak.sum(events.jets.btag, axis=1))
    steps = {
        "lepton": n_lep == region["n_leptons"],
        "jets": n_jet >= region["min_jets"],
        "btag": n_b >= region["min_btags"],
    }
    w_ev = ak.to_numpy(events.weight)
    procs = sorted(set(process.tolist()))
    cutflow = {p: {"all": e} for p, e in _flow(process, w_ev, names=procs).items()}
    keep = np.ones(len(events), dtype=bool)
    for name, cut in steps.items():
        keep &= cut
        for p, e in _flow(process, w_ev, keep, names=procs).items():
            cutflow[p][name] = e
    ev = events[keep]
    types = F.OBJECT_TYPES
    objs = ak.concatenate(
        [
            _objects_of(_met_object(ev.met), "met", types),
            _objects_of(ev.electrons, "electron", types),
            _objects_of(ev.muons, "muon", types),
            _objects_of(ev.jets, "jet", types),
            _objects_of(ev.photons, "photon", types),
        ],
        axis=1,
    )
    x, mask = _pad(objs, F.names("sigbkg"), n_max)
    ht = ak.to_numpy(ak.sum(ev.jets.pt, axis=1)).astype(np.float32)
    return Rows(
        x=x,
        mask=mask,
        y=ak.to_numpy(ev.is_signal).astype(np.float32),
        baseline=ht,
        weight=ak.to_numpy(ev.weight),
        event_id=ak.to_numpy(ev.event_id),
        process=process[keep],
        sub=np.zeros(len(ev), dtype=np.int64),
        cutflow=cutflow,
    )


def _flat_dr(jet_eta: np.ndarray, jet_phi: np.ndarray, c_eta: np.ndarray, c_phi: np.ndarray):
    """(deta, dphi, dr) of candidates against the jet axis (flat numpy, same length)."""
    deta = c_eta - jet_eta
    dphi = (c_phi - jet_phi + np.pi) % (2 * np.pi) - np.pi
    return deta, dphi, np.hypot(deta, dphi)


def jet_constituents(
    jets: ak.Array, pflow: ak.Array, delta_r: float = F.QG_CONSTITUENT_DELTA_R, pt_min: float = 0.0, chunk: int = 20_000
) -> ak.Array:
    """Per jet (``jets``: one record per row, ``pflow``: that row's event candidates, both length n):
    the particle-flow candidates within ``delta_r`` of the jet axis with pT > ``pt_min``, tracks from
    pile-up vertices left out (``is_pu``), pT-ordered.  Records: pt, rel_pt, log_pt, deta (times the
    sign of the jet eta), dphi, dr, charge, kind.  Done on flat numpy pairs in chunks of rows, so memory
    stays bounded by ``chunk`` rows' candidates."""
    out = []
    for start in range(0, len(jets), chunk):
        j, c = jets[start : start + chunk], pflow[start : start + chunk]
        counts = ak.to_numpy(ak.num(c))
        je = np.repeat(ak.to_numpy(j.eta).astype(np.float64), counts)
        jp = np.repeat(ak.to_numpy(j.phi).astype(np.float64), counts)
        jpt = np.repeat(ak.to_numpy(j.pt).astype(np.float64), counts)
        cpt = ak.to_numpy(ak.flatten(c.pt)).astype(np.float64)
        deta, dphi, dr = _flat_dr(
            je, jp, ak.to_numpy(ak.flatten(c.eta)).astype(np.float64), ak.to_numpy(ak.flatten(c.phi)).astype(np.float64)
        )
        keep = (dr < delta_r) & (cpt > pt_min) & ~ak.to_numpy(ak.flatten(c.is_pu))
        rec = ak.zip(
            {
                "pt": cpt,
                "rel_pt": cpt / jpt,
                "log_pt": np.log(np.maximum(cpt, 1e-3)),
                "deta": deta * np.where(je < 0, -1.0, 1.0),
                "dphi": dphi,
                "dr": dr,
                "charge": ak.to_numpy(ak.flatten(c.charge)).astype(np.float64),
                "kind": ak.to_numpy(ak.flatten(c.kind)),
            }
        )
        row = np.repeat(np.arange(len(j)), counts)
        sel = ak.unflatten(rec[keep], np.bincount(row[keep], minlength=len(j)))
        out.append(sel[ak.argsort(sel.pt, axis=1, ascending=False, stable=True)])
    if not out:
        return ak.Array([[]] * 0)
    return out[0] if len(out) == 1 else ak.concatenate(out, axis=0)


def common_spectrum_factors(
    pt: np.ndarray,
    abs_eta: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    pt_edges=F.QG_REWEIGHT_PT_EDGES_GEV,
    eta_edges=F.QG_REWEIGHT_ABS_ETA_EDGES,
) -> np.ndarray:
    """Per-row factors that give quark (y = 1) and gluon (y = 0) jets one common (pT, |eta|) spectrum.

    With H_c the ``w``-weighted 2-d histogram of class c and S_c its sum, the target shape is
    T = (H_q / S_q + H_g / S_g) / 2 and a jet of class c in bin b gets ``T_b / H_c,b * (S_q + S_g) / 2``:
    both classes then have the same weighted (pT, |eta|) distribution (to the binning), the same total
    weight, and the total stays the physical one.  Bins where either class has no positive weight give
    0 (those jets drop out: the two spectra cannot be matched there); rows outside the edges too.
    """
    pt, abs_eta, y, w = (np.asarray(a, dtype=np.float64) for a in (pt, abs_eta, y, w))
    ip = np.searchsorted(pt_edges, pt, side="right") - 1
    ie = np.searchsorted(eta_edges, abs_eta, side="right") - 1
    inside = (ip >= 0) & (ip < len(pt_edges) - 1) & (ie >= 0) & (ie < len(eta_edges) - 1)
    nb = (len(pt_edges) - 1) * (len(eta_edges) - 1)
    b = np.where(inside, ip * (len(eta_edges) - 1) + ie, 0)
    q = (y == 1) & inside
    g = (y != 1) & inside
    hq = np.bincount(b[q], weights=w[q], minlength=nb)
    hg = np.bincount(b[g], weights=w[g], minlength=nb)
    ok = (hq > 0) & (hg > 0)
    sq, sg = hq[ok].sum(), hg[ok].sum()
    out = np.zeros(len(pt))
    if sq <= 0 or sg <= 0:
        return out
    target = np.where(ok, 0.5 * (hq / sq + hg / sg), 0.0)
    scale = 0.5 * (sq + sg)
    with np.errstate(divide="ignore", invalid="ignore"):
        fq = np.where(ok, target / hq * scale, 0.0)
        fg = np.where(ok, target / hg * scale, 0.0)
    out[q] = fq[b[q]]
    out[g] = fg[b[g]]
    return out


def qg_reweight_factors(pt, abs_eta, y, w, cfg) -> np.ndarray:
    """:func:`common_spectrum_factors` with the binning of ``tensors.tasks.qg.reweight``."""
    rw = cfg.get("reweight", {}) or {}
    return common_spectrum_factors(
        pt,
        abs_eta,
        y,
        w,
        tuple(rw.get("pt_edges", F.QG_REWEIGHT_PT_EDGES_GEV)),
        tuple(rw.get("abs_eta_edges", F.QG_REWEIGHT_ABS_ETA_EDGES)),
    )


def apply_qg_reweighting(rows: Rows, cfg) -> None:
    """Multiply ``rows.weight`` (the event weights as the tensors carry them) by the quark/gluon
    reweighting to one (pT, |eta|) spectrum, keep the former in ``aux["event_weight"]``, and add the
    quark and gluon jets after it to the cut flow (in the tensor weight's units)."""
    w = np.asarray(rows.weight, dtype=np.float64)
    f = qg_reweight_factors(rows.aux["jet_pt"], rows.aux["jet_abs_eta"], rows.y, w, cfg)
    rows.aux["event_weight"] = w
    rows.weight = w * f
    procs = sorted(rows.cutflow)
    for p in procs:
        rows.summary.setdefault(p, {})["jets_reweighted_to_zero"] = int(((rows.process == p) & (f == 0)).sum())
    for label, key in ((1.0, "quark_jets_reweighted"), (0.0, "gluon_jets_reweighted")):
        for p, e in _flow(rows.process, rows.weight, rows.y == label, names=procs).items():
            rows.cutflow[p][key] = e


def build_qg(events: ak.Array, process: np.ndarray, cfg: dict) -> Rows:
    """One row per light-quark or gluon jet: slot 0 its observables, slots 1.. its constituents.

    No other jet of the event enters.  ``weight`` = event weight x :func:`common_spectrum_factors`
    (quark and gluon jets reweighted to one (pT, |eta|) spectrum, per domain); the physical weight,
    the jet pT and |eta| are kept as aux columns for the binned evaluation.
    """
    types = tuple(cfg.get("constituent_types", F.QG_CONSTITUENT_TYPES))
    unknown = set(types) - set(objects.PFLOW_KINDS)
    if unknown:
        raise Fast2FullError(
            f"config tensors.tasks.qg.constituent_types: unknown {sorted(unknown)} "
            f"(known: {sorted(objects.PFLOW_KINDS)})"
        )
    jets = events.jets
    flav = abs(jets.flavor)
    is_quark = flav == F.LIGHT_QUARK_FLAVORS[0]
    for f in F.LIGHT_QUARK_FLAVORS[1:]:
        is_quark = is_quark | (flav == f)
    labelled = is_quark | (flav == F.GLUON_FLAVOR)
    counts = ak.to_numpy(ak.num(jets))
    ev_of_jet = np.repeat(np.arange(len(events)), counts)
    sel = ak.to_numpy(ak.flatten(labelled))
    row_ev = ev_of_jet[sel]
    row_k = ak.to_numpy(ak.flatten(ak.local_index(jets.pt)))[sel]
    row_y = ak.to_numpy(ak.flatten(is_quark))[sel].astype(np.float32)
    tagged = ak.flatten(jets)[sel]

    pf = events.pflow[row_ev]
    kinds = np.array([objects.PFLOW_KINDS[t] for t in types])
    pf = pf[_kind_in(pf.kind, kinds)]
    cons = jet_constituents(tagged, pf, pt_min=float(cfg.get("constituent_pt_min", 0.0)))
    jpt = ak.to_numpy(tagged.pt).astype(np.float32)
    jet_slot = {name: np.zeros(len(jpt), np.float32) for name in F.names("qg")}
    jet_slot.update(
        {
            "is_jet": np.ones(len(jpt), np.float32),
            "jet_pt": jpt,
            "jet_abs_eta": np.abs(ak.to_numpy(tagged.eta)).astype(np.float32),
            "jet_mass": ak.to_numpy(tagged.mass).astype(np.float32),
            "jet_ntrk": ak.to_numpy(tagged.ntrk).astype(np.float32),
            "jet_trk_width": ak.to_numpy(tagged.trk_width).astype(np.float32),
            "jet_trk_pt_frac": (ak.to_numpy(tagged.sum_trk_pt) / np.maximum(jpt, 1e-3)).astype(np.float32),
        }
    )
    zero = _f32(cons.pt * 0)
    cfields = {name: zero for name in F.names("qg")}
    cfields.update(
        {
            "c_rel_pt": _f32(cons.rel_pt),
            "c_log_pt": _f32(cons.log_pt),
            "c_deta": _f32(cons.deta),
            "c_dphi": _f32(cons.dphi),
            "c_dr": _f32(cons.dr),
            "c_charge": _f32(cons.charge),
        }
    )
    for t in F.QG_CONSTITUENT_TYPES:
        cfields[f"is_{t}"] = _f32(cons.kind == objects.PFLOW_KINDS[t])
    first = ak.unflatten(ak.zip(jet_slot), np.ones(len(jpt), dtype=np.int64))
    objs = ak.concatenate([first, ak.zip(cfields)], axis=1)
    x, mask = _pad(objs, F.names("qg"), F.input_slots("qg", cfg))

    ntrk_tagged = ak.to_numpy(tagged.ntrk)
    proc_rows = process[row_ev]
    w_ev = ak.to_numpy(events.weight)
    procs = sorted(set(process.tolist()))
    w_rows = w_ev[row_ev]
    cutflow = {p: {"events": e} for p, e in _flow(process, w_ev, names=procs).items()}
    jet_proc, jet_w = np.repeat(process, counts), np.repeat(w_ev, counts)
    for p, e in _flow(jet_proc, jet_w, names=procs).items():
        cutflow[p]["jets"] = e
    for label, key in ((1.0, "quark_jets"), (0.0, "gluon_jets")):
        for p, e in _flow(proc_rows, w_rows, row_y == label, names=procs).items():
            cutflow[p][key] = e
    w_event = w_rows.astype(np.float64)
    ncons = ak.to_numpy(ak.num(cons))
    summary = {}
    for p in procs:
        r = proc_rows == p
        sw = w_event[r].sum()
        summary[p] = {
            "quark_fraction": float(row_y[r].mean()) if r.any() else None,
            "weighted_quark_fraction": float((w_event * row_y)[r].sum() / sw) if r.any() and sw else None,
            "mean_constituents": float(ncons[r].mean()) if r.any() else None,
        }
    # weight: the event weight here; tensorize multiplies it by the task's process scale, then applies
    # the quark/gluon reweighting (apply_qg_reweighting) to the weights training sees
    return Rows(
        x=x,
        mask=mask,
        y=row_y,
        baseline=-ntrk_tagged.astype(np.float32),
        weight=w_event,
        event_id=ak.to_numpy(events.event_id)[row_ev],
        process=proc_rows,
        sub=row_k.astype(np.int64),
        cutflow=cutflow,
        summary=summary,
        aux={"jet_pt": jpt, "jet_abs_eta": jet_slot["jet_abs_eta"], "event_weight": w_event},
    )


def _kind_in(kind: ak.Array, kinds: np.ndarray) -> ak.Array:
    flat = np.isin(ak.to_numpy(ak.flatten(kind)), kinds)
    return ak.unflatten(flat, ak.to_numpy(ak.num(kind)))


def _vec_sum(coll: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    return (
        ak.to_numpy(ak.sum(coll.pt * np.cos(coll.phi), axis=1)).astype(np.float64),
        ak.to_numpy(ak.sum(coll.pt * np.sin(coll.phi), axis=1)).astype(np.float64),
    )


def _term(mpx: np.ndarray, mpy: np.ndarray, present: np.ndarray | None = None) -> ak.Array:
    """A MET-like term (missing convention: minus the sum) as a one-object list per event; absent
    (an empty list) where ``present`` is False."""
    n = len(mpx)
    present = np.ones(n, dtype=bool) if present is None else present
    rec = ak.zip({"pt": np.hypot(mpx, mpy)[present], "phi": np.arctan2(mpy, mpx)[present]})
    return ak.unflatten(rec, present.astype(np.int64))


def soft_candidates(events: ak.Array) -> ak.Array:
    """The particle-flow candidates not in a selected object: farther than MET_CANDIDATE_JET_DELTA_R
    from every selected jet and MET_CANDIDATE_EM_DELTA_R from every selected lepton and photon."""
    pf = events.pflow
    if ak.sum(ak.num(pf)) == 0:
        return pf
    far = objects._min_delta_r(pf, events.jets) > F.MET_CANDIDATE_JET_DELTA_R
    for c in (events.electrons, events.muons, events.photons):
        far = far & (objects._min_delta_r(pf, c) > F.MET_CANDIDATE_EM_DELTA_R)
    return pf[far]


def build_met(events: ak.Array, process: np.ndarray, cfg: dict) -> Rows:
    """One row per event; y: true MET (x, y).  x: the reconstructed MET, its soft term (MET + the
    vector sum of the selected objects, i.e. minus the sum of everything the MET holds outside them)
    and, where the domain has particle-flow candidates, the soft term split into primary-vertex tracks,
    pile-up tracks and neutrals; then the selected electrons, muons, photons and jets (pT-ordered, at
    most ``max_objects`` slots with the terms); then the soft term's candidates (pT-ordered, at most
    ``max_candidates``)."""
    n_obj = int(cfg.get("max_objects", F.DEFAULT_MAX_OBJECTS["met"]))
    n_cand = int(cfg.get("max_candidates", F.DEFAULT_MAX_CANDIDATES))
    types = F.MET_OBJECT_TYPES
    n = len(events)
    mx, my = _xy(events.met).T.astype(np.float64)
    hx, hy = mx.copy(), my.copy()
    for c in (events.jets, events.electrons, events.muons, events.photons):
        sx, sy = _vec_sum(c)
        hx, hy = hx + sx, hy + sy
    soft = soft_candidates(events)
    has_pf = ak.to_numpy(ak.num(events.pflow)) > 0
    parts = {}
    for name, sel in (
        ("soft_pv_tracks", (soft.kind == objects.PFLOW_TRACK) & ~soft.is_pu),
        ("soft_pu_tracks", (soft.kind == objects.PFLOW_TRACK) & soft.is_pu),
        ("soft_neutrals", soft.kind != objects.PFLOW_TRACK),
    ):
        sx, sy = _vec_sum(soft[sel])
        parts[name] = _objects_of(_term(-sx, -sy, has_pf), name, types, with_pu=True)
    terms = ak.concatenate(
        [
            _objects_of(_met_object(events.met), "met", types, with_pu=True),
            _objects_of(_term(hx, hy), "soft_term", types, with_pu=True),
            *parts.values(),
        ],
        axis=1,
    )
    hard = ak.concatenate(
        [
            _objects_of(events.electrons, "electron", types, with_pu=True),
            _objects_of(events.muons, "muon", types, with_pu=True),
            _objects_of(events.photons, "photon", types, with_pu=True),
            _objects_of(events.jets, "jet", types, with_pu=True),
        ],
        axis=1,
    )
    hard = hard[ak.argsort(hard.pt, axis=1, ascending=False, stable=True)]
    x_obj, m_obj = _pad(ak.concatenate([terms, hard], axis=1), F.names("met"), n_obj)
    cand = ak.concatenate(
        [_objects_of(soft[soft.kind == k], f"pf_{t}", types, with_pu=True) for t, k in objects.PFLOW_KINDS.items()],
        axis=1,
    )
    cand = cand[ak.argsort(cand.pt, axis=1, ascending=False, stable=True)]
    x_c, m_c = _pad(cand, F.names("met"), n_cand)
    x, mask = np.concatenate([x_obj, x_c], axis=1), np.concatenate([m_obj, m_c], axis=1)
    cutflow = {p: {"events": e} for p, e in _flow(process, ak.to_numpy(events.weight)).items()}
    nsoft = ak.to_numpy(ak.num(soft))
    gen = ak.to_numpy(events.gen_met.met)
    summary = {}
    for p in cutflow:
        r = process == p
        summary[p] = {
            "mean_true_met_gev": float(gen[r].mean()) if r.any() else None,
            "mean_soft_candidates": float(nsoft[r].mean()) if r.any() else None,
        }
    return Rows(
        x=x,
        mask=mask,
        y=_xy(events.gen_met),
        baseline=_xy(events.met),
        weight=ak.to_numpy(events.weight),
        event_id=ak.to_numpy(events.event_id),
        process=process,
        sub=np.zeros(n, dtype=np.int64),
        cutflow=cutflow,
        summary=summary,
    )


BUILDERS = {"sigbkg": build_sigbkg, "qg": build_qg, "met": build_met}


# --------------------------------------------------------------------------------------- norm


def _applies(vals: np.ndarray, names: list[str], flag: str | None) -> np.ndarray:
    """Rows of ``vals`` (objects x features) where a feature with ``slot_flag`` ``flag`` applies."""
    if flag is None:
        return np.ones(len(vals), dtype=bool)
    on = vals[:, names.index(flag.lstrip("!"))] > 0.5
    return ~on if flag.startswith("!") else on


def compute_norm(
    x: np.ndarray,
    mask: np.ndarray,
    kinds: list[str],
    slot_flags: list[str | None] | None = None,
    names: list[str] | None = None,
) -> dict[str, list[float]]:
    """Masked per-feature mean/std over real objects; categorical features get mean 0, std 1.

    A feature with a slot flag (:attr:`fast2full.features.Feature.slot_flag`) uses only the slots it
    applies to (qg: jet observables over jet slots, constituent features over constituent slots)."""
    vals = x[mask].astype(np.float64)  # (n_objects, F)
    if len(vals) == 0:
        raise Fast2FullError("tensorize: no real objects in the train split to compute the normalisation")
    mean, std = vals.mean(axis=0), vals.std(axis=0)
    for i, flag in enumerate(slot_flags or []):
        if flag is not None:
            v = vals[_applies(vals, names, flag), i]
            mean[i], std[i] = (v.mean(), v.std()) if len(v) else (0.0, 1.0)
    cat = np.array([k == "categorical" for k in kinds])
    mean[cat], std[cat] = 0.0, 1.0
    std[std <= 0] = 1.0
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def read_norm(path: str | Path, task: str) -> dict:
    """Read a norm.json written by the source domain's tensorize and check it fits ``task``."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "normalisation file does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable JSON normalisation file ({exc})") from exc
    if not isinstance(d, dict) or not {"mean", "std", "features"} <= set(d):
        raise InputError(path, "normalisation file lacks keys mean/std/features")
    if d["features"] != F.names(task):
        raise InputError(path, f"normalisation features {d['features']} differ from task {task}'s {F.names(task)}")
    if len(d["mean"]) != len(d["features"]) or len(d["std"]) != len(d["features"]):
        raise InputError(path, "normalisation mean/std lengths differ from the number of features")
    return d


# --------------------------------------------------------------------------------------- main


def excluded_processes(config: dict, task: str) -> set[str]:
    """Processes left out of ``task``: its exclude list plus every process/sample with role pileup."""
    tcfg = config.get("tensors", {}).get("tasks", {}).get(task, {}) or {}
    out = set(tcfg.get("exclude_processes", F.DEFAULT_EXCLUDE[task]))
    for section in (config.get("processes", {}), config.get("opendata", {}).get("samples", {})):
        out |= {p for p, c in section.items() if (c or {}).get("role") == "pileup"}
    return out


def _class_balance(y: np.ndarray, w: np.ndarray) -> dict:
    n1 = int((y == 1).sum())
    return {
        "counts": {"0": int(len(y) - n1), "1": n1},
        "weighted": {"0": float(w[y != 1].sum()), "1": float(w[y == 1].sum())},
        "fraction_1": float(n1 / len(y)) if len(y) else None,
    }


def tensorize(
    inputs: list[str | Path],
    outdir: str | Path,
    config: dict,
    task: str,
    domain: str,
    norm_path: str | Path | None = None,
    reduced_inputs: bool = False,
) -> dict:
    """Write ``{outdir}/{train,val,test}.parquet`` (and ``norm.json`` for the source); return a summary.

    ``reduced_inputs``: the task's reduced tensor settings (``fast2full.plan.REDUCED_INPUTS``, qg: the
    jet observables only, one slot) replace the config's, for a domain that lacks an input (PHYSLITE)
    and for the reduced-input copy of the source compared with it.

    Raises Fast2FullError/InputError (naming the files) for bad inputs or when no rows survive the
    selection; nothing is written then.
    """
    if task not in BUILDERS:
        raise Fast2FullError(f"tensorize: unknown task {task!r} (one of {sorted(BUILDERS)})")
    tcfg = config.get("tensors", {})
    task_cfg = tcfg.get("tasks", {}).get(task, {}) or {}
    reduced = None
    if reduced_inputs:
        from fast2full.plan import REDUCED_INPUTS

        if task not in REDUCED_INPUTS:
            raise Fast2FullError(
                f"tensorize {task}/{domain}: task {task} has no reduced inputs (only {sorted(REDUCED_INPUTS)})"
            )
        reduced = REDUCED_INPUTS[task]
        task_cfg = {**task_cfg, **reduced["tensors"]}
        log.info("%s/%s: reduced inputs %s (%s)", task, domain, reduced["tensors"], reduced["why"])
    fractions = tcfg.get("split_fractions", {"train": 0.6, "val": 0.2, "test": 0.2})
    norm = read_norm(norm_path, task) if norm_path is not None else None
    names = ", ".join(str(p) for p in inputs)

    events = read_objects(inputs)
    events = objects.select(events, config.get("selection", {}))
    process = ak.to_numpy(events.process).astype(str) if len(events) else np.zeros(0, dtype=str)
    excl = excluded_processes(config, task)
    keep = ~np.isin(process, list(excl))
    if task == "qg":
        keep &= ~ak.to_numpy(events.is_signal).astype(bool)
    log.info(
        "%s/%s: %d events read, %d after dropping processes %s",
        task,
        domain,
        len(events),
        int(keep.sum()),
        sorted(excl) + (["signal"] if task == "qg" else []),
    )
    events, process = events[keep], process[keep]
    if len(events) == 0:
        raise Fast2FullError(
            f"tensorize {task}/{domain}: no rows after selection in {names} (no events of "
            f"the task's processes; excluded: {sorted(excl)})"
        )

    pw_mode = task_cfg.get("process_weights", W.DEFAULT_PROCESS_WEIGHTS[task])
    pw_scale = W.process_scale(process, ak.to_numpy(events.weight), pw_mode)
    rows = BUILDERS[task](events, process, task_cfg)
    # the tensors' weight column: pb per event (cross_section) or mean 1 per process (sample);
    # the cut-flows stay in pb (fast2full.weights.DEFAULT_PROCESS_WEIGHTS)
    rows.weight = (
        rows.weight * np.array([pw_scale[p] for p in rows.process], dtype=np.float64)
        if len(rows.process)
        else rows.weight
    )
    if task == "qg":  # last: the reweighting matches the spectra of the weights training sees
        apply_qg_reweighting(rows, task_cfg)
    for p, c in sorted(rows.cutflow.items()):
        log.info("%s/%s cutflow %s: %s", task, domain, p, _flow_text(c))
    for p, c in sorted(rows.summary.items()):
        log.info("%s/%s %s: %s", task, domain, p, ", ".join(f"{k}={v}" for k, v in c.items()))
    if len(rows.x) == 0:
        raise Fast2FullError(f"tensorize {task}/{domain}: no rows after selection in {names} (cutflow {rows.cutflow})")
    proc_code = np.unique(rows.process, return_inverse=True)[1]
    order = np.lexsort((rows.sub, rows.event_id, proc_code))
    keys = np.stack([proc_code[order], rows.event_id[order], rows.sub[order]], axis=1)
    n_dup = int((keys[1:] == keys[:-1]).all(axis=1).sum())
    if n_dup:
        log.warning(
            "%s/%s: %d rows repeat a (process, event_id) of another row: the readers should give "
            "unique event IDs per process (the row order is then not canonical)",
            task,
            domain,
            n_dup,
        )
    split = split_index(rows.process, rows.event_id, fractions)[order]

    def take(a: np.ndarray) -> np.ndarray:
        return a[order]

    x, mask, y, base, w, eid, proc = (
        take(a) for a in (rows.x, rows.mask, rows.y, rows.baseline, rows.weight, rows.event_id, rows.process)
    )
    aux = {k: take(np.asarray(v)) for k, v in rows.aux.items()}
    norm_domain = domain
    if norm is None:
        tr = split == 0
        if not tr.any():
            raise Fast2FullError(
                f"tensorize {task}/{domain}: the train split is empty (only {len(x)} rows in "
                f"{names}); cannot compute the normalisation"
            )
        stats = compute_norm(x[tr], mask[tr], F.kinds(task), F.slot_flags(task), F.names(task))
    else:
        stats = {"mean": [float(v) for v in norm["mean"]], "std": [float(v) for v in norm["std"]]}
        norm_domain = norm.get("domain", "unknown")
    stats["slot_flags"] = F.slot_flags(task)

    classification = task in F.LABELS
    if classification and len(np.unique(y)) < 2:
        log.warning(
            "%s/%s: only one class (label %s) in %d rows; files are written anyway",
            task,
            domain,
            sorted(set(np.unique(y).tolist())),
            len(y),
        )
    base_meta = {
        "task": task,
        "domain": domain,
        "features": F.names(task),
        "units": F.units(task),
        "feature_kinds": F.kinds(task),
        "targets": F.TARGETS[task],
        "target_units": F.TARGET_UNITS[task],
        "labels": F.LABELS.get(task),
        "baseline": F.BASELINES[task],
        "norm": {**stats, "domain": norm_domain},
        "padding": {
            "value": PAD_VALUE,
            "where": "x slots with mask False; objects beyond max_objects are dropped (the lowest in the row's order)",
        },
        "selection": config.get("selection", {}),
        "task_config": task_cfg,
        # the reduced-input comparison (fast2full.plan.REDUCED_INPUTS), or None
        "reduced_inputs": {"settings": reduced["tensors"], "why": reduced["why"]} if reduced else None,
        "excluded_processes": sorted(excl) + (["signal (is_signal)"] if task == "qg" else []),
        "split_method": {"fractions": fractions, "hash": f"splitmix64(event_id ^ sha256({SPLIT_SALT!r}, process))"},
        "cutflow": rows.cutflow,
        "process_weights": {
            "mode": pw_mode,
            "scale": pw_scale,
            "weight_units": "pb per event"
            if pw_mode == "cross_section"
            else "relative: mean 1 per process over its events before the task's selection "
            "(each process sums to its event count); the cut-flow is in pb",
        },
        "task_summary": rows.summary,
        "inputs": sorted(str(p) for p in inputs),
        # which particle-flow candidate kinds this domain's objects carry (PHYSLITE: none)
        "pflow_kinds_present": sorted(
            k for k, v in objects.PFLOW_KINDS.items() if bool(ak.any(events.pflow.kind == v))
        ),
    }
    if task == "qg":
        rw = task_cfg.get("reweight", {}) or {}
        base_meta["weight"] = (
            "event weight x quark/gluon reweighting to one common (pT, |eta|) spectrum "
            "(tensorize.common_spectrum_factors); aux_event_weight holds the event weight"
        )
        base_meta["reweight"] = {
            "pt_edges": list(rw.get("pt_edges", F.QG_REWEIGHT_PT_EDGES_GEV)),
            "abs_eta_edges": list(rw.get("abs_eta_edges", F.QG_REWEIGHT_ABS_ETA_EDGES)),
        }
    summary: dict = {"task": task, "domain": domain, "rows": {}, "outdir": str(outdir)}
    outdir = Path(outdir)
    with contextlib.ExitStack() as stack:
        for i, s in enumerate(SPLITS):
            sel = split == i
            if not sel.any():
                log.warning("%s/%s: the %s split is empty", task, domain, s)
            meta = {
                **base_meta,
                "split": s,
                "processes": _counts_by_process(proc, sel),
                # rows, total weight (pb) and effective sample size per process and per class
                "sample_sizes": {
                    "all": W.count_summary(w[sel], y[sel] if classification else None),
                    "processes": _flow(proc, w, sel),
                },
            }
            if classification:
                meta["class_balance"] = _class_balance(y[sel], w[sel])
            tmp = stack.enter_context(atomic_output(outdir / f"{s}.parquet"))
            tensorio.write(
                tmp,
                x=x[sel],
                mask=mask[sel],
                y=y[sel],
                baseline=base[sel],
                weight=w[sel],
                event_id=eid[sel],
                meta=meta,
                aux={k: v[sel] for k, v in aux.items()},
            )
            summary["rows"][s] = int(sel.sum())
            log.info(
                "%s/%s %s: %d rows (ESS %.1f)%s",
                task,
                domain,
                s,
                int(sel.sum()),
                meta["sample_sizes"]["all"]["ess"],
                f", class balance {meta['class_balance']['counts']}" if classification else "",
            )
        if norm is None:
            tmp = stack.enter_context(atomic_output(outdir / "norm.json"))
            tmp.write_text(
                json.dumps(
                    {"task": task, "domain": domain, "features": F.names(task), "kinds": F.kinds(task), **stats},
                    indent=1,
                )
                + "\n"
            )
    summary["norm"] = stats
    return summary


# --------------------------------------------------------------------------------------- synthetic


def synthetic_objects(n: int, process: str, seed: int, *, is_signal: bool | None = None, first_id: int = 0) -> ak.Array:
    """A small synthetic objects array (for tests and benchmarks; not physics).

    ttbar-like processes get more jets and b-tags and one lepton more often; jets carry random light
    quark / gluon / b flavours.
    """
    rng = np.random.default_rng(stable_hash64("synthetic", process, seed))
    sig = process == "ttbar" if is_signal is None else is_signal
    nj = rng.poisson(6.0 if sig else 3.0, n)
    ne = rng.binomial(1, 0.5, n) + rng.binomial(1, 0.05, n)
    nm = rng.binomial(1, 0.5, n)
    ng = rng.poisson(0.3, n)

    def jag(counts, make):
        tot = int(counts.sum())
        return ak.unflatten(make(tot), counts)

    def kin(counts, pt_scale):
        return {
            "pt": jag(counts, lambda t: 20.0 + rng.exponential(pt_scale, t)),
            "eta": jag(counts, lambda t: rng.uniform(-2.8, 2.8, t)),
            "phi": jag(counts, lambda t: rng.uniform(-np.pi, np.pi, t)),
        }

    jets = {
        **kin(nj, 40.0),
        "mass": jag(nj, lambda t: rng.exponential(8.0, t)),
        "btag": jag(nj, lambda t: rng.random(t) < (0.3 if sig else 0.08)),
        "flavor": jag(nj, lambda t: rng.choice([0, 1, 2, 3, 4, 5, 21, -1, -2], t)),
        "ntrk": jag(nj, lambda t: rng.poisson(12, t)),
        "trk_width": jag(nj, lambda t: rng.exponential(0.08, t)),
    }
    jets["sum_trk_pt"] = jets["pt"] * jag(nj, lambda t: rng.uniform(0.2, 0.9, t))
    # particle-flow candidates: a few per jet around its axis (DeltaR ~ 0.15) plus soft ones anywhere
    per_jet = jag(nj, lambda t: rng.poisson(6.0, t))
    n_near, n_soft = ak.to_numpy(ak.sum(per_jet, axis=1)), rng.poisson(10.0, n)
    near_eta = np.repeat(ak.to_numpy(ak.flatten(jets["eta"])), ak.to_numpy(ak.flatten(per_jet)))
    near_phi = np.repeat(ak.to_numpy(ak.flatten(jets["phi"])), ak.to_numpy(ak.flatten(per_jet)))
    tot_near = len(near_eta)
    near = {
        "eta": near_eta + rng.normal(0, 0.15, tot_near),
        "phi": (near_phi + rng.normal(0, 0.15, tot_near) + np.pi) % (2 * np.pi) - np.pi,
        "pt": 0.5 + rng.exponential(5.0, tot_near),
    }
    soft = {
        "eta": rng.uniform(-2.5, 2.5, int(n_soft.sum())),
        "phi": rng.uniform(-np.pi, np.pi, int(n_soft.sum())),
        "pt": 0.5 + rng.exponential(1.0, int(n_soft.sum())),
    }
    nc = n_near + n_soft
    pflow = {
        k: ak.concatenate([ak.unflatten(near[k], n_near), ak.unflatten(soft[k], n_soft)], axis=1)
        for k in ("pt", "eta", "phi")
    }
    pflow["charge"] = jag(nc, lambda t: rng.choice([-1, 0, 0, 1], t))
    pflow["is_pu"] = jag(nc, lambda t: rng.random(t) < 0.1)
    pflow["kind"] = ak.where(
        pflow["charge"] != 0,
        objects.PFLOW_TRACK,
        ak.where(pflow["pt"] > 2.0, objects.PFLOW_PHOTON, objects.PFLOW_NEUTRAL_HADRON),
    )
    pflow["is_pu"] = pflow["is_pu"] & (pflow["charge"] != 0)
    order = ak.argsort(pflow["pt"], axis=1, ascending=False)
    pflow = {k: v[order] for k, v in pflow.items()}
    lep = lambda c: {  # noqa: E731
        **kin(c, 30.0),
        "charge": jag(c, lambda t: rng.choice([-1, 1], t)),
        "rel_iso": jag(c, lambda t: rng.exponential(0.05, t)),
    }
    pho = {**kin(ng, 20.0), "rel_iso": jag(ng, lambda t: rng.exponential(0.05, t))}
    met = {"met": rng.exponential(40.0, n), "phi": rng.uniform(-np.pi, np.pi, n)}
    gen_met = {"met": met["met"] * rng.normal(1.0, 0.2, n).clip(0), "phi": met["phi"] + rng.normal(0, 0.2, n)}
    return objects.build(
        event_id=np.arange(first_id, first_id + n),
        weight=np.ones(n),
        process=process,
        is_signal=np.full(n, sig),
        jets=jets,
        electrons=lep(ne),
        muons=lep(nm),
        photons=pho,
        met=met,
        gen_met=gen_met,
        pflow=pflow,
    )
