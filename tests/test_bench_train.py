"""The training benchmark's matmul-only replay (bench/bench_train.py): it records every matrix multiply of an
ensemble step, forward and backward, and replays them at their recorded shapes and strides."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_train", BENCH / "bench_train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _flops(calls) -> int:
    """2 x multiply-adds of the recorded calls, from their operand shapes alone."""
    total = 0
    for func, spec, _ in calls:
        name = func.overloadpacket.__name__
        a, b = (spec[0], spec[1]) if name in ("mm", "bmm") else (spec[1], spec[2])
        batch = a.shape[0] if name in ("bmm", "baddbmm") else 1
        total += 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    return total


@pytest.mark.parametrize("arch", ["dnn", "gnn", "transformer"])
def test_recorded_matmuls_are_the_whole_step(bench, arch):
    """The recorded calls carry the same arithmetic as torch's FLOP counter on the same ensemble step (so
    none of the backward pass is missed), members x the engine's single-model FLOPs per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    ts = bench.shape_set("sigbkg", bench.MAX_OBJECTS, 6, 2 * bench.BATCH)
    members = 3
    calls = bench.record_matmuls(arch, "tiny", ts, members)
    names = {func.overloadpacket.__name__ for func, _, _ in calls}
    assert names & {"bmm", "baddbmm"}, names  # the ensemble's layers are batched over members
    with FlopCounterMode(display=False) as counter:
        bench.engine_step(arch, "tiny", ts, members)
    assert _flops(calls) == counter.get_total_flops() > 0
    per_sample = bench.matmul_flops_per_sample(arch, "tiny", ts, legacy=False)
    assert _flops(calls) == pytest.approx(members * bench.BATCH * per_sample, rel=1e-6)
    assert bench.matmul_only_seconds(calls, "cpu", reps=1) > 0
