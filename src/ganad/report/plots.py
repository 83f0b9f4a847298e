"""Figures for anomaly-detection results.

Every function takes plain data (NumPy arrays, lists, dicts) and returns a
:class:`matplotlib.figure.Figure`. Figures are built with the object-oriented API on an
Agg canvas: no display, no pyplot state, no global backend switch, so this module is safe
in headless jobs, threads and notebooks alike. Render with :func:`save_png` or
:func:`fig_to_base64_png`; both close the figure afterwards (``close=True``).

Sample conventions follow the rest of ganad: a series window / ECG beat is ``(C, L)`` or
``(L,)``, an image ``(C, H, W)`` or ``(H, W)``, a tabular sample ``(F,)``. Anomaly maps
("amap") have the sample's shape or a coarser one (an image map at lower resolution is
stretched over the image; a per-time-step series map of shape ``(L,)`` applies to every
channel).
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from ganad.exceptions import InputError, _fmt
from ganad.files import write_bytes
from ganad.metrics import _scores, evaluate

__all__ = [
    "roc_pr_figure",
    "roc_figure",
    "pr_figure",
    "score_distribution_figure",
    "training_curves_figure",
    "series_map_figure",
    "image_map_figure",
    "vector_map_figure",
    "sample_figure",
    "examples_figure",
    "save_png",
    "fig_to_base64_png",
    "sample_kind",
]

#: AAMI heartbeat classes in their customary order, with fixed colours
AAMI_ORDER = ("N", "S", "V", "F", "Q")
_AAMI_COLORS = {"N": "tab:blue", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:gray"}
_BINARY_NAMES = {0: "normal (0)", 1: "anomaly (1)"}
_BINARY_COLORS = {0: "tab:blue", 1: "tab:red"}
_THRESHOLD_STYLE = dict(color="black", linestyle="--", linewidth=1.2)
_MAP_CMAP = "inferno"


# --------------------------------------------------------------------------- rendering


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _close(fig: Figure) -> None:
    """Release a figure. Figures made here are not tracked by pyplot; ones a user made with
    pyplot are, so drop them from pyplot's registry too (without importing pyplot)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def _png_bytes(fig: Figure, dpi: float) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def fig_to_base64_png(fig: Figure, *, dpi: float = 110, close: bool = True) -> str:
    """Render ``fig`` as PNG and return it base64-encoded (ASCII, no ``data:`` prefix)."""
    try:
        return base64.b64encode(_png_bytes(fig, dpi)).decode("ascii")
    finally:
        if close:
            _close(fig)


def save_png(fig: Figure, path, *, dpi: float = 120, close: bool = True) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (temporary file + rename); return the path."""
    path = Path(path)
    try:
        data = _png_bytes(fig, dpi)
    finally:
        if close:
            _close(fig)
    write_bytes(path, data)
    return path


# --------------------------------------------------------------------------- checks


def _array(a, name: str, ndims: Sequence[int]) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(_fmt(name, f"cannot be read as numbers ({exc})", "pass a numeric NumPy array")) from exc
    if arr.ndim not in ndims or arr.size == 0:
        raise InputError(_fmt(name, f"has shape {arr.shape}; expected a non-empty array with {' or '.join(map(str, ndims))} dimension(s)",
                              "pass a single sample, not a batch (for example X[i])"))
    return arr


def _binary_labels(y_true, n: int) -> np.ndarray:
    from ganad.data.validation import check_labels

    return check_labels(y_true, n, "y_true")


def _class_array(classes, n: int, name: str) -> np.ndarray:
    arr = np.asarray(classes)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(_fmt(name, f"has shape {arr.shape} for {n} scores", "pass one class label per score, in the same order"))
    missing = [i for i, c in enumerate(arr.tolist()) if _is_missing(c)]
    if missing:  # NaN never equals itself: each would be a class of its own holding no score (a crash in the class table)
        raise InputError(_fmt(name, f"holds {len(missing)} missing class label(s) (NaN / NA), the first at position {missing[0]}",
                              "give every score a class, e.g. 'unknown' for the missing ones"))
    return arr


def _is_missing(c) -> bool:
    try:
        return bool(c != c)
    except TypeError:  # pandas.NA: its comparisons are NA, which has no truth value
        return True


def _ordered_classes(arr: np.ndarray) -> list:
    uniq = list(dict.fromkeys(arr.tolist()))
    if all(isinstance(u, str) for u in uniq) and set(uniq) <= set(AAMI_ORDER):
        return [c for c in AAMI_ORDER if c in uniq]
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _is_binary(classes: list) -> bool:
    return all(isinstance(c, (int, np.integer, float, np.floating, bool)) and c in (0, 1) for c in classes)


def _class_style(cls, i: int, binary: bool) -> tuple[str, str]:
    if binary:
        return _BINARY_NAMES[int(cls)], _BINARY_COLORS[int(cls)]
    color = _AAMI_COLORS.get(cls) if isinstance(cls, str) else None
    if color is None:
        color = f"C{i % 10}"
    return str(cls), color


# --------------------------------------------------------------------------- ROC / PR


def _operating_point(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    pred = s > threshold
    neg, pos = y == 0, y == 1
    n_flagged = int(pred.sum())
    return {
        "fpr": float(pred[neg].mean()),
        "tpr": float(pred[pos].mean()),
        "precision": float(pred[pos].sum() / n_flagged) if n_flagged else None,
        "n_flagged": n_flagged,
    }


def _draw_roc(ax, y, s, ev, threshold) -> None:
    fpr, tpr, _ = skm.roc_curve(y, s)
    ax.plot(fpr, tpr, color="tab:blue", linewidth=1.8, label=f"AUROC = {ev.auroc:.3f}")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="chance")
    if threshold is not None:
        op = _operating_point(y, s, threshold)
        ax.plot(op["fpr"], op["tpr"], "o", color="black", markersize=7, zorder=5,
                label=f"τ = {threshold:.4g} (FPR {op['fpr']:.2f}, TPR {op['tpr']:.2f})")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false-positive rate", ylabel="true-positive rate (recall)",
           title="ROC curve")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")


def _draw_pr(ax, y, s, ev, threshold) -> None:
    precision, recall, _ = skm.precision_recall_curve(y, s)
    ax.plot(recall, precision, color="tab:red", linewidth=1.8, drawstyle="steps-post", label=f"AUPRC = {ev.auprc:.3f}")
    prevalence = ev.n_anomalies / ev.n
    ax.axhline(prevalence, color="0.6", linestyle=":", linewidth=1, label=f"chance (prevalence {prevalence:.3f})")
    if threshold is not None:
        op = _operating_point(y, s, threshold)
        if op["precision"] is None:
            ax.plot([], [], " ", label=f"τ = {threshold:.4g} flags no sample")
        else:
            ax.plot(op["tpr"], op["precision"], "o", color="black", markersize=7, zorder=5,
                    label=f"τ = {threshold:.4g} (P {op['precision']:.2f}, R {op['tpr']:.2f})")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="recall", ylabel="precision", title="Precision-recall curve")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")


def _roc_inputs(y_true, scores, threshold):
    s = _scores(scores)
    y = _binary_labels(y_true, len(s))
    from ganad.metrics import _both_classes
    _both_classes(y, "y_true")  # a curve compares the two classes
    ev = evaluate(y, s, threshold=threshold)
    return y, s, ev


def roc_pr_figure(y_true, scores, threshold: float | None = None) -> Figure:
    """ROC and precision-recall curves side by side; AUROC/AUPRC in the legends and the
    operating point of ``threshold`` (``scores > threshold`` flags an anomaly) marked."""
    y, s, ev = _roc_inputs(y_true, scores, threshold)
    fig = _new_figure(10.5, 4.8)
    ax_roc, ax_pr = fig.subplots(1, 2)
    _draw_roc(ax_roc, y, s, ev, threshold)
    _draw_pr(ax_pr, y, s, ev, threshold)
    fig.suptitle(f"{ev.n} samples, {ev.n_anomalies} anomalies", fontsize="medium")
    return fig


def roc_figure(y_true, scores, threshold: float | None = None) -> Figure:
    """ROC curve alone (AUROC in the legend, the operating point of ``threshold`` marked)."""
    y, s, ev = _roc_inputs(y_true, scores, threshold)
    fig = _new_figure(5.4, 5.0)
    _draw_roc(fig.subplots(), y, s, ev, threshold)
    return fig


def pr_figure(y_true, scores, threshold: float | None = None) -> Figure:
    """Precision-recall curve alone (AUPRC in the legend, the operating point marked)."""
    y, s, ev = _roc_inputs(y_true, scores, threshold)
    fig = _new_figure(5.4, 5.0)
    _draw_pr(fig.subplots(), y, s, ev, threshold)
    return fig


# --------------------------------------------------------------------------- scores


def score_axis(scores, threshold: float | None = None, x_scale: str = "auto", clip: tuple[float, float] = (0.5, 99.5)) -> dict:
    """How to draw the score axis so that long-tailed scores stay readable.

    ``x_scale='auto'``: a log axis (log-spaced bins) when every score is positive and they span
    more than two decades (max / min > 100); else the range clipped to the ``clip`` percentiles
    when the full range is more than five times wider than the clipped one (a few huge scores
    would squeeze everything else into one bin), the scores outside counted and noted; else the
    full range. ``'linear'`` = the full range, ``'log'`` = a log axis (positive scores only),
    ``'clip'`` = always clipped. The threshold, when given, always stays inside the range.
    Returns ``{"scale": 'linear' | 'log', "lo", "hi", "below", "above"}``.
    """
    s = _scores(scores)
    if x_scale not in ("auto", "linear", "log", "clip"):
        raise InputError(_fmt("x_scale", f"is {x_scale!r}", "use 'auto', 'linear', 'log' or 'clip'"))
    lo, hi = float(s.min()), float(s.max())
    with np.errstate(over="ignore"):
        if not np.isfinite(hi - lo):  # numpy's bins and matplotlib's axes would be inf wide
            raise InputError(_fmt("scores", f"span {lo:.3g} to {hi:.3g}, wider than float64 can hold (their difference "
                                            "overflows), so no axis can show them", "rescale the scores (for example divide "
                                                                                    "them by 1e300) before plotting them"))
    positive = lo > 0 and (threshold is None or threshold > 0)
    if x_scale == "log" and not positive:
        raise InputError(_fmt("x_scale", "is 'log' but some scores (or the threshold) are not positive", "use 'auto', 'linear' or 'clip'"))
    if x_scale == "log" or (x_scale == "auto" and positive and hi / lo > 100):
        return {"scale": "log", "lo": lo, "hi": hi, "below": 0, "above": 0}
    if x_scale in ("auto", "clip") and s.size >= 20:
        plo, phi = (float(v) for v in np.percentile(s, clip))
        if threshold is not None:
            plo, phi = min(plo, float(threshold)), max(phi, float(threshold))
        if phi > plo and (x_scale == "clip" or (hi - lo) > 5 * (phi - plo)):
            return {"scale": "linear", "lo": plo, "hi": phi, "below": int((s < plo).sum()), "above": int((s > phi).sum())}
    return {"scale": "linear", "lo": lo, "hi": hi, "below": 0, "above": 0}


def score_distribution_figure(scores, labels_or_classes=None, threshold: float | None = None, *,
                              bins: int | str = "auto", density: bool = True, log_y: bool = False,
                              x_scale: str = "auto") -> Figure:
    """Histograms of ``scores`` per class with a vertical line at ``threshold``.

    ``labels_or_classes`` holds one entry per score: 0/1 labels (drawn as normal/anomaly),
    any other class names such as the AAMI beat classes N/S/V/F/Q, or ``None`` for a single
    histogram. Bins are shared by all classes; ``density=True`` (default) normalises each
    class to unit area so that small classes stay visible next to large ones. Long-tailed
    scores get a log axis or a clipped range (see :func:`score_axis`, ``x_scale``); the
    number of scores outside a clipped range is written in the title.
    """
    s = _scores(scores)
    axis = score_axis(s, threshold, x_scale)
    fig = _new_figure(7.5, 4.3)
    ax = fig.subplots()
    inside = s[(s >= axis["lo"]) & (s <= axis["hi"])]
    if axis["scale"] == "log":
        n_bins = len(np.histogram_bin_edges(np.log10(s), bins=bins)) - 1 if isinstance(bins, str) else int(bins)
        edges = np.logspace(np.log10(axis["lo"]), np.log10(axis["hi"]), max(min(n_bins, 80), 1) + 1)
    else:
        lo, hi = axis["lo"], axis["hi"]
        if not hi - lo > 1e-9 * max(abs(lo), abs(hi)):
            # equal scores, or equal up to rounding (two seeds' AUROC differing in the last bit): one bin
            # over numpy's range for a constant sample, ±0.5 (numpy could not split the range: "Too many
            # bins", or 'auto' asked for 10^16 bins of the data's width)
            lo, hi = min(lo, hi) - 0.5, max(lo, hi) + 0.5
            bins = 1
        edges = np.histogram_bin_edges(inside, bins=bins, range=(lo, hi))
        if isinstance(bins, str) and len(edges) - 1 > 80:  # 'auto' on millions of scores
            edges = np.histogram_bin_edges(inside, bins=80, range=(lo, hi))
    if labels_or_classes is None:
        groups = [("all samples", "tab:blue", s)]
    else:
        arr = _class_array(labels_or_classes, len(s), "labels_or_classes")
        classes = _ordered_classes(arr)
        binary = _is_binary(classes)
        groups = []
        for i, c in enumerate(classes):
            name, color = _class_style(c, i, binary)
            groups.append((name, color, s[arr == c]))
    # on a log axis a density per score unit would shrink the wide bins of the tail: each bin shows
    # its fraction of the class instead (equal widths on the drawn axis)
    per_bin = axis["scale"] == "log" and density
    for name, color, sc in groups:
        shown = sc[(sc >= edges[0]) & (sc <= edges[-1])]
        # a class whose scores all lie beyond a clipped axis draws nothing (a density of 0 / 0 would warn)
        kw = dict(weights=np.full(len(shown), 1.0 / max(len(sc), 1))) if per_bin else dict(density=density and len(shown) > 0)
        ax.hist(shown, bins=edges, histtype="stepfilled", alpha=0.18, color=color, **kw)
        ax.hist(shown, bins=edges, histtype="step", linewidth=1.6, color=color, label=f"{name}  n={len(sc)}", **kw)
    if threshold is not None:
        ax.axvline(threshold, **_THRESHOLD_STYLE, label=f"threshold τ = {threshold:.4g}")
    if axis["scale"] == "log":
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    title = "Score distribution" + (" by class" if labels_or_classes is not None else "")
    if axis["below"] or axis["above"]:
        title += f"\n(range clipped to the 0.5–99.5 percentiles: {axis['below']} score(s) below, {axis['above']} above not drawn)"
    ax.set(xlabel="anomaly score (higher = more anomalous)" + (", log scale" if axis["scale"] == "log" else ""),
           ylabel="fraction of the class per bin" if per_bin else ("density" if density else "count"), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def training_curves_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """Per-epoch training curves. Keys containing ``loss`` are drawn in one panel; any
    other series (validation AUROC, learning rate, …) in a second panel beside it.
    Non-finite values leave gaps. A positive panel spanning over three decades uses a log axis."""
    if not isinstance(history, Mapping) or not history:
        raise InputError(_fmt("history", "is empty or not a dict", "pass a dict of name -> list of per-epoch values, e.g. {'loss_d': [...], 'loss_g': [...]}"))
    series = {}
    for k, v in history.items():
        arr = np.asarray(v, dtype=np.float64).reshape(-1)
        if arr.size:
            series[str(k)] = arr
    if not series:
        raise InputError(_fmt("history", "holds no values", "pass at least one non-empty list of per-epoch values"))
    groups = [("Losses", {k: v for k, v in series.items() if "loss" in k.lower()}),
              ("Other tracked values", {k: v for k, v in series.items() if "loss" not in k.lower()})]
    groups = [(t, g) for t, g in groups if g]
    fig = _new_figure(6.5 * len(groups), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for ax, (title, g) in zip(axes, groups):
        for k, v in g.items():
            epochs = np.arange(1, len(v) + 1)
            ax.plot(epochs, v, marker="o" if len(v) <= 30 else None, markersize=3, linewidth=1.5, label=k)
        finite = np.concatenate([v[np.isfinite(v)] for v in g.values()])
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 1e3:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="loss" if title == "Losses" else "value", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- samples


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/end (exclusive) index pairs of the True runs in a 1-D boolean mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _map_threshold(amap: np.ndarray, threshold: float | None, quantile: float) -> float:
    """The given threshold, else the map's ``quantile`` but at least half its maximum, so that a
    map with one clear peak shades the peak and not the top 10 % of its noise floor."""
    if threshold is not None:
        return float(threshold)
    return float(max(np.quantile(amap, quantile), 0.5 * amap.max()))


def _series_inputs(x, reconstruction, amap, name):
    x = _array(x, f"{name}x", (1, 2))
    x2 = x[None, :] if x.ndim == 1 else x
    rec = None
    if reconstruction is not None:
        rec = _array(reconstruction, f"{name}reconstruction", (1, 2))
        if rec.size != x2.size:
            raise InputError(_fmt(f"{name}reconstruction", f"has shape {rec.shape} but the series has shape {x.shape}",
                                  "pass the reconstruction of this very sample"))
        rec = rec.reshape(x2.shape)
    m = None
    if amap is not None:
        m = _array(amap, f"{name}map", (1, 2))
        m = m[None, :] if m.ndim == 1 else m
        if m.shape[1] != x2.shape[1] or m.shape[0] not in (1, x2.shape[0]):
            raise InputError(_fmt(f"{name}map", f"has shape {np.shape(amap)} for a series of shape {x.shape}",
                                  "pass a map of shape (L,) (per time step) or (C, L) (per channel and time step)"))
    return x2, rec, m


def _draw_series(container, x, reconstruction=None, amap=None, *, title=None, threshold=None, quantile=0.9,
                 channel_names=None, max_channels=6, name=""):
    x2, rec, m = _series_inputs(x, reconstruction, amap, name)
    C, L = x2.shape
    chans = np.arange(C)
    if C > max_channels:  # show the channels that matter most
        if m is not None and m.shape[0] == C:
            weight = m.sum(axis=1)
        elif rec is not None:
            weight = np.abs(x2 - rec).sum(axis=1)
        else:
            weight = x2.std(axis=1)
        chans = np.sort(np.argsort(-weight, kind="stable")[:max_channels])
    n_rows = len(chans) + (m is not None)
    ratios = [3.0] * len(chans) + ([0.55 + 0.25 * (m.shape[0] > 1)] if m is not None else [])
    axes = np.atleast_1d(container.subplots(n_rows, 1, sharex=True, gridspec_kw={"height_ratios": ratios}))
    t = np.arange(L)
    thr = _map_threshold(m, threshold, quantile) if m is not None else None
    for row, c in enumerate(chans):
        ax = axes[row]
        ax.plot(t, x2[c], color="tab:blue", linewidth=1.3, label="signal")
        if rec is not None:
            ax.plot(t, rec[c], color="tab:orange", linewidth=1.3, linestyle="--", label="reconstruction")
        if m is not None:
            mc = m[c] if m.shape[0] > 1 else m[0]
            for i, (a, b) in enumerate(_runs(mc > thr)):
                ax.axvspan(a - 0.5, b - 0.5, color="tab:red", alpha=0.18, linewidth=0,
                           label="anomalous segment" if i == 0 else None)
        label = channel_names[c] if channel_names is not None else (f"ch {c}" if C > 1 else "value")
        ax.set_ylabel(str(label))
        ax.grid(alpha=0.3)
        if row == 0:
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", ncols=3, frameon=False,
                      borderaxespad=0.1)
    if m is not None:
        ax = axes[-1]
        shown = m[chans] if m.shape[0] > 1 else m
        ax.imshow(shown, aspect="auto", cmap=_MAP_CMAP, interpolation="nearest", extent=(-0.5, L - 0.5, shown.shape[0] - 0.5, -0.5))
        ax.set_yticks([] if shown.shape[0] == 1 else range(shown.shape[0]))
        if shown.shape[0] > 1:
            ax.set_yticklabels([str(channel_names[c]) if channel_names is not None else str(c) for c in chans], fontsize="x-small")
        ax.set_ylabel("map", rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("time step")
    axes[-1].set_xlim(-0.5, L - 0.5)
    head = title or "Series"
    if len(chans) < C:
        head += f" (showing {len(chans)} of {C} channels)"
    container.suptitle(head, fontsize="medium")
    return axes


def series_map_figure(x, reconstruction=None, amap=None, title: str | None = None, *, threshold: float | None = None,
                      quantile: float = 0.9, channel_names: Sequence[str] | None = None, max_channels: int = 6) -> Figure:
    """A series window / ECG beat ``(C, L)`` or ``(L,)``: one panel per channel with the
    signal, the reconstruction dashed and the anomalous segments shaded, plus the anomaly
    map as a thin heat strip below.

    Time steps are shaded where the map exceeds ``threshold`` or, when none is given, both
    its ``quantile`` (90th percentile by default) and half its maximum. With more than ``max_channels`` channels only
    the ones with the largest map (or residual) are drawn.
    """
    x_arr = np.asarray(x)
    C = 1 if x_arr.ndim == 1 else (x_arr.shape[0] if x_arr.ndim == 2 else 1)
    n = min(C, max_channels)
    fig = _new_figure(8.5, 1.9 * n + (0.9 if amap is not None else 0) + 0.6)
    _draw_series(fig, x, reconstruction, amap, title=title, threshold=threshold, quantile=quantile,
                 channel_names=channel_names, max_channels=max_channels)
    return fig


def _to_display(img: np.ndarray):
    """(C,H,W)/(H,W) -> something imshow can draw, and a note on what was done."""
    if img.ndim == 2:
        return img, None
    C = img.shape[0]
    if C == 1:
        return img[0], None
    if C == 3:
        return np.moveaxis(img, 0, -1), None
    return img.mean(axis=0), f"mean of {C} channels"


def _image_inputs(x, reconstruction, amap, name):
    x = _array(x, f"{name}x", (2, 3))
    rec = None
    if reconstruction is not None:
        rec = _array(reconstruction, f"{name}reconstruction", (2, 3))
        if rec.size != x.size:
            raise InputError(_fmt(f"{name}reconstruction", f"has shape {rec.shape} but the image has shape {x.shape}",
                                  "pass the reconstruction of this very sample"))
        rec = rec.reshape(x.shape)
    m = None
    if amap is not None:
        m = _array(amap, f"{name}map", (2, 3))
        if m.ndim == 3:
            m = m.mean(axis=0)
    return x, rec, m


def _draw_image(container, x, reconstruction=None, amap=None, *, title=None, alpha=0.55, name=""):
    x, rec, m = _image_inputs(x, reconstruction, amap, name)
    xd, note = _to_display(x)
    rd = _to_display(rec)[0] if rec is not None else None
    rgb = xd.ndim == 3
    lo = min(xd.min(), rd.min()) if rd is not None else xd.min()
    hi = max(xd.max(), rd.max()) if rd is not None else xd.max()
    span = hi - lo if hi > lo else 1.0
    n = 1 + (rec is not None) + (m is not None)
    axes = np.atleast_1d(container.subplots(1, n))
    H, W = xd.shape[:2]

    def show(ax, img, ttl):
        if rgb:
            ax.imshow(np.clip((img - lo) / span, 0, 1), interpolation="nearest")
        else:
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(ttl, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])

    show(axes[0], xd, "input" + (f" ({note})" if note else ""))
    i = 1
    if rd is not None:
        show(axes[i], rd, "reconstruction")
        i += 1
    if m is not None:
        ax = axes[i]
        base = xd.mean(axis=-1) if rgb else xd
        ax.imshow(base, cmap="gray", interpolation="nearest")
        hm = ax.imshow(m, cmap=_MAP_CMAP, alpha=alpha, interpolation="bilinear" if m.shape != (H, W) else "nearest",
                       extent=(-0.5, W - 0.5, H - 0.5, -0.5))
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_title("anomaly map", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
        container.colorbar(hm, ax=ax, shrink=0.8, label="anomaly")
    if title:
        container.suptitle(title, fontsize="medium")
    return axes


def image_map_figure(x, reconstruction=None, amap=None, title: str | None = None, *, alpha: float = 0.55) -> Figure:
    """An image ``(C, H, W)`` or ``(H, W)``: the input, its reconstruction and the anomaly
    map laid over the input as a heat map (with a colour bar). One or three channels are
    drawn as grey / RGB, other channel counts as their mean; a map coarser than the image is
    stretched over it."""
    n = 1 + (reconstruction is not None) + (amap is not None)
    fig = _new_figure(3.3 * n + (0.5 if amap is not None else 0), 3.6)
    _draw_image(fig, x, reconstruction, amap, title=title, alpha=alpha)
    return fig


def _draw_vector(container, x, amap, *, feature_names=None, top=20, title=None, name=""):
    m = _array(amap, f"{name}map", (1,))
    xv = None
    if x is not None:
        xv = np.asarray(x, dtype=np.float64).reshape(-1)
        if xv.size != m.size:
            raise InputError(_fmt(f"{name}x", f"has {xv.size} features but the map has {m.size}", "pass the sample and its per-feature map"))
    if feature_names is not None and len(feature_names) != m.size:
        raise InputError(_fmt("feature_names", f"has {len(feature_names)} names for {m.size} features", "pass one name per feature"))
    names = [str(f) for f in feature_names] if feature_names is not None else [f"feature {i}" for i in range(m.size)]
    k = int(min(top, m.size))
    idx = np.argsort(-np.abs(m), kind="stable")[:k]
    ax = container.subplots()
    vals = m[idx][::-1]
    labels = [names[i] + (f" = {xv[i]:.3g}" if xv is not None else "") for i in idx][::-1]
    colors = ["tab:red" if v >= 0 else "tab:blue" for v in vals]
    ax.barh(np.arange(k), vals, color=colors, alpha=0.85)
    ax.set_yticks(np.arange(k))
    ax.set_yticklabels(labels, fontsize="small")
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("anomaly contribution")
    ax.set_title(f"Top {k} of {m.size} features" if k < m.size else f"All {m.size} features", fontsize="small")
    if title:
        container.suptitle(title, fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    return np.array([ax])


def vector_map_figure(x, amap, feature_names: Sequence[str] | None = None, top: int = 20, title: str | None = None) -> Figure:
    """Horizontal bars of the ``top`` largest per-feature anomaly contributions (by absolute
    value; negative contributions in blue), each labelled with the feature's name and value."""
    n = int(min(top, np.size(amap)))
    fig = _new_figure(7.0, 0.28 * n + 1.4)
    _draw_vector(fig, x, amap, feature_names=feature_names, top=top, title=title)
    return fig


# --------------------------------------------------------------------------- dispatch


def sample_kind(sample: Mapping[str, Any]) -> str:
    """``"image"``, ``"series"`` or ``"vector"`` for a sample dict.

    An explicit ``sample["kind"]`` wins; otherwise the shape of ``sample["x"]`` decides,
    following ganad's data shapes: 3-D ``(C, H, W)`` is an image, 2-D ``(C, L)`` a series,
    1-D ``(F,)`` a tabular vector. Give ``kind`` for a 1-D series (an ECG beat of shape
    ``(L,)``) or a 2-D ``(H, W)`` image.
    """
    kind = sample.get("kind")
    if kind is not None:
        if kind not in ("image", "series", "vector"):
            raise InputError(_fmt("sample['kind']", f"is {kind!r}", "use 'image', 'series' or 'vector'"))
        return kind
    nd = np.ndim(sample.get("x"))
    return {3: "image", 2: "series", 1: "vector"}.get(nd) or _raise_kind(nd)


def _raise_kind(nd):
    raise InputError(_fmt("sample['x']", f"has {nd} dimensions", "pass one sample: (F,) vector, (C, L) series or (C, H, W) image"))


def _sample_title(sample: Mapping[str, Any], i: int | None = None) -> str:
    parts = [str(sample.get("title") or (f"sample {i}" if i is not None else "sample"))]
    if sample.get("score") is not None:
        parts.append(f"score {float(sample['score']):.4g}")
    if sample.get("label") is not None:
        lab = sample["label"]
        parts.append(f"label {_BINARY_NAMES.get(lab, lab) if isinstance(lab, (int, np.integer)) else lab}")
    return " · ".join(parts)


def _as_sample(s, i) -> dict:
    if isinstance(s, Mapping):
        if "x" not in s:
            raise InputError(_fmt(f"samples[{i}]", "has no 'x'", "pass dicts like {'x': array, 'reconstruction': array, 'map': array, 'score': float}"))
        return dict(s)
    return {"x": s}


def _draw_sample(container, sample, i=None):
    kind = sample_kind(sample)
    name = f"samples[{i}]." if i is not None else ""
    ttl = _sample_title(sample, i)
    if kind == "series":
        return _draw_series(container, sample["x"], sample.get("reconstruction"), sample.get("map"), title=ttl,
                            threshold=sample.get("map_threshold"), channel_names=sample.get("channel_names"), name=name)
    if kind == "image":
        return _draw_image(container, sample["x"], sample.get("reconstruction"), sample.get("map"), title=ttl, name=name)
    if sample.get("map") is None:
        raise InputError(_fmt(f"{name}map", "is missing for a vector sample", "pass the per-feature anomaly map as sample['map']"))
    return _draw_vector(container, sample["x"], sample["map"], feature_names=sample.get("feature_names"), title=ttl, name=name)


def _sample_height(sample) -> float:
    kind = sample_kind(sample)
    if kind == "image":
        return 3.6
    if kind == "vector":
        return 0.28 * min(20, np.size(sample.get("map"))) + 1.6
    x = np.asarray(sample["x"])
    c = 1 if x.ndim == 1 else min(x.shape[0], 6)
    return 1.9 * c + (0.9 if sample.get("map") is not None else 0) + 0.7


def sample_figure(sample: Mapping[str, Any]) -> Figure:
    """One sample dict (``x``, optional ``reconstruction``, ``map``, ``score``, ``label``,
    ``title``, ``kind``) drawn by :func:`series_map_figure`, :func:`image_map_figure` or
    :func:`vector_map_figure` according to :func:`sample_kind`."""
    sample = _as_sample(sample, 0)
    kind = sample_kind(sample)
    if kind == "image":
        n = 1 + (sample.get("reconstruction") is not None) + (sample.get("map") is not None)
        fig = _new_figure(3.3 * n + (0.5 if sample.get("map") is not None else 0), 3.9)
    else:
        fig = _new_figure(8.5 if kind == "series" else 7.0, _sample_height(sample))
    _draw_sample(fig, sample)
    return fig


def examples_figure(samples: Sequence[Mapping[str, Any]], *, max_samples: int = 6, ncols: int = 1) -> Figure:
    """A grid of the highest-scoring samples, each drawn according to its shape.

    ``samples`` is a list of dicts as for :func:`sample_figure` (bare arrays are accepted
    too). Samples with a ``score`` are sorted by it, highest first; the first
    ``max_samples`` are drawn, ``ncols`` per row.
    """
    items = [_as_sample(s, i) for i, s in enumerate(samples)]
    if not items:
        raise InputError(_fmt("samples", "is empty", "pass at least one sample dict"))
    order = sorted(range(len(items)), key=lambda i: -float(items[i]["score"]) if items[i].get("score") is not None else np.inf)
    order = order[:max_samples]
    ncols = max(1, min(ncols, len(order)))
    nrows = -(-len(order) // ncols)
    heights = []
    for r in range(nrows):
        heights.append(max(_sample_height(items[i]) for i in order[r * ncols:(r + 1) * ncols]))
    width = 8.5 if ncols == 1 else 6.5 * ncols
    fig = _new_figure(width, sum(heights))
    subs = np.array(fig.subfigures(nrows, ncols, height_ratios=heights, squeeze=False), dtype=object)
    for k, i in enumerate(order):
        sub: SubFigure = subs[k // ncols, k % ncols]
        _draw_sample(sub, items[i], i)
    return fig
