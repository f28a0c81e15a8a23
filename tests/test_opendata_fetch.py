"""Downloading PHYSLITE files for real, from a local HTTP server that injects faults (tests/fakeportal.py)."""

from __future__ import annotations

import hashlib
import json
import socket
import zlib

import pytest
from fakeportal import FakePortal

from fast2full.opendata import (
    Checksum,
    FetchError,
    fetch_file,
    file_checksum,
    parse_digest_header,
    root_file_problem,
)

NAME = "DAOD_PHYSLITE.example.pool.root.1"
#: small waits so the whole module stays fast; loops are bounded by retries and max_total_s
FAST = {"backoff_s": 0.01, "timeout_s": 1.0, "max_total_s": 30.0}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def physlite(testdata):
    return testdata / "PHYSLITE_example.root"


@pytest.fixture()
def portal(physlite):
    with FakePortal({NAME: physlite}, stall_s=1.5) as p:
        yield p


def file_requests(portal, fault):
    return [e for e in portal.log if e[1] == f"/files/{fault}/{NAME}"]


def leftovers(out):
    """Everything under the final name or its partial/sidecar names."""
    return sorted(p.name for p in out.parent.glob(out.name + "*"))


@pytest.mark.parametrize(
    "fault, n_requests",
    [("ok", 1), ("nodigest", 1), ("drop", 2), ("slow", 2), ("busy1", 2), ("norange", 1), ("nolength", 2)],
)
def test_download_ends_verified(portal, physlite, tmp_path, fault, n_requests):
    out = tmp_path / "files" / "s" / "0.root"
    fetch_file(portal.file_url(fault, NAME), out, retries=3, **FAST)
    assert sha256(out) == sha256(physlite)
    assert leftovers(out) == ["0.root"]  # no .part, no sidecar
    assert len(file_requests(portal, fault)) == n_requests


def test_no_content_length_and_early_close_is_resumed_not_accepted(portal, physlite, tmp_path):
    """The server sends no size and closes half-way: the ROOT header's end-of-file record shows the
    file is truncated, so the half is neither accepted nor thrown away but resumed with Range."""
    out = tmp_path / "0.root"
    fetch_file(portal.file_url("nolength", NAME), out, retries=2, **FAST)
    (_, _, first), (_, _, second) = file_requests(portal, "nolength")
    assert first is None and second == f"bytes={physlite.stat().st_size // 2}-"
    assert sha256(out) == sha256(physlite)
    # with no retry left the half file never reaches the final name
    out2 = tmp_path / "1.root"
    portal.hits.clear()
    with pytest.raises(FetchError, match="truncated ROOT file") as err:
        fetch_file(portal.file_url("nolength", NAME), out2, retries=0, **FAST)
    assert "kept in" in str(err.value) and not out2.exists()


@pytest.mark.parametrize(
    "size, message",
    [
        (None, "ROOT file longer than its header says"),  # no size known: the ROOT structure catches it
        ("real", "the server announces .* bytes, the manifest"),  # the manifest's (API) size catches it first
    ],
)
def test_wrong_size_body_is_refused(portal, physlite, tmp_path, size, message):
    out = tmp_path / "0.root"
    real = physlite.stat().st_size if size == "real" else None
    with pytest.raises(FetchError, match=message):
        fetch_file(portal.file_url("padded", NAME), out, size=real, retries=1, **FAST)
    assert leftovers(out) == []


def test_manifest_size_is_checked(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    fetch_file(portal.file_url("nodigest", NAME), out, size=physlite.stat().st_size, retries=0, **FAST)
    assert sha256(out) == sha256(physlite)
    with pytest.raises(FetchError, match="the manifest \\(API\\) 5"):
        fetch_file(portal.file_url("nodigest", NAME), tmp_path / "1.root", size=5, retries=3, **FAST)
    assert leftovers(tmp_path / "1.root") == []
    assert len(file_requests(portal, "nodigest")) == 2  # a size mismatch is not retried


def test_slow_trickle_past_the_timeout_is_abandoned(portal, tmp_path):
    """200 bytes every 50 ms: each read is within the timeout, but 4 kB/s is below the minimum rate."""
    out = tmp_path / "0.root"
    with pytest.raises(FetchError, match="transfer too slow") as err:
        fetch_file(
            portal.file_url("trickle", NAME),
            out,
            retries=1,
            backoff_s=0.01,
            timeout_s=0.5,
            min_rate_bytes_s=20_000,
            what="sample 'z' file 3",
        )
    assert "sample 'z' file 3" in str(err.value) and "2 attempt" in str(err.value)
    assert not out.exists()
    # the bytes so far are kept for a resume, with their sidecar
    assert sorted(leftovers(out)) == ["0.root.part", "0.root.part.json"]


def test_dropped_connection_resumes_with_range(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    fetch_file(portal.file_url("drop", NAME), out, retries=2, **FAST)
    (_, _, first), (_, _, second) = file_requests(portal, "drop")
    assert first is None
    start = int(second.split("=")[1].rstrip("-"))
    assert 0 < start < physlite.stat().st_size  # resumed from the bytes already there, not from 0
    assert sha256(out) == sha256(physlite)


def test_resume_of_an_existing_part_file(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    data = physlite.read_bytes()
    out.with_name("0.root.part").write_bytes(data[:1000])
    out.with_name("0.root.part.json").write_text(json.dumps({"url": portal.file_url("ok", NAME), "size": len(data)}))
    fetch_file(portal.file_url("ok", NAME), out, retries=0, **FAST)
    assert file_requests(portal, "ok")[0][2] == "bytes=1000-"
    assert sha256(out) == sha256(physlite)
    assert leftovers(out) == ["0.root"]


@pytest.mark.parametrize(
    "sidecar",
    [
        None,  # no record of what the bytes are
        {"url": "http://elsewhere/other.root", "size": 1_641_551},  # another file's bytes
        {"url": "SAME", "size": 999},  # this URL, but another size
    ],
)
def test_stale_part_of_another_file_is_restarted(portal, physlite, tmp_path, sidecar):
    """A .part whose sidecar does not name this URL and size is never resumed (before: it was, and the
    result differed from the real file at byte 7)."""
    out = tmp_path / "0.root"
    other = (testdata_file := physlite).read_bytes()[::-1][:5000]  # same length class, other bytes
    out.with_name("0.root.part").write_bytes(b"root" + other)
    if sidecar is not None:
        sidecar = {**sidecar, "url": portal.file_url("nodigest", NAME) if sidecar["url"] == "SAME" else sidecar["url"]}
        out.with_name("0.root.part.json").write_text(json.dumps(sidecar))
    fetch_file(portal.file_url("nodigest", NAME), out, size=testdata_file.stat().st_size, retries=0, **FAST)
    assert file_requests(portal, "nodigest")[0][2] is None  # from byte 0, not Range
    assert sha256(out) == sha256(physlite)


def test_server_ignoring_range_restarts(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    out.with_name("0.root.part").write_bytes(b"garbage that must not survive")
    fetch_file(portal.file_url("norange", NAME), out, retries=0, **FAST)
    assert sha256(out) == sha256(physlite)


@pytest.mark.parametrize(
    "fault, retries, n_requests, message",
    [
        ("missing", 3, 1, "HTTP 404"),  # permanent: no retry
        ("busy", 2, 3, "HTTP 503"),  # retried, bounded
        ("badsum", 1, 2, "adler32 checksum mismatch"),
        ("html", 0, 1, "not a ROOT file"),
    ],
)
def test_failures_leave_nothing(portal, tmp_path, fault, retries, n_requests, message):
    out = tmp_path / "0.root"
    with pytest.raises(FetchError, match=message) as err:
        fetch_file(portal.file_url(fault, NAME), out, retries=retries, what="sample 'zjets' file 0", **FAST)
    assert portal.file_url(fault, NAME) in str(err.value) and "sample 'zjets' file 0" in str(err.value)
    assert leftovers(out) == []
    assert len(file_requests(portal, fault)) == n_requests


def test_slow_server_times_out_when_never_answering(portal, tmp_path):
    out = tmp_path / "0.root"
    portal.stall_s = 1.0
    with pytest.raises(FetchError, match="Timeout|timed out"):
        fetch_file(portal.file_url("slow", NAME), out, retries=0, backoff_s=0.01, timeout_s=0.2)
    assert not out.exists()


def test_manifest_checksum_is_checked(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    good = f"sha256:{sha256(physlite)}"
    fetch_file(portal.file_url("nodigest", NAME), out, checksum=good, retries=0, **FAST)
    assert sha256(out) == sha256(physlite)
    out2 = tmp_path / "1.root"
    with pytest.raises(FetchError, match="sha256 checksum mismatch"):
        fetch_file(portal.file_url("nodigest", NAME), out2, checksum="sha256:" + "0" * 64, retries=0, **FAST)
    assert not out2.exists()


def test_no_network_says_how_to_work_offline(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "0.root"
    with pytest.raises(FetchError, match="opendata.local_files") as err:
        fetch_file(
            f"http://127.0.0.1:{port}/files/ok/x.root", out, retries=1, offline_hint="set opendata.local_files", **FAST
        )
    assert "2 attempt" in str(err.value)
    assert not out.exists()


def test_checksum_helpers(physlite):
    data = physlite.read_bytes()
    assert file_checksum(physlite, "adler32") == f"{zlib.adler32(data):08x}"
    assert file_checksum(physlite, "md5") == hashlib.md5(data).hexdigest()
    assert parse_digest_header("adler32=0a1b2c3d") == Checksum("adler32", "0a1b2c3d")
    assert parse_digest_header("SHA-256=" + "AAAA") == Checksum("sha256", "000000")
    assert parse_digest_header(None) is None
    assert Checksum.parse("ADLER32:0A1B2C3D") == Checksum("adler32", "0a1b2c3d")
    with pytest.raises(Exception, match="unknown checksum"):
        Checksum.parse("crc99:12")


def test_stream_skim_reads_the_url(portal, tmp_path):
    """opendata.stream: uproot reads the remote file by byte ranges, no download."""
    import awkward as ak

    from fast2full import objects
    from fast2full.common import InputError
    from fast2full.readers.physlite import skim_physlite

    cfg = {
        "selection": {
            "jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
            "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47},
            "muons": {"pt_min": 15.0, "abs_eta_max": 2.5},
            "photons": {"pt_min": 20.0, "abs_eta_max": 2.37},
        },
        "opendata": {"timeout_s": 10.0, "samples": {"z": {"dsid": 700322, "role": "background"}}},
    }
    out = tmp_path / "stream.parquet"
    assert skim_physlite(portal.file_url("ok", NAME), str(out), cfg, "z") == 100
    objects.check(ak.from_parquet(out))
    assert all(rng is not None for _, path, rng in portal.log if path.startswith("/files/"))  # ranges only
    missing = tmp_path / "missing.parquet"
    with pytest.raises(InputError, match="missing"):
        skim_physlite(portal.file_url("missing", NAME), str(missing), cfg, "z")
    assert not missing.exists()


def test_root_structure_check(physlite, tmp_path):
    assert root_file_problem(physlite) is None
    data = physlite.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[:-1])
    assert "truncated ROOT file" in root_file_problem(cut)
    # the end-of-file record intact but a TTree's metadata damaged: its entry count must be readable
    bad = bytearray(data)
    keys_at = data.rfind(b"CollectionTree")
    bad[keys_at - 200 : keys_at + 200] = b"\0" * 400
    broken = tmp_path / "broken.root"
    broken.write_bytes(bytes(bad))
    assert root_file_problem(broken) is not None
    html = tmp_path / "page.root"
    html.write_bytes(b"<html>login</html>")
    assert "not a ROOT file" in root_file_problem(html)


# --- opendata.stream: the same retries, timeouts and verification, through uproot ------------------

STREAM_CFG = {
    "selection": {
        "jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
        "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47},
        "muons": {"pt_min": 15.0, "abs_eta_max": 2.5},
        "photons": {"pt_min": 20.0, "abs_eta_max": 2.37},
    },
    "opendata": {"samples": {"z": {"dsid": 700322, "role": "background"}}},
}


def stream_manifest(tmp_path, url, size=None, retries=2, timeout_s=1.0):
    man = tmp_path / "manifest.json"
    man.write_text(
        json.dumps(
            {
                "version": 1,
                "fetch": {"retries": retries, "backoff_s": 0.01, "timeout_s": timeout_s},
                "samples": {"z": {"files": [{"index": 0, "url": url, "size": size, "checksum": None}]}},
            }
        )
    )
    return man


@pytest.fixture(scope="module")
def local_skim(physlite, tmp_path_factory):
    import awkward as ak

    from fast2full.readers.physlite import skim_physlite

    out = tmp_path_factory.mktemp("local") / "local.parquet"
    skim_physlite(str(physlite), str(out), STREAM_CFG, "z")
    return ak.to_list(ak.from_parquet(out))


@pytest.mark.parametrize(
    "fault, attempts, timeout_s",
    [
        ("ok", 1, 30.0),
        ("busy1", 2, 30.0),
        ("fail3", 2, 30.0),
        # a stall of 1.5 s against a 1 s timeout: at least one rerun (more if the loaded machine is slow)
        ("slow", None, 1.0),
        ("stall3", None, 1.0),
    ],
)
def test_stream_ends_verified(portal, physlite, local_skim, tmp_path, fault, attempts, timeout_s):
    """A failure part-way (503, dropped connection, stall past the timeout) reruns the streamed skim;
    the result equals the skim of the local copy."""
    import awkward as ak

    from fast2full.opendata import stream_skim

    man = stream_manifest(
        tmp_path, portal.file_url(fault, NAME), size=physlite.stat().st_size, retries=4, timeout_s=timeout_s
    )
    out = tmp_path / "s.parquet"
    assert stream_skim(man, "z", 0, out, STREAM_CFG) == 100
    assert ak.to_list(ak.from_parquet(out)) == local_skim
    gets = file_requests(portal, fault)
    assert gets[0][2] == "bytes=0-1023"  # the probe: size and ROOT header first
    probes = sum(rng == "bytes=0-1023" for _, _, rng in gets)  # one per attempt
    assert probes == attempts if attempts else probes >= 2  # a failed attempt was rerun
    assert all(rng is not None for _, _, rng in gets)  # byte ranges only, never the whole file
    assert not list(tmp_path.glob("*.root*"))  # nothing downloaded


@pytest.mark.parametrize(
    "fault, size, retries, message, n_requests",
    [
        ("missing", None, 3, "HTTP 404 .*not retried", 1),
        ("busy", None, 2, "streamed skim failed after 3 attempt.*HTTP 503", 3),
        ("html", None, 2, "not a ROOT file", 1),
        ("padded", "real", 2, "the server announces .* the manifest", 1),
        ("padded", None, 2, "the ROOT header says the file ends at byte", 1),
    ],
)
def test_stream_failures_are_clear_and_leave_nothing(
    portal, physlite, tmp_path, fault, size, retries, message, n_requests
):
    from fast2full.opendata import stream_skim

    man = stream_manifest(
        tmp_path,
        portal.file_url(fault, NAME),
        retries=retries,
        size=physlite.stat().st_size if size == "real" else None,
    )
    out = tmp_path / "s.parquet"
    with pytest.raises(FetchError, match=message) as err:
        stream_skim(man, "z", 0, out, STREAM_CFG)
    assert f"sample 'z' file 0: {portal.file_url(fault, NAME)}" in str(err.value)
    assert not out.exists() and list(tmp_path.glob("s.parquet*")) == []
    assert len(file_requests(portal, fault)) == n_requests
