"""ATLAS Open Data PHYSLITE samples: the manifest (atlasopenmagic), local files, and the download.

* :func:`build_manifest` asks ``atlasopenmagic`` (its REST API, or a metadata file saved with its
  ``save_metadata``) for every sample in ``opendata.samples`` and records what it returned — the file
  URLs and the normalisation metadata (cross-section, filter efficiency, k-factor, sum of weights) —
  in ``results/opendata/manifest.json``.
* :func:`fetch_file` downloads one file with bounded retries and exponential backoff, resumes a
  partial download (HTTP ``Range`` into ``<out>.part``), verifies its size, a checksum when one is known
  (from the manifest, or the server's RFC 3230 ``Digest`` header, which EOS sends on request) and the
  ROOT magic bytes, and only then renames it to the final name.
* :func:`local_files_for` serves offline nodes: ``opendata.local_files`` replaces the download.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fast2full.common import Fast2FullError, InputError, atomic_output, read_json

log = logging.getLogger("fast2full.opendata")

MANIFEST_VERSION = 1
#: the atlasopenmagic URL protocol used for downloads and streaming (https through opendata.cern.ch)
URL_PROTOCOL = "https"
#: metadata fields copied to the top of each manifest sample (atlasopenmagic / API field names)
NORMALISATION_FIELDS = ("cross_section_pb", "genFiltEff", "kFactor", "sumOfWeights", "sumOfWeightsSquared", "nEvents")
#: the first bytes of every ROOT file
ROOT_MAGIC = b"root"

# download defaults (config opendata.retries / backoff_s / timeout_s override; recorded in the manifest)
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 2.0
DEFAULT_TIMEOUT_S = 60.0
#: the whole fetch of one file gives up after this many seconds, whatever the retries left
DEFAULT_MAX_TOTAL_S = 6 * 3600.0
MAX_BACKOFF_S = 60.0
#: an attempt slower than this (bytes/s, over a window of timeout_s) is abandoned and retried
DEFAULT_MIN_RATE_BYTES_S = 10_000.0
DOWNLOAD_BLOCK_BYTES = 1 << 16
#: HTTP statuses worth retrying; any other error status fails at once
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: what we ask the server for (RFC 3230); the first one it answers is verified
WANT_DIGEST = "adler32, sha-256;q=0.8, md5;q=0.5"

OFFLINE_HINT = (
    "Without network access, set opendata.local_files.{sample} in the config to a list of "
    "local PHYSLITE files or a directory of them (no network is then touched), or set "
    "opendata.metadata_file to a metadata file saved on a node with internet "
    "(fast2full manifest --save-metadata FILE)."
)


# --------------------------------------------------------------------------------------------------
# local files
# --------------------------------------------------------------------------------------------------


def local_files_for(config: dict, sample: str, base_dir: str | Path = ".") -> list[str] | None:
    """Files configured under ``opendata.local_files.<sample>`` (a list or a directory), or None.

    Paths stay as written in the config (relative to the working directory) so Snakemake can match
    them; a directory is expanded to its ``*.root`` files.
    """
    entry = (config.get("opendata", {}).get("local_files") or {}).get(sample)
    if entry is None:
        return None
    entries = [entry] if isinstance(entry, str) else list(entry)
    files: list[str] = []
    for e in entries:
        p = Path(e)
        full = p if p.is_absolute() else Path(base_dir) / p
        if full.is_dir():
            files += [str(p / f.name) for f in sorted(full.glob("*.root"))]
        else:
            files.append(str(p))
    return files


# --------------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------------


def _atom():
    """atlasopenmagic, pointed at ``ATLAS_API_BASE_URL`` as it is *now* (the package reads it at import)."""
    import atlasopenmagic
    from atlasopenmagic import metadata as atom_md

    env = os.environ.get("ATLAS_API_BASE_URL")
    if env:
        atom_md.API_BASE_URL = env.rstrip("/")
    atom_md.set_verbosity("warning")
    return atlasopenmagic, atom_md


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def build_manifest(config: dict, metadata_file: str | None = None) -> dict:
    """Query atlasopenmagic for every configured sample and return the manifest (a JSON-able dict).

    With ``metadata_file`` (or config ``opendata.metadata_file``) the metadata come from that saved
    file and no network is used.  Raises Fast2FullError naming the sample and the cause.
    """
    od = config.get("opendata") or {}
    samples = od.get("samples") or {}
    release = od.get("release", "2024r-pp")
    metadata_file = metadata_file or od.get("metadata_file")
    atom, atom_md = _atom()
    atom_md.empty_metadata()  # a fresh cache: nothing from an earlier call or another API
    if metadata_file:
        path = Path(metadata_file)
        if not path.is_file():
            raise Fast2FullError(f"config: invalid key 'opendata.metadata_file': {path} does not exist")
        try:
            atom.read_metadata(str(path), release=release)
            saved = set(json.loads(path.read_text()))
        except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not an atlasopenmagic metadata file ({exc})") from exc
        # atlasopenmagic would ask the API for a dataset missing from the file: refuse instead
        absent = [f"{n} (dataset {s['dsid']})" for n, s in samples.items() if str(s["dsid"]) not in saved]
        if absent:
            raise InputError(
                path,
                f"metadata file has no record of {', '.join(absent)}; save it again "
                f"with these samples configured (fast2full manifest --save-metadata)",
            )
        source = {"kind": "metadata_file", "path": str(path)}
    else:
        if release != atom.get_current_release():
            try:
                atom.set_release(release)
            except ValueError as exc:
                raise Fast2FullError(f"config: invalid key 'opendata.release': {exc}") from exc
            except Exception as exc:
                raise Fast2FullError(
                    f"cannot reach the ATLAS Open Data API at {atom_md.API_BASE_URL} "
                    f"({type(exc).__name__}: {exc}). " + OFFLINE_HINT.format(sample="<sample>")
                ) from exc
        source = {"kind": "api", "url": atom_md.API_BASE_URL}

    out_samples: dict[str, dict] = {}
    for name, spec in samples.items():
        dsid = str(spec["dsid"])
        if source["kind"] == "api":
            _probe_dataset(atom_md.API_BASE_URL, release, dsid, name)
        try:
            info = atom.get_all_info(dsid)
            files = _file_entries(atom, atom_md, dsid, info)
        except ValueError as exc:
            offline = "ConnectionError" in str(exc) or "Max retries" in str(exc)
            hint = (" " + OFFLINE_HINT.format(sample=name)) if offline else ""
            raise Fast2FullError(f"opendata sample '{name}' (dataset {dsid}, release {release}): {exc}{hint}") from exc
        max_files = int(spec.get("max_files", 1))
        if len(files) < max_files:
            log.warning(
                "sample %s: %d files requested (max_files) but dataset %s has only %d",
                name,
                max_files,
                dsid,
                len(files),
            )
        meta = {k: v for k, v in info.items() if k not in ("file_list", "skims")}
        norm = _weight_per_pb(meta)
        chosen = files[:max_files]
        has_size = all(f["size"] is not None for f in chosen)
        has_sum = all(f["checksum"] is not None for f in chosen)
        out_samples[name] = {
            "dsid": int(spec["dsid"]),
            "role": spec.get("role", "background"),
            "max_files": max_files,
            **{k: meta.get(k) for k in NORMALISATION_FIELDS},
            # event weight -> events per pb^-1: weight * weight_per_pb * luminosity gives the yield
            "weight_per_pb": norm,
            "n_files_in_dataset": len(files),
            "files": [{"index": i, **f} for i, f in enumerate(chosen)],
            # what a download of these files is checked against (docs/opendata.md, "Fetch")
            "integrity": (
                "size and checksum from the API"
                if has_size and has_sum
                else "size from the API, no checksum"
                if has_size
                else "the API gives no per-file size or checksum: checked against the server's "
                "Content-Length/Content-Range and Digest headers and the ROOT file's own structure"
            ),
            "metadata": _json_safe(meta),
        }
        log.info(
            "sample %s: dataset %s, %d of %d files (%s)",
            name,
            dsid,
            len(chosen),
            len(files),
            out_samples[name]["integrity"],
        )
    return {
        "version": MANIFEST_VERSION,
        "release": release,
        "source": source,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "stream": bool(od.get("stream", False)),
        "fetch": fetch_settings(od),
        "samples": out_samples,
    }


#: how much of an answer body an API error quotes
BODY_EXCERPT_BYTES = 200


class APIError(Fast2FullError):
    """The metadata API answered, but not with a dataset record (HTTP error status, HTML, bad JSON)."""


class DatasetNotInRelease(Fast2FullError):
    """The metadata API says the release has no such dataset."""


def _excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace")
    return repr(text) + (" ..." if len(body) > BODY_EXCERPT_BYTES else "")


def _probe_dataset(api: str, release: str, dsid: str, sample: str, timeout_s: float = 30.0) -> dict:
    """GET the dataset record from the atlasopenmagic REST API ourselves (its client turns every HTTP
    and JSON problem into "dataset not found"), so that each failure says what happened.

    Raises DatasetNotInRelease for a JSON 404 (the API's "not found" answer), APIError for any other
    status, a non-JSON body or a record that is not a JSON object, Fast2FullError when unreachable.
    """
    import requests

    url = f"{api.rstrip('/')}/metadata/{release}/{dsid}"
    what = f"opendata sample '{sample}' (dataset {dsid}, release {release})"
    try:
        r = requests.get(url, timeout=timeout_s, headers={"Accept": "application/json"})
    except requests.exceptions.RequestException as exc:
        raise Fast2FullError(
            f"{what}: cannot reach the ATLAS Open Data API at {url} "
            f"({type(exc).__name__}: {exc}). " + OFFLINE_HINT.format(sample=sample)
        ) from exc
    ctype = r.headers.get("Content-Type", "none")
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code == 404 and isinstance(body, dict):
        detail = body.get("detail", body)
        raise DatasetNotInRelease(
            f"{what}: release {release} has no dataset {dsid} (the API at {url} answered "
            f"HTTP 404: {detail}); check opendata.samples.{sample}.dsid"
        )
    if r.status_code != 200:
        raise APIError(
            f"{what}: the metadata API at {url} answered HTTP {r.status_code} {r.reason} "
            f"(Content-Type {ctype}); body starts {_excerpt(r.content)}"
        )
    if body is None:
        raise APIError(
            f"{what}: the metadata API at {url} answered HTTP 200 but not JSON "
            f"(Content-Type {ctype}); body starts {_excerpt(r.content)}"
        )
    if not isinstance(body, dict) or not body:
        raise APIError(
            f"{what}: the metadata API at {url} answered JSON that is not a dataset record "
            f"(body starts {_excerpt(r.content)})"
        )
    return body


def _file_entries(atom, atom_md, dsid: str, info: dict) -> list[dict]:
    """The dataset's (noskim) files as ``{"url", "size", "checksum"}``.

    atlasopenmagic's record (client 1.10.1) lists plain URL strings: size and checksum are then None.
    A record whose ``file_list`` holds objects with ``uri``/``url``, ``size`` and ``checksum``
    (``adler32:<hex>``, the CERN Open Data portal's file-index format) has them recorded.
    """
    raw = info.get("file_list") or []
    if all(isinstance(u, str) for u in raw):
        urls = atom.get_urls(dsid, skim="noskim", protocol=URL_PROTOCOL, cache=False)
        return [{"url": u, "size": None, "checksum": None} for u in urls]
    out = []
    for entry in raw:
        if isinstance(entry, str):
            entry = {"uri": entry}
        url = entry.get("uri") or entry.get("url")
        if not isinstance(url, str):
            raise ValueError(f"file entry without a URL in the API record: {entry!r}")
        size = entry.get("size")
        checksum = entry.get("checksum")
        if checksum is not None:
            Checksum.parse(str(checksum))  # refuse a format we could not verify
        out.append(
            {
                "url": atom_md._apply_protocol(url, URL_PROTOCOL),
                "size": None if size is None else int(size),
                "checksum": None if checksum is None else str(checksum).lower(),
            }
        )
    return out


def fetch_settings(od: dict) -> dict:
    """The download (and streaming) settings of config ``opendata``, defaults filled in."""
    return {
        "retries": int(od.get("retries", DEFAULT_RETRIES)),
        "backoff_s": float(od.get("backoff_s", DEFAULT_BACKOFF_S)),
        "timeout_s": float(od.get("timeout_s", DEFAULT_TIMEOUT_S)),
        "min_rate_bytes_s": float(od.get("min_rate_bytes_s", DEFAULT_MIN_RATE_BYTES_S)),
    }


def _weight_per_pb(meta: dict) -> float | None:
    """cross-section [pb] x filter efficiency x k-factor / sum of generator weights, or None."""
    try:
        xs, eff, k, sw = (float(meta[f]) for f in ("cross_section_pb", "genFiltEff", "kFactor", "sumOfWeights"))
    except (KeyError, TypeError, ValueError):
        return None
    return xs * eff * k / sw if sw else None


def write_manifest(
    config: dict, out_path: str | Path, metadata_file: str | None = None, save_metadata: str | Path | None = None
) -> dict:
    """Build the manifest and write it atomically to ``out_path``; optionally also save what
    atlasopenmagic returned (its ``save_metadata`` format) for offline nodes."""
    manifest = build_manifest(config, metadata_file=metadata_file)
    if save_metadata:
        _, atom_md = _atom()
        with atomic_output(save_metadata, suffix=".json") as tmp:
            atom_md.save_metadata(str(tmp))
    with atomic_output(out_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict:
    """Load and sanity-check a manifest (InputError naming the file otherwise)."""
    path = Path(path)
    manifest = read_json(path, "manifest", "run: fast2full manifest --config ... --out ...")
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION or "samples" not in manifest:
        raise InputError(path, f"not a fast2full manifest (version {MANIFEST_VERSION} with 'samples')")
    return manifest


def manifest_file(manifest: dict, sample: str, index: int, path: str | Path = "manifest") -> dict:
    """The manifest entry of file ``index`` of ``sample``."""
    samples = manifest["samples"]
    if sample not in samples:
        raise InputError(path, f"no sample '{sample}' (has: {', '.join(sorted(samples)) or 'none'})")
    files = samples[sample]["files"]
    if not 0 <= index < len(files):
        raise InputError(path, f"sample '{sample}' has {len(files)} files; index {index} is out of range")
    return files[index]


def stream_urls(manifest: dict, sample: str) -> list[str]:
    """The URLs of a sample, for ``opendata.stream`` (uproot reads them remotely)."""
    return [f["url"] for f in manifest["samples"][sample]["files"]]


# --------------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------------


class FetchError(Fast2FullError):
    """A download that could not be completed; nothing is left under the final name."""


@dataclass(frozen=True)
class Checksum:
    """An expected checksum: ``algorithm`` in adler32 / sha256 / md5, ``value`` lower-case hex."""

    algorithm: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """``"adler32:0a1b2c3d"`` / ``"sha256:..."`` / ``"md5:..."``."""
        algo, _, value = text.partition(":")
        algo = algo.strip().lower().replace("-", "")
        if algo not in _HASHERS or not value:
            raise Fast2FullError(f"unknown checksum '{text}' (expected adler32:, sha256: or md5: and hex)")
        return cls(algo, value.strip().lower())


class _Adler32:
    def __init__(self) -> None:
        self.v = 1

    def update(self, b: bytes) -> None:
        self.v = zlib.adler32(b, self.v)

    def hexdigest(self) -> str:
        return f"{self.v & 0xFFFFFFFF:08x}"


_HASHERS: dict[str, Callable[[], Any]] = {"adler32": _Adler32, "sha256": hashlib.sha256, "md5": hashlib.md5}


def file_checksum(path: str | Path, algorithm: str) -> str:
    """Hex checksum of a file (streamed, constant memory)."""
    h = _HASHERS[algorithm]()
    with open(path, "rb") as fh:
        while block := fh.read(DOWNLOAD_BLOCK_BYTES):
            h.update(block)
    return h.hexdigest()


def parse_digest_header(header: str | None) -> Checksum | None:
    """The first usable checksum of an RFC 3230 ``Digest`` header (adler32 and md5/sha-256 forms)."""
    if not header:
        return None
    for part in header.split(","):
        algo, _, value = part.strip().partition("=")
        algo = algo.strip().lower().replace("-", "")
        value = value.strip()
        if algo == "adler32" and value:
            return Checksum("adler32", value.lower().rjust(8, "0"))
        if algo in ("sha256", "md5") and value:
            try:  # RFC 3230 / 5843: base64 of the binary digest
                return Checksum(algo, base64.b64decode(value, validate=True).hex())
            except ValueError:
                return Checksum(algo, value.lower())
    return None


def _part_path(out: Path) -> Path:
    return out.with_name(out.name + ".part")


def _sidecar_path(out: Path) -> Path:
    """``<out>.part.json``: which URL and size the bytes in ``<out>.part`` belong to."""
    return out.with_name(out.name + ".part.json")


def _read_sidecar(path: Path) -> dict | None:
    try:
        side = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return side if isinstance(side, dict) else None


def _root_end(path: Path) -> int | None:
    """The end-of-file pointer ``fEND`` of a ROOT file header, None if ``path`` is no ROOT file."""
    with open(path, "rb") as fh:
        head = fh.read(20)
    if head[: len(ROOT_MAGIC)] != ROOT_MAGIC or len(head) < 20:
        return None
    version = int.from_bytes(head[4:8], "big")
    return int.from_bytes(head[12:20] if version >= 1_000_000 else head[12:16], "big")


def root_file_problem(path: str | Path) -> str | None:
    """None if ``path`` is a complete ROOT file, else what is wrong with it.

    Checked independently of any size or checksum a server announced: the ``root`` magic bytes, the
    end-of-file pointer ``fEND`` of the file header (ROOT TFile format: version at byte 4, ``fEND``
    a 32-bit integer at byte 12, or 64-bit when the version is >= 1000000) equal to the file's size,
    and every TTree in the file opened and its entry count read.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(20)
    if head[: len(ROOT_MAGIC)] != ROOT_MAGIC:
        return f"not a ROOT file (the first bytes are {head[:16]!r}, not 'root')"
    f_end = _root_end(path)
    if f_end is None:
        return f"not a ROOT file ({size} bytes: shorter than a ROOT header)"
    if f_end != size:
        return (
            f"truncated ROOT file: its header says it ends at byte {f_end}, the file has {size} bytes"
            if f_end > size
            else f"ROOT file longer than its header says ({size} bytes, the header's end {f_end})"
        )
    import uproot

    try:
        with uproot.open(path, array_cache=None) as f:
            for key, cls in f.classnames(recursive=True).items():
                if cls == "TTree":
                    int(f[key].num_entries)
    except Exception as exc:  # uproot raises many types for a damaged file
        return f"ROOT file not readable ({type(exc).__name__}: {exc})"
    return None


class _Attempt(Exception):
    """One download attempt failed; ``restart``: the partial bytes are no good (delete them)."""

    def __init__(self, message: str, *, restart: bool = False):
        super().__init__(message)
        self.restart = restart


def fetch_file(
    url: str,
    out_path: str | Path,
    *,
    checksum: str | None = None,
    size: int | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_total_s: float = DEFAULT_MAX_TOTAL_S,
    min_rate_bytes_s: float = DEFAULT_MIN_RATE_BYTES_S,
    what: str = "",
    offline_hint: str = "",
    session=None,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Download ``url`` to ``out_path``: the file the portal holds, or no file.  Returns ``out_path``.

    * at most ``retries + 1`` requests and ``max_total_s`` seconds; between attempts exponential
      backoff ``backoff_s * 2**k`` (capped at :data:`MAX_BACKOFF_S`); 404 and other non-retryable
      statuses fail at once; 408/425/429/5xx, dropped connections, timeouts (no byte for
      ``timeout_s``) and transfers slower than ``min_rate_bytes_s`` over ``timeout_s`` are retried;
    * bytes go to ``<out>.part``; a sidecar ``<out>.part.json`` records the URL and size they belong
      to.  A later attempt (or run) resumes with HTTP Range only when the sidecar names the same URL
      and size; any other ``.part`` is discarded and the file restarted;
    * accepted only when: the size equals ``size`` (the manifest's, from the API) and the size the
      server announces (Content-Length / Content-Range); the ``checksum`` (``algo:hex``, the
      manifest's) and the server's RFC 3230 ``Digest`` header, where they exist, match; and
      :func:`root_file_problem` finds the ROOT structure complete.  Only then the rename.

    Every failure raises FetchError naming ``what`` (e.g. the sample and file index), the URL and
    the cause; nothing then exists under ``out_path``.
    """
    import requests
    import urllib3

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    part, sidecar = _part_path(out), _sidecar_path(out)
    expected = Checksum.parse(checksum) if checksum else None
    label = f"{what}: {url}" if what else url
    own_session = session is None
    session = session or requests.Session()
    t0 = time.monotonic()
    last_error = "no attempt made"
    network_down = False

    def discard() -> None:
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)

    def fail(message: str) -> FetchError:
        discard()
        return FetchError(f"{label}: {message}")

    attempt = 0
    try:
        for attempt in range(retries + 1):
            if attempt:
                wait = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                if time.monotonic() - t0 + wait > max_total_s:
                    last_error += f"; gave up after {max_total_s:.0f} s"
                    break
                log.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.1f s", label, attempt, retries + 1, last_error, wait
                )
                sleep(wait)
            # resume only a .part that the sidecar says is a prefix of this URL's file (of this size)
            offset = 0
            side = _read_sidecar(sidecar) if part.exists() else None
            if part.exists():
                same = (
                    side is not None and side.get("url") == url and (size is None or side.get("size") in (None, size))
                )
                if same and (side.get("size") is None or part.stat().st_size <= side["size"]):
                    offset = part.stat().st_size
                else:
                    log.info(
                        "%s: discarding %s (%s); restarting from byte 0",
                        label,
                        part,
                        "no sidecar" if side is None else f"it belongs to {side.get('url')}, size {side.get('size')}",
                    )
                    discard()
                    side = None
            headers = {"Accept-Encoding": "identity", "Want-Digest": WANT_DIGEST}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                with session.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as r:
                    if r.status_code == 416 and offset:  # our part is longer than the file: start again
                        raise _Attempt("HTTP 416 (partial file larger than the remote file)", restart=True)
                    if r.status_code in RETRY_STATUSES:
                        raise _Attempt(f"HTTP {r.status_code} {r.reason}")
                    if r.status_code not in (200, 206):
                        raise fail(f"HTTP {r.status_code} {r.reason} (not retried); body starts {_excerpt(r.content)}")
                    if r.status_code == 200 and offset:
                        log.info("%s: server ignored the Range request; restarting from byte 0", label)
                        offset = 0
                    total = _expected_total(r, offset)
                    if size is not None and total is not None and total != size:
                        raise fail(
                            f"the server announces {total} bytes, the manifest (API) {size}: not the "
                            f"file the manifest lists (not retried)"
                        )
                    known = size if size is not None else total
                    if (
                        side is not None
                        and side.get("size") is not None
                        and known is not None
                        and side["size"] != known
                    ):
                        raise _Attempt(
                            f"the partial file belongs to a {side['size']}-byte file, the server now has {known} bytes",
                            restart=True,
                        )
                    digest = parse_digest_header(r.headers.get("Digest"))
                    network_down = False
                    sidecar.write_text(json.dumps({"url": url, "size": known}))
                    _receive(r, part, offset, timeout_s, min_rate_bytes_s, t0, max_total_s)
            except _Attempt as exc:
                last_error = str(exc)
                if exc.restart:
                    discard()
                continue
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if isinstance(exc, FetchError):
                    raise
                network_down = isinstance(exc, requests.exceptions.ConnectionError) and not part.exists()
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            got = part.stat().st_size
            if known is not None and got < known:
                last_error = f"connection ended at byte {got} of {known}"
                continue
            if known is not None and got > known:
                discard()
                last_error = f"received {got} bytes, more than the {known} expected"
                continue
            if known is None:  # no size from anyone: the ROOT header's end-of-file record says it
                f_end = _root_end(part)
                if f_end is not None and f_end > got:
                    last_error = (
                        f"truncated ROOT file: its header says it ends at byte {f_end}, "
                        f"{got} bytes received (the server sent no size; resuming)"
                    )
                    continue  # a prefix of this URL's file (the sidecar says so): resume from here
            problem = _verify_checksums(part, [c for c in (expected, digest) if c is not None])
            problem = problem or root_file_problem(part)
            if problem:
                discard()
                last_error = problem
                continue
            os.replace(part, out)
            sidecar.unlink(missing_ok=True)
            checks = [f"{c.algorithm} verified" for c in (expected, digest) if c is not None]
            el = time.monotonic() - t0
            log.info(
                "%s -> %s (%d bytes in %.1f s, %.2f MB/s%s, ROOT structure verified)",
                label,
                out,
                got,
                el,
                got / el / 1e6 if el > 0 else 0.0,
                "".join(f", {c}" for c in checks),
            )
            return out
    finally:
        if own_session:
            session.close()
    part_note = f"; {part.stat().st_size} bytes kept in {part} for a later resume" if part.exists() else ""
    hint = f" {offline_hint}" if network_down and offline_hint else ""
    raise FetchError(f"{label}: download failed after {attempt + 1} attempt(s): {last_error}{part_note}.{hint}")


def _receive(r, part: Path, offset: int, timeout_s: float, min_rate: float, t0: float, max_total_s: float) -> None:
    """Append the body of ``r`` to ``part`` from ``offset``; a transfer slower than ``min_rate`` bytes/s
    over a window of ``timeout_s`` seconds, or past the whole fetch's ``max_total_s``, ends the attempt."""
    with open(part, "r+b" if offset else "wb") as fh:
        fh.seek(offset)
        fh.truncate()
        window_start, window_bytes = time.monotonic(), 0
        try:
            while block := r.raw.read1(DOWNLOAD_BLOCK_BYTES):  # returns as soon as some bytes arrive
                fh.write(block)
                window_bytes += len(block)
                now = time.monotonic()
                if now - t0 > max_total_s:
                    raise _Attempt(f"gave up after {max_total_s:.0f} s")
                if now - window_start >= timeout_s:
                    rate = window_bytes / (now - window_start)
                    if rate < min_rate:
                        raise _Attempt(
                            f"transfer too slow: {rate:.0f} bytes/s over {now - window_start:.1f} s "
                            f"(minimum {min_rate:.0f} bytes/s, opendata.min_rate_bytes_s)"
                        )
                    log.info(
                        "%s: %d bytes so far, %.2f MB/s over the last %.0f s",
                        part.name,
                        fh.tell(),
                        rate / 1e6,
                        now - window_start,
                    )
                    window_start, window_bytes = now, 0
        finally:
            fh.flush()
            os.fsync(fh.fileno())


def _expected_total(r, offset: int) -> int | None:
    """Full file size from Content-Range (206) or Content-Length (200), None if unknown."""
    cr = r.headers.get("Content-Range")
    if r.status_code == 206 and cr and "/" in cr:
        start = cr.split()[-1].split("-")[0]
        if start.isdigit() and int(start) != offset:
            raise _Attempt(f"server answered Range from byte {start}, asked {offset}", restart=True)
        tot = cr.rsplit("/", 1)[1]
        return int(tot) if tot.isdigit() else None
    cl = r.headers.get("Content-Length")
    if cl and cl.isdigit():
        return int(cl) + (offset if r.status_code == 206 else 0)
    return None


def _verify_checksums(path: Path, checksums: list[Checksum]) -> str | None:
    """None if ``path`` matches every checksum given, else the mismatch."""
    for c in checksums:
        got = file_checksum(path, c.algorithm)
        if got != c.value:
            return f"{c.algorithm} checksum mismatch (got {got}, expected {c.value})"
    return None


def fetch_from_manifest(manifest_path: str | Path, sample: str, index: int, out_path: str | Path, **overrides) -> Path:
    """Download file ``index`` of ``sample`` listed in the manifest, with the manifest's fetch settings
    (``overrides``: retries, backoff_s, timeout_s, max_total_s)."""
    manifest = read_manifest(manifest_path)
    entry = manifest_file(manifest, sample, index, manifest_path)
    settings = {**manifest.get("fetch", {}), **{k: v for k, v in overrides.items() if v is not None}}
    url = entry["url"]
    if "://" not in url:  # a local path (atlasopenmagic local mode): nothing to download
        src = Path(url)
        if not src.is_file():
            raise InputError(src, f"local file of sample '{sample}' listed in {manifest_path} not found")
        with atomic_output(out_path) as tmp:
            shutil.copyfile(src, tmp)
        return Path(out_path)
    return fetch_file(
        url,
        out_path,
        checksum=entry.get("checksum"),
        size=entry.get("size"),
        what=f"sample '{sample}' file {index}",
        offline_hint=OFFLINE_HINT.format(sample=sample),
        **settings,
    )


# --------------------------------------------------------------------------------------------------
# streaming (opendata.stream): uproot reads the remote file, with the download's guarantees
# --------------------------------------------------------------------------------------------------

#: bytes of the file head the stream probe asks for (the ROOT header is in the first 100)
STREAM_PROBE_BYTES = 1024


def _stream_probe(url: str, size: int | None, timeout_s: float, session) -> int:
    """One ranged GET of the file's head: the remote size (Content-Range / Content-Length), checked
    against the manifest's ``size`` and the ROOT header's end-of-file record.  Returns the size.

    Raises _Attempt for what a retry may cure, FetchError (not retried) for what it cannot.
    """
    headers = {"Accept-Encoding": "identity", "Range": f"bytes=0-{STREAM_PROBE_BYTES - 1}"}
    with session.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as r:
        if r.status_code in RETRY_STATUSES:
            raise _Attempt(f"HTTP {r.status_code} {r.reason}")
        if r.status_code not in (200, 206):
            raise FetchError(f"HTTP {r.status_code} {r.reason} (not retried); body starts {_excerpt(r.content)}")
        total = _expected_total(r, 0)
        head = r.raw.read(20)
    if head[: len(ROOT_MAGIC)] != ROOT_MAGIC:
        raise FetchError(f"not a ROOT file (the first bytes are {head[:16]!r}) (not retried)")
    if len(head) < 20:
        raise _Attempt(f"connection ended after {len(head)} bytes of the ROOT header")
    if total is None:
        raise FetchError(
            "the server gives no file size (no Content-Range or Content-Length): a streamed "
            "read cannot be verified; download it instead (opendata.stream: false)"
        )
    if size is not None and total != size:
        raise FetchError(
            f"the server announces {total} bytes, the manifest (API) {size}: not the file the "
            f"manifest lists (not retried)"
        )
    version = int.from_bytes(head[4:8], "big")
    f_end = int.from_bytes(head[12:20] if version >= 1_000_000 else head[12:16], "big")
    if f_end != total:
        raise FetchError(
            f"the ROOT header says the file ends at byte {f_end}, the server announces {total} bytes (not retried)"
        )
    return total


def stream_skim(
    manifest_path: str | Path,
    sample: str,
    index: int,
    out_path: str | Path,
    config: dict,
    session=None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``opendata.stream``: skim file ``index`` of ``sample`` straight from its URL (uproot byte
    ranges, no download) with the download's semantics (:func:`fetch_file`):

    * the manifest's retries, backoff and timeout; a failed attempt (HTTP 408/425/429/5xx, a dropped
      connection, a timeout, a read error of uproot part-way through) reruns the whole skim after the
      backoff, at most ``retries + 1`` times; 404 and other statuses fail at once;
    * verified before any event is read: the remote size equals the manifest's (API) size where it
      has one, and the ROOT header's end-of-file record equals the remote size; every tree's entry
      count is read when uproot opens the file.  A whole-file checksum needs every byte and is only
      verified by a download (docs/opendata.md);
    * the output is atomic (nothing under ``out_path`` unless every entry range succeeded), and every
      error names the sample, the file index and the URL.  Returns the number of events written.
    """
    import requests

    from fast2full.readers.physlite import skim_physlite

    manifest = read_manifest(manifest_path)
    entry = manifest_file(manifest, sample, index, manifest_path)
    url = entry["url"]
    if "://" not in url:
        return skim_physlite(url, str(out_path), config, sample)
    settings = {**fetch_settings({}), **manifest.get("fetch", {})}
    retries, backoff_s, timeout_s = int(settings["retries"]), float(settings["backoff_s"]), float(settings["timeout_s"])
    label = f"sample '{sample}' file {index}: {url}"
    cfg = {**config, "opendata": {**config.get("opendata", {}), "timeout_s": timeout_s}}
    own_session = session is None
    session = session or requests.Session()
    last_error = "no attempt made"
    attempt = 0
    try:
        for attempt in range(retries + 1):
            if attempt:
                wait = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                log.warning(
                    "%s: streamed attempt %d/%d failed (%s); retrying in %.1f s",
                    label,
                    attempt,
                    retries + 1,
                    last_error,
                    wait,
                )
                sleep(wait)
            try:
                size = _stream_probe(url, entry.get("size"), timeout_s, session)
                n = skim_physlite(url, str(out_path), cfg, sample)
                log.info("%s: streamed %d bytes (size and ROOT header verified), %d events", label, size, n)
                return n
            except FetchError as exc:
                raise FetchError(f"{label}: {exc}") from exc
            except _Attempt as exc:
                last_error = str(exc)
            except requests.exceptions.RequestException as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except InputError as exc:  # uproot could not read (part of) the remote file
                last_error = str(exc)
    finally:
        if own_session:
            session.close()
    raise FetchError(f"{label}: streamed skim failed after {attempt + 1} attempt(s): {last_error}")
