"""Provenance records: version, commit, a config digest that ignores YAML layout but not values."""

import subprocess

import fast2full
from fast2full.provenance import config_digest, git_commit, markdown, provenance


def test_digest_depends_on_values_not_order():
    a = {"training": {"sizes": [20, 60], "seeds": [0, 1]}, "seed": 1}
    b = {"seed": 1, "training": {"seeds": [0, 1], "sizes": [20, 60]}}
    assert config_digest(a) == config_digest(b)
    assert config_digest(a).startswith("sha256:") and len(config_digest(a)) == 7 + 64
    assert config_digest(a) != config_digest({**a, "seed": 2})
    assert config_digest(None) == "unknown"


def test_record_has_every_key_and_the_real_commit(repo_root):
    prov = provenance({"x": 1})
    assert prov["fast2full_version"] == fast2full.__version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True, text=True).stdout.strip()
    if head:  # inside a checkout: the commit is the checkout's HEAD (possibly -dirty)
        assert prov["git_commit"].split("-")[0] == head
    assert "config `sha256:" in markdown(prov)


def test_commit_outside_a_checkout_is_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv("FAST2FULL_GIT_COMMIT", raising=False)
    git_commit.cache_clear()
    assert git_commit(str(tmp_path)) == "unknown"
    monkeypatch.setenv("FAST2FULL_GIT_COMMIT", "deadbeef")
    git_commit.cache_clear()
    assert git_commit(str(tmp_path)) == "deadbeef"
    git_commit.cache_clear()
