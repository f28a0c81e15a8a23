"""Training jobs: one (task, arch, target, mode, size) point, all seeds, one process.

Modes (see ``docs/training.md``):

* ``pretrain`` — the source domain's full train split; early stopping on the full source val split;
  writes ``model.ckpt`` (with its model card) for every seed.
* ``zeroshot`` — the pretrained model of the same seed evaluated on the target test split, no training.
* ``scratch`` — random initialisation, ``n`` labelled target events.
* ``finetune`` — all weights from the pretrained checkpoint, all trained.
* ``freeze`` — weights from the checkpoint, backbone frozen, only the head trained.
* ``dann`` — like ``finetune`` plus a gradient-reversal domain head that sees labelled source events
  and unlabelled target-train events.

Fair comparison: scratch and every fine-tune mode run the same grid — every learning rate of config
``training.learning_rates``, each with early stopping (patience ``training.patience``, at most
``training.max_epochs``) on a validation subset of the **target** val split of
:func:`val_subset_size` rows; the learning rate with the lowest best validation loss is chosen and its
best-epoch weights are evaluated once on the target test split.  The test split never chooses anything.

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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fast2full import weights as W
from fast2full.common import Fast2FullError, InputError, Progress, atomic_output

log = logging.getLogger("fast2full.train")

MODES = ("pretrain", "zeroshot", "scratch", "finetune", "freeze", "dann")
FINETUNE_MODES = ("finetune", "freeze", "dann")
TASKS = ("sigbkg", "qg", "met")
#: smallest validation subset used for early stopping / learning-rate choice
VAL_MIN = 20
#: the validation subset is n // VAL_DIVISOR rows (at least VAL_MIN, at most the whole val split)
VAL_DIVISOR = 2
#: most points kept of a ROC curve in metrics.json
ROC_POINTS = 200
#: rows per batch when evaluating (memory only; no effect on results)
EVAL_BATCH = 4096


@dataclass
class TrainSettings:
    """The ``training:`` config section as typed settings."""

    learning_rates: list[float] = field(default_factory=lambda: [1e-3, 3e-3])
    max_epochs: int = 20
    pretrain_max_epochs: int = 20
    patience: int = 4
    batch_size: int = 64
    model_size: str = "small"
    source: str = "atlas_like"
    dann_weight: float = 1.0
    accelerator: str = "auto"
    threads: int = 1

    @classmethod
    def from_config(cls, config: dict, **overrides: Any) -> "TrainSettings":
        tr = config.get("training", {})
        kw: dict[str, Any] = {k: tr[k] for k in ("learning_rates", "max_epochs", "pretrain_max_epochs", "patience",
                                                  "batch_size", "model_size") if k in tr}
        if "domains" in config:
            kw["source"] = config["domains"]["source"]
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)


@dataclass
class JobSpec:
    task: str
    arch: str
    target: str
    mode: str
    size: int | str  # int or "all"
    seeds: list[int]
    tensors: Path
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
        if self.mode in ("zeroshot",) + FINETUNE_MODES and self.pretrained_dir is None:
            raise Fast2FullError(f"mode {self.mode} needs --pretrained-dir (the pretrain job's outdir)")
        if self.size != "all" and self.mode != "zeroshot" and int(self.size) < 1:
            raise Fast2FullError(f"--size must be >= 1 for mode {self.mode}")


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

    for name in ("lightning.pytorch", "lightning.fabric", "lightning",
                 "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


#: Lightning warnings that do not apply here (matched by message, only around our own fits)
_IGNORED_WARNINGS = (
    r".*does not have many workers.*",  # in-memory tensors: worker processes only add start-up cost
    r".*Trying to infer the `batch_size`.*",  # batches are tuples of tensors; sizes are passed to log()
    r"The `srun` command is available on your system but is not used.*",  # one process, one device
    r"`isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning 2.6 vs torch 2.13 pytree (FutureWarning)
)


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
        return {"name": name, "test_auc": None, "met_resolution": met_resolution(ts.baseline, ts.y, ts.weight),
                "met_resolution_unweighted": met_resolution(ts.baseline, ts.y)}
    sign = 1.0
    if orient is not None:
        val_auc = W.auc(orient.baseline, orient.y, orient.weight)
        if val_auc is not None and val_auc < 0.5:
            sign = -1.0
            name = f"{name} [reversed: lower is more signal-like on the validation split]"
    return {"name": name, "test_auc": W.auc(sign * ts.baseline, ts.y, ts.weight), "met_resolution": None,
            "test_auc_unweighted": W.auc(sign * ts.baseline, ts.y)}


def sample_sizes(ts) -> dict[str, Any]:
    """Rows, total weight and effective sample size (sum w)^2 / sum w^2 of a split (per class for labels)."""
    return W.count_summary(ts.weight, ts.y if ts.y.ndim == 1 else None)


def evaluate(module, ts) -> dict[str, Any]:
    """test_loss, test_auc, roc and met_resolution of ``module`` on the TensorSet ``ts``, all weighted:
    the loss with the set's training weights (class-balanced), the metrics with the event weights."""
    import torch

    from fast2full.models.data import set_weights

    x, m, y, _ = ts.torch()
    b = torch.from_numpy(ts.baseline)
    module.eval()
    dev = next(module.parameters()).device
    with torch.no_grad():
        out = torch.cat([module(x[i:i + EVAL_BATCH].to(dev), m[i:i + EVAL_BATCH].to(dev)).float().cpu()
                         for i in range(0, len(x), EVAL_BATCH)])
        loss = float(module.task_loss(out, y, b, set_weights(ts)))
        pred = module.to_prediction(out, b).numpy()
    res: dict[str, Any] = {"test_loss": loss}
    if module.is_classifier:
        res |= classification_metrics(pred, ts.y, ts.weight)
        res["test_auc_unweighted"] = W.auc(pred, ts.y)
        res["met_resolution"] = None
    else:
        res |= {"test_auc": None, "roc": None, "met_resolution": met_resolution(pred, ts.y, ts.weight),
                "met_resolution_unweighted": met_resolution(pred, ts.y)}
    return res


def val_loss(module, ts) -> float:
    return evaluate(module, ts)["test_loss"]


# ---- one fit -------------------------------------------------------------------------------------
@dataclass
class FitResult:
    lr: float
    best_val_loss: float
    best_epoch: int
    epochs: int
    steps: int
    state_dict: dict
    device: str


def _best_state_callback():
    import lightning.pytorch as pl

    class BestState(pl.Callback):
        """Keeps the weights of the epoch with the lowest val_loss in memory (no checkpoint files)."""

        def __init__(self) -> None:
            self.best = math.inf
            self.epoch = -1
            self.state: dict | None = None

        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            v = trainer.callback_metrics.get("val_loss")
            if v is not None and float(v) < self.best:
                self.best, self.epoch = float(v), trainer.current_epoch
                self.state = {k: t.detach().clone() for k, t in pl_module.state_dict().items()}

    return BestState()


def _trainer(pl, accelerator: str, max_epochs: int, patience: int, best, log_dir: Path, version: str, cpu: bool):
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.plugins.environments import LightningEnvironment

    return pl.Trainer(
        accelerator=accelerator, devices=1, max_epochs=max_epochs,
        callbacks=[EarlyStopping("val_loss", patience=patience, mode="min"), best],
        logger=CSVLogger(log_dir, name="", version=version), log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=cpu,  # bitwise reproducible on CPU; GPU scatter ops are not
        # one process, one device: never let a SLURM allocation's variables turn this into a multi-task run
        plugins=[LightningEnvironment()],
    )


def fit(module, datamodule, *, max_epochs: int, patience: int, log_dir: Path, lr: float,
        accelerator: str = "auto") -> FitResult:
    """Train ``module`` with early stopping on ``val_loss``; restore and return its best-epoch weights."""
    import lightning.pytorch as pl
    import torch

    version = f"lr{lr:g}"
    shutil.rmtree(log_dir / version, ignore_errors=True)
    best = _best_state_callback()
    cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    module.lr = lr
    with warnings.catch_warnings():
        for pattern in _IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        trainer = _trainer(pl, accelerator, max_epochs, patience, best, log_dir, version, cpu)
        trainer.fit(module, datamodule=datamodule)
    if best.state is None:
        raise Fast2FullError(f"training at lr={lr} produced no finite validation loss")
    module.load_state_dict(best.state)
    return FitResult(lr=lr, best_val_loss=best.best, best_epoch=best.epoch, epochs=trainer.current_epoch,
                     steps=int(trainer.global_step), state_dict=best.state,
                     device=str(trainer.strategy.root_device))


# ---- a job ---------------------------------------------------------------------------------------
def _tensor_path(tensors: Path, task: str, domain: str, split: str) -> Path:
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
    if list(inp.get("features", [])) != list(meta.get("features", [])) or \
            inp.get("max_objects") != meta.get("max_objects") or inp.get("n_features") != meta.get("n_features"):
        raise InputError(path, f"tensor features/shape {meta.get('features')} x {meta.get('max_objects')} do not "
                               f"match the pretrained model {ckpt} ({inp.get('features')} x {inp.get('max_objects')})")
    norm_a, norm_b = inp.get("norm"), meta.get("norm")
    if norm_a and norm_b and not (np.allclose(norm_a["mean"], norm_b["mean"], rtol=1e-5)
                                  and np.allclose(norm_a["std"], norm_b["std"], rtol=1e-5)):
        raise InputError(path, f"tensor normalisation differs from the pretrained model's ({ckpt}): "
                               "tensorize every domain with the source normalisation")


def _model_config(arch: str, settings: TrainSettings, meta: dict) -> dict:
    return {"arch": arch, "model_size": settings.model_size, "n_features": int(meta["n_features"]),
            "max_objects": int(meta["max_objects"]), "features": list(meta.get("features", [])),
            "units": list(meta.get("units", [])), "norm": meta.get("norm"), "targets": meta.get("targets")}


def _card(spec: JobSpec, settings: TrainSettings, meta: dict, metrics: dict) -> dict:
    return {
        "task": spec.task, "arch": spec.arch, "model_size": settings.model_size,
        "source_domain": spec.target, "seed": metrics["seed"], "n_train": metrics["n_train"],
        "lr": metrics["lr"], "epochs": metrics["epochs"], "n_params": metrics["n_params"],
        "inputs": {"features": list(meta.get("features", [])), "units": list(meta.get("units", [])),
                   "max_objects": int(meta["max_objects"]), "n_features": int(meta["n_features"]),
                   "norm": meta.get("norm"), "normalised": "x' = (x - mean) / std on real objects; padded slots 0"},
        "targets": meta.get("targets"),
        "metrics": {k: metrics[k] for k in ("test_auc", "met_resolution", "test_loss", "val_loss")},
        "baseline": metrics["baseline"],
        "tensor_meta": {k: meta.get(k) for k in ("schema_version", "domain", "baseline", "class_balance")},
    }


def _write_json(path: Path, obj: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")


def _write_grid(path: Path, fits: list[FitResult]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lr", "best_val_loss", "best_epoch", "epochs", "steps"])
        for f in fits:
            w.writerow([f.lr, f.best_val_loss, f.best_epoch, f.epochs, f.steps])


def run_jobs(specs: list[JobSpec], settings: TrainSettings, t_start: float | None = None) -> list[dict]:
    """Several points in one process: imports and tensor files are paid for once (see docs/training.md)."""
    cache: dict = {}
    out: list[dict] = []
    for i, spec in enumerate(specs):
        out += run_job(spec, settings, t_start=t_start if i == 0 else None, cache=cache)
    return out


def run_job(spec: JobSpec, settings: TrainSettings, t_start: float | None = None, cache: dict | None = None
            ) -> list[dict]:
    """Run every seed of one training point; write metrics.json (+ model.ckpt for pretrain) per seed.

    ``t_start``: when the process started (the start-up cost reported is from then until the tensors are
    loaded); ``cache``: tensor sets already loaded by an earlier point of the same process.
    """
    t_start = time.perf_counter() if t_start is None else t_start
    quiet_lightning()
    set_threads(settings.threads)
    import lightning.pytorch as pl
    import torch

    from fast2full.models import TaskModule, TensorDataModule, build_backbone, load_pretrained, n_params
    from fast2full.models.checkpoint import save_checkpoint

    if spec.mode == "pretrain" and spec.target != settings.source:
        raise Fast2FullError(f"pretrain runs on the source domain {settings.source!r}, not {spec.target!r}")
    train_all = None if spec.mode == "zeroshot" else _load_split(spec.tensors, spec.task, spec.target, "train", cache)
    val_all = _load_split(spec.tensors, spec.task, spec.target, "val", cache)
    test = _load_split(spec.tensors, spec.task, spec.target, "test", cache)
    meta = test.meta
    source_train = unlabelled = None
    if spec.mode == "dann":
        source_train = _load_split(spec.tensors, spec.task, settings.source, "train", cache)
        unlabelled = train_all
    baseline = baseline_metrics(test, spec.task, orient=val_all)
    startup_s = time.perf_counter() - t_start
    log.info("%s/%s/%s/%s/n%s: start-up (imports + tensors) %.2f s", spec.task, spec.arch, spec.target, spec.mode,
             spec.size, startup_s)

    results = []
    progress = Progress(total=len(spec.seeds), what="seeds", every_s=0.0, logger=log)
    for seed in spec.seeds:
        t_seed = time.perf_counter()
        seed_dir = Path(spec.outdir) / f"seed{seed}"
        ckpt_path = Path(spec.pretrained_dir) / f"seed{seed}" / "model.ckpt" if spec.pretrained_dir else None
        if ckpt_path is not None and spec.mode != "scratch":
            if not ckpt_path.is_file():
                raise InputError(ckpt_path, "pretrained checkpoint not found (run the pretrain job first)")
            probe = load_pretrained(ckpt_path)
            _check_compatible(probe.model_card, meta, ckpt_path, _tensor_path(spec.tensors, spec.task, spec.target,
                                                                                "test"))
            if probe.task != spec.task:
                raise InputError(ckpt_path, f"checkpoint is for task {probe.task!r}, not {spec.task!r}")
            if probe.hparams.model_config["arch"] != spec.arch:
                raise InputError(ckpt_path, f"checkpoint is a {probe.hparams.model_config['arch']}, not {spec.arch}")

        seed_dir.mkdir(parents=True, exist_ok=True)
        fits: list[FitResult] = []
        capped = False
        if spec.mode == "zeroshot":
            module = load_pretrained(ckpt_path)
            n_train, n_val_used, chosen = 0, len(val_all), None
        else:
            full = spec.size == "all"
            train = train_all.nested(None if full else int(spec.size), seed)
            n_train = len(train)
            capped = not full and n_train < int(spec.size)
            val = val_all.nested(val_subset_size(None if full else n_train, len(val_all)), seed)
            n_val_used = len(val)
            dm = TensorDataModule(train, val, batch_size=settings.batch_size, seed=seed, source=source_train,
                                  unlabelled=unlabelled)
            max_epochs = settings.pretrain_max_epochs if spec.mode == "pretrain" else settings.max_epochs
            for lr in settings.learning_rates:
                pl.seed_everything(seed, verbose=False)
                if spec.mode in ("pretrain", "scratch"):
                    backbone = build_backbone(spec.arch, int(meta["n_features"]), int(meta["max_objects"]),
                                              settings.model_size)
                    module = TaskModule(backbone, spec.task, lr=lr, model_config=_model_config(spec.arch, settings,
                                                                                               meta))
                else:
                    module = load_pretrained(ckpt_path, lr=lr, freeze_backbone=spec.mode == "freeze",
                                             dann=spec.mode == "dann")
                    module.hparams.dann_weight = settings.dann_weight
                module.train()
                fits.append(fit(module, dm, max_epochs=max_epochs, patience=settings.patience,
                                log_dir=seed_dir / "logs", lr=lr, accelerator=settings.accelerator))
            chosen = min(fits, key=lambda f: (f.best_val_loss, f.lr))
            module.load_state_dict(chosen.state_dict)
            _write_grid(seed_dir / "grid.csv", fits)

        module.to("cpu")
        v_loss = val_loss(module, val_all if spec.mode == "zeroshot" else val)
        ev = evaluate(module, test)
        metrics: dict[str, Any] = {
            "task": spec.task, "arch": spec.arch, "target": spec.target, "mode": spec.mode,
            "size": spec.size if spec.size == "all" else int(spec.size), "n_train": int(n_train),
            "capped": bool(capped), "n_val": int(n_val_used), "n_test": len(test), "seed": int(seed),
            "metric": "met_resolution" if spec.task == "met" else "auc",
            "test_auc": ev["test_auc"], "roc": ev["roc"], "test_loss": ev["test_loss"], "val_loss": v_loss,
            "met_resolution": ev["met_resolution"], "baseline": baseline,
            "test_auc_unweighted": ev.get("test_auc_unweighted"),
            "met_resolution_unweighted": ev.get("met_resolution_unweighted"),
            # effective sample sizes (sum w)^2 / sum w^2 next to the row counts (fast2full.weights)
            "ess_train": round(W.ess(train.weight), 3) if spec.mode != "zeroshot" else 0.0,
            "ess_val": round(W.ess((val_all if spec.mode == "zeroshot" else val).weight), 3),
            "ess_test": round(W.ess(test.weight), 3),
            "sample_sizes": {"train": sample_sizes(train) if spec.mode != "zeroshot" else None,
                             "val": sample_sizes(val_all if spec.mode == "zeroshot" else val),
                             "test": sample_sizes(test)},
            "lr": chosen.lr if chosen else None, "epochs": chosen.epochs if chosen else 0,
            "best_epoch": chosen.best_epoch if chosen else None, "steps": chosen.steps if chosen else 0,
            "steps_total": sum(f.steps for f in fits), "grid": [{"lr": f.lr, "best_val_loss": f.best_val_loss,
                                                                  "epochs": f.epochs, "steps": f.steps} for f in fits],
            "n_params": n_params(module), "n_params_trainable": n_params(module, trainable_only=True)
            if spec.mode != "zeroshot" else 0,
            "wall_time_s": round(time.perf_counter() - t_seed, 3), "startup_s": round(startup_s, 3),
            "device": fits[0].device if fits else "cpu",
            "pretrained_from": str(ckpt_path) if ckpt_path is not None and spec.mode != "scratch" else None,
            "model_size": settings.model_size, "threads": settings.threads,
        }
        if spec.mode == "pretrain":
            save_checkpoint(module, seed_dir / "model.ckpt", _card(spec, settings, meta, metrics))
        _write_json(seed_dir / "metrics.json", metrics)
        results.append(metrics)
        main = metrics["met_resolution"] if spec.task == "met" else metrics["test_auc"]
        log.info("seed %d: n_train=%d n_params=%d lr=%s epochs=%s %s=%s (baseline %s) in %.1f s", seed, n_train,
                 metrics["n_params"], metrics["lr"], metrics["epochs"], metrics["metric"], main,
                 baseline["met_resolution"] if spec.task == "met" else baseline["test_auc"], metrics["wall_time_s"])
        progress.update()
    progress.done()
    return results


__all__ = ["TrainSettings", "JobSpec", "run_job", "fit", "evaluate", "val_subset_size", "baseline_metrics",
           "classification_metrics", "met_resolution", "quiet_lightning", "set_threads", "MODES", "run_jobs"]
