"""Contracts — **a training point's result** (``metrics.json``) and **a pretrained model's card**
(``model_card`` inside ``model.ckpt``, ``model_card.json`` of a published model) as typed records.

``fast2full train`` writes both (:class:`PointMetrics` per seed, :class:`ModelCard` per pretrained
seed); ``aggregate`` reads :class:`PointMetrics`, :func:`fast2full.models.load_pretrained` and
``export-model`` read :class:`ModelCard`.  The JSON layout is the records' fields in order (the field
list of ``docs/training.md``); the field annotations are the schema: reading checks every required
field is there, every field present has its declared type (``int`` is not ``bool``; a ``float`` may be
written as an integer) and no unknown field is present, and raises
:class:`fast2full.common.InputError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from fast2full.common import InputError, atomic_output, read_json
from fast2full.plan import FULL_SIZE, MODES

#: version of the metrics.json layout (written as its last field; files without it are version 1)
METRICS_VERSION = 1
#: version of the model card layout (``card_version``)
CARD_VERSION = 1
#: the primary metric of a point: AUC (classification) or MET resolution in GeV (regression)
METRICS = ("auc", "met_resolution")

R = TypeVar("R", bound="_Record")


def _type_ok(value: Any, tp: Any) -> bool:
    """Whether a JSON value has the annotated type ``tp`` (str, int, float, bool, Literal, dict[...],
    list[...], unions with None)."""
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return any(_type_ok(value, a) for a in get_args(tp))
    if origin is Literal:
        return value in get_args(tp)
    if tp is type(None):
        return value is None
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if origin is list or tp is list:
        return isinstance(value, list)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    """``float | None`` -> ``a number or null`` (for error messages)."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in get_args(tp))
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false", type(None): "null"}
    if tp in names:
        return names[tp]
    if origin is dict or tp is dict:
        return "an object"
    if origin is list or tp is list:
        return "a list"
    return str(tp)


class _Record:
    """Shared reading and writing of a frozen dataclass record as one JSON object."""

    #: fields a file must have (the others default to None / their default when absent)
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    #: what the file is, for error messages
    WHAT: ClassVar[str] = "file"
    #: fields left out of the JSON object while they are None
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls: type[R], obj: object, path: str | os.PathLike = "<record>") -> R:
        """The record of a parsed JSON object; InputError naming ``path`` and the field if it does not fit."""
        if not isinstance(obj, dict):
            raise InputError(path, f"{cls.WHAT} must hold a JSON object")
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [k for k in cls.REQUIRED if k not in obj]
        if missing:
            raise InputError(path, f"missing key(s) {', '.join(missing)}")
        unknown = [k for k in obj if k not in names]
        if unknown:
            raise InputError(path, f"unknown key(s) {', '.join(map(str, unknown))} (not in the {cls.__name__} record)")
        for k, v in obj.items():
            if not _type_ok(v, hints[k]):
                raise InputError(path, f"field {k!r} must be {_describe(hints[k])}, got {json.dumps(v)[:60]}")
        rec = cls(**obj)
        rec._check(Path(path))
        return rec

    @classmethod
    def from_json(cls: type[R], path: str | os.PathLike) -> R:
        """Read and check one file (InputError naming it and the missing or mistyped field)."""
        return cls.from_dict(read_json(path, cls.WHAT), path)

    def _check(self, path: Path) -> None:
        """Checks beyond the field types (a subclass's)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, fields in their declared order."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {k: v for k, v in out.items() if not (v is None and k in self.OMIT_IF_NONE)}

    def to_json(self, path: str | os.PathLike, indent: int = 1) -> None:
        """Write the record atomically (no partial file on failure)."""
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=indent) + "\n")


@dataclass(frozen=True)
class PointMetrics(_Record):
    """One seed of one training point, as ``metrics.json`` holds it (``docs/training.md``, "Outputs").

    Required: the point's identity (``task, arch, target, mode, size, seed``) and ``metric``; ``train``
    writes every field, hand-made or older files may leave the others out (read as None / default).
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("task", "arch", "target", "mode", "size", "seed", "metric")
    WHAT: ClassVar[str] = "metrics file"

    task: str
    arch: str
    target: str
    mode: str
    size: int | Literal["all"]
    n_train: int | None = None
    capped: bool = False
    n_val: int | None = None
    n_test: int | None = None
    seed: int = 0
    metric: str = "auc"
    test_auc: float | None = None
    roc: dict[str, list[float]] | None = None
    test_loss: float | None = None
    val_loss: float | None = None
    met_resolution: float | None = None
    baseline: dict[str, Any] | None = None
    test_auc_unweighted: float | None = None
    met_resolution_unweighted: float | None = None
    binned: dict[str, Any] | None = None
    ess_train: float | None = None
    ess_val: float | None = None
    ess_test: float | None = None
    sample_sizes: dict[str, Any] | None = None
    lr: float | None = None
    steps: int | None = None
    best_step: int | None = None
    stopped: str | None = None
    hit_cap: bool = False
    checks: int | None = None
    epochs: float | None = None
    best_epoch: float | None = None
    steps_total: int | None = None
    budget: dict[str, Any] | None = None
    grid: list[dict[str, Any]] | None = None
    n_unlabelled: int = 0
    n_unlabelled_pool: int = 0
    n_source: int = 0
    n_params: int | None = None
    n_params_trainable: int | None = None
    ensemble_members: int | None = None
    wall_time_s: float | None = None
    startup_s: float | None = None
    device: str | None = None
    pretrained_from: str | None = None
    #: the domain of the pretrained model a result used (its own for pretrain; null for scratch and
    #: until train records it)
    source: str | None = None
    model_size: str | None = None
    threads: int | None = None
    provenance: dict[str, Any] | None = None
    schema_version: int = METRICS_VERSION

    def _check(self, path: Path) -> None:
        if self.mode not in MODES:
            raise InputError(path, f"unknown mode {self.mode!r} (expected one of {', '.join(MODES)})")
        if self.metric not in METRICS:
            raise InputError(path, f"unknown metric {self.metric!r} (expected auc or met_resolution)")
        if not (self.size == FULL_SIZE or (isinstance(self.size, int) and self.size >= 0)):
            raise InputError(path, f"size must be a non-negative integer or 'all', got {self.size!r}")
        roc = self.roc
        if roc is not None and len(roc.get("fpr", [])) != len(roc.get("tpr", [])):
            raise InputError(path, "roc must be {'fpr': [...], 'tpr': [...]} of equal lengths")
        if self.schema_version > METRICS_VERSION:
            raise InputError(
                path, f"metrics schema_version {self.schema_version} is newer than this fast2full's {METRICS_VERSION}"
            )

    @property
    def value(self) -> float | None:
        """The primary metric: ``test_auc`` (auc) or ``met_resolution``."""
        return self.test_auc if self.metric == "auc" else self.met_resolution


@dataclass(frozen=True)
class ModelCard(_Record):
    """What a pretrained checkpoint needs to be rebuilt and used (``docs/training.md``, "Model cards").

    ``inputs``: ``features``, ``units``, ``max_objects``, ``n_features``, ``norm`` (mean/std) and how it
    is applied; ``metrics``: test/val metrics on the source test split.  ``output_scale`` and ``load``
    are added by ``export-model``."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("task", "arch", "model_size", "source_domain", "inputs")
    WHAT: ClassVar[str] = "model card"
    #: added by export-model (model_card.json writes both, null included)
    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("output_scale", "load")

    card_version: int = CARD_VERSION
    task: str = ""
    arch: str = ""
    model_size: str = ""
    source_domain: str = ""
    seed: int | None = None
    n_train: int | None = None
    lr: float | None = None
    epochs: float | None = None
    n_params: int | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    targets: Any = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    tensor_meta: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    output_scale: dict[str, Any] | None = None
    load: str | None = None

    def _check(self, path: Path) -> None:
        for k, tp in (("features", list), ("max_objects", int), ("n_features", int)):
            if k not in self.inputs:
                raise InputError(path, f"model card field 'inputs' has no {k!r}")
            if not _type_ok(self.inputs[k], tp):
                raise InputError(path, f"model card field 'inputs.{k}' must be {_describe(tp)}")
        if self.card_version > CARD_VERSION:
            raise InputError(
                path, f"model card_version {self.card_version} is newer than this fast2full's {CARD_VERSION}"
            )

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)


__all__ = ["PointMetrics", "ModelCard", "METRICS_VERSION", "CARD_VERSION", "METRICS"]
