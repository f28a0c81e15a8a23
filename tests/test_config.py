import copy

import pytest
import yaml

from fast2full.config import ConfigError, load_config, validate


@pytest.fixture()
def cfg(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


def test_default_config_is_valid(repo_root):
    load_config(repo_root / "config.yaml", base_dir=repo_root)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c.update(bogus=1), "bogus"),
        (lambda c: c["processes"]["ttbar"].update(chunks="two"), "processes.ttbar.chunks"),
        (lambda c: c["processes"]["ttbar"].pop("settings"), "processes.ttbar.settings"),
        (lambda c: c["processes"]["ttbar"].update(colour="red"), "processes.ttbar.colour"),
        (lambda c: c["detectors"]["cms_like"].update(card="cards/nope.tcl"), "detectors.cms_like.card"),
        (lambda c: c["training"].update(archs=["cnn"]), "training.archs.0"),
        (lambda c: c.update(simulator="geant4"), "simulator"),
        (lambda c: c["tensors"]["split_fractions"].update(train=0.9), "tensors.split_fractions"),
        (lambda c: c["aggregate"].update(compare_size=7), "aggregate.compare_size"),
    ],
)
def test_bad_config_names_the_key(cfg, repo_root, mutate, key):
    bad = copy.deepcopy(cfg)
    mutate(bad)
    with pytest.raises(ConfigError, match=rf"invalid key '{key}'"):
        validate(bad, base_dir=repo_root)


def test_cli_validate_config_exit_code(tmp_path, repo_root, cfg, monkeypatch):
    from fast2full.cli import main

    monkeypatch.chdir(repo_root)
    bad = copy.deepcopy(cfg)
    bad["seed"] = -1
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    assert main(["validate-config", str(p)]) == 1
    assert main(["validate-config", "config.yaml"]) == 0


# ------------------------------------------------------------------ overlays, defaults, frozen object


def test_partial_overlay_deep_merges_over_the_default(repo_root, tmp_path, cfg):
    from fast2full.config import load_config

    ov = tmp_path / "seeds.yaml"
    ov.write_text("training: {seeds: [0]}\nopendata: {local_files: null}\n")
    c = load_config(repo_root / "config.yaml", ov, base_dir=repo_root)
    assert c["training"]["seeds"] == [0]
    assert c["training"]["sizes"] == cfg["training"]["sizes"]  # untouched keys of the base survive
    assert "local_files" not in c["opendata"]  # null deletes


def test_schema_defaults_are_filled_once(repo_root, cfg):
    from fast2full.config import validate

    del cfg["aggregate"], cfg["training"]["patience"], cfg["pileup"]
    out = validate(cfg, base_dir=repo_root)
    assert out["aggregate"] == {"bootstrap": 200, "test_bootstrap": True, "confidence": 0.6827}
    assert out["training"]["patience"] == 5  # validation checks (training.patience)
    assert out["pileup"] == {"mean": 0.0, "process": "minbias"}


def test_config_is_frozen_and_json_serialisable(repo_root):
    import json
    import pickle

    from fast2full.config import Config, load_frozen

    c = load_frozen(repo_root / "config.yaml", base_dir=repo_root)
    assert isinstance(c, Config) and c.seed == 20260507 and c.simulator == "builtin"
    with pytest.raises(TypeError, match="read-only"):
        c["seed"] = 1
    with pytest.raises(TypeError, match="read-only"):
        c.training["seeds"] = [3]
    with pytest.raises(AttributeError):
        c.training["seeds"].append(3)  # lists are tuples
    assert json.loads(json.dumps(c))["training"]["seeds"] == list(c.training["seeds"])
    assert pickle.loads(pickle.dumps(c)) == c and copy.deepcopy(c) is c


def test_cli_strings_get_schema_types():
    from fast2full.config import coerce_strings, load_schema

    got = coerce_strings(
        {
            "aggregate": {"bootstrap": "17"},
            "training": {"learning_rates": ["0.01"]},
            "opendata": {"stream": "true", "release": "2024"},
        },
        load_schema(),
    )
    assert got == {
        "aggregate": {"bootstrap": 17},
        "training": {"learning_rates": [0.01]},
        "opendata": {"stream": True, "release": "2024"},
    }  # release stays a string


@pytest.mark.parametrize(
    "stage, wc, keys",
    [
        ("generate", {"process": "ttbar"}, {"seed", "generation", "processes"}),
        ("simulate", {}, {"pileup"}),
        ("skim_delphes", {"process": "ttbar"}, {"selection", "processes"}),
        ("skim_physlite", {"sample": "zjets_ee"}, {"selection", "opendata"}),
        ("tensorize", {"task": "qg"}, {"selection", "tensors", "processes", "opendata"}),
        ("train", {}, {"domains", "training"}),
        ("aggregate", {}, {"seed", "domains", "training", "aggregate"}),
    ],
)
def test_stage_slices_are_narrow_and_valid(repo_root, stage, wc, keys):
    import json

    from fast2full.config import load_config_json, load_frozen, stage_json

    c = load_frozen(repo_root / "config.yaml", base_dir=repo_root)
    text = stage_json(c, stage, **wc)
    sl = load_config_json(text)
    assert set(sl) == keys
    if stage == "generate":
        assert list(sl["processes"]) == ["ttbar"] and "chunks" not in sl["processes"]["ttbar"]
    if stage == "tensorize":
        assert list(sl["tensors"]["tasks"]) == ["qg"]
        assert sl["processes"]["minbias"] == {"role": "pileup"}
    if stage == "train":
        assert "tasks" not in sl["training"]
        assert sl["training"]["learning_rates"] == tuple(
            yaml.safe_load((repo_root / "config.yaml").read_text())["training"]["learning_rates"]
        )
    assert json.loads(text) == json.loads(json.dumps(sl))


def test_bad_slice_is_named():
    from fast2full.config import load_config_json

    with pytest.raises(ConfigError, match="invalid key 'aggregate.bootstrap'"):
        load_config_json('{"aggregate": {"bootstrap": -1}}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_json("{seed: 1")


def test_cli_validate_config_overlays_and_prints(repo_root, tmp_path, monkeypatch, capsys):
    from fast2full.cli import main

    monkeypatch.chdir(repo_root)
    ov = tmp_path / "ov.yaml"
    ov.write_text("aggregate: {bootstrap: 7}\n")
    assert main(["validate-config", "config.yaml", str(ov), "--print"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["aggregate"]["bootstrap"] == 7 and printed["training"]["patience"] == 5


def test_paper_config_as_overlay_equals_paper_config_alone(repo_root):
    """`snakemake --configfile config.paper.yaml` merges it over config.yaml: nothing of the small
    default (local files, skip list) may leak into the paper-scale study."""
    alone = load_config(repo_root / "config.paper.yaml", base_dir=repo_root)
    merged = load_config(repo_root / "config.yaml", repo_root / "config.paper.yaml", base_dir=repo_root)
    assert merged == alone


def test_medium_config_overlay(repo_root):
    """config.medium.yaml is an overlay on config.yaml (physics, cards, pile-up and model size of the
    default; more events, five seeds, sizes from 20 to the full split, a learning-rate grid): the merge
    validates, and what it changes is what it says."""
    base = load_config(repo_root / "config.yaml", base_dir=repo_root)
    med = load_config(repo_root / "config.yaml", repo_root / "config.medium.yaml", base_dir=repo_root)
    assert med["selection"] == base["selection"] and med["detectors"] == base["detectors"]
    assert med["pileup"] == base["pileup"] and med["training"]["model_size"] == base["training"]["model_size"]
    assert med["processes"]["ttbar"]["settings"] == base["processes"]["ttbar"]["settings"]
    n = {p: c["events_per_chunk"] * c["chunks"] for p, c in med["processes"].items()}
    assert n["ttbar"] >= 20_000 and n["wjets"] >= 40_000
    tr = med["training"]
    assert len(tr["seeds"]) >= 5 and tr["sizes"][0] <= 50 and tr["sizes"][-1] == "all"
    assert len(tr["learning_rates"]) >= 2 and med["aggregate"]["compare_size"] in tr["sizes"]
    assert {"ttbar", "wjets"} <= set(med["tensors"]["tasks"]["qg"]["exclude_processes"])
