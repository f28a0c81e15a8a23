"""`snakemake --profile slurm` at the repository root: profile layout, placeholders, per-rule sizing,
and a real run through a single-node SLURM (Debian slurm-wlm + munge, started by a session fixture).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from fast2full.common import Fast2FullError
from fast2full.hpc import local_slurm

ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = ROOT / "slurm" / "config.yaml"
WORKFLOW_PROFILE = ROOT / "profiles" / "default" / "config.yaml"
PLACEHOLDER_VARS = (
    "FAST2FULL_SLURM_PARTITION",
    "FAST2FULL_SLURM_GPU_PARTITION",
    "FAST2FULL_SLURM_ACCOUNT",
    "FAST2FULL_SLURM_STATUS_COMMAND",
)
SNAKEMAKE_TIMEOUT_S = 540


def _rules_defined() -> set[str]:
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))])
    return set(re.findall(r"^\s*rule\s+(\w+)\s*:", text, flags=re.M))


def _parse_profile(path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict:
    """The profile as Snakemake's own parser turns it into command-line values."""
    from snakemake.profiles import ProfileConfigFileParser

    for var in PLACEHOLDER_VARS:
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with open(path) as fh:
        return dict(ProfileConfigFileParser().parse(fh))


def _snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in PLACEHOLDER_VARS:
        env.pop(var, None)
    return env


# ---------------------------------------------------------------- layout and parsing (no SLURM)


def test_profile_name_resolves_at_repo_root(monkeypatch):
    """`--profile slurm` is looked up in ./slurm; the workflow profile is profiles/default beside the Snakefile."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(ROOT)
    found = get_profile_dir("slurm")
    assert found is not None and Path(found[1]).resolve() == SLURM_PROFILE
    assert WORKFLOW_PROFILE.is_file()
    # Snakemake 9 looks for profiles/default relative to the Snakefile's folder (the repo root) and
    # never in workflow/profiles/: a config there would be silently ignored.
    assert not (ROOT / "workflow" / "profiles" / "default" / "config.yaml").exists()


@pytest.mark.parametrize(
    ("env", "partition", "account", "status"),
    [
        ({}, "''", "''", "squeue"),
        ({"FAST2FULL_SLURM_PARTITION": "cpu", "FAST2FULL_SLURM_ACCOUNT": "hep42"}, "'cpu'", "'hep42'", "squeue"),
        ({"FAST2FULL_SLURM_STATUS_COMMAND": "sacct"}, "''", "''", "sacct"),
    ],
)
def test_slurm_profile_placeholders(monkeypatch, env, partition, account, status):
    args = _parse_profile(SLURM_PROFILE, monkeypatch, env)
    assert args["executor"] == "slurm"
    assert f"slurm_partition={partition}" in args["default-resources"]
    assert f"slurm_account={account}" in args["default-resources"]
    assert args["slurm-status-command"] == status
    assert int(args["retries"]) >= 1 and int(args["latency-wait"]) >= 30
    groups = dict(g.split("=") for g in args["groups"])
    assert set(groups) <= _rules_defined()
    assert {c.split("=")[0] for c in args["group-components"]} == set(groups.values()) == {"generate", "fastsim"}
    # the workflow profile owns per-rule sizing: a later profile would replace these keys wholesale
    assert "set-resources" not in args and "set-threads" not in args


@pytest.mark.parametrize(
    ("env", "train_partition"),
    [
        ({}, None),
        ({"FAST2FULL_SLURM_PARTITION": "cpu"}, "'cpu'"),
        ({"FAST2FULL_SLURM_PARTITION": "cpu", "FAST2FULL_SLURM_GPU_PARTITION": "gpu"}, "'gpu'"),
    ],
)
def test_workflow_profile_sizing(monkeypatch, env, train_partition):
    args = _parse_profile(WORKFLOW_PROFILE, monkeypatch, env)
    assert "default-resources" not in args  # owned by the slurm profile (later profile wins per key)
    sized: dict[str, dict[str, str]] = {}
    for item in args["set-resources"]:
        rule_res, value = item.split("=", 1)
        rule, res = rule_res.split(":")
        sized.setdefault(rule, {})[res] = value
    assert set(sized) <= _rules_defined(), "workflow profile sizes rules the workflow does not define"
    threads = dict(t.split("=") for t in args["set-threads"])
    assert set(threads) <= _rules_defined() and all(int(n) >= 1 for n in threads.values())
    for rule in ("train_pretrain", "train_target"):
        assert sized[rule]["gpu"] == "1"
        assert sized[rule].get("slurm_partition") == train_partition
    for rule, res in sized.items():
        assert {"mem_mb", "runtime"} <= set(res), rule
        mem = eval(res["mem_mb"], {"attempt": 2})  # noqa: S307 - the expression Snakemake evaluates
        assert mem >= eval(res["mem_mb"], {"attempt": 1}) > 0  # noqa: S307


def test_slurm_cores_cover_rule_threads(monkeypatch):
    """Remote jobs get min(threads, --cores) CPUs: the slurm profile must not cap the workflow's threads."""
    slurm = _parse_profile(SLURM_PROFILE, monkeypatch, {})
    threads = dict(t.split("=") for t in _parse_profile(WORKFLOW_PROFILE, monkeypatch, {})["set-threads"])
    assert int(slurm["cores"]) >= max(int(n) for n in threads.values())


def test_localrules_name_real_rules():
    text = (ROOT / "workflow" / "rules" / "hpc.smk").read_text()
    body = text.split("localrules:", 1)[1]
    names = re.findall(r"(\w+)\s*,", body)
    assert names and set(names) <= _rules_defined()


def test_dry_run_through_both_profiles(tmp_path):
    """The command as typed at the repository root builds the DAG with both profiles applied."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "slurm",
            "-n",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(ROOT / "config.yaml"),
            "--",
            "results/gen/ttbar/0.parquet",
            "results/gen/ttbar/1.parquet",
        ],
        cwd=ROOT,
        env=_snakemake_env(),
        capture_output=True,
        text=True,
        timeout=SNAKEMAKE_TIMEOUT_S,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert re.search(r"Using profiles? slurm and workflow specific profile profiles/default\b", out)
    # both chunks in one submission (group-components generate)
    assert out.count("Group job generate") == 1
    assert out.count("rule pythia_generate:") == 2


def test_dry_run_groups_simulation_chains():
    """Simulate -> skim of one chunk for both detectors: two chains, one submission (group fastsim).
    At the repository root: the cards `source` files relative to the working directory."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "slurm",
            "-n",
            "--forceall",
            "--",
            "results/skim/atlas_like/ttbar/0.parquet",
            "results/skim/cms_like/ttbar/0.parquet",
        ],
        cwd=ROOT,
        env=_snakemake_env(),
        capture_output=True,
        text=True,
        timeout=SNAKEMAKE_TIMEOUT_S,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    fastsim = out.split("Group job fastsim", 1)[1].split("Group job generate", 1)[0]
    assert out.count("Group job fastsim") == 1 and out.count("Group job generate") == 1
    assert fastsim.count("rule delphes_simulate:") == 2 and fastsim.count("rule delphes_skim:") == 2


@pytest.mark.parametrize("min_job_age", [0, 299])
def test_short_min_job_age_is_refused(min_job_age):
    with pytest.raises(Fast2FullError, match="MinJobAge"):
        local_slurm.slurm_conf_text(2, 4000, min_job_age_s=min_job_age)


def test_foreign_slurm_conf_is_left_alone(tmp_path, monkeypatch):
    layout = local_slurm.LocalSlurmLayout(conf=tmp_path / "slurm.conf")
    layout.conf.write_text("ClusterName=production\n")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "not written by fast2full" in local_slurm.missing_requirements(layout)
    with pytest.raises(Fast2FullError, match="not touching it"):
        local_slurm.start(layout)
    assert layout.conf.read_text() == "ClusterName=production\n"


def test_slurm_conf_is_single_node_without_accounting():
    conf = local_slurm.slurm_conf_text(2, 4000)
    kv = dict(
        line.split("=", 1)
        for line in conf.splitlines()
        if line and not line.startswith(("#", "NodeName", "PartitionName"))
    )
    assert kv["AccountingStorageType"] == "accounting_storage/none"
    assert int(kv["MinJobAge"]) >= 300
    assert "NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000" in conf
    assert re.search(r"^PartitionName=\S+ Nodes=localhost Default=YES", conf, flags=re.M)


# ---------------------------------------------------------------- a real SLURM


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[local_slurm.LocalSlurm]:
    """A running single-node SLURM: started here (and stopped at teardown) unless one already runs."""
    reason = local_slurm.missing_requirements()
    if reason:
        pytest.skip(reason)
    lock_dir = local_slurm.LocalSlurmLayout().run_dir
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "pytest.lock", "w") as lock:  # one pytest session at a time owns the daemons
        fcntl.flock(lock, fcntl.LOCK_EX)
        cluster = local_slurm.start()
        try:
            yield cluster
        finally:
            local_slurm.stop(cluster)


def _tiny_config(workdir: Path, events: int = 5, chunks: int = 2) -> Path:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for proc in cfg["processes"].values():
        proc["events_per_chunk"] = events
    cfg["processes"]["ttbar"]["chunks"] = chunks
    for det in cfg["detectors"].values():  # the workdir is not the repository root
        det["card"] = str(ROOT / det["card"])
    cfg.get("opendata", {}).pop("local_files", None)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.slurm
@pytest.mark.slow
def test_generation_through_slurm_matches_local_run(slurm_cluster, tmp_path):
    targets = ["results/gen/ttbar/0.parquet", "results/gen/ttbar/1.parquet"]
    runs = {"slurm": tmp_path / "slurm", "local": tmp_path / "local"}
    cmds = {
        # typed at the repository root; --directory keeps the outputs out of the checkout
        "slurm": [
            "--profile",
            "slurm",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--slurm-keep-successful-logs",
        ],
        "local": ["--cores", "2"],
    }
    logs = {}
    for name, workdir in runs.items():
        cfg = _tiny_config(workdir)
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                *cmds[name],
                "--directory",
                str(workdir),
                "--configfile",
                str(cfg),
                "--",
                *targets,
            ],
            cwd=ROOT,
            env=_snakemake_env(),
            capture_output=True,
            text=True,
            timeout=SNAKEMAKE_TIMEOUT_S,
        )
        logs[name] = res.stdout + res.stderr
        assert res.returncode == 0, f"{name} run failed:\n{logs[name][-4000:]}"

    # the jobs really went through SLURM: one grouped submission, known to slurmctld, completed there
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", logs["slurm"])
    assert len(job_ids) == 1, logs["slurm"][-3000:]
    show = subprocess.run(["scontrol", "show", "job", job_ids[0]], capture_output=True, text=True, timeout=30)
    assert "JobState=COMPLETED" in show.stdout, show.stdout + show.stderr
    assert f"WorkDir={runs['slurm']}" in show.stdout
    jobcomp = local_slurm.LocalSlurmLayout().jobcomp_log
    if not slurm_cluster.reused:  # our slurm.conf: every finished job is recorded there
        assert re.search(rf"JobId={job_ids[0]} .*JobState=COMPLETED", jobcomp.read_text())
    assert "submitted with SLURM jobid" not in logs["local"]

    # same seeds -> identical particle tables, whoever ran the job
    for target in targets:
        via_slurm = pq.read_table(runs["slurm"] / target)
        local = pq.read_table(runs["local"] / target)
        assert via_slurm.num_rows == 5
        assert via_slurm.equals(local), target
