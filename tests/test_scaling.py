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


@pytest.mark.parametrize("bad, words", [("robustt", "'robustt'"), ({"kind": "per-feature", "clip": -1}, "clip"),
                                         ({"kind": "per-feature", "clips": 1}, "clips"),
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
