"""ATLAS Open Data PHYSLITE samples: manifest, local files, fetch.  (Local files only so far.)"""

from __future__ import annotations

from pathlib import Path


def local_files_for(config: dict, sample: str, base_dir: str | Path = ".") -> list[str] | None:
    """Files configured under ``opendata.local_files.<sample>`` (a list or a directory), or None.

    Paths stay as written in the config (relative to the working directory) so Snakemake can match
    them; a directory is expanded to its ``*.root`` files.
    """
    entry = config.get("opendata", {}).get("local_files", {}).get(sample)
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
