"""Utility modules: ``Merger`` (array concatenation, MET and scalar HT sums), ``PdgCodeFilter``
and ``TreeWriter`` (the registry entry; writing is :mod:`fast2full.delphes.treewriter`)."""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import Coll, per_event_sum
from fast2full.delphes.modules.base import Module


class Merger(Module):
    """Concatenates input arrays; ``MomentumOutputArray`` holds, per event, the vector sum of their
    momenta (TreeWriter's MissingET shows MET = its pT at the opposite phi), ``EnergyOutputArray``
    the scalar sums of pT and E."""

    TYPE = "Merger"
    PARAMS = dict.fromkeys(["InputArray", "OutputArray", "MomentumOutputArray", "EnergyOutputArray"], "")

    def process(self, ctx):
        ins = [self.get(ctx, w.text, "InputArray") for w in self.words("InputArray")]
        merged = Coll.merge(ins) if ins else Coll.empty(ctx.n_events)
        ctx.arrays[self.out("OutputArray", "candidates")] = merged
        n = np.ones(ctx.n_events, np.int64)
        mom = {k: per_event_sum(merged, merged[k]) for k in ("px", "py", "pz", "e")}
        ctx.arrays[self.out("MomentumOutputArray", "momentum")] = Coll(n, mom)
        ctx.arrays[self.out("EnergyOutputArray", "energy")] = Coll(
            n,
            {
                "px": per_event_sum(merged, merged.pt),
                "py": np.zeros(ctx.n_events),
                "pz": np.zeros(ctx.n_events),
                "e": per_event_sum(merged, merged["e"]),
            },
        )


class PdgCodeFilter(Module):
    """Removes candidates whose PID is listed in ``PdgCode`` (``Invert``: keeps only those), below
    ``PTMin``, or failing the optional status / charge / not-pile-up requirements."""

    TYPE = "PdgCodeFilter"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "OutputArray",
            "PTMin",
            "Invert",
            "RequireNotPileup",
            "RequireStatus",
            "Status",
            "RequireCharge",
            "Charge",
            "PdgCode",
        ],
        "",
    )

    def setup(self):
        p = self._p("PdgCode")
        try:
            self.codes = np.array([int(w.text) for w in self.words("PdgCode")], dtype=np.int64)
        except ValueError:
            raise p.error("PDG codes must be integers") from None

    def process(self, ctx):
        c = self.get(ctx, self.s("InputArray", "Delphes/allParticles"), "InputArray")
        keep = c.pt >= self.f("PTMin", 0.0)
        if self.b("RequireStatus", False):
            keep &= c["status"] == self.i("Status", 1)
        if self.b("RequireCharge", False):
            keep &= c["charge"] == self.i("Charge", 1)
        if self.b("RequireNotPileup", False):
            keep &= c["is_pu"] <= 0
        listed = np.isin(c["pid"], self.codes)
        passed = ~listed if not self.b("Invert", False) else listed
        ctx.arrays[self.out("OutputArray", "filteredParticles")] = c.take(keep & passed)


# TreeWriter is handled by fast2full.delphes.treewriter; listed here for the registry.
class TreeWriter(Module):
    """Writes ``add Branch InputArray BranchName BranchClass`` entries to the ROOT tree."""

    TYPE = "TreeWriter"
    PARAMS = dict.fromkeys(["Branch"], "")

    def setup(self):
        from fast2full.delphes.treewriter import BRANCH_CLASSES

        w = self.words("Branch")
        if len(w) % 3:
            raise self._p("Branch").error("expected triples 'InputArray BranchName BranchClass'")
        self.branches = [(w[k].text, w[k + 1].text, w[k + 2].text) for k in range(0, len(w), 3)]
        for _, bname, bclass in self.branches:
            if bclass not in BRANCH_CLASSES:
                raise self._p("Branch").error(
                    f"branch {bname}: class '{bclass}' not supported (supported: {', '.join(sorted(BRANCH_CLASSES))})"
                )

    def process(self, ctx):
        for ref, bname, bclass in self.branches:
            ctx.branches[bname] = (bclass, self.get(ctx, ref, "Branch"))
