"""Delphes card (TCL subset) reading.  Placeholder: only `source` dependency discovery so far."""

from __future__ import annotations

import re
from pathlib import Path

_SOURCE = re.compile(r"^\s*source\s+(\S+)")


def card_dependencies(card: str | Path) -> list[str]:
    """The card and, recursively, every file it ``source``s (paths relative to the card's folder)."""
    card = Path(card)
    out = [str(card)]
    if not card.is_file():
        return out
    for line in card.read_text().splitlines():
        m = _SOURCE.match(line)
        if m:
            out += card_dependencies(card.parent / m.group(1).strip('"{}'))
    return out
