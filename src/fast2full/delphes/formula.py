"""A safe evaluator for Delphes formula strings (the ROOT ``TFormula`` subset cards use).

Delphes compiles a card's formula (``EfficiencyFormula``, ``ResolutionFormula``, ``ScaleFormula``...)
with ``DelphesFormula``, which renames ``pt, eta, phi, energy`` to TFormula's x, y, z, t and
``d0, dz, ctgTheta, radius, density`` to parameters (delphes ``classes/DelphesFormula.cc``).  Here the
same strings are tokenised and parsed by a small recursive-descent parser into a tree of numpy
closures, so one call evaluates the formula for every candidate of a chunk at once.  Card text is
never handed to Python's ``eval``: only numbers, the variables above, arithmetic, comparisons,
``&&``/``||``/``!`` and a whitelist of functions are accepted.

Grammar (lowest to highest precedence, as in TFormula)::

    or   := and ('||' and)*
    and  := cmp ('&&' cmp)*
    cmp  := add (('<' | '<=' | '>' | '>=' | '==' | '!=') add)*
    add  := mul (('+' | '-') mul)*
    mul  := unary (('*' | '/' | '%') unary)*
    unary:= ('-' | '+' | '!') unary | pow
    pow  := atom ('^' unary)?            # right-associative, binds tighter than unary minus
    atom := NUMBER | VARIABLE | FUNC '(' or (',' or)* ')' | '(' or ')'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np

from fast2full.common import Fast2FullError

#: variables a Delphes formula may use (DelphesFormula::Compile)
VARIABLES = ("pt", "eta", "phi", "energy", "d0", "dz", "ctgTheta", "radius", "density")

# erf/erfc element-wise (rare in cards; math's C implementation, no extra dependency)
_ERF = np.vectorize(math.erf, otypes=[float])
_ERFC = np.vectorize(math.erfc, otypes=[float])

_FUNCS: dict[str, tuple[Callable, int]] = {
    "abs": (np.abs, 1),
    "fabs": (np.abs, 1),
    "sqrt": (np.sqrt, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "log10": (np.log10, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1),
    "tanh": (np.tanh, 1),
    "atan": (np.arctan, 1),
    "atan2": (np.arctan2, 2),
    "pow": (np.power, 2),
    "min": (np.minimum, 2),
    "max": (np.maximum, 2),
    "erf": (_ERF, 1),
    "erfc": (_ERFC, 1),
}
# ROOT's TMath spellings of the same functions
_FUNCS.update(
    {
        "TMath::Abs": _FUNCS["abs"],
        "TMath::Sqrt": _FUNCS["sqrt"],
        "TMath::Exp": _FUNCS["exp"],
        "TMath::Log": _FUNCS["log"],
        "TMath::Log10": _FUNCS["log10"],
        "TMath::Power": _FUNCS["pow"],
        "TMath::Min": _FUNCS["min"],
        "TMath::Max": _FUNCS["max"],
        "TMath::CosH": _FUNCS["cosh"],
        "TMath::SinH": _FUNCS["sinh"],
        "TMath::TanH": _FUNCS["tanh"],
        "TMath::Erf": _FUNCS["erf"],
        "TMath::Erfc": _FUNCS["erfc"],
        "TMath::ATan": _FUNCS["atan"],
        "TMath::ATan2": _FUNCS["atan2"],
    }
)
_CONSTS = {"pi": np.pi, "TMath::Pi()": np.pi}

_TOKEN = re.compile(
    r"""
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<pi>TMath::Pi\(\))
  | (?P<name>(?:TMath::)?[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\|\||&&|<=|>=|==|!=|[-+*/%^()<>!,])
""",
    re.VERBOSE,
)


class FormulaError(Fast2FullError):
    """A formula string is malformed or uses something outside the whitelist."""


Node = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def _tokenize(text: str) -> list[tuple[str, str]]:
    # Delphes strips blanks, tabs, newlines and backslashes before compiling
    s = re.sub(r"[ \t\r\n\\]", "", text)
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise FormulaError(f"formula '{text}': unexpected character '{s[pos]}' at position {pos}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.used: set[str] = set()

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise FormulaError(
                f"formula '{self.text}': unexpected end" + (f", expected '{expected}'" if expected else "")
            )
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise FormulaError(f"formula '{self.text}': expected '{expected}', got '{tok[1]}'")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise FormulaError(f"formula '{self.text}': empty")
        node = self.or_()
        if self.i != len(self.toks):
            raise FormulaError(f"formula '{self.text}': unexpected '{self.peek()}'")
        return node

    def _binary(self, sub, ops: dict[str, Callable]) -> Node:
        node = sub()
        while self.peek() in ops and self.toks[self.i][0] == "op":
            fn = ops[self.take()[1]]
            rhs = sub()
            node = (lambda a, b, f: lambda v: f(a(v), b(v)))(node, rhs, fn)
        return node

    def or_(self) -> Node:
        return self._binary(self.and_, {"||": lambda a, b: ((a != 0) | (b != 0)).astype(float)})

    def and_(self) -> Node:
        return self._binary(self.cmp, {"&&": lambda a, b: ((a != 0) & (b != 0)).astype(float)})

    def cmp(self) -> Node:
        def c(f):
            return lambda a, b: np.asarray(f(a, b), dtype=float)

        return self._binary(
            self.add,
            {
                "<": c(np.less),
                "<=": c(np.less_equal),
                ">": c(np.greater),
                ">=": c(np.greater_equal),
                "==": c(np.equal),
                "!=": c(np.not_equal),
            },
        )

    def add(self) -> Node:
        return self._binary(self.mul, {"+": np.add, "-": np.subtract})

    def mul(self) -> Node:
        return self._binary(self.unary, {"*": np.multiply, "/": _divide, "%": np.fmod})

    def unary(self) -> Node:
        p = self.peek()
        if p in ("-", "+", "!") and self.toks[self.i][0] == "op":
            self.take()
            a = self.unary()
            if p == "-":
                return lambda v: -a(v)
            if p == "!":
                return lambda v: (a(v) == 0).astype(float)
            return a
        return self.pow_()

    def pow_(self) -> Node:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exp = self.unary()
            return lambda v: np.power(base(v), exp(v))
        return base

    def atom(self) -> Node:
        kind, val = self.take()
        if kind == "num":
            x = float(val)
            return lambda v: x
        if kind == "pi":
            return lambda v: np.pi
        if kind == "name":
            if self.peek() == "(":
                if val not in _FUNCS:
                    raise FormulaError(
                        f"formula '{self.text}': unknown function '{val}' (supported: {', '.join(sorted(_FUNCS))})"
                    )
                fn, nargs = _FUNCS[val]
                self.take("(")
                args = [self.or_()]
                while self.peek() == ",":
                    self.take()
                    args.append(self.or_())
                self.take(")")
                if len(args) != nargs:
                    raise FormulaError(f"formula '{self.text}': {val} takes {nargs} argument(s), got {len(args)}")
                if nargs == 1:
                    a0 = args[0]
                    return lambda v: fn(a0(v))
                a0, a1 = args
                return lambda v: fn(a0(v), a1(v))
            if val in VARIABLES:
                self.used.add(val)
                return lambda v: v[val]
            if val in _CONSTS:
                c = _CONSTS[val]
                return lambda v: c
            raise FormulaError(f"formula '{self.text}': unknown variable '{val}' (supported: {', '.join(VARIABLES)})")
        if val == "(":
            node = self.or_()
            self.take(")")
            return node
        raise FormulaError(f"formula '{self.text}': unexpected '{val}'")


def _divide(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


class Formula:
    """A compiled Delphes formula: ``Formula("(pt > 1.0) * 0.95")(pt=..., eta=...)``."""

    def __init__(self, text: str):
        self.text = str(text)
        parser = _Parser(self.text)
        self._node = parser.parse()
        self.variables = frozenset(parser.used)

    def __call__(self, n: int | None = None, **values) -> np.ndarray:
        """Evaluate for arrays of candidates; unused variables may be omitted, missing used ones
        are 0 (as Delphes does for a candidate without d0, dz...).  Returns float64 of length ``n``
        (or of the broadcast shape of the inputs)."""
        env: dict[str, np.ndarray] = {}
        for name in self.variables:
            env[name] = np.asarray(values.get(name, 0.0), dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            out = np.asarray(self._node(env), dtype=np.float64)
        if n is not None:
            out = np.broadcast_to(out, (n,)).copy() if out.shape != (n,) else out
        return out

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"
