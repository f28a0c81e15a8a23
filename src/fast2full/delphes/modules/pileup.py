"""Pile-up: ``PileUpMerger`` and the minimum-bias merging the engine also uses without one."""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import Coll
from fast2full.delphes.card import CardError
from fast2full.delphes.modules.base import Context, Module


class PileUpMerger(Module):
    """Adds minimum-bias events to every event and flags their particles IsPU.

    The number of events follows ``PileUpDistribution`` as in Delphes: 0 Poisson(``MeanPileUp``)
    (default), 1 uniform integer in [0, 2 x MeanPileUp], 2 exactly int(MeanPileUp); the config's
    ``pileup.mean`` replaces MeanPileUp.  The events are drawn from the ``--pileup`` generation
    files, rotated by a random azimuth and flipped in z at random, as in Delphes.  Refused (an
    error naming the card line): ``PileUpFile`` (Delphes' binary pile-up file is not read; the
    minimum-bias events come from ``--pileup``), non-zero ``ZVertexSpread``/``TVertexSpread`` and
    beam-spot shifts (``InputBeamSpotX/Y``, ``OutputBeamSpotX/Y``): contract-1 particles have no
    vertices to spread or shift.  Delphes' default vertex spreads (0.15 m, 1.5 ns) are therefore
    not simulated either (every vertex at the origin)."""

    TYPE = "PileUpMerger"
    PARAMS = dict.fromkeys(
        [
            "InputArray",
            "ParticleOutputArray",
            "VertexOutputArray",
            "PileUpFile",
            "MeanPileUp",
            "PileUpDistribution",
            "ZVertexSpread",
            "TVertexSpread",
            "InputBeamSpotX",
            "InputBeamSpotY",
            "OutputBeamSpotX",
            "OutputBeamSpotY",
        ],
        "",
    )

    def setup(self):
        self.refuse(
            "PileUpFile",
            "the builtin engine draws minimum-bias events from the --pileup "
            "generation files (config pileup.process); remove the line",
        )
        for name in (
            "ZVertexSpread",
            "TVertexSpread",
            "InputBeamSpotX",
            "InputBeamSpotY",
            "OutputBeamSpotX",
            "OutputBeamSpotY",
        ):
            self.refuse(
                name,
                "contract-1 particles have no production vertices to spread or shift (only 0 is accepted)",
                allowed=0.0,
            )
        self.distribution = self.i("PileUpDistribution", 0)
        if self.distribution not in (0, 1, 2):
            # Delphes falls back to Poisson for any other value
            self.distribution = 0

    def process(self, ctx):
        hard = self.get(ctx, self.s("InputArray", "Delphes/stableParticles"), "InputArray")
        mean = ctx.pileup_mean if ctx.pileup_mean is not None else self.f("MeanPileUp", 10.0)
        ctx.arrays[self.out("ParticleOutputArray", "stableParticles")] = merge_pileup(
            ctx, hard, ctx.pileup, mean, self.distribution
        )
        ctx.arrays[self.out("VertexOutputArray", "vertices")] = Coll.empty(ctx.n_events)


def merge_pileup(ctx: Context, hard: Coll, minbias: Coll | None, mean: float, distribution: int = 0) -> Coll:
    """Append random minimum-bias events (random phi rotation and z flip) to each event: their
    number is Poisson(mean) (``distribution`` 0), uniform in 0..2 mean (1) or int(mean) (2)."""
    if mean <= 0:
        return hard
    if minbias is None or minbias.n_events == 0:
        raise CardError("<pileup>", None, f"pile-up mean {mean} > 0 but no --pileup files were given")
    n = ctx.n_events
    if distribution == 1:
        npu = ctx.rng.integers(0, int(2 * mean + 1), size=n)  # TRandom::Integer(2 mean + 1)
    elif distribution == 2:
        npu = np.full(n, int(mean), np.int64)
    else:
        npu = ctx.rng.poisson(mean, size=n)
    pick = ctx.rng.integers(0, minbias.n_events, size=int(npu.sum()))
    # particles of the picked minbias events, grouped by the hard event they join
    cnt = minbias.counts[pick]
    src = (
        np.concatenate([np.arange(minbias.offsets[p], minbias.offsets[p + 1]) for p in pick])
        if len(pick)
        else np.zeros(0, np.int64)
    )
    pu_event = np.repeat(np.arange(len(pick)), cnt)
    rot = ctx.rng.uniform(-np.pi, np.pi, size=len(pick))[pu_event]
    flip = np.where(ctx.rng.uniform(size=len(pick)) < 0.5, -1.0, 1.0)[pu_event]
    px, py = minbias["px"][src], minbias["py"][src]
    cols = {k: v[src] for k, v in minbias.cols.items()}
    cols.update(
        px=px * np.cos(rot) - py * np.sin(rot),
        py=px * np.sin(rot) + py * np.cos(rot),
        pz=minbias["pz"][src] * flip,
        is_pu=np.ones(len(src), np.int32),
        uid=ctx.new_uids(len(src)),
    )
    counts = (
        np.bincount(np.repeat(np.arange(n), npu), weights=cnt, minlength=n).astype(np.int64)
        if len(pick)
        else np.zeros(n, np.int64)
    )
    return Coll.merge([hard, Coll(counts, cols)])
