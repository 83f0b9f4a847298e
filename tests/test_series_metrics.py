import numpy as np
import pytest

from ganad.exceptions import InputError
from ganad.series.metrics import (_buffered, event_prf, label_ranges, pa_k_f1, range_pr_roc, ranges_to_labels,
                                  series_metrics, vus)


def test_ranges_round_trip():
    y = ranges_to_labels([(2, 4), (8, 8)], 10)
    assert y.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]
    assert label_ranges(y) == [(2, 4), (8, 8)]
    with pytest.raises(InputError, match="outside the 10 points"):
        ranges_to_labels([(5, 12)], 10)


def test_event_prf_without_point_adjustment():
    y = ranges_to_labels([(10, 19), (40, 49), (70, 79)], 100)
    p = np.zeros(100, int)
    p[15] = 1           # finds event 1 with one point
    p[55:58] = 1        # a false event
    p[60:62] = 1        # another false event
    m = event_prf(y, p)
    assert (m["event_recall"], m["event_precision"]) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert m["event_f1"] == pytest.approx(1 / 3)
    assert m["n_pred_events"] == 3 and m["n_true_events"] == 3


def test_pa_k_hand_computed():
    y = ranges_to_labels([(0, 9)], 20)
    p = np.zeros(20, int)
    p[0:3] = 1      # 30 % of the event detected
    p[15] = 1       # one false positive
    r = pa_k_f1(y, p, ks=[0, 20, 30, 50, 100])
    # K = 0, 20: event adjusted -> tp 10, fp 1, fn 0 -> F1 = 20/21; K >= 30: tp 3, fp 1, fn 7 -> 6/14
    np.testing.assert_allclose(r["f1"], [20 / 21, 20 / 21, 6 / 14, 6 / 14, 6 / 14])
    # PA's F1 is far above the point F1, which equals F1 at K = 100
    assert r["f1"][0] > 2 * r["f1"][-1]


def test_range_pr_hand_computed():
    # buffer 0: a perfect ranking gives range AP 1
    assert range_pr_roc([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], 0)[1] == pytest.approx(1.0)
    # thresholds 0.9 (tpr 0, prec 0), 0.8 (tpr .5, prec .5), 0.2 (tpr .5, prec 1/3), 0.1 (tpr 1, prec .5):
    # AP = .5 * (0 + .5) / 2 + .5 * (1/3 + .5) / 2 = 1/3
    assert range_pr_roc([0, 1, 1, 0], [0.9, 0.8, 0.1, 0.2], 0)[1] == pytest.approx(1 / 3)
    # the soft buffer: window 4 adds sqrt(1 - d/4) for d = 1, 2 before the range and from its end on
    np.testing.assert_allclose(_buffered(np.array([0, 0, 0, 1, 1, 0, 0, 0]), 4),
                               [0, np.sqrt(0.5), np.sqrt(0.75), 1, 1, np.sqrt(0.75), 0, 0])


def test_vus_rewards_scores_near_the_event_and_random_scores_stay_low():
    rng = np.random.RandomState(0)
    y = ranges_to_labels([(300, 330), (700, 720)], 1000)
    near = rng.rand(1000) * 0.1
    near[295:335] += 1   # slightly wider than the labelled range
    near[695:725] += 1
    rand = rng.rand(1000)
    v_near, v_rand = vus(y, near, 32)["vus_pr"], vus(y, rand, 32)["vus_pr"]
    assert v_near > 0.8 and v_rand < 0.2
    # a buffer makes the slightly-off detection score higher than without one
    assert v_near > range_pr_roc(y, near, 0)[1]


def test_series_metrics_report_pa_only_beside_pak():
    y = ranges_to_labels([(100, 199)], 1000)
    s = np.random.RandomState(1).rand(1000)
    m = series_metrics(y, s, y_pred=s > 0.9, max_buffer=8)
    assert "pa_f1" in m and "pak_auc_f1" in m and "event_f1" in m and "vus_pr" in m
    assert m["pa_f1"] > m["pak_auc_f1"] >= m["point_f1"]


def test_bridge_gaps_joins_runs_at_most_gap_apart():
    from ganad.series.metrics import bridge_gaps, event_prf
    p = np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(bridge_gaps(p, 0), p)
    np.testing.assert_array_equal(bridge_gaps(p, 2), [0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(bridge_gaps(p, 3), [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0])  # edges never filled
    np.testing.assert_array_equal(bridge_gaps(np.zeros(5), 3), np.zeros(5))
    with pytest.raises(InputError, match="gap"):
        bridge_gaps(p, -1)
    with pytest.raises(InputError, match="gap"):
        bridge_gaps(p, 3.0)  # a whole number, as SeriesDetector(event_gap=) takes
    # series_metrics reads the events (y_event) for event-wise figures, the labels for point figures
    y = np.array([0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    m = series_metrics(y, np.arange(12.0), y_pred=p, max_buffer=2, y_event=bridge_gaps(p, 2))
    assert m["event_precision"] == pytest.approx(0.5) and m["n_pred_events"] == 2
    assert event_prf(y, p)["n_pred_events"] == 3
    assert m["point_precision"] == pytest.approx(3 / 4)  # 3 of the 4 labelled points, not the bridged ones


def test_bad_y_event_and_gap_are_named_in_the_message():
    from ganad.series.metrics import bridge_gaps
    y = np.array([0, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0, 1, 0, 1, 0, 0, 0, 0])
    s = np.arange(8.0)
    with pytest.raises(InputError, match="^y_event: has 5 labels for 8"):
        series_metrics(y, s, y_pred=p, max_buffer=2, y_event=np.ones(5))
    with pytest.raises(InputError, match="^y_event: must hold only 0"):
        series_metrics(y, s, y_pred=p, max_buffer=2, y_event=np.array([0, 1, np.nan, 1, 0, 0, 0, 0]))
    with pytest.raises(InputError, match="gap"):
        bridge_gaps(p, None)


def test_empty_labels_are_refused_by_name_not_by_numpy():
    """An empty scores file (or empty arrays) raised numpy's 'zero-size array to reduction operation minimum'."""
    from ganad.metrics import auroc, evaluate
    for f in (lambda: auroc([], []), lambda: evaluate([], []), lambda: series_metrics([], [], max_buffer=2)):
        with pytest.raises(InputError, match="^y_true: is empty"):
            f()


def test_evaluate_ranges_ranks_inf_scores_first_as_evaluate_labels_does(tmp_path):
    """`ganad score --nonfinite max` writes inf for the most anomalous points: `ganad evaluate --labels` ranked
    them first, `ganad evaluate --ranges` refused the file ('scores: contains NaN or infinite values')."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from ganad.cli import app
    s = np.linspace(0, 1, 20)
    s[5] = np.inf
    pd.DataFrame({"index": np.arange(20), "score": s}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"start": [4], "end": [6]}).to_csv(tmp_path / "rg.csv", index=False)
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2",
                                 "-o", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    want = np.where(np.isinf(s), 2.0, s)  # above every finite score
    assert m["point_auroc"] == pytest.approx(series_metrics(ranges_to_labels([(4, 6)], 20), want, max_buffer=2)["point_auroc"])
    assert m["n_inf_scores"] == 1


def test_evaluate_ranges_matches_numeric_series_ids_with_fractional_times(tmp_path):
    """A ranges row of numbers (series 1, times 106.0-110.5) is read by iterrows as floats: series '1.0'
    matched no point of series '1' and the range was refused as covering none of the scored points."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from ganad.cli import app
    rng = np.random.default_rng(0)
    t = np.r_[np.arange(20), np.arange(20)] * 1.5 + 100
    pd.DataFrame({"series": [1] * 20 + [2] * 20, "index": np.arange(40), "time": t, "score": rng.random(40)}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"series": [1, 2], "start": [106.0, 109.0], "end": [110.5, 112.0]}).to_csv(tmp_path / "rg.csv", index=False)
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2",
                                 "-o", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_series"] == 2
    assert m["per_series"]["1"]["n_anomalous_points"] == 4 and m["per_series"]["2"]["n_anomalous_points"] == 3


def test_inf_window_scores_stay_the_top_point_scores():
    """on_nonfinite='max' scores a window inf (the most anomalous); the points it covered were taken for
    'no window covers them' and given the last point's score, so the rule was lost before any metric."""
    from ganad.series import SeriesDetector
    from ganad.series.detector import aggregate
    s, _ = aggregate(np.array([0.0, np.inf, 2.0, 3.0]), None, np.array([0, 2, 4, 6]), 4, 12)
    assert np.isinf(s[2:6]).all() and np.isfinite(np.r_[s[:2], s[6:]]).all()
    assert s[-1] == 3.0  # trailing points no window covers still copy the last covered one
    sd = SeriesDetector("ganomaly", window=4, stride=2)
    sd.window_, sd.stride_, sd.channel_baseline_ = 4, 2, [1.0]
    sd._score_windows = lambda w: (np.where(np.arange(len(w)) == 1, np.inf, np.arange(len(w), dtype=float)), np.ones((len(w), 1, 4)))
    pts, _ = sd._segment_points(np.zeros((12, 1)))
    assert np.isinf(pts[2:6]).all() and np.isfinite(np.r_[pts[:2], pts[6:]]).all()


def test_range_auc_from_sorted_scores_equals_the_per_threshold_definition():
    """range_pr_roc counts each threshold's predicted points from the scores in descending order (no
    thresholds x points matrix); it must give what thresholding the series 250 times gives, ties included."""
    def by_definition(y, s, buffer, n_thr=250):
        lab = _buffered(y, buffer)
        segs = label_ranges(lab > 0)
        p_new = (float(y.sum()) + lab.sum()) / 2
        thr = -np.sort(-s)[np.linspace(0, len(s) - 1, n_thr).astype(int)]
        tpr, fpr, prec = [0.0], [0.0], [1.0]
        for t in thr:
            pred = s >= t
            tp = float((pred * lab).sum())
            exist = np.mean([pred[a:b + 1].any() for a, b in segs])
            tpr.append(min(tp / p_new, 1.0) * exist)
            fpr.append((pred.sum() - tp) / (len(s) - p_new))
            prec.append(tp / pred.sum())
        tpr, fpr, prec = np.r_[tpr, 1.0], np.r_[fpr, 1.0], np.array(prec)
        roc = np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2)
        ap = np.sum((tpr[1:-1] - tpr[:-2]) * (prec[1:] + prec[:-1]) / 2)
        return roc, ap

    rng = np.random.RandomState(0)
    for k in range(40):
        n = rng.randint(30, 400)
        y = np.zeros(n, dtype=int)
        for _ in range(rng.randint(1, 4)):
            a = rng.randint(0, n - 1)
            y[a:a + rng.randint(1, 30)] = 1
        if y.min() == y.max():
            continue
        s = rng.randn(n) + 2 * rng.rand() * y
        if k % 3 == 0:
            s = np.round(s, 1)  # ties
        for b in (0, 5):
            np.testing.assert_allclose(range_pr_roc(y, s, b), by_definition(y, s, b), rtol=0, atol=1e-12)


def test_scores_passed_as_predictions_are_refused_not_cut_to_integers():
    """y_pred of 0.9 was cut to 0 (every F1 0.0, no warning): refused as evaluate refuses it; bool is fine."""
    y = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 0])
    p = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    for f in (lambda q: event_prf(y, q), lambda q: pa_k_f1(y, q, ks=[0]),
              lambda q: series_metrics(y, np.arange(10.0), y_pred=q, max_buffer=2)):
        with pytest.raises(InputError, match="y_pred: must hold only 0"):
            f(p * 0.9)
    assert event_prf(y, p.astype(bool)) == event_prf(y, p)
    assert event_prf(y, p)["event_recall"] == 0.5


def test_pa_k_checks_its_ks():
    """Descending K made the area's divisor 1e-12 (pak_auc -3.8e11); an empty list an IndexError."""
    y = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 0])
    p = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    assert 0.0 <= pa_k_f1(y, p, ks=[0, 50, 100])["pak_auc"] <= 1.0
    for ks in ([100, 50, 0], [], [-10, 0, 110], [0, 0, 50]):
        with pytest.raises(InputError, match="ks: is"):
            pa_k_f1(y, p, ks=ks)


def test_fractional_row_index_ranges_are_refused(tmp_path):
    """A row-index range 3.9-5 was cut to 3-5 (row 3 labelled, before the range), in the library and
    in `ganad evaluate --ranges` on a scores file without times."""
    import pandas as pd
    from typer.testing import CliRunner

    from ganad.cli import app
    with pytest.raises(InputError, match="fractional"):
        ranges_to_labels([(2.5, 4.9)], 10)
    assert ranges_to_labels([(2.0, 4.0)], 10).tolist() == ranges_to_labels([(2, 4)], 10).tolist()
    pd.DataFrame({"index": np.arange(20), "score": np.linspace(0, 1, 20)}).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "rg.csv").write_text("start,end\n3.9,5\n19,19\n")
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2",
                                 "-o", str(tmp_path / "e")])
    assert r.exit_code == 2 and "3.9 is not a whole row index" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "e").exists()


def test_buffered_labels_equal_the_reference_loop_over_ranges():
    """_buffered adds every range's soft labels for one distance at a time; TSB-UAD's
    extend_postive_range loops over the ranges (2.6M small numpy calls for 10,000 ranges and 65
    buffers). Same labels, overlapping buffers of near ranges and ranges at both ends included."""
    def reference(y, window):
        lab = y.astype(np.float64).copy()
        n = len(lab)
        if window <= 0:
            return lab
        for s, e in label_ranges(y):
            x1 = np.arange(e, min(e + window // 2, n))
            lab[x1] += np.sqrt(1 - (x1 - e) / window)
            x2 = np.arange(max(s - window // 2, 0), s)
            lab[x2] += np.sqrt(1 - (s - x2) / window)
        return np.minimum(lab, 1.0)

    rng = np.random.RandomState(1)
    for k in range(60):
        n = rng.randint(5, 300)
        y = (rng.rand(n) < rng.choice([0.02, 0.1, 0.4])).astype(int)
        if k % 4 == 0:
            y[0] = y[-1] = 1
        for w in (0, 1, 2, 3, 8, 17, 64):
            np.testing.assert_allclose(_buffered(y, w), reference(y, w), rtol=0, atol=1e-12)


def test_vus_sorts_once_and_equals_the_mean_of_its_range_aucs():
    rng = np.random.RandomState(2)
    y = np.zeros(500, dtype=int)
    y[[50, 51, 52, 200, 320, 321, 499]] = 1
    s = rng.randn(500) + 1.5 * y
    res = vus(y, s, max_buffer=20, step=3)
    per = np.array([range_pr_roc(y, s, b) for b in range(0, 21, 3)])
    assert res["vus_roc"] == pytest.approx(per[:, 0].mean(), abs=1e-15) and res["vus_pr"] == pytest.approx(per[:, 1].mean(), abs=1e-15)


def test_range_labels_by_binary_search_equal_a_mask_per_range(tmp_path):
    """`ganad evaluate --ranges` compared every range with every row (and cast the series column to
    text once per range): 30 s for 1,000 ranges over 1M points of two series. The ranges are now found
    by binary search in each series' sorted axis (a mask where the axis is not sorted): same labels."""
    import pandas as pd

    from ganad.exceptions import DataFileError
    from ganad.series.commands import _range_labels
    rng = np.random.RandomState(3)
    for case in ("index", "series", "time", "unsorted time", "clock"):
        n = 400
        df = pd.DataFrame({"index": np.r_[np.arange(n // 2), np.arange(n // 2)], "score": 0.0})
        if case != "index":
            df.insert(0, "series", np.repeat([7, 8], n // 2))
        if "time" in case:
            t = np.r_[np.cumsum(rng.rand(n // 2) + 0.1), np.cumsum(rng.rand(n // 2) + 0.1)]  # each series from ~0
            df["time"] = np.r_[rng.permutation(t[:n // 2]), t[n // 2:]] if case.startswith("unsorted") else t
        if case == "clock":  # times as the scores file writes them
            df["time"] = (pd.Timestamp("2026-01-01") + pd.to_timedelta(np.r_[np.arange(n // 2), np.arange(n // 2)], unit="min")).astype(str)
        k = 25
        sid = rng.choice([7, 8], k)
        if "time" in case:
            a = rng.uniform(2, df["time"].max() / 2 - 10, k)
            rg = pd.DataFrame({"series": sid, "start": a, "end": a + rng.uniform(2, 10, k)})  # wider than a step
        elif case == "clock":
            a = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.randint(0, n // 2 - 10, k), unit="min")
            rg = pd.DataFrame({"series": sid, "start": a.astype(str), "end": (a + pd.Timedelta(minutes=7)).astype(str)})
        else:
            a = rng.randint(0, n // 2 - 10, k)
            rg = pd.DataFrame({"start": a, "end": a + rng.randint(0, 9, k)})
            if case == "series":
                rg.insert(0, "series", sid)
        rg.to_csv(tmp_path / "r.csv", index=False)
        y = _range_labels(df, tmp_path / "r.csv")
        axis = (pd.to_datetime(df["time"]).to_numpy() if case == "clock" else df["time"].to_numpy() if "time" in case
                else df["index"].to_numpy())
        ref = np.zeros(n, dtype=np.int64)
        for _, r in rg.iterrows():
            s, e = (pd.Timestamp(r["start"]).to_datetime64(), pd.Timestamp(r["end"]).to_datetime64()) if case == "clock" else (r["start"], r["end"])
            sel = (axis >= s) & (axis <= e)
            if "series" in rg.columns:
                sel &= df["series"].to_numpy() == r["series"]
            ref[sel] = 1
        assert y.sum() > 0 and np.array_equal(y, ref), case
    df = pd.DataFrame({"series": np.repeat([7, 8], 50), "index": np.r_[np.arange(50), np.arange(50)], "score": 0.0})
    rg = pd.DataFrame({"series": [7, 8], "start": [3, 60], "end": [5, 70]})  # the second covers none
    rg.to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(DataFileError, match="row 1.*covers none"):
        _range_labels(df, tmp_path / "r.csv")


def test_label_ranges_and_event_prf_split_runs_at_breaks():
    """Runs of predicted points are split where a new part of the series starts (a gap in time):
    the detector's events never span one, so event metrics must not join them."""
    y = np.array([0, 1, 1, 1, 1, 0, 1, 1])
    assert label_ranges(y) == [(1, 4), (6, 7)]
    assert label_ranges(y, [3]) == [(1, 2), (3, 4), (6, 7)]
    assert label_ranges(y, [0, 5, 7, 8, 3, 3]) == [(1, 2), (3, 4), (6, 6), (7, 7)]  # breaks outside runs or out of range: no split
    truth = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    joined, split = event_prf(truth, y), event_prf(truth, y, breaks=[3])
    assert (joined["n_pred_events"], joined["event_precision"]) == (2, 0.5)
    assert (split["n_pred_events"], split["event_precision"]) == (3, pytest.approx(1 / 3))


def test_true_breaks_keep_touching_labelled_ranges_apart():
    """Two labelled ranges that touch are two events (their 0 / 1 labels alone are one run): finding the
    first is half the recall, and PA%K adjusts only the range that was hit."""
    y = np.zeros(40, int)
    y[10:30] = 1
    p = np.zeros(40, int)
    p[12] = 1
    assert event_prf(y, p)["event_recall"] == 1.0  # one run
    m = event_prf(y, p, true_breaks=[20])
    assert m["n_true_events"] == 2 and m["event_recall"] == 0.5
    assert pa_k_f1(y, p, ks=[0])["f1"][0] == 1.0  # the one run adjusted whole
    assert pa_k_f1(y, p, ks=[0], true_breaks=[20])["f1"][0] == pytest.approx(2 * 10 / (2 * 10 + 10))
