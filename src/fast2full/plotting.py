"""The one plotting style module (mplhep-based) and the feature-comparison figure.

Every figure of fast2full is drawn with what is here: :func:`style` (Agg backend, mplhep style with a
colour-blind-safe palette, the Okabe-Ito colours, and distinct line styles), :func:`label` (the
"Simulation, sqrt(s) = 13 TeV" label: no experiment logo, these are not ATLAS or CMS results),
:data:`MODE_STYLE` / :data:`DOMAIN_STYLE`, mathtext variable names (:data:`TEX`), :func:`ratio_panel`
(empty bins masked, the reference's own uncertainty band, out-of-range points marked at the edge) and
:func:`savefig` (PDF + PNG, atomic).  :func:`plot_features` draws three representative features of a
task, normalised per domain, with ratio panels to the source domain (the paper's figures 1-3).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
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
#: Okabe & Ito (2008) colour-blind-safe palette
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
PALETTE = [OKABE_ITO[c] for c in ("black", "blue", "orange", "green", "vermillion", "purple", "sky", "yellow")]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
#: mathtext names of the variables in labels
TEX = {
    "HT": r"$H_{\mathrm{T}}$",
    "ntrk": r"$n_{\mathrm{trk}}$",
    "MET": r"$E_{\mathrm{T}}^{\mathrm{miss}}$",
    "pT": r"$p_{\mathrm{T}}$",
    "sqrt_s": "√s",
}
SQRT_S_TEV = 13
#: training modes: colour, line style, marker, legend label, short name
MODE_STYLE = {
    "scratch": {"color": OKABE_ITO["black"], "ls": "-", "marker": "o", "label": "from scratch", "short": "scratch"},
    "finetune": {
        "color": OKABE_ITO["blue"],
        "ls": "--",
        "marker": "s",
        "label": "fine-tune (all layers)",
        "short": "fine-tune",
    },
    "freeze": {
        "color": OKABE_ITO["orange"],
        "ls": "-.",
        "marker": "^",
        "label": "fine-tune (frozen backbone)",
        "short": "frozen backbone",
    },
    "dann": {
        "color": OKABE_ITO["green"],
        "ls": ":",
        "marker": "D",
        "label": "domain-adversarial (DANN)",
        "short": "DANN",
    },
    "zeroshot": {
        "color": OKABE_ITO["purple"],
        "ls": (0, (5, 1, 1, 1, 1, 1)),
        "marker": "X",
        "label": "zero-shot (source model)",
        "short": "zero-shot",
    },
    "pretrain": {
        "color": OKABE_ITO["vermillion"],
        "ls": "-",
        "marker": "P",
        "label": "pretraining (source)",
        "short": "pretrain",
    },
    "baseline": {"color": "#7f7f7f", "ls": (0, (1, 1)), "marker": "", "label": "rule-based", "short": "baseline"},
}
DOMAIN_STYLE = {
    "atlas_like": {"color": OKABE_ITO["black"], "ls": "-"},
    "cms_like": {"color": OKABE_ITO["blue"], "ls": "--"},
    "atlas_fullsim": {"color": OKABE_ITO["vermillion"], "ls": "-."},
}


def _rc() -> dict:
    from cycler import cycler

    return {
        "axes.prop_cycle": cycler(color=PALETTE, linestyle=LINESTYLES),
        "mathtext.default": "regular",
        "legend.frameon": False,
    }


def use_style(style: str = "ATLAS") -> None:
    """Agg backend, an mplhep style (``ATLAS``, ``CMS`` or ``ROOT``: fonts and ticks only; no logo is
    drawn) and the colour-blind-safe cycle, globally."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    hep.style.use(getattr(hep.style, style))
    plt.rcParams.update(_rc())


@contextlib.contextmanager
def style(name: str = "ATLAS") -> Iterator[None]:
    """:func:`use_style` for the duration of a block only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    with plt.style.context([getattr(hep.style, name), _rc()]):
        yield


def label(ax, rlabel: str = "", llabel: str = "Simulation", fontsize: float = 12) -> None:
    """ "**Simulation**, sqrt(s) = 13 TeV" above the axes (left) and ``rlabel`` (right)."""
    ax.text(
        0.0,
        1.01,
        rf"$\mathbf{{{llabel}}}$, {TEX['sqrt_s']} = {SQRT_S_TEV} TeV",
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=fontsize,
    )
    if rlabel:
        ax.text(1.0, 1.01, rlabel, transform=ax.transAxes, ha="right", va="bottom", fontsize=fontsize * 0.85)


def skip_panel(ax, reason: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(
        0.5,
        0.5,
        "no data:\n" + reason,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=10,
        wrap=True,
        color="#7f7f7f",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def ratio_panel(
    rax,
    bins: np.ndarray,
    num: np.ndarray,
    num_err: np.ndarray,
    ref: np.ndarray,
    ref_err: np.ndarray,
    color: str,
    draw_reference: bool = True,
    limits: tuple[float, float] = RATIO_RANGE,
) -> None:
    """``num / ref`` per bin with ``num``'s error; bins where either is empty are masked (not drawn
    as 0 or infinity); the reference's own relative uncertainty is a grey band around 1; points
    outside ``limits`` are drawn as triangles at the edge."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (ref > 0) & (num > 0)
        r = np.where(ok, num / ref, np.nan)
        re = np.where(ok, num_err / ref, np.nan)
        rel_ref = np.where(ref > 0, ref_err / ref, np.nan)
    centres = 0.5 * (bins[1:] + bins[:-1])
    if draw_reference:
        lo, hi = 1.0 - rel_ref, 1.0 + rel_ref
        rax.stairs(hi, bins, baseline=lo, fill=True, color="#bbbbbb", alpha=0.6, lw=0, label="reference stat. unc.")
        rax.axhline(1.0, color="#7f7f7f", lw=0.8, ls="--")
    inside = ok & (r >= limits[0]) & (r <= limits[1])
    rax.errorbar(
        centres[inside], r[inside], yerr=re[inside], xerr=0.5 * np.diff(bins)[inside], fmt="o", ms=3, color=color, lw=1
    )
    span = limits[1] - limits[0]
    above, below = ok & (r > limits[1]), ok & (r < limits[0])
    rax.plot(centres[above], np.full(above.sum(), limits[1] - 0.04 * span), "^", color=color, ms=5)
    rax.plot(centres[below], np.full(below.sum(), limits[0] + 0.04 * span), "v", color=color, ms=5)
    rax.set_ylim(*limits)


def savefig(fig, path: str | Path, close: bool = True) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf`` and ``<stem>.png`` beside ``path`` (any suffix); atomic."""
    path = Path(path)
    out = []
    # the tight bounding box is found once (one layout pass without rendering) for both formats
    fig.draw_without_rendering()
    bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)
    for suffix in (".pdf", ".png"):
        final = path.with_suffix(suffix)
        with atomic_output(final) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=DPI, bbox_inches=bbox)
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


def _per_object(ts, feature: str, type_flag: str | None = None, slot: int | None = None, invert: bool = False):
    sel = ts.mask.copy()
    if type_flag is not None:
        on = ts.x[:, :, _col(ts, type_flag)] > 0.5
        sel &= ~on if invert else on
    if slot is not None:
        keep = np.zeros_like(sel)
        keep[:, slot] = True
        sel &= keep
    w = np.broadcast_to(ts.weight[:, None], sel.shape)
    return ts.x[:, :, _col(ts, feature)][sel], w[sel]


def _candidates_pt(ts):
    """met rows: the pT of every soft-term particle-flow candidate slot (of any kind), with its row's weight.

    (A count of candidate slots would only show how many of ``max_candidates`` are filled: with the
    default's 12 slots nearly every row is full, so the candidates' spectrum is what differs by domain.)"""
    kinds = sum(ts.x[:, :, _col(ts, f"is_pf_{k}")] for k in ("track", "photon", "neutral_hadron"))
    sel = ts.mask & (kinds > 0.5)
    w = np.broadcast_to(ts.weight[:, None], sel.shape)
    return ts.x[:, :, _col(ts, "pt")][sel], w[sel]


def _per_row(values_fn):
    return lambda ts: (values_fn(ts), ts.weight)


PLOTS: dict[str, list[FeaturePlot]] = {
    "sigbkg": [
        FeaturePlot(
            f"jet {TEX['pT']} [GeV]", np.linspace(25, 400, 31), lambda ts: _per_object(ts, "pt", "is_jet"), True
        ),
        FeaturePlot(f"{TEX['MET']} [GeV]", np.linspace(0, 300, 31), lambda ts: _per_object(ts, "pt", "is_met"), True),
        FeaturePlot(
            "number of b-tagged jets",
            np.arange(-0.5, 6.5, 1.0),
            _per_row(lambda ts: (ts.x[:, :, _col(ts, "btag")] * ts.mask).sum(axis=1)),
        ),
    ],
    # qg rows: slot 0 the tagged jet's observables, slots 1.. its constituents (weights: the quark/gluon
    # reweighting to one (pT, |eta|) spectrum included)
    "qg": [
        FeaturePlot(
            f"jet {TEX['pT']} [GeV]", np.linspace(25, 300, 23), lambda ts: _per_object(ts, "jet_pt", slot=0), True
        ),
        FeaturePlot(
            f"jet {TEX['ntrk']} ({TEX['pT']} > 0.5 GeV)",
            np.arange(-0.5, 40.5, 2.0),
            lambda ts: _per_object(ts, "jet_ntrk", slot=0),
        ),
        FeaturePlot("jet track width", np.linspace(0, 0.4, 21), lambda ts: _per_object(ts, "jet_trk_width", slot=0)),
        FeaturePlot(
            f"jet track $\\sum$ {TEX['pT']} / {TEX['pT']}",
            np.linspace(0, 1.5, 31),
            lambda ts: _per_object(ts, "jet_trk_pt_frac", slot=0),
        ),
        FeaturePlot(
            "number of constituents", np.arange(-0.5, 40.5, 2.0), _per_row(lambda ts: ts.mask[:, 1:].sum(axis=1))
        ),
        FeaturePlot(
            "constituent $\\Delta R$ to the jet axis",
            np.linspace(0, 0.4, 21),
            lambda ts: _per_object(ts, "c_dr", "is_jet", invert=True),
        ),
    ],
    # met rows: MET, its soft term (+ its split), the selected objects, then the soft term's candidates
    "met": [
        FeaturePlot(
            f"reconstructed {TEX['MET']} [GeV]",
            np.linspace(0, 300, 31),
            lambda ts: _per_object(ts, "pt", "is_met"),
            True,
        ),
        FeaturePlot("soft term [GeV]", np.linspace(0, 100, 26), lambda ts: _per_object(ts, "pt", "is_soft_term"), True),
        FeaturePlot(
            f"true {TEX['MET']} [GeV]",
            np.linspace(0, 300, 31),
            _per_row(lambda ts: np.hypot(ts.y[:, 0], ts.y[:, 1])),
            True,
        ),
        FeaturePlot(f"soft-term candidate {TEX['pT']} [GeV]", np.linspace(0, 20, 41), _candidates_pt, True),
        FeaturePlot(
            "soft-term pile-up tracks [GeV]",
            np.linspace(0, 60, 31),
            lambda ts: _per_object(ts, "pt", "is_soft_pu_tracks"),
            True,
        ),
    ],
}


def _hist(values: np.ndarray, weights: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Unit-area histogram with under- and overflow added to the first and last bin, its statistical
    error, and the under- and overflow fractions (said on the figure)."""
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    tot = weights.sum()
    under = float(weights[values < bins[0]].sum() / tot) if tot > 0 else 0.0
    over = float(weights[values >= bins[-1]].sum() / tot) if tot > 0 else 0.0
    v = np.clip(values, bins[0], bins[-1] - 1e-9 * (bins[-1] - bins[0]))
    h, _ = np.histogram(v, bins=bins, weights=weights)
    e2, _ = np.histogram(v, bins=bins, weights=weights**2)
    if tot <= 0:
        return np.zeros_like(h), np.zeros_like(h), 0.0, 0.0
    return h / tot, np.sqrt(e2) / tot, under, over


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
    fig, axes = plt.subplots(
        2,
        len(specs),
        figsize=(6.5 * len(specs), 6.5),
        sharex="col",
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05, "wspace": 0.3},
    )
    for j, spec in enumerate(specs):
        ax, rax = axes[0, j], axes[1, j]
        ref = ref_err = None
        flows = []
        for k, i in enumerate(order):
            ts = sets[i]
            vals, w = spec.values(ts)
            h, err, under, over = _hist(vals, w, spec.bins)
            name = ts.meta.get("domain", Path(inputs[i]).parent.name)
            st = DOMAIN_STYLE.get(name, {"color": PALETTE[k % len(PALETTE)], "ls": LINESTYLES[k % len(LINESTYLES)]})
            lab = DOMAIN_LABELS.get(name, name) + ("" if i != src else " [source]")
            hep.histplot(h, spec.bins, yerr=err, ax=ax, label=lab, histtype="step", color=st["color"], ls=st["ls"])
            flows.append(f"{under:.1%}/{over:.1%}")
            if ref is None:
                ref, ref_err = h, err
                continue
            ratio_panel(rax, spec.bins, h, err, ref, ref_err, st["color"], draw_reference=k == 1)
        if spec.logy:
            ax.set_yscale("log")
            ax.set_ylim(bottom=LOG_YMIN)
        else:
            ax.set_ylim(bottom=0.0)
        ax.set_ylabel("normalised entries")
        ax.text(
            0.02,
            0.97,
            "under-/overflow in the first/last bin:\n" + ", ".join(flows),
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=7,
        )
        rax.set_xlabel(spec.label)
        rax.set_ylabel("ratio to source")
        rax.set_xlim(spec.bins[0], spec.bins[-1])
        ax.legend(fontsize="x-small", loc="upper right")
        label(ax, f"{task}, train split" if j == 0 else "", fontsize=10)
    paths = savefig(fig, Path(out))
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths
