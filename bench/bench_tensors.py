"""Benchmark of the tensor stage, as ratios against baselines measured in the same run.

1. ``tensorize`` (objects parquet -> train/val/test tensors) per task, in events/s, against the time of
   only reading the same objects files with ``ak.from_parquet`` (ratio = tensorize time / read time).
2. ``tensorio.load`` (memory-mapped Arrow buffers -> numpy, normalised) in samples/s, against a plain
   pyarrow read of the same file: ``pq.read_table`` then ``to_numpy`` on each column, stacking the
   per-row arrays of the fixed-size-list columns (ratio = load rate / plain rate).

Run: ``python bench/bench_tensors.py [--events-per-process N] [--repeats R]``; prints a table and writes
``results/bench/tensors.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import yaml
from _timing import best_of  # noqa: E402

from fast2full import tensorio
from fast2full.common import atomic_output
from fast2full.tensorize import synthetic_objects, tensorize

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ["ttbar", "wjets", "zjets", "dijet", "minbias"]
TASKS = ["sigbkg", "qg", "met"]


def _dense(col) -> np.ndarray:
    """The plain way: Arrow column -> numpy via to_numpy, stacking nested per-row arrays."""
    return _stack(col.to_numpy(zero_copy_only=False))


def _stack(a: np.ndarray) -> np.ndarray:
    return np.stack([_stack(e) for e in a]) if a.dtype == object else a


def plain_pyarrow_read(path: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(path)
    return {name: _dense(table[name]) for name in table.column_names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events-per-process", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "tensors.json"))
    args = ap.parse_args(argv)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i, p in enumerate(PROCESSES):
            f = tmp / f"{p}.parquet"
            ak.to_parquet(synthetic_objects(args.events_per_process, p, seed=i, first_id=0), f)
            files.append(f)
        n_events = args.events_per_process * len(PROCESSES)
        t_read = best_of(lambda: [ak.from_parquet(f) for f in files], args.repeats)
        for task in TASKS:
            out = tmp / task
            t = best_of(lambda: tensorize(files, out, config, task, "atlas_like"), args.repeats)
            n_rows = sum(tensorio.read_meta(out / f"{s}.parquet")["n_rows"] for s in ("train", "val", "test"))
            rows.append(
                {
                    "what": f"tensorize {task}",
                    "n": n_events,
                    "unit": "events/s",
                    "rate": n_events / t,
                    "baseline": "ak.from_parquet of the same objects files",
                    "baseline_rate": n_events / t_read,
                    "ratio": t / t_read,
                    "ratio_meaning": "time / baseline time (lower is better)",
                    "rows_written": n_rows,
                }
            )
        for task in TASKS:
            path = tmp / task / "train.parquet"
            n = tensorio.read_meta(path)["n_rows"]
            t_load = best_of(lambda: tensorio.load(path), args.repeats)
            t_plain = best_of(lambda: plain_pyarrow_read(path), args.repeats)
            ref = plain_pyarrow_read(path)
            np.testing.assert_array_equal(tensorio.load(path, raw=True).x, ref["x"])
            rows.append(
                {
                    "what": f"tensorio.load {task} train",
                    "n": n,
                    "unit": "samples/s",
                    "rate": n / t_load,
                    "baseline": "pq.read_table + to_numpy (stacked)",
                    "baseline_rate": n / t_plain,
                    "ratio": t_plain / t_load,
                    "ratio_meaning": "speed-up over baseline (higher is better)",
                }
            )
    print(f"{'benchmark':32s} {'n':>8s} {'rate':>14s} {'baseline rate':>16s} {'ratio':>8s}")
    for r in rows:
        print(
            f"{r['what']:32s} {r['n']:8d} {r['rate']:11.0f} {r['unit'][:-2]:>2s}/s {r['baseline_rate']:13.0f}/s "
            f"{r['ratio']:8.2f}"
        )
    result = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "events_per_process": args.events_per_process,
        "repeats": args.repeats,
        "results": rows,
    }
    out = Path(args.out)
    with atomic_output(out) as t:
        t.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
