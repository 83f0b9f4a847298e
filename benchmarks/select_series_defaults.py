"""Choose the series defaults on NAB *validation* groups only (issue 12).

The issue's target groups (realKnownCause, realAWSCloudwatch, realTweets, artificialWithAnomaly)
are the test set; the other two labelled NAB groups, realAdExchange and realTraffic (13 series),
are used here to compare variants of the default series method. Nothing in this script reads
the target groups.

    OMP_NUM_THREADS=1 python benchmarks/select_series_defaults.py --data $GANAD_SHARED_DATA -o bench-series-select/

Each variant is a dict of detector parameters given to ``SeriesDetector``'s wrapped detector on
top of the benchmark's ``epochs`` (and optionally a dict of ``SeriesDetector`` parameters); the table gives the mean over the 13 validation series of
every metric of ``ganad benchmark nab``.

Thirty-fifth session (rule written before the run): ``ganad fit`` trains AnoGAN by default since the
thirty-fourth session (chosen on held-out DS1 records, the MNIST training split and synthetic tables),
while series mode (``--window``) kept GANomaly, never compared with AnoGAN on these groups. AnoGAN with
the series knn settings (``"anogan default"``) replaces GANomaly as the series default method if its
mean of VUS-PR and event F1 over seeds 0-4 at 30 epochs is higher by at least 0.005 than GANomaly's
(the twentieth session's rule); otherwise series mode keeps GANomaly.

Thirty-fifth session, second rule (written before its run): GANomaly's ``feature_layer`` default became 'auto'
(D's second-to-last block; chosen on held-out DS1 records, the MNIST training split and synthetic tables), which
changes what its feature matching trains on in series mode too. The series default keeps the incumbent last
block (``SeriesDetector`` passes ``feature_layer=-1``) unless ``"ganomaly feature_layer=auto"`` has a mean of
VUS-PR and event F1 over seeds 0-4 at 30 epochs at least 0.005 higher than ``"ganomaly feature_layer=-1"``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

VALIDATION_GROUPS = ("realAdExchange", "realTraffic")

VARIANTS = {
    "fanogan default": ("fanogan", {}),
    "fanogan knn_weight=0.5": ("fanogan", {"knn_weight": 0.5}),
    "fanogan knn_weight=1.0": ("fanogan", {"knn_weight": 1.0}),
    "fanogan epochs=20": ("fanogan", {"epochs": 20}),
    "ganomaly default": ("ganomaly", {}),
    "ganomaly knn_weight=1.0": ("ganomaly", {"knn_weight": 1.0}),
    # issue 15, fourth session: where the knn component measures distances
    "ganomaly knn_space=code": ("ganomaly", {"knn_space": "code"}),
    "ganomaly knn_space=feature": ("ganomaly", {"knn_space": "feature"}),
    "ganomaly knn_space=both": ("ganomaly", {"knn_space": "both"}),
    # issue 15, fifth/sixth sessions: the Mahalanobis distance (knn_metric) for series too
    "ganomaly knn_space=feature knn_metric=mahalanobis": ("ganomaly", {"knn_space": "feature", "knn_metric": "mahalanobis"}),
    "ganomaly knn_space=code knn_metric=mahalanobis": ("ganomaly", {"knn_space": "code", "knn_metric": "mahalanobis"}),
    "fanogan knn_space=code": ("fanogan", {"knn_space": "code"}),
    "fanogan knn_space=feature knn_metric=mahalanobis": ("fanogan", {"knn_space": "feature", "knn_metric": "mahalanobis"}),
    # issue 12, eleventh session: the knn component on the scaled windows themselves (what PyOD's KNN
    # measures), beside the method's own score
    "ganomaly knn_space=input": ("ganomaly", {"knn_space": "input"}),
    "ganomaly knn_space=input knn_metric=mahalanobis": ("ganomaly", {"knn_space": "input", "knn_metric": "mahalanobis"}),
    "ganomaly knn_space=input knn_weight=1.0": ("ganomaly", {"knn_space": "input", "knn_weight": 1.0}),
    "fanogan knn_space=input": ("fanogan", {"knn_space": "input"}),
    # issue 12, twelfth session: ensembles of the series default (issue 15's n_members)
    "ganomaly n_members=3": ("ganomaly", {"n_members": 3}),
    "ganomaly n_members=5": ("ganomaly", {"n_members": 5}),
    "ganomaly knn_weight=0.5": ("ganomaly", {"knn_weight": 0.5}),
    "ganomaly n_neighbors=1": ("ganomaly", {"n_neighbors": 1}),
    "ganomaly n_neighbors=10": ("ganomaly", {"n_neighbors": 10}),
    # issue 15, twentieth session: the other methods' default score since the nineteenth session
    # (the features' Mahalanobis distance and the windows' kNN distance together) for series
    "ganomaly knn_space=feature+input": ("ganomaly", {"knn_space": "feature+input"}),
    "ganomaly knn_space=feature+input knn_weight=0.75": ("ganomaly", {"knn_space": "feature+input", "knn_weight": 0.75}),
    "fanogan knn_space=feature+input": ("fanogan", {"knn_space": "feature+input"}),
    # issue 12, twenty-sixth session: the per-feature scaler's clipping of values beyond the
    # training range (set from principle for tables, never put to series data)
    "ganomaly clip=None": ("ganomaly", {"scaler": {"kind": "per-feature", "clip": None}}),
    "ganomaly clip=3": ("ganomaly", {"scaler": {"kind": "per-feature", "clip": 3.0}}),
    "ganomaly knn_weight=1.0 clip=None": ("ganomaly", {"knn_weight": 1.0, "scaler": {"kind": "per-feature", "clip": None}}),
    "ganomaly clip=1e6": ("ganomaly", {"scaler": {"kind": "per-feature", "clip": 1e6}}),
    # issue 15, thirty-fifth session: the default method of `ganad fit` (AnoGAN) for series too
    "anogan default": ("anogan", {}),
    # issue 15, thirty-fifth session: GANomaly's features from D's second-to-last block ('auto') or its last
    "ganomaly feature_layer=auto": ("ganomaly", {"feature_layer": "auto"}),
    "ganomaly feature_layer=-1": ("ganomaly", {"feature_layer": -1}),
}


def _covering_max(covering_mean):
    """``covering_mean`` with the maximum over the covering windows for the scores (the maps keep the
    mean): the twenty-fifth session's point-aggregation experiment."""
    import numpy as np

    def covering_max(starts, scores, maps, window, a, b):
        pts = np.arange(a, b)
        best = np.full(len(pts), -np.inf)
        cnt = np.zeros(len(pts), dtype=np.int64)
        if starts.size and len(pts):
            last = np.searchsorted(starts, pts, side="right") - 1
            first = np.searchsorted(starts, pts - window, side="right")
            for j in range(int(np.max(last - first + 1, initial=0))):
                k = last - j
                ok = k >= first
                best = np.where(ok, np.maximum(best, scores[np.clip(k, 0, starts.size - 1)]), best)
                cnt += ok
        best[cnt == 0] = np.nan
        return best, covering_mean(starts, scores, maps, window, a, b)[1]

    return covering_max


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="*", default=None, help="subset of the variant names")
    ap.add_argument("--point-reduce", choices=("mean", "max"), default="mean",
                    help="how a point's score is formed from the windows covering it: the library's mean, or "
                         "(an experiment, not a library option) their maximum, in training and test alike")
    args = ap.parse_args(argv)

    import numpy as np

    import ganad.series.benchmark as sb
    import ganad.series.detector as series_detector
    from ganad.series import SeriesDetector

    if args.point_reduce == "max":
        series_detector.covering_mean = _covering_max(series_detector.covering_mean)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, (method, extra, *series_kw) in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        per_seed = []
        for seed in args.seeds:
            def make(m, extra=extra, skw=(series_kw or [{}])[0], **kw):
                dp = {**kw.pop("detector_params", {}), **extra}
                return SeriesDetector(m, detector_params=dp, **{**kw, **skw})
            import ganad.series  # run_nab imports SeriesDetector from ganad.series at call time
            orig = ganad.series.SeriesDetector
            ganad.series.SeriesDetector = make
            try:
                t0 = time.perf_counter()
                res = sb.run_nab(args.data, groups=VALIDATION_GROUPS, methods=(method,), peers=(), window=args.window,
                                 stride=args.stride, epochs=args.epochs, seed=seed)
            finally:
                ganad.series.SeriesDetector = orig
            row = res["summary"][method]
            per_seed.append({k: v for k, v in row.items() if isinstance(v, float)})
            print(f"{name} seed {seed}: vus_pr {row['vus_pr']:.3f} event_f1 {row['event_f1']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        keys = per_seed[0].keys()
        results[name] = {k: (float(np.mean([p[k] for p in per_seed])), float(np.std([p[k] for p in per_seed]))) for k in keys}
    lines = ["| variant | vus_pr | event_f1 | point_auroc |", "|---|---|---|---|"]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["vus_pr"][0]):
        lines.append(f"| {name} | " + " | ".join(f"{r[k][0]:.3f} ± {r[k][1]:.3f}" for k in ("vus_pr", "event_f1", "point_auroc")) + " |")
    table = "\n".join(lines)
    print(table)
    (out / "results.md").write_text(f"validation groups {VALIDATION_GROUPS}, seeds {args.seeds}, epochs {args.epochs}, "
                                    f"stride {args.stride}, window {args.window}\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
