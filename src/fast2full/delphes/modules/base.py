"""What every builtin Delphes module shares: the :class:`Context` that flows through the
execution path, the :class:`Module` base class (card-parameter checking and typed access) and the
small kinematic helpers the modules use."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fast2full.delphes.candidates import Coll
from fast2full.delphes.card import CardError, Param
from fast2full.delphes.card import Module as CardModule
from fast2full.delphes.formula import Formula, FormulaError

#: speed of light times 1e-9: a track of pT [GeV] in B [T] with charge q [e] has radius
#: pT / (C_LIGHT_GEV * q * B) [m]
C_LIGHT_GEV = 0.299792458


@dataclass
class Context:
    """What flows through the execution path: named arrays ``Module/array`` and the RNG."""

    n_events: int
    rng: np.random.Generator
    arrays: dict[str, Coll] = field(default_factory=dict)
    next_uid: int = 0
    pileup: Coll | None = None  # minimum-bias particles to draw from (PileUpMerger)
    pileup_mean: float | None = None  # config override of the card's MeanPileUp
    branches: dict[str, object] = field(default_factory=dict)  # filled by TreeWriter

    def new_uids(self, n: int) -> np.ndarray:
        out = np.arange(self.next_uid, self.next_uid + n, dtype=np.int64)
        self.next_uid += n
        return out


class Module:
    """Base class: parameter checking and typed access.  ``PARAMS`` holds the parameter names the
    module accepts (Delphes' ``Get*`` calls in its ``Init``); any other name in the card is an error."""

    TYPE = ""
    PARAMS: dict[str, str] = {}

    def __init__(self, spec: CardModule):
        self.spec = spec
        self.name = spec.name
        for pname, p in spec.params.items():
            if pname not in self.PARAMS:
                raise CardError(
                    p.path,
                    p.line,
                    f"module {spec.type} {spec.name}: unknown parameter '{pname}' "
                    f"(supported: {', '.join(sorted(self.PARAMS))})",
                )
        self.setup()

    # -- parameter access ------------------------------------------------------------------------
    def _p(self, name: str) -> Param | None:
        return self.spec.params.get(name)

    def f(self, name: str, default: float) -> float:
        p = self._p(name)
        return default if p is None else p.as_float()

    def i(self, name: str, default: int) -> int:
        p = self._p(name)
        return default if p is None else p.as_int()

    def b(self, name: str, default: bool) -> bool:
        p = self._p(name)
        return default if p is None else p.as_bool()

    def s(self, name: str, default: str) -> str:
        p = self._p(name)
        return default if p is None else p.as_str()

    def formula(self, name: str, default: str) -> Formula:
        p = self._p(name)
        text = default if p is None else p.as_str()
        try:
            return Formula(text)
        except FormulaError as exc:
            line = p.line if p else self.spec.line
            raise CardError(
                self.spec.path, line, f"module {self.spec.type} {self.name}: parameter '{name}': {exc}"
            ) from None

    def words(self, name: str) -> list:
        p = self._p(name)
        return [] if p is None else list(p.values)

    def refuse(self, name: str, why: str, allowed: float | None = None) -> None:
        """CardError at the card line of parameter ``name`` if the card sets it (to anything but
        ``allowed``): a parameter Delphes reads whose effect the builtin engine cannot reproduce."""
        p = self._p(name)
        if p is None or (allowed is not None and p.as_float() == allowed):
            return
        raise CardError(
            p.path,
            p.line,
            f"module {self.spec.type} {self.name}: parameter '{name}' is not supported by the builtin engine: {why}",
        )

    def out(self, name: str, default: str) -> str:
        return f"{self.name}/{self.s(name, default)}"

    def get(self, ctx: Context, ref: str, param: str) -> Coll:
        if ref not in ctx.arrays:
            p = self._p(param)
            raise CardError(
                self.spec.path,
                p.line if p else self.spec.line,
                f"module {self.spec.type} {self.name}: input array '{ref}' is not produced"
                f" by any module that runs before it",
            )
        return ctx.arrays[ref]

    def setup(self) -> None:  # pragma: no cover - overridden
        pass

    def process(self, ctx: Context) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _eval(
    formula: Formula,
    c: Coll,
    eta: np.ndarray,
    phi: np.ndarray,
    pt: np.ndarray | None = None,
    energy: np.ndarray | None = None,
) -> np.ndarray:
    return formula(
        len(c),
        pt=c.pt if pt is None else pt,
        eta=eta,
        phi=phi,
        energy=c["e"] if energy is None else energy,
        d0=c["d0"],
        dz=c["dz"],
        ctgTheta=_ctg_theta(c),
    )


def _ctg_theta(c: Coll) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return c["pz"] / c.pt


def _set_pt_eta_phi_m(pt, eta, phi, m) -> dict[str, np.ndarray]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {"px": px, "py": py, "pz": pz, "e": np.sqrt(px**2 + py**2 + pz**2 + m**2)}


def _set_pt_eta_phi_e(pt, eta, phi, e) -> dict[str, np.ndarray]:
    return {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "e": e}
