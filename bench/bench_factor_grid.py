"""Cost of the training grid the paper factor needs, as a ratio against the previous grid, same run.

The paper factor needs every learning curve to end on the full target train split (size ``all``) and
at least 3 seeds; the previous default trained sizes 20, 60, 150 with 2 seeds.  This times one target
job (``fast2full train``: zeroshot + every mode x size x seed, one process, as rule ``train_target``)
of each grid on synthetic tensors with a target train pool of the default ``qg`` CMS-like size
(1,670 events), after one shared pretraining (not timed).  Ratio = new grid time / old grid time.

Run: ``python bench/bench_factor_grid.py [--arch dnn] [--pool 1670]``; writes
``results/bench/factor_grid.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fast2full.cli import main as cli
from fast2full.common import atomic_output
from fast2full.models.synthetic import write_synthetic_tensors

ROOT = Path(__file__).resolve().parents[1]
GRIDS = {
    "previous (20, 60, 150; 2 seeds)": (["20", "60", "150"], ["0", "1"]),
    "paper factor (20, 60, 150, all; 3 seeds)": (["20", "60", "150", "all"], ["0", "1", "2"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="dnn")
    ap.add_argument("--task", default="qg")
    ap.add_argument("--pool", type=int, default=1670)
    args = ap.parse_args(argv)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "config.yaml"
        for det in config["detectors"].values():
            det["card"] = str(ROOT / det["card"])
        cfg.write_text(yaml.safe_dump(config))
        src = config["domains"]["source"]
        write_synthetic_tensors(
            tmp / "tensors",
            args.task,
            {src: 0.0, "cms_like": 0.3},
            sizes={"train": args.pool, "val": args.pool // 3, "test": args.pool // 3},
        )
        base = [
            "train",
            "--config",
            str(cfg),
            "--task",
            args.task,
            "--arch",
            args.arch,
            "--tensors",
            str(tmp / "tensors"),
        ]
        pre = tmp / "pre"
        if (
            cli(
                base
                + [
                    "--target",
                    src,
                    "--mode",
                    "pretrain",
                    "--size",
                    "all",
                    "--seeds",
                    "0",
                    "1",
                    "2",
                    "--outdir",
                    str(pre),
                ]
            )
            != 0
        ):
            raise SystemExit("pretraining failed")
        for name, (sizes, seeds) in GRIDS.items():
            out = tmp / name.split()[0] / "{mode}" / "n{size}"
            t0 = time.perf_counter()
            rc = cli(
                base
                + [
                    "--target",
                    "cms_like",
                    "--mode",
                    "zeroshot",
                    "scratch",
                    "finetune",
                    "freeze",
                    "dann",
                    "--size",
                    *sizes,
                    "--seeds",
                    *seeds,
                    "--pretrained-dir",
                    str(pre),
                    "--outdir",
                    str(out),
                ]
            )
            if rc != 0:
                raise SystemExit(f"{name}: training failed")
            rows.append({"grid": name, "time_s": time.perf_counter() - t0})
    ratio = rows[1]["time_s"] / rows[0]["time_s"]
    print(f"{'grid':<44} {'time [s]':>9}")
    for r in rows:
        print(f"{r['grid']:<44} {r['time_s']:>9.1f}")
    print(f"ratio new / previous: {ratio:.2f} ({args.task}, {args.arch}, pool {args.pool})")
    out = ROOT / "results" / "bench" / "factor_grid.json"
    with atomic_output(out) as t:
        t.write_text(
            json.dumps(
                {
                    "machine": platform.platform(),
                    "task": args.task,
                    "arch": args.arch,
                    "pool": args.pool,
                    "rows": rows,
                    "ratio": ratio,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
