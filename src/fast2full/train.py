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
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fast2full import taskmetrics
from fast2full import weights as W
from fast2full.common import Fast2FullError, InputError, Progress, atomic_output
from fast2full.config import TRAIN_KEYS
from fast2full.plan import MODES, TASKS, TRANSFER_MODES

log = logging.getLogger("fast2full.train")

#: smallest validation subset used for early stopping / learning-rate choice
VAL_MIN = 20
#: the validation subset is n // VAL_DIVISOR rows (at least VAL_MIN, at most the whole val split)
VAL_DIVISOR = 2
#: most points kept of a ROC curve in metrics.json
ROC_POINTS = 200
#: rows per batch when evaluating (memory only; no effect on results)
EVAL_BATCH = 4096
#: seconds between two progress lines of a training point (steps, losses, points done, time left)
PROGRESS_EVERY_S = 10.0


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


@dataclass
class JobSpec:
    task: str
    arch: str
    target: str
    mode: str
    size: int | str  # int or "all"
    seeds: list[int]
    tensors: Path | dict[tuple[str, str, str], Path]  # a tensor root, or the job's files by (task, domain, split)
    outdir: Path
    pretrained_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise Fast2FullError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.mode not in MODES:
            raise Fast2FullError(f"unknown mode {self.mode!r}; choose one of {MODES}")
        if isinstance(self.size, str):
            if self.size == "all":
                pass
            elif self.size.isdigit():
                self.size = int(self.size)
            else:
                raise Fast2FullError(f"--size must be an integer or 'all', not {self.size!r}")
        if self.mode == "zeroshot":
            self.size = 0
        if self.mode in ("zeroshot", *TRANSFER_MODES) and self.pretrained_dir is None:
            raise Fast2FullError(f"mode {self.mode} needs --pretrained-dir (the pretrain job's outdir)")
        if self.size != "all" and self.mode != "zeroshot" and int(self.size) < 1:
            raise Fast2FullError(f"--size must be >= 1 for mode {self.mode}")


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


# ---- environment ---------------------------------------------------------------------------------
def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and the warnings that do not apply to in-memory tensors."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: override afterwards)

    for name in (
        "lightning.pytorch",
        "lightning.fabric",
        "lightning",
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


#: Lightning warnings that do not apply here (matched by message, only around our own fits)
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",  # in-memory tensors: worker processes only add start-up cost
    r".*Trying to infer the `batch_size`.*",  # batches are tuples of tensors; sizes are passed to log()
    r"The `srun` command is available on your system but is not used.*",  # one process, one device
    r"`isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning 2.6 vs torch 2.13 pytree (FutureWarning)
)


def pick_device(accelerator: str) -> str:
    """``auto``: a GPU when Lightning finds one (its CUDA / MPS accelerators), else the CPU."""
    from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

    acc = accelerator.lower()
    if acc in ("auto", "gpu", "cuda"):
        if CUDAAccelerator.is_available():
            return "cuda"
        if MPSAccelerator.is_available():
            return "mps"
        if acc != "auto":
            raise Fast2FullError(f"--accelerator {accelerator}: no GPU found")
        return "cpu"
    if acc == "cpu":
        return "cpu"
    raise Fast2FullError(f"unknown accelerator {accelerator!r}; choose auto, cpu or gpu")


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(int(threads), 1))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


# ---- metrics -------------------------------------------------------------------------------------
def classification_metrics(score: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> dict[str, Any]:
    """Weighted AUC and ROC (<= ROC_POINTS points) of ``score`` for labels ``y`` (:mod:`fast2full.weights`);
    None if a class has no positive total weight.

    Rank-based, so ``score`` may be a probability, a logit or any discriminant such as HT in GeV.
    ``weight`` None (or all equal): scikit-learn's unweighted ``roc_auc_score``.
    """
    a = W.auc(score, y, weight)
    if a is None:
        return {"test_auc": None, "roc": None}
    return {"test_auc": a, "roc": W.roc(score, y, weight, points=ROC_POINTS)}


def met_resolution(pred: np.ndarray, true: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted RMS of predicted minus true MET per component (GeV), averaged over x and y."""
    return W.resolution(pred, true, weight)


def baseline_metrics(ts, task: str, orient=None) -> dict[str, Any]:
    """The tensors' rule-based baseline evaluated (with the event weights) on the split ``ts``.

    For classification the baseline is a one-variable discriminant; its direction (is a larger value
    more signal-like?) is fixed on ``orient`` (the validation split, weighted), never on the evaluated
    split.  ``test_auc_unweighted`` / ``met_resolution_unweighted``: the same ignoring the weights.
    """
    name = ts.meta.get("baseline")
    name = name if isinstance(name, str) else json.dumps(name) if name else "baseline"
    if task == "met":
        return {
            "name": name,
            "test_auc": None,
            "met_resolution": met_resolution(ts.baseline, ts.y, ts.weight),
            "met_resolution_unweighted": met_resolution(ts.baseline, ts.y),
        }
    sign = 1.0
    if orient is not None:
        val_auc = W.auc(orient.baseline, orient.y, orient.weight)
        if val_auc is not None and val_auc < 0.5:
            sign = -1.0
            name = f"{name} [reversed: lower is more signal-like on the validation split]"
    return {
        "name": name,
        "test_auc": W.auc(sign * ts.baseline, ts.y, ts.weight),
        "met_resolution": None,
        "test_auc_unweighted": W.auc(sign * ts.baseline, ts.y),
    }


def sample_sizes(ts) -> dict[str, Any]:
    """Rows, total weight and effective sample size (sum w)^2 / sum w^2 of a split (per class for labels)."""
    return W.count_summary(ts.weight, ts.y if ts.y.ndim == 1 else None)


def evaluate(module, ts, with_prediction: bool = False) -> dict[str, Any]:
    """test_loss, test_auc, roc and met_resolution of ``module`` on the TensorSet ``ts``, all weighted:
    the loss with the set's training weights (class-balanced), the metrics with the event weights.
    ``with_prediction``: also ``prediction``, the per-event score or MET (x, y) in GeV (numpy)."""
    import torch

    from fast2full.models.data import set_weights

    x, m, y, _ = ts.torch()
    b = torch.from_numpy(ts.baseline)
    module.eval()
    dev = next(module.parameters()).device
    with torch.no_grad():
        out = torch.cat(
            [
                module(x[i : i + EVAL_BATCH].to(dev), m[i : i + EVAL_BATCH].to(dev)).float().cpu()
                for i in range(0, len(x), EVAL_BATCH)
            ]
        )
        loss = float(module.task_loss(out, y, b, set_weights(ts)))
        pred = module.to_prediction(out, b).numpy()
    res: dict[str, Any] = {"test_loss": loss}
    if module.is_classifier:
        res |= classification_metrics(pred, ts.y, ts.weight)
        res["test_auc_unweighted"] = W.auc(pred, ts.y)
        res["met_resolution"] = None
    else:
        res |= {
            "test_auc": None,
            "roc": None,
            "met_resolution": met_resolution(pred, ts.y, ts.weight),
            "met_resolution_unweighted": met_resolution(pred, ts.y),
        }
    if with_prediction:
        res["prediction"] = pred
    return res


def baseline_sign(task: str, orient) -> float:
    """+1, or -1 where the classification baseline is reversed on the validation split (as
    :func:`baseline_metrics`); MET: +1."""
    if task == "met" or orient is None:
        return 1.0
    a = W.auc(orient.baseline, orient.y, orient.weight)
    return -1.0 if a is not None and a < 0.5 else 1.0


def val_loss(module, ts) -> float:
    return evaluate(module, ts)["test_loss"]


# ---- a job ---------------------------------------------------------------------------------------
def _tensor_path(tensors: Path | dict[tuple[str, str, str], Path], task: str, domain: str, split: str) -> Path:
    """The tensor file of (task, domain, split): from the job's own input files (a mapping, what the
    workflow passes with ``--inputs``) or under a tensor root (``--tensors``, by hand)."""
    if isinstance(tensors, dict):
        try:
            return Path(tensors[(task, domain, split)])
        except KeyError:
            raise Fast2FullError(
                f"no {task}/{domain}/{split} tensor file among the job's --inputs "
                f"({', '.join(str(p) for p in tensors.values())})"
            ) from None
    return Path(tensors) / task / domain / f"{split}.parquet"


def _load_split(tensors: Path, task: str, domain: str, split: str, cache: dict | None = None):
    from fast2full import tensorio

    p = _tensor_path(tensors, task, domain, split)
    if cache is not None and p in cache:
        return cache[p]
    if not p.is_file():
        raise InputError(p, "tensor file not found (run `fast2full tensorize` first)")
    ts = tensorio.load(p)
    if len(ts) == 0:
        raise InputError(p, f"no events in the {split} split of {task}/{domain}")
    if ts.meta.get("task") not in (None, task):
        raise InputError(p, f"tensor file is for task {ts.meta.get('task')!r}, not {task!r}")
    if cache is not None:
        cache[p] = ts
    return ts


def _check_compatible(card: dict, meta: dict, ckpt: Path, path: Path) -> None:
    inp = card.get("inputs", {})
    if (
        list(inp.get("features", [])) != list(meta.get("features", []))
        or inp.get("max_objects") != meta.get("max_objects")
        or inp.get("n_features") != meta.get("n_features")
    ):
        raise InputError(
            path,
            f"tensor features/shape {meta.get('features')} x {meta.get('max_objects')} do not "
            f"match the pretrained model {ckpt} ({inp.get('features')} x {inp.get('max_objects')})",
        )
    norm_a, norm_b = inp.get("norm"), meta.get("norm")
    if (
        norm_a
        and norm_b
        and not (
            np.allclose(norm_a["mean"], norm_b["mean"], rtol=1e-5)
            and np.allclose(norm_a["std"], norm_b["std"], rtol=1e-5)
        )
    ):
        raise InputError(
            path,
            f"tensor normalisation differs from the pretrained model's ({ckpt}): "
            "tensorize every domain with the source normalisation",
        )


def _model_config(arch: str, settings: TrainSettings, meta: dict) -> dict:
    return {
        "arch": arch,
        "model_size": settings.model_size,
        "n_features": int(meta["n_features"]),
        "max_objects": int(meta["max_objects"]),
        "features": list(meta.get("features", [])),
        "units": list(meta.get("units", [])),
        "norm": meta.get("norm"),
        "targets": meta.get("targets"),
    }


def _card(spec: JobSpec, settings: TrainSettings, meta: dict, metrics: dict) -> dict:
    return {
        "task": spec.task,
        "arch": spec.arch,
        "model_size": settings.model_size,
        "source_domain": spec.target,
        "seed": metrics["seed"],
        "n_train": metrics["n_train"],
        "lr": metrics["lr"],
        "epochs": metrics["epochs"],
        "n_params": metrics["n_params"],
        "inputs": {
            "features": list(meta.get("features", [])),
            "units": list(meta.get("units", [])),
            "max_objects": int(meta["max_objects"]),
            "n_features": int(meta["n_features"]),
            "norm": meta.get("norm"),
            "normalised": "x' = (x - mean) / std on real objects; padded slots 0",
        },
        "targets": meta.get("targets"),
        "metrics": {k: metrics[k] for k in ("test_auc", "met_resolution", "test_loss", "val_loss")},
        "baseline": metrics["baseline"],
        "tensor_meta": {k: meta.get(k) for k in ("schema_version", "domain", "baseline", "class_balance")},
        "provenance": metrics.get("provenance"),
    }


def _write_json(path: Path, obj: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")


def _write_grid(path: Path, fits: list) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lr", "best_val_loss", "best_step", "steps", "stop", "checks"])
        for f in fits:
            w.writerow([f.lr, f.best_val_loss, f.best_step, f.steps, f.stop, f.checks])


def _write_history(path: Path, fit) -> None:
    """``logs/lr{lr}/metrics.csv``: train loss (mean since the last check) and val loss per check."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "train_loss", "val_loss"])
        for h in fit.history:
            w.writerow([h["step"], h["train_loss"], h["val_loss"]])


def run_jobs(specs: list[JobSpec], settings: TrainSettings, t_start: float | None = None) -> list[dict]:
    """Several points in one process: imports and tensor files are paid for once (see docs/training.md)."""
    cache: dict = {}
    out: list[dict] = []
    t_jobs = time.perf_counter()
    for i, spec in enumerate(specs):
        point = (i, len(specs), time.perf_counter() - t_jobs)
        out += run_job(spec, settings, t_start=t_start if i == 0 else None, cache=cache, point=point)
    return out


def _pretrained_state(ckpt_path: Path, spec: JobSpec, meta: dict) -> dict:
    """The pretrained checkpoint's state dict, after checking it fits the job's task, arch and tensors."""
    from fast2full.models import load_pretrained

    if not ckpt_path.is_file():
        raise InputError(ckpt_path, "pretrained checkpoint not found (run the pretrain job first)")
    probe = load_pretrained(ckpt_path)
    _check_compatible(probe.model_card, meta, ckpt_path, _tensor_path(spec.tensors, spec.task, spec.target, "test"))
    if probe.task != spec.task:
        raise InputError(ckpt_path, f"checkpoint is for task {probe.task!r}, not {spec.task!r}")
    if probe.hparams.model_config["arch"] != spec.arch:
        raise InputError(ckpt_path, f"checkpoint is a {probe.hparams.model_config['arch']}, not {spec.arch}")
    return {k: v.detach().clone() for k, v in probe.state_dict().items()}


def _initial_state(spec: JobSpec, settings: TrainSettings, meta: dict, seed: int, pretrained: dict | None) -> dict:
    """A member's initial weights: random with its seed (pretrain, scratch), or its seed's pretrained
    weights (+ a new domain head, random with its seed, for DANN)."""
    import torch

    from fast2full.models.ensemble import Net

    torch.manual_seed(seed)
    net = Net(
        spec.arch,
        spec.task,
        int(meta["n_features"]),
        int(meta["max_objects"]),
        settings.model_size,
        dann=spec.mode == "dann",
    )
    state = net.state_dict()
    if pretrained is not None:
        for k in state:
            if not k.startswith("domain_head."):
                state[k] = pretrained[k].clone()
    return state


def _task_module(spec: JobSpec, settings: TrainSettings, meta: dict, state: dict, lr: float | None):
    from fast2full.models import TaskModule, build_backbone

    module = TaskModule(
        build_backbone(spec.arch, int(meta["n_features"]), int(meta["max_objects"]), settings.model_size),
        spec.task,
        lr=lr or 1e-3,
        freeze_backbone=spec.mode == "freeze",
        dann_weight=settings.dann_weight,
        model_config=_model_config(spec.arch, settings, meta),
    )
    module.load_state_dict({k: v for k, v in state.items() if not k.startswith("domain_head.")})
    return module


def run_job(
    spec: JobSpec,
    settings: TrainSettings,
    t_start: float | None = None,
    cache: dict | None = None,
    point: tuple[int, int, float] = (0, 1, 0.0),
) -> list[dict]:
    """Run every seed of one training point (all seeds x learning rates as one ensemble); write
    metrics.json and predictions.parquet (+ model.ckpt for pretrain) per seed.

    ``t_start``: when the process started (the start-up cost reported is from then until the tensors are
    loaded); ``cache``: tensor sets already loaded by an earlier point of the same process; ``point``:
    (index of this point, points of the job, seconds the job's earlier points took), for the progress
    lines (every ``PROGRESS_EVERY_S``: steps, losses of the latest check, points done, time left).
    """
    t_start = time.perf_counter() if t_start is None else t_start
    quiet_lightning()
    set_threads(settings.threads)

    from fast2full import predictions as P
    from fast2full.models import load_pretrained, n_params
    from fast2full.models.checkpoint import save_checkpoint
    from fast2full.models.ensemble import Data, Member, train_members

    if spec.mode == "pretrain" and spec.target != settings.source:
        raise Fast2FullError(f"pretrain runs on the source domain {settings.source!r}, not {spec.target!r}")
    train_all = None if spec.mode == "zeroshot" else _load_split(spec.tensors, spec.task, spec.target, "train", cache)
    val_all = _load_split(spec.tensors, spec.task, spec.target, "val", cache)
    test = _load_split(spec.tensors, spec.task, spec.target, "test", cache)
    meta = test.meta
    source_train = None
    if spec.mode == "dann":
        source_train = _load_split(spec.tensors, spec.task, settings.source, "train", cache)
    baseline = baseline_metrics(test, spec.task, orient=val_all)
    sign = baseline_sign(spec.task, val_all)
    startup_s = time.perf_counter() - t_start
    log.info(
        "%s/%s/%s/%s/n%s: start-up (imports + tensors) %.2f s",
        spec.task,
        spec.arch,
        spec.target,
        spec.mode,
        spec.size,
        startup_s,
    )
    device = pick_device(settings.accelerator)
    t_job = time.perf_counter()

    ckpts = (
        {s: Path(spec.pretrained_dir) / f"seed{s}" / "model.ckpt" for s in spec.seeds}
        if spec.pretrained_dir and spec.mode != "scratch" and spec.mode != "pretrain"
        else {}
    )
    pretrained = {s: _pretrained_state(p, spec, meta) for s, p in ckpts.items()}

    # ---- train every seed x learning rate together
    fits: dict[int, list] = {s: [] for s in spec.seeds}
    subsets: dict[int, tuple] = {}
    budget = None
    capped, n_train = False, 0
    if spec.mode != "zeroshot":
        full = spec.size == "all"
        members = []
        for seed in spec.seeds:
            order = np.random.default_rng(seed).permutation(len(train_all))  # TensorSet.nested's order
            rows = order if full else order[: min(int(spec.size), len(train_all))]
            n_train = len(rows)
            capped = not full and n_train < int(spec.size)
            n_val = val_subset_size(None if full else n_train, len(val_all))
            vrows = np.random.default_rng(seed).permutation(len(val_all))[:n_val]
            subsets[seed] = (rows, vrows)
            init = _initial_state(spec, settings, meta, seed, pretrained.get(seed))
            for lr in settings.learning_rates:
                members.append(
                    Member(seed=seed, lr=float(lr), state=init, train_rows=rows, val_rows=None if full else vrows)
                )
        n_val_used = len(subsets[spec.seeds[0]][1])
        budget = budget_for(spec.mode, n_val_used, settings)
        progress = Progress(total=budget.max_steps, what="steps", every_s=PROGRESS_EVERY_S, logger=log)
        last = [0]

        def on_check(step: int, active: int, train_losses: list[float], val_losses: list[float]) -> None:
            def note() -> str:
                vals = np.asarray(val_losses, dtype=float)
                b = int(np.argmin(np.where(np.isfinite(vals), vals, np.inf))) if len(vals) else 0
                done_pts, n_pts, before_s = point
                left = progress.left_s()  # at most: early stopping ends a point sooner
                this_s = time.perf_counter() - t_job + left
                job_left = left + (n_pts - done_pts - 1) * (before_s + this_s) / (done_pts + 1)
                return (
                    f"{spec.task}/{spec.arch}/{spec.target}/{spec.mode}/n{spec.size} check at step {step}: "
                    f"train loss {train_losses[b]:.4g}, val loss {vals[b]:.4g} (lowest val of "
                    f"{len(vals)} members, {active} still training); {done_pts}/{n_pts} points of the job "
                    f"done, at most {job_left:.0f} s left in the job"
                )

            progress.update(step - last[0], note=note)
            last[0] = step

        val_data = Data.from_set(val_all, device)
        results = train_members(
            members,
            Data.from_set(train_all, device),
            val_data,
            arch=spec.arch,
            task=spec.task,
            n_features=int(meta["n_features"]),
            max_objects=int(meta["max_objects"]),
            model_size=settings.model_size,
            budget=budget,
            batch_size=settings.batch_size,
            freeze_backbone=spec.mode == "freeze",
            dann=spec.mode == "dann",
            dann_weight=settings.dann_weight,
            source=Data.from_set(source_train, device) if source_train is not None else None,
            unlabelled=Data.from_set(train_all, device) if spec.mode == "dann" else None,
            ensemble=settings.ensemble,
            device=device,
            on_check=on_check,
        )
        progress.done()
        for r in results:
            fits[r.seed].append(r)
    train_s = time.perf_counter() - t_job

    out = []
    for seed in spec.seeds:
        t_seed = time.perf_counter()
        seed_dir = Path(spec.outdir) / f"seed{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        chosen = None
        if spec.mode == "zeroshot":
            module = load_pretrained(ckpts[seed])
            val, train = val_all, None
        else:
            chosen = min(fits[seed], key=lambda f: (f.best_val_loss, f.lr))
            module = _task_module(spec, settings, meta, chosen.state, chosen.lr)
            rows, vrows = subsets[seed]
            train = train_all.subset(rows)
            val = val_all.nested(len(vrows), seed) if spec.size != "all" else val_all
            _write_grid(seed_dir / "grid.csv", fits[seed])
            # logs/: the declared directory of the loss histories (plan.seed_dirs), one lr{lr}/ per
            # learning rate of this grid (none left from an earlier grid)
            shutil.rmtree(seed_dir / "logs", ignore_errors=True)
            for f in fits[seed]:
                log_dir = seed_dir / "logs" / f"lr{f.lr:g}"
                log_dir.mkdir(parents=True, exist_ok=True)
                _write_history(log_dir / "metrics.csv", f)
        module.to("cpu")
        v_loss = evaluate(module, val)["test_loss"]
        ev = evaluate(module, test, with_prediction=True)
        n_mem = max(len(spec.seeds) * len(settings.learning_rates), 1)
        eff_batch = min(settings.batch_size, n_train) if n_train else 0
        metrics: dict[str, Any] = {
            "task": spec.task,
            "arch": spec.arch,
            "target": spec.target,
            "mode": spec.mode,
            "size": spec.size if spec.size == "all" else int(spec.size),
            "n_train": int(n_train),
            "capped": bool(capped),
            "n_val": len(val),
            "n_test": len(test),
            "seed": int(seed),
            "metric": "met_resolution" if spec.task == "met" else "auc",
            "test_auc": ev["test_auc"],
            "roc": ev["roc"],
            "test_loss": ev["test_loss"],
            "val_loss": v_loss,
            "met_resolution": ev["met_resolution"],
            "baseline": baseline,
            "test_auc_unweighted": ev.get("test_auc_unweighted"),
            "met_resolution_unweighted": ev.get("met_resolution_unweighted"),
            # qg: AUC in jet-pT bins, met: resolution per component in true-MET bins, each with the
            # baseline in the same bins (fast2full.taskmetrics); None for sigbkg
            "binned": taskmetrics.evaluate_binned(spec.task, test, ev["prediction"], baseline=sign * test.baseline),
            # effective sample sizes (sum w)^2 / sum w^2 next to the row counts (fast2full.weights)
            "ess_train": round(W.ess(train.weight), 3) if train is not None else 0.0,
            "ess_val": round(W.ess(val.weight), 3),
            "ess_test": round(W.ess(test.weight), 3),
            "sample_sizes": {
                "train": sample_sizes(train) if train is not None else None,
                "val": sample_sizes(val),
                "test": sample_sizes(test),
            },
            "lr": chosen.lr if chosen else None,
            # the budget in optimiser steps: steps of the chosen run, how it ended, the whole grid
            "steps": chosen.steps if chosen else 0,
            "best_step": chosen.best_step if chosen else None,
            "stopped": chosen.stop if chosen else None,
            "hit_cap": bool(chosen.hit_cap) if chosen else False,
            "checks": chosen.checks if chosen else 0,
            "epochs": round(chosen.steps * eff_batch / n_train, 3) if chosen else 0,
            "best_epoch": round(chosen.best_step * eff_batch / n_train, 3) if chosen else None,
            "steps_total": sum(f.steps for f in fits[seed]),
            "budget": vars(budget).copy() if budget else None,
            "grid": [
                {
                    "lr": f.lr,
                    "best_val_loss": f.best_val_loss,
                    "best_step": f.best_step,
                    "steps": f.steps,
                    "stopped": f.stop,
                    "hit_cap": f.hit_cap,
                }
                for f in fits[seed]
            ],
            # DANN: the unlabelled target-train events (labels unused) and source events the run saw
            "n_unlabelled": chosen.n_unlabelled_seen if chosen else 0,
            "n_unlabelled_pool": len(train_all) if spec.mode == "dann" else 0,
            "n_source": chosen.n_source_seen if chosen else 0,
            "n_params": n_params(module),
            "n_params_trainable": n_params(module, trainable_only=True) if spec.mode != "zeroshot" else 0,
            "ensemble_members": n_mem if spec.mode != "zeroshot" else 0,
            # the job's training time shared out over its seeds, plus this seed's evaluation
            "wall_time_s": round(train_s / len(spec.seeds) + time.perf_counter() - t_seed, 3),
            "startup_s": round(startup_s, 3),
            "device": device if spec.mode != "zeroshot" else "cpu",
            "pretrained_from": str(ckpts[seed]) if seed in ckpts else None,
            "model_size": settings.model_size,
            "threads": settings.threads,
            "provenance": settings.provenance,
        }
        P.write(
            seed_dir / P.FILENAME,
            P.from_tensorset(spec.task, test, ev["prediction"], sign * test.baseline if spec.task != "met" else None),
            provenance=settings.provenance,
        )
        if spec.mode == "pretrain":
            save_checkpoint(module, seed_dir / "model.ckpt", _card(spec, settings, meta, metrics))
        _write_json(seed_dir / "metrics.json", metrics)
        out.append(metrics)
        main = metrics["met_resolution"] if spec.task == "met" else metrics["test_auc"]
        log.info(
            "seed %d: n_train=%d lr=%s steps=%s (%s) %s=%s (baseline %s)",
            seed,
            n_train,
            metrics["lr"],
            metrics["steps"],
            metrics["stopped"],
            metrics["metric"],
            main,
            baseline["met_resolution"] if spec.task == "met" else baseline["test_auc"],
        )
    return out


__all__ = [
    "TrainSettings",
    "JobSpec",
    "run_job",
    "evaluate",
    "val_subset_size",
    "baseline_metrics",
    "classification_metrics",
    "met_resolution",
    "quiet_lightning",
    "set_threads",
    "MODES",
    "run_jobs",
    "budget_for",
    "check_interval",
    "pick_device",
]
