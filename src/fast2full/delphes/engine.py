"""The builtin fast-simulation engine: generation parquet + Delphes card -> Delphes ROOT tree.

The card's ``ExecutionPath`` is run module by module over batches of events (all events of a batch
at once, see :mod:`fast2full.delphes.candidates`).  The input arrays Delphes' readers provide are
built from the generation contract: ``Delphes/allParticles`` (every stored particle),
``Delphes/stableParticles`` (final state: status > 0) and ``Delphes/partons`` (quarks, gluons and
taus that are not final).  The random numbers come from one generator seeded with the chunk's
generation seed and the card name, so a rerun gives an identical file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from fast2full.common import InputError, Progress, atomic_output, stable_hash64
from fast2full.delphes.candidates import Coll, pdg_charge
from fast2full.delphes.card import Card, CardError, parse_card
from fast2full.delphes.modules import Context, Module, TreeWriter, build_module, merge_pileup
from fast2full.particles import read_particles

log = logging.getLogger("fast2full.simulate")

PARTON_PIDS = (1, 2, 3, 4, 5, 15, 21)


#: reading a generation file (contract 1: fields checked, InputError naming the file)
read_generation = read_particles


def particles_to_coll(events: ak.Array, uid0: int = 0) -> Coll:
    """The generation particles of ``events`` as a flat :class:`Coll` (uid = uid0 + flat index)."""
    p = events.particles
    counts = ak.to_numpy(ak.num(p, axis=1)).astype(np.int64)

    def col(name, dtype):
        return ak.to_numpy(ak.flatten(p[name])).astype(dtype)

    pid = col("pid", np.int32)
    n = len(pid)
    return Coll(
        counts,
        {
            "px": col("px", np.float64),
            "py": col("py", np.float64),
            "pz": col("pz", np.float64),
            "e": col("e", np.float64),
            "pid": pid,
            "status": col("status", np.int32),
            "charge": pdg_charge(pid),
            "uid": np.arange(uid0, uid0 + n, dtype=np.int64),
            "mother1": col("mother1", np.int32),
            "mother2": col("mother2", np.int32),
            "is_pu": np.zeros(n, np.int32),
        },
    )


def input_arrays(gen: Coll) -> dict[str, Coll]:
    """What Delphes' readers export: all particles, stable (final-state) particles and partons."""
    st = gen["status"]
    # final in the generator record = positive Pythia status (HepMC status 1), whatever its code:
    # a lepton or neutrino of a W/Z decay that did not radiate keeps its hard-process status 23.
    stable = st > 0
    parton = np.isin(np.abs(gen["pid"]), PARTON_PIDS) & ~stable
    return {
        "Delphes/allParticles": gen,
        "Delphes/stableParticles": gen.take(stable),
        "Delphes/partons": gen.take(parton),
    }


@dataclass
class Simulation:
    card: Card
    modules: list[Module]

    @classmethod
    def from_card(cls, path: str | Path) -> Simulation:
        card = parse_card(path)
        sim = cls(card, [build_module(card.modules[name]) for name in card.execution_path])
        if not any(isinstance(m, TreeWriter) for m in sim.modules):
            raise sim.card_error("no TreeWriter module in the ExecutionPath: nothing would be written")
        return sim

    @property
    def has_pileup_merger(self) -> bool:
        return any(m.spec.type == "PileUpMerger" for m in self.modules)

    def run_batch(
        self,
        events: ak.Array,
        rng: np.random.Generator,
        uid0: int,
        pileup: Coll | None = None,
        pileup_mean: float | None = None,
    ) -> Context:
        gen = particles_to_coll(events, uid0)
        ctx = Context(n_events=len(events), rng=rng, next_uid=uid0 + len(gen), pileup=pileup, pileup_mean=pileup_mean)
        ctx.arrays.update(input_arrays(gen))
        if pileup_mean and not self.has_pileup_merger:
            ctx.arrays["Delphes/stableParticles"] = merge_pileup(
                ctx, ctx.arrays["Delphes/stableParticles"], pileup, pileup_mean
            )
        for m in self.modules:
            m.process(ctx)
        return ctx

    def global_int(self, name: str) -> int:
        """A top-level ``set Name N`` of the card (0 if absent)."""
        p = getattr(self.card, "globals", {}).get(name)
        return 0 if p is None else p.as_int()

    def card_error(self, cause: str) -> CardError:
        return CardError(self.card.path, None, cause)


def simulate(
    card: str | Path,
    events_path: str | Path,
    out: str | Path,
    pileup_paths: list[str | Path] | None = None,
    pileup_mean: float | None = None,
    batch_size: int = 500,
) -> int:
    """Simulate one generation chunk through ``card`` and write the Delphes tree to ``out``.

    ``pileup_mean`` (the config's ``pileup.mean``) overrides a PileUpMerger's MeanPileUp; without a
    PileUpMerger in the card, ``pileup_mean > 0`` merges pile-up before the first module.
    Returns the number of events written.  Nothing is left at ``out`` on error.
    """
    from fast2full.delphes.treewriter import build_tree, compression, make_tree

    sim = Simulation.from_card(card)
    events = read_generation(events_path)
    # Delphes' top-level parameters: SkipEvents / MaxEvents (0 = all) select the events processed
    skip, max_events = sim.global_int("SkipEvents"), sim.global_int("MaxEvents")
    if skip < 0 or max_events < 0:
        raise sim.card_error("SkipEvents and MaxEvents must be zero or positive")
    events = events[skip : skip + max_events] if max_events else events[skip:]
    pileup = None
    if pileup_paths:
        pu_events = [read_generation(p) for p in pileup_paths]
        pileup = input_arrays(particles_to_coll(ak.concatenate(pu_events)))["Delphes/stableParticles"]
    if (pileup_mean or 0) > 0 and pileup is None:
        raise InputError(events_path, f"pile-up mean {pileup_mean} > 0 but no --pileup files given")
    seed0 = int(events.seed[0]) if len(events) else 0
    # a card's own non-zero RandomSeed enters the seed too (Delphes seeds gRandom from it)
    card_seed = sim.global_int("RandomSeed")
    rng = np.random.default_rng(
        stable_hash64("simulate", seed0, sim.card.name, card_seed)
        if card_seed
        else stable_hash64("simulate", seed0, sim.card.name)
    )
    n = len(events)
    log.info("simulating %d events of %s with %s (%d modules) -> %s", n, events_path, card, len(sim.modules), out)
    progress = Progress(n, "events", logger=log)
    import uproot

    with atomic_output(out) as tmp:
        with uproot.recreate(tmp, compression=compression()) as f:
            tree = None
            uid0 = 0
            for start in range(0, max(n, 1), batch_size):
                batch = events[start : start + batch_size]
                ctx = sim.run_batch(batch, rng, uid0, pileup, pileup_mean)
                uid0 = ctx.next_uid
                data = build_tree(
                    ctx.branches, ak.to_numpy(batch.event_id), ak.to_numpy(batch.weight), ak.to_numpy(batch.sigma_pb)
                )
                if tree is None:
                    tree = make_tree(f, data)
                if len(batch):
                    tree.extend(data)
                progress.update(len(batch))
    progress.done()
    return n


__all__ = ["Simulation", "input_arrays", "particles_to_coll", "read_generation", "simulate"]
