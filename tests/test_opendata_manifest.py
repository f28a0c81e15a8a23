"""The manifest from atlasopenmagic (REST API on a local server, or a saved metadata file), the CLI
round trip manifest -> fetch, and offline local files."""

from __future__ import annotations

import copy
import hashlib
import json
import socket

import pytest
from fakeportal import FakePortal

from fast2full import opendata
from fast2full.cli import main
from fast2full.common import Fast2FullError, InputError

NAME = "DAOD_PHYSLITE.37621409._000001.pool.root.1"
DSID = 700322


def base_config(**opendata_extra) -> dict:
    od = {
        "release": "2024r-pp",
        "stream": False,
        "metadata_file": None,
        "retries": 2,
        "backoff_s": 0.01,
        "timeout_s": 5.0,
        "samples": {"zjets": {"dsid": DSID, "role": "background", "max_files": 1}},
    }
    od.update(opendata_extra)
    return {"opendata": od}


@pytest.fixture()
def portal(testdata, monkeypatch):
    import atlasopenmagic.metadata as md

    with FakePortal({NAME: testdata / "PHYSLITE_example.root"}) as p:
        p.add_dataset(p.dataset_record(DSID, "Sh_2211_Zjets_test", [p.file_url("drop", NAME), p.file_url("ok", NAME)]))
        monkeypatch.setenv("ATLAS_API_BASE_URL", p.url)
        monkeypatch.setattr(md, "API_BASE_URL", p.url)  # restored after the test
        yield p


def test_manifest_records_what_the_api_returned(portal):
    m = opendata.build_manifest(base_config())
    s = m["samples"]["zjets"]
    assert m["release"] == "2024r-pp" and m["source"] == {"kind": "api", "url": portal.url}
    assert s["dsid"] == DSID and s["role"] == "background"
    assert s["cross_section_pb"] == pytest.approx(2221.2) and s["genFiltEff"] == pytest.approx(0.6899)
    assert s["kFactor"] == pytest.approx(0.9751) and s["sumOfWeights"] == pytest.approx(2.68e9)
    assert s["n_files_in_dataset"] == 2
    assert s["weight_per_pb"] == pytest.approx(2221.2 * 0.6899 * 0.9751 / 2.68e9)
    assert [f["url"] for f in s["files"]] == [portal.file_url("drop", NAME)]  # max_files: 1
    assert s["metadata"]["physics_short"] == "Sh_2211_Zjets_test"
    assert ("GET", f"/metadata/2024r-pp/{DSID}", None) in portal.log


def test_manifest_then_fetch_cli(portal, tmp_path, testdata, repo_root, monkeypatch):
    import yaml

    full = yaml.safe_load((repo_root / "config.yaml").read_text())
    full.update(base_config())
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(full))
    monkeypatch.chdir(repo_root)  # card paths in the config are relative to the project
    man, saved = tmp_path / "results/opendata/manifest.json", tmp_path / "meta.json"
    assert main(["manifest", "--config", str(cfg), "--out", str(man), "--save-metadata", str(saved)]) == 0
    out = tmp_path / "results/opendata/files/zjets/0.root"
    assert main(["fetch", "--manifest", str(man), "--sample", "zjets", "--index", "0", "--out", str(out)]) == 0
    ref = (testdata / "PHYSLITE_example.root").read_bytes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(ref).hexdigest()
    assert sum(1 for e in portal.log if e[1].startswith("/files/drop/")) == 2  # dropped once, resumed
    # a wrong index is a clear error and writes nothing
    bad = tmp_path / "results/opendata/files/zjets/5.root"
    assert main(["fetch", "--manifest", str(man), "--sample", "zjets", "--index", "5", "--out", str(bad)]) == 1
    assert not bad.exists()


def test_offline_from_saved_metadata(portal, tmp_path, monkeypatch):
    saved = tmp_path / "meta.json"
    online = opendata.write_manifest(base_config(), tmp_path / "m1.json", save_metadata=saved)
    assert str(DSID) in json.loads(saved.read_text())
    # now the API is unreachable: the saved file must be enough
    import atlasopenmagic.metadata as md

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("ATLAS_API_BASE_URL", dead)
    monkeypatch.setattr(md, "API_BASE_URL", dead)
    n_before = len(portal.log)
    offline = opendata.build_manifest(base_config(metadata_file=str(saved)))
    assert len(portal.log) == n_before  # no request at all
    assert offline["source"] == {"kind": "metadata_file", "path": str(saved)}
    assert offline["samples"]["zjets"]["files"] == online["samples"]["zjets"]["files"]
    assert offline["samples"]["zjets"]["sumOfWeights"] == online["samples"]["zjets"]["sumOfWeights"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"samples": {"other": {"dsid": 123456, "role": "signal"}}}, "opendata sample 'other' .*123456"),
        ({"metadata_file": "/nonexistent/meta.json"}, "opendata.metadata_file"),
    ],
)
def test_manifest_errors(portal, change, message):
    with pytest.raises(Fast2FullError, match=message):
        opendata.build_manifest(base_config(**change))


def test_unreachable_api_explains_offline_use(monkeypatch):
    import atlasopenmagic.metadata as md

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("ATLAS_API_BASE_URL", dead)
    monkeypatch.setattr(md, "API_BASE_URL", dead)
    # atlasopenmagic's own session retries connection errors with backoff: keep that quick here
    monkeypatch.setattr(md, "_session", None)
    with pytest.raises(Fast2FullError, match="opendata.local_files.zjets"):
        opendata.build_manifest(base_config())


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2", "not an atlasopenmagic metadata file"),
        ("[1, 2]", "not an atlasopenmagic metadata file"),
        ('{"123": {"dataset_number": "123"}}', "no record of zjets"),
    ],
)
def test_bad_metadata_file(tmp_path, text, message):
    bad = tmp_path / "meta.json"
    bad.write_text(text)
    with pytest.raises(InputError, match=message):
        opendata.build_manifest(base_config(metadata_file=str(bad)))


@pytest.mark.parametrize("text, message", [("{", "not valid JSON"), ('{"version": 99}', "not a fast2full manifest")])
def test_bad_manifest(tmp_path, text, message):
    p = tmp_path / "manifest.json"
    p.write_text(text)
    with pytest.raises(InputError, match=message):
        opendata.read_manifest(p)
    with pytest.raises(InputError, match="manifest not found"):
        opendata.read_manifest(tmp_path / "nope.json")


def test_local_files(tmp_path):
    d = tmp_path / "physlite"
    d.mkdir()
    for n in ("b.root", "a.root", "notes.txt"):
        (d / n).write_text("x")
    cfg = base_config(local_files={"zjets": str(d), "other": ["x/1.root", "x/2.root"], "single": "y.root"})
    assert opendata.local_files_for(cfg, "zjets") == [str(d / "a.root"), str(d / "b.root")]
    assert opendata.local_files_for(cfg, "other") == ["x/1.root", "x/2.root"]
    assert opendata.local_files_for(cfg, "single") == ["y.root"]
    assert opendata.local_files_for(cfg, "missing") is None
    assert opendata.local_files_for(copy.deepcopy(base_config()), "zjets") is None


def test_other_release_fetches_its_catalogue(testdata, monkeypatch):
    """A release other than the client's current one goes through set_release (paginated /datasets)."""
    import atlasopenmagic.metadata as md

    release = "2025e-13tev-beta"
    monkeypatch.setattr(md, "current_release", md.current_release)  # restored after the test
    with FakePortal({NAME: testdata / "PHYSLITE_example.root"}, release=release) as p:
        p.add_dataset(p.dataset_record(DSID, "Sh_2211_Zjets_test", [p.file_url("ok", NAME)]))
        monkeypatch.setenv("ATLAS_API_BASE_URL", p.url)
        monkeypatch.setattr(md, "API_BASE_URL", p.url)
        m = opendata.build_manifest(base_config(release=release))
        paths = [e[1] for e in p.log]
    assert m["release"] == release and "/datasets" in paths
    assert m["samples"]["zjets"]["files"][0]["url"] == p.file_url("ok", NAME)


def test_fetch_of_a_local_path_copies(tmp_path, testdata):
    src = testdata / "PHYSLITE_example.root"
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"version": 1, "samples": {"zjets": {"files": [{"index": 0, "url": str(src)}]}}}))
    out = tmp_path / "files/zjets/0.root"
    opendata.fetch_from_manifest(man, "zjets", 0, out)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(InputError, match="no sample 'other'"):
        opendata.fetch_from_manifest(man, "other", 0, tmp_path / "x.root")


def test_stream_skim_cli_reads_the_manifest_url(portal, tmp_path, repo_root, monkeypatch):
    """opendata.stream in the workflow: `skim --manifest M --index i` reads the file's URL remotely."""
    import awkward as ak
    import yaml

    full = yaml.safe_load((repo_root / "config.yaml").read_text())
    full.update(base_config(stream=True))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(full))
    monkeypatch.chdir(repo_root)
    man = tmp_path / "manifest.json"
    assert main(["manifest", "--config", str(cfg), "--out", str(man)]) == 0
    m = json.loads(man.read_text())
    m["samples"]["zjets"]["files"][0]["url"] = portal.file_url("ok", NAME)  # the fault-free copy
    man.write_text(json.dumps(m))
    out = tmp_path / "skim.parquet"
    n_before = len(portal.log)
    assert (
        main(
            [
                "skim",
                "--source",
                "physlite",
                "--config",
                str(cfg),
                "--sample",
                "zjets",
                "--manifest",
                str(man),
                "--index",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(ak.from_parquet(out)) == 100
    assert any(e[1].startswith("/files/ok/") for e in portal.log[n_before:])
    assert not (tmp_path / "results/opendata/files").exists()  # nothing downloaded


# --- the API's answers: a missing dataset, a broken API, per-file size and checksum ------------------


def test_dataset_the_release_lacks_is_named(portal):
    with pytest.raises(opendata.DatasetNotInRelease, match="release 2024r-pp has no dataset 999999") as err:
        opendata.build_manifest(base_config(samples={"ttbar": {"dsid": 999999, "role": "signal"}}))
    assert "opendata.samples.ttbar.dsid" in str(err.value) and "HTTP 404" in str(err.value)


@pytest.mark.parametrize(
    "fault, message",
    [
        ("html", r"answered HTTP 200 but not JSON \(Content-Type text/html\); body starts '<!DOCTYPE html>"),
        ("html404", r"answered HTTP 404 Not Found \(Content-Type text/html\); body starts '<!DOCTYPE html>.*\.\.\."),
        ("500", r"answered HTTP 500 Internal Server Error .*Internal Server Error"),
    ],
)
def test_broken_api_says_what_it_answered(portal, fault, message):
    """Before: every one of these read "Dataset '700322' not found in release '2024r-pp': Expecting value"."""
    portal.api_fault = fault
    with pytest.raises(opendata.APIError, match=message) as err:
        opendata.build_manifest(base_config())
    text = str(err.value)
    assert f"{portal.url}/metadata/2024r-pp/{DSID}" in text and "zjets" in text
    assert "not found in release" not in text


def test_manifest_says_when_the_api_gives_no_size_or_checksum(portal):
    s = opendata.build_manifest(base_config())["samples"]["zjets"]
    assert s["files"][0]["size"] is None and s["files"][0]["checksum"] is None
    assert "no per-file size or checksum" in s["integrity"]


def test_per_file_size_and_checksum_from_the_api_are_recorded_and_enforced(testdata, tmp_path, monkeypatch):
    """A record whose file_list holds objects (uri, size, checksum: the CERN Open Data file-index
    format) puts both into the manifest, and fetch then refuses a file that differs."""
    import zlib

    import atlasopenmagic.metadata as md

    data = (testdata / "PHYSLITE_example.root").read_bytes()
    with FakePortal({NAME: testdata / "PHYSLITE_example.root"}) as p:
        good = {"uri": p.file_url("nodigest", NAME), "size": len(data), "checksum": f"adler32:{zlib.adler32(data):08x}"}
        bad = {**good, "checksum": "adler32:00000000"}
        p.add_dataset(p.dataset_record(DSID, "Sh_2211_Zjets_test", [good, bad]))
        monkeypatch.setenv("ATLAS_API_BASE_URL", p.url)
        monkeypatch.setattr(md, "API_BASE_URL", p.url)
        man = tmp_path / "manifest.json"
        m = opendata.write_manifest(
            base_config(samples={"zjets": {"dsid": DSID, "role": "background", "max_files": 2}}), man
        )
        s = m["samples"]["zjets"]
        assert s["integrity"] == "size and checksum from the API"
        assert s["files"][0] == {"index": 0, "url": good["uri"], "size": len(data), "checksum": good["checksum"]}
        out = tmp_path / "0.root"
        opendata.fetch_from_manifest(man, "zjets", 0, out, retries=0, backoff_s=0.01)
        assert out.read_bytes() == data
        with pytest.raises(opendata.FetchError, match="sample 'zjets' file 1: .*adler32 checksum mismatch"):
            opendata.fetch_from_manifest(man, "zjets", 1, tmp_path / "1.root", retries=0, backoff_s=0.01)
        assert not (tmp_path / "1.root").exists()


def test_paper_config_samples_through_the_api(testdata, repo_root, monkeypatch):
    """config.paper.yaml's samples (one per role: ttbar signal, Sherpa W/Z+jets slices, dijet) go
    through the API route; a dataset the release lacks is an error naming the sample and the ID."""
    import atlasopenmagic.metadata as md
    import yaml

    od = yaml.safe_load((repo_root / "config.paper.yaml").read_text())["opendata"]
    samples = od["samples"]
    roles = {n: s["role"] for n, s in samples.items()}
    assert roles["ttbar"] == "signal" and samples["ttbar"]["dsid"] == 410470
    assert {"wjets_munu", "wjets_enu", "zjets_ee", "zjets_mumu", "dijet"} <= set(samples)
    assert len({s["dsid"] for s in samples.values()}) == len(samples)
    with FakePortal({NAME: testdata / "PHYSLITE_example.root"}) as p:
        for name, s in samples.items():
            if name != "dijet":
                p.add_dataset(p.dataset_record(s["dsid"], f"test_{name}", [p.file_url("ok", NAME)] * 3))
        monkeypatch.setenv("ATLAS_API_BASE_URL", p.url)
        monkeypatch.setattr(md, "API_BASE_URL", p.url)
        cfg = {"opendata": {**od, "release": "2024r-pp"}}
        with pytest.raises(opendata.DatasetNotInRelease, match="'dijet' .*no dataset 364702"):
            opendata.build_manifest(cfg)
        p.add_dataset(p.dataset_record(364702, "test_dijet", [p.file_url("ok", NAME)] * 3))
        m = opendata.build_manifest(cfg)
    assert {n: s["role"] for n, s in m["samples"].items()} == roles
    assert all(len(s["files"]) == min(3, samples[n]["max_files"]) for n, s in m["samples"].items())
