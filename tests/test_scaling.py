"""The 'per-feature' scaler (scaler='auto' for vectors and series): per-feature modes, clipping,
round trip through model files, and model files written before it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ganad
from ganad import FAnoGAN
from ganad.data.scaling import Scaler, resolve_scaler
from ganad.exceptions import InputError

KW = dict(epochs=1, width=16, latent_dim=4, batch_size=64, device="cpu", random_state=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _mixed(n=1000, seed=0):
    """Columns: 3 one-hot, 1 constant, 1 continuous, 1 rare flag (on in 1 row of n), 1 all-zero flag."""
    rng = np.random.RandomState(seed)
    onehot = np.eye(3, dtype=np.float32)[rng.randint(0, 3, n)]
    const = np.full((n, 1), 7.5, np.float32)
    cont = rng.normal(100.0, 5.0, (n, 1)).astype(np.float32)
    rare = np.zeros((n, 1), np.float32); rare[0] = 1.0
    zero = np.zeros((n, 1), np.float32)
    return np.hstack([onehot, const, cont, rare, zero])


def test_modes_chosen_per_feature():
    X = _mixed()
    s = Scaler("per-feature").fit(X)
    assert s.mode == ["discrete"] * 3 + ["constant", "continuous", "discrete", "constant"]
    Z = s.transform(X)
    assert set(np.unique(Z[:, :3])) == {-1.0, 1.0}  # one-hot to {-1, 1} by the training range
    np.testing.assert_array_equal(Z[:, 3], 0.0)  # constant: centred, scale 1
    assert s.scale[3] == 1.0 and s.shift[3] == 7.5
    assert abs(Z[:, 4].mean()) < 1e-4 and abs(Z[:, 4].std() - 1.0) < 1e-3  # continuous: standardised
    assert Z[0, 5] == 1.0 and np.all(Z[1:, 5] == -1.0)  # the rare flag is ±1, not 1/std ≈ 31
    assert Scaler("standard").fit(X).transform(X)[0, 5] > 30  # what the old default did


def test_series_are_scaled_per_channel():
    rng = np.random.RandomState(0)
    X = np.stack([rng.normal(0, 3, (200, 32)), (rng.rand(200, 32) < 0.01).astype(float)], axis=1).astype(np.float32)
    s = Scaler("per-feature").fit(X)
    assert s.mode == ["continuous", "discrete"]
    Z = s.transform(X)
    assert set(np.unique(Z[:, 1])) == {-1.0, 1.0} and abs(Z[:, 0].std() - 1) < 1e-3


def test_test_values_never_exceed_the_clip():
    X = _mixed()
    for clip in (0.0, 1.0, 3.0):
        s = Scaler("per-feature", clip=clip).fit(X)
        Zt = s.transform(X)
        width = np.maximum(Zt.max(0) - Zt.min(0), 1.0)
        np.testing.assert_allclose(s.lo, Zt.min(0) - clip * width, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.hi, Zt.max(0) + clip * width, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(Zt, Scaler("per-feature", clip=None).fit(X).transform(X))  # training data untouched
        wild = np.random.RandomState(1).normal(0, 1e6, (500, X.shape[1])).astype(np.float32)
        Z = s.transform(wild)
        assert np.all(Z >= s.lo) and np.all(Z <= s.hi)
        assert np.all(np.abs(Z) <= np.abs(np.r_[s.lo, s.hi]).max() + 1e-6)
    # the all-zero training channel at 1 on test data: pass-through, 1 (standard scaling is not bounded)
    s = Scaler("per-feature").fit(X)
    x = X[:1].copy(); x[0, 6] = 1.0; x[0, 5] = 1.0
    assert s.transform(x)[0, 6] == 1.0 and s.transform(x)[0, 5] == 1.0
    x[0, 6] = 1e9
    assert s.transform(x)[0, 6] == 1.0  # constant channel: bounded by clip × width 1


def test_to_dict_round_trip_and_old_dicts():
    X = _mixed()
    s = Scaler("per-feature", clip=2.0).fit(X)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["mode"] == s.mode and d["clip"] == 2.0
    r = Scaler.from_dict(d)
    probe = np.random.RandomState(2).normal(0, 100, (50, X.shape[1])).astype(np.float32)
    np.testing.assert_array_equal(r.transform(probe), s.transform(probe))
    # a model file written before the per-feature kind: kind, shift, scale only -> unclipped, as before
    old = {"kind": "standard", "shift": [1.0, 2.0], "scale": [2.0, 4.0]}
    o = Scaler.from_dict(old)
    assert o.lo is None and o.mode is None
    np.testing.assert_allclose(o.transform(np.array([[101.0, 2.0]], np.float32)), [[50.0, 0.0]])
    assert Scaler.from_dict(old).to_dict() == old


def test_auto_is_per_feature_for_vectors_and_minmax_for_images():
    assert resolve_scaler("auto", image=False).kind == "per-feature"
    assert resolve_scaler("auto", image=True).kind == "minmax"
    s = resolve_scaler({"kind": "auto", "clip": 3, "max_levels": 4}, image=False)
    assert (s.kind, s.clip, s.max_levels) == ("per-feature", 3.0, 4)
    assert resolve_scaler("standard", image=False).clip is None


def test_small_spread_beside_a_large_offset_is_scaled():
    # 1e9 ± 1e-3 is not constant by the range rule (2e-3 > 1e-12 · 1e9), so it is standardised / mapped to
    # [-1, 1]: its std (6e-4) or half-range (1e-3) must not fall back to a scale of 1 (z of ±1e-3, ignored)
    rng = np.random.RandomState(0)
    X = np.column_stack([1e9 + rng.uniform(-1e-3, 1e-3, 500), 1e9 + rng.randint(0, 2, 500) * 2e-3])
    s = Scaler("per-feature").fit(X)
    assert s.mode == ["continuous", "discrete"]
    Z = s.transform(X)
    assert abs(Z[:, 0].std() - 1.0) < 1e-3
    np.testing.assert_allclose(np.abs(Z[:, 1]), 1.0, atol=1e-3)  # float64's spacing at 1e9 is 1.2e-7
    for kind in ("standard", "minmax"):  # (x - mean) / std and the [-1, 1] range alike
        assert Scaler(kind).fit(X).transform(X)[:, 0].std() > 0.5


@pytest.mark.parametrize("clip", [np.float32(2.0), np.int64(2), np.float64(2.0), 2])
def test_numpy_clip_is_accepted(clip):
    assert Scaler("per-feature", clip=clip).clip == 2.0
    assert resolve_scaler({"kind": "per-feature", "clip": clip}, image=False).clip == 2.0


@pytest.mark.parametrize("bad, words", [("robustt", "'robustt'"), ({"kind": "per-feature", "clip": -1}, "clip"),
                                         ({"kind": "per-feature", "clips": 1}, "clips"),
                                         ({"kind": "per-feature", "clip": True}, "clip"),
                                         ({"kind": "per-feature", "max_levels": 1}, "max_levels")])
def test_bad_scaler_is_a_clear_error(bad, words):
    with pytest.raises(InputError, match="scaler") as e:
        FAnoGAN(scaler=bad, **KW).fit(_mixed(100))
    assert words in str(e.value) and "Fix:" in str(e.value)


def test_detector_save_load_keeps_modes_and_clip(tmp_path):
    X = _mixed(300)
    det = FAnoGAN(**KW).fit(X)
    assert det.scaler_.kind == "per-feature" and det.scaler_.mode[3] == "constant"
    det.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["state"]["scaler"]["mode"] == det.scaler_.mode and "lo" in cfg["state"]["scaler"]
    back = ganad.load(tmp_path / "m")
    probe = np.vstack([X[:20], np.random.RandomState(3).normal(0, 1e4, (20, X.shape[1]))]).astype(np.float32)
    np.testing.assert_allclose(back.score_samples(probe), det.score_samples(probe), rtol=1e-5)
    np.testing.assert_array_equal(back.scaler_.hi, det.scaler_.hi)


def test_old_model_file_without_modes_loads(tmp_path):
    X = _mixed(300)
    det = FAnoGAN(scaler="standard", **KW).fit(X)
    det.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert set(cfg["state"]["scaler"]) == {"kind", "shift", "scale"}  # the format before this change
    cfg["params"]["scaler"] = "auto"  # an old file's 'auto' meant standard; its stored scaler decides
    cfg_path.write_text(json.dumps(cfg))
    back = ganad.load(tmp_path / "m")
    assert back.scaler_.kind == "standard" and back.scaler_.lo is None
    np.testing.assert_allclose(back.score_samples(X[:30]), det.score_samples(X[:30]), rtol=1e-5)


def test_onnx_export_clips_like_the_detector(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ganad.export import export_onnx
    X = _mixed(300)
    det = FAnoGAN(**KW).fit(X)
    export_onnx(det, tmp_path / "m.onnx")
    probe = np.vstack([X[:10], np.random.RandomState(4).normal(0, 1e4, (10, X.shape[1]))]).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    _, score = sess.run(None, {"x": probe})
    np.testing.assert_allclose(score, det.score_samples(probe), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- float64 scaling (large offsets)
TS0 = 1_700_000_000  # a UNIX timestamp: float32's spacing there is 128, so 1.7e9 + k (k < 64) is one value


def _timestamp_table(n_normal=600, n_anom=60, seed=0):
    """Column 0: ``1.7e9 + k``, k in 0..20 for normal rows and 35..55 for anomalies (the only
    informative column; in float32 every one of these values is 1.7e9); columns 1-3: N(0, 1) noise.
    Returns (X_train, X_test, y_test) as float64, the first half of the normal rows to train on."""
    rng = np.random.RandomState(seed)
    k = np.r_[rng.randint(0, 21, n_normal), rng.randint(35, 56, n_anom)]
    X = np.column_stack([TS0 + k.astype(np.float64), rng.normal(0, 1, (n_normal + n_anom, 3))])
    y = np.r_[np.zeros(n_normal, np.int64), np.ones(n_anom, np.int64)]
    half = n_normal // 2
    return X[:half], X[half:], y[half:]


def test_scaler_keeps_a_large_offset_feature():
    Xtr, Xte, yte = _timestamp_table()
    assert len(np.unique(Xtr[:, 0].astype(np.float32))) == 1  # what float32 leaves of the column
    s = Scaler("per-feature").fit(Xtr)
    assert s.mode[0] == "continuous" and s.shift.dtype == np.float64
    assert s.shift[0] == Xtr[:, 0].mean()  # the exact float64 mean, not rounded to float32
    Z = s.transform(Xte)
    assert Z.dtype == np.float32
    assert Z[yte == 1, 0].min() > Z[yte == 0, 0].max()  # k = 35.. lies above every normal k = ..20
    np.testing.assert_allclose(s.inverse_transform(s.transform_unclipped(Xte))[:, 0], Xte[:, 0], rtol=0, atol=1e-3)
    # the stored parameters keep every digit: a model file's JSON round trip changes nothing
    r = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(r.shift, s.shift)
    np.testing.assert_array_equal(r.transform(Xte), Z)


def test_float32_values_keep_the_float32_constant_rule():
    X = np.full((200, 2), 5.0, np.float32)
    X[:, 1] += np.random.RandomState(0).randint(0, 3, 200).astype(np.float32) * np.float32(4.8e-7)  # float32 rounding noise
    assert Scaler("per-feature").fit(X).mode == ["constant", "constant"]
    assert Scaler("per-feature").fit(X.astype(np.float64)).mode == ["constant", "constant"]  # float32 numbers, as float64
    X64 = X.astype(np.float64)
    X64[:, 1] = 5.0 + np.random.RandomState(0).randint(0, 3, 200) * 4.8e-7  # not float32 numbers: a real (tiny) variation
    assert Scaler("per-feature").fit(X64).mode == ["constant", "discrete"]


@pytest.mark.parametrize("frame", [False, True], ids=["float64 array", "DataFrame with an int64 column"])
def test_detector_finds_anomalies_in_a_large_offset_feature(tmp_path, frame):
    from sklearn.metrics import roc_auc_score
    Xtr, Xte, yte = _timestamp_table()
    if frame:  # integer UNIX timestamps beside float columns
        import pandas as pd

        def df(X):
            return pd.DataFrame({"ts": X[:, 0].astype(np.int64), **{f"x{j}": X[:, j] for j in (1, 2, 3)}})
        Xtr, Xte = df(Xtr), df(Xte)
    det = FAnoGAN(**{**KW, "epochs": 2}).fit(Xtr)
    assert det.scaler_.mode[0] == "continuous"  # not "constant": float32 made it one value
    scores = det.decision_function(Xte)
    assert roc_auc_score(yte, scores) > 0.8
    det.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["state"]["scaler"]["shift"][0] == float(det.scaler_.shift[0])  # full precision in the file
    back = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(back.scaler_.shift, det.scaler_.shift)
    np.testing.assert_array_equal(back.decision_function(Xte), scores)


def test_cli_keeps_a_large_offset_feature(tmp_path):
    from typer.testing import CliRunner

    from ganad.cli import app
    from ganad.data.readers import read_array
    Xtr, Xte, yte = _timestamp_table()
    for name, X in (("train", Xtr), ("test", Xte)):
        np.savetxt(tmp_path / f"{name}.csv", X, delimiter=",", fmt=["%d", "%.17g", "%.17g", "%.17g"],
                   header="stamp,a,b,c", comments="")
    np.save(tmp_path / "test.npy", Xte)
    np.testing.assert_array_equal(read_array(tmp_path / "test.csv"), Xte)  # every digit read
    np.testing.assert_array_equal(read_array(tmp_path / "test.npy"), Xte)
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--method", "fanogan",
                                 "--epochs", "2", "--set", "width=16", "--latent-dim", "4", "-q"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").scaler_.mode[0] == "continuous"


def test_serve_json_keeps_a_large_offset_feature():
    pytest.importorskip("fastapi")
    import orjson

    from ganad.serve.app import prepare
    from ganad.serve.decode import decode
    Xtr, Xte, _ = _timestamp_table()
    det = FAnoGAN(**KW).fit(Xtr)
    rows, _ = decode(orjson.dumps({"instances": Xte.tolist()}), "application/json")
    X = prepare(det, rows)
    np.testing.assert_array_equal(X[:, 0], Xte[:, 0])  # every digit of the timestamp reaches the scaler
    np.testing.assert_array_equal(det.decision_function(X), det.decision_function(Xte))


def test_series_keep_a_large_offset_channel():
    from ganad import SeriesDetector
    t = np.arange(1200)
    counter = TS0 + (t % 20)  # a counter with a large offset: one value in float32
    X = np.column_stack([counter, np.sin(t / 5)])
    sd = SeriesDetector("fanogan", window=32, stride=8, detector_params={**KW, "epochs": 1}).fit(X)
    assert sd.detector_.scaler_.mode[0] == "continuous"
    bad = X[:300].copy()
    bad[150:170, 0] = TS0 + 50  # the counter stuck at a level it never reached
    s = sd.score_series(bad).scores
    assert s[150:170].mean() > 2 * np.median(s)


def test_features_in_small_units_are_not_constant():
    """The constant bound was 1e-6 · max(1, |mean|): float32 features around 1e-8 (small SI units) were all
    'constant' and the detector ignored them. It is relative to the values' own magnitude now."""
    rng = np.random.RandomState(0)
    X = rng.randn(400, 2) @ rng.randn(2, 6) + 0.05 * rng.randn(400, 6)
    for scale in (1.0, 1e-8, 1e-20):
        assert Scaler("per-feature").fit((X * scale).astype(np.float32)).mode == ["continuous"] * 6, scale
    Z = np.c_[np.full(400, 3.0), np.zeros(400), 1.7e9 + np.arange(400.0), np.full(400, 1e9) + 1e-4 * rng.randn(400)]
    assert Scaler("per-feature").fit(Z).mode == ["constant", "constant", "continuous", "constant"]
    s = Scaler("per-feature").fit((X * 1e-8).astype(np.float32))
    z = s.transform((X[:5] * 1e-8).astype(np.float32))
    assert np.isfinite(z).all() and np.abs(z).max() < 10  # standardised, not 1e-8-sized residues of a constant


@pytest.mark.parametrize("kind", ["per-feature", "standard"])
def test_a_constant_feature_of_large_magnitude_reaches_the_networks_within_its_training_range(kind):
    """A feature at 1e18 whose values vary by rounding noise (1e-13 of the value) was called constant
    and given scale 1: its training values reached the networks as ±8e5, hid a 50-sigma anomaly in
    another feature and made training diverge at 1e24. Its scale is now its training range."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[:, 3] = 1e18 * (1 + 1e-13 * rng.normal(size=200))
    s = Scaler(kind).fit(X)
    Z = s.transform(X)
    assert np.abs(Z[:, 3]).max() <= 1.0
    assert s.scale[3] == pytest.approx(X[:, 3].max() - X[:, 3].min())
    assert np.abs(Z[:, :3]).std(axis=0).min() > 0.5  # the other features are standardised as before
    det = ganad.GANomaly(**KW).fit(X)
    A = X[:5].copy()
    A[:, 0] += 50
    assert det.predict(A).all() and det.decision_function(A).min() > det.decision_function(X[:5]).max()


@pytest.mark.parametrize("kind", ["per-feature", "standard"])
@pytest.mark.parametrize("magnitude", [1e-170, 1e-310])
def test_features_of_tiny_magnitude_are_standardised_not_zeroed(kind, magnitude):
    """The variance of values below ~1e-154 underflowed to 0, the scale fell back to 1 and every
    scaled value was 0: every score 0, nothing ever flagged."""
    X = np.random.default_rng(0).normal(size=(200, 3)) * magnitude
    s = Scaler(kind).fit(X)
    Z = s.transform_unclipped(X)
    assert np.allclose(Z.std(axis=0), 1.0, atol=0.05) and np.allclose(Z.mean(axis=0), 0.0, atol=0.05)
    if kind == "per-feature":
        assert s.mode == ["continuous"] * 3


def test_minmax_of_the_widest_float64_range_is_finite():
    X = np.array([[-1.7e308], [1.7e308], [0.0]])
    s = Scaler("minmax").fit(X)
    assert np.isfinite(s.scale).all() and np.allclose(s.transform(X).ravel(), [-1, 1, 0])
