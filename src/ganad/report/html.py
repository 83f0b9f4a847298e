"""A self-contained HTML report: one file, every figure embedded as a base64 PNG ``data:``
URI, inline CSS, one tiny inline script, nothing fetched from anywhere (a Content Security
Policy in the page forbids it), so it opens from disk in any browser without a server."""

from __future__ import annotations

import datetime as _dt
import html
import math
import numbers
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ganad.data.validation import check_labels
from ganad.exceptions import InputError, _fmt
from ganad.params import is_int
from ganad.files import write_bytes
from ganad.metrics import Evaluation, _scores, evaluate
from ganad.report import plots

__all__ = ["write_report"]

_CSS = """
:root { --fg:#1d232b; --muted:#5b6673; --line:#d9dee4; --bg:#f6f7f9; --card:#fff; --accent:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d232b; color:#fff; padding:1.4rem 2rem; }
header h1 { margin:0; font-size:1.6rem; font-weight:600; }
header .sub { color:#b9c2cc; margin-top:.25rem; font-size:.9rem; }
nav { padding:.6rem 2rem; background:#fff; border-bottom:1px solid var(--line); font-size:.9rem; }
nav a { color:var(--fg); margin-right:1.1rem; text-decoration:none; border-bottom:1px dotted var(--muted); }
main { max-width:1180px; margin:0 auto; padding:1rem 2rem 2rem; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem 1.4rem; margin:1rem 0; }
h2 { font-size:1.2rem; margin:.2rem 0 .8rem; }
h3 { font-size:1rem; margin:.8rem 0 .4rem; }
.kpis { display:flex; flex-wrap:wrap; gap:.8rem; }
.kpi { border:1px solid var(--line); border-radius:6px; padding:.5rem .9rem; min-width:8.5rem; }
.kpi .v { font-size:1.35rem; font-weight:600; font-variant-numeric: tabular-nums; }
.kpi .k { color:var(--muted); font-size:.82rem; }
table { border-collapse:collapse; font-size:.9rem; margin:.3rem 0 .8rem; }
th, td { border-bottom:1px solid var(--line); padding:.3rem .8rem; text-align:left; vertical-align:top; }
th { background:#eef1f4; font-weight:600; }
td.num { text-align:right; font-variant-numeric: tabular-nums; }
.tablewrap { overflow-x:auto; }
figure { margin:.4rem 0 1rem; }
figure img { max-width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:.85rem; margin-top:.3rem; }
.examples { display:flex; flex-wrap:wrap; gap:0 1.2rem; align-items:flex-start; }
.notes p { margin:.3rem 0; }
.warn { color:var(--accent); }
footer { color:var(--muted); font-size:.8rem; text-align:center; padding:1rem 2rem 2rem; }
"""

# Counts images that decoded (used by the browser test and handy for a human: a broken
# image would show up as loaded < total).
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.getElementsByTagName("img"), ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } }
  document.body.dataset.imagesLoaded = String(ok);
  document.body.dataset.imagesTotal = String(imgs.length);
});
"""

# Nothing may be fetched: images only from data: URIs, inline style and script only.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_E = html.escape


def _ganad_version() -> str:
    try:
        import ganad

        v = getattr(ganad, "__version__", None)
        if v:
            return str(v)
    except Exception:  # pragma: no cover - ganad is importable when this runs
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("ganad")
    except PackageNotFoundError:
        return "unknown"


def _fmt_value(v: Any) -> tuple[str, bool]:
    """Text for a table cell and whether it is numeric (right-aligned)."""
    if v is None:
        return "—", False
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)), False
    if isinstance(v, numbers.Integral):
        return str(int(v)), True
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isnan(f):
            return "NaN", True
        if f != 0 and (abs(f) >= 1e6 or abs(f) < 1e-3):
            return f"{f:.4g}", True
        return f"{f:.4f}".rstrip("0").rstrip("."), True
    return str(v), False


def _rows_of(table, name: str) -> tuple[list[str], list[Mapping[str, Any]]]:
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas DataFrame
        cols = [str(c) for c in table.columns]
        rows = [dict(zip(cols, r)) for r in table.itertuples(index=False, name=None)]
        return cols, rows
    if isinstance(table, Mapping):  # a single record: name -> value
        return ["name", "value"], [{"name": k, "value": v} for k, v in table.items()]
    rows = list(table)
    cols: dict[str, None] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise InputError(_fmt(f"tables[{name!r}][{i}]", f"is a {type(r).__name__}, not a dict", "pass a list of row dicts or a pandas DataFrame"))
        for k in r:
            cols.setdefault(str(k), None)
    return list(cols), [{str(k): v for k, v in r.items()} for r in rows]


def _table_html(cols: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{_E(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            text, num = _fmt_value(r.get(c))
            cells.append(f'<td class="num">{_E(text)}</td>' if num else f"<td>{_E(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _img(fig, alt: str, caption: str | None = None) -> str:
    w_in, h_in = fig.get_size_inches()
    data = plots.fig_to_base64_png(fig, dpi=130)
    cap = f"<figcaption>{_E(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_E(alt)}" '
            f'width="{round(w_in * 96)}" height="{round(h_in * 96)}">{cap}</figure>')


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_E(sid)}"><h2>{_E(title)}</h2>{body}</section>'


def _kpis(items: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f'<div class="kpi"><div class="v">{_E(_fmt_value(v)[0])}</div><div class="k">{_E(k)}</div></div>'
                    for k, v in items)
    return f'<div class="kpis">{cells}</div>'


def _class_table(s: np.ndarray, cls: np.ndarray, threshold: float | None) -> str:
    rows = []
    classes = plots._ordered_classes(cls)
    binary = plots._is_binary(classes)
    for c in classes:
        sc = s[cls == c]
        row = {"class": plots._BINARY_NAMES[int(c)] if binary else c, "n": len(sc), "mean score": float(sc.mean()), "median score": float(np.median(sc)),
               "max score": float(sc.max())}
        if threshold is not None:
            row["flagged (score > τ)"] = int((sc > threshold).sum())
            row["flagged fraction"] = float((sc > threshold).mean())
        rows.append(row)
    return _table_html(list(rows[0]), rows)


def _metrics_rows(metrics) -> list[dict]:
    if isinstance(metrics, Evaluation):
        metrics = metrics.to_dict()
    if not isinstance(metrics, Mapping):
        raise InputError(_fmt("metrics", f"is a {type(metrics).__name__}", "pass a dict of metric name -> value (or an Evaluation)"))
    return [{"metric": k, "value": v} for k, v in metrics.items()]


def _merged_metrics(computed, given) -> list[dict]:
    """One table: the metrics computed from labels and scores (at τ), completed by the given ones.
    A given value fills a metric that could not be computed (no τ: precision, recall, F1, MCC);
    a given value that differs from the computed one is shown beside it, marked "(given)"."""
    rows = {r["metric"]: r["value"] for r in _metrics_rows(computed)} if computed is not None else {}
    for r in (_metrics_rows(given) if given is not None else []):
        k, v = r["metric"], r["value"]
        if rows.get(k) is None:
            rows[k] = v
        elif v is not None and not (isinstance(v, (int, float)) and isinstance(rows[k], (int, float))
                                    and math.isclose(float(v), float(rows[k]), rel_tol=1e-9, abs_tol=1e-12)) and v != rows[k]:
            rows[f"{k} (given)"] = v
    return [{"metric": k, "value": v} for k, v in rows.items()]


def _render(*, title, scores, labels, classes, threshold, metrics, history, examples, tables, notes, max_examples) -> str:
    s = _scores(scores)
    if s.size == 0:
        raise InputError(_fmt("scores", "is empty", "pass one score per sample, at least one"))
    if not is_int(max_examples) or max_examples < 0:
        raise InputError(_fmt("max_examples", f"is {max_examples!r}", "pass a non-negative integer"))
    if tables is not None and not isinstance(tables, Mapping):
        raise InputError(_fmt("tables", f"is a {type(tables).__name__}", "pass a dict of table name -> rows (list of dicts, DataFrame or dict)"))
    if threshold is not None:
        threshold = float(threshold)
        if not math.isfinite(threshold):
            raise InputError(_fmt("threshold", f"is {threshold}", "pass a finite threshold or None"))
    y = check_labels(labels, len(s), "labels") if labels is not None else None
    cls = plots._class_array(classes, len(s), "classes") if classes is not None else None

    nav: list[tuple[str, str]] = []
    parts: list[str] = []

    def add(sid, heading, body):
        nav.append((sid, heading))
        parts.append(_section(sid, heading, body))

    # Summary
    kp = [("samples", len(s))]
    if y is not None:
        kp.append(("labelled anomalies", int(y.sum())))
    if threshold is not None:
        kp += [("threshold τ", threshold), ("flagged (score > τ)", int((s > threshold).sum()))]
    kp += [("median score", float(np.median(s))), ("max score", float(s.max()))]
    summary = _kpis(kp)
    if notes:
        ns = [notes] if isinstance(notes, str) or not isinstance(notes, Iterable) else list(notes)
        summary += '<div class="notes">' + "".join(f"<p>{_E(str(n))}</p>" for n in ns) + "</div>"
    add("summary", "Summary", summary)

    # Metrics and curves
    both = y is not None and 0 < y.sum() < len(y)
    mbody = ""
    if y is not None and not both:
        mbody += ('<p class="warn">The labels hold only one class, so AUROC, AUPRC and the ROC / PR curves '
                  "cannot be computed. Include both normal (0) and anomalous (1) samples to get them.</p>")
    if both or metrics is not None:
        mbody += _table_html(["metric", "value"], _merged_metrics(evaluate(y, s, threshold=threshold) if both else None, metrics))
    if mbody:
        add("metrics", "Metrics", mbody)
    if both:
        add("curves", "ROC and precision-recall",
            _img(plots.roc_pr_figure(y, s, threshold), "ROC and precision-recall curves",
                 "Scores above τ are flagged as anomalies; the dot marks that operating point." if threshold is not None else None))

    # Distribution by class
    group = cls if cls is not None else y
    dist = _img(plots.score_distribution_figure(s, group, threshold), "Score distribution by class",
                "Each class is normalised to unit area; the dashed line is the threshold τ." if group is not None else None)
    if group is not None:
        dist += _class_table(s, np.asarray(group), threshold)
    add("scores", "Score distribution", dist)

    if history:
        add("training", "Training curves", _img(plots.training_curves_figure(history), "Training curves"))

    if examples:
        items = [plots._as_sample(e, i) for i, e in enumerate(examples)]
        def rank(i):  # highest score first; no score, or a NaN one, last
            sc = items[i].get("score")
            return -float(sc) if sc is not None and not math.isnan(float(sc)) else math.inf
        order = sorted(range(len(items)), key=rank)
        shown = order[:max_examples]
        cards = "".join(_img(plots.sample_figure(items[i]), plots._sample_title(items[i], i)) for i in shown)
        of = (f"of the {len(items)} examples given ({s.size} samples scored)" if s.size > len(items)
              else f"of {len(items)} samples")  # the demo passes its top 6 of 574: "of 6 samples" read as if 6 were scored
        intro = (f"<p>The {len(shown)} highest-scoring {of}: signal / input, reconstruction and the "
                 "anomaly map (shaded segments, heat-map overlay or the largest per-feature contributions).</p>")
        add("examples", "Examples", intro + f'<div class="examples">{cards}</div>')

    if tables:
        tbody = ""
        for name, t in tables.items():
            cols, rows = _rows_of(t, str(name))
            tbody += f"<h3>{_E(str(name))}</h3>" + (_table_html(cols, rows) if rows else "<p>(empty)</p>")
        add("tables", "Tables", tbody)

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    nav_html = "".join(f'<a href="#{_E(sid)}">{_E(h)}</a>' for sid, h in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="ganad {_E(_ganad_version())}">'
        f"<title>{_E(str(title))}</title><style>{_CSS}</style></head>\n"
        f'<body><header><h1>{_E(str(title))}</h1><div class="sub">ganad anomaly-detection report · {_E(now)}</div></header>'
        f"<nav>{nav_html}</nav><main>\n" + "\n".join(parts) + "\n</main>"
        f"<footer>Generated by ganad {_E(_ganad_version())} on {_E(now)}. "
        "Self-contained: every figure is embedded in this file.</footer>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_report(
    path,
    *,
    title: str,
    scores,
    labels=None,
    classes=None,
    threshold: float | None = None,
    metrics: Mapping[str, Any] | Evaluation | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    examples: Sequence[Mapping[str, Any]] | None = None,
    tables: Mapping[str, Any] | None = None,
    notes: str | Sequence[str] | None = None,
    max_examples: int = 8,
    extra_html: str = "",
) -> Path:
    """Write a single self-contained HTML report to ``path`` and return it as a Path.

    - ``scores``: one anomaly score per sample (higher = more anomalous).
    - ``labels``: optional 0/1 ground truth; gives the metrics table (:func:`ganad.metrics.evaluate`)
      and ROC / PR curves.
    - ``classes``: optional class name per sample (e.g. AAMI N/S/V/F/Q) for the score
      distribution and a per-class table; falls back to ``labels``.
    - ``threshold``: τ; ``score > τ`` flags an anomaly (the convention of ``evaluate``).
    - ``metrics``: further metric name → value pairs (or an ``Evaluation``) shown as given.
    - ``history``: per-epoch training values, name → list.
    - ``examples``: dicts ``{"x", "reconstruction", "map", "score", "label", "title"}`` (optional
      ``"kind"``: "series" / "image" / "vector", see :func:`ganad.report.plots.sample_kind`); the
      ``max_examples`` highest-scoring are drawn.
    - ``tables``: name → list of row dicts, a pandas DataFrame, or a dict of name → value.
    - ``notes``: a string or list of strings shown under the summary (escaped, not HTML).
    - ``extra_html``: HTML (trusted, not escaped) added as the report's last section, such as
      a benchmark's figures: the report is written once, whole.

    Everything is rendered in memory first and then written atomically (temporary file in
    the same folder, then ``os.replace``): on any error the previous file at ``path``, if
    any, is left untouched and no partial file remains.
    """
    path = Path(path)
    if path.is_dir():  # else a raw IsADirectoryError from the final rename, after the whole render
        raise InputError(_fmt(f"path {path}", "is a folder, not a file", f"pass a file path such as {path / 'report.html'}"))
    doc = _render(title=title, scores=scores, labels=labels, classes=classes, threshold=threshold, metrics=metrics,
                  history=history, examples=examples, tables=tables, notes=notes, max_examples=max_examples)
    if extra_html:
        doc = doc.replace("</main>", extra_html + "</main>", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, doc.encode("utf-8"))
    return path
