"""Jets: ``FastJetFinder`` (fastjet clustering of a whole chunk at once) and the same finder with
Delphes' jet-substructure switches accepted (the stock CMS card's ``FatJetFinder``).

Substructure: the stock CMS card asks Delphes for N-subjettiness (``ComputeNsubjettiness``,
``Beta``, ``AxisMode``), trimming (``ComputeTrimming``, ``RTrim``, ``PtFracTrim``), pruning
(``ComputePruning``, ``ZcutPrun``, ``RcutPrun``, ``RPrun``) and soft drop (``ComputeSoftDrop``,
``BetaSoftDrop``, ``SymmetryCutSoftDrop``, ``R0SoftDrop``).  Those only fill the Jet leaves
``Tau[5]``, ``TrimmedP4[5]``, ``PrunedP4[5]``, ``SoftDroppedP4[5]``... that the builtin engine's
TreeWriter does not write, so the jets themselves (clustering, pT threshold) are the same with or
without them.  The builtin engine therefore accepts these parameters and, when one of the
``Compute*`` switches is on, says once (a warning naming the module and the card line) that those
leaves are not produced.  Any other FastJetFinder option (areas, pile-up subtraction, exclusive
jets...) stays an unknown parameter.
"""

from __future__ import annotations

import logging

import numpy as np

from fast2full.delphes.candidates import Coll, delta_phi
from fast2full.delphes.card import CardError
from fast2full.delphes.modules.base import Module

log = logging.getLogger("fast2full.delphes")


#: Delphes' JetAlgorithm numbers -> fastjet algorithms (FastJetFinder.cc)
_JET_ALGOS = {4: "kt_algorithm", 5: "cambridge_algorithm", 6: "antikt_algorithm"}


class FastJetFinder(Module):
    """Clusters the input with fastjet (JetAlgorithm 4 kt, 5 Cambridge/Aachen, 6 anti-kt) of radius
    ``ParameterR``, keeping jets with pT > ``JetPTMin``, pT-ordered.  All events of a chunk are
    clustered in one call of the ``fastjet`` python package on awkward arrays.  Jet columns follow
    Delphes: NCharged/NNeutrals (constituents with/without charge), Charge (sum), EhadOverEem,
    energy fractions.  DeltaEta/DeltaPhi are what Delphes' FastJetFinder writes: the largest
    constituent-to-axis |deta| / |dphi| of this jet *and every harder jet of the event* (Delphes
    resets its running maxima once per event, not per jet, so they never decrease along the
    pT-ordered list).  PTD and MeanSqDeltaR stay 0: in Delphes only the PileUpJetID module fills
    them, and the builtin engine has no PileUpJetID.  Cards get this class with the substructure
    switches accepted (:class:`FastJetFinderWithSubstructure`); other options (areas, pile-up
    subtraction, exclusive jets...) are unknown parameters."""

    TYPE = "FastJetFinder"
    PARAMS = dict.fromkeys(
        ["InputArray", "OutputArray", "JetAlgorithm", "ParameterR", "JetPTMin", "ConstituentsOutputArray"], ""
    )

    def setup(self):
        alg = self.i("JetAlgorithm", 6)
        if alg not in _JET_ALGOS:
            raise CardError(
                self.spec.path,
                self._p("JetAlgorithm").line,
                f"module FastJetFinder {self.name}: JetAlgorithm {alg} is not supported "
                f"(supported: {sorted(_JET_ALGOS)}: kt, Cambridge/Aachen, anti-kt)",
            )
        self.alg = _JET_ALGOS[alg]
        self.r = self.f("ParameterR", 0.5)
        self.ptmin = self.f("JetPTMin", 10.0)

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "Calorimeter/towers"), "InputArray")
        jets, const_jet, const_idx = cluster(c, self.alg, self.r, self.ptmin)
        ctx.arrays[self.out("OutputArray", "jets")] = jets
        ctx.arrays[self.out("ConstituentsOutputArray", "constituents")] = c.take(np.unique(const_idx))


JET_FLOAT_COLS = (
    "px",
    "py",
    "pz",
    "e",
    "ptd",
    "ehad_over_eem",
    "delta_eta",
    "delta_phi",
    "mean_sq_dr",
    "charged_energy_fraction",
    "neutral_energy_fraction",
    "eem",
    "ehad",
)
JET_INT_COLS = ("ncharged", "nneutrals", "charge", "flavor", "flavor_algo", "btag", "btag_algo")


def cluster(c: Coll, algorithm: str, r: float, ptmin: float) -> tuple[Coll, np.ndarray, np.ndarray]:
    """Cluster every event of ``c``; return the jets (pT-ordered) and, per constituent, its jet's
    flat index and its flat index in ``c``."""
    import awkward as ak
    import fastjet

    n = c.n_events
    if len(c) == 0:
        cols = {k: np.zeros(0) for k in JET_FLOAT_COLS}
        cols.update({k: np.zeros(0, np.int32) for k in JET_INT_COLS})
        return Coll(np.zeros(n, np.int64), cols), np.zeros(0, np.int64), np.zeros(0, np.int64)
    arr = ak.unflatten(
        ak.zip({"px": c["px"], "py": c["py"], "pz": c["pz"], "E": c["e"]}, with_name="Momentum4D"), c.counts
    )
    seq = fastjet.ClusterSequence(arr, fastjet.JetDefinition(getattr(fastjet, algorithm), r))
    jets = seq.inclusive_jets(min_pt=ptmin)
    cidx = seq.constituent_index(min_pt=ptmin)
    jcounts = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    jpx = ak.to_numpy(ak.flatten(jets.px)).astype(np.float64)
    jpy = ak.to_numpy(ak.flatten(jets.py)).astype(np.float64)
    jpz = ak.to_numpy(ak.flatten(jets.pz)).astype(np.float64)
    je = ak.to_numpy(ak.flatten(jets.E)).astype(np.float64)
    # constituents: per jet, indices into its event's input list
    per_jet = ak.flatten(cidx, axis=1)
    ncon = ak.to_numpy(ak.num(per_jet, axis=1)).astype(np.int64)
    local = ak.to_numpy(ak.flatten(per_jet)).astype(np.int64)
    jet_evt = np.repeat(np.arange(n), jcounts)
    const_jet = np.repeat(np.arange(len(jpx)), ncon)
    const_idx = local + c.offsets[:-1][jet_evt[const_jet]]
    # pT ordering within each event (FastJetFinder: sorted_by_pt)
    jpt = np.hypot(jpx, jpy)
    order = np.lexsort((-jpt, jet_evt))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    jpx, jpy, jpz, je, jpt = jpx[order], jpy[order], jpz[order], je[order], jpt[order]
    const_jet = rank[const_jet]
    jeta = np.arcsinh(jpz / np.where(jpt > 0, jpt, 1e-300))
    jphi = np.arctan2(jpy, jpx)
    # constituent-derived quantities
    nj = len(jpx)
    ceta, cphi = c.eta[const_idx], c.phi[const_idx]
    cch = c["charge"][const_idx]

    def jsum(w):
        return np.bincount(const_jet, weights=w, minlength=nj)

    is_ch = cch != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        eem, ehad = jsum(c["eem"][const_idx]), jsum(c["ehad"][const_idx])
        ehad_over_eem = np.where(eem > 0, ehad / eem, 999.9)
        ce = c["e"][const_idx]
        ch_frac = np.where(je > 0, jsum(np.where(is_ch, ce, 0.0)) / je, 0.0)
        neu_frac = np.where(je > 0, jsum(np.where(is_ch, 0.0, ce)) / je, 0.0)
    deta = np.zeros(nj)
    dphi = np.zeros(nj)
    np.maximum.at(deta, const_jet, np.abs(ceta - jeta[const_jet]))
    np.maximum.at(dphi, const_jet, np.abs(delta_phi(cphi, jphi[const_jet])))
    # Delphes' running maxima over the pT-ordered jets of an event (see FastJetFinder)
    deta, dphi = _running_max(deta, jet_evt), _running_max(dphi, jet_evt)
    cols = {
        "px": jpx,
        "py": jpy,
        "pz": jpz,
        "e": je,
        "ncharged": jsum(is_ch).astype(np.int32),
        "nneutrals": jsum(~is_ch).astype(np.int32),
        "charge": jsum(cch).astype(np.int32),
        "ptd": np.zeros(nj),
        "ehad_over_eem": ehad_over_eem,
        "delta_eta": deta,
        "delta_phi": dphi,
        "mean_sq_dr": np.zeros(nj),
        "charged_energy_fraction": ch_frac,
        "neutral_energy_fraction": neu_frac,
        "eem": eem,
        "ehad": ehad,
        "flavor": np.zeros(nj, np.int32),
        "flavor_algo": np.zeros(nj, np.int32),
        "btag": np.zeros(nj, np.int32),
        "btag_algo": np.zeros(nj, np.int32),
    }
    # id table of a jet: its constituents' id tables
    owner, ids = c.ids()
    pos = np.full(len(c), -1, np.int64)
    pos[const_idx] = const_jet
    jo = pos[owner]
    ok = jo >= 0
    return Coll(jcounts, cols, (jo[ok], ids[ok])), const_jet, const_idx


def _running_max(x: np.ndarray, evt: np.ndarray) -> np.ndarray:
    """Cumulative maximum of the non-negative ``x`` within each event (``evt`` sorted)."""
    if not len(x):
        return x
    shift = (float(x.max()) + 1.0) * evt
    return np.maximum.accumulate(x + shift) - shift


SUBSTRUCTURE = (
    "ComputeNsubjettiness",
    "Beta",
    "AxisMode",
    "RcutOff",
    "N",
    "ComputeTrimming",
    "RTrim",
    "PtFracTrim",
    "ComputePruning",
    "ZcutPrun",
    "RcutPrun",
    "RPrun",
    "ComputeSoftDrop",
    "BetaSoftDrop",
    "SymmetryCutSoftDrop",
    "R0SoftDrop",
)


class FastJetFinderWithSubstructure(FastJetFinder):
    """The ``FastJetFinder`` of cards: the substructure parameters (``SUBSTRUCTURE``) are accepted
    and, if a ``Compute*`` switch is on, a warning says their Jet leaves are not written."""

    PARAMS = {**FastJetFinder.PARAMS, **dict.fromkeys(SUBSTRUCTURE, "")}

    def setup(self):
        super().setup()
        asked = [n for n in SUBSTRUCTURE if n.startswith("Compute") and self.b(n, False)]
        if asked:
            p = self._p(asked[0])
            log.warning(
                "%s:%s: module FastJetFinder %s: %s: the substructure leaves (Tau, TrimmedP4, "
                "PrunedP4, SoftDroppedP4...) are not computed by the builtin engine; the jets "
                "themselves are unaffected",
                p.path,
                p.line,
                self.name,
                ", ".join(asked),
            )
