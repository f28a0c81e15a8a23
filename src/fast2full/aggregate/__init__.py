"""Aggregation of training results: metrics table, learning curves, data-reduction factors, figures.

Modules: :mod:`.binned` (the binned qg / met evaluation at the full size), :mod:`.metrics` (reading
``metrics.json`` and ``predictions.parquet``), :mod:`.testboot`
(metrics on bootstrap resamples of the test events), :mod:`.curves` (learning curves and the factor
tables; the maths is :mod:`fast2full.reduction`), :mod:`.summary` (``summary.md``), :mod:`.figures`.
The definitions are :mod:`fast2full.definitions`.

Output (:func:`aggregate`): ``metrics.parquet``/``metrics.csv`` (one row per metrics.json),
``curves.csv`` (one row per learning-curve point), ``reduction_factors.csv`` (one row per configured
task x arch x target x mode), ``binned.csv``/``binned.json`` (the binned evaluation, seed mean and
spread, per task x arch x target x mode x quantity x bin), ``summary.md`` and figures (PDF + PNG).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fast2full.aggregate import binned as binned_eval
from fast2full.aggregate.curves import (
    CurvePoints,
    Tables,
    baseline_value,
    curve_points,
    expected_combinations,
    reduction_tables,
    task_targets,
)
from fast2full.aggregate.figures import make_figures, roc_on_grid, short_name
from fast2full.aggregate.metrics import (
    AggregateSettings,
    compare_size,
    load_metrics,
    load_predictions,
    read_metrics_file,
)
from fast2full.aggregate.summary import summary_markdown
from fast2full.common import Fast2FullError, atomic_output
from fast2full.provenance import provenance

log = logging.getLogger("fast2full.aggregate")

#: significant digits written to the CSV tables: metrics are float32 in training, factors and
#: intervals come from a bootstrap of a few hundred replicates
CSV_DIGITS = 6
FACTOR_DIGITS = 3


def _round_sig(a: np.ndarray, digits: int) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    out = a.copy()
    ok = np.isfinite(a) & (a != 0)
    mag = np.floor(np.log10(np.abs(a[ok])))
    scale = 10.0 ** (digits - 1 - mag)
    out[ok] = np.round(a[ok] * scale) / scale
    return out


def round_table(df: pd.DataFrame) -> pd.DataFrame:
    """Floats rounded to their precision: factors, sizes from crossings and intervals to
    :data:`FACTOR_DIGITS` significant digits, other floats to :data:`CSV_DIGITS`."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind != "f":
            continue
        factorish = c.startswith(("factor", "paper_factor", "paper_n99", "baseline_match"))
        out[c] = _round_sig(out[c].to_numpy(), FACTOR_DIGITS if factorish else CSV_DIGITS)
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        round_table(df).to_csv(tmp, index=False)


def aggregate(
    metrics_paths: Sequence[str | os.PathLike],
    config: dict,
    summary_dir: str | os.PathLike,
    figure_dir: str | os.PathLike,
) -> dict[str, Path]:
    """Run the whole aggregation; returns the written summary files by name.

    Every file is written atomically; the figure directory is built beside its final name and
    renamed into place only once all figures are drawn.
    """
    settings = AggregateSettings.from_config(config)
    summary_dir, figure_dir = Path(summary_dir), Path(figure_dir)
    table, rocs = load_metrics(metrics_paths)
    if table.empty:
        raise Fast2FullError("aggregate: no metrics.json files given")
    preds = load_predictions(table)
    tables = reduction_tables(table, config, settings, preds)
    binned = binned_eval.summarise(binned_eval.load_binned(table))
    prov = provenance(config)
    out = {
        name: summary_dir / name
        for name in (
            "metrics.parquet",
            "metrics.csv",
            "curves.csv",
            "reduction_factors.csv",
            "binned.csv",
            "binned.json",
            "summary.md",
        )
    }
    with atomic_output(figure_dir, suffix="") as tmp:
        tmp.mkdir()
        _, skipped = make_figures(tables, table, rocs, config, settings, tmp)
        if figure_dir.exists():  # os.replace cannot overwrite a non-empty directory
            shutil.rmtree(figure_dir)
    with atomic_output(out["metrics.parquet"]) as tmp:
        table.to_parquet(tmp, index=False)
    _write_csv(table, out["metrics.csv"])
    _write_csv(tables.points, out["curves.csv"])
    _write_csv(tables.factors, out["reduction_factors.csv"])
    _write_csv(binned, out["binned.csv"])
    with atomic_output(out["binned.json"]) as tmp:
        tmp.write_text(round_table(binned).to_json(orient="records", indent=1) + "\n")
    with atomic_output(out["summary.md"]) as tmp:
        tmp.write_text(summary_markdown(tables, table, config, settings, prov, skipped, binned))
    log.info(
        "aggregate: %d results (%d with predictions), %d combinations, %d skipped panels -> %s, %s",
        len(table),
        len(preds),
        len(tables.factors),
        len(skipped),
        summary_dir,
        figure_dir,
    )
    return out


__all__ = [
    "aggregate",
    "AggregateSettings",
    "compare_size",
    "load_metrics",
    "read_metrics_file",
    "curve_points",
    "CurvePoints",
    "expected_combinations",
    "reduction_tables",
    "task_targets",
    "baseline_value",
    "Tables",
    "roc_on_grid",
    "short_name",
    "round_table",
]
