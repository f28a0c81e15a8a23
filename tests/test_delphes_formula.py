"""The safe Delphes-formula evaluator: TFormula semantics on numpy arrays, nothing else."""

import re

import numpy as np
import pytest

from fast2full.delphes.formula import Formula, FormulaError

PT = np.array([0.5, 1.0, 2.0, 50.0, 500.0])
ETA = np.array([0.0, -1.2, 1.6, 2.4, -3.0])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(abs(eta) <= 1.5) * (pt > 1.0) * 0.95", (np.abs(ETA) <= 1.5) * (PT > 1.0) * 0.95),
        ("sqrt(0.01^2 + pt^2*1e-4^2)", np.sqrt(0.01**2 + PT**2 * 1e-4**2)),
        (
            "(pt > 1.0 && abs(eta) < 2.0) * 1.0 + (pt <= 1.0 || abs(eta) >= 2.0) * 0.5",
            np.where((PT > 1.0) & (np.abs(ETA) < 2.0), 1.0, 0.5),
        ),
        ("-pt^2", -(PT**2)),  # ^ binds tighter than unary minus (TFormula)
        ("2^-1", np.full(5, 0.5)),
        ("2^3^2", np.full(5, 2.0**9)),  # right-associative
        ("10 - 4 - 3", np.full(5, 3.0)),  # left-associative
        ("pt / 2 * 4", PT * 2),
        ("TMath::Sqrt(pt) + exp(0) + log(1) + TMath::Pi() - pi", np.sqrt(PT) + 1.0),
        ("!(pt > 1.0)", (PT <= 1.0).astype(float)),
        ("min(pt, 10.0) + max(eta, 0)", np.minimum(PT, 10.0) + np.maximum(ETA, 0)),
        ("0.95", np.full(5, 0.95)),
        ("erf(eta) + TMath::Erfc(eta)", np.ones(5)),
        ("1.5E1 * .1", np.full(5, 1.5)),
        ("(pt > 1.0) * \\\n 2", (PT > 1.0) * 2.0),  # card line continuation inside a formula
    ],
)
def test_formula_values(text, expected):
    np.testing.assert_allclose(Formula(text)(len(PT), pt=PT, eta=ETA), expected)


def test_formula_variables_and_defaults():
    f = Formula("d0 + dz + ctgTheta + energy")
    assert f.variables == {"d0", "dz", "ctgTheta", "energy"}
    # variables the caller does not provide are 0, as for a Delphes candidate without them
    np.testing.assert_allclose(f(3, energy=np.array([1.0, 2.0, 3.0])), [1, 2, 3])


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "unexpected character"),
        ("pt.__class__", "unexpected character"),
        ("open(pt)", "unknown function 'open'"),
        ("eval(pt)", "unknown function 'eval'"),
        ("mass * 2", "unknown variable 'mass'"),
        ("(pt > 1", "expected ')'"),
        ("pt >", "unexpected end"),
        ("pt pt", "unknown variable 'ptpt'"),  # Delphes strips blanks before compiling
        ("(pt) 2", "unexpected '2'"),
        ("sqrt(1, 2)", "takes 1 argument"),
        ("", "empty"),
        ("pt; 1", "unexpected character"),
    ],
)
def test_formula_rejects(text, message):
    with pytest.raises(FormulaError, match=re.escape(message)):
        Formula(text)
