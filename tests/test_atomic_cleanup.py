"""After a killed job, the next run of it removes the hidden temporaries the killed one left."""

from fast2full.common import atomic_output


def test_next_run_removes_temporaries_of_a_killed_job(tmp_path):
    final = tmp_path / "0.root"
    stale = [tmp_path / ".0.root.ab12_XYZ.root", tmp_path / ".0.root.q9w8e7r6.root"]
    for p in stale:
        p.write_text("half-written")
    stale_dir = tmp_path / ".0.root.dirdir00.root"
    stale_dir.mkdir()
    others = [tmp_path / ".0.root.json.abcdefgh.json", tmp_path / ".10.root.abcdefgh.root", tmp_path / "0.root.part"]
    for p in others:  # temporaries of other outputs, and a resumable download: kept
        p.write_text("x")
    with atomic_output(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done"
    assert not any(p.exists() for p in [*stale, stale_dir])
    assert all(p.exists() for p in others)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["0.root", *(p.name for p in others)])
