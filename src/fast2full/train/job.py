"""A training job: :class:`JobSpec` (one point), :func:`run_job` (all its seeds x learning rates as one
ensemble, then per seed the chosen run's evaluation and the outputs ``metrics.json``,
``predictions.parquet``, ``grid.csv``, ``logs/`` and, for pretrain, ``model.ckpt``) and
:func:`run_jobs` (several points in one process)."""

from __future__ import annotations

import csv
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fast2full import taskmetrics
from fast2full import weights as W
from fast2full.common import Fast2FullError, Progress, atomic_output
from fast2full.plan import MODES, TASKS, TRANSFER_MODES
from fast2full.records import ModelCard, PointMetrics
from fast2full.train.env import keep_freed_memory, pick_device, quiet_lightning, set_threads
from fast2full.train.metrics import baseline_metrics, baseline_sign, evaluate, sample_sizes
from fast2full.train.modes import (
    initial_state,
    load_splits,
    point_source,
    pretrained_checkpoints,
    pretrained_state,
    task_module,
)
from fast2full.train.settings import TrainSettings, budget_for, val_subset_size

log = logging.getLogger("fast2full.train")

#: seconds between two progress lines of a training point (steps, losses, points done, time left)
PROGRESS_EVERY_S = 10.0


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


def _card(spec: JobSpec, settings: TrainSettings, meta: dict, rec: PointMetrics, path: Path) -> ModelCard:
    """The model card of a pretrained seed (``path``: the checkpoint it goes into, for errors)."""
    card = {
        "task": spec.task,
        "arch": spec.arch,
        "model_size": settings.model_size,
        "source_domain": spec.target,
        "seed": rec.seed,
        "n_train": rec.n_train,
        "lr": rec.lr,
        "epochs": rec.epochs,
        "n_params": rec.n_params,
        "inputs": {
            "features": list(meta.get("features", [])),
            "units": list(meta.get("units", [])),
            "max_objects": int(meta["max_objects"]),
            "n_features": int(meta["n_features"]),
            "norm": meta.get("norm"),
            "normalised": "x' = (x - mean) / std on real objects; padded slots 0",
        },
        "targets": meta.get("targets"),
        "metrics": {k: getattr(rec, k) for k in ("test_auc", "met_resolution", "test_loss", "val_loss")},
        "baseline": rec.baseline,
        "tensor_meta": {k: meta.get(k) for k in ("schema_version", "domain", "baseline", "class_balance")},
        "provenance": rec.provenance,
    }
    return ModelCard.from_dict(card, f"{path} (model card being written)")


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
    keep_freed_memory()

    from fast2full import predictions as P
    from fast2full.models import load_pretrained, n_params
    from fast2full.models.checkpoint import save_checkpoint
    from fast2full.models.ensemble import Data, Member, train_members

    source = point_source(spec, settings)  # checks a pretraining's domain
    train_all, val_all, test, source_train = load_splits(spec, settings, cache)
    meta = test.meta
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

    ckpts = pretrained_checkpoints(spec)
    pretrained = {s: pretrained_state(p, spec, meta) for s, p in ckpts.items()}

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
            init = initial_state(spec, settings, meta, seed, pretrained.get(seed))
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

        val_data, train_data = Data.from_set(val_all, device), Data.from_set(train_all, device)
        results = train_members(
            members,
            train_data,
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
            unlabelled=train_data if spec.mode == "dann" else None,  # the same events, unlabelled
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
            module = task_module(spec, settings, meta, chosen.state, chosen.lr)
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
            # the source domain of the pretrained model (pretrain: its own domain; scratch: None)
            "source": source if spec.mode != "scratch" else None,
            "model_size": settings.model_size,
            "threads": settings.threads,
            "provenance": settings.provenance,
        }
        P.write(
            seed_dir / P.FILENAME,
            P.from_tensorset(spec.task, test, ev["prediction"], sign * test.baseline if spec.task != "met" else None),
            provenance=settings.provenance,
        )
        # the typed record checks every field's type before anything is written (fast2full.records)
        rec = PointMetrics.from_dict(metrics, f"{seed_dir / 'metrics.json'} (being written)")
        if spec.mode == "pretrain":
            ckpt = seed_dir / "model.ckpt"
            save_checkpoint(module, ckpt, _card(spec, settings, meta, rec, ckpt))
        rec.to_json(seed_dir / "metrics.json")
        metrics = rec.to_dict()
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
