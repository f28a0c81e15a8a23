"""Reading training results: ``metrics.json`` files into one table, and their per-event predictions.

Input: the ``metrics.json`` written by ``fast2full train`` for every
``results/train/{task}/{arch}/{target}/{mode}/n{size}/seed{seed}/`` and, where train wrote it, the
``predictions.parquet`` beside it (:mod:`fast2full.predictions`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fast2full import plan
from fast2full import predictions as predictions_io
from fast2full.common import Fast2FullError, Progress
from fast2full.records import PointMetrics
from fast2full.reduction import DEFAULT_CONFIDENCE

log = logging.getLogger("fast2full.aggregate")

#: metric name -> whether higher is better
HIGHER_IS_BETTER = {"auc": True, "met_resolution": False, "test_loss": False}
#: metric name -> metrics.json key holding its value
METRIC_KEY = {"auc": "test_auc", "met_resolution": "met_resolution", "test_loss": "test_loss"}
#: metric name -> baseline dict key
BASELINE_KEY = {"auc": "test_auc", "met_resolution": "met_resolution"}
#: the vocabulary of fast2full.plan (declared once): every mode, the transfer modes (they start from
#: the pretrained source model and get a reduction factor), the full-split size token
MODES_ALL = plan.MODES
TRANSFER_MODES = plan.TRANSFER_MODES
FULL = plan.FULL_SIZE
#: the keys every metrics.json must have (fast2full.records.PointMetrics checks them and every field's type)
REQUIRED_KEYS = PointMetrics.REQUIRED
TABLE_COLUMNS = (
    "task",
    "arch",
    "target",
    "mode",
    "size",
    "size_value",
    "full",
    "n_train",
    "ess_train",
    "capped",
    "n_unlabelled",
    "seed",
    "metric",
    "value",
    "test_auc",
    "test_loss",
    "val_loss",
    "met_resolution",
    "n_test",
    "ess_test",
    "baseline_name",
    "baseline_test_auc",
    "baseline_met_resolution",
    "lr",
    "epochs",
    "steps",
    "steps_total",
    "steps_incl_pretrain",
    "n_params",
    "wall_time_s",
    "device",
    "pretrained_from",
    "source",
    "model_size",
    "git_commit",
    "config_digest",
    "path",
)


@dataclass(frozen=True)
class AggregateSettings:
    """The ``aggregate:`` config section, with defaults."""

    bootstrap: int = 200
    confidence: float = DEFAULT_CONFIDENCE
    compare_size: int | None = None
    seed: int = 0
    test_bootstrap: bool = True

    @classmethod
    def from_config(cls, config: dict) -> AggregateSettings:
        agg = config.get("aggregate", {}) or {}
        return cls(
            bootstrap=int(agg.get("bootstrap", cls.bootstrap)),
            confidence=float(agg.get("confidence", cls.confidence)),
            compare_size=agg.get("compare_size"),
            seed=int(config.get("seed", 0)),
            test_bootstrap=bool(agg.get("test_bootstrap", cls.test_bootstrap)),
        )


def numeric_sizes(config: dict) -> list[int]:
    """``training.sizes`` without the full-split token, sorted."""
    return sorted(int(s) for s in config["training"]["sizes"] if str(s) != FULL)


def size_tokens(config: dict) -> list[str]:
    """Every configured size as it appears in paths and columns (``20``, ``60``, ``all``), full last."""
    sizes = [str(s) for s in numeric_sizes(config)]
    return sizes + ([FULL] if any(str(s) == FULL for s in config["training"]["sizes"]) else [])


def compare_size(config: dict, settings: AggregateSettings) -> int:
    """The size of the mode-comparison figure: ``aggregate.compare_size`` if it is one of
    ``training.sizes``, else (with a warning) the smallest configured size."""
    sizes = numeric_sizes(config)
    if not sizes:
        raise Fast2FullError("config training.sizes has no numeric size")
    if settings.compare_size is None:
        return sizes[0]
    if int(settings.compare_size) not in sizes:
        log.warning(
            "config aggregate.compare_size %s is not one of training.sizes %s: using %d",
            settings.compare_size,
            sizes,
            sizes[0],
        )
        return sizes[0]
    return int(settings.compare_size)


def _num(x: Any) -> float:
    if x is None:
        return float("nan")
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def read_metrics_file(path: str | os.PathLike) -> PointMetrics:
    """Read and check one metrics.json (:class:`fast2full.records.PointMetrics`: required keys, field
    types, mode, metric, size, roc); raises InputError naming the file and the missing or bad field."""
    return PointMetrics.from_json(path)


def _source(rec: PointMetrics) -> str:
    """The domain of the pretrained model a result used (its own domain for pretraining; empty for
    scratch): ``source`` in metrics.json, else read from ``pretrained_from``
    (``.../train/{task}/{arch}/{source}/pretrain/...``; older files)."""
    if rec.source:
        return rec.source
    if rec.mode == "pretrain":
        return rec.target
    parts = Path(rec.pretrained_from or "").parts
    return parts[parts.index("pretrain") - 1] if "pretrain" in parts[1:] else ""


def _row(rec: PointMetrics, path: Path) -> dict:
    base = rec.baseline or {}
    size = rec.size
    n_train = rec.n_train
    prov = rec.provenance or {}
    row = {
        "task": rec.task,
        "arch": rec.arch,
        "target": rec.target,
        "mode": rec.mode,
        "size": str(size),
        "size_value": float(size) if size != FULL else float("nan"),
        "full": size == FULL,
        "n_train": _num(n_train) if n_train is not None else (float(size) if size != FULL else float("nan")),
        "capped": rec.capped,
        "seed": rec.seed,
        "metric": rec.metric,
        "value": _num(getattr(rec, METRIC_KEY[rec.metric])),
        "baseline_name": str(base.get("name") or ""),
        "baseline_test_auc": _num(base.get("test_auc")),
        "baseline_met_resolution": _num(base.get("met_resolution")),
        "device": rec.device or "",
        "pretrained_from": rec.pretrained_from or "",
        "source": _source(rec),
        "model_size": rec.model_size or "",
        "git_commit": str(prov.get("git_commit") or ""),
        "config_digest": str(prov.get("config_digest") or ""),
        "path": str(path),
    }
    for k in (
        "test_auc",
        "test_loss",
        "val_loss",
        "met_resolution",
        "lr",
        "epochs",
        "steps",
        "steps_total",
        "n_params",
        "wall_time_s",
        "n_test",
        "ess_train",
        "ess_test",
    ):
        row[k] = _num(getattr(rec, k))
    # DANN: unlabelled target events its domain head saw (0 for the other modes; absent in old files)
    row["n_unlabelled"] = _num(rec.n_unlabelled)
    return row


def add_compute_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``steps_incl_pretrain``: all optimiser steps a result cost (``steps_total``, the whole
    learning-rate grid on the target) plus, for modes that start from the source model, the mean
    ``steps_total`` of the pretraining runs of the same task, architecture and source domain (the
    reduced-input source for a target with reduced inputs, ``fast2full.plan.REDUCED_INPUTS``)."""
    pre_rows = table[table["mode"] == "pretrain"]
    pre = (
        pre_rows.groupby(["task", "arch", "source"])["steps_total"]
        .mean()
        .rename("_pretrain_steps")
        .reset_index()
        .rename(columns={"source": "_source"})
    )
    # a result that does not name its source (synthetic or old files): the only pretraining of its
    # task and arch, if there is one
    only = pre_rows.groupby(["task", "arch"])["source"].agg(lambda v: v.iloc[0] if v.nunique() == 1 else "")
    base = table.drop(columns=["steps_incl_pretrain"], errors="ignore")
    fallback = [only.get((t, a), "") for t, a in zip(base["task"], base["arch"])]
    base = base.assign(_source=np.where(base["source"].astype(str) != "", base["source"], fallback))
    out = base.merge(pre, on=["task", "arch", "_source"], how="left")
    uses_source = ~out["mode"].isin(["scratch", "pretrain"])
    out["steps_incl_pretrain"] = out["steps_total"] + np.where(uses_source, out["_pretrain_steps"].fillna(0.0), 0.0)
    return out.drop(columns=["_pretrain_steps", "_source"])[list(TABLE_COLUMNS)]


def load_metrics(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, dict[str, dict]]:
    """All metrics.json files as a table (one row each) and their ROC curves keyed by path."""
    paths = [Path(p) for p in paths]
    rows, rocs = [], {}
    prog = Progress(total=len(paths), what="metrics files", logger=log)
    for p in paths:
        rec = read_metrics_file(p)
        rows.append(_row(rec, p))
        if rec.roc:
            rocs[str(p)] = rec.roc
        prog.update()
    table = add_compute_columns(pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))
    if len(table):
        table["full"] = table["full"].astype(bool)
        table["capped"] = table["capped"].astype(bool)
        dup = table.duplicated(["task", "arch", "target", "mode", "size", "seed"], keep=False)
        if dup.any():
            first = table[dup].iloc[0]
            raise Fast2FullError(
                f"{first['path']}: duplicate result for {first['task']}/{first['arch']}/"
                f"{first['target']}/{first['mode']}/n{first['size']}/seed{first['seed']}"
            )
        for p in table.loc[table["value"].isna(), "path"]:
            log.warning("%s: the primary metric is null; the point is left out of the curves", p)
    return table, rocs


def load_predictions(table: pd.DataFrame) -> dict[str, predictions_io.Predictions]:
    """The ``predictions.parquet`` beside each metrics.json that has one (target-domain rows only),
    keyed by the metrics path.  A present but unreadable file is an error naming it."""
    out = {}
    sel = table[(table["mode"] != "pretrain") & table["value"].notna()]
    for p in sel["path"]:
        pp = predictions_io.path_for(p)
        if pp.is_file():
            out[p] = predictions_io.read(pp)
    return out
