"""Benchmark of the training stage: ensemble throughput, data-wait share and job start-up cost.

Run as ``python bench/bench_train.py [--quick]``.  Prints a table and writes results/bench/train.json.

1. **Ensemble vs one model.**  Per arch and model size, the vectorised ensemble of the training
   engine (``fast2full.models.ensemble``, M members = seeds x learning rates) in member-samples/s
   (M x batch x steps / s), as a RATIO to today's one-model loop measured in the same run: the
   Lightning ``Trainer`` fit of one ``TaskModule`` with our ``TensorDataModule`` (the loop the
   training stage used before the ensemble).  Also the engine's own single-model path (``ensemble=False``)
   and a plain-torch loop, for reference.  On every device Lightning finds.  Each row is measured
   ``--repeats`` times, interleaved; throughputs are medians, a ratio is the median of the per-repeat
   ratios (the machine may be shared and its load change), printed with its range.
2. The share of step time spent drawing batches (engine: index draws + gathers; Lightning: the gaps
   between ``on_train_batch_end`` and the next ``on_train_batch_start``).
3. A roofline: the matrix-multiply FLOPs of one training step per sample (forward and backward,
   ``torch.utils.flop_counter``) of each loop's own model — the one-model loop's legacy backbones and
   the engine's, which does less arithmetic for the GNN (its edge MLP's first layer per node, not per
   edge) — the rate each loop reaches in GFLOP/s, and a single-thread 1024^2 sgemm's rate in the same
   repeats.  ``sgemm / Lightning`` is the sgemm rate over the one-model loop's samples/s times the
   engine's FLOPs per sample: roughly the most an FP32 ensemble doing the engine's arithmetic at the
   sgemm rate could gain (a reference, not a hard peak: small batched matmuls can beat a 1024^2 sgemm).
   And a tighter ceiling: every matrix multiply of one ensemble step (forward and backward) recorded with
   its sizes and strides and replayed alone (``record_matmuls``, ``matmul_only_seconds``): the share of
   the step they take, and the ratio the ensemble would reach if every other op took no time.
4. Job start-up (``fast2full train`` in a subprocess: Python, torch and Lightning imports, config,
   tensors) against the training time of one small point, and 3 points as one process vs three.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fast2full.models.synthetic import write_synthetic_tensors  # noqa: E402
from fast2full.plan import ARCHS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _legacy_backbones import build_legacy_backbone  # noqa: E402

MAX_OBJECTS = 16  # as the default met task
#: ensemble sizes measured: the default config's 2 seeds x 2 learning rates, the paper's 5 x 2
MEMBERS = (4, 10)
N_TRAIN = 1024
BATCH = 64
#: CPU seconds a shape measurement aims at when its steps are not given (--shape-steps 0)
SHAPE_CPU_S = 2.0
SOURCE, TARGET = "atlas_like", "cms_like"


def _timing_callback():
    import lightning.pytorch as pl

    class StepTimer(pl.Callback):
        def __init__(self):
            self.wait = 0.0
            self.t_end = None
            self.t_epoch = 0.0
            self.cpu_epoch = 0.0
            self.samples = 0

        def on_train_epoch_start(self, trainer, module):
            self.t_end = time.perf_counter()
            self._t0, self._c0 = self.t_end, time.process_time()

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.wait += time.perf_counter() - self.t_end

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.samples += len(batch[0])
            self.t_end = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.t_epoch += time.perf_counter() - self._t0
            self.cpu_epoch += time.process_time() - self._c0

    return StepTimer()


def lightning_throughput(arch: str, size: str, ts, epochs: int, accelerator: str) -> dict:
    import warnings

    import lightning.pytorch as pl

    from fast2full.models import TaskModule, TensorDataModule
    from fast2full.train.env import _IGNORED_WARNINGS

    pl.seed_everything(0, verbose=False)
    # today's one-model loop: Lightning fit of the backbones as they were before the ensemble engine
    module = TaskModule(build_legacy_backbone(arch, ts.meta["n_features"], MAX_OBJECTS, size), "sigbkg", lr=1e-3)
    dm = TensorDataModule(ts, ts.nested(64, 0), batch_size=BATCH, seed=0)
    timer = _timing_callback()
    with warnings.catch_warnings():
        for p in _IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message=p)
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=epochs + 1,
            logger=False,
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        # the first epoch warms up (allocations, lazy init); time the rest
        trainer.fit(module, datamodule=dm)
    n_batches = -(-len(ts) // BATCH)
    per_epoch = timer.t_epoch / (epochs + 1)
    return {
        "samples_per_s": timer.samples / timer.t_epoch,
        "samples_per_cpu_s": timer.samples / timer.cpu_epoch,
        "data_wait_share": timer.wait / timer.t_epoch,
        "epoch_s": per_epoch,
        "batches_per_epoch": n_batches,
        "device": str(trainer.strategy.root_device),
    }


def plain_throughput(arch: str, size: str, ts, epochs: int, device: str) -> float:
    """Baseline: a hand loop (Adam, BCE, same model and batch indexing), no Lightning."""
    import torch

    from fast2full.models import TaskModule

    torch.manual_seed(0)
    module = TaskModule(build_legacy_backbone(arch, ts.meta["n_features"], MAX_OBJECTS, size), "sigbkg").to(device)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    x, m, y = (torch.from_numpy(a).to(device) for a in (ts.x, ts.mask, ts.y))
    g = torch.Generator().manual_seed(0)
    n = 0
    t0 = c0 = None
    for epoch in range(epochs + 1):
        if epoch == 1:
            t0, c0, n = time.perf_counter(), time.process_time(), 0
        for idx in torch.randperm(len(ts), generator=g).split(BATCH):
            idx = idx.to(device)
            opt.zero_grad()
            loss = module.task_loss(module(x[idx], m[idx]), y[idx])
            loss.backward()
            opt.step()
            n += len(idx)
    if device != "cpu":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def matmul_flops_per_sample(arch: str, size: str, ts, legacy: bool) -> float:
    """Matrix-multiply FLOPs (mm, addmm, bmm, attention) of one forward and backward pass per sample at
    ``BATCH`` rows: of the one-model loop's model (``legacy``) or of the engine's single model (an
    ensemble member does the same arithmetic)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fast2full.models import TaskModule

    with FlopCounterMode(display=False) as counter:
        if legacy:
            x, m, y = (torch.from_numpy(a[:BATCH]) for a in (ts.x, ts.mask, ts.y))
            module = TaskModule(build_legacy_backbone(arch, ts.meta["n_features"], MAX_OBJECTS, size), "sigbkg")
            module.task_loss(module(x, m), y).backward()
        else:
            engine_step(arch, size, ts)
    return counter.get_total_flops() / BATCH


def engine_step(arch: str, size: str, ts, members: int | None = None) -> None:
    """One forward and backward pass of the engine's model (``members``: an ensemble of that many, each
    on the same ``BATCH`` rows) on the first ``BATCH`` rows of ``ts``, sigbkg loss."""
    import torch

    from fast2full.models.ensemble import Net

    x, m, y = (torch.from_numpy(a[:BATCH]) for a in (ts.x, ts.mask, ts.y))
    y = y.float()
    if members is not None:
        rep = (members,) + (1,) * x.dim()
        x, m, y = x.repeat(rep), m.repeat(rep[:-1]), y.repeat(members, 1)
    net = Net(arch, "sigbkg", ts.meta["n_features"], MAX_OBJECTS, size, members=members)
    torch.nn.functional.binary_cross_entropy_with_logits(net(x, m), y).backward()


_MATMULS = ("mm", "addmm", "bmm", "baddbmm")


class _TensorSpec(NamedTuple):
    shape: tuple
    stride: tuple


def record_matmuls(arch: str, size: str, ts, members: int) -> list:
    """Every matrix multiply (mm, addmm, bmm, baddbmm) of one training step (forward and backward) of the
    engine's ``members``-member ensemble at ``BATCH`` rows per member: (op, sizes and strides of each
    tensor argument, the other arguments), in call order."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: list = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in _MATMULS:
                spec = [_TensorSpec(tuple(a.shape), a.stride()) if isinstance(a, torch.Tensor) else a for a in args]
                calls.append((func, spec, dict(kwargs or {})))
            return func(*args, **(kwargs or {}))

    with Record():
        engine_step(arch, size, ts, members)
    return calls


def matmul_only_seconds(calls: list, device: str, reps: int = 10) -> float:
    """CPU seconds (GPU: wall) of one replay of ``calls`` on random tensors of the recorded sizes and
    strides: the step time of an engine whose every other op (gathers, element-wise, reductions, top-k,
    the optimiser, data) took no time."""
    import torch

    def tensor(t: _TensorSpec):
        span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride)) if all(t.shape) else 0
        return torch.randn(span, device=device).as_strided(t.shape, t.stride)

    def make(spec):
        return [tensor(a) if isinstance(a, _TensorSpec) else a for a in spec]

    ops = [(func, make(spec), kw) for func, spec, kw in calls]

    def replay():
        for func, args, kw in ops:
            func(*args, **kw)

    return _seconds_per_call(replay, device, reps, warmup=1)


def _seconds_per_call(fn, device: str, reps: int, warmup: int) -> float:
    """CPU seconds per call of ``fn`` on the CPU (one thread: the time this process computed), wall
    seconds on a GPU (synchronised), after ``warmup`` untimed calls."""
    import torch

    for _ in range(warmup):
        fn()
    if device != "cpu":
        torch.cuda.synchronize()
    clock = time.process_time if device == "cpu" else time.perf_counter
    t0 = clock()
    for _ in range(reps):
        fn()
    if device != "cpu":
        torch.cuda.synchronize()
    return (clock() - t0) / reps


def sgemm_gflops(device: str, n: int = 1024, reps: int = 20) -> float:
    """A square FP32 matrix multiply's rate (GFLOP/s per CPU second on the CPU, per wall second on a GPU)."""
    import torch

    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    return 2 * n**3 / _seconds_per_call(lambda: a @ b, device, reps, warmup=3) / 1e9


def ensemble_throughput(
    arch: str,
    size: str,
    ts,
    steps: int,
    device: str,
    members: int,
    ensemble: bool = True,
    task: str = "sigbkg",
) -> dict:
    """The training engine on ``members`` members for a fixed number of steps (no early stopping)."""
    import numpy as np
    import torch

    from fast2full.models.ensemble import Budget, Data, Member, Net, train_members

    data = Data.from_set(ts, device)
    val = Data.from_set(ts.nested(64, 0), device)
    mem = []
    for j in range(members):
        torch.manual_seed(j)
        state = Net(arch, task, ts.meta["n_features"], ts.x.shape[1], size).state_dict()
        rows = np.random.default_rng(j).permutation(len(ts))
        mem.append(Member(seed=j, lr=1e-3 * (1 + j % 2), state=state, train_rows=rows))
    budget = Budget(min_steps=steps, max_steps=steps, val_every=steps, patience=1)
    kw = dict(
        arch=arch,
        task=task,
        n_features=ts.meta["n_features"],
        max_objects=ts.x.shape[1],
        model_size=size,
        batch_size=BATCH,
        device=device,
        ensemble=ensemble,
    )
    train_members(mem[:1], data, val, budget=Budget(min_steps=5, max_steps=5, val_every=5, patience=1), **kw)  # warm-up
    stats: dict = {}
    train_members(mem, data, val, budget=budget, stats=stats, **kw)
    if device != "cpu":
        torch.cuda.synchronize()
    train_s = stats["total_s"] - stats["val_s"]
    return {
        "member_samples_per_s": stats["samples"] / train_s,
        "member_samples_per_cpu_s": stats["samples"] / (stats["cpu_s"] - stats["val_cpu_s"]),
        "data_wait_share": stats["data_s"] / train_s,
        "members": members,
    }


def shape_set(task: str, slots: int, n_features: int, n: int, seed: int = 0):
    """A synthetic normalised tensor set of ``task`` with the real tensors' shape (``slots`` x
    ``n_features``; the toy's 6 features repeated with noise to fill the width).  The engine's cost
    depends on the shape, not on the values."""
    import numpy as np

    from fast2full import tensorio
    from fast2full.models.synthetic import synthetic_arrays

    a = synthetic_arrays(task, n, slots, seed=seed)
    x = a["x"]
    x = (x - x[a["mask"]].mean(0)) / (x[a["mask"]].std(0) + 1e-6)
    reps = -(-n_features // x.shape[-1])
    rng = np.random.default_rng(seed)
    wide = np.concatenate([x] * reps, axis=-1)[..., :n_features]
    wide = (wide + rng.normal(0.0, 0.1, wide.shape)).astype(np.float32) * a["mask"][..., None]
    return tensorio.TensorSet(
        wide, a["mask"], a["y"], a["baseline"], a["weight"], a["event_id"], {"n_features": n_features, "task": task}
    )


def with_occupancy(ts, occupancy: float, seed: int = 0):
    """``ts`` with each event's number of real slots redrawn (binomial, at least one) to the mean
    fraction ``occupancy`` of its slots, the slots filled from the first as the tensors are; padded
    features zeroed.  Same shape, so the DNN's cost is unchanged; the set backbones' follows it."""
    import dataclasses

    import numpy as np

    if not 0.0 < occupancy <= 1.0:
        raise SystemExit(f"--occupancy must be in (0, 1], got {occupancy}")
    n = ts.x.shape[1]
    counts = np.maximum(np.random.default_rng(seed).binomial(n, occupancy, size=len(ts)), 1)
    mask = np.arange(n)[None, :] < counts[:, None]
    x = (ts.x * mask[..., None]).astype(ts.x.dtype)
    return dataclasses.replace(ts, x=x, mask=mask)


def _child_rate(task: str, arch: str, size: str, slots: int, n_feat: int, steps: int, allocator: str) -> dict:
    """One engine measurement in a fresh process (the allocator is a per-process setting)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", task, arch, size, str(slots), str(n_feat), str(steps), allocator],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _child(argv: list[str]) -> int:
    from fast2full.hpc import sizing
    from fast2full.train import keep_freed_memory, quiet_lightning, set_threads

    task, arch, size, slots, n_feat, steps, allocator = argv
    quiet_lightning()
    set_threads(1)
    if allocator == "tuned":
        keep_freed_memory()
    ts = shape_set(task, int(slots), int(n_feat), N_TRAIN)
    r = ensemble_throughput(arch, size, ts, int(steps), "cpu", sizing.BENCH_MEMBERS, task=task)
    # this process's own peak (VmHWM; getrusage's ru_maxrss keeps the parent's peak across fork + exec)
    with open("/proc/self/status") as f:
        hwm_kb = next((float(line.split()[1]) for line in f if line.startswith("VmHWM:")), math.nan)
    r["max_rss_gb"] = hwm_kb / 1e6
    print(json.dumps(r))
    return 0


def shape_rows(
    configs: list[Path], sizes: list[str] | None, steps: int, repeats: int, allocator: str = "tuned"
) -> list[dict]:
    """The engine's per-member throughput at each config's input shapes: per config, task (its slots
    and features, fast2full.hpc.sizing.input_shape), architecture and model size (``sizes``, default
    the config's own ``training.model_size``), 10 members, 1 thread; the median of ``repeats``.  For
    bench/paper_scale.py: the cost of the paper config's models at its shapes over the measured run's."""
    from fast2full.config import load_config
    from fast2full.hpc import sizing

    base = ROOT / "config.yaml"
    rows, seen = [], set()
    for path in configs:
        cfg = load_config(base, *([path] if path.resolve() != base.resolve() else []), base_dir=ROOT)
        tr = cfg.get("training", {})
        for task in tr.get("tasks", []):
            slots, n_feat = sizing.input_shape(cfg, task)
            ts = shape_set(task, slots, n_feat, N_TRAIN)
            for arch in tr.get("archs", []):
                for size in sizes or [tr.get("model_size", "small")]:
                    key = (task, slots, n_feat, arch, size)
                    if key in seen:
                        continue
                    seen.add(key)
                    if steps <= 0:  # enough steps for about SHAPE_CPU_S of CPU time (a 4-step probe first)
                        probe = ensemble_throughput(arch, size, ts, 4, "cpu", sizing.BENCH_MEMBERS, task=task)
                        per_step = sizing.BENCH_MEMBERS * BATCH / probe["member_samples_per_cpu_s"]
                        n_steps = int(min(max(SHAPE_CPU_S / per_step, 8), 2000))
                    else:
                        n_steps = steps
                    common = {
                        "device": "cpu",
                        "config": path.name,
                        "task": task,
                        "max_objects": slots,
                        "n_features": n_feat,
                        "arch": arch,
                        "model_size": size,
                        "members": sizing.BENCH_MEMBERS,
                        "steps": n_steps,
                        "repeats": repeats,
                    }
                    if allocator == "ab":  # child processes, glibc as it is (A) and tuned (B), in turn
                        pairs = [
                            [
                                _child_rate(task, arch, size, slots, n_feat, n_steps, alloc)
                                for alloc in ("default", "tuned")
                            ]
                            for _ in range(repeats)
                        ]
                        ratios = [b["member_samples_per_cpu_s"] / a["member_samples_per_cpu_s"] for a, b in pairs]
                        rows.append(
                            {
                                **common,
                                "default_member_samples_per_cpu_s": _median(
                                    [a["member_samples_per_cpu_s"] for a, _ in pairs]
                                ),
                                "tuned_member_samples_per_cpu_s": _median(
                                    [b["member_samples_per_cpu_s"] for _, b in pairs]
                                ),
                                "tuned_over_default": _median(ratios),
                                "ratio_range": [min(ratios), max(ratios)],
                                "max_rss_gb": [
                                    max(a["max_rss_gb"] for a, _ in pairs),
                                    max(b["max_rss_gb"] for _, b in pairs),
                                ],
                            }
                        )
                        r = rows[-1]
                        print(
                            f"allocator {task:6} {slots:3d}x{n_feat:<3d} {arch:12} {size:6} tuned/default "
                            f"{r['tuned_over_default']:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}), peak RSS "
                            f"{r['max_rss_gb'][0]:.2f} -> {r['max_rss_gb'][1]:.2f} GB",
                            flush=True,
                        )
                        continue
                    runs = [
                        ensemble_throughput(arch, size, ts, n_steps, "cpu", sizing.BENCH_MEMBERS, task=task)
                        for _ in range(repeats)
                    ]
                    rows.append(
                        {
                            **common,
                            "clock": "process CPU time",
                            "allocator": allocator,
                            "member_samples_per_s": _median([r["member_samples_per_cpu_s"] for r in runs]),
                            "member_samples_per_s_wall": _median([r["member_samples_per_s"] for r in runs]),
                        }
                    )
                    r = rows[-1]
                    print(
                        f"shape {path.name:18} {task:6} {slots:3d}x{n_feat:<3d} {arch:12} {size:6} "
                        f"{r['member_samples_per_s']:10.0f} member-samples/CPU s",
                        flush=True,
                    )
    return rows


def _median(v: list[float]) -> float:
    return statistics.median(v)


def _measure(arch: str, size: str, ts, epochs: int, dev: str, accel: str, repeats: int) -> dict:
    """One row: every measurement ``repeats`` times, interleaved (baseline, references, ensembles, again).

    Throughputs are medians over the repeats, each ratio the median of the per-repeat ratios (the
    baseline and the ensemble of one repeat ran back to back, so a load change hits both), with its
    range.  On the CPU the headline numbers are per second of this process's CPU time (one thread: on a
    shared, oversubscribed machine the wall time mostly measures the other processes); wall-clock
    throughputs are kept beside them (``*_wall``).  On a GPU: wall time."""
    steps = epochs * (-(-len(ts) // BATCH))
    cpu = dev == "cpu"
    flops = matmul_flops_per_sample(arch, size, ts, legacy=True)
    flops_engine = matmul_flops_per_sample(arch, size, ts, legacy=False)
    calls = {m: record_matmuls(arch, size, ts, m) for m in MEMBERS}
    reps: list[dict] = []
    for _ in range(repeats):
        peak = sgemm_gflops(dev)
        lt = lightning_throughput(arch, size, ts, epochs, accel)
        plain_wall, plain_cpu = plain_throughput(arch, size, ts, epochs, dev)
        single = ensemble_throughput(arch, size, ts, steps, dev, 2, ensemble=False)
        r = {
            "sgemm_gflops": peak,
            "lightning_wall": lt["samples_per_s"],
            "lightning": lt["samples_per_cpu_s"] if cpu else lt["samples_per_s"],
            "lightning_wait": lt["data_wait_share"],
            "plain_wall": plain_wall,
            "plain": plain_cpu if cpu else plain_wall,
            "single_wall": single["member_samples_per_s"],
            "single": single["member_samples_per_cpu_s"] if cpu else single["member_samples_per_s"],
        }
        for m in MEMBERS:
            e = ensemble_throughput(arch, size, ts, steps, dev, m)
            r[f"ens{m}_wall"] = e["member_samples_per_s"]
            r[f"ens{m}"] = e["member_samples_per_cpu_s"] if cpu else e["member_samples_per_s"]
            r[f"ens{m}_wait"] = e["data_wait_share"]
            r[f"ens{m}_matmul_only"] = m * BATCH / matmul_only_seconds(calls[m], dev)
        reps.append(r)

    def med(key: str) -> float:
        return _median([r[key] for r in reps])

    row = {
        "device": dev,
        "arch": arch,
        "model_size": size,
        "repeats": repeats,
        "clock": "process CPU time" if cpu else "wall",
        "lightning_samples_per_s": med("lightning"),
        "lightning_samples_per_s_wall": med("lightning_wall"),
        "lightning_data_wait_share": med("lightning_wait"),
        "plain_samples_per_s": med("plain"),
        "plain_samples_per_s_wall": med("plain_wall"),
        "engine_single_samples_per_s": med("single"),
        "engine_single_samples_per_s_wall": med("single_wall"),
        "matmul_mflop_per_sample": flops / 1e6,
        "engine_matmul_mflop_per_sample": flops_engine / 1e6,
        "sgemm_gflops": med("sgemm_gflops"),
        "lightning_gflops": med("lightning") * flops / 1e9,
        # per repeat: the sgemm rate over the one-model loop's samples/s at the engine's arithmetic, about
        # the most an ensemble doing that arithmetic at the sgemm rate could gain (a reference)
        "sgemm_over_lightning": _median([r["sgemm_gflops"] / (r["lightning"] * flops_engine / 1e9) for r in reps]),
    }
    for m in MEMBERS:
        ratios = [r[f"ens{m}"] / r["lightning"] for r in reps]
        row[f"ensemble{m}_member_samples_per_s"] = med(f"ens{m}")
        row[f"ensemble{m}_member_samples_per_s_wall"] = med(f"ens{m}_wall")
        row[f"ensemble{m}_data_wait_share"] = med(f"ens{m}_wait")
        row[f"ensemble{m}_gflops"] = med(f"ens{m}") * flops_engine / 1e9
        row[f"ensemble{m}_ratio_vs_lightning"] = _median(ratios)
        row[f"ensemble{m}_ratio_range"] = [min(ratios), max(ratios)]
        row[f"ensemble{m}_ratio_vs_lightning_wall"] = _median([r[f"ens{m}_wall"] / r["lightning_wall"] for r in reps])
        row[f"ensemble{m}_ratio_vs_engine_single"] = _median([r[f"ens{m}"] / r["single"] for r in reps])
        # the engine's matrix multiplies alone (their recorded shapes and strides replayed), as member-samples/s
        # and over the one-model loop: the most this ensemble could gain if every other op took no time
        row[f"ensemble{m}_matmul_only_samples_per_s"] = med(f"ens{m}_matmul_only")
        row[f"ensemble{m}_matmul_share"] = _median([r[f"ens{m}"] / r[f"ens{m}_matmul_only"] for r in reps])
        row[f"ensemble{m}_matmul_only_ratio_vs_lightning"] = _median(
            [r[f"ens{m}_matmul_only"] / r["lightning"] for r in reps]
        )
    return row


def startup_vs_training(tmp: Path, config: Path, tensors: Path) -> dict:
    """fast2full train in subprocesses: one small point, and 3 points grouped vs 3 separate processes."""
    exe = [sys.executable, "-m", "fast2full"]
    common = [
        "train",
        "--config",
        str(config),
        "--task",
        "sigbkg",
        "--arch",
        "dnn",
        "--target",
        TARGET,
        "--seeds",
        "0",
        "1",
        "--tensors",
        str(tensors),
    ]

    def run(args):
        t0 = time.perf_counter()
        subprocess.run([*exe, *common, *args], check=True, capture_output=True, env={**os.environ})
        return time.perf_counter() - t0

    t_one = run(["--mode", "scratch", "--size", "30", "--outdir", str(tmp / "one")])
    m = json.loads((tmp / "one" / "seed0" / "metrics.json").read_text())
    m1 = json.loads((tmp / "one" / "seed1" / "metrics.json").read_text())
    train_s = m["wall_time_s"] + m1["wall_time_s"]  # the job's training time, shared out over its seeds
    sizes = ["30", "100", "300"]
    t_sep = sum(run(["--mode", "scratch", "--size", s, "--outdir", str(tmp / f"sep{s}")]) for s in sizes)
    t_grp = run(["--mode", "scratch", "--size", *sizes, "--outdir", str(tmp / "grp" / "n{size}")])
    return {
        "process_wall_s": t_one,
        "startup_s": m["startup_s"],
        "train_s_small_point": train_s,
        "startup_over_train": m["startup_s"] / train_s,
        "three_points_separate_s": t_sep,
        "three_points_grouped_s": t_grp,
        "grouped_speedup": t_sep / t_grp,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small models only, fewer steps")
    ap.add_argument("--no-startup", action="store_true", help="skip the subprocess start-up measurement")
    ap.add_argument("--sizes", nargs="+", default=None, help="model sizes (default: small with --quick, else all)")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS, help="architectures (default: all)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="interleaved repeats per row, medians quoted (default 3, 5 full)"
    )
    ap.add_argument(
        "--shapes-from",
        nargs="+",
        type=Path,
        default=[],
        metavar="CONFIG",
        help="also measure the engine at each config's task input shapes (slots x features) for "
        "bench/paper_scale.py, at --sizes (default: the config's model size)",
    )
    ap.add_argument(
        "--shape-steps",
        type=int,
        default=0,
        help=f"optimiser steps per shape measurement (0: enough for about {SHAPE_CPU_S:g} CPU s, after a probe)",
    )
    ap.add_argument("--no-throughput", action="store_true", help="skip the fixed-shape ensemble vs Lightning rows")
    ap.add_argument(
        "--allocator",
        choices=("tuned", "default", "ab"),
        default="tuned",
        help="tuned: glibc keeps freed memory, as the training stage does (fast2full.train.keep_freed_memory); "
        "default: glibc as it is; ab: each --shapes-from row measured in child processes both ways, in turn "
        "(the ratio tuned / default)",
    )
    ap.add_argument(
        "--occupancy",
        type=float,
        default=None,
        help="fraction of real slots in the throughput rows' events (default: the toy's, about 0.55); the set "
        "backbones compute the real slots only, so their speed depends on it (the medium's tensors: sigbkg "
        "0.50, qg 0.88, met 0.86)",
    )
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "train.json"))
    args = ap.parse_args()

    import torch

    from fast2full import tensorio
    from fast2full.train import keep_freed_memory, quiet_lightning, set_threads

    quiet_lightning()
    set_threads(1)
    if args.allocator == "tuned":
        print(keep_freed_memory())
    sizes = args.sizes or (["small"] if args.quick else ["tiny", "small", "base"])
    epochs = 1 if args.quick else 2
    args.repeats = args.repeats or (3 if args.quick else 5)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tensors = tmp / "tensors"
        write_synthetic_tensors(
            tensors,
            "sigbkg",
            {SOURCE: 0.0, TARGET: 0.2},
            sizes={"train": N_TRAIN, "val": 200, "test": 400},
            max_objects=MAX_OBJECTS,
        )
        ts = tensorio.load(tensors / "sigbkg" / SOURCE / "train.parquet")
        if args.occupancy is not None:
            ts = with_occupancy(ts, args.occupancy)
        occupancy = float(ts.mask.mean())
        print(f"throughput rows: {len(ts)} events x {ts.x.shape[1]} slots, occupancy {occupancy:.2f}")
        rows = []
        for dev in [] if args.no_throughput else devices:
            accel = "cpu" if dev == "cpu" else "gpu"
            for arch in args.archs:
                for size in sizes:
                    rows.append(_measure(arch, size, ts, epochs, dev, accel, args.repeats))
        cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
        cfg["training"] |= {"learning_rates": [0.001, 0.003], "seeds": [0, 1]}
        for det in cfg["detectors"].values():
            det["card"] = str(ROOT / det["card"])
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump(cfg))
        startup = {} if args.no_startup or args.no_throughput else startup_vs_training(tmp, config, tensors)
    by_shape = (
        shape_rows(args.shapes_from, args.sizes, args.shape_steps, args.repeats, args.allocator)
        if args.shapes_from
        else []
    )

    cols = [f"ens{m}/s ratio (range) wait" for m in MEMBERS]
    print(
        f"{'device':6} {'arch':12} {'size':6} {'Lightning/s':>11} {'wait':>6} {'plain/s':>8} {'single/s':>8} "
        + " ".join(f"{c:>36}" for c in cols)
    )
    for r in rows:
        ens = " ".join(
            f"{r[f'ensemble{m}_member_samples_per_s']:10.0f} {r[f'ensemble{m}_ratio_vs_lightning']:6.2f}x "
            f"({r[f'ensemble{m}_ratio_range'][0]:.2f}-{r[f'ensemble{m}_ratio_range'][1]:.2f}) "
            f"{100 * r[f'ensemble{m}_data_wait_share']:5.1f}%"
            for m in MEMBERS
        )
        print(
            f"{r['device']:6} {r['arch']:12} {r['model_size']:6} {r['lightning_samples_per_s']:11.0f} "
            f"{100 * r['lightning_data_wait_share']:5.1f}% {r['plain_samples_per_s']:8.0f} "
            f"{r['engine_single_samples_per_s']:8.0f} {ens}"
        )
    print(
        f"(medians of {args.repeats} interleaved repeats; per second of process CPU time on the CPU, of wall time "
        "on a GPU; ratio = ensemble member-samples/s over the Lightning loop's)"
    )
    print()
    m_last = MEMBERS[-1]
    print(
        f"{'device':6} {'arch':12} {'size':6} {'MFLOP/sample':>16} {'Lightning GFLOP/s':>17} "
        f"{f'ens{m_last} GFLOP/s':>14} {'sgemm GFLOP/s':>13} {'sgemm/Lightning':>15} "
        f"{'matmul share':>12} {'matmul-only/Lightning':>21}"
    )
    for r in rows:
        print(
            f"{r['device']:6} {r['arch']:12} {r['model_size']:6} "
            f"{r['matmul_mflop_per_sample']:7.2f} / {r['engine_matmul_mflop_per_sample']:6.2f} "
            f"{r['lightning_gflops']:17.1f} {r[f'ensemble{m_last}_gflops']:14.1f} {r['sgemm_gflops']:13.1f} "
            f"{r['sgemm_over_lightning']:14.1f}x {r[f'ensemble{m_last}_matmul_share']:12.2f} "
            f"{r[f'ensemble{m_last}_matmul_only_ratio_vs_lightning']:20.2f}x"
        )
    print(
        "(matmul FLOPs of one forward + backward pass per sample, one-model loop / engine, each loop's GFLOP/s at "
        "its own; sgemm/Lightning = sgemm rate over the one-model loop's samples/s x the engine's FLOPs: roughly "
        "the most an FP32 ensemble could gain, a reference, not a hard peak; matmul share = the ensemble's step time "
        "in its own matrix multiplies (their recorded shapes and strides replayed alone); matmul-only/Lightning = "
        "the ratio the ensemble would reach if every other op took no time)"
    )
    print()
    for k, v in startup.items():
        print(f"{k:28} {v:8.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.is_file() else {}
    if args.no_throughput and old:  # keep the fixed-shape rows an earlier run measured
        rows, startup = old.get("throughput", []), old.get("startup", {})
        print(f"kept {len(rows)} fixed-shape rows and the start-up figures of {out}")
    # shape rows accumulate over runs (one per device, task shape, arch and size; the newest wins)
    shape_key = ("device", "task", "max_objects", "n_features", "arch", "model_size")
    new_keys = {tuple(r[k] for k in shape_key) for r in by_shape}
    kept = [r for r in old.get("by_shape", []) if tuple(r.get(k) for k in shape_key) not in new_keys]
    by_shape = kept + by_shape
    out.write_text(
        json.dumps(
            {
                "throughput": rows,
                "by_shape": by_shape,
                "startup": startup,
                "n_train": N_TRAIN,
                "batch_size": BATCH,
                "max_objects": MAX_OBJECTS,
                "occupancy": occupancy,
                "threads": 1,
                "allocator": args.allocator,
                "repeats": args.repeats,
                "cpu_count": os.cpu_count(),
                "torch": torch.__version__,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[2:]) if sys.argv[1:2] == ["--child"] else main())
