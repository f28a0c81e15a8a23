import numpy as np
import pytest

from fast2full import tensorio
from fast2full.common import InputError


@pytest.mark.parametrize("ydim", [None, 2])
def test_roundtrip_and_normalisation(tmp_path, ydim):
    rng = np.random.default_rng(1)
    n, N, F = 50, 4, 3
    x = rng.normal(5, 2, (n, N, F)).astype(np.float32)
    mask = rng.random((n, N)) > 0.3
    x[~mask] = 0
    y = rng.random(n) if ydim is None else rng.random((n, ydim))
    meta = {
        "task": "t",
        "domain": "d",
        "split": "train",
        "features": list("abc"),
        "units": ["GeV"] * 3,
        "norm": {"mean": [5.0] * 3, "std": [2.0] * 3},
    }
    p = tmp_path / "t.parquet"
    tensorio.write(p, x=x, mask=mask, y=y, baseline=y, weight=np.ones(n), event_id=np.arange(n), meta=meta)
    raw = tensorio.load(p, raw=True)
    np.testing.assert_array_equal(raw.x, x)
    np.testing.assert_array_equal(raw.mask, mask)
    np.testing.assert_allclose(raw.y, y.astype(np.float32))
    norm = tensorio.load(p)
    np.testing.assert_allclose(norm.x[mask], (x[mask] - 5) / 2, rtol=1e-6)
    assert (norm.x[~mask] == 0).all()
    assert norm.meta["n_rows"] == n and norm.meta["max_objects"] == N


def test_nested_subsets(tmp_path):
    n = 100
    ts = tensorio.TensorSet(
        np.zeros((n, 1, 1), np.float32),
        np.ones((n, 1), bool),
        np.arange(n, dtype=np.float32),
        np.zeros(n, np.float32),
        np.ones(n),
        np.arange(n),
    )
    small, big = ts.nested(10, seed=3), ts.nested(20, seed=3)
    np.testing.assert_array_equal(big.event_id[:10], small.event_id)
    assert set(ts.nested(10, seed=4).event_id) != set(small.event_id)


def test_not_a_tensor_file(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"garbage")
    with pytest.raises(InputError, match="x.parquet"):
        tensorio.load(p)
