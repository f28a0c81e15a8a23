"""The Delphes-tree reader and the ``skim`` CLI, on the shared real Delphes 3 files."""

from __future__ import annotations

import math
import shutil

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot
import yaml

from fast2full import objects
from fast2full.common import InputError
from fast2full.particles import complete_event_ids as event_ids
from fast2full.readers.common import read_objects
from fast2full.readers.delphes import skim_delphes

DETECTORS = ["ATLAS", "CMS"]
PARTON_LABELS = {0, 1, 2, 3, 4, 5, 21}


@pytest.fixture(scope="module")
def config(repo_root) -> dict:
    return yaml.safe_load((repo_root / "config.yaml").read_text())


@pytest.fixture(scope="module")
def skims(testdata, config, tmp_path_factory) -> dict[str, ak.Array]:
    """Each shared Delphes file skimmed once (small step size: several row groups)."""
    out = {}
    d = tmp_path_factory.mktemp("skim")
    for det in DETECTORS:
        path = d / f"{det}.parquet"
        n = skim_delphes(str(testdata / f"delphes_{det}_ttbar100.root"), str(path), config, "ttbar", step_size=37)
        assert n == 100
        assert pq.ParquetFile(path).num_row_groups == 3  # 37 + 37 + 26: read and written in chunks
        out[det] = ak.from_parquet(path)
    return out


@pytest.mark.parametrize("det", DETECTORS)
def test_contract_fields_and_dtypes(skims, det):
    objects.check(skims[det])
    assert len(skims[det]) == 100


@pytest.mark.parametrize("det", DETECTORS)
def test_values_are_sane(skims, config, det):
    ev = skims[det]
    sel = config["selection"]
    for name in objects.COLLECTIONS:
        c = ev[name]
        flat_pt = ak.to_numpy(ak.flatten(c.pt))
        assert np.all(flat_pt > sel[name]["pt_min"]), name
        assert np.all(np.abs(ak.to_numpy(ak.flatten(c.eta))) < sel[name]["abs_eta_max"]), name
        assert np.all(np.abs(ak.to_numpy(ak.flatten(c.phi))) <= math.pi + 1e-6), name
        # pT-ordered within each event
        assert ak.all(c.pt[:, :-1] >= c.pt[:, 1:]), name
    for lep in ("electrons", "muons"):
        assert set(np.unique(ak.to_numpy(ak.flatten(ev[lep].charge)))) <= {-1, 1}
        assert np.all(ak.to_numpy(ak.flatten(ev[lep].rel_iso)) < sel[lep]["rel_iso_max"])
    for rec in ("met", "gen_met"):
        assert np.all(ak.to_numpy(ev[rec].met) >= 0)
        assert np.all(np.isfinite(ak.to_numpy(ev[rec].met)))
    # ttbar with >= 1 leptonic W: real neutrinos, so the true MET is not zero
    assert np.median(ak.to_numpy(ev.gen_met.met)) > 10.0
    jets = ev.jets
    assert set(np.unique(ak.to_numpy(ak.flatten(jets.flavor)))) <= PARTON_LABELS
    ntrk = ak.to_numpy(ak.flatten(jets.ntrk))
    width = ak.to_numpy(ak.flatten(jets.trk_width))
    assert np.all(ntrk >= 0) and ntrk.mean() > 3  # jets above 25 GeV carry several tracks
    assert np.all((width >= 0) & (width <= 0.4))
    assert np.all(ev.is_signal) and set(ev.process.to_list()) == {"ttbar"}
    assert np.all(ak.to_numpy(ev.weight) > 0)
    assert len(np.unique(ak.to_numpy(ev.event_id))) == 100


@pytest.mark.parametrize("det", DETECTORS)
def test_ttbar_has_btagged_b_jets(skims, det):
    jets = ak.flatten(skims[det].jets)
    assert ak.sum(jets.btag) > 30
    # b-tagging should prefer true b jets
    b = jets.flavor == 5
    assert ak.mean(jets.btag[b]) > 3 * ak.mean(jets.btag[~b])


def test_atlas_and_cms_give_identical_types(skims):
    assert str(skims["ATLAS"].type.content) == str(skims["CMS"].type.content)
    assert skims["ATLAS"].type == skims["CMS"].type


def test_parquet_round_trip_keeps_type_and_values(skims, tmp_path):
    ev = skims["ATLAS"]
    from fast2full.readers.common import write_objects

    path = tmp_path / "again.parquet"
    assert write_objects([ev[:50], ev[50:]], path) == 100
    back = read_objects(path)
    assert back.type == ev.type
    assert ak.to_list(back) == ak.to_list(ev)


def _reference_track_vars(jet_eta, jet_phi, trk_pt, trk_eta, trk_phi):
    """Plain numpy reference for one event (the reader itself never loops)."""
    dphi = (np.asarray(jet_phi)[:, None] - np.asarray(trk_phi)[None, :] + np.pi) % (2 * np.pi) - np.pi
    dr = np.hypot(np.asarray(jet_eta)[:, None] - np.asarray(trk_eta)[None, :], dphi)
    pt = np.asarray(trk_pt)[None, :]
    cone = dr < 0.4
    ntrk = (cone & (pt > 0.5)).sum(axis=1)
    w = np.where(cone & (pt > 1.0), pt, 0.0)
    sw = w.sum(axis=1)
    width = np.where(sw > 0, (w * dr).sum(axis=1) / np.where(sw > 0, sw, 1), 0.0)
    return ntrk, width


@pytest.mark.parametrize("det", DETECTORS)
def test_track_variables_match_reference(testdata, det):
    """ntrk / trk_width per jet against a direct per-event computation on the raw tree."""
    from fast2full.readers.common import jet_track_variables

    tree = uproot.open(testdata / f"delphes_{det}_ttbar100.root")["Delphes"]
    a = tree.arrays(filter_name=["Jet.Eta", "Jet.Phi", "Track.PT", "Track.Eta", "Track.Phi"], entry_stop=8)
    ntrk, width = jet_track_variables(a["Jet.Eta"], a["Jet.Phi"], a["Track.PT"], a["Track.Eta"], a["Track.Phi"])
    for i in range(len(a)):
        ref_n, ref_w = _reference_track_vars(
            a["Jet.Eta"][i], a["Jet.Phi"][i], a["Track.PT"][i], a["Track.Eta"][i], a["Track.Phi"][i]
        )
        np.testing.assert_array_equal(ak.to_numpy(ntrk[i]), ref_n)
        np.testing.assert_allclose(ak.to_numpy(width[i]), ref_w, rtol=1e-5, atol=1e-6)


def test_track_variables_edge_cases():
    """Across the phi = +-pi seam, at the cone edge and pT thresholds; no track gives width 0."""
    from fast2full.readers.common import jet_track_variables

    jet_eta = ak.Array([[0.0, 1.0], []])
    jet_phi = ak.Array([[3.1, -1.0], []])
    trk_pt = ak.Array([[2.0, 0.7, 0.4, 5.0], [3.0]])
    trk_eta = ak.Array([[0.0, 0.1, 0.0, 1.0], [0.0]])
    trk_phi = ak.Array([[-3.1, 3.1, 3.1, -1.0 + 0.41], [0.0]])
    ntrk, width = jet_track_variables(jet_eta, jet_phi, trk_pt, trk_eta, trk_phi)
    assert ntrk.tolist() == [[2, 0], []]  # the 0.4 GeV track is below threshold; the last is outside
    seam_dr = 2 * math.pi - 6.2
    assert width[0, 0] == pytest.approx(seam_dr, rel=1e-5)  # only the 2 GeV track is above 1 GeV
    assert width[0, 1] == 0.0
    assert str(ntrk.type) == "2 * var * int32" and str(width.type) == "2 * var * float32"


@pytest.mark.parametrize("n_jets, n_tracks", [(0, 0), (2, 0), (0, 3)])
def test_track_variables_without_jets_or_tracks(n_jets, n_tracks):
    from fast2full.readers.common import jet_track_variables

    jets = ak.values_astype(ak.Array([[0.1] * n_jets, []]), np.float32)
    trks = ak.values_astype(ak.Array([[2.0] * n_tracks, []]), np.float32)
    ntrk, width = jet_track_variables(jets, jets, trks, trks, trks)
    assert ntrk.tolist() == [[0] * n_jets, []] and width.tolist() == [[0.0] * n_jets, []]
    assert str(width.type) == "2 * var * float32"


def test_event_ids_complete_generation_ids():
    full = (123 << 40) | (3 << 24) | 7
    ids = event_ids(np.array([0, 1, full, (2 << 24) | 5]), "ttbar", chunk=4)
    assert ids[2] == full
    proc = ids[0] >> 40
    assert proc == ids[1] >> 40 == ids[3] >> 40 > 0
    assert (ids[0] >> 24) & 0xFFFF == 4 and ids[1] & 0xFFFFFF == 1
    assert (ids[3] >> 24) & 0xFFFF == 2 and ids[3] & 0xFFFFFF == 5
    assert len(set(ids.tolist())) == 4
    # different chunks and processes never collide
    assert not set(event_ids(np.arange(5), "ttbar", 0)) & set(event_ids(np.arange(5), "ttbar", 1))
    assert not set(event_ids(np.arange(5), "ttbar", 0)) & set(event_ids(np.arange(5), "wjets", 0))


@pytest.mark.parametrize("chunk", [-1, 1 << 16])
def test_event_ids_reject_chunks_out_of_range(chunk):
    from fast2full.common import Fast2FullError

    with pytest.raises(Fast2FullError, match=f"chunk index {chunk} out of range"):
        event_ids(np.arange(3), "ttbar", chunk)


def test_chunk_from_file_stem(testdata, config, tmp_path):
    src = tmp_path / "sim" / "3.root"
    src.parent.mkdir()
    shutil.copy(testdata / "delphes_CMS_ttbar100.root", src)
    skim_delphes(str(src), str(tmp_path / "a.parquet"), config, "ttbar")
    ids = ak.to_numpy(ak.from_parquet(tmp_path / "a.parquet").event_id)
    assert np.all((ids >> 24) & 0xFFFF == 3)


def test_flat_named_tree_reads_like_real_delphes(testdata, config, skims, tmp_path):
    """A tree with leaves written flat (``Jet.PT``, as uproot writes them) gives the same objects."""
    from fast2full.readers.delphes import BRANCHES

    tree = uproot.open(testdata / "delphes_CMS_ttbar100.root")["Delphes"]
    paths = {p.rsplit("/", 1)[-1]: p for p in tree.keys(recursive=True)}
    raw = tree.arrays([paths[b] for bs in BRANCHES.values() for b in bs])
    leaves = {b: raw[paths[b]] for bs in BRANCHES.values() for b in bs}
    flat = tmp_path / "flat.root"
    with uproot.recreate(flat) as f:
        f.mktree("Delphes", {b: str(v.type.content) for b, v in leaves.items()}).extend(leaves)
    skim_delphes(str(flat), str(tmp_path / "flat.parquet"), config, "ttbar", chunk=0)
    assert ak.to_list(read_objects(tmp_path / "flat.parquet")) == ak.to_list(skims["CMS"])


def test_background_process_is_not_signal(testdata, config, tmp_path):
    out = tmp_path / "w.parquet"
    skim_delphes(str(testdata / "delphes_ATLAS_ttbar100.root"), str(out), config, "wjets", step_size=1000)
    ev = ak.from_parquet(out)
    assert not np.any(ev.is_signal) and set(ev.process.to_list()) == {"wjets"}


# ---------------------------------------------------------------- bad input: clear error, no output


def _no_tree(path):
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": np.float32}).extend({"x": np.arange(3, dtype=np.float32)})


def _missing_branches(path):
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {"Jet.PT": np.float32}).extend({"Jet.PT": np.arange(3, dtype=np.float32)})


def _truncated(path, testdata):
    data = (testdata / "delphes_ATLAS_ttbar100.root").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_basket(path, testdata):
    """Zeros over the middle of the file: the header and directory stay readable, baskets do not."""
    data = bytearray((testdata / "delphes_ATLAS_ttbar100.root").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = bytes(20000)
    path.write_bytes(bytes(data))


def _not_root(path):
    path.write_text("this is not a ROOT file\n")


@pytest.mark.parametrize(
    "make, cause",
    [
        ("bad_delphes", r"empty or damaged|no 'Delphes' tree|not a readable ROOT file|cannot read"),
        ("missing", r"file not found"),
        ("no_tree", r"no 'Delphes' tree.*Events"),
        ("missing_branches", r"lacks the branches Event\.Number"),
        ("truncated", r"not a readable ROOT file|cannot read"),
        ("not_root", r"not a readable ROOT file"),
        ("corrupt_basket", r"cannot read the 'Delphes' tree at entry 0 \(DeserializationError"),
    ],
)
def test_bad_input_raises_input_error_and_leaves_nothing(make, cause, testdata, config, tmp_path):
    src = tmp_path / "in" / "0.root"
    src.parent.mkdir()
    if make == "bad_delphes":
        src = testdata / "bad_delphes.root"
    elif make == "no_tree":
        _no_tree(src)
    elif make == "missing_branches":
        _missing_branches(src)
    elif make == "truncated":
        _truncated(src, testdata)
    elif make == "not_root":
        _not_root(src)
    elif make == "corrupt_basket":
        _corrupt_basket(src, testdata)
    outdir = tmp_path / "out"
    with pytest.raises(InputError, match=cause) as err:
        skim_delphes(str(src), str(outdir / "0.parquet"), config, "ttbar")
    assert str(src) in str(err.value)
    assert "\n" not in str(err.value)  # one log line
    assert not outdir.exists() or list(outdir.iterdir()) == []


def test_unknown_sample_is_an_error(testdata, config, tmp_path):
    from fast2full.common import Fast2FullError

    with pytest.raises(Fast2FullError, match="sample 'nope'"):
        skim_delphes(str(testdata / "delphes_ATLAS_ttbar100.root"), str(tmp_path / "x.parquet"), config, "nope")
    assert not (tmp_path / "x.parquet").exists()


# ---------------------------------------------------------------- CLI


def test_cli_skim_delphes(testdata, repo_root, tmp_path, monkeypatch):
    from fast2full.cli import main

    monkeypatch.chdir(repo_root)
    out = tmp_path / "skim" / "0.parquet"
    rc = main(
        [
            "skim",
            "--source",
            "delphes",
            "--config",
            "config.yaml",
            "--sample",
            "ttbar",
            "--in",
            str(testdata / "delphes_CMS_ttbar100.root"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    objects.check(read_objects(out))


def test_cli_bad_file_exits_nonzero_with_message(testdata, repo_root, tmp_path, monkeypatch, capsys):
    from fast2full.cli import main

    monkeypatch.chdir(repo_root)
    out = tmp_path / "skim" / "0.parquet"
    bad = testdata / "bad_delphes.root"
    rc = main(
        [
            "skim",
            "--source",
            "delphes",
            "--config",
            "config.yaml",
            "--sample",
            "ttbar",
            "--in",
            str(bad),
            "--out",
            str(out),
        ]
    )
    assert rc != 0
    err = capsys.readouterr().err
    assert f"ERROR fast2full: {bad}: " in err
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_cli_skim_dispatches_physlite(testdata, repo_root, tmp_path, monkeypatch):
    from fast2full.cli import main

    monkeypatch.chdir(repo_root)
    out = tmp_path / "full" / "PHYSLITE_example.parquet"
    rc = main(
        [
            "skim",
            "--source",
            "physlite",
            "--config",
            "config.yaml",
            "--sample",
            "zjets_ee",
            "--in",
            str(testdata / "PHYSLITE_example.root"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    ev = read_objects(out)
    assert set(ev.process.to_list()) == {"zjets_ee"} and not ak.any(ev.is_signal)


def test_cli_rejects_unknown_source(capsys):
    from fast2full.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["skim", "--source", "geant4", "--config", "c.yaml", "--sample", "s", "--in", "a", "--out", "b"])
    assert exc.value.code == 2
    assert "invalid choice: 'geant4'" in capsys.readouterr().err


def test_write_objects_failure_mid_stream_leaves_nothing(skims, tmp_path):
    from fast2full.readers.common import write_objects

    def chunks():
        yield skims["ATLAS"][:10]
        raise InputError("some/input.root", "damaged basket")

    out = tmp_path / "o" / "x.parquet"
    with pytest.raises(InputError, match=r"^some/input\.root: damaged basket$"):
        write_objects(chunks(), out)
    assert list(out.parent.iterdir()) == []
