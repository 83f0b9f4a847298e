"""The benchmark figures (matplotlib, no pyplot state)."""

from __future__ import annotations

import numpy as np

from ganad.benchmark.peers import _PEER_PREFIX


def _figures(res: dict) -> dict:
    """name -> matplotlib Figure."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve
    figs = {}
    p = res["protocol"]
    if p == "mitbih" and res.get("_scores"):
        fig = Figure(figsize=(7.5, 6))
        ax = fig.add_subplot(111)
        y = res["_y"]
        auc = {r["method"]: r["auroc"] for r in res["results"]}
        for m, s in sorted(res["_scores"].items(), key=lambda kv: -(auc.get(kv[0]) or 0)):
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.2, ls="--" if m.startswith(_PEER_PREFIX) else "-", label=f"{m} ({auc[m]:.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title("MIT-BIH DS2, N vs all other beats (dashed: PyOD)")
        ax.legend(fontsize=7, loc="lower right")
        figs["roc"] = fig
        # per class AUROC bars
        fig = Figure(figsize=(9, 4))
        ax = fig.add_subplot(111)
        rows = [r for r in res["results"] if r["auroc"] is not None]
        w = 0.2
        x = np.arange(len(rows))
        for i, c in enumerate(["", "_N_vs_S", "_N_vs_V", "_N_vs_F"]):
            _bars(ax, x + (i - 1.5) * w, [r.get("auroc" + c) for r in rows], w, label=c.strip("_").replace("_", " ") or "overall")
        ax.set_xticks(x, [r["method"].replace(_PEER_PREFIX, "pyod\n") for r in rows], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC")
        ax.legend(fontsize=7, ncol=4)
        figs["auroc_by_class"] = fig
    if p in ("adbench", "mnist"):
        per = res["per_dataset" if p == "adbench" else "per_digit"]
        units = list(per)
        methods = list(res["summary"]["mean"])
        methods = [m for m in methods if not m.startswith(_PEER_PREFIX)] + [m for m in methods if m.startswith(_PEER_PREFIX)]
        fig = Figure(figsize=(max(8, 0.9 * len(units) + 2) + 2, 4.5))
        ax = fig.add_subplot(111)
        w = 0.8 / max(1, len(methods))
        x = np.arange(len(units))
        cmap = __import__("matplotlib").colormaps["tab20"]
        for i, m in enumerate(methods):
            vals = [per[u].get(m, {}).get("auroc") for u in units]
            _bars(ax, x - 0.4 + (i + 0.5) * w, vals, w, label=m, color=cmap(i % 20),
                  hatch="//" if m.startswith(_PEER_PREFIX) else None, edgecolor="white", lw=0)
        ax.set_xticks(x, [u.split("_", 1)[-1] for u in units], rotation=30 if p == "adbench" else 0, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC")
        ax.set_title(("ADBench: mean AUROC over seeds per dataset" if p == "adbench" else "MNIST one-class: AUROC per digit")
                     + " (hatched: PyOD)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        figs["auroc_per_" + ("dataset" if p == "adbench" else "digit")] = fig
    return figs


def _bars(ax, x, values, width, **kw):
    """Bars of AUROCs where an undefined one (None: a class without test samples, a failed run) is no
    bar and an 'n/a' mark, not a bar at 0 (which reads as a perfectly inverted detector)."""
    heights = [np.nan if v is None else float(v) for v in values]
    ax.bar(x, heights, width, **kw)
    for xi, v in zip(np.atleast_1d(x), values):
        if v is None:
            ax.text(xi, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=6)
