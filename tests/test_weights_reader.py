"""Physical weights through the Delphes skim: pb per event, summing to the cross-section per process."""

import awkward as ak
import numpy as np
import pytest
import yaml

from fast2full.delphes.engine import simulate
from fast2full.delphes.samples import toy_events
from fast2full.generate import write_particles
from fast2full.readers.delphes import skim_delphes


@pytest.fixture(scope="module")
def sim_file(repo_root, tmp_path_factory):
    d = tmp_path_factory.mktemp("wsim")
    ev = toy_events(40, seed=3, process="toy")
    # generator weights that vary (as with bias2Selection): 0.5 .. 2.45
    w = 0.5 + 0.05 * np.arange(40)
    ev = ak.with_field(ev, w, "weight")
    ev = ak.with_field(ev, np.full(40, 123.0), "sigma_pb")
    write_particles(ev, d / "0.parquet")
    simulate(repo_root / "cards" / "atlas_like.tcl", d / "0.parquet", d / "0.root")
    return d / "0.root", w


@pytest.mark.parametrize("chunks", [1, 4])
def test_delphes_skim_weights_are_pb_per_event(sim_file, repo_root, tmp_path, chunks):
    path, w = sim_file
    config = yaml.safe_load((repo_root / "config.yaml").read_text())
    config["processes"]["toy"] = {"role": "background", "chunks": chunks, "events_per_chunk": 40, "settings": []}
    n = skim_delphes(str(path), str(tmp_path / "o.parquet"), config, "toy", step_size=15)
    assert n == 40
    got = ak.to_numpy(ak.from_parquet(tmp_path / "o.parquet").weight)
    # gen weight x sigma / (sum of gen weights x chunks): the chunk's events sum to sigma / chunks
    np.testing.assert_allclose(got, w * 123.0 / (w.sum() * chunks), rtol=1e-6)  # Event.Weight is float32
    assert got.sum() == pytest.approx(123.0 / chunks)
