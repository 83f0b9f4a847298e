"""Summaries of a run: per-unit means over seeds and the best ganad method and peer."""

from __future__ import annotations

import numpy as np

from ganad.benchmark.peers import _PEER_PREFIX


def _mean(v):
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def _per_unit(rows: list[dict], key: str) -> dict:
    """unit -> method -> mean AUROC / AUPRC over seeds and mean fit / score seconds."""
    out: dict = {}
    for r in rows:
        out.setdefault(str(r[key]), {}).setdefault(r["method"], []).append(r)
    return {u: {m: {"auroc": _mean([x["auroc"] for x in rs]), "auprc": _mean([x["auprc"] for x in rs]),
                    "fit_s": _mean([x["fit_s"] for x in rs]), "score_s": _mean([x["score_s"] for x in rs]),
                    "n_runs": len(rs), "n_failed": sum(x["auroc"] is None for x in rs)}
                for m, rs in ms.items()} for u, ms in out.items()}


def _best(table: dict, kind_is_peer: bool, key="auroc"):
    cands = [(m, v) for m, v in table.items() if m.startswith(_PEER_PREFIX) == kind_is_peer and v.get(key) is not None]
    return max(cands, key=lambda mv: mv[1][key]) if cands else (None, None)


def _summary(rows: list[dict]) -> dict:
    """Best ganad method and best peer by AUROC. MIT-BIH's patient-adaptive rows (they carry
    ``auroc_unadapted_same_beats``) are reported beside the pure inter-patient rows, never in their
    place: their AUROC is on fewer beats (after each record's warm-up), so they never stand as the best."""
    table = {r["method"]: r for r in rows if "auroc_unadapted_same_beats" not in r}
    g, gv = _best(table, False)
    p, pv = _best(table, True)
    return {"best_ganad": g, "best_ganad_auroc": gv and gv["auroc"], "best_peer": p, "best_peer_auroc": pv and pv["auroc"]}


def _summary_units(per_unit: dict) -> dict:
    methods = sorted({m for u in per_unit.values() for m in u})
    mean = {}
    for m in methods:
        vals = [per_unit[u][m]["auroc"] for u in per_unit if m in per_unit[u]]
        complete = len(vals) == len(per_unit) and all(v is not None for v in vals)
        mean[m] = {"auroc": _mean(vals) if complete else None,
                   "auprc": _mean([per_unit[u][m]["auprc"] for u in per_unit if m in per_unit[u]]) if complete else None,
                   "fit_s": sum(per_unit[u][m]["fit_s"] or 0 for u in per_unit if m in per_unit[u]),
                   "score_s": sum(per_unit[u][m]["score_s"] or 0 for u in per_unit if m in per_unit[u]),
                   "complete": complete}
    g, gv = _best(mean, False)
    p, pv = _best(mean, True)
    return {"mean": mean, "best_ganad": g, "best_ganad_mean_auroc": gv and gv["auroc"], "best_peer": p,
            "best_peer_mean_auroc": pv and pv["auroc"]}
