"""Columnar candidate collections: every event's candidates of one Delphes array, flattened.

Delphes passes ``TObjArray``s of ``Candidate`` objects between modules, one event at a time.  The
builtin engine processes a whole chunk at once instead: a :class:`Coll` holds, for every event, its
candidates as flat numpy columns plus per-event ``counts`` (candidates stay grouped by event, in
event order).  Selections, merges and per-event sums are numpy operations over all events.

Identity.  Delphes decides "is this the same object" through ``TObject::GetUniqueID`` (kept by
``Clone``) and ``Candidate::Overlaps`` (shared unique IDs anywhere in the two candidates' ancestry).
Here every collection carries ``uid`` (its own unique ID, inherited by clones) and an *id table*
``(owner, id)`` listing, per candidate, all unique IDs in its ancestry (a calorimeter tower lists the
particles that hit it; a jet lists its constituents' tables), so both checks are vectorised
``np.isin`` look-ups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the momentum columns every candidate collection has (GeV)
P4 = ("px", "py", "pz", "e")

#: default values of optional columns when collections with different columns are merged
DEFAULTS: dict[str, tuple[type, float]] = {
    "pid": (np.int32, 0),
    "charge": (np.int32, 0),
    "status": (np.int32, 1),
    "is_pu": (np.int32, 0),
    "uid": (np.int64, -1),
    "res": (np.float64, 0.0),
    "d0": (np.float64, 0.0),
    "dz": (np.float64, 0.0),
    "eta_pos": (np.float64, np.nan),
    "phi_pos": (np.float64, np.nan),
    "eem": (np.float64, 0.0),
    "ehad": (np.float64, 0.0),
    "etrk": (np.float64, 0.0),
}


class Coll:
    """Candidates of many events: flat numpy ``cols`` grouped by event, with per-event ``counts``."""

    def __init__(
        self, counts: np.ndarray, cols: dict[str, np.ndarray], ids: tuple[np.ndarray, np.ndarray] | None = None
    ):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.cols = cols
        self._ids = ids
        n = int(self.counts.sum())
        for k, v in cols.items():
            if len(v) != n:
                raise ValueError(f"column {k} has {len(v)} entries, counts sum to {n}")

    # -- shape -----------------------------------------------------------------------------------
    @property
    def n_events(self) -> int:
        return len(self.counts)

    def __len__(self) -> int:
        return int(self.counts.sum())

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)])

    @property
    def evt(self) -> np.ndarray:
        """Event index of every candidate."""
        return np.repeat(np.arange(self.n_events), self.counts)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.cols:
            return self.cols[name]
        if name in DEFAULTS:
            dt, val = DEFAULTS[name]
            return np.full(len(self), val, dtype=dt)
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return name in self.cols

    # -- kinematics ------------------------------------------------------------------------------
    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.cols["px"], self.cols["py"])

    @property
    def p(self) -> np.ndarray:
        return np.sqrt(self.cols["px"] ** 2 + self.cols["py"] ** 2 + self.cols["pz"] ** 2)

    @property
    def eta(self) -> np.ndarray:
        pt = self.pt
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.arcsinh(self.cols["pz"] / pt)
        # ROOT's TVector3::PseudoRapidity for pt == 0: +-10e10
        return np.where(pt > 0, out, np.sign(self.cols["pz"]) * 1e10)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.cols["py"], self.cols["px"])

    @property
    def mass(self) -> np.ndarray:
        m2 = self.cols["e"] ** 2 - self.cols["px"] ** 2 - self.cols["py"] ** 2 - self.cols["pz"] ** 2
        return np.sign(m2) * np.sqrt(np.abs(m2))

    def pos_eta_phi(self, use_momentum: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(eta, phi) of the candidate's position (at the calorimeter) as Delphes' modules use them,
        or of its momentum; candidates without a position use their momentum direction."""
        eta, phi = self.eta, self.phi
        if use_momentum or "eta_pos" not in self.cols:
            return eta, phi
        ep, pp = self.cols["eta_pos"], self.cols["phi_pos"]
        ok = np.isfinite(ep)
        return np.where(ok, ep, eta), np.where(ok, pp, phi)

    # -- identity --------------------------------------------------------------------------------
    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(owner, id) pairs: every unique ID in each candidate's ancestry (see module docstring)."""
        if self._ids is not None:
            return self._ids
        uid = self["uid"]
        ok = uid >= 0
        return np.flatnonzero(ok), uid[ok]

    # -- building --------------------------------------------------------------------------------
    def with_cols(self, **cols: np.ndarray) -> Coll:
        new = dict(self.cols)
        new.update(cols)
        return Coll(self.counts, new, self._ids)

    def take(self, sel: np.ndarray) -> Coll:
        """The candidates at ``sel`` (boolean mask or sorted flat indices), keeping event grouping."""
        sel = np.asarray(sel)
        idx = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.int64)
        counts = np.bincount(self.evt[idx], minlength=self.n_events) if len(idx) else np.zeros(self.n_events, np.int64)
        ids = None
        if self._ids is not None:
            owner, uid = self._ids
            remap = np.full(len(self), -1, np.int64)
            remap[idx] = np.arange(len(idx))
            new_owner = remap[owner]
            keep = new_owner >= 0
            ids = (new_owner[keep], uid[keep])
        return Coll(counts, {k: v[idx] for k, v in self.cols.items()}, ids)

    @staticmethod
    def empty(n_events: int) -> Coll:
        return Coll(np.zeros(n_events, np.int64), {k: np.zeros(0) for k in P4})

    @staticmethod
    def merge(colls: Sequence[Coll]) -> Coll:
        """Concatenate collections event by event (within an event, in the order given)."""
        colls = list(colls)
        n_events = colls[0].n_events
        names = [k for k in colls[0].cols]
        for c in colls[1:]:
            names += [k for k in c.cols if k not in names]
        # the order: by event, then by position in the list, then by original order
        evt = np.concatenate([c.evt for c in colls])
        order = np.argsort(evt, kind="stable")
        cols = {}
        for k in names:
            parts = []
            for c in colls:
                if k in c.cols:
                    parts.append(c.cols[k])
                else:
                    dt, val = DEFAULTS.get(k, (np.float64, 0.0))
                    parts.append(np.full(len(c), val, dtype=dt))
            cols[k] = np.concatenate(parts)[order]
        counts = np.sum([c.counts for c in colls], axis=0) if colls else np.zeros(n_events, np.int64)
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        owners, uids, base = [], [], 0
        for c in colls:
            o, u = c.ids()
            owners.append(inv[o + base])
            uids.append(u)
            base += len(c)
        ids = (np.concatenate(owners), np.concatenate(uids)) if colls else None
        return Coll(counts, cols, ids)


def pairs(a: Coll, b: Coll) -> tuple[np.ndarray, np.ndarray]:
    """All same-event pairs (i in a, j in b) as flat index arrays (the per-event cartesian product)."""
    nb = b.counts[a.evt]
    ia = np.repeat(np.arange(len(a)), nb)
    # position of each pair within its a-candidate's block
    starts = np.repeat(np.cumsum(nb) - nb, nb)
    jb = np.arange(len(ia)) - starts + np.repeat(b.offsets[:-1][a.evt], nb)
    return ia, jb


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    return np.hypot(eta1 - eta2, delta_phi(phi1, phi2))


def per_event_sum(coll: Coll, values: np.ndarray) -> np.ndarray:
    return np.bincount(coll.evt, weights=values, minlength=coll.n_events)


def log_normal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Delphes' LogNormal(mean, sigma): a log-normal variate with that mean and width; 0 if mean <= 0."""
    mean = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    z = rng.standard_normal(mean.shape)
    pos = mean > 0
    safe = np.where(pos, mean, 1.0)
    b = np.sqrt(np.log1p((sigma * sigma) / (safe * safe)))
    a = np.log(safe) - 0.5 * b * b
    return np.where(pos, np.exp(a + b * z), 0.0)


# --- charge from the PDG numbering scheme (PDG review "Monte Carlo particle numbering scheme") -----
_QUARK_3CHARGE = np.array([0, -1, 2, -1, 2, -1, 2, -1, 2, 0, 0], dtype=np.int64)  # index = quark id
_FUNDAMENTAL_3CHARGE = {11: -3, 13: -3, 15: -3, 17: -3, 24: 3, 34: 3, 37: 3}


def pdg_three_charge(pid: np.ndarray) -> np.ndarray:
    """Three times the electric charge for PDG IDs (quarks, leptons, bosons, mesons, baryons)."""
    pid = np.asarray(pid, dtype=np.int64)
    a = np.abs(pid)
    out = np.zeros(a.shape, np.int64)
    small = a < 100
    q = np.minimum(a, 10)
    out = np.where(small & (a <= 8), _QUARK_3CHARGE[q], out)
    for code, ch in _FUNDAMENTAL_3CHARGE.items():
        out = np.where(a == code, ch, out)
    # hadrons: n_q1 n_q2 n_q3 n_J digits (ignoring the n, n_r, n_L excitation digits)
    had = (a >= 100) & (a < 1_000_000_000)
    nq3 = (a // 10) % 10
    nq2 = (a // 100) % 10
    nq1 = (a // 1000) % 10
    c1, c2, c3 = (_QUARK_3CHARGE[np.minimum(x, 10)] for x in (nq1, nq2, nq3))
    meson = had & (nq1 == 0)
    # meson q2 q3bar; for down-type q2 the particle is the q3 qbar2 state (PDG sign convention)
    mch = np.where(nq2 % 2 == 1, c3 - c2, c2 - c3)
    out = np.where(meson, mch, out)
    baryon = had & (nq1 != 0) & (nq3 != 0)
    out = np.where(baryon, c1 + c2 + c3, out)
    return np.sign(pid) * out


def pdg_charge(pid: np.ndarray) -> np.ndarray:
    """Integer charge (in units of e) of hadrons, leptons and bosons; 0 for (fractional) quarks."""
    tc = pdg_three_charge(pid)
    return np.where(tc % 3 == 0, tc // 3, 0).astype(np.int32)
