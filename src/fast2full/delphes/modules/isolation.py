"""Object isolation and overlap removal: ``Isolation`` and ``UniqueObjectFinder``."""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import delta_r, pairs
from fast2full.delphes.modules.base import Module


class Isolation(Module):
    """Relative isolation of candidates: the pT sum of ``IsolationInputArray`` objects with
    pT > ``PTMin`` within ``DeltaRMax`` (excluding the candidate itself, or inside ``DeltaRMin`` with
    ``UseMiniCone``), charged pile-up subtracted as delta-beta; candidates above ``PTRatioMax``
    (or ``PTSumMax`` with ``UsePTSum``) are dropped.  Sets IsolationVar and the SumPt* columns.
    No rho correction (a ``RhoInputArray`` is not supported), so IsolationVarRhoCorr is the
    uncorrected ratio."""

    TYPE = "Isolation"
    PARAMS = dict.fromkeys(
        [
            "CandidateInputArray",
            "IsolationInputArray",
            "OutputArray",
            "DeltaRMax",
            "PTRatioMax",
            "PTSumMax",
            "UsePTSum",
            "UseRhoCorrection",
            "DeltaRMin",
            "UseMiniCone",
            "PTMin",
        ],
        "",
    )

    def process(self, ctx):
        cand = self.get(ctx, self.s("CandidateInputArray", "Calorimeter/electrons"), "CandidateInputArray")
        iso = self.get(ctx, self.s("IsolationInputArray", "Delphes/partons"), "IsolationInputArray")
        iso = iso.take(iso.pt > self.f("PTMin", 0.5))
        dr_max, dr_min = self.f("DeltaRMax", 0.5), self.f("DeltaRMin", 0.01)
        ia, jb = pairs(cand, iso)
        dr = delta_r(cand.eta[ia], cand.phi[ia], iso.eta[jb], iso.phi[jb])
        if self.b("UseMiniCone", False):
            ok = (dr <= dr_max) & (dr > dr_min)
        else:
            ok = (dr <= dr_max) & (cand["uid"][ia] != iso["uid"][jb])
        ia, jb = ia[ok], jb[ok]
        ipt = iso.pt[jb]
        charged = iso["charge"][jb] != 0
        pu = iso["is_pu"][jb] > 0
        nc = len(cand)

        def s(mask):
            return np.bincount(ia[mask], weights=ipt[mask], minlength=nc).astype(np.float64)

        sum_all = s(np.ones(len(ia), bool))
        ch_nopu, ch_pu, neu = s(charged & ~pu), s(charged & pu), s(~charged)
        sum_dbeta = ch_nopu + np.maximum(neu - 0.5 * ch_pu, 0.0)
        sum_rho = ch_nopu + np.maximum(neu, 0.0)
        pt = cand.pt
        ratio_dbeta, ratio_rho = sum_dbeta / pt, sum_rho / pt
        use_rho = self.b("UseRhoCorrection", True)
        if self.b("UsePTSum", False):
            keep = (sum_rho if use_rho else sum_dbeta) <= self.f("PTSumMax", 5.0)
        else:
            keep = (ratio_rho if use_rho else ratio_dbeta) <= self.f("PTRatioMax", 0.1)
        out = cand.with_cols(
            iso_var=ratio_dbeta,
            iso_var_rho=ratio_rho,
            sum_pt_charged=ch_nopu,
            sum_pt_neutral=neu,
            sum_pt_charged_pu=ch_pu,
            sum_pt=sum_all,
        )
        ctx.arrays[self.out("OutputArray", "electrons")] = out.take(keep)


class UniqueObjectFinder(Module):
    """Removes, array by array in the order given (``InputArray`` pairs input output), candidates
    that overlap with one already kept: sharing a unique ID anywhere in their ancestry
    (``Candidate::Overlaps``; with ``UseUniqueID`` only their own IDs).  A jet containing an
    accepted electron's track or a photon's tower is removed as a whole."""

    TYPE = "UniqueObjectFinder"
    PARAMS = dict.fromkeys(["InputArray", "UseUniqueID"], "")

    def process(self, ctx):
        w = self.words("InputArray")
        use_uid = self.b("UseUniqueID", False)
        taken = np.zeros(0, np.int64)
        for k in range(0, len(w) - 1, 2):
            c = self.get(ctx, w[k].text, "InputArray")
            if use_uid:
                owner, ids = np.flatnonzero(c["uid"] >= 0), c["uid"][c["uid"] >= 0]
            else:
                owner, ids = c.ids()
            clash = np.zeros(len(c), bool)
            clash[owner[np.isin(ids, taken)]] = True
            kept = c.take(~clash)
            ctx.arrays[f"{self.name}/{w[k + 1].text}"] = kept
            ko, kid = (np.flatnonzero(kept["uid"] >= 0), kept["uid"][kept["uid"] >= 0]) if use_uid else kept.ids()
            taken = np.union1d(taken, kid)
