"""Pythia8 generation (contract 1): content per process, seeding, pruning, bad settings, bad files."""

from __future__ import annotations

import copy
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from fast2full import generate as gen
from fast2full import particles
from fast2full.cli import main as cli_main
from fast2full.common import Fast2FullError, InputError, stable_hash64
from fast2full.config import load_config

#: events per process in the content tests (minbias: its init dominates anyway)
N_EVENTS = {"ttbar": 30, "wjets": 30, "zjets": 30, "dijet": 30, "minbias": 10}
PDG_LEPTONS = (11, 13, 15)


@pytest.fixture(scope="module")
def config(repo_root) -> dict:
    return load_config(repo_root / "config.yaml", base_dir=repo_root)


def small_config(config: dict, process: str, n: int, extra_settings: tuple[str, ...] = (), **gen_overrides) -> dict:
    cfg = copy.deepcopy(config)
    cfg["processes"][process]["events_per_chunk"] = n
    cfg["processes"][process]["settings"] = list(cfg["processes"][process]["settings"]) + list(extra_settings)
    cfg["generation"].update(gen_overrides)
    return cfg


@pytest.fixture(scope="module")
def chunks(config, tmp_path_factory) -> dict[str, ak.Array]:
    """One small chunk per configured process, written with run_generate and read back."""
    out = tmp_path_factory.mktemp("gen")
    result = {}
    for process, n in N_EVENTS.items():
        path = out / process / "0.parquet"
        gen.run_generate(small_config(config, process, n), process, 0, path)
        result[process] = particles.read_particles(path)
    return result


def hard(p: ak.Array) -> ak.Array:
    s = abs(p.status)
    return (s >= gen.STATUS_HARD_MIN) & (s <= gen.STATUS_HARD_MAX)


def mother_pid(p: ak.Array) -> ak.Array:
    m = p.mother1
    return ak.where(m >= 0, p.pid[ak.where(m >= 0, m, 0)], 0)


def is_any(values: ak.Array, choices) -> ak.Array:
    """Jagged ``np.isin``."""
    out = values == choices[0]
    for c in choices[1:]:
        out = out | (values == c)
    return out


def count_per_event(mask: ak.Array) -> np.ndarray:
    return ak.to_numpy(ak.sum(mask, axis=1))


# ---------------------------------------------------------------------------------------------
# content per process
# ---------------------------------------------------------------------------------------------


def test_ttbar_has_two_tops_and_a_lepton_from_w(chunks):
    p = chunks["ttbar"].particles
    apid = abs(p.pid)
    tops = (apid == gen.PDG_TOP) & (abs(p.status) == 22)
    assert (count_per_event(tops) == 2).all()
    assert (count_per_event(tops & (p.pid > 0)) == 1).all()
    lep_from_w = hard(p) & is_any(apid, PDG_LEPTONS) & (abs(mother_pid(p)) == gen.PDG_W)
    assert (count_per_event(lep_from_w) >= 1).all()
    # charge-symmetric filter: both lepton charges appear
    assert ak.any(lep_from_w & (p.pid > 0)) and ak.any(lep_from_w & (p.pid < 0))


@pytest.mark.parametrize("process, boson", [("wjets", gen.PDG_W), ("zjets", gen.PDG_Z)])
def test_vjets_have_their_boson(chunks, process, boson):
    p = chunks[process].particles
    has = count_per_event((abs(p.pid) == boson) & hard(p))
    assert (has >= 1).all()
    # and the boson decays to charged leptons (config: leptonic decays only)
    lep = hard(p) & is_any(abs(p.pid), PDG_LEPTONS) & (abs(mother_pid(p)) == boson)
    assert (count_per_event(lep) >= 1).all()


@pytest.mark.parametrize("process", ["dijet", "minbias"])
def test_qcd_has_no_heavy_resonance(chunks, process):
    p = chunks[process].particles
    assert not ak.any(is_any(abs(p.pid), gen.HEAVY_RESONANCES))


def test_dijet_is_gluon_rich_and_zjets_quark_rich(chunks):
    def gluon_fraction(process):
        p = chunks[process].particles
        out = p[(abs(p.status) == 23) & ((abs(p.pid) <= 5) | (p.pid == 21))]
        return ak.mean(out.pid == 21)

    assert gluon_fraction("dijet") > 0.5 > gluon_fraction("zjets")


def test_wjets_weights_from_bias(chunks, config):
    settings = config["processes"]["wjets"]["settings"]
    assert "PhaseSpace:bias2Selection = on" in settings
    w = ak.to_numpy(chunks["wjets"].weight)
    # weight = (pTHat / ref)^-pow with pTHat >= pTHatMin == ref: in (0, 1], and not constant
    assert np.all((w > 0) & (w <= 1.0 + 1e-9))
    assert np.unique(w).size > 1
    for process in ("ttbar", "dijet"):  # unweighted processes
        assert np.all(ak.to_numpy(chunks[process].weight) == 1.0)


# ---------------------------------------------------------------------------------------------
# the contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("process", list(N_EVENTS))
def test_contract_fields_types_and_ids(chunks, config, process):
    ev = chunks[process]
    n = N_EVENTS[process]
    assert len(ev) == n
    assert ev.fields == list(particles.EVENT_FIELDS)
    assert ak.fields(ev.particles) == list(particles.PARTICLE_FIELDS)
    form = str(ev.type)
    for name, dtype in particles.PARTICLE_FIELDS.items():
        assert f"{name}: {dtype}" in form
    for name in ("event_id", "seed"):
        assert ev[name].type.content.primitive == "int64"
    for name in ("weight", "sigma_pb"):
        assert ev[name].type.content.primitive == "float64"
    seed = gen.chunk_seed(config["seed"], process, 0)
    assert np.all(ak.to_numpy(ev.seed) == seed)
    assert ak.all(ev.process == process)
    expected_ids = (((stable_hash64(process) % 2**20) << 40) | (0 << 24)) + np.arange(n)
    assert np.array_equal(ak.to_numpy(ev.event_id), expected_ids)
    sigma = ak.to_numpy(ev.sigma_pb)
    assert sigma[0] > 0 and np.all(sigma == sigma[0])


@pytest.mark.parametrize("process", list(N_EVENTS))
def test_pruned_record_and_mothers(chunks, process):
    p = chunks[process].particles
    n = ak.num(p)
    # two beams first, every mother index inside the event's own list
    assert ak.all(p.status[:, :2] == particles.STATUS_BEAM)
    for m in (p.mother1, p.mother2):
        assert ak.all((m >= -1) & (m < n))
    # only the kept categories are present, final state included (with neutrinos in ttbar)
    assert ak.all(gen.prune_mask(ak.to_numpy(ak.flatten(p.pid)), ak.to_numpy(ak.flatten(p.status))))
    assert ak.all(ak.sum(p.status > 0, axis=1) > 10)
    # energies are physical (float32 precision)
    assert ak.all(p.e >= -1e-3)


def test_ttbar_final_state_has_neutrinos(chunks):
    p = chunks["ttbar"].particles
    nu = (p.status > 0) & is_any(abs(p.pid), (12, 14, 16))
    assert (count_per_event(nu) >= 1).all()


def test_prune_remaps_mothers():
    """A hand-made two-event record in nextBatch's layout: pruned mothers become -1."""
    ids = [[90, 2212, 2212, 21, 21, 6, -6, 21, 2, 24, 211], [90, 2212, 2212, 22]]
    # event 0: system, 2 beams, incoming g g (mothers: pruned ISR partons 7, 8), t tbar, ISR x2,
    # W (from the top), final pion (mother: a pruned ISR parton); event 1: beams and one photon
    status = [[-11, -12, -12, -21, -21, -22, -22, -41, -42, -22, 1], [-11, -12, -12, 1]]
    mother1 = [[0, 0, 0, 7, 8, 3, 3, 1, 2, 5, 8], [0, 0, 0, 1]]
    mother2 = [[0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 0], [0, 0, 0, 2]]
    ones = ak.ones_like(ak.Array(ids), dtype=np.float64)
    events = ak.zip(
        {
            "id": ids,
            "status": status,
            "mother1": mother1,
            "mother2": mother2,
            "p": ak.zip({"px": 0 * ones, "py": 0 * ones, "pz": ones, "e": 2 * ones}),
            "m": 0 * ones,
        }
    )
    out = gen.prune_events(events)
    assert out.pid.tolist() == [[2212, 2212, 21, 21, 6, -6, 24, 211], [2212, 2212, 22]]
    assert out.mother1.tolist() == [[-1, -1, -1, -1, 2, 2, 4, -1], [-1, -1, 0]]
    assert out.mother2.tolist() == [[-1, -1, -1, -1, 3, 3, -1, -1], [-1, -1, 1]]


# ---------------------------------------------------------------------------------------------
# seeds and reproducibility
# ---------------------------------------------------------------------------------------------


def test_same_config_gives_identical_arrays(config, tmp_path):
    cfg = small_config(config, "zjets", 5)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    gen.run_generate(cfg, "zjets", 1, a)
    gen.run_generate(cfg, "zjets", 1, b)
    assert ak.array_equal(particles.read_particles(a), particles.read_particles(b))
    c = tmp_path / "c.parquet"
    gen.run_generate(cfg, "zjets", 0, c)
    other = particles.read_particles(c)
    assert not ak.array_equal(other.particles, particles.read_particles(a).particles)
    assert other.seed[0] != particles.read_particles(a).seed[0]


def test_chunk_seeds_distinct_and_in_range(config):
    cfg = copy.deepcopy(config)
    for pc in cfg["processes"].values():
        pc["chunks"] = 2000
    seeds = np.array(list(gen.all_chunk_seeds(cfg).values()))
    assert seeds.size == 2000 * len(cfg["processes"])
    assert np.unique(seeds).size == seeds.size
    assert seeds.min() >= gen.PYTHIA_SEED_MIN and seeds.max() <= gen.PYTHIA_SEED_MAX
    gen.check_unique_seeds(cfg)
    # the seed depends on the global seed, the process and the chunk
    assert gen.chunk_seed(1, "ttbar", 0) != gen.chunk_seed(2, "ttbar", 0)
    assert gen.chunk_seed(1, "ttbar", 0) != gen.chunk_seed(1, "wjets", 0)


def test_seed_collision_is_an_error(config, monkeypatch):
    monkeypatch.setattr(gen, "chunk_seed", lambda seed, process, chunk: 42)
    with pytest.raises(Fast2FullError, match="share the Pythia seed 42"):
        gen.check_unique_seeds(config)


# ---------------------------------------------------------------------------------------------
# failures: clear error, non-zero exit, no output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        # checked before Pythia runs (fast2full.pythia_settings): name and value read-back
        ("Top:ggNonsense = on", "'Top:ggNonsense' is not a Pythia setting"),
        ("PhaseSpace:pTHatMin = 3O.", "'3O.' is not a number"),
        ("PhaseSpace:pTHatMin = 20000.", "init\\(\\) failed"),
    ],
)
def test_bad_setting_fails_cleanly(config, tmp_path, setting, message):
    cfg = small_config(config, "dijet", 3, (setting,))
    out = tmp_path / "dijet" / "0.parquet"
    with pytest.raises(Fast2FullError, match=message) as exc:
        gen.run_generate(cfg, "dijet", 0, out)
    assert "dijet" in str(exc.value)
    assert not out.exists() and not list(tmp_path.rglob("*.parquet*"))


def test_make_pythia_rejects_unknown_setting():
    with pytest.raises(Fast2FullError, match="process 'dijet': Pythia rejected the setting 'Top:ggNonsense = on'"):
        gen.make_pythia(("Top:ggNonsense = on",), "dijet")


def test_too_many_aborts_fail(config, tmp_path):
    # an impossible energy-momentum tolerance makes Pythia abort every event
    cfg = small_config(config, "dijet", 4, ("Check:epTolErr = 1e-30",), max_abort_fraction=0.25)
    out = tmp_path / "0.parquet"
    with pytest.raises(Fast2FullError, match="max_abort_fraction"):
        gen.run_generate(cfg, "dijet", 0, out)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("process, chunk, message", [("nosuch", 0, "unknown process"), ("ttbar", 99, "out of range")])
def test_bad_process_or_chunk(config, process, chunk, message):
    with pytest.raises(Fast2FullError, match=message):
        gen.chunk_spec(config, process, chunk)


def test_cli_bad_setting_exit_code(config, tmp_path, repo_root):
    import yaml

    cfg = small_config(config, "dijet", 3, ("Nonsense:key = 1",))
    for det in cfg["detectors"].values():  # the config validator checks card paths
        det["card"] = str(repo_root / det["card"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "gen" / "dijet" / "0.parquet"
    rc = cli_main(["generate", "--config", str(path), "--process", "dijet", "--chunk", "0", "--out", str(out)])
    assert rc == 1 and not out.exists()


def test_cli_writes_chunk(config, tmp_path, repo_root):
    import yaml

    cfg = small_config(config, "zjets", 3)
    for det in cfg["detectors"].values():
        det["card"] = str(repo_root / det["card"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "gen" / "zjets" / "0.parquet"
    assert cli_main(["generate", "--config", str(path), "--process", "zjets", "--chunk", "0", "--out", str(out)]) == 0
    assert len(particles.read_particles(out)) == 3


# ---------------------------------------------------------------------------------------------
# read_particles on bad files
# ---------------------------------------------------------------------------------------------


def _damage(src: Path, dst: Path, how: str) -> Path:
    data = src.read_bytes()
    if how == "truncated":
        dst.write_bytes(data[: len(data) // 2])
    elif how == "corrupt":
        dst.write_bytes(data[:8] + bytes(len(data) - 16) + data[-8:])
    elif how == "garbage":
        dst.write_bytes(b"this is not parquet\n" * 10)
    elif how == "empty":
        dst.write_bytes(b"")
    return dst


@pytest.mark.parametrize("how", ["truncated", "corrupt", "garbage", "empty"])
def test_read_particles_bad_file(chunks, tmp_path, how):
    good = tmp_path / "good.parquet"
    gen.write_particles(chunks["zjets"], good)
    bad = _damage(good, tmp_path / f"{how}.parquet", how)
    with pytest.raises(InputError) as exc:
        particles.read_particles(bad)
    assert str(bad) in str(exc.value)


def test_read_particles_missing_and_wrong_schema(tmp_path):
    with pytest.raises(InputError, match="not found"):
        particles.read_particles(tmp_path / "nope.parquet")
    other = tmp_path / "other.parquet"
    ak.to_parquet(ak.Array({"x": [1, 2, 3]}), other)
    with pytest.raises(InputError, match="missing fields"):
        particles.read_particles(other)


def test_paper_config_is_valid_and_same_physics(config, repo_root):
    paper = load_config(repo_root / "config.paper.yaml", base_dir=repo_root)
    assert paper["generation"] == config["generation"]
    assert paper["processes"].keys() == config["processes"].keys()
    for name, pc in paper["processes"].items():
        small = config["processes"][name]
        assert pc["settings"] == small["settings"] and pc.get("role") == small.get("role")
        assert pc["events_per_chunk"] * pc["chunks"] > small["events_per_chunk"] * small["chunks"]
    sizes = [s for s in paper["training"]["sizes"] if s != "all"]  # "all": the full target train split
    assert sizes == sorted(sizes) and len(paper["training"]["seeds"]) == 5
    ratios = np.array(sizes[1:]) / np.array(sizes[:-1])
    assert np.all((ratios > 2) & (ratios < 4))  # log-spaced
    gen.check_unique_seeds(paper)
