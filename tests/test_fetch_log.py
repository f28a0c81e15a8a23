"""`fetch` logs what it moved: bytes, time and rate (issue 13, item 5), on the loopback portal."""

import logging
import re

from fakeportal import FakePortal

from fast2full.opendata import fetch_file

NAME = "DAOD_PHYSLITE.example.pool.root.1"


def test_fetch_logs_bytes_and_rate(testdata, tmp_path, caplog):
    physlite = testdata / "PHYSLITE_example.root"
    out = tmp_path / "0.root"
    with FakePortal({NAME: physlite}) as portal, caplog.at_level(logging.INFO, logger="fast2full"):
        fetch_file(portal.file_url("ok", NAME), out, retries=1, backoff_s=0.01, timeout_s=5.0, max_total_s=30.0)
    line = next(r.getMessage() for r in caplog.records if "ROOT structure verified" in r.getMessage())
    m = re.search(r"\((\d+) bytes in ([\d.]+) s, ([\d.]+) MB/s", line)
    assert m, line
    assert int(m.group(1)) == physlite.stat().st_size and float(m.group(3)) > 0
