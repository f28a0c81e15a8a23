"""Contract 3 — **tensors**: what models read.  Writing and loading the padded parquet files.

One file per (task, domain, split): ``results/tensors/{task}/{domain}/{split}.parquet``.

Columns (Arrow types):

==========  ==========================================  ==========================================
column      type                                        meaning
==========  ==========================================  ==========================================
x           fixed_size_list<fixed_size_list<float32,F>,N>  N objects x F features, raw units
                                                          (unnormalised); padded slots are 0
mask        fixed_size_list<bool, N>                    True for real objects
y           float32 (sigbkg, qg) or                     label (1 = signal / quark) or regression
            fixed_size_list<float32, 2> (met)           target (true MET x, y in GeV)
baseline    same type as y                              rule-based baseline per row (a score for
                                                          classification, reconstructed MET x, y
                                                          for met)
weight      float64                                     physical event weight (pb per event in
                                                          the Delphes domains; fast2full.weights)
event_id    int64                                       event ID (the split is a hash of it)
aux_<name>  float64 (optional, per task)                per-row quantities for evaluation, not model
                                                          inputs: qg ``jet_pt`` (GeV), ``jet_abs_eta``,
                                                          ``event_weight`` (the physical weight before
                                                          the quark/gluon reweighting); listed in the
                                                          metadata key ``aux``
==========  ==========================================  ==========================================

The schema metadata key ``fast2full`` holds JSON with at least: ``schema_version``, ``task``,
``domain``, ``split``, ``features`` (names), ``units``, ``max_objects`` (N), ``n_features`` (F),
``targets`` (names of y's components), ``baseline`` (its description), ``norm`` (``{"mean": [F],
"std": [F]}`` from the source domain's train split; the same numbers in every domain's files),
``n_rows`` and, for classification, ``class_balance``.

:func:`load` reads a file into numpy without per-row Python (Arrow buffers → numpy views) and
applies the stored normalisation; :meth:`TensorSet.nested` gives nested training subsets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fast2full.common import InputError

SCHEMA_VERSION = 2
META_KEY = b"fast2full"
COLUMNS = ("x", "mask", "y", "baseline", "weight", "event_id")
AUX_PREFIX = "aux_"


def _fixed(values: np.ndarray) -> pa.Array:
    """numpy array of shape (n, a, b, ...) -> nested Arrow fixed-size lists (zero copy)."""
    arr = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(values.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, size)
    return arr


def write(
    path: str | Path,
    *,
    x: np.ndarray,
    mask: np.ndarray,
    y: np.ndarray,
    baseline: np.ndarray,
    weight: np.ndarray,
    event_id: np.ndarray,
    meta: dict,
    aux: dict[str, np.ndarray] | None = None,
) -> None:
    """Write one tensor file (call inside :func:`fast2full.common.atomic_output`); ``aux``: optional
    per-row evaluation columns (``aux_<name>``, float64)."""
    n = len(x)
    aux = aux or {}
    if not (len(mask) == len(y) == len(baseline) == len(weight) == len(event_id) == n) or any(
        len(v) != n for v in aux.values()
    ):
        raise ValueError("tensor columns differ in length")
    if x.ndim != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f"x must be (n, N, F) and mask (n, N); got {x.shape}, {mask.shape}")
    cols = {
        "x": _fixed(x.astype(np.float32)),
        "mask": _fixed(mask.astype(bool)),
        "y": _fixed(y.astype(np.float32)) if y.ndim > 1 else pa.array(y.astype(np.float32)),
        "baseline": _fixed(baseline.astype(np.float32)) if baseline.ndim > 1 else pa.array(baseline.astype(np.float32)),
        "weight": pa.array(weight.astype(np.float64)),
        "event_id": pa.array(event_id.astype(np.int64)),
        **{f"{AUX_PREFIX}{k}": pa.array(np.asarray(v, dtype=np.float64)) for k, v in aux.items()},
    }
    meta = {
        "schema_version": SCHEMA_VERSION,
        **meta,
        "aux": sorted(aux),
        "n_rows": int(n),
        "max_objects": int(x.shape[1]),
        "n_features": int(x.shape[2]),
    }
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path, compression="zstd")


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks()
    shape = [len(arr)]
    while pa.types.is_fixed_size_list(arr.type):
        shape.append(arr.type.list_size)
        arr = arr.flatten()
    out = arr.to_numpy(zero_copy_only=False)
    return out.reshape(shape)


def read_meta(path: str | Path) -> dict:
    try:
        md = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(path, f"not a readable parquet tensor file ({exc})") from exc
    if META_KEY not in md:
        raise InputError(path, "no fast2full tensor metadata (not written by `fast2full tensorize`)")
    return json.loads(md[META_KEY])


@dataclass
class TensorSet:
    """Arrays of one tensor file; ``x`` normalised (masked slots 0) unless loaded with raw=True."""

    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    baseline: np.ndarray
    weight: np.ndarray
    event_id: np.ndarray
    meta: dict = field(default_factory=dict)
    #: per-row evaluation columns (not model inputs), e.g. qg ``jet_pt``; see the module docstring
    aux: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: np.ndarray) -> TensorSet:
        return TensorSet(
            self.x[idx],
            self.mask[idx],
            self.y[idx],
            self.baseline[idx],
            self.weight[idx],
            self.event_id[idx],
            dict(self.meta),
            {k: v[idx] for k, v in self.aux.items()},
        )

    def nested(self, n: int | None, seed: int) -> TensorSet:
        """The first ``n`` rows of a fixed per-seed shuffle: the size-n set is inside the size-2n set."""
        order = np.random.default_rng(seed).permutation(len(self))
        return self.subset(order if n is None else order[: min(n, len(self))])

    def torch(self):
        """(x, mask, y, weight) as torch tensors sharing memory with the numpy arrays."""
        import torch

        return (
            torch.from_numpy(self.x),
            torch.from_numpy(self.mask),
            torch.from_numpy(self.y),
            torch.from_numpy(self.weight.astype(np.float32)),
        )


def load(path: str | Path, raw: bool = False) -> TensorSet:
    """Load a tensor file (memory-mapped Arrow → numpy) and normalise ``x`` with the stored stats."""
    meta = read_meta(path)
    try:
        table = pq.read_table(path, memory_map=True)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(path, f"cannot read tensors ({exc})") from exc
    missing = set(COLUMNS) - set(table.column_names)
    if missing:
        raise InputError(path, f"missing tensor columns {sorted(missing)}")
    n, nf = table.num_rows, meta["n_features"]
    x = _to_numpy(table["x"]).reshape(n, meta["max_objects"], nf).astype(np.float32, copy=True)
    mask = _to_numpy(table["mask"]).reshape(n, meta["max_objects"]).astype(bool)
    if not raw and meta.get("norm"):
        mean = np.asarray(meta["norm"]["mean"], dtype=np.float32)
        std = np.asarray(meta["norm"]["std"], dtype=np.float32)
        raw_x = x
        x = (x - mean) / np.where(std > 0, std, 1.0)
        # a feature that applies only to some slot types (norm "slot_flags", e.g. qg jet observables
        # in the jet slot) stays 0 in the other slots
        names = meta.get("features", [])
        for i, flag in enumerate(meta["norm"].get("slot_flags") or []):
            if flag:
                on = raw_x[:, :, names.index(flag.lstrip("!"))] > 0.5
                x[:, :, i] = np.where(~on if flag.startswith("!") else on, x[:, :, i], 0.0)
        x[~mask] = 0.0
    return TensorSet(
        x=x,
        mask=mask,
        y=_to_numpy(table["y"]).astype(np.float32),
        baseline=_to_numpy(table["baseline"]).astype(np.float32),
        weight=_to_numpy(table["weight"]).astype(np.float64),
        event_id=_to_numpy(table["event_id"]).astype(np.int64),
        meta=meta,
        aux={
            c[len(AUX_PREFIX) :]: _to_numpy(table[c]).astype(np.float64)
            for c in table.column_names
            if c.startswith(AUX_PREFIX)
        },
    )
