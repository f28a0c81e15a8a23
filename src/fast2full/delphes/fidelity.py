"""Fidelity of the builtin engine against real Delphes: the same events, the same card, two trees.

:func:`observables` reads a Delphes tree (real or builtin) into the distributions compared;
:func:`compare` compares two trees observable by observable and returns one row per comparison:

* **mean** rows (jet multiplicity, leading-jet pT, jet mass and charged/neutral constituent counts,
  jet response per GenJet pT bin, MET, lepton and
  photon counts and pT, b-tag rates per Jet.Flavor class, Jet.Flavor fractions, track and
  energy-flow counts): pass if the relative difference is within ``mean_tol`` (5 %) *or* within
  3 standard errors of the difference (small rates such as the light-jet mistag rate, ~1 %, cannot
  be compared to 5 % with a thousand events);
* **resolution** rows (half the 16-84 % width: of reco/gen pT per GenJet pT bin, and of
  MET - GenMET per component): pass within ``res_tol`` (10 %) or 3 standard errors.  The core width
  is used because the standard deviation of MET - GenMET is set by a handful of events (a lost
  high-pT muon or electron: 1 % of W+jets events move it by 20 %); the tails are compared by the
  KS test and by the fraction of events with |MET - GenMET| > 50 GeV per component (a mean row);
* **ks** rows: the two-sample Kolmogorov-Smirnov p-value (scipy) must exceed ``ks_p`` (0.01); only
  where both samples have at least ``ks_min`` entries.  For integer-valued observables (counts) the
  KS test is conservative.

The samples share their generator events, so the two sides are positively correlated and the
quoted standard errors (independent-sample formulas) are upper bounds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import awkward as ak
import numpy as np

#: GenJet pT bins [GeV] for the jet response and resolution
PT_BINS = (20.0, 30.0, 50.0, 80.0, 150.0, 500.0)
#: reco-to-GenJet matching distance
MATCH_DR = 0.2
#: Jet.Flavor classes
FLAVOR_CLASSES = {"b": (5,), "c": (4,), "light": (1, 2, 3), "gluon": (21,), "none": (0,)}

_BRANCHES = [
    "Jet.PT",
    "Jet.Eta",
    "Jet.Phi",
    "Jet.Mass",
    "Jet.NCharged",
    "Jet.NNeutrals",
    "Jet.Flavor",
    "Jet.BTag",
    "GenJet.PT",
    "GenJet.Eta",
    "GenJet.Phi",
    "MissingET.MET",
    "MissingET.Phi",
    "GenMissingET.MET",
    "GenMissingET.Phi",
    "Electron.PT",
    "Muon.PT",
    "Photon.PT",
    "Track_size",
    "EFlowTrack_size",
    "EFlowPhoton_size",
    "EFlowNeutralHadron_size",
]


def _half_width(x: np.ndarray) -> float:
    q16, q84 = np.quantile(x, [0.16, 0.84])
    return 0.5 * float(q84 - q16)


def _first(x) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.fill_none(ak.firsts(x), np.nan)), dtype=float)


def observables(path) -> dict[str, np.ndarray]:
    """The distributions compared, from one Delphes tree (flat numpy arrays)."""
    import uproot

    with uproot.open(path) as f:
        a = f["Delphes"].arrays(_BRANCHES, library="ak")
    out: dict[str, np.ndarray] = {}
    jpt = a["Jet.PT"]
    out["jet_n"] = ak.to_numpy(ak.num(jpt)).astype(float)
    lead = ak.firsts(jpt)
    out["jet_lead_pt"] = np.asarray(ak.to_numpy(ak.drop_none(lead)), dtype=float)
    out["jet_pt"] = ak.to_numpy(ak.flatten(jpt)).astype(float)
    for leaf, key in (("Mass", "jet_mass"), ("NCharged", "jet_ncharged"), ("NNeutrals", "jet_nneutrals")):
        out[key] = ak.to_numpy(ak.flatten(a[f"Jet.{leaf}"])).astype(float)
    # response: every GenJet matched to the closest reco jet within MATCH_DR
    g = ak.zip({"pt": a["GenJet.PT"], "eta": a["GenJet.Eta"], "phi": a["GenJet.Phi"]})
    j = ak.zip({"pt": jpt, "eta": a["Jet.Eta"], "phi": a["Jet.Phi"]})
    pairs = ak.cartesian({"g": g, "j": j}, nested=True)
    dphi = (pairs.g.phi - pairs.j.phi + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(pairs.g.eta - pairs.j.eta, dphi)
    best = ak.argmin(dr, axis=2, keepdims=True)
    dr_best = ak.flatten(dr[best], axis=2)
    reco_pt = ak.flatten(pairs.j.pt[best], axis=2)
    ok = ak.fill_none(dr_best < MATCH_DR, False)
    gpt = np.asarray(ak.to_numpy(ak.flatten(g.pt[ok])), dtype=float)
    resp = np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(reco_pt[ok]), np.nan)), dtype=float) / gpt
    for lo, hi in zip(PT_BINS[:-1], PT_BINS[1:]):
        sel = (gpt >= lo) & (gpt < hi)
        out[f"jet_response_{lo:.0f}_{hi:.0f}"] = resp[sel]
    met = _first(a["MissingET.MET"])
    mphi = _first(a["MissingET.Phi"])
    gmet = _first(a["GenMissingET.MET"])
    gphi = _first(a["GenMissingET.Phi"])
    out["met"] = met
    out["met_minus_gen_x"] = met * np.cos(mphi) - gmet * np.cos(gphi)
    out["met_minus_gen_y"] = met * np.sin(mphi) - gmet * np.sin(gphi)
    for c in "xy":
        out[f"met_minus_gen_{c}_tail"] = (np.abs(out[f"met_minus_gen_{c}"]) > 50.0).astype(float)
    for obj in ("Electron", "Muon", "Photon"):
        pt = a[f"{obj}.PT"]
        out[f"{obj.lower()}_n"] = ak.to_numpy(ak.num(pt)).astype(float)
        out[f"{obj.lower()}_pt"] = ak.to_numpy(ak.flatten(pt)).astype(float)
    flav = np.abs(ak.to_numpy(ak.flatten(a["Jet.Flavor"])).astype(np.int64))
    btag = (ak.to_numpy(ak.flatten(a["Jet.BTag"])).astype(np.int64) & 1).astype(float)
    for name, codes in FLAVOR_CLASSES.items():
        sel = np.isin(flav, codes)
        out[f"flavor_frac_{name}"] = sel.astype(float)
        out[f"btag_rate_{name}"] = btag[sel]
    for br in ("Track_size", "EFlowTrack_size", "EFlowPhoton_size", "EFlowNeutralHadron_size"):
        out[br.replace("_size", "").lower() + "_n"] = ak.to_numpy(a[br]).astype(float)
    return out


#: observables compared by mean (and KS where noted), and by resolution
MEAN_KEYS = [
    "jet_n",
    "jet_lead_pt",
    "jet_mass",
    "jet_ncharged",
    "jet_nneutrals",
    "met",
    "electron_n",
    "electron_pt",
    "muon_n",
    "muon_pt",
    "photon_n",
    "track_n",
    "eflowtrack_n",
    "eflowphoton_n",
    "eflowneutralhadron_n",
]
KS_KEYS = [
    "jet_n",
    "jet_lead_pt",
    "jet_pt",
    "met",
    "electron_pt",
    "muon_pt",
    "photon_pt",
    "track_n",
    "eflowtrack_n",
    "eflowphoton_n",
    "eflowneutralhadron_n",
    "met_minus_gen_x",
    "met_minus_gen_y",
]
RATE_KEYS = (
    [f"flavor_frac_{k}" for k in FLAVOR_CLASSES]
    + [f"btag_rate_{k}" for k in FLAVOR_CLASSES]
    + ["met_minus_gen_x_tail", "met_minus_gen_y_tail"]
)
RES_KEYS = ["met_minus_gen_x", "met_minus_gen_y"]


@dataclass
class Row:
    observable: str
    kind: str  # mean | resolution | ks
    builtin: float
    real: float
    stat: float  # standard error of the difference (mean, resolution); n/a for ks
    tol: float  # relative tolerance (mean, resolution) or p-value threshold (ks)
    passed: bool
    n_builtin: int
    n_real: int

    @property
    def rel(self) -> float:
        return (self.builtin - self.real) / self.real if self.real else float("nan")

    def line(self) -> str:
        if self.kind == "ks":
            return (
                f"{self.observable:<28}{'ks p':<11}{self.builtin:>10.3g}{'':>10}{'':>8}"
                f"{'ok' if self.passed else 'FAIL':>6}"
            )
        return (
            f"{self.observable:<28}{self.kind:<11}{self.builtin:>10.4g}{self.real:>10.4g}"
            f"{100 * self.rel:>+7.1f}%{'ok' if self.passed else 'FAIL':>6}"
        )


def _mean_row(name, b, r, tol) -> Row:
    mb, mr = float(np.mean(b)) if len(b) else np.nan, float(np.mean(r)) if len(r) else np.nan
    se = float(np.sqrt(np.var(b) / max(len(b), 1) + np.var(r) / max(len(r), 1)))
    ok = bool(abs(mb - mr) <= max(tol * abs(mr), 3 * se)) if len(b) and len(r) else len(b) == len(r)
    return Row(name, "mean", mb, mr, se, tol, ok, len(b), len(r))


def _res_row(name, b, r, tol, width) -> Row:
    wb, wr = width(b), width(r)
    # standard error of a width estimate ~ width / sqrt(2 n) (Gaussian); 1.5x for quantile widths
    k = 1.5
    se = float(k * np.hypot(wb / np.sqrt(2 * len(b)), wr / np.sqrt(2 * len(r))))
    ok = bool(abs(wb - wr) <= max(tol * abs(wr), 3 * se))
    return Row(name, "resolution", float(wb), float(wr), se, tol, ok, len(b), len(r))


def compare(
    builtin_path,
    real_path,
    mean_tol: float = 0.05,
    res_tol: float = 0.10,
    ks_p: float = 0.01,
    ks_min: int = 50,
    min_entries: int = 30,
) -> list[Row]:
    """Compare a builtin-engine tree with a real-Delphes tree of the same events (module docstring)."""
    from scipy.stats import ks_2samp

    b, r = observables(builtin_path), observables(real_path)
    rows: list[Row] = []
    for k in MEAN_KEYS + RATE_KEYS:
        if min(len(b[k]), len(r[k])) >= 1:
            rows.append(_mean_row(k, b[k], r[k], mean_tol))
    for lo, hi in zip(PT_BINS[:-1], PT_BINS[1:]):
        k = f"jet_response_{lo:.0f}_{hi:.0f}"
        if min(len(b[k]), len(r[k])) >= min_entries:
            rows.append(_mean_row(k, b[k], r[k], mean_tol))
            rows.append(_res_row(k.replace("response", "resolution"), b[k], r[k], res_tol, _half_width))
    for k in RES_KEYS:
        rows.append(_res_row(k, b[k], r[k], res_tol, _half_width))
    for k in KS_KEYS:
        if min(len(b[k]), len(r[k])) >= ks_min:
            with warnings.catch_warnings():  # scipy: exact p-value too costly -> asymptotic
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(ks_2samp(b[k], r[k]).pvalue)
            rows.append(Row(k, "ks", p, float("nan"), float("nan"), ks_p, p > ks_p, len(b[k]), len(r[k])))
    return rows


def table(rows: list[Row]) -> str:
    head = f"{'observable':<28}{'kind':<11}{'builtin':>10}{'real':>10}{'diff':>8}{'':>6}"
    return "\n".join([head] + [r.line() for r in rows])


__all__ = ["Row", "compare", "observables", "table"]
