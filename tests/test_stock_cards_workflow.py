"""`simulator: builtin` with Delphes' stock ATLAS / CMS cards listed under `detectors:`: the
workflow wires them like the project's own cards (dry run) and runs generation -> simulation ->
skim with them (a small real run)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import pytest
import uproot
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
STOCK = Path(__file__).resolve().parents[1] / ".." / "shared" / "delphes" / "cards"
pytestmark = pytest.mark.skipif(
    not (STOCK / "delphes_card_ATLAS.tcl").is_file(), reason=f"Delphes' stock cards not found at {STOCK}"
)
DETS = {"delphes_atlas": "stock/delphes_card_ATLAS.tcl", "delphes_cms": "stock/delphes_card_CMS.tcl"}


def _workdir(repo_root, tmp_path, config_file, events=None):
    for name in ["Snakefile"]:
        shutil.copy(repo_root / name, tmp_path / name)
    for d in ["workflow", "cards", "envs", "src/fast2full/schemas"]:
        shutil.copytree(repo_root / d, tmp_path / d)
    (tmp_path / "stock").mkdir()
    for card in DETS.values():
        shutil.copy(STOCK / Path(card).name, tmp_path / card)  # unchanged
    config = yaml.safe_load((repo_root / config_file).read_text())
    config["simulator"] = "builtin"
    config["detectors"].update({name: {"card": card} for name, card in DETS.items()})
    if events:
        for p in config["processes"].values():
            p["events_per_chunk"] = events
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_stock_cards_are_wired_like_project_cards(repo_root, tmp_path):
    wd = _workdir(repo_root, tmp_path, "config.yaml")
    targets = [f"results/skim/{d}/ttbar/0.parquet" for d in DETS]
    res = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--cores", "1", *targets], cwd=wd, capture_output=True, text=True, timeout=300
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    rules = re.findall(r"^rule (\w+):$", out, flags=re.M)
    assert rules.count("delphes_simulate") == 2 and rules.count("delphes_skim") == 2
    for det, card in DETS.items():
        assert re.search(rf"input: .*{re.escape(card)}", out), (det, out[-3000:])
        assert f"results/sim/{det}/ttbar/0.root" in out


@pytest.mark.slow
def test_stock_card_runs_through_the_workflow(repo_root, tmp_path):
    """Generation (40 events), the builtin engine with the unchanged stock ATLAS card, the Delphes
    skim: real files at every step."""
    wd = _workdir(repo_root, tmp_path, "tests/data/config_tiny.yaml", events=40)
    target = "results/skim/delphes_atlas/ttbar/0.parquet"
    res = subprocess.run([*SNAKEMAKE, "--cores", "1", target], cwd=wd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    tree = uproot.open(wd / "results/sim/delphes_atlas/ttbar/0.root")["Delphes"]
    assert tree.num_entries == 40
    assert {"Jet", "Electron", "Muon", "Photon", "MissingET", "ScalarHT", "GenJet"} <= {
        k.split(".")[0].split("/")[0] for k in tree.keys()
    }
    njet = ak.num(tree["Jet.PT"].array())
    assert ak.mean(njet) > 2  # ttbar: jets with the card's anti-kt R = 0.6
    skim = ak.from_parquet(wd / target)
    assert len(skim) == 40
