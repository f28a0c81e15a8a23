"""Shared plotting helpers (mplhep style, PDF+PNG output) and the feature-comparison figure.

:func:`savefig` writes ``<stem>.pdf`` and ``<stem>.png`` atomically; :func:`use_style` sets the Agg
backend and an mplhep style.  :func:`plot_features` draws three representative features of a task,
normalised per domain, with ratio panels to the source domain (the paper's figures 1-3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fast2full.common import Fast2FullError, atomic_output

log = logging.getLogger("fast2full.plotting")

DPI = 150
DOMAIN_LABELS = {
    "atlas_like": "ATLAS-like (Delphes)",
    "cms_like": "CMS-like (Delphes)",
    "atlas_fullsim": "ATLAS full sim. (PHYSLITE)",
}
#: lower edge of log-scale panels (unit-area histograms)
LOG_YMIN = 1e-4
#: ratio panel y range
RATIO_RANGE = (0.0, 2.0)


def use_style(style: str = "ATLAS") -> None:
    """Agg backend and an mplhep style (``ATLAS``, ``CMS`` or ``ROOT``)."""
    import matplotlib

    matplotlib.use("Agg")
    import mplhep as hep

    hep.style.use(getattr(hep.style, style))


def savefig(fig, path: str | Path, close: bool = True) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf`` and ``<stem>.png`` beside ``path`` (any suffix); atomic."""
    path = Path(path)
    out = []
    for suffix in (".pdf", ".png"):
        final = path.with_suffix(suffix)
        with atomic_output(final) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=DPI, bbox_inches="tight")
        out.append(final)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out


# ------------------------------------------------------------------------------- feature figure


@dataclass(frozen=True)
class FeaturePlot:
    label: str
    bins: np.ndarray
    values: Callable  # (TensorSet) -> (values, weights)
    logy: bool = False


def _col(ts, name: str) -> int:
    return ts.meta["features"].index(name)


def _per_object(ts, feature: str, type_flag: str | None = None, slot: int | None = None):
    sel = ts.mask.copy()
    if type_flag is not None:
        sel &= ts.x[:, :, _col(ts, type_flag)] > 0.5
    if slot is not None:
        keep = np.zeros_like(sel)
        keep[:, slot] = True
        sel &= keep
    w = np.broadcast_to(ts.weight[:, None], sel.shape)
    return ts.x[:, :, _col(ts, feature)][sel], w[sel]


def _per_row(values_fn):
    return lambda ts: (values_fn(ts), ts.weight)


PLOTS: dict[str, list[FeaturePlot]] = {
    "sigbkg": [
        FeaturePlot("jet $p_T$ [GeV]", np.linspace(25, 400, 31), lambda ts: _per_object(ts, "pt", "is_jet"), True),
        FeaturePlot("$E_T^{miss}$ [GeV]", np.linspace(0, 300, 31), lambda ts: _per_object(ts, "pt", "is_met"), True),
        FeaturePlot("number of b-tagged jets", np.arange(-0.5, 6.5, 1.0),
                    _per_row(lambda ts: (ts.x[:, :, _col(ts, "btag")] * ts.mask).sum(axis=1))),
    ],
    "qg": [
        FeaturePlot("tagged jet $p_T$ [GeV]", np.linspace(25, 300, 23), lambda ts: _per_object(ts, "pt", slot=0), True),
        FeaturePlot("tagged jet $n_{trk}$", np.arange(-0.5, 50.5, 2.0), lambda ts: _per_object(ts, "ntrk", slot=0)),
        FeaturePlot("tagged jet track width", np.linspace(0, 0.4, 21), lambda ts: _per_object(ts, "trk_width", slot=0)),
    ],
    "met": [
        FeaturePlot("jet $p_T$ [GeV]", np.linspace(25, 400, 31), lambda ts: _per_object(ts, "pt", "is_jet"), True),
        FeaturePlot("number of objects", np.arange(-0.5, 17.5, 1.0), _per_row(lambda ts: ts.mask.sum(axis=1))),
        FeaturePlot("true $E_T^{miss}$ [GeV]", np.linspace(0, 300, 31),
                    _per_row(lambda ts: np.hypot(ts.y[:, 0], ts.y[:, 1])), True),
    ],
}


def _hist(values: np.ndarray, weights: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-area histogram (under/overflow clipped into the edge bins) and its statistical error."""
    v = np.clip(values, bins[0], bins[-1] - 1e-9 * (bins[-1] - bins[0]))
    h, _ = np.histogram(v, bins=bins, weights=weights)
    e2, _ = np.histogram(v, bins=bins, weights=weights ** 2)
    tot = h.sum()
    if tot <= 0:
        return np.zeros_like(h), np.zeros_like(h)
    return h / tot, np.sqrt(e2) / tot


def plot_features(inputs: list[str | Path], out: str | Path, task: str, style: str = "ATLAS") -> list[Path]:
    """Overlay three features of ``task`` per domain (unit area) with ratios to the source domain."""
    from fast2full import tensorio

    if task not in PLOTS:
        raise Fast2FullError(f"plot-features: unknown task {task!r}")
    sets = [tensorio.load(p, raw=True) for p in inputs]
    for p, ts in zip(inputs, sets):
        if ts.meta.get("task") != task:
            raise Fast2FullError(f"plot-features: {p} holds task {ts.meta.get('task')!r}, not {task!r}")
    src = next((i for i, ts in enumerate(sets) if ts.meta.get("norm", {}).get("domain") == ts.meta.get("domain")), 0)
    order = [src] + [i for i in range(len(sets)) if i != src]

    use_style(style)
    import matplotlib.pyplot as plt
    import mplhep as hep

    specs = PLOTS[task]
    fig, axes = plt.subplots(2, len(specs), figsize=(6.5 * len(specs), 6.5), sharex="col",
                             gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05, "wspace": 0.3})
    for j, spec in enumerate(specs):
        ax, rax = axes[0, j], axes[1, j]
        ref = None
        for k, i in enumerate(order):
            ts, color = sets[i], f"C{k}"
            vals, w = spec.values(ts)
            h, err = _hist(np.asarray(vals, dtype=np.float64), np.asarray(w, dtype=np.float64), spec.bins)
            name = ts.meta.get("domain", Path(inputs[i]).parent.name)
            lab = DOMAIN_LABELS.get(name, name) + ("" if i != src else " [source]")
            hep.histplot(h, spec.bins, yerr=err, ax=ax, label=lab, histtype="step", color=color)
            if ref is None:
                ref = h
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(ref > 0, h / ref, np.nan)
                re = np.where(ref > 0, err / ref, np.nan)
            hep.histplot(r, spec.bins, yerr=re, ax=rax, histtype="errorbar", color=color)
        if spec.logy:
            ax.set_yscale("log")
            ax.set_ylim(bottom=LOG_YMIN)
        else:
            ax.set_ylim(bottom=0.0)
        ax.set_ylabel("normalised entries")
        rax.set_xlabel(spec.label)
        rax.set_ylabel("ratio to source")
        rax.set_ylim(*RATIO_RANGE)
        rax.set_xlim(spec.bins[0], spec.bins[-1])
        rax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.legend(fontsize="x-small", loc="upper right")
    fig.suptitle(f"{task}: input features per domain (train split)", fontsize="medium")
    paths = savefig(fig, Path(out))
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths
