"""The per-event predictions contract: round trip, shape checks, bad files name the file."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fast2full import predictions
from fast2full.common import InputError
from fast2full.predictions import Predictions


def _cls(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return Predictions(
        "qg",
        np.arange(n) * 7,
        rng.uniform(0.5, 2.0, n),
        (rng.random(n) > 0.5).astype(float),
        rng.normal(size=n),
        rng.normal(size=n),
        {"split": "test"},
    )


def _reg(n=40, seed=1):
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 30, (n, 2))
    return Predictions("met", np.arange(n), np.ones(n), t, t + rng.normal(0, 5, (n, 2)), t + rng.normal(0, 9, (n, 2)))


@pytest.mark.parametrize("make", [_cls, _reg])
def test_round_trip(tmp_path, make):
    p = make()
    path = predictions.write(tmp_path / "predictions.parquet", p, provenance={"git_commit": "abc"})
    q = predictions.read(path)
    assert q.task == p.task and len(q) == len(p)
    np.testing.assert_array_equal(q.event_id, p.event_id)
    np.testing.assert_allclose(q.weight, p.weight)
    for name in ("truth", "pred", "baseline"):  # stored as float32
        np.testing.assert_allclose(getattr(q, name), getattr(p, name), rtol=1e-6, atol=1e-5)
    assert q.meta["provenance"] == {"git_commit": "abc"}


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="expected"):
        Predictions("met", np.arange(3), np.ones(3), np.zeros(3), np.zeros((3, 2)), np.zeros((3, 2)))


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "predictions.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match="not a readable parquet") as exc:
        predictions.read(bad)
    assert str(bad) in str(exc.value)
    with pytest.raises(InputError, match="not found"):
        predictions.read(tmp_path / "absent.parquet")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"event_id": [1, 2]}), plain)
    with pytest.raises(InputError, match="no fast2full metadata"):
        predictions.read(plain)
    # a column missing
    p = predictions.write(tmp_path / "p.parquet", _cls())
    t = pq.read_table(p)
    pq.write_table(t.drop(["score"]).replace_schema_metadata(t.schema.metadata), tmp_path / "q.parquet")
    with pytest.raises(InputError, match="missing predictions column"):
        predictions.read(tmp_path / "q.parquet")


def test_path_beside_metrics(tmp_path):
    assert predictions.path_for(tmp_path / "seed0" / "metrics.json") == tmp_path / "seed0" / "predictions.parquet"
