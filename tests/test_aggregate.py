"""The aggregate stage on synthetic metrics.json sets: tables, factors, summary, figures, errors."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fast2full.aggregate import aggregate, curve_points, expected_combinations, load_metrics
from fast2full.cli import main
from fast2full.common import Fast2FullError, InputError

#: effective-size multiplier per mode: a fine-tuned model at n performs like scratch at SHIFT * n
SHIFT = {"scratch": 1.0, "finetune": 2.0, "freeze": 1.5, "dann": 3.0}
SEED_OFFSET = 0.002
BASELINE = {"auc": 0.70, "met_resolution": 30.0}


def auc(n: float) -> float:
    return 0.55 + 0.03 * math.log(n)


def resolution(n: float) -> float:
    return 40.0 - 2.0 * math.log(n)


#: events in the full synthetic target train split (size "all")
POOL = 1000


def _record(task, arch, target, mode, size, seed, n_eff, n_train=None):
    metric = "met_resolution" if task == "met" else "auc"
    v = (resolution if task == "met" else auc)(n_eff) + SEED_OFFSET * (seed - 1)
    fpr = np.linspace(0.0, 1.0, 11)
    steps = 10 * (size if isinstance(size, int) else 1000)
    return {
        "task": task,
        "arch": arch,
        "target": target,
        "mode": mode,
        "size": size,
        "n_train": n_train
        if n_train is not None
        else (size if size != "all" else (5000 if mode == "pretrain" else POOL)),
        "capped": n_train is not None,
        "seed": seed,
        "metric": metric,
        "test_auc": None if metric != "auc" else v,
        "roc": None if metric != "auc" else {"fpr": fpr.tolist(), "tpr": (fpr ** ((1 - v) / v)).tolist()},
        "test_loss": 1.0 / (1.0 + n_eff),
        "val_loss": 1.0 / (1.0 + n_eff),
        "met_resolution": v if metric == "met_resolution" else None,
        "baseline": {
            "name": "cut-based",
            "test_auc": BASELINE["auc"] if metric == "auc" else None,
            "met_resolution": BASELINE["met_resolution"] if metric != "auc" else None,
        },
        "lr": 1e-3,
        "epochs": 5,
        "steps": steps,
        "steps_total": 2 * steps,
        "n_params": 1234,
        "wall_time_s": 1.0,
        "device": "cpu",
        "pretrained_from": None,
        "model_size": "small",
    }


def write_metrics(root: Path, config: dict, drop: set[tuple] = frozenset(), cap: int | None = None) -> list[str]:
    """A full synthetic training grid for ``config``; ``drop``: (task, arch, target, mode) left out."""
    tr = config["training"]
    paths = []

    def put(rec):
        d = root / rec["task"] / rec["arch"] / rec["target"] / rec["mode"] / f"n{rec['size']}" / f"seed{rec['seed']}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "metrics.json").write_text(json.dumps(rec))
        paths.append(str(d / "metrics.json"))

    for task in tr["tasks"]:
        for arch in tr["archs"]:
            for seed in tr["seeds"]:
                put(_record(task, arch, config["domains"]["source"], "pretrain", "all", seed, 5000))
            for target in tr["targets"][task]:
                if f"{task}/{target}" in tr.get("skip", {}):
                    continue
                for seed in tr["seeds"]:
                    put(_record(task, arch, target, "zeroshot", 0, seed, 12))
                for mode in tr["modes"]:
                    if (task, arch, target, mode) in drop:
                        continue
                    for size in tr["sizes"]:
                        if size == "all":
                            n_train, n = (cap or POOL), (cap or POOL)
                        else:
                            n_train = min(size, cap) if cap is not None and size > cap else None
                            n = n_train or size
                        for seed in tr["seeds"]:
                            put(_record(task, arch, target, mode, size, seed, SHIFT[mode] * n, n_train))
    return paths


@pytest.fixture
def small_config(repo_root, tmp_path):
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config["training"].update(
        {
            "tasks": ["sigbkg", "met"],
            "archs": ["dnn"],
            "modes": ["scratch", "finetune", "freeze"],
            "targets": {"sigbkg": ["cms_like", "atlas_fullsim"], "met": ["cms_like", "atlas_fullsim"]},
            "skip": {"sigbkg/atlas_fullsim": "no ttbar signal in the PHYSLITE example"},
            "sizes": [30, 100, 300, "all"],
            "seeds": [0, 1, 2],
        }
    )
    config["aggregate"] = {"bootstrap": 50, "confidence": 0.68, "compare_size": 100}
    path = tmp_path / "config.yaml"
    for det in config["detectors"].values():  # the config is read from tmp_path: absolute card paths
        det["card"] = str(repo_root / det["card"])
    path.write_text(yaml.safe_dump(config))
    return config, path


def test_cli_writes_every_output(small_config, tmp_path):
    config, cfg_path = small_config
    metrics = write_metrics(tmp_path / "train", config)
    summary, figures = tmp_path / "summary", tmp_path / "figures"
    rc = main(
        [
            "aggregate",
            "--config",
            str(cfg_path),
            "--summary-dir",
            str(summary),
            "--figure-dir",
            str(figures),
            "--metrics",
            *metrics,
        ]
    )
    assert rc == 0
    for name in ("metrics.parquet", "metrics.csv", "curves.csv", "reduction_factors.csv", "summary.md"):
        assert (summary / name).stat().st_size > 0, name
    table = pd.read_parquet(summary / "metrics.parquet")
    assert len(table) == len(metrics) == len(pd.read_csv(summary / "metrics.csv"))
    factors = pd.read_csv(summary / "reduction_factors.csv")
    combos = expected_combinations(config)
    assert len(combos) == 9  # sigbkg x cms_like + met x 2 targets, x 3 modes
    assert list(zip(factors.task, factors.arch, factors.target, factors["mode"])) == combos
    # the synthetic fine-tuned curve is scratch shifted by exactly 2x in n
    ft = factors[(factors["mode"] == "finetune")]
    np.testing.assert_allclose(ft["factor_n30"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(ft["factor_n100"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(ft["factor_n300"], 2.0, rtol=1e-6)  # 600 lies inside the curve (full = 1000)
    assert (ft["factor_nall_bound"] == "lower").all()  # 2 x the full split is beyond the scratch range
    fr = factors[(factors["mode"] == "freeze")]
    np.testing.assert_allclose(fr["factor_n30"], 1.5, rtol=1e-6)
    assert (factors.loc[factors["mode"] == "scratch", "factor_n30_display"] == "reference").all()
    # the paper factor against scratch on the full split (n_full = POOL), known analytically
    for _, r in ft.iterrows():
        fn, hib = (resolution, False) if r["task"] == "met" else (auc, True)
        s_full = fn(POOL) + 0.0  # seed offsets average to zero over seeds 0, 1, 2
        level = 0.99 * s_full if hib else BASELINE["met_resolution"] - 0.99 * (BASELINE["met_resolution"] - s_full)
        n99 = math.exp((level - fn(1.0)) / (fn(math.e) - fn(1.0))) / SHIFT["finetune"]
        assert r["n_full"] == POOL and r["paper_level"] == pytest.approx(level, rel=1e-4)
        assert r["paper_factor"] == pytest.approx(POOL / n99, rel=5e-3), r["task"]  # CSV: 3 digits
        assert r["paper_factor_bound"] == "exact" and "[" in r["paper_factor_display"]
    md = (summary / "summary.md").read_text()
    assert "no ttbar signal in the PHYSLITE example" in md
    assert "Matched-size factor" in md and "Paper factor" in md
    assert "seeds only: no predictions.parquet from train" in md
    assert "Provenance: fast2full" in md and "config `sha256:" in md
    expected_figs = {
        f"{k}_{t}_dnn_{g}"
        for t, g in [("sigbkg", "cms_like"), ("met", "cms_like"), ("met", "atlas_fullsim")]
        for k in ("curve", "compute", "loss")
    }
    expected_figs |= {
        "roc_sigbkg_dnn_cms_like",
        "modes_sigbkg_cms_like_n100",
        "modes_met_cms_like_n100",
        "modes_met_atlas_fullsim_n100",
        "curves_sigbkg",
        "curves_met",
        "loss_sigbkg_dnn_atlas_like_pretrain",
        "loss_met_dnn_atlas_like_pretrain",
    }
    files = {p.name for p in figures.iterdir()}
    assert files == {f"{s}.{ext}" for s in expected_figs for ext in ("pdf", "png")}
    assert all((figures / f).stat().st_size > 0 for f in files)


def test_missing_combination_gets_a_row(small_config, tmp_path):
    config, _ = small_config
    metrics = write_metrics(tmp_path / "train", config, drop={("met", "dnn", "cms_like", "freeze")})
    table, _ = load_metrics(metrics)
    from fast2full.aggregate import AggregateSettings, reduction_tables

    factors = reduction_tables(table, config, AggregateSettings(bootstrap=0)).factors
    row = factors[(factors.task == "met") & (factors.target == "cms_like") & (factors["mode"] == "freeze")]
    assert row["status"].tolist() == ["missing"]
    assert row["factor_n30_display"].tolist() == ["missing"]
    assert len(factors) == len(expected_combinations(config))


def test_capped_sizes_collapse_to_one_point(small_config, tmp_path):
    config, _ = small_config
    metrics = write_metrics(tmp_path / "train", config, cap=100)
    table, _ = load_metrics(metrics)
    pts = curve_points(table, "met", "dnn", "cms_like", "scratch")
    # 100, 300 and the full split all used the same 100 events: one point, the full split's
    assert pts.tokens == ["30", "all"] and pts.x.tolist() == [30.0, 100.0] and pts.full
    assert pts.collapsed == {"100": 100.0, "300": 100.0}
    from fast2full.aggregate import AggregateSettings, reduction_tables

    factors = reduction_tables(table, config, AggregateSettings(bootstrap=0)).factors
    ft = factors[(factors.task == "met") & (factors["mode"] == "finetune")]
    assert ft["factor_n300_display"].str.startswith("capped").all()


@pytest.mark.parametrize(
    "content,cause",
    [
        ("{not json", "not valid JSON"),
        ('{"task": "qg"}', "missing key"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_metrics_file_names_file_and_leaves_nothing(small_config, tmp_path, content, cause, capsys):
    config, cfg_path = small_config
    metrics = write_metrics(tmp_path / "train", config)
    Path(metrics[3]).write_text(content)
    with pytest.raises(InputError, match=cause) as exc:
        load_metrics(metrics)
    assert metrics[3] in str(exc.value)
    summary, figures = tmp_path / "summary", tmp_path / "figures"
    rc = main(
        [
            "aggregate",
            "--config",
            str(cfg_path),
            "--summary-dir",
            str(summary),
            "--figure-dir",
            str(figures),
            "--metrics",
            *metrics,
        ]
    )
    assert rc == 1
    assert metrics[3] in capsys.readouterr().err
    assert not figures.exists()
    assert not summary.exists() or not any(summary.iterdir())


def test_duplicate_results_are_an_error(small_config, tmp_path):
    config, _ = small_config
    metrics = write_metrics(tmp_path / "train", config)
    dup = tmp_path / "copy" / "metrics.json"
    dup.parent.mkdir()
    dup.write_text(Path(metrics[5]).read_text())
    with pytest.raises(Fast2FullError, match="duplicate result"):
        load_metrics([*metrics, str(dup)])


def test_unknown_mode_is_an_input_error(tmp_path):
    rec = _record("qg", "dnn", "cms_like", "finetune", 30, 0, 30)
    rec["mode"] = "transfer"
    p = tmp_path / "metrics.json"
    p.write_text(json.dumps(rec))
    with pytest.raises(InputError, match="unknown mode"):
        load_metrics([p])


def test_aggregate_is_idempotent_over_existing_outputs(small_config, tmp_path):
    config, _ = small_config
    config = {**config, "training": {**config["training"], "tasks": ["met"], "targets": {"met": ["cms_like"]}}}
    metrics = write_metrics(tmp_path / "train", config)
    for _ in range(2):  # the second run replaces the figure folder and the tables
        out = aggregate(metrics, config, tmp_path / "summary", tmp_path / "figures")
    assert all(p.stat().st_size > 0 for p in out.values())
    assert (tmp_path / "figures" / "curve_met_dnn_cms_like.png").is_file()


def test_compute_columns_add_pretraining_to_transfer_modes(small_config, tmp_path):
    config, _ = small_config
    table, _ = load_metrics(write_metrics(tmp_path / "train", config))
    pre = table.loc[(table["mode"] == "pretrain") & (table["task"] == "met"), "steps_total"].mean()
    row = table[(table["task"] == "met") & (table["mode"] == "finetune")].iloc[0]
    assert row["steps_incl_pretrain"] == row["steps_total"] + pre
    row = table[(table["task"] == "met") & (table["mode"] == "scratch")].iloc[0]
    assert row["steps_incl_pretrain"] == row["steps_total"]


@pytest.mark.slow
def test_real_training_outputs_aggregate(small_config, tmp_path):
    """The contract with `fast2full train`: tiny real jobs on synthetic tensors, then aggregate."""
    from fast2full.models.synthetic import write_synthetic_tensors
    from fast2full.train import JobSpec, TrainSettings, run_job

    config, _ = small_config
    config["training"].update(
        {
            "tasks": ["sigbkg"],
            "modes": ["scratch", "finetune"],
            "sizes": [20, 60, "all"],
            "targets": {"sigbkg": ["cms_like"]},
            "seeds": [0, 1],
        }
    )
    source, target = config["domains"]["source"], "cms_like"
    tensors = tmp_path / "tensors"
    write_synthetic_tensors(
        tensors, "sigbkg", {source: 0.0, target: 0.2}, sizes={"train": 300, "val": 100, "test": 200}, max_objects=6
    )
    settings = TrainSettings(
        learning_rates=[3e-3],
        min_steps=5,
        max_steps=20,
        pretrain_min_steps=5,
        pretrain_max_steps=30,
        patience=2,
        batch_size=64,
        model_size="tiny",
        source=source,
    )

    def job(mode, size, dom=target, pretrained=None):
        out = tmp_path / "train" / "sigbkg" / "dnn" / dom / mode / f"n{size}"
        run_job(
            JobSpec(
                task="sigbkg",
                arch="dnn",
                target=dom,
                mode=mode,
                size=str(size),
                seeds=[0, 1],
                tensors=tensors,
                outdir=out,
                pretrained_dir=pretrained,
            ),
            settings,
        )
        return out

    pre = job("pretrain", "all", dom=source)
    job("zeroshot", 0, pretrained=pre)
    for mode in ("scratch", "finetune"):
        for size in (20, 60, "all"):
            job(mode, size, pretrained=None if mode == "scratch" else pre)
    metrics = sorted(str(p) for p in (tmp_path / "train").rglob("metrics.json"))
    assert len(metrics) == 2 * (1 + 1 + 6)
    out = aggregate(metrics, config, tmp_path / "summary", tmp_path / "figures")
    factors = pd.read_csv(out["reduction_factors.csv"], keep_default_na=False)
    assert len(factors) == 2
    ft = factors[factors["mode"] == "finetune"].iloc[0]
    assert ft["status"] == "ok" and ft["factor_n20_display"] and ft["baseline_name"]
    assert ft["n_full"] == 300 and ft["full_split"]  # the whole synthetic target train split
    assert ft["paper_factor_display"] and ft["paper_factor_bound"] in ("exact", "lower", "never", "n/a")
    from fast2full import predictions

    if all(predictions.path_for(p).is_file() for p in metrics if "/pretrain/" not in p):  # train writes them
        assert ft["bootstrap"].startswith("seeds + test events (200 events")
    else:
        assert ft["bootstrap"] == "seeds only: no predictions.parquet from train"
    assert (tmp_path / "figures" / "roc_sigbkg_dnn_cms_like.png").stat().st_size > 0


@pytest.mark.parametrize("configured,expected", [(None, 30), (100, 100), (1000, 30)])
def test_compare_size_must_be_a_trained_size(configured, expected):
    from fast2full.aggregate import AggregateSettings, compare_size

    config = {"training": {"sizes": [300, 30, 100]}}
    assert compare_size(config, AggregateSettings(compare_size=configured)) == expected


def test_roc_on_grid_uses_upper_envelope_of_steps():
    from fast2full.aggregate import roc_on_grid

    fpr = [0.0, 0.0, 0.5, 0.5, 1.0]
    tpr = [0.0, 0.6, 0.6, 0.9, 1.0]
    np.testing.assert_allclose(
        roc_on_grid(fpr, tpr, np.array([0.0, 0.25, 0.5, 0.75, 1.0])), [0.6, 0.75, 0.9, 0.95, 1.0]
    )


def test_single_seed_gives_factors_without_intervals(small_config, tmp_path):
    config, _ = small_config
    config = {
        **config,
        "training": {**config["training"], "tasks": ["sigbkg"], "seeds": [0], "modes": ["scratch", "finetune"]},
    }
    metrics = write_metrics(tmp_path / "train", config)
    out = aggregate(metrics, config, tmp_path / "summary", tmp_path / "figures")
    ft = pd.read_csv(out["reduction_factors.csv"]).set_index("mode").loc["finetune"]
    assert ft["factor_n30"] == pytest.approx(2.0) and ft["factor_n30_display"] == "2.00 (no interval)"


@pytest.mark.parametrize(
    "name,short",
    [
        ("HT: scalar sum of the selected jets' pT in GeV (higher = more ttbar-like)", "HT"),
        ("-ntrk of the tagged jet (fewer tracks = more quark-like)", "-ntrk of the tagged jet"),
        ("", "baseline"),
        ("x" * 40, "x" * 31 + "…"),
    ],
)
def test_baseline_legend_name(name, short):
    from fast2full.aggregate import short_name

    assert short_name(name) == short


def _write_predictions(metrics_paths, n_events=400, seed=0):
    """A predictions.parquet beside every target-domain metrics.json, and the metric in the
    metrics.json recomputed from it (so the two agree, as train writes them)."""
    from fast2full import predictions
    from fast2full.aggregate import testboot

    rng = np.random.default_rng(seed)
    ids = np.arange(n_events) * 3 + 1
    y = (np.arange(n_events) % 2).astype(float)
    truth = rng.normal(0, 30, (n_events, 2))
    reco = truth + rng.normal(0, 12, (n_events, 2))
    for mp in metrics_paths:
        rec = json.loads(Path(mp).read_text())
        if rec["mode"] == "pretrain":
            continue
        n_eff = max(rec["n_train"], 10) * SHIFT.get(rec["mode"], 1.0)
        perm = rng.permutation(n_events)  # file order differs from file to file: aggregate aligns by ID
        if rec["task"] == "met":
            pred = truth + rng.normal(0, 1, (n_events, 2)) * (14.0 - math.log(n_eff))
            p = predictions.Predictions("met", ids, np.ones(n_events), truth, pred, reco)
            rec["met_resolution"] = testboot.central(p)
            rec["baseline"]["met_resolution"] = testboot.central(p, which="baseline")
        else:
            score = rng.normal(size=n_events) + 0.3 * math.log(n_eff) * y
            p = predictions.Predictions(rec["task"], ids, np.ones(n_events), y, score, rng.normal(size=n_events) + y)
            rec["test_auc"] = testboot.central(p)
            rec["baseline"]["test_auc"] = testboot.central(p, which="baseline")
        predictions.write(predictions.path_for(mp), p.subset(perm))
        Path(mp).write_text(json.dumps(rec))


def test_test_event_bootstrap_from_predictions(small_config, tmp_path):
    config, _ = small_config
    config = {**config, "training": {**config["training"], "tasks": ["sigbkg"], "modes": ["scratch", "finetune"]}}
    metrics = write_metrics(tmp_path / "train", config)
    _write_predictions(metrics)
    out = aggregate(metrics, config, tmp_path / "summary", tmp_path / "figures")
    factors = pd.read_csv(out["reduction_factors.csv"], keep_default_na=False)
    assert (factors["bootstrap"] == "seeds + test events (400 events)").all()
    pts = pd.read_csv(out["curves.csv"])
    assert (pts["band_high"] > pts["band_low"]).all()
    assert "seeds + test events" in out["summary.md"].read_text()
    # one file missing: the whole (task, target) falls back to seeds only, and says so
    from fast2full import predictions

    predictions.path_for(metrics[-1]).unlink()
    out = aggregate(metrics, config, tmp_path / "summary", tmp_path / "figures")
    factors = pd.read_csv(out["reduction_factors.csv"], keep_default_na=False)
    assert factors["bootstrap"].str.startswith("seeds only: 1 of").all()


@pytest.mark.parametrize("case", ["first_target_without_metric", "only_pretrain"])
def test_thin_data_gives_skipped_panels_not_a_crash(small_config, tmp_path, case):
    """The issue's crash: a task whose first target has no usable metric, or only pretrain results."""
    config, _ = small_config
    metrics = write_metrics(tmp_path / "train", config)
    keep = []
    for mp in metrics:
        rec = json.loads(Path(mp).read_text())
        if case == "only_pretrain" and rec["mode"] != "pretrain":
            continue
        if case == "first_target_without_metric" and rec["task"] == "met" and rec["target"] == "cms_like":
            rec["met_resolution"] = None
            Path(mp).write_text(json.dumps(rec))
        keep.append(mp)
    out = aggregate(keep, config, tmp_path / "summary", tmp_path / "figures")
    md = out["summary.md"].read_text()
    section = md.split("## Skipped figure panels")[1].split("##")[0]
    if case == "only_pretrain":
        assert "only pretraining results" in section
    else:
        assert "`curve_met_dnn_cms_like`: no usable metric (all null)" in section
    assert (tmp_path / "figures" / "curves_met.png").stat().st_size > 0


def test_definitions_agree_in_docs_readme_and_summary(repo_root, small_config, tmp_path):
    from fast2full import definitions

    for rel in ("docs/results.md", "README.md"):
        text = (repo_root / rel).read_text()
        blocks = definitions.blocks_in(text)
        assert blocks.get("factor-definitions") == definitions.FACTORS, rel
        assert definitions.render(text) == text, f"{rel}: run python -m fast2full.definitions {rel}"
    assert definitions.blocks_in((repo_root / "docs/results.md").read_text())["factor-details"] == definitions.DETAILS
    config, _ = small_config
    config = {**config, "training": {**config["training"], "tasks": ["met"], "targets": {"met": ["cms_like"]}}}
    out = aggregate(write_metrics(tmp_path / "train", config), config, tmp_path / "s", tmp_path / "f")
    md = out["summary.md"].read_text()
    assert definitions.FACTORS in md and definitions.DETAILS in md


def test_csv_floats_are_rounded_to_their_precision():
    from fast2full.aggregate import round_table

    df = pd.DataFrame(
        {
            "value": [0.123456789012, 13.2412345678],
            "factor_n20": [2.34567, 0.0123456],
            "paper_level": [0.7912345678, np.nan],
            "size": ["20", "all"],
        }
    )
    r = round_table(df)
    assert r["value"].tolist() == [0.123457, 13.2412]
    assert r["factor_n20"].tolist() == [2.35, 0.0123]
    assert r["paper_level"].iloc[0] == 0.791235 and np.isnan(r["paper_level"].iloc[1])
    assert r["size"].tolist() == ["20", "all"]


def test_binned_block_and_dann_unlabelled_in_summary(small_config, tmp_path):
    """binned.csv/.json and summary.md: per (task, arch, target, mode) at 'all' the seed mean and
    spread of each bin beside the baseline; the DANN points' unlabelled target events next to n."""
    from fast2full import taskmetrics

    config, _ = small_config
    config["training"].update({"tasks": ["met"], "modes": ["scratch", "dann"], "targets": {"met": ["cms_like"]}})
    rng = np.random.default_rng(5)
    true = rng.normal(0, 40, (400, 2))
    reco = true + rng.normal(0, 20, (400, 2))
    paths = write_metrics(tmp_path / "train", config)
    expect = {}
    for p in paths:
        rec = json.loads(Path(p).read_text())
        if rec["mode"] == "dann":
            rec["n_unlabelled"] = 700 + rec["seed"]
        if rec["size"] == "all" and rec["mode"] == "scratch":
            pred = true + rng.normal(0, 10 + rec["seed"], (400, 2))
            rec["binned"] = taskmetrics.evaluate_binned("met", _Split(true, reco), pred)
            expect[rec["seed"]] = rec["binned"]
        Path(p).write_text(json.dumps(rec))
    out = aggregate(paths, config, tmp_path / "summary", tmp_path / "figures")
    b = pd.read_csv(out["binned.csv"])
    assert json.loads(out["binned.json"].read_text())[0]["quantity"] == "resolution_x"
    assert set(b["mode"]) == {"scratch"} and set(b["size"].astype(str)) == {"all"}
    r = b[(b["quantity"] == "resolution_mean") & (b["bin"] == "20-40")].iloc[0]
    vals = [expect[s]["bins"][1]["model"]["mean"] for s in (0, 1, 2)]
    assert r["n_seeds"] == 3 and r["model_mean"] == pytest.approx(np.mean(vals), rel=1e-5)
    assert r["model_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-5)
    assert r["baseline_mean"] == pytest.approx(expect[0]["bins"][1]["reco"]["mean"], rel=1e-5)
    assert 0 < r["improvement_mean"] < 1  # the model (sigma 10-12 GeV) beats the reco MET (20 GeV)
    md = out["summary.md"].read_text()
    assert "## Binned evaluation" in md and "resolution_mean" in md and "20-40" in md
    assert "n_unlabelled (DANN)" in md
    dann_rows = [ln for ln in md.splitlines() if ln.startswith("| met | dnn | cms_like | dann |") and "| 30 |" in ln]
    assert dann_rows and all("| 701 |" in ln for ln in dann_rows), dann_rows


class _Split:
    """The fields of a met TensorSet that taskmetrics.evaluate_binned reads."""

    def __init__(self, true, reco):
        self.y, self.baseline, self.weight, self.aux = true, reco, np.ones(len(true)), {}


def test_reduced_input_source_labels_the_factor_rows(small_config, tmp_path):
    """qg on atlas_fullsim starts from the reduced-input source (fast2full.plan.REDUCED_INPUTS): its
    factor rows name that source model, its compute adds that pretraining's steps, not the other's."""
    from fast2full import plan

    config, _ = small_config
    config["training"].update(
        {"tasks": ["qg"], "modes": ["scratch", "finetune"], "targets": {"qg": ["cms_like", "atlas_fullsim"]}}
    )
    paths = write_metrics(tmp_path / "train", config)
    red = plan.reduced_source("atlas_like", "qg")
    assert red == "atlas_like_jet" and plan.sources(config, "qg") == ["atlas_like", red]
    for p in list(paths):
        rec = json.loads(Path(p).read_text())
        if rec["mode"] == "pretrain":  # the reduced-input pretraining: fewer steps (one slot per jet)
            rec.update(target=red, steps_total=7)
            d = Path(p.replace("/atlas_like/", f"/{red}/"))
            d.parent.mkdir(parents=True, exist_ok=True)
            d.write_text(json.dumps(rec))
            paths.append(str(d))
        elif rec["mode"] != "scratch":
            src = plan.source_for("atlas_like", "qg", rec["target"])
            rec["pretrained_from"] = f"results/train/qg/dnn/{src}/pretrain/nall/seed{rec['seed']}/model.ckpt"
            Path(p).write_text(json.dumps(rec))
    out = aggregate(paths, config, tmp_path / "summary", tmp_path / "figures")
    factors = pd.read_csv(out["reduction_factors.csv"])
    assert dict(zip(factors["target"], factors["source"])) == {"cms_like": "atlas_like", "atlas_fullsim": red}
    table = pd.read_parquet(out["metrics.parquet"])
    ft = table[(table["mode"] == "finetune") & (table["size"] == "30")]
    extra = dict(zip(ft["target"], ft["steps_incl_pretrain"] - ft["steps_total"]))
    assert extra == {"cms_like": 2 * 10 * 1000, "atlas_fullsim": 7}
    md = out["summary.md"].read_text()
    assert "| source model |" in md and f"qg/atlas_fullsim starts from `{red}`" in md
