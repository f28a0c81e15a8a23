"""Benchmark of the training stage: throughput, data-wait share and job start-up cost.

Run as ``python bench/bench_train.py [--quick]``.  Prints a table and writes results/bench/train.json.

1. Training samples/s per arch and model size with Lightning (our Trainer settings and DataModule),
   reported as a RATIO to a plain-torch loop over the same model and batches measured in the same run
   (the baseline): the cost of Lightning's bookkeeping per step.  On every device Lightning finds.
2. The share of step time spent waiting for data: the gaps between ``on_train_batch_end`` and the next
   ``on_train_batch_start`` (the loader's ``next()``), over the epoch time.
3. Job start-up (``fast2full train`` in a subprocess: Python, torch and Lightning imports, config,
   tensors) against the training time of one small point (scratch, n=30, 2 seeds, the default grid),
   and the same points run as one grouped process vs one process each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fast2full.models.synthetic import write_synthetic_tensors  # noqa: E402

MAX_OBJECTS = 16          # as the default met task
N_TRAIN = 1024
BATCH = 64
SOURCE, TARGET = "atlas_like", "cms_like"


def _timing_callback():
    import lightning.pytorch as pl

    class StepTimer(pl.Callback):
        def __init__(self):
            self.wait = 0.0
            self.t_end = None
            self.t_epoch = 0.0
            self.samples = 0

        def on_train_epoch_start(self, trainer, module):
            self.t_end = time.perf_counter()
            self._t0 = self.t_end

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.wait += time.perf_counter() - self.t_end

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.samples += len(batch[0])
            self.t_end = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.t_epoch += time.perf_counter() - self._t0

    return StepTimer()


def lightning_throughput(arch: str, size: str, ts, epochs: int, accelerator: str) -> dict:
    import lightning.pytorch as pl

    from fast2full.models import TaskModule, TensorDataModule, build_backbone
    from fast2full.train import _IGNORED_WARNINGS
    import warnings

    pl.seed_everything(0, verbose=False)
    module = TaskModule(build_backbone(arch, ts.meta["n_features"], MAX_OBJECTS, size), "sigbkg", lr=1e-3)
    dm = TensorDataModule(ts, ts.nested(64, 0), batch_size=BATCH, seed=0)
    timer = _timing_callback()
    with warnings.catch_warnings():
        for p in _IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=p)
        trainer = pl.Trainer(accelerator=accelerator, devices=1, max_epochs=epochs + 1, logger=False,
                             callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
        # the first epoch warms up (allocations, lazy init); time the rest
        trainer.fit(module, datamodule=dm)
    n_batches = -(-len(ts) // BATCH)
    per_epoch = timer.t_epoch / (epochs + 1)
    return {"samples_per_s": timer.samples / timer.t_epoch, "data_wait_share": timer.wait / timer.t_epoch,
            "epoch_s": per_epoch, "batches_per_epoch": n_batches, "device": str(trainer.strategy.root_device)}


def plain_throughput(arch: str, size: str, ts, epochs: int, device: str) -> float:
    """Baseline: a hand loop (Adam, BCE, same model and batch indexing), no Lightning."""
    import torch

    from fast2full.models import TaskModule, build_backbone

    torch.manual_seed(0)
    module = TaskModule(build_backbone(arch, ts.meta["n_features"], MAX_OBJECTS, size), "sigbkg").to(device)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    x, m, y = (torch.from_numpy(a).to(device) for a in (ts.x, ts.mask, ts.y))
    g = torch.Generator().manual_seed(0)
    n = 0
    t0 = None
    for epoch in range(epochs + 1):
        if epoch == 1:
            t0, n = time.perf_counter(), 0
        for idx in torch.randperm(len(ts), generator=g).split(BATCH):
            idx = idx.to(device)
            opt.zero_grad()
            loss = module.task_loss(module(x[idx], m[idx]), y[idx])
            loss.backward()
            opt.step()
            n += len(idx)
    if device != "cpu":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def startup_vs_training(tmp: Path, config: Path, tensors: Path) -> dict:
    """fast2full train in subprocesses: one small point, and 3 points grouped vs 3 separate processes."""
    exe = [sys.executable, "-m", "fast2full"]
    common = ["train", "--config", str(config), "--task", "sigbkg", "--arch", "dnn", "--target", TARGET,
              "--seeds", "0", "1", "--tensors", str(tensors)]

    def run(args):
        t0 = time.perf_counter()
        subprocess.run([*exe, *common, *args], check=True, capture_output=True, env={**os.environ})
        return time.perf_counter() - t0

    t_one = run(["--mode", "scratch", "--size", "30", "--outdir", str(tmp / "one")])
    m = json.loads((tmp / "one" / "seed0" / "metrics.json").read_text())
    m1 = json.loads((tmp / "one" / "seed1" / "metrics.json").read_text())
    train_s = m["wall_time_s"] + m1["wall_time_s"]
    sizes = ["30", "100", "300"]
    t_sep = sum(run(["--mode", "scratch", "--size", s, "--outdir", str(tmp / f"sep{s}")]) for s in sizes)
    t_grp = run(["--mode", "scratch", "--size", *sizes, "--outdir", str(tmp / "grp" / "n{size}")])
    return {"process_wall_s": t_one, "startup_s": m["startup_s"], "train_s_small_point": train_s,
            "startup_over_train": m["startup_s"] / train_s,
            "three_points_separate_s": t_sep, "three_points_grouped_s": t_grp,
            "grouped_speedup": t_sep / t_grp}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny and small models only, fewer epochs")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "train.json"))
    args = ap.parse_args()

    import torch

    from fast2full import tensorio
    from fast2full.train import quiet_lightning, set_threads

    quiet_lightning()
    set_threads(1)
    sizes = ["tiny", "small"] if args.quick else ["tiny", "small", "base"]
    epochs = 2 if args.quick else 3
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tensors = tmp / "tensors"
        write_synthetic_tensors(tensors, "sigbkg", {SOURCE: 0.0, TARGET: 0.2},
                                sizes={"train": N_TRAIN, "val": 200, "test": 400}, max_objects=MAX_OBJECTS)
        ts = tensorio.load(tensors / "sigbkg" / SOURCE / "train.parquet")
        rows = []
        for dev in devices:
            accel = "cpu" if dev == "cpu" else "gpu"
            for arch in ("dnn", "gnn", "transformer"):
                for size in sizes:
                    lt = lightning_throughput(arch, size, ts, epochs, accel)
                    base = plain_throughput(arch, size, ts, epochs, dev)
                    rows.append({"device": dev, "arch": arch, "model_size": size, **lt,
                                 "plain_samples_per_s": base, "ratio_vs_plain_torch": lt["samples_per_s"] / base})
        cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
        for det in cfg["detectors"].values():
            det["card"] = str(ROOT / det["card"])
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump(cfg))
        startup = startup_vs_training(tmp, config, tensors)

    print(f"{'device':6} {'arch':12} {'size':6} {'samples/s':>10} {'plain/s':>10} {'ratio':>6} {'data wait':>9}")
    for r in rows:
        print(f"{r['device']:6} {r['arch']:12} {r['model_size']:6} {r['samples_per_s']:10.0f} "
              f"{r['plain_samples_per_s']:10.0f} {r['ratio_vs_plain_torch']:6.2f} {100 * r['data_wait_share']:8.1f}%")
    print()
    for k, v in startup.items():
        print(f"{k:28} {v:8.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"throughput": rows, "startup": startup, "n_train": N_TRAIN, "batch_size": BATCH,
                               "max_objects": MAX_OBJECTS, "threads": 1, "cpu_count": os.cpu_count(),
                               "torch": torch.__version__}, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
