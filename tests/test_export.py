"""ONNX export of encoder detectors: onnxruntime gives the PyTorch scores, on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

import ganad
from ganad import ALAD, VAEGAN, AnoGAN, BiGAN, FAnoGAN, GANomaly
from ganad.exceptions import InputError
from ganad.export import export_onnx

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

METHODS = {"fanogan": FAnoGAN, "bigan": BiGAN, "alad": ALAD, "ganomaly": GANomaly, "vaegan": VAEGAN}
KW = dict(epochs=3, width=16, latent_dim=8, batch_size=32, device="cpu", random_state=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _data(kind):
    if kind == "vector":
        X, y = load_breast_cancer(return_X_y=True)
        X = X.astype(np.float32)
        return X[y == 1][:200], X  # train on benign, score everything
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32).reshape(-1, 1, 8, 8)
    return X[y == 0], X[:300]


def _check(det, X, path):
    names = export_onnx(det, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    comps, score = sess.run(None, {"x": X})
    ref = det.score_components(X)
    np.testing.assert_allclose(score, ref.scores, rtol=1e-4, atol=1e-4)
    for i, k in enumerate(names):
        np.testing.assert_allclose(comps[:, i], ref.components[k], rtol=1e-4, atol=1e-4, err_msg=k)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["components"]) == names
    assert float(meta["threshold"]) == det.threshold_
    return float(np.max(np.abs(score - ref.scores)))


@pytest.mark.parametrize("name", list(METHODS))
def test_onnx_matches_pytorch_vectors(name, tmp_path):
    Xtr, X = _data("vector")
    det = METHODS[name](**KW).fit(Xtr)
    assert _check(det, X, tmp_path / f"{name}.onnx") <= 1e-3  # scores agree (per-element tolerance 1e-4 checked inside)


@pytest.mark.parametrize("name", ["fanogan", "alad", "ganomaly"])
def test_onnx_matches_pytorch_images(name, tmp_path):
    Xtr, X = _data("image")
    det = METHODS[name](**KW).fit(Xtr)
    assert _check(det, X, tmp_path / f"{name}.onnx") <= 1e-3  # scores agree (per-element tolerance 1e-4 checked inside)


def test_onnx_series_and_dynamic_batch(tmp_path):
    X = np.sin(np.linspace(0, 20, 64, dtype=np.float32))[None, None, :] + 0.1 * np.random.RandomState(0).randn(60, 1, 64).astype(np.float32)
    det = BiGAN(**KW).fit(X)
    path = tmp_path / "s.onnx"
    export_onnx(det, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 7, 60):
        _, score = sess.run(None, {"x": X[:n]})
        np.testing.assert_allclose(score, det.decision_function(X[:n]), rtol=1e-4, atol=1e-4)


def test_export_of_loaded_model(tmp_path):
    Xtr, X = _data("vector")
    det = GANomaly(**KW).fit(Xtr)
    det.save(tmp_path / "m")
    assert _check(ganad.load(tmp_path / "m"), X, tmp_path / "m.onnx") <= 1e-3  # what `ganad export MODEL_DIR -o out` does


def test_anogan_default_score_exports_and_a_search_score_is_a_clear_error(tmp_path):
    """AnoGAN's default score (the knn distance of D(x) and x) needs no latent search: it exports, as the
    knn component alone, with the detector's scores; a score that reads the search is refused, as is an
    encoder method's search inversion when its score needs the inversion (codes)."""
    X = np.random.RandomState(0).randn(200, 4).astype(np.float32)
    det = AnoGAN(epochs=1, width=8, latent_dim=2, search_n_max=2, device="cpu", random_state=0).fit(X)
    assert _check(det, X * 2, tmp_path / "d.onnx") <= 1e-3
    assert onnx.load(str(tmp_path / "d.onnx")).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1  # ['knn']
    ens = AnoGAN(epochs=1, width=8, latent_dim=2, search_n_max=2, device="cpu", random_state=0, n_members=2).fit(X)
    assert _check(ens, X * 2, tmp_path / "e.onnx") <= 1e-3
    det = AnoGAN(epochs=1, width=8, latent_dim=2, search_n_max=2, device="cpu", random_state=0, knn_space="feature").fit(X)
    with pytest.raises(InputError, match="needs the latent search.*Fix: keep the default score"):
        export_onnx(det, tmp_path / "a.onnx")
    enc = FAnoGAN(epochs=1, width=8, latent_dim=2, inversion="search", search_n_max=2, device="cpu", random_state=0,
                  knn_space="code").fit(X)
    with pytest.raises(InputError, match="inversion='encoder'"):
        export_onnx(enc, tmp_path / "b.onnx")
    assert not (tmp_path / "a.onnx").exists() and not (tmp_path / "b.onnx").exists()
    enc = FAnoGAN(epochs=1, width=8, latent_dim=2, inversion="search", search_n_max=2, device="cpu", random_state=0).fit(X)
    assert _check(enc, X * 2, tmp_path / "c.onnx") <= 1e-3  # its default score needs no inversion either


@pytest.mark.parametrize("compose", ["default", "standardised", "grid", "svm"])
def test_onnx_after_calibration(compose, tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    anomaly = (y == 0).astype(int)
    rng = np.random.RandomState(0)
    idx = rng.permutation(len(X))
    train = idx[:300][anomaly[idx[:300]] == 0]
    val = idx[300:450]
    det = FAnoGAN(**KW).fit(X[train])
    det.calibrate(X[val], anomaly[val] if compose not in ("default", "standardised") else None, compose=compose)
    assert _check(det, X[450:], tmp_path / f"{compose}.onnx") <= 1e-3  # scores agree (per-element tolerance 1e-4 checked inside)


def test_onnx_of_an_svm_composer_from_an_old_model_file_gives_its_probability(tmp_path):
    """An SVM composer stored before ``output`` (its score the Platt probability, not the log-odds) exports that score."""
    from ganad.scoring.composition import composer_from_dict
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    anomaly = (y == 0).astype(int)
    idx = np.random.RandomState(0).permutation(len(X))
    det = FAnoGAN(**KW).fit(X[idx[:300]][anomaly[idx[:300]] == 0])
    det.calibrate(X[idx[300:450]], anomaly[idx[300:450]], compose="svm")
    det.composer_ = composer_from_dict({k: v for k, v in det.composer_.to_dict().items() if k != "output"})
    assert det.composer_.output == "probability"
    assert _check(det, X[450:], tmp_path / "old.onnx") <= 1e-3


@pytest.mark.parametrize("space, metric", [("code", "euclidean"), ("both", "euclidean"), ("feature", "mahalanobis"), ("code", "mahalanobis"),
                                           ("input", "euclidean"), ("feature+input", "auto")])
def test_onnx_matches_pytorch_in_every_knn_space(space, metric, tmp_path):
    """The default space and metric are covered above; the code space, the two-search 'both' and the
    Mahalanobis metric export too."""
    Xtr, X = _data("vector")
    det = GANomaly(**KW, knn_space=space, knn_metric=metric).fit(Xtr)
    assert _check(det, X, tmp_path / f"{space}.onnx") <= 1e-3


def test_series_model_export_names_the_series_model_and_its_detector(tmp_path):
    """`ganad export` of a series model said it 'inverts by latent search' (the message for AnoGAN),
    whatever the wrapped method; it names the series model and points to its window detector, whose
    export gives the library's window scores (knn_space='input', the series default, compressed)."""
    from ganad.series import SeriesDetector
    t = np.arange(1200)
    X = np.c_[np.sin(t / 20), np.cos(t / 33), 0.5 * np.sin(t / 7)] + 0.05 * np.random.RandomState(0).randn(1200, 3)
    sd = SeriesDetector("ganomaly", window=32, stride=8, detector_params={"epochs": 1, "random_state": 0, "verbose": False}).fit(X)
    assert sd.detector_.knn_space_ == "input" and sd.detector_.knn_basis_.shape[0] == 96  # 3 x 32 numbers: compressed
    sd.save(tmp_path / "m")
    with pytest.raises(InputError, match=r"is a SeriesDetector.*Fix: export the detector it wraps.*MODEL_DIR/detector") as exc:
        export_onnx(ganad.load(tmp_path / "m"), tmp_path / "s.onnx")
    assert "latent search" not in str(exc.value)
    assert not (tmp_path / "s.onnx").exists()
    W, _ = ganad.data.windows.make_windows(X[:400], 32, 8)
    assert _check(ganad.load(tmp_path / "m" / "detector"), W.astype(np.float32), tmp_path / "d.onnx") <= 1e-3


def test_cli_export_refuses_a_dash_and_notes_another_suffix(tmp_path, monkeypatch):
    """`ganad export MODEL -o -` wrote a file named '-'; it is refused. Another suffix than .onnx is
    written with a note."""
    from typer.testing import CliRunner
    from ganad.cli import app
    Xtr, _ = _data("vector")
    GANomaly(**KW).fit(Xtr).save(tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["export", str(tmp_path / "m"), "-o", "-"])
    assert r.exit_code == 2 and "file named '-'" in " ".join(r.output.split()) and not (tmp_path / "-").exists()
    r = CliRunner().invoke(app, ["export", str(tmp_path / "m"), "-o", str(tmp_path / "m.txt")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and (tmp_path / "m.txt").is_file() and ".onnx suffix" in out


def test_onnx_keeps_the_digits_of_a_feature_with_a_large_offset(tmp_path):
    """The graph subtracted the scaler's float64 shift rounded to float32 (off by up to 3e-5 at 1,000):
    on a feature 1000 ± 0.01, given as float32 (exact in both paths), that is a fifth of its spread, and
    the ONNX scores differed from the library's by ~6e-3. The shift is split into two float32 numbers."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6).astype(np.float32)
    X[:, 0] = (1000 + 0.01 * rng.randn(300)).astype(np.float32)
    X[:, 1] = (300 + 0.003 * rng.randn(300)).astype(np.float32)
    det = GANomaly(**KW).fit(X)
    assert _check(det, X, tmp_path / "offset.onnx") <= 1e-4


def test_failed_export_leaves_no_partial_file_and_keeps_an_existing_one(tmp_path, monkeypatch):
    """The graph was written to the path itself, then reloaded and saved again with its metadata: a
    failure on the way (disk full) left a half-written file, destroyed the file --overwrite replaces,
    and reached the CLI as a traceback (OSError, exit 1). It is written beside the path and renamed
    once complete; a write error is a ModelFileError naming the path (CLI: exit 2). A folder as the
    path is refused before any work."""
    import errno
    from typer.testing import CliRunner
    from ganad.cli import app
    Xtr, _ = _data("vector")
    det = GANomaly(**KW).fit(Xtr)
    det.save(tmp_path / "m")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous export")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(onnx, "save", full)
    with pytest.raises(ganad.exceptions.ModelFileError, match=r"model\.onnx: could not be written \(No space left on device\)"):
        export_onnx(det, out)
    assert out.read_bytes() == b"previous export" and sorted(p.name for p in tmp_path.iterdir()) == ["m", "model.onnx"]
    r = CliRunner().invoke(app, ["export", str(tmp_path / "m"), "-o", str(out), "--overwrite"])
    assert r.exit_code == 2 and "could not be written" in " ".join(r.output.split()), r.output
    assert out.read_bytes() == b"previous export" and sorted(p.name for p in tmp_path.iterdir()) == ["m", "model.onnx"]
    monkeypatch.undo()
    with pytest.raises(ganad.exceptions.ModelFileError, match="is a folder, not a file"):
        export_onnx(det, tmp_path / "m")


def test_export_of_a_foreign_detector_is_a_clear_error(tmp_path):
    """A multi-view model's view may be a PyOD or scikit-learn detector; docs/multiview.md exports per
    view with export_onnx(mv.detectors_[name], ...), which met such a view with an AttributeError
    ('IsolationForest' object has no attribute '_check_fitted'). It names the class and the fix."""
    from sklearn.ensemble import IsolationForest
    det = IsolationForest(n_estimators=5, random_state=0).fit(np.random.RandomState(0).randn(50, 3))
    with pytest.raises(InputError, match=r"is a IsolationForest, not a ganad detector.*Fix: export it with its own library"):
        export_onnx(det, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_onnx_matches_pytorch_tadgan_windows(tmp_path):
    """TadGAN (LSTM encoder and generator, critic Cx in the score) exports like the other encoder methods."""
    from ganad import TadGAN
    t = np.linspace(0, 12 * np.pi, 2000, dtype=np.float32)
    s = np.stack([np.sin(t), np.cos(0.5 * t)])
    W = np.stack([s[:, i:i + 32] for i in range(0, 2000 - 32, 8)]).astype(np.float32)
    det = TadGAN(epochs=2, width=8, latent_dim=4, batch_size=32, n_critic=1, random_state=0).fit(W[:150])
    assert _check(det, W, tmp_path / "tadgan.onnx") <= 1e-3


def test_onnx_matches_pytorch_tadgan_dtw_on_noisy_windows(tmp_path):
    """Maps audit (twenty-fifth session): soft-DTW's soft minimum exported as ONNX's ReduceLogSumExp, which
    onnxruntime sums without taking the largest term out, so the exponentials of costs beyond about 10
    (over gamma 0.1) underflowed: an exported rec_error='dtw' TadGAN scored some noisy windows units off
    (0.68 on a score range of 80; 182 of 600 rows off by more than 1e-4)."""
    from ganad import TadGAN
    rng = np.random.RandomState(1)
    X = (np.sin(np.linspace(0, 6, 16)[None, None, :] + rng.rand(400, 1, 1) * 6) + 0.05 * rng.randn(400, 1, 16)).astype(np.float32)
    T = (X[:200] + 0.3 * rng.randn(200, 1, 16)).astype(np.float32)
    det = TadGAN(epochs=1, latent_dim=4, width=8, batch_size=64, n_critic=1, random_state=0, rec_error="dtw").fit(X)
    _check(det, T, tmp_path / "tadgan_dtw.onnx")


def test_soft_minimum_of_far_apart_costs_exports_exactly(tmp_path):
    import torch

    from ganad.inversion.soft_dtw import _softmin3

    class M(torch.nn.Module):
        def forward(self, a, b, c):
            return _softmin3(a, b, c, 0.1)
    a = torch.tensor([np.inf, 19.6, 370.0, 0.0, np.inf])
    b = torch.tensor([19.6, 167.1, np.inf, 1e4, np.inf])
    c = torch.tensor([167.1, np.inf, 9.7, 1e4, np.inf])
    torch.onnx.export(M(), (a, b, c), str(tmp_path / "m.onnx"), input_names=["a", "b", "c"], opset_version=17, dynamo=False)
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"a": a.numpy(), "b": b.numpy(), "c": c.numpy()})[0]
    ref = -0.1 * torch.logsumexp(torch.stack([a, b, c]).double() / -0.1, 0)
    np.testing.assert_allclose(got, ref.float().numpy(), rtol=1e-6)


def test_onnx_metadata_names_the_columns_and_bad_opsets_are_refused(tmp_path):
    import pandas as pd
    Xtr, X = _data("vector")
    cols = [f"f{i}" for i in range(Xtr.shape[1])]
    det = GANomaly(**{**KW, "epochs": 1}).fit(pd.DataFrame(Xtr, columns=cols))
    _check(det, X, tmp_path / "named.onnx")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "named.onnx")).metadata_props}
    assert json.loads(meta["feature_names"]) == cols
    det2 = GANomaly(**{**KW, "epochs": 1}).fit(Xtr)
    export_onnx(det2, tmp_path / "plain.onnx")
    assert "feature_names" not in {p.key for p in onnx.load(str(tmp_path / "plain.onnx")).metadata_props}
    for bad in (9, 0, "17", 17.0):
        with pytest.raises(InputError, match="opset_version"):
            export_onnx(det2, tmp_path / "bad.onnx", opset_version=bad)
    assert not (tmp_path / "bad.onnx").exists()


def test_export_refuses_the_threshold_of_another_inversion(tmp_path):
    """Fitted with latent search, then set_params(inversion='encoder'): the ONNX file carried the
    search scores' threshold beside the encoder's scores. Refused until calibrate."""
    X = np.random.RandomState(0).randn(120, 4).astype(np.float32)
    det = GANomaly(epochs=1, width=8, latent_dim=2, random_state=0, verbose=False, inversion="search", search_n_max=3).fit(X[:100])
    det.set_params(inversion="encoder")
    with pytest.raises(InputError, match=r"export_onnx.*calibrate\(X_normal\)"):
        export_onnx(det, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    det.calibrate(X[100:])
    export_onnx(det, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").exists()


def test_vaegan_computes_disc_normalised_and_exports_it(tmp_path):
    """docs/methods.md lists disc_normalised among β-VAEGAN's components and its discriminator judges x
    alone (its training mean was fitted), but VAEGAN's own component table replaced the generic one and
    left it out: a composition naming it was refused as "a component this detector does not compute"."""
    Xtr, X = _data("vector")
    det = VAEGAN(**KW).fit(Xtr)
    comps = det.score_components(X[:50]).components
    assert "disc_normalised" in comps and np.all(np.asarray(comps["disc_normalised"]) > 0)
    det.calibrate(Xtr[100:], compose="standardised", weights={"residual": 1.0, "disc_normalised": 1.0})
    assert _check(det, X, tmp_path / "v.onnx") <= 1e-3
