"""The binned evaluation in the summary: per (task, arch, target, mode) at the full training size
(``'all'``; zero-shot at its size 0), the seed mean and spread of the ``binned`` block of each
``metrics.json`` (:func:`fast2full.taskmetrics.evaluate_binned`) beside the rule-based baseline.

qg: the AUC inclusive and in jet-pT bins with the ``-ntrk`` baseline's; met: the resolution per
component (x, y and their mean) in bins of true MET with the reconstructed MET's and the relative
improvement ``1 - res(model) / res(reco)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fast2full.aggregate.metrics import FULL
from fast2full.records import PointMetrics

#: one row per (result, quantity, bin)
LONG_COLUMNS = (
    "task",
    "arch",
    "target",
    "mode",
    "size",
    "seed",
    "quantity",
    "bin",
    "lo",
    "hi",
    "n",
    "model",
    "baseline",
    "improvement",
)
KEYS = ["task", "arch", "target", "mode", "size", "quantity", "bin"]
#: the summary's columns: seed mean, seed standard deviation (ddof 1; NaN for one seed), seeds
SUMMARY_COLUMNS = (
    *KEYS,
    "lo",
    "hi",
    "n_seeds",
    "n_mean",
    "model_mean",
    "model_std",
    "baseline_mean",
    "baseline_std",
    "improvement_mean",
    "improvement_std",
)
MET_COMPONENTS = ("x", "y", "mean")


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def rows_of(rec: dict) -> list[dict]:
    """The long rows of one metrics.json's ``binned`` block (none if it has none)."""
    b = rec.get("binned")
    if not b:
        return []
    head = {k: rec[k] for k in ("task", "arch", "target", "mode", "seed")} | {"size": str(rec["size"])}
    entries = [("inclusive", b["inclusive"] | {"lo": math.nan, "hi": math.nan}), *((e["bin"], e) for e in b["bins"])]
    out = []
    for label, e in entries:
        where = {"bin": label, "lo": _num(e.get("lo")), "hi": _num(e.get("hi")), "n": int(e["n"])}
        if rec["task"] == "met":
            model, reco, imp = e.get("model") or {}, e.get("reco") or {}, e.get("improvement") or {}
            for c in MET_COMPONENTS:
                out.append(
                    head
                    | where
                    | {
                        "quantity": f"resolution_{c}",
                        "model": _num(model.get(c)),
                        "baseline": _num(reco.get(c)),
                        "improvement": _num(imp.get(c)),
                    }
                )
        else:
            out.append(
                head
                | where
                | {
                    "quantity": "auc",
                    "model": _num(e.get("auc")),
                    "baseline": _num(e.get("baseline_auc")),
                    "improvement": math.nan,
                }
            )
    return out


def load_binned(table: pd.DataFrame) -> pd.DataFrame:
    """Long rows of every full-size (and zero-shot) result in ``table`` whose metrics.json has a
    ``binned`` block, read from the files of the table's ``path`` column."""
    sel = table[(table["size"] == FULL) | (table["mode"] == "zeroshot")]
    rows = []
    for p in sel["path"]:
        rows += rows_of(PointMetrics.from_json(p).to_dict())
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Seed mean and spread per (task, arch, target, mode, size, quantity, bin), bins in their order."""
    if long.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    point = list(zip(*(long[k] for k in KEYS[:5])))
    long = long.assign(
        _point=pd.factorize(pd.Series(point, dtype=object))[0],  # results in the order they came
        _quantity=pd.factorize(long["quantity"])[0],
        _bin=long.groupby(KEYS[:6] + ["seed"], sort=False).cumcount(),  # inclusive, then the bins in order
    )
    out = (
        long.groupby(KEYS, sort=False)
        .agg(
            _point=("_point", "min"),
            _quantity=("_quantity", "min"),
            _bin=("_bin", "min"),
            lo=("lo", "first"),
            hi=("hi", "first"),
            n_seeds=("model", "count"),
            n_mean=("n", "mean"),
            model_mean=("model", "mean"),
            model_std=("model", "std"),
            baseline_mean=("baseline", "mean"),
            baseline_std=("baseline", "std"),
            improvement_mean=("improvement", "mean"),
            improvement_std=("improvement", "std"),
        )
        .reset_index()
        .sort_values(["_point", "_quantity", "_bin"], kind="stable")
    )
    return out[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def _cell(r) -> str:
    """``model ± std (baseline b, +x%)``; ``-`` where the bin has no number."""
    if not np.isfinite(r.model_mean):
        return "-"
    extra = [f"baseline {r.baseline_mean:.3g}"] if np.isfinite(r.baseline_mean) else []
    extra += [f"{r.improvement_mean:+.1%}"] if np.isfinite(r.improvement_mean) else []
    std = f" ± {r.model_std:.3g}" if np.isfinite(r.model_std) else ""
    return f"{r.model_mean:.3g}{std}" + (f" ({', '.join(extra)})" if extra else "")


def markdown(summary: pd.DataFrame, md_table) -> list[str]:
    """The summary.md section: one table per task, a row per (arch, target, mode, quantity), a column
    per bin."""
    out = ["## Binned evaluation (full training size; zero-shot at n = 0)", ""]
    if summary.empty:
        return out + ["No result carries a binned evaluation (sigbkg has none; qg and met write one).", ""]
    out += [
        "Seed mean ± seed standard deviation of the test-split metric, and the rule-based baseline's in "
        "the same bins (qg: AUC with the event weights after the quark/gluon (pT, |η|) reweighting, baseline "
        "−ntrk, bins of jet pT in GeV; met: resolution in GeV per component, baseline the reconstructed MET, "
        "with the relative improvement 1 − res(model)/res(reco), bins of true MET in GeV).  All numbers, with "
        "the rows per bin, in `binned.csv` / `binned.json`.",
        "",
    ]
    for task, t in summary.groupby("task", sort=False):
        bins = list(dict.fromkeys(t["bin"]))
        rows = []
        for key, g in t.groupby(["arch", "target", "mode", "size", "quantity"], sort=False):
            cells = {r.bin: _cell(r) for r in g.itertuples()}
            rows.append([*key, int(g["n_seeds"].max())] + [cells.get(b, "-") for b in bins])
        out += [f"### {task}", "", md_table(["arch", "target", "mode", "size", "quantity", "seeds", *bins], rows), ""]
    return out


__all__ = ["load_binned", "summarise", "rows_of", "markdown", "LONG_COLUMNS", "SUMMARY_COLUMNS"]
