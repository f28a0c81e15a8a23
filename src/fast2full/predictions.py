"""Contract — **per-event test predictions** (``predictions.parquet``), written by ``fast2full train``.

One file per training result, beside its ``metrics.json``:
``results/train/{task}/{arch}/{target}/{mode}/n{size}/seed{seed}/predictions.parquet``.  It holds
every event of the target **test** split with the model's output and the rule-based baseline, so
that ``aggregate`` can recompute the metric on bootstrap resamples of the test events (the test
set's own statistical uncertainty, see ``docs/results.md``).

Columns (Arrow types):

=================  =======  ==============================================================
column             type     meaning
=================  =======  ==============================================================
event_id           int64    event ID (the same IDs, in the same order, in every file of a
                            (task, target): the test split does not depend on the model)
weight             float64  event weight
label              float32  classification only: 1 = signal / quark, 0 = background / gluon
score              float32  classification only: the model's discriminant (larger = more
                            signal-like; any monotone scale)
baseline           float32  classification only: the rule-based discriminant, oriented on the
                            validation split (larger = more signal-like)
target_x/_y        float32  met only: true MET x, y [GeV]
pred_x/_y          float32  met only: predicted MET x, y [GeV]
baseline_x/_y      float32  met only: the rule-based baseline (reconstructed MET) x, y [GeV]
=================  =======  ==============================================================

The schema metadata key ``fast2full`` holds JSON: ``schema_version``, ``task``, ``kind``
(``classification`` or ``regression``) and optional provenance.  :func:`write` checks shapes;
:func:`read` checks columns and returns :class:`Predictions` (numpy arrays).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fast2full.common import InputError, atomic_output

SCHEMA_VERSION = 1
META_KEY = b"fast2full"
FILENAME = "predictions.parquet"
CLASSIFICATION_COLUMNS = ("event_id", "weight", "label", "score", "baseline")
REGRESSION_COLUMNS = ("event_id", "weight", "target_x", "target_y", "pred_x", "pred_y", "baseline_x", "baseline_y")
#: task -> kind
KIND = {"sigbkg": "classification", "qg": "classification", "met": "regression"}


def columns_of(kind: str) -> tuple[str, ...]:
    return CLASSIFICATION_COLUMNS if kind == "classification" else REGRESSION_COLUMNS


@dataclass
class Predictions:
    """Per-event test outputs of one training result.

    ``truth``, ``pred`` and ``baseline`` are (n,) for classification (label, score, baseline score)
    and (n, 2) for regression (MET x, y in GeV).
    """

    task: str
    event_id: np.ndarray
    weight: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    baseline: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return KIND[self.task]

    def __len__(self) -> int:
        return len(self.event_id)

    def __post_init__(self) -> None:
        n = len(self.event_id)
        want = (n,) if self.kind == "classification" else (n, 2)
        for name in ("truth", "pred", "baseline"):
            a = np.asarray(getattr(self, name))
            if a.shape != want:
                raise ValueError(f"predictions: {name} has shape {a.shape}, expected {want} for task {self.task}")
        if np.asarray(self.weight).shape != (n,):
            raise ValueError(f"predictions: weight has shape {np.asarray(self.weight).shape}, expected {(n,)}")

    def subset(self, idx: np.ndarray) -> Predictions:
        return Predictions(
            self.task,
            self.event_id[idx],
            self.weight[idx],
            self.truth[idx],
            self.pred[idx],
            self.baseline[idx],
            dict(self.meta),
        )


def write(path: str | os.PathLike, pred: Predictions, provenance: dict | None = None) -> Path:
    """Write ``pred`` to ``path`` atomically (no partial file on error)."""
    path = Path(path)
    cols: dict[str, pa.Array] = {
        "event_id": pa.array(np.asarray(pred.event_id, dtype=np.int64)),
        "weight": pa.array(np.asarray(pred.weight, dtype=np.float64)),
    }
    f32 = lambda a: pa.array(np.asarray(a, dtype=np.float32))  # noqa: E731
    if pred.kind == "classification":
        cols |= {"label": f32(pred.truth), "score": f32(pred.pred), "baseline": f32(pred.baseline)}
    else:
        for name, a in (("target", pred.truth), ("pred", pred.pred), ("baseline", pred.baseline)):
            a = np.asarray(a)
            cols |= {f"{name}_x": f32(a[:, 0]), f"{name}_y": f32(a[:, 1])}
    meta = {"schema_version": SCHEMA_VERSION, "task": pred.task, "kind": pred.kind, **pred.meta}
    if provenance:
        meta["provenance"] = provenance
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read(path: str | os.PathLike) -> Predictions:
    """Read one predictions file; a bad file raises InputError naming it and the cause."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError as exc:
        raise InputError(path, "predictions file not found") from exc
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(path, f"not a readable parquet predictions file ({exc})") from exc
    md = table.schema.metadata or {}
    if META_KEY not in md:
        raise InputError(path, "no fast2full metadata (not written by fast2full.predictions.write)")
    meta = json.loads(md[META_KEY])
    task = meta.get("task")
    if task not in KIND:
        raise InputError(path, f"unknown task {task!r} in the predictions metadata")
    if int(meta.get("schema_version", -1)) != SCHEMA_VERSION:
        raise InputError(path, f"predictions schema_version {meta.get('schema_version')} != {SCHEMA_VERSION}")
    missing = [c for c in columns_of(KIND[task]) if c not in table.column_names]
    if missing:
        raise InputError(path, f"missing predictions column(s) {', '.join(missing)}")
    col = lambda c: table[c].to_numpy()  # noqa: E731
    if KIND[task] == "classification":
        truth, pred, base = col("label"), col("score"), col("baseline")
    else:
        truth, pred, base = (np.stack([col(f"{p}_x"), col(f"{p}_y")], axis=1) for p in ("target", "pred", "baseline"))
    extra = {k: v for k, v in meta.items() if k not in ("schema_version", "task", "kind")}
    return Predictions(
        task,
        col("event_id").astype(np.int64),
        col("weight").astype(np.float64),
        truth.astype(np.float64),
        pred.astype(np.float64),
        base.astype(np.float64),
        extra,
    )


def path_for(metrics_path: str | os.PathLike) -> Path:
    """The predictions file that belongs beside a ``metrics.json``."""
    return Path(metrics_path).with_name(FILENAME)


def from_tensorset(task: str, ts, pred: np.ndarray, baseline: np.ndarray | None = None) -> Predictions:
    """A :class:`Predictions` of the test split ``ts`` (a :class:`fast2full.tensorio.TensorSet`).

    ``pred``: the model's score (classification) or predicted MET (n, 2) in GeV; ``baseline`` the
    oriented baseline score (default ``ts.baseline``: pass ``sign * ts.baseline`` where the baseline's
    direction was reversed on the validation split).
    """
    return Predictions(
        task,
        np.asarray(ts.event_id),
        np.asarray(ts.weight, dtype=np.float64),
        np.asarray(ts.y, dtype=np.float64),
        np.asarray(pred, dtype=np.float64),
        np.asarray(ts.baseline if baseline is None else baseline, dtype=np.float64),
    )


__all__ = ["Predictions", "write", "read", "path_for", "from_tensorset", "FILENAME", "SCHEMA_VERSION"]
