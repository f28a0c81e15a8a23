import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _testdata_dir() -> Path | None:
    env = os.environ.get("FAST2FULL_TESTDATA")
    if env and Path(env).is_dir():
        return Path(env)
    cand = ROOT.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The shared test data folder (FAST2FULL_TESTDATA, else ../shared/data)."""
    d = _testdata_dir()
    if d is None:
        pytest.skip("shared test data not found: set FAST2FULL_TESTDATA or provide ../shared/data")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def legacy_backbones(repo_root):
    """``bench/_legacy_backbones.py``: the backbones before the training engine, every padded slot computed
    (the one-model loop's, and the reference the engine's backbones are tested against)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_legacy_backbones", repo_root / "bench" / "_legacy_backbones.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
