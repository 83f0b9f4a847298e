import numpy as np
import pandas as pd
import pytest

import ganad
from ganad.exceptions import InputError
from ganad.series import SeriesDetector


def _series(T=2400, seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(T)
    return np.c_[np.sin(t / 20), np.cos(t / 33), 0.5 * np.sin(t / 7)] + 0.05 * rng.randn(T, 3)


@pytest.fixture(scope="module")
def fitted():
    X = _series()
    sd = SeriesDetector("fanogan", window=32, stride=8, detector_params={"epochs": 3, "random_state": 0})
    return sd.fit(X, channel_names=["a", "b", "c"])


@pytest.fixture(scope="module")
def anomalous_series():
    X = _series(1003, seed=1)
    X[500:520, 1] += 3.0  # an anomaly in channel b only
    return X


def test_points_events_and_driving_channel(fitted, anomalous_series):
    r = fitted.score_series(anomalous_series)
    assert r.scores.shape == (len(anomalous_series),) and np.isfinite(r.scores).all()
    assert r.contributions.shape == (len(anomalous_series), 3)
    # the anomaly is inside an event whose leading channel is b
    ev = r.events
    hit = ev[(ev.start <= 519) & (ev.end >= 500)]
    assert len(hit) == 1, ev
    assert hit.iloc[0].channels.startswith("b=")
    assert hit.iloc[0].share_b > max(hit.iloc[0].share_a, hit.iloc[0].share_c)
    assert r.scores[500:520].mean() > np.quantile(r.scores, 0.9)
    # events are exactly the runs of labels, gaps of at most event_gap (default: the window) bridged
    from ganad.series.metrics import bridge_gaps
    assert fitted.event_gap_ == fitted.window_ == 32
    lab = np.zeros(len(anomalous_series), dtype=int)
    for s, e in zip(ev.start, ev.end):
        lab[s:e + 1] = 1
    np.testing.assert_array_equal(lab, bridge_gaps(r.labels, 32))
    np.testing.assert_array_equal(r.in_event, lab)
    # a point's score is the mean of the window scores that cover it
    W, starts = ganad.data.windows.make_windows(anomalous_series, 32, 8)
    ws = fitted.detector_.decision_function(W.astype(np.float32))
    cover = (starts <= 100) & (starts + 32 > 100)
    np.testing.assert_allclose(r.scores[100], ws[cover].mean(), rtol=1e-5)


def test_events_table_has_its_time_columns_without_events(fitted):
    """With a time axis the events table names start_time / end_time / peak_time even when no event
    is found (they were left out then, so the events file's columns depended on what was found)."""
    X = _series(600, seed=3)
    fitted_hi = fitted.threshold_
    try:
        fitted.threshold_ = np.inf
        r = fitted.score_series(X, time=np.arange(600) * 60.0)
    finally:
        fitted.threshold_ = fitted_hi
    assert len(r.events) == 0
    assert list(r.events.columns[:10]) == ["series", "start", "end", "length", "peak", "peak_score", "channels",
                                           "start_time", "end_time", "peak_time"]
    assert "start_time" not in fitted.score_series(X).events.columns  # no time axis: no time columns


def test_training_threshold_is_the_contamination_quantile(fitted):
    assert np.mean(fitted.decision_scores_ > fitted.threshold_) == pytest.approx(fitted.contamination, abs=0.005)


def test_save_load_roundtrip_without_pickle(fitted, anomalous_series, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "series.json").is_file() and (tmp_path / "m" / "detector" / "model.safetensors").is_file()
    assert not list((tmp_path / "m").rglob("*.pkl"))
    sd = ganad.load(tmp_path / "m")
    assert isinstance(sd, SeriesDetector) and sd.channels_ == ["a", "b", "c"]
    a, b = fitted.score_series(anomalous_series), sd.score_series(anomalous_series)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)
    pd.testing.assert_frame_equal(a.events, b.events)


def test_several_series_never_share_a_window(fitted, anomalous_series):
    two = fitted.score_series([anomalous_series, anomalous_series[:400]])
    one = fitted.score_series(anomalous_series)
    np.testing.assert_allclose(two.scores[:len(anomalous_series)], one.scores, rtol=1e-5, atol=1e-5)
    sid = np.r_[np.zeros(len(anomalous_series)), np.ones(400)]
    by_id = fitted.score_series(np.r_[anomalous_series, anomalous_series[:400]], series_id=sid)
    np.testing.assert_allclose(by_id.scores, two.scores, rtol=1e-5, atol=1e-5)
    # interleaved ids: rows of one id keep their order
    order = np.argsort(np.r_[np.arange(len(anomalous_series)) * 2, np.arange(400) * 2 + 1], kind="stable")
    inter = fitted.score_series(np.r_[anomalous_series, anomalous_series[:400]][order], series_id=sid[order])
    np.testing.assert_allclose(inter.scores, by_id.scores[order], rtol=1e-5, atol=1e-5)


def test_gaps_split_error_ignore(fitted, anomalous_series):
    t = np.arange(len(anomalous_series), dtype=float)
    t[600:] += 1000  # a gap before row 600
    split = fitted.score_series(anomalous_series, time=t)
    parts = fitted.score_series([anomalous_series[:600], anomalous_series[600:]])
    np.testing.assert_allclose(split.scores, parts.scores, rtol=1e-5, atol=1e-5)
    ignore = SeriesDetector(**{**fitted.get_params(), "gaps": "ignore"})
    ignore.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    np.testing.assert_allclose(ignore.score_series(anomalous_series, time=t).scores, fitted.score_series(anomalous_series).scores, rtol=1e-5, atol=1e-5)
    strict = SeriesDetector(**{**fitted.get_params(), "gaps": "error"})
    strict.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    with pytest.raises(InputError, match="gap.*before row 600.*Fix: pass gaps='split'"):
        strict.score_series(anomalous_series, time=t)
    t2 = np.arange(len(anomalous_series), dtype=float)
    t2[10] = 3
    with pytest.raises(InputError, match="does not increase at row 10"):
        fitted.score_series(anomalous_series, time=t2)


def test_a_series_too_short_to_train_on_names_its_windows():
    """Too few windows to train (or for a held-out slice): the error and the warning speak of the
    series' windows and how to get more, not of 'samples' the user never passed."""
    s = np.sin(np.arange(70) / 5.0)[:, None]
    with pytest.raises(InputError, match=r"X: gives 7 window\(s\) of 64 points \(stride 1\), but at least 8.*"
                                         r"Fix: pass a longer series \(at least 71 points without a gap\) or a smaller window / stride"):
        SeriesDetector("ganomaly", window=64, stride=1, detector_params={"epochs": 1, "verbose": False}).fit(s)
    with pytest.warns(UserWarning, match="X: has 105 windows, too few for a held-out slice.*train on at least 155 windows") as rec:
        SeriesDetector("ganomaly", window=16, stride=1, detector_params={"epochs": 1, "verbose": False}).fit(np.sin(np.arange(120) / 5.0)[:, None])
    # the series' points are thresholded at its own point contamination (0.01), not the window detector's 0.1
    msg = next(str(w.message) for w in rec if "held-out" in str(w.message))
    assert "point contamination (0.01)" in msg and "contamination=0.1" not in msg


def test_bad_series_get_clear_errors(fitted, anomalous_series):
    bad = anomalous_series.copy()
    bad[42, 2] = np.nan
    with pytest.raises(InputError, match="row 42, channel 2.*Fix: fill them"):
        fitted.score_series(bad)
    with pytest.raises(InputError, match="shorter than the window.*Fix: pass a shorter window"):
        fitted.score_series(anomalous_series[:20])
    # several series (a folder's files, joined): the short one is named, not only its row in the join
    two = np.r_[anomalous_series[:300], anomalous_series[:20]]
    with pytest.raises(InputError, match=r"starts at row 300 \(series 'b.csv', its row 0\) and has 20 point"):
        fitted.score_series(two, series_id=np.r_[np.full(300, "a.csv"), np.full(20, "b.csv")])
    with pytest.raises(InputError, match="2 channel.*fitted on 3"):
        fitted.score_series(anomalous_series[:, :2])
    with pytest.raises(InputError, match="stride"):
        SeriesDetector(window=8, stride=9).fit(anomalous_series)
    with pytest.raises(InputError, match="detector"):
        SeriesDetector("nope", window=8).fit(anomalous_series)


def test_stream_equals_batch_with_bounded_memory(fitted, anomalous_series):
    batch = fitted.score_series(anomalous_series)
    sc = fitted.stream()
    idx, s, opened, closed = [], [], [], []
    rng = np.random.RandomState(0)
    i = 0
    while i < len(anomalous_series):
        n = int(rng.randint(1, 50))
        up = sc.update(anomalous_series[i:i + n])
        i += n
        idx.append(up.index); s.append(up.scores); opened += up.opened; closed += up.closed
        assert len(sc._buf) <= fitted.window_ + fitted.stride_ + 50
        assert len(sc._starts) <= fitted.window_ // fitted.stride_ + 50
        assert sc.n_seen - sc._emitted <= sc.latency_points + 1
    up = sc.close()
    idx.append(up.index); s.append(up.scores); closed += up.closed
    np.testing.assert_array_equal(np.concatenate(idx), np.arange(len(anomalous_series)))
    # the same windows, aggregation and events; the network's float32 round-off may depend on how
    # many windows one call scores (GEMM kernels chosen by row count), hence the tolerance
    np.testing.assert_allclose(np.concatenate(s), batch.scores, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(batch.scores).max())))
    assert [o["start"] for o in opened] == batch.events.start.tolist()
    got = pd.DataFrame(closed)
    np.testing.assert_array_equal(got.end, batch.events.end)
    np.testing.assert_allclose(got.share_b, batch.events.share_b, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="closed"):
        sc.update(anomalous_series[:3])


def test_onehot_and_analog_channels_scale_through_the_detector_scaler():
    """Per-channel scaling of series goes through the wrapped detector's Scaler (fitted on training
    windows); a command channel that is rarely on in training must not blow up on test data."""
    rng = np.random.RandomState(0)
    T = 3000
    analog = np.sin(np.arange(T) / 15) + 0.05 * rng.randn(T)
    cmd = np.zeros((T, 3))
    cmd[:, 0] = 1
    cmd[rng.choice(T, 10, replace=False), :] = [0, 1, 0]  # command 1 rarely on in training, 2 never
    X = np.c_[analog, cmd]
    sd = SeriesDetector("fanogan", window=16, stride=8, detector_params={"epochs": 1, "random_state": 0}).fit(X)
    test = X[:800].copy()
    test[100:300, 1:] = [0, 1, 0]  # command 1 on for a long stretch: a normal operating mode
    test[400:420, 1:] = [0, 0, 1]
    W, _ = ganad.data.windows.make_windows(test, 16, 8)
    z = sd.detector_.scaler_.transform(W.astype(np.float32))
    assert np.isfinite(z).all()
    assert sd.detector_.scaler_.mode == ["continuous", "discrete", "discrete", "constant"]
    assert np.abs(z).max() <= 10  # the per-feature scaler: a rare command level is ±1, not 1/std


def test_soft_dtw_matches_the_dynamic_programme_and_is_shift_tolerant():
    import torch
    from ganad.inversion.soft_dtw import soft_dtw, soft_dtw_divergence

    def ref(x, y, g):
        L1, L2 = x.shape[1], y.shape[1]
        R = np.full((L1 + 1, L2 + 1), np.inf)
        R[0, 0] = 0
        for i in range(1, L1 + 1):
            for j in range(1, L2 + 1):
                a = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
                m = a.min()
                R[i, j] = ((x[:, i - 1] - y[:, j - 1]) ** 2).sum() + m - g * np.log(np.exp(-(a - m) / g).sum())
        return R[L1, L2]

    rng = np.random.RandomState(0)
    x, y = rng.randn(4, 2, 7), rng.randn(4, 2, 5)
    np.testing.assert_allclose(soft_dtw(torch.tensor(x), torch.tensor(y), 0.3).numpy(), [ref(x[k], y[k], 0.3) for k in range(4)], rtol=1e-10)
    # divergence: 0 for identical series, and a shifted sine is much closer under DTW than under L2
    t = np.linspace(0, 6 * np.pi, 64)
    a, b = torch.tensor(np.sin(t))[None, None], torch.tensor(np.sin(t + 0.4))[None, None]
    assert float(soft_dtw_divergence(a, a)) == pytest.approx(0, abs=1e-9)
    assert float(soft_dtw_divergence(a, b, 0.01)) < 0.2 * float((a - b).square().mean())
    # differentiable: the gradient is finite and non-zero
    z = b.clone().requires_grad_(True)
    soft_dtw_divergence(a, z).sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_dtw_latent_search_and_dtw_window_score(anomalous_series):
    from ganad import AnoGAN
    W, _ = ganad.data.windows.make_windows(_series(800), 16, 8)
    det = AnoGAN(epochs=1, search_distance="dtw", search_n_max=5, random_state=0).fit(W.astype(np.float32))
    assert np.isfinite(det.decision_scores_).all()
    with pytest.raises(ValueError, match="dtw.*series windows"):
        AnoGAN(epochs=1, search_distance="dtw", search_n_max=2).fit(np.random.RandomState(0).randn(50, 4).astype(np.float32))
    sd = SeriesDetector("fanogan", window=16, stride=8, window_score="dtw", detector_params={"epochs": 1, "random_state": 0}).fit(_series(800))
    r = sd.score_series(anomalous_series)
    assert np.isfinite(r.scores).all() and (r.scores >= -1e-9).all()
    assert r.scores[500:520].mean() > np.median(r.scores)
    with pytest.raises(InputError, match="window_score"):
        SeriesDetector(window_score="nope").fit(_series(100))


def test_point_aggregation_is_windows_to_points_exactly():
    from ganad.data.windows import windows_to_points
    from ganad.series.detector import aggregate
    rng = np.random.RandomState(0)
    for T, W, S in [(200, 16, 4), (203, 16, 5), (50, 7, 7), (40, 8, 1)]:
        starts = np.arange(0, T - W + 1, S)
        sc, mp = rng.randn(len(starts)), rng.randn(len(starts), 2, W)
        s, c = aggregate(sc, mp, starts, W, T)
        np.testing.assert_array_equal(s, windows_to_points(sc, starts, W, T, fill="nearest"))
        for k in range(2):
            np.testing.assert_array_equal(c[:, k], windows_to_points(mp[:, k, :], starts, W, T, fill="nearest"))


def test_series_detectors_compare_scaled_windows_to_the_nearest_unless_told(anomalous_series):
    """A detector built by name measures its knn component between the scaled windows themselves
    (``knn_space='input'``, the series default chosen on the NAB validation groups, eleventh session;
    AnoGAN, which has no codes, takes it too), as the distance to the nearest training window
    (``n_neighbors=1``, twelfth session); explicit parameters win."""
    X = anomalous_series
    kw = dict(window=32, stride=16)
    for name, params, want, k in (("ganomaly", {}, "input", 1), ("ganomaly", {"knn_space": "feature"}, "feature", 1),
                                  ("ganomaly", {"knn_space": "code", "n_neighbors": 5}, "code", 5),
                                  ("anogan", {"search_n_max": 3}, "input", 1)):
        sd = SeriesDetector(name, detector_params={"epochs": 1, "random_state": 0, **params}, **kw).fit(X)
        assert sd.detector_.knn_space_ == want and sd.detector_.n_neighbors == k
        # the series default keeps the blend weight it was chosen with (0.75; 1.0 is 'feature+input''s)
        assert sd.detector_._knn_weight_now() == 0.75
    from ganad import GANomaly
    sd = SeriesDetector(GANomaly(epochs=1, random_state=0), **kw).fit(X)  # an instance is used as given
    assert sd.detector_.knn_space_ == "feature+input" and sd.detector_.n_neighbors == 5


def test_series_detectors_keep_the_size_of_values_beyond_the_training_range_unless_told():
    """A detector built by name scales each channel by the per-feature modes without clipping
    (``SERIES_SCALER``, chosen on the NAB validation groups, twenty-sixth session): a spike 40
    training ranges high scores above one 4 ranges high, where the clip to the training range
    widened by one width on each side scored the two alike. ``detector_params`` set it otherwise."""
    from ganad.series.detector import SERIES_SCALER
    X = _series(1600, seed=0)
    test = _series(800, seed=2)
    test[200:204, 0] += 8.0   # about 4 training ranges of channel a
    test[600:604, 0] += 80.0  # about 40
    peaks = {}
    for label, params in (("default", {}), ("clipped", {"scaler": {"kind": "per-feature", "clip": 1.0}})):
        sd = SeriesDetector("ganomaly", window=32, stride=8, detector_params={"epochs": 1, "random_state": 0, **params}).fit(X)
        s = sd.decision_function(test)
        peaks[label] = (s[190:240].max(), s[590:640].max())
        if label == "default":
            assert sd.detector_.scaler == SERIES_SCALER and sd.detector_.scaler_.clip == 1e6
        else:
            assert sd.detector_.scaler_.clip == 1.0
    small, large = peaks["default"]
    assert large > 3 * small  # the distance grows with the spike
    small_c, large_c = peaks["clipped"]
    assert large_c < 1.5 * small_c  # clipped, both spikes reach the same bound


def test_point_threshold_holds_on_new_normal_data():
    """The point threshold is the 0.99 quantile of the training points' scores. Each training window is
    in the knn bank; when it counted itself at distance 0 among its neighbours the training scores were
    too low and 15 % of a new normal stretch was flagged instead of about 1 %."""
    X, fresh = _series(5000, seed=0), _series(3000, seed=1)
    sd = SeriesDetector("fanogan", window=64, stride=16, detector_params={"epochs": 3, "random_state": 0}).fit(X)
    assert sd.predict(fresh).mean() <= 0.03


def test_compressed_input_space_leaves_every_training_window_out_of_its_own_neighbours():
    """knn_space='input' (the series default) compresses windows wider than 64 numbers to principal
    coordinates plus the length of the remainder. On clean, low-rank windows the remainder is ~0 and
    was computed as sqrt(|c|^2 - |p|^2), float32 cancellation noise that differed between the bank's
    batches and fit's scoring batches: ~20 % of the training windows then met their own bank entry at
    ~0 distance (leave-one-out lost, knn scores up to 30 % low, the threshold with them)."""
    import torch
    from ganad.data.windows import make_windows
    t = np.arange(3000)
    X = np.c_[np.sin(t / 20), np.cos(t / 33), 0.5 * np.sin(t / 7)]  # noise-free: the windows span few directions
    sd = SeriesDetector("ganomaly", window=64, stride=8, detector_params={"epochs": 1, "random_state": 0, "verbose": False}).fit(X)
    d = sd.detector_
    assert d.knn_space_ == "input" and d.knn_basis_.shape[0] == 192  # compressed
    wins, _ = make_windows(X, 64, 8)
    in_bank = np.setdiff1d(np.arange(len(wins)), d.validation_index_)[d._knn_bank_index]
    with torch.inference_mode():
        with d._scoring_training_rows():  # as SeriesDetector.fit scores its windows: all of them, in order
            got = d._knn_distance(d._knn_embed(torch.from_numpy(d.scaler_.transform(wins)))).double().numpy()[in_bank]
        bank = d.knn_bank_.double()
        D = torch.cdist(bank, bank)
        D.fill_diagonal_(float("inf"))
        want = D.topk(int(d.n_neighbors), dim=1, largest=False).values.mean(1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4)


def _flicker(fitted, X):
    """Labels with short and long gaps between runs: scores set by hand through a patched
    aggregation would hide the tracker; instead the threshold is moved to make the labels flicker."""
    import copy
    sd = copy.copy(fitted)
    r = fitted.score_series(X)
    sd.threshold_ = float(np.quantile(r.scores, 0.8))  # about a fifth of the points above it, in many runs
    return sd


@pytest.mark.parametrize("gap", [0, 5, 32, 200])
def test_events_bridge_gaps_of_at_most_event_gap_points_in_batch_and_stream(fitted, anomalous_series, gap):
    """SeriesDetector(event_gap=g): events are the runs of bridge_gaps(labels, g), in_event marks
    them, labels stay the points above the threshold; a stream gives the same events, each close
    record g + 1 points after the event's last anomalous point (or at close())."""
    from ganad.series.metrics import bridge_gaps, label_ranges
    sd = _flicker(fitted, anomalous_series)
    sd.event_gap_ = gap
    r = sd.score_series(anomalous_series)
    runs = label_ranges(r.labels)
    assert len(runs) >= 4  # the threshold makes the labels flicker
    want = label_ranges(bridge_gaps(r.labels, gap))
    assert list(zip(r.events.start, r.events.end)) == want
    np.testing.assert_array_equal(r.in_event, bridge_gaps(r.labels, gap))
    np.testing.assert_array_equal(r.labels, (r.scores > sd.threshold_).astype(int))
    np.testing.assert_array_equal(r.events.length, [e - s + 1 for s, e in want])
    if gap == 0:
        assert want == runs
    elif gap == 200:
        assert len(want) < len(runs)
    sc = sd.stream()
    closed_at = []
    for i in range(0, len(anomalous_series), 7):
        before = sc._emitted
        up = sc.update(anomalous_series[i:i + 7])
        closed_at += [(ev["start"], ev["end"], (before, sc._emitted)) for ev in up.closed]
    closed_at += [(ev["start"], ev["end"], None) for ev in sc.close().closed]
    assert [(a, b) for a, b, _ in closed_at] == want
    for a, b, reported in closed_at:
        if reported is not None:  # closed by the update that reported point b + gap + 1, not before
            assert reported[0] <= b + gap + 1 < reported[1]
        else:  # closed at the end: the stream ended within gap points of the event
            assert b + gap + 1 >= len(anomalous_series)


def test_event_gap_is_checked_and_kept_in_the_model_file(fitted, tmp_path):
    from ganad.series.detector import SeriesDetector
    for bad in (-1, 2.5, "64", True):
        with pytest.raises(InputError, match="event_gap"):
            SeriesDetector(window=32, event_gap=bad).fit(_series(600))
    sd = SeriesDetector("fanogan", window=32, stride=8, event_gap=3, detector_params={"epochs": 1, "random_state": 0}).fit(_series(800))
    assert sd.event_gap_ == 3
    sd.save(tmp_path / "m")
    assert ganad.load(tmp_path / "m").event_gap_ == 3
    # a file written before event_gap existed keeps one event per run of anomalous points
    import json
    f = tmp_path / "m" / "series.json"
    cfg = json.loads(f.read_text())
    del cfg["state"]["event_gap"], cfg["params"]["event_gap"]
    f.write_text(json.dumps(cfg))
    assert ganad.load(tmp_path / "m").event_gap_ == 0


def test_an_old_model_file_reports_the_event_gap_it_uses(fitted, tmp_path):
    """A file written before event_gap existed scores with event_gap_ = 0 (one event per run); its
    parameters (get_params, what `ganad serve` shows as the model's params) must say 0 too, not None
    (None means one window), and a re-save keeps 0."""
    import json
    fitted.save(tmp_path / "m")
    f = tmp_path / "m" / "series.json"
    cfg = json.loads(f.read_text())
    del cfg["state"]["event_gap"], cfg["params"]["event_gap"]
    f.write_text(json.dumps(cfg))
    old = ganad.load(tmp_path / "m")
    assert old.event_gap_ == 0 and old.get_params()["event_gap"] == 0
    from ganad.serve.registry import load_detector
    assert load_detector("m", tmp_path / "m")[1]["series"]["params"]["event_gap"] == 0
    old.save(tmp_path / "again")
    again = ganad.load(tmp_path / "again")
    assert again.event_gap_ == 0 and again.get_params()["event_gap"] == 0


def test_scoring_in_blocks_of_points_gives_the_one_pass_scores(fitted, anomalous_series, monkeypatch):
    """score_series cuts and scores a series' windows block by block (bounded memory): every point gets
    the mean over the same windows as one pass over all of them, with gaps and a trailing remainder."""
    import ganad.series.detector as D
    t = np.arange(len(anomalous_series), dtype=float)
    t[700:] += 500  # a gap: two segments
    ref = fitted.score_series(anomalous_series, time=t)
    # one pass, the old way: every window at once, then the mean over covering windows
    segs = D._segments(len(anomalous_series), t, None, fitted.gaps, float(fitted.gap_factor), "X")
    wins, layout = fitted._windows(anomalous_series, segs, skip_short=False, name="X")
    ws, wm = fitted._score_windows(wins)
    wm = wm / np.asarray(fitted.channel_baseline_)[None, :, None]
    s1, c1 = np.full(len(anomalous_series), np.nan), np.full(anomalous_series.shape, np.nan)
    off = 0
    for idx, starts, n in layout:
        s1[idx], c1[idx] = D.aggregate(ws[off:off + n], wm[off:off + n], starts, fitted.window_, len(idx))
        off += n
    np.testing.assert_array_equal(ref.scores, s1)
    np.testing.assert_array_equal(ref.contributions, c1)
    for block in (1, 3 * 32 * 8, 3 * 32 * 8 * 5 + 7):  # one stride of windows per block, one window, odd sizes
        monkeypatch.setattr(D, "SCORE_BLOCK", block)
        r = fitted.score_series(anomalous_series, time=t)
        np.testing.assert_array_equal(r.scores, ref.scores)
        np.testing.assert_array_equal(r.contributions, ref.contributions)
        assert r.events.equals(ref.events)


def test_fit_scores_its_training_windows_in_blocks_as_one_pass_would(monkeypatch):
    """fit scored every training window at once with its residual map (window / stride copies of every
    point and channel: 3.75 GB for 1M points x 20 channels); it now keeps only the window scores and
    the channels' residual sums, block by block. Same training points, threshold and baseline."""
    import ganad.series.detector as D
    X = _series(1500, seed=3)
    kw = dict(window=32, stride=8, detector_params={"epochs": 1, "random_state": 0, "width": 8})
    ref = SeriesDetector("fanogan", **kw).fit(X)
    # the one-pass definition on the fitted model: every window and map at once
    segs = D._segments(len(X), None, None, ref.gaps, float(ref.gap_factor), "X")
    wins, layout = ref._windows(X, segs, skip_short=True, name="X")
    with ref.detector_._scoring_training_rows():
        ws, wm = ref._score_windows(wins)
    (idx, starts, n), = layout
    pts, _ = D.aggregate(ws, None, starts, ref.window_, len(idx))
    np.testing.assert_array_equal(ref.decision_scores_, pts)
    np.testing.assert_allclose(ref.channel_baseline_, wm.astype(np.float64).mean(axis=(0, 2)), rtol=1e-12)
    for block in (1, 3 * 32 * 5 + 7):  # one window per block, odd sizes
        monkeypatch.setattr(D, "SCORE_BLOCK", block)
        sd = SeriesDetector("fanogan", **kw).fit(X)
        np.testing.assert_array_equal(sd.decision_scores_, ref.decision_scores_)
        assert sd.threshold_ == ref.threshold_
        np.testing.assert_allclose(sd.channel_baseline_, ref.channel_baseline_, rtol=1e-12)


def test_an_event_in_one_of_many_channels_names_that_channel_alone():
    """Each channel's relative residual is about 1 on normal data: with 30 channels the normal ones' 1s
    would fill half of the whole residual, so the driving channels are chosen by their excess."""
    rng = np.random.RandomState(0)
    t = np.arange(4000)[:, None]
    A = np.sin(2 * np.pi * t / 50 + np.linspace(0, 3, 30)[None, :]) + 0.05 * rng.randn(4000, 30)
    sd = SeriesDetector("fanogan", window=32, stride=8, detector_params={"epochs": 3, "random_state": 0, "verbose": False}).fit(A[:3000])
    X = A[3000:].copy()
    X[500:520, 7] += 3.0
    ev = sd.score_series(X).events
    assert len(ev) == 1 and ev.start[0] <= 500 and ev.end[0] >= 519
    assert ev.channels[0].split("=")[0] == "ch7" and ";" not in ev.channels[0]
    shares = ev[[f"share_ch{c}" for c in range(30)]].to_numpy()[0]
    assert shares.argmax() == 7 and abs(shares.sum() - 1) < 1e-9


def test_a_large_stream_chunk_is_scored_in_blocks_all_or_nothing(fitted, anomalous_series, monkeypatch):
    """StreamScorer.update scores a large chunk block by block (bounded memory) with the scores of one
    pass, and a chunk refused in a later block leaves the stream as it was."""
    import ganad.series.detector as D
    ref = fitted.stream()
    r1 = ref.update(anomalous_series)
    monkeypatch.setattr(D, "SCORE_BLOCK", 3 * fitted.window_ * 7)  # 7 windows' worth of points per block
    sc = fitted.stream()
    up = sc.update(anomalous_series)
    np.testing.assert_array_equal(up.index, r1.index)
    np.testing.assert_allclose(up.scores, r1.scores, rtol=1e-6, atol=1e-6)
    assert [e["start"] for e in up.opened] == [e["start"] for e in r1.opened]
    assert [e["end"] for e in up.closed] == [e["end"] for e in r1.closed]
    sc2 = fitted.stream()
    sc2.update(anomalous_series[:100])
    before = (sc2.n_seen, sc2._emitted, sc2._next_start, sc2._buf.copy())
    calls = {"n": 0}
    real = type(fitted)._score_windows

    def fail_later(self, wins):
        calls["n"] += 1
        if calls["n"] == 3:
            raise InputError("a window scored non-finite")
        return real(self, wins)
    monkeypatch.setattr(type(fitted), "_score_windows", fail_later)
    with pytest.raises(InputError, match="non-finite"):
        sc2.update(anomalous_series[100:900])
    assert (sc2.n_seen, sc2._emitted, sc2._next_start) == before[:3]
    np.testing.assert_array_equal(sc2._buf, before[3])
    monkeypatch.setattr(type(fitted), "_score_windows", real)
    rest = sc2.update(anomalous_series[100:])  # the stream goes on as if the refused chunk never came
    full = fitted.stream()
    full.update(anomalous_series[:100])
    np.testing.assert_allclose(rest.scores, full.update(anomalous_series[100:]).scores, rtol=1e-6, atol=1e-6)


def test_event_fields_are_plain_python_types_for_json():
    """An event's length was a numpy int64 (points counted from numpy run bounds), which json.dumps refuses."""
    import json

    from ganad.series.detector import EventTracker
    tr = EventTracker(["a", "b"], series=np.int64(3), gap=2)
    lab = np.array([0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1], dtype=np.int64)
    scores = np.linspace(0.0, 1.0, len(lab))
    t = np.arange(len(lab), dtype=np.float64) * 0.5
    opened, closed = tr.feed(np.arange(len(lab)), scores, lab, np.ones((len(lab), 2)), time=t)
    closed += tr.finish()
    assert len(closed) == 2 and closed[0]["length"] == 4
    for ev in opened + closed:
        json.dumps(ev)  # raised TypeError: Object of type int64 is not JSON serializable
        for k, v in ev.items():
            assert v is None or type(v) in (int, float, str), (k, type(v))


def test_stream_update_with_no_points_returns_nothing_and_keeps_the_stream():
    """`update` takes any number of points per call, but an empty chunk (a polling loop with no new
    data) raised "is empty"; it now returns an empty update and leaves the stream as it was."""
    from ganad.series import SeriesDetector
    rng = np.random.RandomState(0)
    X = np.sin(np.arange(600) / 10)[:, None] + 0.05 * rng.randn(600, 1)
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "verbose": False, "random_state": 0}).fit(X)
    a, b = sd.stream(), sd.stream()
    ua = [a.update(X[:50]), a.update(np.empty((0, 1))), a.update(np.empty(0)), a.update(X[50:120])]
    ub = [b.update(X[:120])]
    assert len(ua[1].index) == 0 and len(ua[2].index) == 0 and ua[1].contributions.shape[1:] == ua[0].contributions.shape[1:]
    np.testing.assert_array_equal(np.concatenate([u.scores for u in ua]), np.concatenate([u.scores for u in ub]))
    with pytest.raises(InputError, match="empty|channel"):
        a.update(np.empty((0, 3)))


def test_telemetry_audit_fixes(tmp_path):
    """Twenty-first session's audit: a DataFrame's columns name the channels and are taken by name when
    scored; NaN messages name the channel (and a stream's row in the stream); a short series in a folder
    is named with its own row; an empty series-id cell is a clear error, not a TypeError."""
    import pandas as pd

    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    rng = np.random.RandomState(0)
    T = 1200
    df = pd.DataFrame({"temp": np.sin(np.linspace(0, 60, T)) + 0.05 * rng.randn(T), "pressure": rng.randn(T) * 0.1})
    sd = SeriesDetector("ganomaly", window=32, stride=4, detector_params=dict(epochs=1, width=8, random_state=0)).fit(df)
    assert sd.channels_ == ["temp", "pressure"]
    np.testing.assert_array_equal(sd.score_series(df[["pressure", "temp"]]).scores, sd.score_series(df).scores)
    st = sd.stream()
    st.update(df.to_numpy()[:100])
    bad = df.to_numpy()[100:110].copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="the first at row 103, channel 'pressure'"):
        st.update(bad)
    ids = np.array(["a"] * 1000 + ["c"] * 20)
    with pytest.raises(InputError, match=r"starts at row 1000 \(series 'c', its row 0\)"):
        sd.score_series(pd.concat([df.iloc[:1000], df.iloc[:20]]).reset_index(drop=True), series_id=ids)
    f = tmp_path / "m.csv"
    d2 = df.assign(unit=np.where(np.arange(T) % 2, "A", "B")).astype({"unit": object})
    d2.loc[[10, 500], "unit"] = None
    d2.to_csv(f, index=False)
    with pytest.raises(DataFileError, match="column 'unit': has 2 empty series id\\(s\\), the first at row 10"):
        read_series_file(f, series_id="unit")


def test_a_list_of_dataframes_is_taken_by_channel_name(fitted):
    """One DataFrame is scored by its channel names in any column order; a list of DataFrames was
    read by position: the channels swapped silently and scored differently."""
    X = pd.DataFrame(_series(400, seed=4), columns=["a", "b", "c"])
    ref = fitted.decision_function(X)
    np.testing.assert_array_equal(fitted.decision_function([X[["c", "a", "b"]]]), ref)
    np.testing.assert_array_equal(fitted.decision_function([X, X[["b", "c", "a"]]])[400:], ref)


def test_fit_on_a_list_of_dataframes_names_and_aligns_the_channels():
    A = pd.DataFrame(_series(600, seed=5), columns=["a", "b", "c"])
    B = pd.DataFrame(_series(600, seed=6), columns=["a", "b", "c"])
    kw = dict(window=32, stride=8, detector_params={"epochs": 1, "random_state": 0, "verbose": False})
    sd = SeriesDetector("fanogan", **kw).fit([A, B[["c", "b", "a"]]])
    ref = SeriesDetector("fanogan", **kw).fit([A, B])
    assert sd.channels_ == ["a", "b", "c"]  # the first DataFrame names them
    np.testing.assert_array_equal(sd.decision_function(A), ref.decision_function(A))
    # channel_names that reorder a DataFrame's own columns would swap them at scoring (taken by name): refused
    with pytest.raises(InputError, match="channel_names.*otherwise"):
        SeriesDetector("fanogan", **kw).fit(A, channel_names=["c", "b", "a"])


def test_fit_warning_for_a_short_series_names_the_series_not_gaps():
    X, sid = _series(600, seed=7), np.r_[np.zeros(5), np.ones(595)]
    with pytest.warns(UserWarning, match="shorter than the window") as rec:
        SeriesDetector("fanogan", window=32, stride=8, detector_params={"epochs": 1, "verbose": False}).fit(X, series_id=sid)
    msg = " ".join(str(w.message) for w in rec if "shorter than the window" in str(w.message))
    assert "gaps" not in msg and "series 0" in msg, msg


def test_a_refused_series_refit_leaves_the_fitted_model(fitted):
    """SeriesDetector.fit set window_ before the data could be refused: a refit with a window too long
    for the series left the new window with the old detector (its windows no longer matched)."""
    import copy
    sd = copy.deepcopy(fitted)
    X = _series(500, seed=8)
    ref = sd.decision_function(X)
    with pytest.raises(InputError, match="window"):
        sd.set_params(window=480).fit(X)
    assert sd.window_ == 32
    np.testing.assert_array_equal(sd.set_params(window=32).decision_function(X), ref)


def test_scoring_checks_series_lengths_against_the_fitted_window_not_the_parameter(fitted):
    """score_series checked the series' length against the window parameter, which set_params changes for the
    next fit only: with a smaller one a series shorter than the fitted window passed and numpy's
    sliding_window_view raised "window shape cannot be larger than input array shape" (a ValueError); with a
    larger one a series long enough for the fitted window was refused."""
    import copy
    sd = copy.deepcopy(fitted)
    X = _series(500, seed=9)
    ref = sd.decision_function(X[:40])
    sd.set_params(window=8)
    with pytest.raises(InputError, match=r"shorter than the window \(32 points\)"):
        sd.score_series(X[:20])
    sd.set_params(window=64)
    np.testing.assert_array_equal(sd.decision_function(X[:40]), ref)
    sd.set_params(window=64, stride=1)
    np.testing.assert_array_equal(sd.decision_function(X[:40]), ref)


def test_window_score_set_after_fit_takes_effect_at_the_next_fit(fitted, tmp_path):
    """set_params(window_score='dtw') after fit scored soft-DTW divergences against the threshold fitted on the
    detector's window scores (a third of fresh normal points flagged at a point contamination of 0.05), and a
    model saved then kept that mix; the window score is now fixed at fit, as the window is."""
    import copy
    sd = copy.deepcopy(fitted)
    X = _series(600, seed=10)
    ref = sd.decision_function(X)
    sd.set_params(window_score="dtw", dtw_gamma=0.5)
    np.testing.assert_array_equal(sd.decision_function(X), ref)
    sd.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.window_score == "dtw" and back.window_score_ == "detector"
    np.testing.assert_allclose(back.decision_function(X), ref, rtol=1e-6, atol=1e-6)
    dtw = SeriesDetector("fanogan", window=32, stride=8, window_score="dtw", dtw_gamma=0.5,
                         detector_params={"epochs": 1, "random_state": 0}).fit(X)
    s_dtw = dtw.decision_function(X)
    dtw.set_params(window_score="detector")
    np.testing.assert_array_equal(dtw.decision_function(X), s_dtw)
    dtw.save(tmp_path / "d")
    np.testing.assert_allclose(ganad.load(tmp_path / "d").decision_function(X), s_dtw, rtol=1e-6, atol=1e-6)


def test_stream_takes_a_dataframe_by_channel_name(fitted, anomalous_series):
    """StreamScorer.update read a DataFrame by position: columns in another order gave other scores
    and false events blamed on the wrong channel, where batch scoring takes them by name."""
    df = pd.DataFrame(anomalous_series[:400], columns=["a", "b", "c"])[["c", "a", "b"]]
    ref = fitted.score_series(df)
    sc = fitted.stream()
    parts = [sc.update(df.iloc[i:i + 37]) for i in range(0, len(df), 37)] + [sc.close()]
    np.testing.assert_array_equal(np.concatenate([u.scores for u in parts]), ref.scores)


def test_a_window_that_overflows_names_its_points_in_batch_and_stream():
    """A finite value that overflows the networks (1e20 with scaler='standard') was named as "row(s) [0]"
    of the block of windows scored; in a stream the innocent chunk completing its window was blamed."""
    X = _series(800, seed=9)
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "random_state": 0, "verbose": False, "scaler": "standard"}).fit(X)
    Y = _series(120, seed=10)
    Y[50, 0] = 1e20
    with pytest.raises(InputError, match=r"over points \(rows\) 36 to 51"):
        sd.score_series(Y)
    sc = sd.stream()
    sc.update(Y[:51])
    with pytest.raises(InputError, match="over stream points 36 to 51.*cannot go past this window"):
        sc.update(Y[51:52])
    sd.detector_.on_nonfinite = "max"
    up = sc.update(Y[51:52])
    assert np.isinf(up.scores).any()


def test_a_sensor_glitch_is_the_top_anomaly_of_the_series_default_not_an_overflow():
    """The series default scales without clipping to the training range; unbounded, a glitch of 1e20
    overflowed the float32 networks, which refused the window and stopped a stream under the default
    on_nonfinite='raise'. Its bound of a million training ranges scores it as the top anomaly."""
    X = _series(800, seed=9)
    sd = SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "random_state": 0, "verbose": False}).fit(X)
    Y = _series(120, seed=10)
    Y[50, 0] = 1e20
    s = sd.decision_function(Y)
    assert np.isfinite(s).all() and 36 <= int(np.argmax(s)) <= 63
    sc = sd.stream()
    ups = [sc.update(Y[i:i + 7]) for i in range(0, 120, 7)] + [sc.close()]
    np.testing.assert_allclose(np.concatenate([u.scores for u in ups]), s, rtol=1e-6)


def test_a_dataframe_with_other_column_names_is_refused_not_scored_by_position():
    """A DataFrame whose columns are not the model's named channels (one renamed: z, a, b for a, b, c) was
    scored by position, in batch, stream and lists (scores off by 84), where the CLI, /series and ganad
    stream refuse it; channel_names that rename a DataFrame's columns would make the same frame refused."""
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"a": rng.randn(400), "b": 1000 + 100 * rng.randn(400), "c": -5 + 0.01 * rng.randn(400)})
    sd = SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "verbose": False, "random_state": 0}).fit(df)
    bad = df[["c", "a", "b"]].rename(columns={"c": "z"})
    for call in (lambda: sd.decision_function(bad), lambda: sd.stream().update(bad.iloc[:20]), lambda: sd.score_series([bad])):
        with pytest.raises(InputError, match=r"not seen: \['z'\].*missing: \['c'\]"):
            call()
    np.testing.assert_array_equal(sd.decision_function(df.to_numpy()), sd.decision_function(df))  # an array: by position
    with pytest.raises(InputError, match="channel_names.*otherwise"):
        SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "verbose": False}).fit(df, channel_names=["x", "y", "w"])


def test_a_model_fitted_on_an_unnamed_frame_reads_named_frames_by_position():
    """pd.DataFrame(array) has no names (its columns are 0, 1, ...): its model, like an array's, reads
    any frame by position (the new refusal of other names took its channels '0', '1' for names)."""
    X = _series(600, seed=11)
    sd = SeriesDetector("ganomaly", window=16, stride=8, detector_params={"epochs": 1, "verbose": False, "random_state": 0}).fit(pd.DataFrame(X))
    named = pd.DataFrame(X, columns=["temp", "pressure", "flow"])
    np.testing.assert_array_equal(sd.decision_function(named), sd.decision_function(X))


def test_masked_tensor_and_nullable_series_inputs_are_read_or_named(fitted, anomalous_series):
    """Arrays audit (twenty-fifth session): a masked array's masked points were scored as the values
    under the mask; a torch tensor that requires grad escaped as a bare RuntimeError; a nullable frame's
    pd.NA was called 'cannot be read as numbers' instead of a missing value at a named row and channel."""
    import torch
    X = anomalous_series[:300].copy()
    m = np.ma.masked_array(X, mask=np.zeros(X.shape, bool))
    m.mask[120, 2] = True
    with pytest.raises(InputError, match=r"masked array with 1 masked value\(s\), the first at row 120, column 2.*filled"):
        fitted.score_series(m)
    st = fitted.stream()
    first = st.update(X[:100])
    with pytest.raises(InputError, match="points: is a masked array .* at row 120, column 2"):
        st.update(m[100:150])
    rest = st.update(np.ma.masked_array(X[100:]))  # nothing masked: its data, and the stream goes on as it was
    assert st.n_seen == 300 and np.array_equal(np.r_[first.index, rest.index], np.arange(len(first.index) + len(rest.index)))
    whole = fitted.score_series(X).scores
    np.testing.assert_array_equal(fitted.score_series(np.ma.masked_array(X)).scores, whole)
    t = torch.tensor(X, requires_grad=True)
    np.testing.assert_array_equal(fitted.score_series(t).scores, whole)
    st2 = fitted.stream()
    got = np.concatenate([st2.update(t).scores, st2.close().scores])
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(whole).max())))
    df = pd.DataFrame(X, columns=["a", "b", "c"]).astype("Float64")
    df.iloc[7, 1] = pd.NA
    with pytest.raises(InputError, match="1 NaN or infinite value.*row 7, channel 'b'"):
        fitted.score_series(df)
    with pytest.raises(InputError, match="row 7, channel 'b'"):
        fitted.stream().update(df)


def test_dtw_window_scores_follow_on_nonfinite(monkeypatch):
    """Review: the DTW window score read the detector's reconstruction without the guard, so a window
    whose reconstruction overflowed (NaN) got a NaN score that the point scores then dropped silently;
    under 'max' it stayed NaN."""
    rng = np.random.RandomState(9)
    t = np.arange(800)
    X = np.stack([np.sin(t / 7), np.cos(t / 11)], 1) + 0.05 * rng.randn(800, 2)
    sd = SeriesDetector("fanogan", window=16, stride=4, window_score="dtw",
                        detector_params={"epochs": 1, "random_state": 0, "verbose": False}).fit(X)
    det = sd.detector_
    orig = type(det)._invert

    def invert(self, x):  # one window's reconstruction overflows, as the float32 networks do on extreme values
        inv = orig(self, x)
        if len(x) > 9:
            xh = inv["x_hat"].clone()
            xh[9] = float("nan")
            inv["x_hat"] = xh
        return inv
    monkeypatch.setattr(type(det), "_invert", invert)
    with pytest.raises(InputError, match="1 window"):
        sd.score_series(X[:120])
    det.on_nonfinite = "max"
    s = np.asarray(sd.score_series(X[:120]).scores)
    assert not np.isnan(s).any() and np.isinf(s).any()


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_a_time_or_text_column_among_a_dataframes_channels_is_named(fitted, tz):
    """A table's time column left among the channels: a zoned one (a tz-aware column) was trained on as a
    channel of nanoseconds without a word, a naive one refused as 'cannot be read as numbers' with a
    Timestamp; a text or category channel was refused naming neither the column nor the row."""
    X = pd.DataFrame(_series(600, seed=7), columns=["a", "b", "c"])
    X.insert(0, "time", pd.date_range("2024-03-31", periods=600, freq="min", tz=tz))
    kw = dict(window=32, stride=8, detector_params={"epochs": 1, "random_state": 0, "verbose": False})
    with pytest.raises(InputError, match=r"channel 'time' holds times .*time=df\['time'\]"):
        SeriesDetector("fanogan", **kw).fit(X)
    with pytest.raises(InputError, match="holds times"):
        fitted.decision_function(X["time"])
    Y = X.drop(columns=["time"])
    Y["c"] = Y["c"].astype(str).where(Y.index != 5, "n/a")
    with pytest.raises(InputError, match="channel 'c' holds non-numeric value 'n/a' at row 5"):
        fitted.decision_function(Y)
    Y["c"] = pd.Categorical(np.where(Y.index % 2, "on", "off"))
    with pytest.raises(InputError, match="channel 'c' holds non-numeric value 'off' at row 0"):
        SeriesDetector("fanogan", **kw).fit(Y)


def test_series_ids_of_mixed_types_or_missing_are_read_or_named(fitted):
    """series_id went through np.unique, which sorts: ids of mixed types (3 and 'a') or a None among text ids
    failed with a bare TypeError, and a NaN id became a series of its own (refused as a short series)."""
    X = _series(600, seed=8)
    mixed = np.array(["a"] * 300 + [3] * 300, dtype=object)
    ref = fitted.score_series(X, series_id=np.repeat([0, 1], 300))
    got = fitted.score_series(X, series_id=mixed)
    np.testing.assert_array_equal(got.scores, ref.scores)
    assert list(got.events.series) == [{0: "a", 1: 3}[s] for s in ref.events.series]
    for missing in (np.where(mixed == 3, "b", mixed).astype(object), np.repeat([1.0, 2.0], 300)):
        missing[5] = None if missing.dtype == object else np.nan
        with pytest.raises(InputError, match="series_id: has 1 missing id.*row 5"):
            fitted.score_series(X, series_id=missing)


def test_a_missing_time_is_named_not_taken_for_no_gap(fitted):
    """A NaN among float times made no gap and passed without a word (a file's missing time is refused);
    a NaT or None among datetimes was reported as a time going back."""
    X = _series(600, seed=9)
    t = pd.Series(pd.date_range("2024-01-01", periods=600, freq="min"))
    times = [np.where(np.arange(600) == 100, np.nan, np.arange(600.0)), t.where(t.index != 100),
             t.where(t.index != 100).to_numpy(), t.astype(str).astype(object).where(t.index != 100, None)]
    for time in times:
        with pytest.raises(InputError, match="X time: has 1 missing or infinite time.*row 100"):
            fitted.score_series(X, time=time)
    with pytest.raises(InputError, match=r"X time: has 1 missing or infinite time\(s\) \(NaN, NaT, None or inf\).*row 100"):
        fitted.score_series(X, time=np.where(np.arange(600) == 100, np.inf, np.arange(600.0)))


def test_a_dataframe_whose_column_names_repeat_is_read():
    """Two channels of one name: the check for time columns among a DataFrame's channels read ``X[c].dtype``,
    a DataFrame for a repeated name (AttributeError); the series fits as before the check."""
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.standard_normal((300, 2)), columns=["a", "a"])
    sd = SeriesDetector("fanogan", window=8, detector_params={"epochs": 1, "random_state": 0}).fit(X)
    assert sd.channels_ == ["a", "a"] and np.isfinite(sd.decision_function(X.to_numpy())).all()


def test_fit_predict_labels_every_training_row_as_pyod(tmp_path):
    """labels_ / fit_predict (PyOD's outlier-detector API, which SeriesDetector lacked): one 0 / 1 label per
    row of the training series, in the rows' order (series ids interleaved, a list of series), 1 where the
    point's training score is above threshold_; a series too short for one window is labelled 0."""
    a, b = _series(700, seed=4), _series(20, seed=5)  # b: shorter than one window, no score
    kw = dict(window=32, stride=8, contamination=0.05, detector_params={"epochs": 1, "random_state": 0, "width": 8})
    sd = SeriesDetector("fanogan", **kw)
    with pytest.warns(UserWarning, match="shorter than the window"):
        lab = sd.fit_predict([a, b])
    assert lab.shape == (720,) and lab.dtype == np.int64 and set(np.unique(lab)) <= {0, 1}
    assert (lab[700:] == 0).all() and lab[:700].sum() > 0
    # the same points as decision_scores_ (which leaves the unscored rows out), against threshold_
    np.testing.assert_array_equal(lab[:700], (sd.decision_scores_ > sd.threshold_).astype(np.int64))
    assert lab.mean() == pytest.approx(0.05 * 700 / 720, abs=0.01)
    # rows of two series interleaved by series_id: each row keeps its own label
    sid = np.r_[np.zeros(700, int), np.ones(700, int)]
    order = np.argsort(np.r_[np.arange(700) * 2, np.arange(700) * 2 + 1], kind="stable")
    X2 = np.r_[a, _series(700, seed=6)]
    lab_sorted = SeriesDetector("fanogan", **kw).fit_predict(X2, series_id=sid)
    inter = SeriesDetector("fanogan", **kw).fit_predict(X2[order], series_id=sid[order])
    np.testing.assert_array_equal(inter, lab_sorted[order])
    # after calibrate the labels follow the calibrated threshold, as predict's do
    sd.calibrate(_series(700, seed=7), threshold="contamination", contamination=0.2)
    np.testing.assert_array_equal(sd.labels_[:700], (sd.decision_scores_ > sd.threshold_).astype(np.int64))
    # not kept in the model file: a loaded model says so and names the way to the labels
    sd.save(tmp_path / "m")
    loaded = ganad.load(tmp_path / "m")
    for attr in ("labels_", "decision_scores_"):  # one copy of the training points' scores, derived for both
        with pytest.raises(AttributeError, match="decision_function"):
            getattr(loaded, attr)
    assert "_train_point_scores" in sd.__dict__ and "decision_scores_" not in sd.__dict__
    with pytest.raises(AttributeError):
        SeriesDetector().labels_


def test_a_channel_constant_in_training_is_never_blamed_while_it_holds_its_value():
    """A setpoint channel constant in training (42.0) has a tiny training residual (channel_baseline_ near
    0): the networks' small residual on it, disturbed by an anomaly in another channel, became a large
    ratio and the events table named the setpoint, the one channel certain to be normal, as the driver.
    Its contribution is 0 where it holds its training value; where it moves, it is the driver."""
    X = np.c_[_series(2400), np.full(2400, 42.0)]
    sd = SeriesDetector("fanogan", window=32, stride=8,
                        detector_params={"epochs": 2, "random_state": 0, "width": 8, "verbose": False})
    sd.fit(X, channel_names=["a", "b", "c", "setpoint"])
    T = np.c_[_series(1003, seed=1), np.full(1003, 42.0)]
    T[500:520, 1] += 3.0
    res = sd.score_series(T)
    assert (res.contributions[:, 3] == 0).all()
    assert len(res.events) and not res.events.channels.str.contains("setpoint").any()
    assert (res.events.share_setpoint == 0).all()
    up = sd.stream().update(T)  # the stream's contributions are the batch ones
    np.testing.assert_allclose(up.contributions, res.contributions[up.index], rtol=1e-6, atol=1e-9)
    M = T.copy()
    M[:, 1] = _series(1003, seed=1)[:, 1]
    M[700:720, 3] = 45.0  # the setpoint moves: now it drives the event
    ev = sd.score_series(M).events
    hit = ev[(ev.start <= 719) & (ev.end >= 700)]
    assert len(hit) == 1 and hit.channels.iloc[0].startswith("setpoint=")


def test_a_large_constant_channel_that_moves_by_one_unit_drives_its_event():
    """The setpoint mask judged "holds its value" to 1e-6 of the value: at 2e6 (scale 1) a step of 1, which
    the networks see as 42 -> 43 is seen, drove the window score while the event named another channel."""
    X = np.c_[_series(1200), np.full(1200, 2e6)]
    sd = SeriesDetector("fanogan", window=16, stride=4,
                        detector_params={"epochs": 1, "random_state": 0, "width": 8, "verbose": False})
    sd.fit(X, channel_names=["a", "b", "c", "setpoint"])
    T = np.c_[_series(600, seed=1), np.full(600, 2e6)]
    assert (sd.score_series(T).contributions[:, 3] == 0).all()  # held: never blamed
    T[300:340, 3] += 1.0
    res = sd.score_series(T)
    assert (res.contributions[300:340, 3] > 0).all()
    hit = res.events[(res.events.start <= 339) & (res.events.end >= 300)]
    assert len(hit) == 1 and hit.channels.iloc[0].startswith("setpoint=")


def test_a_float32_setpoint_rounding_between_two_neighbours_holds_its_value():
    """A float32 setpoint that rounds between two neighbouring float32 values (230.7 and the next one up) is
    constant to the scaler, and its residual was masked until the mask moved to scaled units (1e-6): then
    every point of it carried a residual again (a share up to 0.77 of a point's). Within two float32 units
    of its value it holds; the 2e6 setpoint's step of 1 (8 units there) still counts as a move (test above)."""
    v = np.float32(230.7)
    w = np.nextafter(v, np.float32(np.inf))

    def sp(n, seed):
        return np.where(np.random.default_rng(seed).random(n) < 0.5, v, w).astype(np.float32)

    X = np.c_[_series(1200), sp(1200, 5)].astype(np.float32)
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "random_state": 0, "width": 8, "verbose": False})
    sd.fit(X, channel_names=["a", "b", "c", "setpoint"])
    assert sd.detector_.scaler_.mode[3] == "constant"
    T = np.c_[_series(600, seed=1), sp(600, 6)].astype(np.float32)
    assert (sd.score_series(T).contributions[:, 3] == 0).all()


def test_rows_by_code_groups_rows_in_order_as_one_pass_per_group_would():
    """Series ids (and patient-adaptive scoring's record ids) are grouped by one stable sort, not one pass over
    every row per id (10,000 series took 10,000 passes): the same groups, each in row order."""
    from ganad.data.validation import rows_by_code
    rs = np.random.RandomState(0)
    codes, uniques = pd.factorize(rs.choice(["b", "a", "c", 3], 500))
    got = rows_by_code(codes, len(uniques))
    assert len(got) == len(uniques)
    for k, idx in enumerate(got):
        np.testing.assert_array_equal(idx, np.flatnonzero(codes == k))
    assert rows_by_code(np.zeros(0, dtype=np.int64), 0) == []
