"""Training settings: the ``training:`` config section as :class:`TrainSettings`, and the rules that
turn it into a point's budget — :func:`budget_for` (optimiser steps, one rule for scratch and every
transfer mode), :func:`check_interval` (steps between validation checks) and :func:`val_subset_size`
(rows of the target val split a point may use)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fast2full.common import Fast2FullError
from fast2full.config import TRAIN_KEYS

#: smallest validation subset used for early stopping / learning-rate choice
VAL_MIN = 20
#: the validation subset is n // VAL_DIVISOR rows (at least VAL_MIN, at most the whole val split)
VAL_DIVISOR = 2


@dataclass
class TrainSettings:
    """The ``training:`` config section as typed settings (budget in optimiser steps)."""

    learning_rates: list[float] = field(default_factory=lambda: [1e-3, 3e-3])
    min_steps: int = 200
    max_steps: int = 3000
    pretrain_min_steps: int = 200
    pretrain_max_steps: int = 3000
    val_every_steps: int = 10
    patience: int = 10
    batch_size: int = 64
    model_size: str = "small"
    source: str = "atlas_like"
    dann_weight: float = 1.0
    accelerator: str = "auto"
    threads: int = 1
    ensemble: bool = True
    #: fast2full.provenance of the outputs (version, git commit, digest of the job's config slice)
    provenance: dict | None = None

    def __post_init__(self) -> None:
        for lo, hi in (("min_steps", "max_steps"), ("pretrain_min_steps", "pretrain_max_steps")):
            if getattr(self, lo) > getattr(self, hi):
                raise Fast2FullError(
                    f"training.{lo} ({getattr(self, lo)}) is above training.{hi} ({getattr(self, hi)})"
                )

    #: the config's training keys (one list, shared with the job's config slice) + dann_weight, which
    #: only the Python API sets (the config schema has no such key)
    KEYS = (*TRAIN_KEYS, "dann_weight")

    @classmethod
    def from_config(cls, config: dict, **overrides: Any) -> TrainSettings:
        tr = config.get("training", {})
        kw: dict[str, Any] = {k: tr[k] for k in cls.KEYS if k in tr}
        if "domains" in config:
            kw["source"] = config["domains"]["source"]
        kw.update({k: v for k, v in overrides.items() if v is not None})
        from fast2full.config import thaw
        from fast2full.provenance import provenance

        kw.setdefault("provenance", provenance(thaw(config)))
        return cls(**kw)


def check_interval(n_val: int, settings: TrainSettings) -> int:
    """Steps between validation checks: ``val_every_steps``, or one pass over the validation subset in
    training batches if that is longer (so validation never costs more than about a third of training)."""
    return max(int(settings.val_every_steps), math.ceil(n_val / max(settings.batch_size, 1)))


def budget_for(mode: str, n_val: int, settings: TrainSettings):
    """The step budget of a point: one rule for scratch and every transfer mode; pretrain has its own caps."""
    from fast2full.models.ensemble import Budget

    pre = mode == "pretrain"
    return Budget(
        min_steps=settings.pretrain_min_steps if pre else settings.min_steps,
        max_steps=settings.pretrain_max_steps if pre else settings.max_steps,
        val_every=check_interval(n_val, settings),
        patience=settings.patience,
    )


def val_subset_size(n_train: int | None, n_val: int) -> int:
    """Rows of the target val split used for early stopping and the learning-rate choice.

    ``min(n_val, max(n_train // 2, 20))``: validation labels scale with the claimed training size, so a
    small-n point does not secretly use many more labelled target events than it reports.  ``None``
    (pretrain, zeroshot) uses the whole split.
    """
    if n_train is None:
        return n_val
    return min(n_val, max(n_train // VAL_DIVISOR, VAL_MIN))
