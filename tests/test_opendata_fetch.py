"""Downloading PHYSLITE files for real, from a local HTTP server that injects faults (tests/fakeportal.py)."""

from __future__ import annotations

import hashlib
import socket
import zlib

import pytest

from fast2full.opendata import (Checksum, FetchError, fetch_file, file_checksum, parse_digest_header)
from fakeportal import FakePortal

NAME = "DAOD_PHYSLITE.example.pool.root.1"
#: small waits so the whole module stays fast; loops are bounded by retries and max_total_s
FAST = {"backoff_s": 0.01, "timeout_s": 0.5, "max_total_s": 30.0}


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


@pytest.mark.parametrize("fault, n_requests", [("ok", 1), ("nodigest", 1), ("drop", 2), ("slow", 2),
                                               ("busy1", 2), ("norange", 1)])
def test_download_ends_verified(portal, physlite, tmp_path, fault, n_requests):
    out = tmp_path / "files" / "s" / "0.root"
    fetch_file(portal.file_url(fault, NAME), out, retries=3, **FAST)
    assert sha256(out) == sha256(physlite)
    assert not out.with_name("0.root.part").exists()
    assert len(file_requests(portal, fault)) == n_requests


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
    fetch_file(portal.file_url("ok", NAME), out, retries=0, **FAST)
    assert file_requests(portal, "ok")[0][2] == "bytes=1000-"
    assert sha256(out) == sha256(physlite)


def test_server_ignoring_range_restarts(portal, physlite, tmp_path):
    out = tmp_path / "0.root"
    out.with_name("0.root.part").write_bytes(b"garbage that must not survive")
    fetch_file(portal.file_url("norange", NAME), out, retries=0, **FAST)
    assert sha256(out) == sha256(physlite)


@pytest.mark.parametrize("fault, retries, n_requests, message", [
    ("missing", 3, 1, "HTTP 404"),                # permanent: no retry
    ("busy", 2, 3, "HTTP 503"),                   # retried, bounded
    ("badsum", 1, 2, "adler32 checksum mismatch"),
    ("html", 0, 1, "not a ROOT file"),
])
def test_failures_leave_nothing(portal, tmp_path, fault, retries, n_requests, message):
    out = tmp_path / "0.root"
    with pytest.raises(FetchError, match=message) as err:
        fetch_file(portal.file_url(fault, NAME), out, retries=retries, **FAST)
    assert portal.file_url(fault, NAME) in str(err.value)
    assert not out.exists() and not out.with_name("0.root.part").exists()
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
        fetch_file(f"http://127.0.0.1:{port}/files/ok/x.root", out, retries=1,
                   offline_hint="set opendata.local_files", **FAST)
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

    cfg = {"selection": {"jets": {"pt_min": 25.0, "abs_eta_max": 2.5},
                         "electrons": {"pt_min": 15.0, "abs_eta_max": 2.47},
                         "muons": {"pt_min": 15.0, "abs_eta_max": 2.5},
                         "photons": {"pt_min": 20.0, "abs_eta_max": 2.37}},
           "opendata": {"timeout_s": 10.0, "samples": {"z": {"dsid": 700322, "role": "background"}}}}
    out = tmp_path / "stream.parquet"
    assert skim_physlite(portal.file_url("ok", NAME), str(out), cfg, "z") == 100
    objects.check(ak.from_parquet(out))
    assert all(rng is not None for _, path, rng in portal.log if path.startswith("/files/"))  # ranges only
    missing = tmp_path / "missing.parquet"
    with pytest.raises(InputError, match="missing"):
        skim_physlite(portal.file_url("missing", NAME), str(missing), cfg, "z")
    assert not missing.exists()
