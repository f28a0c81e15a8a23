"""The data-reduction-factor definitions, written once.

``docs/results.md``, the README's factor section and the *Definitions* section of ``summary.md`` are
made from the texts here: the Markdown files hold them between marker comments
(``<!-- fast2full:factor-definitions -->`` … ``<!-- /fast2full:factor-definitions -->``), refreshed by

    python -m fast2full.definitions README.md docs/results.md          # rewrite the blocks
    python -m fast2full.definitions --check README.md docs/results.md  # exit 1 if a block is stale

and a test checks that they agree.  ``FACTORS`` (both factors) goes everywhere; ``DETAILS`` (the
curve, the bootstrap, saturation, bounds) goes to ``docs/results.md`` and ``summary.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from fast2full.reduction import PAPER_PERFORMANCE_FRACTION

_F = PAPER_PERFORMANCE_FRACTION
_PCT = f"{_F:.0%}"

FACTORS = f"""\
The metric is the test ROC AUC for `sigbkg` and `qg` (higher is better) and the MET resolution for
`met` (RMS of predicted minus true MET per component, mean of x and y, in GeV; lower is better).
Every learning curve, from scratch and transfer alike, ends with a point on the **full target train
split** (size `all` in `training.sizes`, *n*_full events).

* **Paper factor** (Flek & Schott; column `paper_factor`).  *n*₉₉ is the target training size at which
  the transfer curve (fine-tune, frozen backbone or DANN) reaches {_PCT} of the performance that training
  from scratch attains on the full target train split, *S*_full, by linear interpolation of the curve
  in log *n*; reduction = *n*_full / *n*₉₉.  Higher-is-better metrics: the level is
  {_F:g} × *S*_full.  Lower-is-better metrics: the level is {_PCT} of scratch-on-full's **gain over the
  rule-based baseline** *B* (the reconstructed MET), *B* − {_F:g} × (*B* − *S*_full), so the untrained
  baseline can never meet it; if scratch on the full split does not beat *B*, no factor is defined.
* **Matched-size factor** (second view; columns `factor_n<size>`).  For a transfer point at size *n*
  with metric *m*, *n*\\* is the size at which the from-scratch curve reaches *m* (linear in log *n*);
  factor = *n*\\* / *n*: "from scratch needs factor × as many target events to do as well".
"""

DETAILS = """\
**Curve.** The value at each size is the mean over seeds.  For reading crossings each curve is made
monotone (never worse with more data) by seed-weighted isotonic regression and read as piecewise
linear in log *n*.  Sizes whose training set was capped to the same events (a pool smaller than the
size) are one point: the full-split point if it is among them.  Nothing is extrapolated.

**Uncertainty.** One bootstrap (`aggregate.bootstrap` replicates) per task and target resamples the
seeds (the same seed draw for every size and mode, so a seed's nested training sets stay paired) and
the test events (one resample of the test split shared by every model, from each result's
`predictions.parquet`); each replicate recomputes every metric, refits and inverts the curves.  The
interval is the central `aggregate.confidence` quantile range.  Where a result lacks its predictions
file the bootstrap falls back to seeds only and the `bootstrap` column says so.

**Bounds.**  A crossing outside the trained sizes is censored at the range's edge: `> X` (the paper
factor when *n*₉₉ is at or below the smallest size; the matched-size factor when *m* beats scratch on
the full split) or `< X`; X is the edge of the bootstrap interval, so the bound holds at the stated
confidence.  An interval end written `> X` or `< X` means more than its tail of replicates was
censored there; `inconclusive` means the central value is beyond one end of the range but more than
that tail of the replicates lies beyond the other end, so no bound holds at the stated confidence.  No
bound is quoted from a bootstrap without spread (one seed and no per-event predictions); `not
reached` means the transfer curve stays short of the level at every size.

**Saturated** (matched-size cells).  Quoted instead of a factor when the transfer and scratch points
at *n* agree within the combined interval *and* scratch at *n* agrees with scratch on the full split
(both curves on their plateau), and the same holds with any one seed left out, so one deviant seed
that widens the interval never makes a point saturated.  Never from a zero spread.

**Baseline match** (`baseline_match`).  The size at which a curve first reaches its rule-based
baseline's metric (`<= n` if already at the smallest size, `never in range` if not within the sizes).
"""

BLOCKS = {"factor-definitions": FACTORS, "factor-details": DETAILS}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- fast2full:{name} -->\n)(.*?)(<!-- /fast2full:{name} -->)", re.S)


def blocks_in(text: str) -> dict[str, str]:
    """The marked blocks of a Markdown text: name -> content."""
    return {name: m.group(2) for name in BLOCKS if (m := _pattern(name).search(text))}


def render(text: str) -> str:
    """``text`` with every marked block replaced by its current definition."""
    for name, content in BLOCKS.items():
        text = _pattern(name).sub(lambda m, c=content: m.group(1) + c + m.group(3), text)
    return text


def summary_section() -> str:
    """The *Definitions* section of ``summary.md``."""
    return FACTORS + "\n" + DETAILS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="refresh (or --check) the factor definitions in Markdown files")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    stale = []
    for f in args.files:
        p = Path(f)
        text = p.read_text()
        if not blocks_in(text):
            print(f"{p}: no fast2full definition block", file=sys.stderr)
            stale.append(p)
            continue
        new = render(text)
        if new != text:
            stale.append(p)
            if not args.check:
                p.write_text(new)
    if args.check and stale:
        print("stale definition blocks: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
