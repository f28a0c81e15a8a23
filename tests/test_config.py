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
    assert main(["validate-config", str(p)]) == 2
    assert main(["validate-config", "config.yaml"]) == 0
