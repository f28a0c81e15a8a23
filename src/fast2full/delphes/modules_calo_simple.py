"""Delphes' ``SimpleCalorimeter``: one calorimeter (ECAL or HCAL) with its own towers and energy flow.

The stock ATLAS and CMS cards (``delphes_card_ATLAS.tcl``, ``delphes_card_CMS.tcl``) run two of them,
``ECal`` then ``HCal`` (whose tracks are the ECal's eflow tracks), instead of the combined
``Calorimeter``.  Semantics follow Delphes' ``modules/SimpleCalorimeter.cc`` (read, not copied):

* ``EnergyFraction`` {|PID|} {f}: the fraction of a particle's energy this calorimeter sees
  (``{0}`` = every other particle; default 1).  Particles with f < 1e-9 do not hit; tracks hit
  the tower at their position whatever their fraction.
* per tower, on the ``EtaPhiBins`` grid: the deposited energy sum(f E) is smeared log-normally with
  ``ResolutionFormula`` (sigma at the tower-centre eta and the energy), zeroed below ``EnergyMin`` or
  ``EnergySignificanceMin`` sigma (sigma at the smeared energy); the tower is kept if E > 0, with
  its direction uniform in the tower (``SmearTowerCenter``) and its energy as Eem (``IsEcal``) or
  Ehad;
* energy flow: tracks with f < 1e-9 in the acceptance pass straight to ``EFlowTrackOutputArray``;
  the others are summed per tower (energy f E, resolution sqrt(sum (res x guess)^2) with guess = f E
  where the calorimeter's own resolution is worse than the track's, else E).  If the calorimeter's
  excess over the tracks is above ``EnergyMin`` and ``EnergySignificanceMin`` sigma, an eflow tower
  (PID 22 in an ECAL, 0 in an HCAL) carries the excess and the tracks pass unchanged; otherwise the
  tracks' pT is scaled to the weighted track+calorimeter mean.  Tracks outside the grid are lost.

Not supported: ``InsensitiveEtaPhiBins`` (blind towers) and tower timing.
"""

from __future__ import annotations

import numpy as np

from fast2full.delphes.candidates import Coll, log_normal
from fast2full.delphes.modules import Calorimeter, Module, _set_pt_eta_phi_e


class SimpleCalorimeter(Module):
    TYPE = "SimpleCalorimeter"
    PARAMS = dict.fromkeys(
        [
            "ParticleInputArray",
            "TrackInputArray",
            "TowerOutputArray",
            "EFlowTrackOutputArray",
            "EFlowTowerOutputArray",
            "EtaPhiBins",
            "EnergyFraction",
            "EnergyMin",
            "EnergySignificanceMin",
            "IsEcal",
            "SmearTowerCenter",
            "ResolutionFormula",
        ],
        "",
    )

    # the tower grid and its look-up are the combined Calorimeter's (same EtaPhiBins semantics)
    _tower_index = Calorimeter._tower_index
    _res = Calorimeter._res

    def setup(self):
        words = self.words("EtaPhiBins")
        p = self._p("EtaPhiBins")
        if p is None or len(words) < 4 or len(words) % 2:
            raise self.spec.error("EtaPhiBins needs pairs 'eta {phi edges}' (at least two)")
        binmap: dict[float, set[float]] = {}
        try:
            for k in range(0, len(words), 2):
                for e in (float(w.text) for w in words[k].words()):
                    binmap.setdefault(e, set()).update(float(w.text) for w in words[k + 1].words())
        except ValueError:
            raise p.error("bin edges must be numbers") from None
        self.eta_edges = np.array(sorted(binmap))
        phi_lists = [np.array(sorted(binmap[e])) for e in self.eta_edges]
        self.comb = np.concatenate([k * 10.0 + ph for k, ph in enumerate(phi_lists)])
        self.start = np.concatenate([[0], np.cumsum([len(ph) for ph in phi_lists])])
        self.eta_of_comb = np.repeat(np.arange(len(phi_lists)), [len(ph) for ph in phi_lists])
        fr = self.words("EnergyFraction")
        self.fractions = {0: 1.0}
        try:
            for k in range(0, len(fr) - 1, 2):
                self.fractions[int(fr[k].words()[0].text)] = float(fr[k + 1].words()[0].text)
        except (ValueError, IndexError):
            raise self._p("EnergyFraction").error("expected pairs '{pid} {fraction}'") from None
        self.res = self.formula("ResolutionFormula", "0")
        self.e_min = self.f("EnergyMin", 0.0)
        self.sig_min = self.f("EnergySignificanceMin", 0.0)
        self.is_ecal = self.b("IsEcal", False)
        self.smear_center = self.b("SmearTowerCenter", True)

    def _frac(self, pid: np.ndarray) -> np.ndarray:
        apid = np.abs(pid)
        out = np.full(len(pid), self.fractions[0])
        for code, f in self.fractions.items():
            if code:
                out[apid == code] = f
        return out

    def process(self, ctx):
        parts = self.get(ctx, self.s("ParticleInputArray", "ParticlePropagator/particles"), "ParticleInputArray")
        tracks = self.get(ctx, self.s("TrackInputArray", "ParticlePropagator/tracks"), "TrackInputArray")
        ncomb, n = len(self.comb), ctx.n_events
        fp = self._frac(parts["pid"])
        p_tow = self._tower_index(*parts.pos_eta_phi())
        hit = (p_tow >= 0) & (fp >= 1e-9)
        ft = self._frac(tracks["pid"])
        t_tow = self._tower_index(*tracks.pos_eta_phi())
        t_hit = t_tow >= 0
        p_key = parts.evt[hit] * ncomb + p_tow[hit]
        t_key = tracks.evt[t_hit] * ncomb + t_tow[t_hit]
        keys, inv = np.unique(np.concatenate([p_key, t_key]), return_inverse=True)
        nt = len(keys)
        p_inv, t_inv = inv[: len(p_key)], inv[len(p_key) :]
        e_true = np.bincount(p_inv, weights=parts["e"][hit] * fp[hit], minlength=nt)
        # tower geometry
        j = keys % ncomb
        tevt = keys // ncomb
        k = self.eta_of_comb[j]
        e_lo, e_hi = self.eta_edges[k - 1], self.eta_edges[k]
        ph_lo, ph_hi = self.comb[j - 1] - k * 10.0, self.comb[j] - k * 10.0
        eta_c = 0.5 * (e_lo + e_hi)
        # smearing and thresholds
        energy = log_normal(ctx.rng, e_true, self._res(self.res, eta_c, e_true))
        sigma = self._res(self.res, eta_c, energy)
        energy = np.where((energy < self.e_min) | (energy < self.sig_min * sigma), 0.0, energy)
        if self.smear_center:
            eta = ctx.rng.uniform(e_lo, e_hi)
            phi = ctx.rng.uniform(ph_lo, ph_hi)
        else:
            eta, phi = eta_c, 0.5 * (ph_lo + ph_hi)
        tower_uid = ctx.new_uids(nt)
        towner = np.concatenate([np.arange(nt), p_inv])
        tids = np.concatenate([tower_uid, parts["uid"][hit]])
        zeros = np.zeros(nt)

        def towers(sel: np.ndarray, e: np.ndarray, pid: int) -> Coll:
            idx = np.flatnonzero(sel)
            ee = e[idx]
            cols = _set_pt_eta_phi_e(ee / np.cosh(eta[idx]), eta[idx], phi[idx], ee)
            cols.update(
                eem=(ee if self.is_ecal else zeros[idx]),
                ehad=(zeros[idx] if self.is_ecal else ee),
                uid=tower_uid[idx],
                pid=np.full(len(idx), pid, np.int32),
                charge=np.zeros(len(idx), np.int32),
                eta_pos=eta[idx],
                phi_pos=phi[idx],
            )
            remap = np.full(nt, -1, np.int64)
            remap[idx] = np.arange(len(idx))
            o = remap[towner]
            return Coll(np.bincount(tevt[idx], minlength=n), cols, (o[o >= 0], tids[o >= 0]))

        ctx.arrays[self.out("TowerOutputArray", "towers")] = towers(energy > 0, energy, 0)

        # --- energy flow
        t_idx = np.flatnonzero(t_hit)
        te = tracks["e"][t_idx]
        tres = tracks["res"][t_idx]
        deposits = ft[t_idx] > 1e-9
        tr_e = te * ft[t_idx]
        sig_t = self._res(self.res, eta_c[t_inv], te)
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = np.where(sig_t / te < tres, tr_e, te)
        track_e = np.bincount(t_inv[deposits], weights=tr_e[deposits], minlength=nt)
        track_sigma = np.sqrt(np.bincount(t_inv[deposits], weights=((tres * guess) ** 2)[deposits], minlength=nt))
        neutral = np.maximum(energy - track_e, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            significance = neutral / np.sqrt(track_sigma**2 + sigma**2)
            excess = (neutral > self.e_min) & (significance > self.sig_min)
            w_t = np.where(track_sigma > 0, 1.0 / track_sigma**2, 0.0)
            w_c = np.where(sigma > 0, 1.0 / sigma**2, 0.0)
            best = (w_t * track_e + w_c * energy) / (w_t + w_c)
            rescale = np.where(excess | ~(track_e > 0), 1.0, best / track_e)
            rescale = np.where(np.isfinite(rescale), rescale, 1.0)
        ctx.arrays[self.out("EFlowTowerOutputArray", "eflowTowers")] = towers(
            excess, neutral, 22 if self.is_ecal else 0
        )
        # eflow tracks: every track in the acceptance, scaled where its tower says so
        scale = np.where(deposits, rescale[t_inv], 1.0)
        ef = tracks.take(t_idx)
        pt, m = ef.pt * scale, np.maximum(ef.mass, 0.0)
        px, py = ef["px"] * scale, ef["py"] * scale
        pz = ef["pz"] * scale
        ctx.arrays[self.out("EFlowTrackOutputArray", "eflowTracks")] = ef.with_cols(
            px=px, py=py, pz=pz, e=np.sqrt(pt**2 + pz**2 + m**2)
        )


__all__ = ["SimpleCalorimeter"]
