"""A local stand-in for the ATLAS Open Data portal, for the opendata tests.

One ``http.server`` on 127.0.0.1 (a random free port, in a daemon thread) answers

* the atlasopenmagic REST API, in the format its client code expects (atlasopenmagic/metadata.py):
  ``GET /metadata/{release}/{dsid}`` -> one dataset record (``dataset_number``, ``physics_short``,
  ``cross_section_pb``, ``genFiltEff``, ``kFactor``, ``sumOfWeights``, ..., ``file_list`` (URLs),
  ``skims``); ``GET /datasets/count?release_name=`` -> ``{"count": n}``;
  ``GET /datasets?release_name=&skip=&limit=`` -> a page (list) of records;
* files under ``/files/{fault}/{name}`` with Range support and an RFC 3230 ``Digest: adler32=``
  header, where ``fault`` injects one failure mode:

  ``ok``        served normally
  ``nodigest``  no Digest header
  ``drop``      the first request sends half the bytes, then closes the connection
  ``slow``      the first request stalls ``stall_s`` seconds before any byte
  ``badsum``    a Digest header that does not match the bytes
  ``missing``   404 always
  ``busy``      503 always
  ``busy1``     503 on the first request only
  ``norange``   ignores Range (always 200 with the whole file)
  ``html``      200 with an HTML page (not a ROOT file)
  ``nolength``  no Content-Length header ever; the first request sends half the bytes, then closes
  ``padded``    the file with 100 extra zero bytes at the end, consistent headers and no Digest
  ``trickle``   200 bytes every ``trickle_s`` seconds (each read within any timeout, far too slow)
  ``fail3``     503 on the third GET only (a streamed read that fails part-way through)
  ``stall3``    the third GET stalls ``stall_s`` seconds before any byte

and ``api_fault`` (attribute) breaks the metadata API: ``"html"`` (200 with an HTML page),
``"html404"`` (404 with an HTML page, as a proxy in front of a moved API), ``"500"`` (a JSON 500).

Every request is recorded in ``server.log`` as ``(method, path, Range header or None)``.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class FakePortal:
    def __init__(
        self,
        files: dict[str, Path],
        datasets: dict[str, dict] | None = None,
        release: str = "2024r-pp",
        stall_s: float = 2.0,
        trickle_s: float = 0.05,
    ):
        self.files = {name: Path(p).read_bytes() for name, p in files.items()}
        self.datasets = datasets or {}
        self.release = release
        self.stall_s = stall_s
        self.trickle_s = trickle_s
        self.api_fault: str | None = None
        self.log: list[tuple[str, str, str | None]] = []
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        # a client that gave up on a stalled answer leaves a broken pipe behind: expected, not an error
        self.httpd.handle_error = lambda request, client_address: None
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # ----------------------------------------------------------------------------------------------
    def file_url(self, fault: str, name: str) -> str:
        return f"{self.url}/files/{fault}/{name}"

    def dataset_record(self, dsid: int, physics_short: str, file_urls: list[str], **fields) -> dict:
        """A dataset record as the API returns it (field names from atlasopenmagic.metadata)."""
        rec = {
            "dataset_number": str(dsid),
            "physics_short": physics_short,
            "e_tag": "e8351",
            "cross_section_pb": 2221.2,
            "genFiltEff": 0.6899,
            "kFactor": 0.9751,
            "nEvents": 100,
            "sumOfWeights": 2.68e9,
            "sumOfWeightsSquared": 7.2e16,
            "process": "Z+jets",
            "generator": "Sherpa 2.2.11",
            "keywords": ["SM", "Z"],
            "description": "test record",
            "job_path": "",
            "CoMEnergy": "13 TeV",
            "GenEvents": 100,
            "GenTune": "",
            "PDF": "NNPDF3.0nnlo",
            "Release": "",
            "Filters": "",
            "release": {"name": self.release},
            "file_list": list(file_urls),
            "skims": [],
        }
        rec.update(fields)
        return rec

    def add_dataset(self, record: dict) -> None:
        self.datasets[str(record["dataset_number"])] = record

    def __enter__(self) -> FakePortal:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    # ----------------------------------------------------------------------------------------------
    def _handler(self):
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _html(self, status: int) -> None:
                body = (
                    b"<!DOCTYPE html><html><head><title>Service moved</title></head><body>"
                    + b"x" * 300
                    + b"</body></html>"
                )
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, obj, status: int = 200) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                url = urlparse(self.path)
                rng = self.headers.get("Range")
                with portal._lock:
                    portal.log.append(("GET", url.path, rng))
                    portal.hits[url.path] += 1
                    n = portal.hits[url.path]
                parts = url.path.strip("/").split("/")
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[:1] in (["metadata"], ["datasets"]) and portal.api_fault:
                    if portal.api_fault == "500":
                        return self._json({"detail": "Internal Server Error"}, 500)
                    return self._html(404 if portal.api_fault == "html404" else 200)
                if parts[:1] == ["metadata"] and len(parts) == 3:
                    rel, key = parts[1], parts[2].lower()
                    rec = portal.datasets.get(key) if rel == portal.release else None
                    return self._json(rec, 200) if rec else self._json({"detail": "Dataset not found"}, 404)
                if parts == ["datasets", "count"]:
                    return self._json({"count": len(portal.datasets)})
                if parts == ["datasets"]:
                    recs = list(portal.datasets.values())
                    skip, limit = int(q.get("skip", 0)), int(q.get("limit", 1000))
                    return self._json(recs[skip : skip + limit])
                if parts[:1] == ["files"] and len(parts) == 3:
                    return self._file(parts[1], parts[2], rng, n)
                return self._json({"detail": "Not Found"}, 404)

            def do_HEAD(self) -> None:  # noqa: N802 (uproot/fsspec ask for the size first)
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if parts[:1] == ["files"] and len(parts) == 3:
                    return self._file(parts[1], parts[2], None, 0)
                return self._json({"detail": "Not Found"}, 404)

            def _file(self, fault: str, name: str, rng: str | None, n: int) -> None:
                data = portal.files.get(name)
                if data is None or fault == "missing":
                    return self._json({"detail": "Not Found"}, 404)
                if fault == "busy" or (fault == "busy1" and n == 1) or (fault == "fail3" and n == 3):
                    return self._json({"detail": "busy"}, 503)
                if fault == "html":
                    data = b"<html><body>Please log in</body></html>"
                if fault == "padded":
                    data = data + b"\0" * 100
                if (fault == "slow" and n == 1) or (fault == "stall3" and n == 3):
                    time.sleep(portal.stall_s)
                start, stop, partial = 0, len(data), False
                if rng and fault != "norange" and "," not in rng:  # one range; several: whole file
                    first, _, last = rng.split("=")[1].partition("-")
                    start, partial = int(first), True
                    stop = min(int(last) + 1, len(data)) if last.strip() else len(data)
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                body = data[start:stop]
                self.send_response(206 if partial else 200)
                self.send_header("Content-Type", "application/octet-stream")
                if fault != "nolength":
                    self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if partial:
                    self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
                if fault not in ("nodigest", "padded"):
                    adler = zlib.adler32(data) ^ (0xFF if fault == "badsum" else 0)
                    self.send_header("Digest", f"adler32={adler & 0xFFFFFFFF:08x}")
                self.end_headers()
                if self.command == "HEAD":
                    return None
                if fault == "trickle":
                    t_end = time.monotonic() + 10.0  # a client that gave up closes the socket before
                    for i in range(0, len(body), 200):
                        self.wfile.write(body[i : i + 200])
                        self.wfile.flush()
                        time.sleep(portal.trickle_s)
                        if time.monotonic() > t_end:
                            break
                    self.close_connection = True
                    return None
                if fault == "nolength":
                    self.close_connection = True  # without a length the body ends where the connection ends
                    if n == 1 and not partial:
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        return None
                if fault == "drop" and n == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

        return Handler
