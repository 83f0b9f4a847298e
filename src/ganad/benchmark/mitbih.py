"""The inter-patient MIT-BIH protocol (de Chazal et al. 2004): see :func:`run_mitbih`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ganad.benchmark.environment import resolve_data_dir
from ganad.benchmark.runner import _base, _flat, _methods_plan, _metrics, _record, _secs, _subsample, _variant_metrics, run_one, run_two_views
from ganad.benchmark.summary import _summary
from ganad.exceptions import InputError, _fmt
from ganad.params import is_int

MITBIH_CALIBRATIONS = ("fpr", "mcc", "f1")


def mitbih_split(records: Sequence[str], seed: int, cal_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """DS1 records -> (training records, calibration records), the calibration ones chosen by ``seed``."""
    rng = np.random.RandomState(seed)
    recs = sorted(records)
    n_cal = max(1, int(round(cal_fraction * len(recs))))
    cal = sorted(rng.choice(recs, n_cal, replace=False).tolist())
    return [r for r in recs if r not in cal], cal


#: what the methods see of a beat (run_mitbih's beat_input)
BEAT_INPUTS = ("beat", "change", "both")


def _beat_input(b, how: str):
    """Beats ``b`` with ``X`` replaced by the template difference ('change') or both as channels ('both')."""
    import dataclasses

    from ganad.data import template_difference
    d = template_difference(b.X, b.record, b.sample, k=8)
    return dataclasses.replace(b, X=d if how == "change" else np.concatenate([b.X, d], axis=1))


def threshold_transfer(flag: np.ndarray, y: np.ndarray, record: np.ndarray, fpr: float, keep: np.ndarray | None = None,
                       min_normal: int = 100) -> dict:
    """How a threshold's labels ``flag`` hold on the test patients (on the beats ``keep``): ``fpr_test`` (pooled
    over the normal beats), ``recall`` (of the anomalous beats), ``records_over_2x_fpr`` (of the records with at
    least ``min_normal`` normal beats, how many have a false-positive rate above twice the target ``fpr``; out of
    ``records_fpr_counted``) and ``worst_record_fpr``."""
    keep = np.ones(len(flag), bool) if keep is None else keep
    n, a = keep & (y == 0), keep & (y == 1)
    per = [float(flag[n & (record == r)].mean()) for r in np.unique(record[keep]) if (n & (record == r)).sum() >= min_normal]
    return {"fpr_test": float(flag[n].mean()) if n.any() else None, "recall": float(flag[a].mean()) if a.any() else None,
            "records_over_2x_fpr": int(sum(v > 2 * fpr for v in per)), "records_fpr_counted": len(per),
            "worst_record_fpr": max(per) if per else None}


def run_mitbih(data, *, methods=None, peers=None, seed: int = 0, max_train: int | None = 10000,
               max_test: int | None = 20000, max_cal: int | None = 5000, epochs: int | None = 30, peer_epochs: int = 20,
               calibration: str = "fpr", fpr: float = 0.05, cal_fraction: float = 0.2, compose: str = "method", ds1=None, ds2=None,
               rhythm: bool = False, adaptive: int | None = None, log: Callable = print, keep_scores: bool = True,
               peer_rhythm: str = "append", beat_input: str = "beat") -> dict:
    """Inter-patient MIT-BIH one-class benchmark (see the module docstring).

    ``rhythm``: add the rhythm view, the four heart-rate-free RR-interval features of
    :func:`ganad.data.mitbih.rhythm_features` (three log-ratios and the local RR spread). Each ganad method then trains a second detector
    of its own kind on the rhythm features of the training beats, and the two scores
    (morphology, rhythm) are combined label-free: each read as its surprise among the
    held-out normal DS1 beats (:class:`ganad.MultiViewDetector`'s default), then summed. Peers get the rhythm features appended to the beat
    (``peer_rhythm='append'``), or run as two views exactly like ganad's methods (``'views'``: one
    peer per view on standardised inputs, scores read as surprises among the held-out normal beats and
    summed), or both (``'both'``: two rows per peer).

    ``beat_input``: what every method (ganad's and the peers) sees of a beat: 'beat' the 256 samples
    (the protocol's default), 'change' the beat minus the median of its record's 8 previous beats
    (:func:`ganad.data.template_difference`: causal, label-free, computed on whole records before any
    subsample), 'both' the two as channels (2, 256). The template reads the patient's own recent beats,
    as the rhythm view reads the patient's own recent RR intervals.

    ``compose``: 'method' keeps each ganad method's default score; 'default' re-composes its score
    components on the calibration set (robust standardisation on its normal beats, equal weights; no labels).
    ``ds1`` / ``ds2`` override the record lists (for tiny tests); they must stay inside DS1 / DS2.
    ``adaptive=N`` adds, for every method, a separate *patient-adaptive* row: each DS2 record's scores
    standardised by the median / MAD of its own first N beats (label-free, causal; see
    :mod:`ganad.scoring.adaptive`), evaluated on the beats after each record's warm-up, beside the
    unadapted AUROC on those same beats. With ``calibration='fpr'`` the row also gives the figures of a
    patient-adaptive *threshold* (:func:`ganad.scoring.adaptive.prefix_threshold` on the scores as they are:
    each record's own (1 − fpr) quantile of its warm-up, never below the population threshold):
    ``fpr_test``, ``recall``, ``records_over_2x_fpr`` (records whose own false-positive rate is above twice
    the target), beside the population threshold's on the same beats (``*_unadapted_same_beats``). The pure
    inter-patient rows are unchanged; they report ``records_over_2x_fpr`` too.
    """
    if beat_input not in BEAT_INPUTS:
        raise InputError(_fmt("beat_input", f"is {beat_input!r}", f"use one of {', '.join(map(repr, BEAT_INPUTS))}"))
    if peer_rhythm not in ("append", "views", "both"):
        raise InputError(_fmt("peer_rhythm", f"is {peer_rhythm!r}", "use 'append', 'views' or 'both'"))
    if compose not in ("method", "default"):
        raise InputError(_fmt("compose", f"is {compose!r}", "use 'method' (each method's own score) or 'default' (robust-standardised components)"))
    from ganad.data import mitbih as mb
    if calibration not in MITBIH_CALIBRATIONS:
        raise InputError(_fmt("calibration", f"is {calibration!r}", f"use one of {', '.join(MITBIH_CALIBRATIONS)}"))
    ds1 = list(mb.DS1 if ds1 is None else ds1)
    ds2 = list(mb.DS2 if ds2 is None else ds2)
    if not set(ds1) <= set(mb.DS1) or not set(ds2) <= set(mb.DS2):
        raise InputError(_fmt("ds1/ds2", "name records outside the de Chazal DS1 / DS2 halves", "pick DS1 records for ds1 and DS2 records for ds2"))
    if calibration == "fpr":
        from ganad.scoring.threshold import fpr_threshold
        fpr_threshold(np.zeros(1), fpr)  # refuses an fpr outside [0, 1) before the records are read
    if adaptive not in (None, 0) and (not is_int(adaptive) or adaptive < 2):
        raise InputError(_fmt("--adaptive", f"is {adaptive!r}", "pass a warm-up of at least 2 beats per record, e.g. 300"))
    directory = resolve_data_dir(data, "mitdb")
    plan, notes = _methods_plan(methods, peers, log, epochs, peer_epochs)
    rng = np.random.RandomState(seed)
    train_recs, cal_recs = mitbih_split(ds1, seed, cal_fraction)
    b1 = mb.load_mitbih(directory, ds1, rr_features=rhythm)
    b2 = mb.load_mitbih(directory, ds2, rr_features=rhythm)
    if beat_input != "beat":  # on whole records, before any subsample: each beat's template is its record's 8 previous beats
        b1, b2 = _beat_input(b1, beat_input), _beat_input(b2, beat_input)
    in_train = np.isin(b1.record, train_recs) & (b1.aami == "N")
    tr = b1.subset(np.flatnonzero(in_train)[_subsample(int(in_train.sum()), max_train, rng)])
    in_cal = np.isin(b1.record, cal_recs)
    if calibration == "fpr":
        in_cal &= b1.aami == "N"
    cal_idx = np.flatnonzero(in_cal)
    cal = b1.subset(cal_idx[_subsample(len(cal_idx), max_cal, rng, b1.aami[cal_idx])])
    te = b2.subset(_subsample(len(b2), max_test, rng, b2.aami))
    if adaptive and len(te) < len(b2):
        # a record's first N beats must be its first N, not the first N of a class-stratified draw (which
        # spanned 2.4x the time at the default --max-test, chosen with label-stratified quotas)
        raise InputError(_fmt("--adaptive", f"standardises each record by its own first {int(adaptive)} beats, but the test set is a "
                                            f"subsample of {len(te)} of DS2's {len(b2)} beats (--max-test {max_test})",
                              "pass --max-test 0 (every DS2 beat) with --adaptive"))
    y_cal = None if calibration == "fpr" else cal.y
    y = te.y
    res = _base("mitbih", seed, [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs, peer_epochs,
                max_train=max_train, max_test=max_test, max_cal=max_cal, calibration=calibration, compose=compose,
                fpr=fpr if calibration == "fpr" else None, cal_fraction=cal_fraction, window=256, before=96, lead="MLII",
                rhythm=rhythm, beat_input=beat_input)
    res["split"] = {"train_records": sorted(set(tr.record.tolist())), "cal_records": cal_recs,
                    "test_records": sorted(set(te.record.tolist())), "n_train": len(tr), "n_cal": len(cal),
                    "n_test": len(te), "train_counts": tr.counts(), "cal_counts": cal.counts(), "test_counts": te.counts(),
                    "test_counts_full_ds2": b2.counts(), "cal_labels_used": y_cal is not None}
    res["notes"] = notes + [
        f"train: {len(tr)} N beats of DS1 records {', '.join(res['split']['train_records'])}"
        + (f" (random subsample of {int(in_train.sum())})" if len(tr) < in_train.sum() else ""),
        ("calibration (threshold only, score = each method's default composition)" if compose == "method" else
         "calibration (ganad: components robust-standardised on the held-out normal beats and summed, then threshold)")
        + f": DS1 records {', '.join(cal_recs)} held out by patient; "
        + (f"tau = the (1 - {fpr}) quantile of the scores of {len(cal)} held-out N beats (no labels used)" if calibration == "fpr"
           else f"tau = best {calibration.upper()} on {len(cal)} held-out beats of every class (their labels)"),
        f"test: {len(te)} DS2 beats" + (f" (class-stratified random subsample of {len(b2)})" if len(te) < len(b2) else " (all)")
        + "; anomaly = S, V, F or Q",
    ] + (["rhythm view: RR features (log prev/local, log next/local, log prev/next, local spread/local); ganad methods: a second detector of the same "
          "method on them, scores combined as surprises among the held-out normal DS1 beats (no labels); "
          + {"append": "peers: the 4 features appended to the 256-sample beat",
             "views": "peers: two views like ganad's (one peer per view on standardised inputs, surprises summed)",
             "both": "peers: the 4 features appended to the beat, and (rows '+rhythm (two views)') two views like ganad's"}[peer_rhythm]]
         if rhythm else []) + ([{"change": "beat input: each beat minus the median of its record's 8 previous beats (causal, label-free), "
                                          "for every method",
                                "both": "beat input: the beat and the beat minus the median of its record's 8 previous beats "
                                        "(causal, label-free) as two channels, for every method"}[beat_input]] if beat_input != "beat" else [])
    log(f"mitbih: train {len(tr)}, cal {len(cal)}, test {len(te)} ({te.counts()})")
    rows, scores = [], {}
    jobs = []
    for kind, name in plan:
        if rhythm and kind == "peer" and peer_rhythm != "append":
            jobs += ([(kind, name, "append")] if peer_rhythm == "both" else []) + [(kind, name, "views")]
        else:
            jobs.append((kind, name, "views" if rhythm and kind == "ganad" else "append"))
    for kind, name, how in jobs:
        log(f"  {kind} {name} ...")
        if rhythm and how == "views":
            r = run_two_views(name, (tr.X, mb.rhythm_features(tr.rr)), (te.X, mb.rhythm_features(te.rr)),
                              (cal.X, mb.rhythm_features(cal.rr)), cal.aami == "N", seed=seed, epochs=epochs, y_cal=y_cal,
                              threshold=calibration, fpr=fpr, log=log, kind=kind, peer_epochs=peer_epochs)
        elif rhythm:
            def with_rr(b):
                return np.c_[_flat(b.X), mb.rhythm_features(b.rr)]
            r = run_one(kind, name, with_rr(tr), with_rr(te), seed=seed, epochs=epochs, peer_epochs=peer_epochs,
                        X_cal=with_rr(cal), y_cal=y_cal, threshold=calibration, fpr=fpr, compose=compose, log=log)
        else:
            r = run_one(kind, name, tr.X, te.X, seed=seed, epochs=epochs, peer_epochs=peer_epochs, X_cal=cal.X, y_cal=y_cal,
                        threshold=calibration, fpr=fpr, compose=compose, log=log)
        rec = _record(r)
        s = r["scores"]
        rec.update(_metrics(y, s))
        rec.update(_variant_metrics(y, r))
        for c in ("S", "V", "F"):
            m = np.isin(te.aami, ["N", c])
            sub = _metrics((te.aami[m] == c).astype(np.int64), None if s is None else s[m])
            rec[f"auroc_N_vs_{c}"], rec[f"auprc_N_vs_{c}"] = sub["auroc"], sub["auprc"]
        if s is not None and r["threshold"] is not None:
            from ganad.metrics import evaluate
            ev = evaluate(y, s, threshold=r["threshold"])
            rec.update(f1=ev.f1, mcc=ev.mcc, precision=ev.precision, recall=ev.recall,
                       fpr_test=float(np.mean(s[y == 0] > r["threshold"])))
            if calibration == "fpr":
                tt = threshold_transfer(s > r["threshold"], y, te.record, fpr)
                rec.update(records_over_2x_fpr=tt["records_over_2x_fpr"], records_fpr_counted=tt["records_fpr_counted"],
                           worst_record_fpr=tt["worst_record_fpr"])
        rows.append(rec)
        if s is not None and adaptive:
            from ganad.scoring.adaptive import prefix_standardise
            sa, warm = prefix_standardise(s, te.record, te.sample, int(adaptive))
            keep = ~warm
            ad = {"method": f"{rec['method']} (patient-adaptive, first {int(adaptive)} beats)", "kind": rec["kind"],
                  "fit_s": rec["fit_s"], "score_s": rec["score_s"], "error": None, "threshold": None,
                  **_metrics(y[keep], sa[keep]), "auroc_unadapted_same_beats": _metrics(y[keep], s[keep])["auroc"],
                  "n_evaluated": int(keep.sum())}
            for c in ("S", "V", "F"):
                m = np.isin(te.aami, ["N", c]) & keep
                sub = _metrics((te.aami[m] == c).astype(np.int64), sa[m])
                ad[f"auroc_N_vs_{c}"], ad[f"auprc_N_vs_{c}"] = sub["auroc"], sub["auprc"]
            if calibration == "fpr" and r["threshold"] is not None:
                # the threshold adapted too (prefix_threshold, on the scores as they are): each record's own
                # (1 - fpr) quantile of its warm-up, never below the population threshold; beside the population
                # threshold's figures on the same beats
                from ganad.scoring.adaptive import prefix_threshold
                tau_r, _ = prefix_threshold(s, te.record, te.sample, int(adaptive), fpr=fpr, threshold=r["threshold"])
                own = threshold_transfer(s > tau_r, y, te.record, fpr, keep)
                pop = threshold_transfer(s > r["threshold"], y, te.record, fpr, keep)
                ad.update(own)
                ad.update({f"{k}_unadapted_same_beats": v for k, v in pop.items()})
            rows.append(ad)
            log(f"    {ad['method']}: auroc={ad.get('auroc')} (unadapted on the same beats {ad['auroc_unadapted_same_beats']})")
        if s is not None and keep_scores:
            scores[rec["method"]] = s
        log(f"    {rec['method']}: auroc={rec.get('auroc')} fit={_secs(rec.get('fit_s'))} score={_secs(rec.get('score_s'))} {rec['error'] or ''}")
    res["results"] = rows
    res["summary"] = _summary(rows)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if keep_scores:
        res["_scores"] = scores
        res["_y"] = y
        res["_classes"] = te.aami
    return res
