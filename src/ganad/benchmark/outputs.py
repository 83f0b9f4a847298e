"""Writing a run: results.json, results.md, one PNG per figure and a self-contained report.html, replacing the
output folder's earlier ones as one set (:func:`ganad.files.output_set`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ganad.benchmark.figures import _figures
from ganad.benchmark.peers import _PEER_PREFIX
from ganad.benchmark.tables import markdown_tables
from ganad.files import output_set, refuse_folders_in_the_way, write_text


def write_outputs(res: dict, outdir: str | os.PathLike) -> dict:
    """Write results.json, results.md, one PNG per figure and report.html into ``outdir``; returns their paths."""
    from ganad.report import fig_to_base64_png, save_png, write_report
    out = Path(outdir)
    figs = _figures(res)
    names = ["results.json", "results.md", *(f"{name}.png" for name in figs), "report.html"]
    refuse_folders_in_the_way(out, names, "the benchmark")
    clean = {k: v for k, v in res.items() if not k.startswith("_")}
    md = f"# ganad benchmark: {res['protocol']}\n\n" + "\n".join(f"- {n}" for n in res.get("notes", [])) + "\n\n" + markdown_tables(res)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    # the report's score panel shows the best ganad method (its test scores on the first unit for adbench/mnist)
    rows = [r for r in res["results"] if r["auroc"] is not None]
    tables = {"results": [{k: v for k, v in r.items() if k not in ("kind",)} for r in res["results"]]}
    if "summary" in res and "mean" in res["summary"]:
        tables["mean over units"] = [{"method": m, **v} for m, v in res["summary"]["mean"].items()]
    if res.get("split"):
        tables["split"] = {k: (", ".join(map(str, v)) if isinstance(v, list) and len(v) < 60 else v)
                           for k, v in res["split"].items() if k != "test_index"}
    tables["machine"] = res["machine"]
    tables["config"] = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in res["config"].items()}
    best = res["summary"].get("best_ganad")
    if res["protocol"] == "mitbih" and best and best in res.get("_scores", {}):
        thr = next(r["threshold"] for r in rows if r["method"] == best)
        kw = dict(scores=res["_scores"][best], labels=res["_y"], classes=res["_classes"], threshold=thr)
        note = f"Score panels: {best}, the best ganad method by AUROC, on the DS2 test beats; τ from the held-out DS1 records."
    else:
        # no per-sample scores kept: show the AUROC of every run as the 'scores' panel
        vals = np.array([r["auroc"] for r in rows] or [0.0])
        kw = dict(scores=vals, classes=np.array(["ganad" if not r["method"].startswith(_PEER_PREFIX) else "PyOD" for r in rows] or ["-"]))
        note = "Score panels: the distribution of per-run AUROCs (ganad vs PyOD), not per-sample scores."
    # every file goes into a temporary folder first and they replace the earlier run's as one set: a run that
    # fails (a full disk) or is interrupted half-way leaves the earlier results whole, never the two mixed
    with output_set(out, names) as tmp:
        write_text(tmp / "results.json", json.dumps(clean, indent=1, default=_json_default))
        write_text(tmp / "results.md", md)
        embedded = []
        for name, fig in figs.items():
            save_png(fig, tmp / f"{name}.png", close=False)
            paths[name] = out / f"{name}.png"
            embedded.append((name, fig_to_base64_png(fig)))
        # the benchmark figures as one more section of the report (base64 PNG, still self-contained): written once, whole
        imgs = "".join(f'<figure><img src="data:image/png;base64,{b64}" alt="{name}"><figcaption>{name}</figcaption></figure>'
                       for name, b64 in embedded)
        write_report(tmp / "report.html", title=f"ganad benchmark — {res['protocol']}", tables=tables,
                     notes=list(res.get("notes", [])) + [note],
                     extra_html=f'<section id="benchmark-figures"><h2>Benchmark figures</h2>{imgs}</section>\n', **kw)
    paths["report"] = out / "report.html"
    return paths


def _json_default(v):  # pragma: no cover - json helper
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
