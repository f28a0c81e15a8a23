"""Training jobs: one (task, arch, target, mode, size) point, all seeds x learning rates, one process.

Modes (see ``docs/training.md``):

* ``pretrain`` — the source domain's full train split; early stopping on the full source val split;
  writes ``model.ckpt`` (with its model card) for every seed.
* ``zeroshot`` — the pretrained model of the same seed evaluated on the target test split, no training.
* ``scratch`` — random initialisation, ``n`` labelled target events.
* ``finetune`` — all weights from the pretrained checkpoint, all trained.
* ``freeze`` — weights from the checkpoint, backbone frozen, only the head trained.
* ``dann`` — like ``finetune`` plus a gradient-reversal domain head that sees labelled source events
  and unlabelled target-train events.

The seeds x learning rates of a point are trained together as one vectorised ensemble
(:mod:`fast2full.models.ensemble`); each member has its own initialisation, data order, dropout,
optimiser state, early stopping and best-check weights, so it equals training it alone.

Fair comparison: scratch and every fine-tune mode run the same grid with the same budget in
optimiser steps (:func:`budget_for`) — every learning rate of ``training.learning_rates``, validation
checks every :func:`check_interval` steps on a validation subset of the **target** val split of
:func:`val_subset_size` rows, early stopping after ``training.patience`` checks without improvement but
never before ``training.min_steps``, at most ``training.max_steps``; the learning rate with the lowest
best validation loss is chosen and its best-check weights are evaluated once on the target test split.
The test split never chooses anything.

The training subset of size ``n`` is ``TensorSet.nested(n, seed)``: the same events for every mode and
architecture of a seed, and the size-n set inside the size-2n set.

Modules: :mod:`.settings` (TrainSettings, the step budget, the validation subset), :mod:`.modes` (what
each mode reads and starts from), :mod:`.metrics` (evaluation, baselines), :mod:`.env` (Lightning,
device, threads), :mod:`.job` (JobSpec, run_job, run_jobs, the outputs).  This package re-exports their
public names, so ``from fast2full.train import run_job`` keeps working.
"""

from fast2full.plan import MODES, TASKS
from fast2full.train.env import keep_freed_memory, pick_device, quiet_lightning, set_threads
from fast2full.train.job import JobSpec, run_job, run_jobs
from fast2full.train.metrics import (
    baseline_metrics,
    baseline_sign,
    classification_metrics,
    evaluate,
    met_resolution,
    sample_sizes,
    val_loss,
)
from fast2full.train.settings import TrainSettings, budget_for, check_interval, val_subset_size

__all__ = [
    "TrainSettings",
    "JobSpec",
    "run_job",
    "evaluate",
    "val_subset_size",
    "baseline_metrics",
    "baseline_sign",
    "classification_metrics",
    "met_resolution",
    "sample_sizes",
    "val_loss",
    "quiet_lightning",
    "set_threads",
    "keep_freed_memory",
    "MODES",
    "TASKS",
    "run_jobs",
    "budget_for",
    "check_interval",
    "pick_device",
]
