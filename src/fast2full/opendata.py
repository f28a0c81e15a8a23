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
NORMALISATION_FIELDS = ("cross_section_pb", "genFiltEff", "kFactor", "sumOfWeights", "sumOfWeightsSquared",
                        "nEvents")
#: the first bytes of every ROOT file
ROOT_MAGIC = b"root"

# download defaults (config opendata.retries / backoff_s / timeout_s override; recorded in the manifest)
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 2.0
DEFAULT_TIMEOUT_S = 60.0
#: the whole fetch of one file gives up after this many seconds, whatever the retries left
DEFAULT_MAX_TOTAL_S = 6 * 3600.0
MAX_BACKOFF_S = 60.0
DOWNLOAD_BLOCK_BYTES = 1 << 16
#: HTTP statuses worth retrying; any other error status fails at once
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: what we ask the server for (RFC 3230); the first one it answers is verified
WANT_DIGEST = "adler32, sha-256;q=0.8, md5;q=0.5"

OFFLINE_HINT = ("Without network access, set opendata.local_files.{sample} in the config to a list of "
                "local PHYSLITE files or a directory of them (no network is then touched), or set "
                "opendata.metadata_file to a metadata file saved on a node with internet "
                "(fast2full manifest --save-metadata FILE).")


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
            raise InputError(path, f"metadata file has no record of {', '.join(absent)}; save it again "
                                   f"with these samples configured (fast2full manifest --save-metadata)")
        source = {"kind": "metadata_file", "path": str(path)}
    else:
        if release != atom.get_current_release():
            try:
                atom.set_release(release)
            except ValueError as exc:
                raise Fast2FullError(f"config: invalid key 'opendata.release': {exc}") from exc
            except Exception as exc:
                raise Fast2FullError(f"cannot reach the ATLAS Open Data API at {atom_md.API_BASE_URL} "
                                     f"({type(exc).__name__}: {exc}). "
                                     + OFFLINE_HINT.format(sample="<sample>")) from exc
        source = {"kind": "api", "url": atom_md.API_BASE_URL}

    out_samples: dict[str, dict] = {}
    for name, spec in samples.items():
        dsid = str(spec["dsid"])
        try:
            info = atom.get_all_info(dsid)
            urls = atom.get_urls(dsid, skim="noskim", protocol=URL_PROTOCOL, cache=False)
        except ValueError as exc:
            offline = "ConnectionError" in str(exc) or "Max retries" in str(exc)
            hint = (" " + OFFLINE_HINT.format(sample=name)) if offline else ""
            raise Fast2FullError(f"opendata sample '{name}' (dataset {dsid}, release {release}): "
                                 f"{exc}{hint}") from exc
        max_files = int(spec.get("max_files", 1))
        if len(urls) < max_files:
            log.warning("sample %s: %d files requested (max_files) but dataset %s has only %d",
                        name, max_files, dsid, len(urls))
        meta = {k: v for k, v in info.items() if k not in ("file_list", "skims")}
        norm = _weight_per_pb(meta)
        out_samples[name] = {
            "dsid": int(spec["dsid"]),
            "role": spec.get("role", "background"),
            "max_files": max_files,
            **{k: meta.get(k) for k in NORMALISATION_FIELDS},
            # event weight -> events per pb^-1: weight * weight_per_pb * luminosity gives the yield
            "weight_per_pb": norm,
            "n_files_in_dataset": len(urls),
            "files": [{"index": i, "url": u, "checksum": None} for i, u in enumerate(urls[:max_files])],
            "metadata": _json_safe(meta),
        }
        log.info("sample %s: dataset %s, %d of %d files", name, dsid, len(out_samples[name]["files"]),
                 len(urls))
    return {
        "version": MANIFEST_VERSION,
        "release": release,
        "source": source,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "stream": bool(od.get("stream", False)),
        "fetch": {"retries": int(od.get("retries", DEFAULT_RETRIES)),
                  "backoff_s": float(od.get("backoff_s", DEFAULT_BACKOFF_S)),
                  "timeout_s": float(od.get("timeout_s", DEFAULT_TIMEOUT_S))},
        "samples": out_samples,
    }


def _weight_per_pb(meta: dict) -> float | None:
    """cross-section [pb] x filter efficiency x k-factor / sum of generator weights, or None."""
    try:
        xs, eff, k, sw = (float(meta[f]) for f in ("cross_section_pb", "genFiltEff", "kFactor", "sumOfWeights"))
    except (KeyError, TypeError, ValueError):
        return None
    return xs * eff * k / sw if sw else None


def write_manifest(config: dict, out_path: str | Path, metadata_file: str | None = None,
                   save_metadata: str | Path | None = None) -> dict:
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


def fetch_file(url: str, out_path: str | Path, *, checksum: str | None = None, retries: int = DEFAULT_RETRIES,
               backoff_s: float = DEFAULT_BACKOFF_S, timeout_s: float = DEFAULT_TIMEOUT_S,
               max_total_s: float = DEFAULT_MAX_TOTAL_S, offline_hint: str = "",
               session=None, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``url`` to ``out_path``; retry, resume, verify, rename.  Returns ``out_path``.

    * at most ``retries + 1`` requests and ``max_total_s`` seconds; between attempts exponential
      backoff ``backoff_s * 2**k`` (capped at :data:`MAX_BACKOFF_S`);
    * a dropped connection or a timeout resumes from the bytes already in ``<out>.part`` (HTTP Range);
      a server that ignores Range restarts the file;
    * 404 and other non-retryable statuses fail at once;
    * verified: the size the server announced, the ``checksum`` (``algo:hex``) or else the server's
      ``Digest`` header, and the ROOT magic bytes.  A mismatch deletes the partial file.

    On any failure a FetchError names the URL and the cause, and nothing exists under ``out_path``.
    """
    import requests

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(out)
    expected = Checksum.parse(checksum) if checksum else None
    own_session = session is None
    session = session or requests.Session()
    t0 = time.monotonic()
    last_error = "no attempt made"
    network_down = False
    try:
        for attempt in range(retries + 1):
            if attempt:
                wait = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                if time.monotonic() - t0 + wait > max_total_s:
                    last_error += f"; gave up after {max_total_s:.0f} s"
                    break
                log.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s", url, attempt, retries + 1,
                            last_error, wait)
                sleep(wait)
            offset = part.stat().st_size if part.exists() else 0
            headers = {"Accept-Encoding": "identity", "Want-Digest": WANT_DIGEST}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            try:
                with session.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as r:
                    if r.status_code == 416 and offset:  # our part is longer than the file: start again
                        part.unlink(missing_ok=True)
                        last_error = "HTTP 416 (partial file larger than the remote file)"
                        continue
                    if r.status_code in RETRY_STATUSES:
                        last_error = f"HTTP {r.status_code} {r.reason}"
                        continue
                    if r.status_code not in (200, 206):
                        part.unlink(missing_ok=True)
                        raise FetchError(f"{url}: HTTP {r.status_code} {r.reason} (not retried)")
                    if r.status_code == 200 and offset:
                        log.info("%s: server ignored the Range request; restarting from byte 0", url)
                        offset = 0
                    total = _expected_total(r, offset)
                    digest = parse_digest_header(r.headers.get("Digest"))
                    network_down = False
                    with open(part, "r+b" if offset else "wb") as fh:
                        fh.seek(offset)
                        fh.truncate()
                        for block in r.iter_content(DOWNLOAD_BLOCK_BYTES):
                            fh.write(block)
                        fh.flush()
                        os.fsync(fh.fileno())
            except requests.exceptions.RequestException as exc:
                network_down = isinstance(exc, requests.exceptions.ConnectionError) and not part.exists()
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            size = part.stat().st_size
            if total is not None and size < total:
                last_error = f"connection ended at byte {size} of {total}"
                continue
            if total is not None and size > total:
                part.unlink(missing_ok=True)
                last_error = f"received {size} bytes, more than the {total} announced"
                continue
            problem = _verify(part, expected or digest)
            if problem:
                part.unlink(missing_ok=True)
                last_error = problem
                continue
            os.replace(part, out)
            log.info("%s -> %s (%d bytes%s)", url, out, size,
                     f", {(expected or digest).algorithm} verified" if (expected or digest) else "")
            return out
    finally:
        if own_session:
            session.close()
    part_note = f"; {part.stat().st_size} bytes kept in {part} for a later resume" if part.exists() else ""
    hint = f" {offline_hint}" if network_down and offline_hint else ""
    raise FetchError(f"{url}: download failed after {attempt + 1} attempt(s): {last_error}{part_note}.{hint}")


def _expected_total(r, offset: int) -> int | None:
    """Full file size from Content-Range (206) or Content-Length (200), None if unknown."""
    cr = r.headers.get("Content-Range")
    if r.status_code == 206 and cr and "/" in cr:
        start = cr.split()[-1].split("-")[0]
        if start.isdigit() and int(start) != offset:
            raise FetchError(f"{r.url}: server answered Range from byte {start}, asked {offset}")
        tot = cr.rsplit("/", 1)[1]
        return int(tot) if tot.isdigit() else None
    cl = r.headers.get("Content-Length")
    if cl and cl.isdigit():
        return int(cl) + (offset if r.status_code == 206 else 0)
    return None


def _verify(path: Path, checksum: Checksum | None) -> str | None:
    """None if ``path`` passes the checksum (when given) and starts like a ROOT file, else the problem."""
    if checksum is not None:
        got = file_checksum(path, checksum.algorithm)
        if got != checksum.value:
            return f"{checksum.algorithm} checksum mismatch (got {got}, expected {checksum.value})"
    with open(path, "rb") as fh:
        if fh.read(len(ROOT_MAGIC)) != ROOT_MAGIC:
            return "downloaded file is not a ROOT file (wrong magic bytes)"
    return None


def fetch_from_manifest(manifest_path: str | Path, sample: str, index: int, out_path: str | Path,
                        **overrides) -> Path:
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
    return fetch_file(url, out_path, checksum=entry.get("checksum"),
                      offline_hint=OFFLINE_HINT.format(sample=sample), **settings)

