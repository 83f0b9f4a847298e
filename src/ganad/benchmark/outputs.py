"""Writing a run: results.json, results.md, one PNG per figure and a self-contained report.html, each atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ganad.benchmark.figures import _figures
from ganad.benchmark.peers import _PEER_PREFIX
from ganad.benchmark.tables import markdown_tables
from ganad.files import refuse_folders_in_the_way, write_text


def write_outputs(res: dict, outdir: str | os.PathLike) -> dict:
    """Write results.json, results.md, one PNG per figure and report.html into ``outdir``; returns their paths."""
    from ganad.report import fig_to_base64_png, save_png, write_report
    out = Path(outdir)
    figs = _figures(res)
    refuse_folders_in_the_way(out, ["results.json", "results.md", *(f"{name}.png" for name in figs), "report.html"], "the benchmark")
    out.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in res.items() if not k.startswith("_")}
    write_text(out / "results.json", json.dumps(clean, indent=1, default=_json_default))
    md = f"# ganad benchmark: {res['protocol']}\n\n" + "\n".join(f"- {n}" for n in res.get("notes", [])) + "\n\n" + markdown_tables(res)
    write_text(out / "results.md", md)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    embedded = []
    for name, fig in figs.items():
        paths[name] = save_png(fig, out / f"{name}.png", close=False)
        embedded.append((name, fig_to_base64_png(fig)))
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
    path = write_report(out / "report.html", title=f"ganad benchmark — {res['protocol']}", tables=tables,
                        notes=list(res.get("notes", [])) + [note], **kw)
    # append the benchmark figures as one more section (base64 PNG, still self-contained)
    html = path.read_text()
    imgs = "".join(f'<figure><img src="data:image/png;base64,{b64}" alt="{name}"><figcaption>{name}</figcaption></figure>'
                   for name, b64 in embedded)
    section = f'<section id="benchmark-figures"><h2>Benchmark figures</h2>{imgs}</section>\n'
    html = html.replace("</main>", section + "</main>", 1)
    write_text(path, html)
    paths["report"] = path
    return paths


def _json_default(v):  # pragma: no cover - json helper
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
