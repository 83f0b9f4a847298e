"""The result tables as Markdown."""

from __future__ import annotations

from ganad.benchmark.peers import _PEER_PREFIX


def _f(v, nd=3):
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def markdown_tables(res: dict) -> str:
    """The result tables as Markdown."""
    lines = []
    p = res["protocol"]
    if p == "mitbih":
        cols = ["method", "auroc", "auprc", "auroc_N_vs_S", "auroc_N_vs_V", "auroc_N_vs_F", "f1", "mcc", "fpr_test", "fit_s", "score_s"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in res["results"]:
            if r["error"]:
                lines.append(f"| {r['method']} | " + " | ".join(["–"] * (len(cols) - 1)) + " |")
                continue
            lines.append("| " + " | ".join(_f(r.get(c), 1 if c.endswith("_s") else 3) for c in cols) + " |")
    else:
        unit = "dataset" if p == "adbench" else "digit"
        per = res["per_dataset" if p == "adbench" else "per_digit"]
        mean = res["summary"]["mean"]
        methods = list(mean)
        methods = [m for m in methods if not m.startswith(_PEER_PREFIX)] + [m for m in methods if m.startswith(_PEER_PREFIX)]
        lines += [f"AUROC ({'mean over seeds ' + str(res['config']['seeds']) if p == 'adbench' else 'seed ' + str(res['seed'])}):", "",
                  f"| {unit} | " + " | ".join(m.replace(_PEER_PREFIX, "PyOD ") for m in methods) + " |", "|" + "---|" * (len(methods) + 1)]
        for u, ms in per.items():
            best = max((v["auroc"] for v in ms.values() if v["auroc"] is not None), default=None)
            cells = []
            for m in methods:
                v = ms.get(m, {}).get("auroc")
                cells.append(("**" + _f(v) + "**") if v is not None and v == best else _f(v))
            lines.append(f"| {u} | " + " | ".join(cells) + " |")
        lines.append("| **mean** | " + " | ".join(_f(mean[m]["auroc"]) for m in methods) + " |")
        lines.append("| mean AUPRC | " + " | ".join(_f(mean[m]["auprc"]) for m in methods) + " |")
        per_what = "per seed, summed over datasets" if p == "adbench" else "summed over digits"
        lines.append(f"| fit s ({per_what}) | " + " | ".join(_f(mean[m]["fit_s"], 0) for m in methods) + " |")
        lines.append(f"| score s ({per_what}) | " + " | ".join(_f(mean[m]["score_s"], 0) for m in methods) + " |")
        lines.append("")
        lines.append("Bold: the best AUROC of the row. ganad methods first, then the PyOD peers.")
    errs = [r for r in res["results"] if r["error"]]
    if errs:
        lines += ["", "Failed / skipped runs:"] + sorted({f"- {r['method']}: {r['error']}" for r in errs})
    return "\n".join(lines) + "\n"
